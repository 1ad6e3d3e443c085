// JSON for request and response bodies: Boost.JSON plus small typed accessors.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nubo {
namespace json = boost::json;

// Typed field accessors that raise BadRequest (via the caller's error type) are in
// validate.hpp; these only read, returning nullopt when absent or of another type.
inline const json::value* find(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}
inline std::optional<std::string> get_string(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}
inline std::string string_or(const json::object& o, std::string_view key,
                             std::string_view fallback = {}) {
  auto s = get_string(o, key);
  return s ? *s : std::string(fallback);
}
inline std::optional<bool> get_bool(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->as_bool();
}
inline bool bool_or(const json::object& o, std::string_view key, bool fallback) {
  auto b = get_bool(o, key);
  return b ? *b : fallback;
}
inline std::int64_t int_or(const json::object& o, std::string_view key, std::int64_t fallback = 0) {
  auto* v = find(o, key);
  return v && v->is_int64() ? v->as_int64() : fallback;
}
inline std::string to_string(const json::value& v) { return json::serialize(v); }

}  // namespace nubo
