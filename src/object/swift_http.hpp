// Swift's HTTP dialect shared by the proxy and the storage servers: error bodies as swob renders
// them, the headers an object keeps, and header-name normalisation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/http/message.hpp"

namespace nubo::object {

// "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>" (text/html), or the
// error's own message when it carries one (ApiError with type "explicit").
http::Response render_swift_error(const ApiError& e);
// An error whose message is the response body as given.
ApiError swift_error(int status, std::string body = {});
const char* status_title(int status);

// "x-object-meta-foo_bar" → "X-Object-Meta-Foo-Bar" (Swift title-cases stored metadata names).
std::string title_case(std::string_view name);
// Headers an object stores besides its user metadata (Swift's allowed_headers and the
// large-object markers).
bool is_object_system_header(std::string_view name);

// A Range header ("bytes=a-b,c-,-n", spaces ignored) on an object of `size` bytes, as swob's
// Range.ranges_for_length takes it: the first and last byte of each satisfiable range, in the
// client's order. Empty means the whole object (no header, a malformed one, a suffix range on an
// empty object), or 416 when `unsatisfiable` is set: no range matches a byte, or the set is one
// swob refuses (more than 50 ranges, more than 2 overlapping pairs, 8 or more out of order).
using ByteRange = std::pair<std::uint64_t, std::uint64_t>;
std::vector<ByteRange> parse_ranges(std::string_view header, std::uint64_t size,
                                    bool& unsatisfiable);

// A 206 answer's body for several ranges: multipart/byteranges as swob frames it (each part
// "--B\r\nContent-Type: T\r\nContent-Range: bytes a-b/size\r\n\r\n<bytes>\r\n", then "--B--"),
// each part's bytes read from the source `open` returns for it when it is reached.
class ByteRangesSource : public http::BodySource {
 public:
  using Opener = std::function<std::shared_ptr<http::BodySource>(const ByteRange&)>;
  ByteRangesSource(std::vector<ByteRange> ranges, std::uint64_t size, std::string content_type,
                   Opener open);
  // Content-Type and Content-Length of the whole answer.
  std::string content_type() const { return "multipart/byteranges;boundary=" + boundary_; }
  std::uint64_t content_length() const;
  std::string next(size_t max_bytes) override;

 private:
  std::string head(std::size_t i) const;
  std::vector<ByteRange> ranges_;
  std::uint64_t size_;
  std::string type_, boundary_;
  Opener open_;
  std::size_t part_ = 0;
  enum { kHead, kBody, kTrailer, kDone } stage_ = kHead;
  std::shared_ptr<http::BodySource> body_;
  std::uint64_t left_ = 0;
};

// Answers `out` (the object's headers, status 200) for a Range header on `size` bytes: a single
// range as 206 with Content-Range, several as multipart/byteranges (open gives a range's bytes);
// 416 thrown when unsatisfiable. Sets Content-Length and returns the body's source, or nullptr
// when the answer is the whole object.
std::shared_ptr<http::BodySource> answer_range(http::Response& out, std::string_view range,
                                               std::uint64_t size,
                                               const ByteRangesSource::Opener& open);

}  // namespace nubo::object
