// The ring: which storage devices hold an account, a container or an object (Swift's ring:
// 2^part_power partitions, each placed on `replicas` devices; handoffs in a fixed order after).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nubo::object {

struct Device {
  int id = -1;
  int region = 1;
  int zone = 1;
  std::string ip;
  int port = 0;
  std::string device;  // directory name under the server's devices root
  double weight = 0;
  std::string meta;
  // Where replication traffic goes; empty or 0 means ip and port.
  std::string replication_ip;
  int replication_port = 0;
  std::string url() const;  // "http://ip:port"
  bool operator==(const Device&) const = default;
};

// md5 hex of prefix + "/a[/c[/o]]" + suffix, as Swift's hash_path (names the on-disk directories
// and gives the partition).
std::string hash_path(std::string_view prefix, std::string_view suffix, std::string_view account,
                      std::string_view container = {}, std::string_view object = {});

class Ring {
 public:
  Ring() = default;
  Ring(int part_power, std::vector<Device> devices,
       std::vector<std::vector<std::uint16_t>> replica2part2dev);
  // A ring file written by save() (JSON); throws std::runtime_error with the reason.
  static Ring load(const std::string& path);
  // Written to a temporary file, fsynced and renamed into place.
  void save(const std::string& path) const;

  int part_power() const { return part_power_; }
  std::uint32_t partitions() const { return 1u << part_power_; }
  size_t replicas() const { return replica2part2dev_.size(); }
  const std::vector<std::optional<Device>>& devices() const { return devices_; }
  const std::vector<std::vector<std::uint16_t>>& table() const { return replica2part2dev_; }

  // The partition of a hash_path() hex digest: its top part_power bits.
  std::uint32_t partition_of_hash(std::string_view md5_hex) const;
  // The primary devices of a partition, in replica order, each device once.
  std::vector<Device> primaries(std::uint32_t part) const;
  // The same without copying the devices (they live as long as the ring).
  std::vector<const Device*> primary_devices(std::uint32_t part) const;
  // Handoff devices after the primaries, in Swift's get_more_nodes order (new regions, then new
  // zones, then new servers, then any device), at most `max` of them.
  std::vector<Device> handoffs(std::uint32_t part, size_t max) const;

  // Same devices and assignments (what makes two ring files interchangeable).
  bool operator==(const Ring& other) const {
    return part_power_ == other.part_power_ && devices_ == other.devices_ &&
           replica2part2dev_ == other.replica2part2dev_;
  }

 private:
  void index_devices();

  int part_power_ = 0;
  std::vector<std::optional<Device>> devices_;  // by id; removed ids are empty
  std::vector<std::vector<std::uint16_t>> replica2part2dev_;
  // Dense indexes of the region, zone and server (ip) of each device holding partitions (-1
  // otherwise), and how many of each there are: the handoff walk's bookkeeping.
  std::vector<int> region_of_;
  std::vector<int> zone_of_;
  std::vector<int> server_of_;
  int regions_ = 0;
  int zones_ = 0;
  int servers_ = 0;
  int assigned_devices_ = 0;
};

}  // namespace nubo::object
