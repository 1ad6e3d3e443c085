// Form uploads: a streaming multipart/form-data reader, the form's signature and its files.
#include "object/proxy/formpost.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <map>

#include "object/proxy/tempurl.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy::formpost {

namespace {

constexpr size_t kMaxValueLength = 4096;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// Swift's parse_content_disposition: the value before ';' and its attributes.
std::pair<std::string, std::map<std::string, std::string>> parse_disposition(std::string_view h) {
  auto text = trim(h);
  auto semi = text.find(';');
  std::pair<std::string, std::map<std::string, std::string>> out{trim(text.substr(0, semi)), {}};
  std::string_view rest =
      semi == std::string::npos ? std::string_view() : std::string_view(text).substr(semi);
  while (!rest.empty()) {
    rest.remove_prefix(1);  // ';'
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    auto name = trim(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value += rest[i];
      }
      rest.remove_prefix(std::min(rest.size(), i + 1));
      auto next = rest.find(';');
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
    } else {
      auto next = rest.find(';');
      value = std::string(rest.substr(0, next));
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
    }
    out.second[name] = value;
  }
  return out;
}

// Python's str.title() of Swift's ASCII messages.
std::string title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    bool alpha = std::isalpha(static_cast<unsigned char>(c));
    c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
    start = !alpha;
  }
  return s;
}

std::optional<std::int64_t> python_int(const std::string& v) {
  auto t = trim(v);
  std::string_view s = t;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return n;
}

// Ends the form with an answer of its own (Swift's FormInvalid, FormUnauthorized).
struct Stop {
  int status;
  std::string message;
};

http::Response plain(int status, std::string body) {
  auto out = empty(status, "text/plain");
  out.body = std::move(body);
  return out;
}

class FormSink : public http::BodySink {
 public:
  FormSink(const Request& q, std::string boundary)
      : held_(std::make_unique<HeldRequest>(q)), boundary_(std::move(boundary)) {
    auto& h = held_->q();
    // A valid signature lets the form write anywhere in the account, as Swift's pre-authorized
    // subrequests do.
    h.grant = Grant{h.path.account, ""};
    h.owner = false;
    keys_ = tempurl::keys(h.proxy, h.path);
    if (!(h.path.has_container)) keys_.clear();
  }
  void write(std::string_view chunk) override {
    if (phase_ == Phase::done) return;
    buffer_ += chunk;
    try {
      parse();
    } catch (const Stop& s) {
      stop(s);
    }
  }
  http::Response finish() override {
    try {
      if (phase_ == Phase::body) end_part();
    } catch (const Stop& s) {
      stop(s);
    }
    if (answer_) return std::move(*answer_);
    if (status_ == 0) {
      status_ = 400;
      message_ = "no files to process";
    }
    auto status_text = status_line(status_);
    auto redirect = attributes_["redirect"];
    if (redirect.empty()) {
      auto body = status_text;
      if (!message_.empty()) body += "\r\nFormPost: " + title(message_);
      if (status_ / 100 != 2 && !sub_body_.empty()) body = sub_body_;
      auto out = plain(status_, body);
      return out;
    }
    redirect += redirect.find('?') == std::string::npos ? "?" : "&";
    redirect += "status=" + std::to_string(status_) + "&message=" + http::percent_encode(message_);
    auto out = empty(303, "text/html; charset=UTF-8");
    out.headers.set("Location", redirect);
    out.body =
        "<html><body><p><a href=\"" + redirect + "\">Click to continue...</a></p></body></html>";
    return out;
  }
  void abort() noexcept override {
    if (sink_) sink_->abort();
  }

 private:
  enum class Phase { preamble, headers, body, after_boundary, done };

  void stop(const Stop& s) {
    if (sink_) sink_->abort();
    sink_.reset();
    phase_ = Phase::done;
    if (s.status == 401) {
      auto out = empty(401);
      out.body = s.message;
      out.headers.set("WWW-Authenticate", "Swift realm=\"" + held_->q().path.account + "\"");
      answer_ = std::move(out);
    } else {
      answer_ = plain(s.status, s.message);
    }
  }

