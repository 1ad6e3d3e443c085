#include "image/service/format.hpp"

#include <cstring>

namespace nubo::image {

namespace {

std::uint64_t be(std::string_view s, size_t off, size_t n) {
  std::uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(s[off + i]);
  return v;
}

std::uint64_t le(std::string_view s, size_t off, size_t n) {
  std::uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(s[off + i]);
  return v;
}

bool starts(std::string_view s, size_t off, std::string_view magic) {
  return s.size() >= off + magic.size() && s.substr(off, magic.size()) == magic;
}

bool is_qcow2(std::string_view h) { return starts(h, 0, std::string_view("QFI\xfb", 4)); }

// QCOW2: refuse a backing file, an external data file (incompatible feature bit 2 or the header
// extension 0x44415441) and incompatible features this inspector does not know. `complete` says
// the data ended: a header shorter than needed is then refused rather than awaited.
std::string qcow2_refusal(std::string_view h, bool complete) {
  if (h.size() < 72) return complete ? "QCOW2 header is truncated" : "";
  auto version = be(h, 4, 4);
  if (version != 2 && version != 3) return "unsupported QCOW2 version " + std::to_string(version);
  if (be(h, 8, 8) != 0) return "QCOW2 images with a backing file are not allowed";
  if (version == 3) {
    if (h.size() < 104) return complete ? "QCOW2 header is truncated" : "";
    auto incompatible = be(h, 72, 8);
    if (incompatible & (1u << 2)) return "QCOW2 images with an external data file are not allowed";
    if (incompatible & ~std::uint64_t{0x1f}) return "QCOW2 image has unknown incompatible features";
  }
  // Header extensions follow the header; the external data file name is one of them.
  size_t pos = version == 3 ? static_cast<size_t>(be(h, 100, 4)) : 72;
  for (int guard = 0; guard < 1024; ++guard) {
    if (pos + 8 > h.size()) return "";  // beyond what was kept: the feature bit above decides
    auto type = be(h, pos, 4);
    auto length = be(h, pos + 4, 4);
    if (type == 0) return "";
    if (type == 0x44415441) return "QCOW2 images with an external data file are not allowed";
    pos += 8 + static_cast<size_t>((length + 7) & ~std::uint64_t{7});
  }
  return "";
}

// VMDK: a text descriptor, or an embedded one with a createType other than monolithicSparse and
// streamOptimized, names other files (extents) that a hypervisor would open on the host.
std::string vmdk_refusal(std::string_view h, bool complete) {
  if (starts(h, 0, "# Disk DescriptorFile")) return "VMDK descriptor files are not allowed";
  if (!starts(h, 0, "KDMV")) return "";
  if (h.size() < 44) return complete ? "VMDK header is truncated" : "";
  auto offset = le(h, 28, 8) * 512, length = le(h, 36, 8) * 512;
  if (offset == 0 || length == 0) return "";
  if (offset >= h.size()) return "";
  auto desc = h.substr(static_cast<size_t>(offset),
                       static_cast<size_t>(std::min<std::uint64_t>(length, h.size() - offset)));
  auto at = desc.find("createType=");
  if (at == std::string_view::npos)
    return complete || desc.size() == length ? "VMDK descriptor has no createType" : "";
  auto value = desc.substr(at + 11);
  if (!value.empty() && value.front() == '"') value.remove_prefix(1);
  auto end = value.find_first_of("\"\r\n");
  value = value.substr(0, end);
  if (value != "monolithicSparse" && value != "streamOptimized")
    return "VMDK create type '" + std::string(value) + "' is not allowed";
  return "";
}

}  // namespace

FormatInspector::FormatInspector(std::string declared_format)
    : declared_(std::move(declared_format)) {}

void FormatInspector::feed(std::string_view chunk) {
  if (head_.size() >= kHeadBytes) return;
  head_.append(chunk.substr(0, kHeadBytes - head_.size()));
}

std::string FormatInspector::refusal() const {
  if (head_.size() >= 4 && declared_ == "qcow2" && !is_qcow2(head_))
    return "Image content does not match the declared disk format qcow2";
  if (is_qcow2(head_)) return qcow2_refusal(head_, false);
  return vmdk_refusal(head_, false);
}

FormatReport FormatInspector::finish(std::uint64_t total_size, std::string& error) const {
  FormatReport r;
  std::string_view h = head_;
  if (is_qcow2(h)) {
    r.detected = "qcow2";
    error = qcow2_refusal(h, true);
    if (h.size() >= 32) r.virtual_size = static_cast<std::int64_t>(be(h, 24, 8));
    return r;
  }
  if (declared_ == "qcow2") {
    error = "Image content does not match the declared disk format qcow2";
    return r;
  }
  error = vmdk_refusal(h, true);
  if (!error.empty()) return r;
  if (starts(h, 0, "KDMV")) {
    r.detected = "vmdk";
    if (h.size() >= 20) r.virtual_size = static_cast<std::int64_t>(le(h, 12, 8) * 512);
  } else if (starts(h, 0, "conectix")) {
    // A dynamic VHD starts with a copy of its footer; the current size is at offset 48.
    r.detected = "vhd";
    if (h.size() >= 56) r.virtual_size = static_cast<std::int64_t>(be(h, 48, 8));
  } else if (starts(h, 0, "vhdxfile")) {
    r.detected = "vhdx";  // its size sits in the metadata region, past what is kept
  } else if (starts(h, 0x8001, "CD001")) {
    // ISO 9660 primary volume descriptor: volume space size times logical block size.
    r.detected = "iso";
    if (h.size() >= 0x8082) {
      auto blocks = le(h, 0x8050, 4), block_size = le(h, 0x8080, 2);
      r.virtual_size = blocks && block_size ? static_cast<std::int64_t>(blocks * block_size)
                                            : static_cast<std::int64_t>(total_size);
    } else {
      r.virtual_size = static_cast<std::int64_t>(total_size);
    }
  } else {
    r.detected = "raw";
    r.virtual_size = static_cast<std::int64_t>(total_size);
  }
  return r;
}

}  // namespace nubo::image
