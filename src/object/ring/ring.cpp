#include "object/ring/ring.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <tuple>

#include "common/ids.hpp"
#include "object/ring/format.hpp"

namespace nubo::object {

namespace {

void md5(std::string_view data, unsigned char out[16]) {
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out, &size, EVP_md5(), nullptr) != 1 || size != 16)
    throw std::runtime_error("md5 is not available");
}

std::uint32_t first_word(const unsigned char digest[16]) {
  return (std::uint32_t{digest[0]} << 24) | (std::uint32_t{digest[1]} << 16) |
         (std::uint32_t{digest[2]} << 8) | std::uint32_t{digest[3]};
}

// The top `part_power` bits of a 32-bit word (a shift by 32 is undefined on uint32).
std::uint32_t top_bits(std::uint32_t word, int part_power) {
  return static_cast<std::uint32_t>(std::uint64_t{word} >> (32 - part_power));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void fail_errno(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

const json::value& field(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  if (!v) throw std::runtime_error("missing \"" + std::string(key) + "\"");
  return *v;
}

std::int64_t int_field(const json::object& o, std::string_view key) {
  auto& v = field(o, key);
  if (!v.is_int64() && !v.is_uint64())
    throw std::runtime_error("\"" + std::string(key) + "\" is not an integer");
  return v.to_number<std::int64_t>();
}

std::string string_field(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  if (!v) return {};
  if (!v->is_string()) throw std::runtime_error("\"" + std::string(key) + "\" is not a string");
  return std::string(v->as_string());
}

}  // namespace

namespace ring_format {

std::string python_float(double v) {
  char buffer[64];
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e16) {
    std::snprintf(buffer, sizeof buffer, "%.1f", v);
    return buffer;
  }
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, end);
}

json::value number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9e15)
    return static_cast<std::int64_t>(v);
  return v;
}

json::object device_to_json(const Device& d) {
  json::object o;
  o["id"] = d.id;
  o["region"] = d.region;
  o["zone"] = d.zone;
  o["ip"] = d.ip;
  o["port"] = d.port;
  o["replication_ip"] = d.replication_ip.empty() ? d.ip : d.replication_ip;
  o["replication_port"] = d.replication_port ? d.replication_port : d.port;
  o["device"] = d.device;
  o["weight"] = number(d.weight);
  o["meta"] = d.meta;
  return o;
}

Device device_from_json(const json::object& o) {
  Device d;
  d.id = static_cast<int>(int_field(o, "id"));
  d.region = static_cast<int>(int_field(o, "region"));
  d.zone = static_cast<int>(int_field(o, "zone"));
  d.ip = string_field(o, "ip");
  d.port = static_cast<int>(int_field(o, "port"));
  d.replication_ip = string_field(o, "replication_ip");
  if (auto* p = find(o, "replication_port"); p && !p->is_null())
    d.replication_port = static_cast<int>(int_field(o, "replication_port"));
  d.device = string_field(o, "device");
  auto& weight = field(o, "weight");
  if (!weight.is_number()) throw std::runtime_error("\"weight\" is not a number");
  d.weight = weight.to_number<double>();
  d.meta = string_field(o, "meta");
  if (d.id < 0) throw std::runtime_error("negative device id");
  return d;
}

std::string unpack_bytes(std::string_view text) {
  auto bytes = base64_decode(text);
  if (!bytes) throw std::runtime_error("bad base64");
  return std::move(*bytes);
}

std::string pack_u16(const std::vector<std::uint16_t>& values) {
  std::string bytes(values.size() * 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    bytes[2 * i] = static_cast<char>(values[i] & 0xff);
    bytes[2 * i + 1] = static_cast<char>(values[i] >> 8);
  }
  return base64_encode(bytes);
}

std::vector<std::uint16_t> unpack_u16(std::string_view text) {
  auto bytes = unpack_bytes(text);
  if (bytes.size() % 2) throw std::runtime_error("odd length of a uint16 array");
  std::vector<std::uint16_t> values(bytes.size() / 2);
  auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<std::uint16_t>(b[2 * i] | (b[2 * i + 1] << 8));
  return values;
}

void write_durably(const std::string& path, std::string_view data) {
  namespace fs = std::filesystem;
  fs::path target(path);
  auto dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail_errno("cannot create a temporary file for", path);
  auto abandon = [&](const std::string& what) {
    int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    fail_errno(what, path);
  };
  ::fchmod(fd, 0644);
  for (size_t done = 0; done < data.size();) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) abandon("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) abandon("cannot fsync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail_errno("cannot close", path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail_errno("cannot rename into", path);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_whole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno("cannot open", path);
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) data.reserve(static_cast<size_t>(st.st_size));
  char buffer[65536];
  for (;;) {
    auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      fail_errno("cannot read", path);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace ring_format

std::string Device::url() const { return "http://" + ip + ":" + std::to_string(port); }

std::string hash_path(std::string_view prefix, std::string_view suffix, std::string_view account,
                      std::string_view container, std::string_view object) {
  if (!object.empty() && container.empty())
    throw std::invalid_argument("container is required if object is provided");
  std::string input;
  input.reserve(prefix.size() + suffix.size() + account.size() + container.size() + object.size() +
                3);
  input.append(prefix).append("/").append(account);
  if (!container.empty()) input.append("/").append(container);
  if (!object.empty()) input.append("/").append(object);
  input.append(suffix);
  unsigned char digest[16];
  md5(input, digest);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), 16));
}