  void parse() {
    auto delimiter = "\r\n--" + boundary_;
    while (phase_ != Phase::done) {
      if (phase_ == Phase::preamble || phase_ == Phase::headers) {
        auto eol = buffer_.find("\r\n");
        if (eol == std::string::npos) {
          if (buffer_.size() > 65536) throw Stop{400, "FormPost: invalid starting boundary"};
          return;
        }
        auto line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 2);
        if (phase_ == Phase::preamble) {
          if (line.empty()) continue;
          if (trim(line) != "--" + boundary_)
            throw Stop{400, "FormPost: invalid starting boundary"};
          phase_ = Phase::headers;
          part_headers_ = http::Headers{};
          continue;
        }
        if (line.empty()) {
          phase_ = Phase::body;
          begin_part();
          continue;
        }
        auto colon = line.find(':');
        if (colon != std::string::npos)
          part_headers_.set(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
        continue;
      }
      if (phase_ == Phase::body) {
        auto at = buffer_.find(delimiter);
        if (at == std::string::npos) {
          if (buffer_.size() >= delimiter.size()) {
            auto keep = delimiter.size() - 1;
            part_data(std::string_view(buffer_).substr(0, buffer_.size() - keep));
            buffer_.erase(0, buffer_.size() - keep);
          }
          return;
        }
        part_data(std::string_view(buffer_).substr(0, at));
        buffer_.erase(0, at + delimiter.size());
        phase_ = Phase::after_boundary;
        end_part();
        continue;
      }
      // After a delimiter: "--" ends the form, a line break starts the next part.
      if (buffer_.size() < 2) return;
      if (buffer_.starts_with("--")) {
        phase_ = Phase::done;
        return;
      }
      auto eol = buffer_.find("\r\n");
      if (eol == std::string::npos) return;
      buffer_.erase(0, eol + 2);
      phase_ = Phase::headers;
      part_headers_ = http::Headers{};
    }
  }

  void begin_part() {
    auto [disposition, attrs] = parse_disposition(part_headers_.get_or("Content-Disposition"));
    field_.clear();
    field_name_.reset();
    file_ = false;
    if (stopped_processing_) return;
    if (disposition == "form-data" && !attrs["filename"].empty()) {
      ++file_count_;
      auto max_count =
          python_int(attributes_.count("max_file_count") && !attributes_["max_file_count"].empty()
                         ? attributes_["max_file_count"]
                         : "0");
      if (!max_count) throw Stop{400, "FormPost: max_file_count not an integer"};
      if (file_count_ > *max_count) {
        status_ = 400;
        message_ = "max file count exceeded";
        stopped_processing_ = true;
        return;
      }
      auto file = attributes_;
      file["filename"] = attrs["filename"];
      if (!file.count("content-type") && part_headers_.get("Content-Type"))
        file["content-type"] = part_headers_.get_or("Content-Type", "application/octet-stream");
      if (!file.count("content-encoding") && part_headers_.get("Content-Encoding"))
        file["content-encoding"] = part_headers_.get_or("Content-Encoding");
      start_file(file);
      file_ = true;
      return;
    }
    if (attrs.count("name")) {
      auto name = attrs["name"];
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      field_name_ = name;
    }
  }

