// Bulk deletes and archive extraction, and the result bodies Swift's bulk and SLO share.
#include "object/proxy/bulk.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "object/proxy/tar_reader.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy::bulk {

namespace {

constexpr size_t kMaxDeletes = 10000;
constexpr size_t kMaxFailedDeletes = 1000;
constexpr size_t kMaxFailedExtractions = 1000;
constexpr size_t kMaxContainers = 10000;
constexpr size_t kMaxPathLength = 1024 + 256 + 2;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string unquote(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Element text as Swift's bulk responses escape it (&, <, >).
std::string escape_text(std::string_view s) { return http::escape_markup(s, false); }

// Python's str() of a field value.
std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return py_json(v);
}

void py_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    char buf[16];
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // A UTF-8 sequence as its code point, past U+FFFF as a surrogate pair.
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
    std::uint32_t cp = c & (0x3f >> extra);
    for (int k = 0; k < extra && i + 1 < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
    if (cp > 0xffff) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    }
    out += buf;
  }
  out += '"';
}

void py_dump(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.as_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(v.as_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(v.as_uint64());
      break;
    case json::kind::double_:
      out += json::serialize(v);
      break;
    case json::kind::string:
      py_string(out, v.as_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (auto& item : v.as_array()) {
        if (!first) out += ", ";
        first = false;
        py_dump(out, item);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (auto& kv : v.as_object()) {
        if (!first) out += ", ";
        first = false;
        py_string(out, kv.key());
        out += ": ";
        py_dump(out, kv.value());
      }
      out += '}';
      break;
    }
  }
}

// The path a subrequest names: "/v1/<account>/<name without leading slashes>".
std::optional<SwiftPath> path_in_account(const std::string& account, std::string_view name) {
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  try {
    return parse_swift_path("/v1/" + account + "/" + std::string(name));
  } catch (const ApiError&) {
    return std::nullopt;
  }
}

// The status of one request made on the caller's behalf.
int status_of(const std::function<http::Response()>& call) {
  try {
    return call().status;
  } catch (const ApiError& e) {
    return e.status();
  }
}

http::Response result(const std::string& format, std::string body) {
  auto out = empty(200, format.empty() ? "text/html; charset=UTF-8" : format.c_str());
  out.body = std::move(body);
  return out;
}

}  // namespace

std::string response_format(const http::Request& r) {
  static const char* offers[] = {"text/plain", "application/json", "application/xml", "text/xml"};
  auto header = r.headers.get("Accept");
  if (!header || trim(*header).empty()) return offers[0];
  struct Range {
    std::string type, subtype;
    double q = 1;
  };
  std::vector<Range> ranges;
  std::string_view all = *header;
  while (!all.empty()) {
    auto comma = all.find(',');
    auto item = trim(all.substr(0, comma));
    all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
    if (item.empty()) continue;
    auto semi = item.find(';');
    auto media = trim(std::string_view(item).substr(0, semi));
    auto slash = media.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == media.size()) return {};
    Range range{media.substr(0, slash), media.substr(slash + 1)};
    if (semi != std::string::npos) {
      auto params = std::string_view(item).substr(semi + 1);
      auto q = params.find("q=");
      if (q != std::string_view::npos) {
        auto value = trim(params.substr(q + 2, params.find(';', q) - q - 2));
        try {
          range.q = std::stod(value);
        } catch (...) {
          return {};
        }
      }
    }
    if (range.q > 0) ranges.push_back(std::move(range));
  }
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const Range& a, const Range& b) { return a.q > b.q; });
  for (auto& range : ranges)
    for (auto* offer : offers) {
      std::string_view o = offer;
      auto type = o.substr(0, o.find('/')), subtype = o.substr(o.find('/') + 1);
      if ((range.type == "*" || http::iequals(range.type, type)) &&
          (range.subtype == "*" || http::iequals(range.subtype, subtype)))
        return offer;
    }
  return {};
}

std::string py_json(const json::value& v) {
  std::string out;
  py_dump(out, v);
  return out;
}