Ring::Ring(int part_power, std::vector<Device> devices,
           std::vector<std::vector<std::uint16_t>> replica2part2dev)
    : part_power_(part_power), replica2part2dev_(std::move(replica2part2dev)) {
  if (part_power < 0 || part_power > 32)
    throw std::runtime_error("part_power must be between 0 and 32");
  for (auto& d : devices) {
    if (d.id < 0 || d.id >= 0xFFFF) throw std::runtime_error("device id out of range");
    if (static_cast<size_t>(d.id) >= devices_.size())
      devices_.resize(static_cast<size_t>(d.id) + 1);
    if (devices_[static_cast<size_t>(d.id)])
      throw std::runtime_error("duplicate device id " + std::to_string(d.id));
    if (d.replication_ip.empty()) d.replication_ip = d.ip;
    if (!d.replication_port) d.replication_port = d.port;
    devices_[static_cast<size_t>(d.id)] = std::move(d);
  }
  for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
    auto& row = replica2part2dev_[r];
    if (r == 0 ? row.size() != (std::uint64_t{1} << part_power) : row.size() > partitions())
      throw std::runtime_error("replica " + std::to_string(r) + " has " +
                               std::to_string(row.size()) + " partitions, expected " +
                               std::to_string(partitions()));
    for (auto id : row)
      if (id >= devices_.size() || !devices_[id])
        throw std::runtime_error("a partition of replica " + std::to_string(r) +
                                 " is on unknown device " + std::to_string(id));
  }
  index_devices();
}

void Ring::index_devices() {
  std::vector<char> assigned(devices_.size(), 0);
  for (auto& row : replica2part2dev_)
    for (auto id : row) assigned[id] = 1;
  region_of_.assign(devices_.size(), -1);
  zone_of_.assign(devices_.size(), -1);
  server_of_.assign(devices_.size(), -1);
  std::map<int, int> regions;
  std::map<std::pair<int, int>, int> zones;
  std::map<std::tuple<int, int, std::string>, int> servers;
  assigned_devices_ = 0;
  for (size_t id = 0; id < devices_.size(); ++id) {
    if (!assigned[id]) continue;
    auto& d = *devices_[id];
    ++assigned_devices_;
    region_of_[id] = regions.try_emplace(d.region, static_cast<int>(regions.size())).first->second;
    zone_of_[id] =
        zones.try_emplace({d.region, d.zone}, static_cast<int>(zones.size())).first->second;
    server_of_[id] = servers.try_emplace({d.region, d.zone, d.ip}, static_cast<int>(servers.size()))
                         .first->second;
  }
  regions_ = static_cast<int>(regions.size());
  zones_ = static_cast<int>(zones.size());
  servers_ = static_cast<int>(servers.size());
}

Ring Ring::load(const std::string& path) {
  auto text = ring_format::read_whole(path);
  try {
    json::value doc = json::parse(text);
    if (!doc.is_object()) throw std::runtime_error("not a JSON object");
    auto& o = doc.as_object();
    auto part_power = int_field(o, "part_power");
    if (part_power < 0 || part_power > 32)
      throw std::runtime_error("part_power must be between 0 and 32");
    std::vector<Device> devices;
    auto& devs = field(o, "devices");
    if (!devs.is_array()) throw std::runtime_error("\"devices\" is not a list");
    for (auto& d : devs.as_array()) {
      if (d.is_null()) continue;
      if (!d.is_object()) throw std::runtime_error("a device is not an object");
      devices.push_back(ring_format::device_from_json(d.as_object()));
    }
    std::vector<std::vector<std::uint16_t>> table;
    auto& rows = field(o, "replica2part2dev");
    if (!rows.is_array()) throw std::runtime_error("\"replica2part2dev\" is not a list");
    for (auto& row : rows.as_array()) {
      if (!row.is_string()) throw std::runtime_error("a replica row is not a string");
      table.push_back(ring_format::unpack_u16(row.as_string()));
    }
    return Ring(static_cast<int>(part_power), std::move(devices), std::move(table));
  } catch (const std::exception& e) {
    throw std::runtime_error("invalid ring file " + path + ": " + e.what());
  }
}

