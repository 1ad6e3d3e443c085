// HTTP request and response values passed between the server and services (no Beast types).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nubo::http {

bool iequals(std::string_view a, std::string_view b);

class Headers {
 public:
  std::optional<std::string_view> get(std::string_view name) const;
  std::string get_or(std::string_view name, std::string_view fallback = {}) const;
  void set(std::string name, std::string value);
  void add(std::string name, std::string value);
  void remove(std::string_view name);
  const std::vector<std::pair<std::string, std::string>>& all() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct Request {
  std::string method;
  std::string target;                             // raw request target: path and query
  std::string path;                               // percent-decoded path
  std::multimap<std::string, std::string> query;  // decoded query parameters, in order
  Headers headers;
  std::string body;
  std::string remote_address;

  std::optional<std::string> query_param(std::string_view name) const;
  bool has_query(std::string_view name) const {
    return query.find(std::string(name)) != query.end();
  }
};

// A response body produced while it is sent (downloads): memory stays flat whatever the size.
// next() runs on the worker pool; an empty string ends the body.
class BodySource {
 public:
  // Bytes of an open file that make up the rest of the body, for the server to send with
  // sendfile(2) instead of next() when the connection is plain TCP.
  struct FileSpan {
    int fd;
    std::uint64_t offset, length;
  };
  virtual ~BodySource() = default;
  virtual std::string next(size_t max_bytes) = 0;
  virtual std::optional<FileSpan> file_span() { return std::nullopt; }
};

// A request body consumed while it arrives (uploads). write() runs on the worker pool for each
// chunk, in order; finish() after the last one gives the response; abort() when the client
// goes away or the body is malformed, so that nothing half-written survives.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void write(std::string_view chunk) = 0;
  virtual struct Response finish() = 0;
  virtual void abort() noexcept {}
  // For a sender in this process that hashes the body itself (once, where several sinks take the
  // same bytes): true when this sink will take that md5 instead of hashing (asked before the
  // first write); the sender then hands it over with sender_md5() before finish().
  virtual bool take_sender_md5() { return false; }
  virtual void sender_md5(std::string_view /*hex*/) {}
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is streamed from it (with Content-Length when the handler sets the header,
  // chunked otherwise) and `body` is ignored.
  std::shared_ptr<BodySource> stream;
  // HEAD responses keep Content-Length of the GET body but send no body.
  std::optional<size_t> content_length_override;
};

// How a streamed upload starts: a sink to feed the body into, or a response to send at once
// (authentication, policy or validation failed) without reading the body.
struct UploadStart {
  std::unique_ptr<BodySink> sink;
  std::optional<Response> response;
};

// Splits and percent-decodes a request target into path and query parameters.
void parse_target(Request& request);
// &, <, > (and ", ' when asked) as entities, for text inside HTML or XML.
std::string escape_markup(std::string_view s, bool quotes = true, bool apostrophes = false);
// Every byte but letters, digits, "-_.~" and the `safe` ones as %XX (Python's urllib.quote).
std::string percent_encode(std::string_view s, std::string_view safe = {});
// Well-formed UTF-8: no stray continuation bytes, overlong forms, surrogates or code points past
// U+10FFFF.
bool valid_utf8(std::string_view s);

}  // namespace nubo::http