std::string result_body(const std::string& format, const json::object& fields,
                        const std::vector<std::pair<std::string, std::string>>& errors,
                        const std::string& root) {
  if (format == "application/json") {
    json::object all = fields;
    json::array list;
    for (auto& [name, status] : errors)
      list.push_back(json::array{json::string(name), json::string(status)});
    all["Errors"] = std::move(list);
    return py_json(all);
  }
  std::vector<std::string> keys;
  for (auto& kv : fields) keys.emplace_back(kv.key());
  std::sort(keys.begin(), keys.end());
  std::string out;
  if (format.ends_with("/xml")) {
    out = "<" + root + ">\n";
    for (auto& key : keys) {
      std::string tag = key;
      for (auto& c : tag)
        c = c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += "<" + tag + ">" + escape_text(text_of(fields.at(key))) + "</" + tag + ">\n";
    }
    out += "<errors>\n";
    for (auto& [name, status] : errors)
      out += "<object><name>" + escape_text(name) + "</name><status>" + escape_text(status) +
             "</status></object>\n";
    out += "</errors>\n</" + root + ">\n";
    return out;
  }
  for (auto& key : keys) out += key + ": " + text_of(fields.at(key)) + "\n";
  out += "Errors:\n";
  for (auto& [name, status] : errors) out += name + ", " + status + "\n";
  return out;
}

http::Response delete_items(Request& q, const std::vector<Item>& items, const std::string& format) {
  json::object fields{{"Response Status", status_line(200)},
                      {"Response Body", ""},
                      {"Number Deleted", 0},
                      {"Number Not Found", 0}};
  std::vector<std::pair<std::string, std::string>> failed;
  std::int64_t deleted = 0, not_found = 0;
  int failed_status = 400;
  try {
    if (format.empty()) throw swift_error(406);
    for (bool objects : {true, false}) {
      for (auto& item : items) {
        if (item.name.empty()) continue;
        auto inner = item.name;
        while (!inner.empty() && inner.front() == '/') inner.erase(0, 1);
        while (!inner.empty() && inner.back() == '/') inner.pop_back();
        if ((inner.find('/') != std::string::npos) != objects) continue;
        auto quoted = encode_path(item.name);
        if (item.error) {
          if (item.error->first == 404)
            ++not_found;
          else
            failed.emplace_back(quoted, item.error->second);
          continue;
        }
        auto path = path_in_account(q.path.account, item.name);
        if (!path || !http::valid_utf8(item.name)) {
          failed.emplace_back(quoted, status_line(412));
          continue;
        }
        SubRequest del(q, "DELETE", *path);
        int status = status_of(
            [&] { return path->has_object ? object_write(del.q()) : container_request(del.q()); });
        if (status / 100 == 2) {
          ++deleted;
        } else if (status == 404) {
          ++not_found;
        } else if (status == 401) {
          failed.emplace_back(quoted, status_line(401));
        } else {
          if (status / 100 == 5) failed_status = 502;
          failed.emplace_back(quoted, status_line(status));
        }
        if (failed.size() >= kMaxFailedDeletes)
          throw swift_error(400, "Max delete failures exceeded");
      }
    }
    if (!failed.empty()) {
      fields["Response Status"] = status_line(failed_status);
    } else if (deleted == 0 && not_found == 0) {
      fields["Response Status"] = status_line(400);
      fields["Response Body"] = "Invalid bulk delete.";
    }
  } catch (const ApiError& e) {
    fields["Response Status"] = status_line(e.status());
    fields["Response Body"] = render_swift_error(e).body;
  }
  fields["Number Deleted"] = deleted;
  fields["Number Not Found"] = not_found;
  return result(format,
                result_body(format.empty() ? "text/plain" : format, fields, failed, "delete"));
}

http::Response bulk_delete(Request& q) {
  auto format = response_format(q.r());
  std::vector<Item> items;
  try {
    if (q.path.has_object) throw swift_error(404);
    auto type = q.r().headers.get_or("Content-Type");
    if (!type.empty() && !type.starts_with("text/plain")) throw swift_error(406);
    std::string_view body = q.r().body;
    while (!body.empty()) {
      auto newline = body.find('\n');
      auto line = body.substr(0, newline);
      body = newline == std::string_view::npos ? std::string_view() : body.substr(newline + 1);
      if (line.size() > kMaxPathLength * 2) throw swift_error(400, "Invalid File Name");
      auto name = unquote(trim(line));
      if (!name.empty()) items.push_back({name, std::nullopt});
      if (items.size() > kMaxDeletes)
        throw swift_error(413,
                          "Maximum Bulk Deletes: " + std::to_string(kMaxDeletes) + " per request");
    }
  } catch (const ApiError& e) {
    json::object fields{{"Response Status", status_line(e.status())},
                        {"Response Body", render_swift_error(e).body},
                        {"Number Deleted", 0},
                        {"Number Not Found", 0}};
    return result(format,
                  result_body(format.empty() ? "text/plain" : format, fields, {}, "delete"));
  }
  return delete_items(q, items, format);
}