void Ring::save(const std::string& path) const {
  json::object o;
  o["format"] = "nubo-ring";
  o["part_power"] = part_power_;
  o["replica_count"] = replica2part2dev_.size();
  json::array devs;
  for (auto& d : devices_) {
    if (d)
      devs.push_back(ring_format::device_to_json(*d));
    else
      devs.push_back(nullptr);
  }
  o["devices"] = std::move(devs);
  json::array rows;
  for (auto& row : replica2part2dev_) rows.push_back(json::string(ring_format::pack_u16(row)));
  o["replica2part2dev"] = std::move(rows);
  ring_format::write_durably(path, json::serialize(o) + "\n");
}

std::uint32_t Ring::partition_of_hash(std::string_view md5_hex) const {
  if (md5_hex.size() < 8) throw std::invalid_argument("not an md5 hex digest");
  std::uint32_t word = 0;
  for (int i = 0; i < 8; ++i) {
    int v = hex_value(md5_hex[static_cast<size_t>(i)]);
    if (v < 0) throw std::invalid_argument("not an md5 hex digest");
    word = (word << 4) | static_cast<std::uint32_t>(v);
  }
  return top_bits(word, part_power_);
}

std::vector<const Device*> Ring::primary_devices(std::uint32_t part) const {
  std::vector<const Device*> out;
  out.reserve(replica2part2dev_.size());
  for (auto& row : replica2part2dev_) {
    if (part >= row.size()) continue;
    const Device* d = &*devices_[row[part]];
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

std::vector<Device> Ring::primaries(std::uint32_t part) const {
  std::vector<Device> out;
  out.reserve(replica2part2dev_.size());
  for (auto& row : replica2part2dev_) {
    if (part >= row.size()) continue;
    auto id = row[part];
    if (std::none_of(out.begin(), out.end(), [&](const Device& d) { return d.id == id; }))
      out.push_back(*devices_[id]);
  }
  return out;
}

std::vector<Device> Ring::handoffs(std::uint32_t part, size_t max) const {
  std::vector<Device> out;
  if (replica2part2dev_.empty() || max == 0) return out;
  const std::uint32_t parts = static_cast<std::uint32_t>(replica2part2dev_[0].size());
  if (part >= parts) return out;

  std::vector<char> used(devices_.size(), 0), used_region(static_cast<size_t>(regions_), 0),
      used_zone(static_cast<size_t>(zones_), 0), used_server(static_cast<size_t>(servers_), 0);
  int n_used = 0, n_regions = 0, n_zones = 0, n_servers = 0;
  auto mark = [&](std::uint16_t id) {
    if (!used[id]) used[id] = 1, ++n_used;
    if (!used_region[region_of_[id]]) used_region[region_of_[id]] = 1, ++n_regions;
    if (!used_zone[zone_of_[id]]) used_zone[zone_of_[id]] = 1, ++n_zones;
    if (!used_server[server_of_[id]]) used_server[server_of_[id]] = 1, ++n_servers;
  };
  for (auto& row : replica2part2dev_)
    if (part < row.size()) mark(row[part]);

  // Where the walk starts depends only on the partition, so every node agrees on the order.
  unsigned char digest[16];
  md5(std::to_string(part), digest);
  const std::uint64_t start = top_bits(first_word(digest), part_power_);
  const std::uint64_t inc = std::max<std::uint64_t>(1, parts / 65536);
  // Swift walks start, start+inc, ... then wraps at inc - ((parts - start) % inc) up to start
  // (which skips partition 0 when inc is 1); the same order here.
  auto walk = [&](auto&& visit) {
    for (std::uint64_t p = start; p < parts; p += inc)
      if (visit(static_cast<std::uint32_t>(p))) return;
    for (std::uint64_t p = inc - ((parts - start) % inc); p < start; p += inc)
      if (visit(static_cast<std::uint32_t>(p))) return;
  };
  // One pass per tier: a device in an unused region, then zone, then server, then any device.
  // `fresh` says whether a device is new at this pass's tier; a pass ends once its tier is
  // exhausted or `max` handoffs were found.
  auto pass = [&](auto&& fresh, auto&& exhausted) {
    if (exhausted() || out.size() >= max) return;
    walk([&](std::uint32_t p) {
      for (auto& row : replica2part2dev_) {
        if (p >= row.size()) continue;
        auto id = row[p];
        if (used[id] || !fresh(id)) continue;
        out.push_back(*devices_[id]);
        mark(id);
        if (out.size() >= max || exhausted()) return true;
      }
      return false;
    });
  };
  pass([&](std::uint16_t id) { return !used_region[region_of_[id]]; },
       [&] { return n_regions == regions_; });
  pass([&](std::uint16_t id) { return !used_zone[zone_of_[id]]; },
       [&] { return n_zones == zones_; });
  pass([&](std::uint16_t id) { return !used_server[server_of_[id]]; },
       [&] { return n_servers == servers_; });
  pass([](std::uint16_t) { return true; }, [&] { return n_used == assigned_devices_; });
  return out;
}

}  // namespace nubo::object
