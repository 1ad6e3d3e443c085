// What the ring file and the builder file share: device JSON, packed arrays, durable writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"
#include "object/ring/ring.hpp"

namespace nubo::object::ring_format {

json::object device_to_json(const Device& device);
// Python's repr of a float, as Swift's messages print weights and replicas: "100.0", "0.5".
std::string python_float(double v);
// Whole numbers as JSON integers ("100", not "1E2"), others as doubles.
json::value number(double v);
// Throws std::runtime_error naming the missing or mistyped field.
Device device_from_json(const json::object& o);

// Base64 of the values as little-endian uint16 (about 2.7 characters per partition).
std::string pack_u16(const std::vector<std::uint16_t>& values);
std::vector<std::uint16_t> unpack_u16(std::string_view text);
std::string unpack_bytes(std::string_view text);

// Written to a temporary file beside `path`, fsynced, renamed over it, and the directory fsynced:
// a reader sees the old file or the new one, and the new one survives a crash once this returns.
void write_durably(const std::string& path, std::string_view data);
// The whole file; throws std::runtime_error with the reason.
std::string read_whole(const std::string& path);

}  // namespace nubo::object::ring_format