namespace {

// Unpacks an archive as it arrives: each regular file becomes an object PUT streamed from the
// archive; containers are created on first use.
class ExtractSink : public http::BodySink {
 public:
  ExtractSink(const Request& q, std::string compression, std::string base, std::string format)
      : held_(std::make_unique<HeldRequest>(q)),
        base_(std::move(base)),
        format_(std::move(format)),
        tar_(std::move(compression),
             TarReader::Handler{[this](const TarEntry& e) { begin(e); },
                                [this](std::string_view d) { data(d); }, [this] { end(); }}) {}
  void write(std::string_view chunk) override {
    if (stopped_) return;
    try {
      tar_.write(chunk);
    } catch (const TarError& e) {
      stop(400, std::string("Invalid Tar File: ") + e.what());
    } catch (const ApiError& e) {
      stop(e.status(), render_swift_error(e).body);
    }
  }
  http::Response finish() override {
    if (!stopped_) try {
        tar_.finish();
      } catch (const TarError& e) {
        stop(400, std::string("Invalid Tar File: ") + e.what());
      } catch (const ApiError& e) {
        stop(e.status(), render_swift_error(e).body);
      }
    if (!stopped_) {
      if (!failed_.empty())
        status_ = status_line(failed_status_);
      else if (created_ == 0) {
        status_ = status_line(400);
        body_ = "Invalid Tar File: No Valid Files";
      }
    }
    json::object fields{
        {"Response Status", status_}, {"Response Body", body_}, {"Number Files Created", created_}};
    return result(
        format_, result_body(format_.empty() ? "text/plain" : format_, fields, failed_, "extract"));
  }
  void abort() noexcept override {
    if (sink_) sink_->abort();
  }

 private:
  void stop(int status, std::string body) {
    if (sink_) sink_->abort();
    sink_.reset();
    stopped_ = true;
    status_ = status_line(status);
    body_ = std::move(body);
  }
  void fail(const std::string& name, std::string status) {
    failed_.emplace_back(encode_path(name.substr(0, kMaxPathLength)), std::move(status));
  }
  // HEAD, then PUT when missing: the container's status line when neither works.
  std::optional<std::pair<int, std::string>> create_container(const std::string& container) {
    auto& q = held_->q();
    auto path = object_path(q.path.account, container, "");
    SubRequest head(q, "HEAD", path);
    int status = status_of([&] { return container_request(head.q()); });
    if (status / 100 == 2) return std::nullopt;
    if (status == 404) {
      SubRequest put(q, "PUT", path);
      status = status_of([&] { return container_request(put.q()); });
      if (status / 100 == 2) {
        if (++containers_created_ > kMaxContainers)
          throw swift_error(400, "More than " + std::to_string(kMaxContainers) +
                                     " containers to create from tar.");
        return std::nullopt;
      }
    }
    return std::pair(status, status_line(status));
  }
  void begin(const TarEntry& entry) {
    if (!entry.regular || failed_.size() >= kMaxFailedExtractions) return;
    auto& q = held_->q();
    std::string name = entry.name;
    if (name.starts_with("./")) name.erase(0, 2);
    while (!name.empty() && name.front() == '/') name.erase(0, 1);
    if (!base_.empty()) name = base_ + "/" + name;
    auto slash = name.find('/');
    if (slash == std::string::npos) return;  // files at the base level are not objects
    auto container = name.substr(0, slash);
    name_ = name;
    if (!http::valid_utf8(name)) {
      fail(name, status_line(412));
      return;
    }
    if (entry.size > q.proxy.settings.max_file_size) {
      fail(name, status_line(413));
      return;
    }
    container_failure_.reset();
    if (!accessed_.count(container)) {
      if (auto failure = create_container(container)) {
        container_failure_ = std::pair(
            encode_path(("/v1/" + q.path.account + "/" + container).substr(0, kMaxPathLength)),
            failure->second);
        if (failure->first == 401) throw swift_error(401);
      }
    }
    container_ = container;
    http::Headers headers;
    headers.set("Content-Length", std::to_string(entry.size));
    for (auto& [k, v] : q.r().headers.all())
      if (http::iequals(k, "X-Delete-At") || http::iequals(k, "X-Delete-After") ||
          (k.size() > 14 && http::iequals(std::string_view(k).substr(0, 14), "X-Object-Meta-")))
        headers.set(k, v);
    for (auto& [key, value] : entry.pax) {
      if (key == "SCHILY.xattr.user.mime_type" || key == "LIBARCHIVE.xattr.user.mime_type")
        headers.set("Content-Type", value);
      for (auto* prefix : {"SCHILY.xattr.user.meta.", "LIBARCHIVE.xattr.user.meta."})
        if (key.starts_with(prefix))
          headers.set("X-Object-Meta-" + key.substr(std::string_view(prefix).size()), value);
    }
    auto path = object_path(q.path.account, container, name.substr(slash + 1));
    sub_ = std::make_unique<SubRequest>(q, "PUT", path, std::move(headers));
    active_ = true;
    try {
      sink_ = object_put(sub_->q());
    } catch (const ApiError& e) {
      put_status_ = e.status();
    }
  }
  void data(std::string_view bytes) {
    if (!sink_) return;
    try {
      sink_->write(bytes);
    } catch (const ApiError& e) {
      sink_->abort();
      sink_.reset();
      put_status_ = e.status();
    }
  }
  void end() {
    if (!active_) return;
    active_ = false;
    int status = put_status_;
    put_status_ = 0;
    if (sink_) {
      try {
        status = sink_->finish().status;
      } catch (const ApiError& e) {
        sink_->abort();
        status = e.status();
      }
      sink_.reset();
    }
    sub_.reset();
    accessed_.insert(container_);
    if (status / 100 == 2) {
      ++created_;
      return;
    }
    if (container_failure_) failed_.push_back(*container_failure_);
    if (status == 401) {
      fail(name_, status_line(401));
      throw swift_error(401);
    }
    if (status / 100 == 5) failed_status_ = 502;
    fail(name_, status_line(status));
  }

