// Disk format inspection while image data streams in: detects qcow2, vmdk, vhd, vhdx and iso from
// their headers, reads the virtual size, and refuses what Glance's format inspector refuses
// (a qcow2 naming a backing file or an external data file, a vmdk whose descriptor points at other
// files, a declared qcow2 that is not one). Other data is accepted as raw whatever its declared
// format: clients upload opaque bytes as ami, vhd, vmdk...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nubo::image {

struct FormatReport {
  std::string detected;  // qcow2, vmdk, vhd, vhdx, iso or raw
  std::optional<std::int64_t> virtual_size;
};

class FormatInspector {
 public:
  // Bytes kept from the start of the data: enough for every header looked at.
  static constexpr size_t kHeadBytes = 64 * 1024;

  explicit FormatInspector(std::string declared_format);
  void feed(std::string_view chunk);
  // Why the data must be refused, as soon as the header shows it (empty: nothing yet).
  std::string refusal() const;
  // At the end of the data: the report, or the refusal in `error`.
  FormatReport finish(std::uint64_t total_size, std::string& error) const;

 private:
  std::string declared_;
  std::string head_;
};

}  // namespace nubo::image
