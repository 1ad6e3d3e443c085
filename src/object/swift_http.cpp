#include "object/swift_http.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

#include "common/ids.hpp"

namespace nubo::object {

namespace {
struct Explained {
  int status;
  const char* title;
  const char* explanation;
};
constexpr Explained kStatuses[] = {
    {200, "OK", ""},
    {201, "Created", ""},
    {202, "Accepted", "The request is accepted for processing."},
    {204, "No Content", ""},
    {206, "Partial Content", ""},
    {304, "Not Modified", ""},
    {400, "Bad Request",
     "The server could not comply with the request since it is either malformed or otherwise "
     "incorrect."},
    {401, "Unauthorized",
     "This server could not verify that you are authorized to access the document you "
     "requested."},
    {403, "Forbidden", "Access was denied to this resource."},
    {404, "Not Found", "The resource could not be found."},
    {405, "Method Not Allowed", "The method is not allowed for this resource."},
    {406, "Not Acceptable",
     "The resource is not available in a format acceptable to your browser."},
    {408, "Request Timeout",
     "The server has waited too long for the request to be sent by the "
     "client."},
    {409, "Conflict", "There was a conflict when trying to complete your request."},
    {411, "Length Required", "Content-Length header required."},
    {412, "Precondition Failed", "A precondition for this request was not met."},
    {413, "Request Entity Too Large", "The body of your request was too large for this server."},
    {416, "Requested Range Not Satisfiable", "The Range requested is not available."},
    {422, "Unprocessable Entity", "Unable to process the contained instructions"},
    {499, "Client Disconnect", "The client was disconnected during request."},
    {500, "Internal Error",
     "The server has either erred or is incapable of performing the requested operation."},
    {501, "Not Implemented", "The server could not complete the request."},
    {503, "Service Unavailable",
     "The server is currently unavailable. Please try again at a later time."},
    {507, "Insufficient Storage", "There was not enough space to save the resource. Drive: "},
};
const Explained* find_status(int status) {
  for (auto& s : kStatuses)
    if (s.status == status) return &s;
  return nullptr;
}
}  // namespace

const char* status_title(int status) {
  auto* s = find_status(status);
  return s ? s->title : "Unknown";
}

ApiError swift_error(int status, std::string body) {
  return ApiError(status, std::move(body), "explicit");
}

http::Response render_swift_error(const ApiError& e) {
  http::Response r;
  r.status = e.status();
  r.headers.set("Content-Type", "text/html; charset=UTF-8");
  std::string message = e.what();
  bool explicit_body = e.type() == "explicit" && !message.empty();
  if (explicit_body) {
    r.body = message;
  } else if (auto* s = find_status(e.status()); s && *s->explanation) {
    r.body = std::string("<html><h1>") + s->title + "</h1><p>" + s->explanation + "</p></html>";
  }
  return r;
}

std::string title_case(std::string_view name) {
  std::string out(name);
  bool start = true;
  for (auto& c : out) {
    if (c == '_') c = '-';
    c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
    start = c == '-';
  }
  return out;
}

bool is_object_system_header(std::string_view name) {
  for (auto* h :
       {"Content-Disposition", "Content-Encoding", "X-Delete-At", "X-Object-Manifest",
        "X-Static-Large-Object", "Cache-Control", "Content-Language", "Expires", "X-Robots-Tag"})
    if (http::iequals(name, h)) return true;
  return false;
}

std::vector<ByteRange> parse_ranges(std::string_view header, std::uint64_t size,
                                    bool& unsatisfiable) {
  unsatisfiable = false;
  std::string spec;
  for (char c : header)
    if (c != ' ') spec += c;
  if (spec.size() < 6 || !http::iequals(std::string_view(spec).substr(0, 6), "bytes=")) return {};
  auto number = [](std::string_view v, std::uint64_t& n) {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc() && ptr == v.data() + v.size();
  };
  // Half-open [begin, end) as swob keeps them; any malformed item voids the whole header.
  std::vector<ByteRange> out;
  bool empty_object_suffix = false;
  std::string_view rest = std::string_view(spec).substr(6);
  for (;;) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    auto dash = item.find('-');
    if (dash == std::string_view::npos) return {};
    auto a = item.substr(0, dash), b = item.substr(dash + 1);
    std::uint64_t begin = 0, end = 0;
    if (a.empty()) {
      if (b.empty() || !number(b, end)) return {};
      if (end > 0) {
        out.emplace_back(end > size ? 0 : size - end, size);
        if (size == 0) empty_object_suffix = true;
      }
    } else {
      if (!number(a, begin)) return {};
      if (!b.empty() && (!number(b, end) || end < begin)) return {};
      if (begin < size) out.emplace_back(begin, b.empty() ? size : std::min(end + 1, size));
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  auto refused = [&] {
    if (out.empty() || out.size() > 50) return true;
    int overlaps = 0;
    for (size_t i = 0; i < out.size(); ++i)
      for (size_t j = i + 1; j < out.size(); ++j) {
        auto [s1, e1] = out[i];
        auto [s2, e2] = out[j];
        if ((s1 < s2 && s2 < e1) || (s1 < e2 && e2 < e1) || (s2 < s1 && s1 < e2) ||
            (s2 < e1 && e1 < e2))
          if (++overlaps > 2) return true;
      }
    return out.size() >= 8 && !std::is_sorted(out.begin(), out.end());
  };
  if (refused()) {
    unsatisfiable = true;
    return {};
  }
  // A suffix range on an empty object: swob answers the whole (it has no range to name).
  if (size == 0 && empty_object_suffix) return {};
  for (auto& [first, last] : out) last -= 1;  // inclusive from here on
  return out;
}

ByteRangesSource::ByteRangesSource(std::vector<ByteRange> ranges, std::uint64_t size,
                                   std::string content_type, Opener open)
    : ranges_(std::move(ranges)),
      size_(size),
      type_(std::move(content_type)),
      boundary_(hex_encode(random_bytes(16))),
      open_(std::move(open)) {}

std::string ByteRangesSource::head(std::size_t i) const {
  return "--" + boundary_ + "\r\nContent-Type: " + type_ + "\r\nContent-Range: bytes " +
         std::to_string(ranges_[i].first) + "-" + std::to_string(ranges_[i].second) + "/" +
         std::to_string(size_) + "\r\n\r\n";
}

std::uint64_t ByteRangesSource::content_length() const {
  std::uint64_t n = 2 + boundary_.size() + 2;  // the closing "--B--"
  for (std::size_t i = 0; i < ranges_.size(); ++i)
    n += head(i).size() + (ranges_[i].second - ranges_[i].first + 1) + 2;
  return n;
}

std::string ByteRangesSource::next(size_t max_bytes) {
  for (;;) {
    switch (stage_) {
      case kDone:
        return {};
      case kHead:
        if (part_ == ranges_.size()) {
          stage_ = kDone;
          return "--" + boundary_ + "--";
        }
        body_ = open_(ranges_[part_]);
        left_ = ranges_[part_].second - ranges_[part_].first + 1;
        stage_ = kBody;
        return head(part_);
      case kBody: {
        if (left_ == 0) {
          body_.reset();
          stage_ = kTrailer;
          continue;
        }
        auto chunk = body_->next(static_cast<size_t>(std::min<std::uint64_t>(max_bytes, left_)));
        if (chunk.empty()) throw std::runtime_error("a range's bytes ended early");
        if (chunk.size() > left_) chunk.resize(static_cast<size_t>(left_));
        left_ -= chunk.size();
        return chunk;
      }
      case kTrailer:
        ++part_;
        stage_ = kHead;
        return "\r\n";
    }
  }
}

std::shared_ptr<http::BodySource> answer_range(http::Response& out, std::string_view range,
                                               std::uint64_t size,
                                               const ByteRangesSource::Opener& open) {
  bool unsatisfiable = false;
  auto ranges = parse_ranges(range, size, unsatisfiable);
  if (unsatisfiable) {
    auto e = swift_error(416);
    e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    throw e;
  }
  if (ranges.empty()) {
    out.headers.set("Content-Length", std::to_string(size));
    return nullptr;
  }
  out.status = 206;
  if (ranges.size() == 1) {
    auto [first, last] = ranges[0];
    out.headers.set("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                         "/" + std::to_string(size));
    out.headers.set("Content-Length", std::to_string(last - first + 1));
    return open(ranges[0]);
  }
  auto source = std::make_shared<ByteRangesSource>(
      std::move(ranges), size,
      std::string(out.headers.get_or("Content-Type", "application/octet-stream")), open);
  out.headers.set("Content-Type", source->content_type());
  out.headers.set("Content-Length", std::to_string(source->content_length()));
  return source;
}

}  // namespace nubo::object