  std::unique_ptr<HeldRequest> held_;
  std::string base_, format_;
  TarReader tar_;
  std::unique_ptr<SubRequest> sub_;
  std::unique_ptr<http::BodySink> sink_;
  bool active_ = false, stopped_ = false;
  int put_status_ = 0, failed_status_ = 400;
  std::string name_, container_;
  std::optional<std::pair<std::string, std::string>> container_failure_;
  std::set<std::string> accessed_;
  size_t containers_created_ = 0;
  std::int64_t created_ = 0;
  std::vector<std::pair<std::string, std::string>> failed_;
  std::string status_ = status_line(201), body_;
};

// Drops a body after an answer decided before it arrived (406, 411).
class AnswerSink : public http::BodySink {
 public:
  explicit AnswerSink(http::Response r) : r_(std::move(r)) {}
  void write(std::string_view) override {}
  http::Response finish() override { return std::move(r_); }

 private:
  http::Response r_;
};

}  // namespace

std::unique_ptr<http::BodySink> extract_archive(Request& q) {
  auto kind = q.r().query_param("extract-archive").value_or("");
  for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!kind.empty() && kind.front() == '.') kind.erase(0, 1);
  while (!kind.empty() && kind.back() == '.') kind.pop_back();
  std::string compression;
  if (kind == "tar.gz")
    compression = "gz";
  else if (kind == "tar.bz2")
    compression = "bz2";
  else if (kind != "tar")
    throw swift_error(400, "Unsupported archive format");
  auto format = response_format(q.r());
  auto answer = [&](int status) {
    auto e = swift_error(status);
    json::object fields{{"Response Status", status_line(status)},
                        {"Response Body", render_swift_error(e).body},
                        {"Number Files Created", 0}};
    return std::make_unique<AnswerSink>(
        result(format, result_body(format.empty() ? "text/plain" : format, fields, {}, "extract")));
  };
  if (format.empty()) return answer(406);
  if (!q.r().headers.get("Content-Length") &&
      !http::iequals(q.r().headers.get_or("Transfer-Encoding"), "chunked"))
    return answer(411);
  std::string base;
  if (q.path.has_container) {
    base = q.path.container;
    if (q.path.has_object) base += "/" + q.path.object;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return std::make_unique<ExtractSink>(q, compression, base, format);
}

}  // namespace nubo::object::proxy::bulk
