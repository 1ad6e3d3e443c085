// Identifiers and time: UUID4 strings, random bytes, UTC ISO-8601 as OpenStack renders it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nubo {

std::string random_bytes(size_t n);
std::string uuid4();      // 8-4-4-4-12
std::string uuid4_hex();  // 32 hex digits, as Keystone's ids
// A uuid4 for request and transaction ids, which must be unique but need not be unpredictable:
// from a per-thread generator seeded once from RAND_bytes, sparing every request the shared
// CSPRNG (its locks were 5% of an object HEAD). Never for tokens, keys or resource ids.
std::string uuid4_request_hex();
std::string uuid4_request();  // the same, 8-4-4-4-12
// Whether the text is a uuid in its 8-4-4-4-12 form (any case).
bool is_uuid(std::string_view text);
std::string hex_encode(std::string_view bytes);
std::string base64url_encode(std::string_view bytes, bool pad = false);
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);
// Standard base64 with its padding, strictly (Python's b64decode(validate=True)); nullopt when
// malformed.
std::optional<std::string> base64_decode(std::string_view text);

using TimePoint = std::chrono::system_clock::time_point;

// A clock passed to whatever reads the time, so tests can move it.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const { return std::chrono::system_clock::now(); }
};

// "2026-11-21T11:38:39.000000Z" (micro) or "2026-11-21T11:38:39Z" (seconds)
std::string iso8601(TimePoint t, bool microseconds = true, bool zulu = true);
// Parses ISO-8601 with optional fraction and Z / +00:00 offset; nullopt if malformed.
std::optional<TimePoint> parse_iso8601(std::string_view s);
double to_unix(TimePoint t);
TimePoint from_unix(double seconds);

}  // namespace nubo