  void start_file(std::map<std::string, std::string>& file) {
    auto& q = held_->q();
    if (keys_.empty()) throw Stop{401, "FormPost: Invalid Signature"};
    auto get = [&](const char* k, const char* fallback) {
      auto it = file.find(k);
      return it == file.end() || it->second.empty() ? std::string(fallback) : it->second;
    };
    auto max_size = python_int(get("max_file_size", "0"));
    if (!max_size) throw Stop{400, "FormPost: max_file_size not an integer"};
    max_file_size_ = *max_size;
    http::Headers headers;
    headers.set("Transfer-Encoding", "chunked");
    if (file.count("x_delete_at")) {
      auto v = python_int(file["x_delete_at"]);
      if (!v) throw Stop{400, "FormPost: x_delete_at not an integer: Unix timestamp required."};
      headers.set("X-Delete-At", std::to_string(*v));
    }
    if (file.count("x_delete_after")) {
      auto v = python_int(file["x_delete_after"]);
      if (!v)
        throw Stop{400, "FormPost: x_delete_after not an integer: Number of seconds required."};
      headers.set("X-Delete-After", std::to_string(*v));
    }
    if (file.count("content-type"))
      headers.set("Content-Type",
                  file["content-type"].empty() ? "application/octet-stream" : file["content-type"]);
    if (file.count("content-encoding")) headers.set("Content-Encoding", file["content-encoding"]);
    auto expires = python_int(get("expires", "0"));
    if (!expires) throw Stop{400, "FormPost: expired not an integer"};
    if (*expires < std::time(nullptr)) throw Stop{401, "FormPost: Form Expired"};
    auto message = q.ctx.request.path + "\n" + get("redirect", "") + "\n" +
                   get("max_file_size", "0") + "\n" + get("max_file_count", "0") + "\n" +
                   get("expires", "0");
    auto signature = tempurl::parse_signature(file.count("signature") ? file["signature"] : "");
    if (!signature) throw Stop{401, "FormPost: Invalid Signature"};
    bool valid = false;
    for (auto& [key, account_key] : keys_)
      valid |= tempurl::equal_constant_time(tempurl::hmac_hex(signature->first, key, message),
                                            signature->second);
    if (!valid) throw Stop{401, "FormPost: Invalid Signature"};
    // <container>/<prefix> + filename: a slash only after a bare container.
    auto path = q.ctx.request.path;
    if (!path.ends_with("/") && std::count(path.begin(), path.end(), '/') < 4) path += "/";
    path += file["filename"];
    SwiftPath target;
    try {
      target = parse_swift_path(path);
    } catch (const ApiError& e) {
      status_ = e.status();
      stopped_processing_ = true;
      return;
    }
    sub_ = std::make_unique<SubRequest>(q, "PUT", target, std::move(headers));
    received_ = 0;
    put_status_ = 0;
    try {
      sink_ = object_put(sub_->q());
    } catch (const ApiError& e) {
      put_status_ = e.status();
      sub_body_ = render_swift_error(e).body;
    }
  }

  void part_data(std::string_view data) {
    if (data.empty()) return;
    if (file_) {
      received_ += data.size();
      if (static_cast<std::int64_t>(received_) > max_file_size_)
        throw Stop{400, "FormPost: max_file_size exceeded"};
      if (!sink_) return;
      try {
        sink_->write(data);
      } catch (const ApiError& e) {
        sink_->abort();
        sink_.reset();
        put_status_ = e.status();
        sub_body_ = render_swift_error(e).body;
      }
      return;
    }
    if (field_name_ && field_.size() < kMaxValueLength)
      field_ += data.substr(0, kMaxValueLength - field_.size());
  }

  void end_part() {
    if (file_) {
      file_ = false;
      int status = put_status_;
      if (sink_) {
        try {
          status = sink_->finish().status;
          sub_body_.clear();
        } catch (const ApiError& e) {
          sink_->abort();
          status = e.status();
          sub_body_ = render_swift_error(e).body;
        }
        sink_.reset();
      }
      sub_.reset();
      status_ = status;
      if (status / 100 != 2) stopped_processing_ = true;
      return;
    }
    if (field_name_) {
      auto value = field_;
      while (!value.empty() &&
             (value.back() == '\r' || value.back() == '\n' || value.back() == '-'))
        value.pop_back();
      attributes_[*field_name_] = value;
    }
  }

  std::unique_ptr<HeldRequest> held_;
  std::string boundary_;
  std::vector<std::pair<std::string, bool>> keys_;
  Phase phase_ = Phase::preamble;
  std::string buffer_;
  http::Headers part_headers_;
  std::map<std::string, std::string> attributes_;
  std::optional<std::string> field_name_;
  std::string field_;
  bool file_ = false, stopped_processing_ = false;
  std::int64_t file_count_ = 0, max_file_size_ = 0;
  std::uint64_t received_ = 0;
  std::unique_ptr<SubRequest> sub_;
  std::unique_ptr<http::BodySink> sink_;
  int put_status_ = 0, status_ = 0;
  std::string message_, sub_body_;
  std::optional<http::Response> answer_;
};

}  // namespace

bool applies(const http::Request& r) {
  if (r.method != "POST") return false;
  auto [type, attrs] = parse_disposition(r.headers.get_or("Content-Type"));
  return type == "multipart/form-data" && attrs.count("boundary");
}

std::unique_ptr<http::BodySink> upload(Request& q) {
  auto [type, attrs] = parse_disposition(q.r().headers.get_or("Content-Type"));
  return std::make_unique<FormSink>(q, attrs["boundary"]);
}

}  // namespace nubo::object::proxy::formpost
