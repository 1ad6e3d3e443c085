// Objects assembled from segments (DLO and SLO): the pieces one is made of, conditional and
// Range requests answered on the assembled whole, and its bytes streamed piece by piece.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "object/proxy/core.hpp"

namespace nubo::object::proxy {

// Bytes [first, first + length) of a segment object, or inline bytes (SLO data segments).
struct Piece {
  SwiftPath path;
  std::uint64_t first = 0, length = 0;
  std::uint64_t segment_size = 0;  // the whole segment object's
  std::string etag;                // the segment's ETag when read whole (empty: not checked)
  std::optional<std::string> data;
};

// A DLO's pieces: the objects named <container>/<prefix>* in listing order; etag: the md5 of
// their ETags.
std::vector<Piece> dlo_pieces(Request& q, std::string_view manifest, std::string& etag);

// Answers a GET or HEAD of an assembled object: `out` carries the manifest's headers; etag is
// unquoted. Conditionals use that ETag and the manifest's Last-Modified; a Range selects from
// the whole, several ranges (multipart/byteranges) only when several_ranges (SLO, not DLO).
http::Response assembled(Request& q, http::Response out, std::vector<Piece> pieces,
                         const std::string& etag, bool several_ranges);

}  // namespace nubo::object::proxy
