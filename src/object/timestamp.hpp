// Swift's timestamps: 10 µs resolution, "normal" form %016.05f, "internal" form with an offset
// (_%016x) for internal rewrites; the fixed width makes string order time order.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nubo::object {

struct Timestamp {
  std::int64_t raw = 0;     // units of 10 µs since the epoch
  std::int64_t offset = 0;  // internal rewrites at the same time sort after

  static Timestamp now();
  // "1402464677.04188", "1402464677.04188_0000000000000001", "1402464677" (HTTP X-Timestamp).
  static std::optional<Timestamp> parse(std::string_view s);
  std::string normal() const;
  std::string internal() const;
  double seconds() const { return static_cast<double>(raw) / 100000.0; }
  std::int64_t ceil_seconds() const { return (raw + 99999) / 100000; }
  auto operator<=>(const Timestamp&) const = default;
};

// RFC 1123 date of whole seconds ("Thu, 01 Jan 1970 00:00:00 GMT").
std::string http_date(std::int64_t seconds);
// "2026-11-22T17:30:13.123450" (listings' last_modified: 6 digits, UTC, no zone).
std::string iso_microseconds(const Timestamp& t);

}  // namespace nubo::object
