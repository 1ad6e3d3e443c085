// A minimal MessagePack codec for Fernet token payloads. Hand-written because Debian 12's
// msgpack packages depend on libboost-dev (Boost 1.74), which conflicts with Boost 1.81.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace nubo::identity::msgpack {

struct Value;
using Array = std::vector<Value>;
struct Bin {
  std::string bytes;
};
struct Value {
  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bin, Array> v;
  bool is_nil() const { return std::holds_alternative<std::monostate>(v); }
  const std::string* str() const { return std::get_if<std::string>(&v); }
  const Bin* bin() const { return std::get_if<Bin>(&v); }
  const Array* array() const { return std::get_if<Array>(&v); }
  std::optional<std::int64_t> integer() const;
  std::optional<double> number() const;
  std::optional<bool> boolean() const;
};

std::string pack(const Value& value);
// nullopt on malformed or truncated input.
std::optional<Value> unpack(std::string_view data);

}  // namespace nubo::identity::msgpack
