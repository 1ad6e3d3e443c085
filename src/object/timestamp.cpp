#include "object/timestamp.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace nubo::object {

Timestamp Timestamp::now() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return Timestamp{us / 10, 0};
}

std::optional<Timestamp> Timestamp::parse(std::string_view s) {
  Timestamp t;
  auto underscore = s.find('_');
  auto number = s.substr(0, underscore);
  if (underscore != std::string_view::npos) {
    auto hex = s.substr(underscore + 1);
    if (hex.empty() || hex.size() > 16) return std::nullopt;
    std::int64_t v = 0;
    for (char c : hex) {
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    t.offset = v;
  }
  if (number.empty()) return std::nullopt;
  std::int64_t whole = 0, frac = 0;
  int frac_digits = 0;
  bool dot = false;
  for (char c : number) {
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (!dot) {
      whole = whole * 10 + (c - '0');
      if (whole >= 10000000000) return std::nullopt;
    } else if (frac_digits < 6) {
      frac = frac * 10 + (c - '0');
      ++frac_digits;
    }
  }
  while (frac_digits < 6) {
    frac *= 10;
    ++frac_digits;
  }
  // Rounded to 10 µs, as Swift's Timestamp does.
  t.raw = whole * 100000 + (frac + 5) / 10;
  return t;
}

std::string Timestamp::normal() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%010lld.%05lld", static_cast<long long>(raw / 100000),
                static_cast<long long>(raw % 100000));
  return buf;
}

std::string Timestamp::internal() const {
  if (!offset) return normal();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_%016llx", normal().c_str(),
                static_cast<unsigned long long>(offset));
  return buf;
}

std::string http_date(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string iso_microseconds(const Timestamp& t) {
  std::time_t secs = static_cast<std::time_t>(t.raw / 100000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lld", static_cast<long long>(t.raw % 100000) * 10);
  return buf;
}

}  // namespace nubo::object
