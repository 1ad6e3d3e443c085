#include "common/ids.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <stdexcept>

namespace nubo {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string uuid4_hex() {
  auto b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  return hex_encode(b);
}

std::string uuid4_request_hex() {
  thread_local std::mt19937_64 generator = [] {
    auto seed = random_bytes(32);
    std::seed_seq seq(seed.begin(), seed.end());
    return std::mt19937_64(seq);
  }();
  std::string b(16, '\0');
  auto first = generator(), second = generator();
  std::memcpy(b.data(), &first, 8);
  std::memcpy(b.data() + 8, &second, 8);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  return hex_encode(b);
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

namespace {
std::string dashed(const std::string& h) {
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}
}  // namespace

std::string uuid4() { return dashed(uuid4_hex()); }
std::string uuid4_request() { return dashed(uuid4_request_hex()); }

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64url_encode(std::string_view bytes, bool pad) {
  auto s = base64_encode(bytes);
  for (auto& c : s) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  if (!pad)
    while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  if (padding > 2) return std::nullopt;
  for (size_t i = 0; i + padding < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (!std::isalnum(c) && c != '+' && c != '/') return std::nullopt;
  }
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // At most two '=' of padding, only at the end.
  size_t padding = 0;
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
    if (++padding > 2) return std::nullopt;
  }
  if (text.size() % 4 == 1) return std::nullopt;
  std::string s(text);
  for (auto& c : s) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (!std::isalnum(static_cast<unsigned char>(c)))
      return std::nullopt;
  }
  size_t decoded = s.size() / 4 * 3 + (s.size() % 4 == 0 ? 0 : s.size() % 4 - 1);
  while (s.size() % 4) s += '=';
  std::string out(s.size() / 4 * 3 + 1, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0 || static_cast<size_t>(n) < decoded) return std::nullopt;
  out.resize(decoded);
  return out;
}

std::string iso8601(TimePoint t, bool microseconds, bool zulu) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  if (secs > t) secs -= std::chrono::seconds(1);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (microseconds) {
    char frac[32];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
    out += frac;
  }
  if (zulu) out += "Z";
  return out;
}

std::optional<TimePoint> parse_iso8601(std::string_view s) {
  std::tm tm{};
  int year, mon, day, hour = 0, min = 0, sec = 0;
  std::string str(s);
  int consumed = 0;
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
                  &consumed) < 6) {
    consumed = 0;
    if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &year, &mon, &day, &consumed) < 3 ||
        static_cast<size_t>(consumed) != str.size())
      return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
  std::string_view rest = std::string_view(str).substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    long long frac = 0, scale = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) {
      if (scale < 1000000) {
        frac = frac * 10 + (rest[i] - '0');
        scale *= 10;
      }
      ++i;
    }
    if (i == 1) return std::nullopt;
    t += std::chrono::microseconds(frac * (1000000 / scale));
    rest = rest.substr(i);
  }
  if (rest == "Z" || rest.empty() || rest == "+00:00" || rest == "+0000") return t;
  if ((rest[0] == '+' || rest[0] == '-') && rest.size() >= 5) {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) < 1)
      return std::nullopt;
    auto offset = std::chrono::hours(oh) + std::chrono::minutes(om);
    return rest[0] == '+' ? t - offset : t + offset;
  }
  return std::nullopt;
}

double to_unix(TimePoint t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

TimePoint from_unix(double seconds) {
  auto us = std::chrono::round<std::chrono::microseconds>(std::chrono::duration<double>(seconds));
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(us));
}

}  // namespace nubo
