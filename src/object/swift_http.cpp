#include "object/swift_http.hpp"

#include <cctype>
#include <charconv>

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

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(std::string_view header,
                                                                   std::uint64_t size,
                                                                   bool& unsatisfiable) {
  unsatisfiable = false;
  std::string spec;
  for (char c : header)
    if (c != ' ') spec += c;
  if (!spec.starts_with("bytes=")) return std::nullopt;
  spec.erase(0, 6);
  if (spec.find(',') != std::string::npos) return std::nullopt;
  auto dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto a = std::string_view(spec).substr(0, dash), b = std::string_view(spec).substr(dash + 1);
  auto number = [](std::string_view v, std::uint64_t& n) {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc() && ptr == v.data() + v.size();
  };
  std::uint64_t first = 0, last = 0;
  if (a.empty()) {
    std::uint64_t n = 0;
    if (b.empty() || !number(b, n)) return std::nullopt;
    if (n == 0 || size == 0) {
      unsatisfiable = size != 0;
      return std::nullopt;
    }
    first = n >= size ? 0 : size - n;
    last = size - 1;
  } else {
    if (!number(a, first)) return std::nullopt;
    if (b.empty()) {
      last = size ? size - 1 : 0;
    } else if (!number(b, last) || last < first) {
      return std::nullopt;
    }
    if (first >= size) {
      unsatisfiable = true;
      return std::nullopt;
    }
    last = std::min(last, size - 1);
  }
  return std::pair(first, last);
}

}  // namespace nubo::object
