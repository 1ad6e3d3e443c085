// The ring builder: devices, weights and the partition placement a rebalance computes, as Swift's
// RingBuilder does (dispersion across regions, zones and servers first, then weight; the fewest
// moves; at most one replica of a partition moved per rebalance; min_part_hours).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "object/ring/ring.hpp"

namespace nubo::object {

// A device the builder cannot use or a ring it cannot build (Swift's RingBuilderError family).
class RingBuilderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BuilderDevice {
  Device device;
  std::int64_t parts = 0;  // partition-replicas assigned to it
};

struct RebalanceResult {
  std::int64_t changed_parts = 0;  // replica slots whose device changed
  double balance = 0;
  int removed_devices = 0;
  bool finished = false;  // every device got what the plan gives it
};

// One failure domain in the dispersion report.
struct DispersionTier {
  std::string name;                    // "r1", "r1z2", "r1z2-10.0.0.1", "r1z2-10.0.0.1/sdb"
  int max_replicas = 0;                // the most it should hold of one partition
  std::int64_t placed_parts = 0;       // partition-replicas it holds
  double dispersion = 0;               // percent of those above max_replicas
  std::vector<std::int64_t> replicas;  // [n]: partitions with n replicas in it
};

class RingBuilder {
 public:
  static constexpr std::uint16_t none_device = 0xFFFF;
  static constexpr double max_balance = 999.99;

  // `clock` (not owned, may be null for the system clock) dates min_part_hours.
  RingBuilder(int part_power, double replicas, int min_part_hours, const Clock* clock = nullptr);
  // A builder file written by save(); throws std::runtime_error with the reason.
  static RingBuilder load(const std::string& path, const Clock* clock = nullptr);
  // JSON, written to a temporary file, fsynced and renamed into place.
  void save(const std::string& path) const;

  int part_power() const { return part_power_; }
  std::uint32_t parts() const { return static_cast<std::uint32_t>(parts_); }
  double replicas() const { return replicas_; }
  int min_part_hours() const { return min_part_hours_; }
  double overload() const { return overload_; }
  std::uint64_t version() const { return version_; }
  const std::string& id() const { return id_; }
  bool devices_changed() const { return devices_changed_; }
  // Empty until the first rebalance.
  std::optional<double> dispersion() const { return dispersion_; }
  bool ever_rebalanced() const { return !replica2part2dev_.empty(); }
  const std::vector<std::optional<BuilderDevice>>& devices() const { return devices_; }
  bool marked_for_removal(int id) const;
  const std::vector<std::vector<std::uint16_t>>& table() const { return replica2part2dev_; }
  // Hours since each partition last moved, saturating at 255.
  const std::vector<std::uint8_t>& last_part_moves() const { return last_part_moves_; }

  // Returns the id: `device.id` if set (>= 0), else the first free one. Nothing moves until
  // rebalance(). Throws RingBuilderError for a duplicate id or a negative weight.
  int add_device(Device device);
  void set_weight(int id, double weight);
  // Weight 0 now; the device and everything on it go at the next rebalance, min_part_hours or not.
  void remove_device(int id);
  void set_replicas(double replicas);
  void set_min_part_hours(int hours);
  void set_overload(double overload);
  // Every partition may move again at the next rebalance.
  void pretend_min_part_hours_passed();
  // Seconds until partitions moved by the last rebalance may move again.
  std::int64_t min_part_seconds_left() const;

  // Throws RingBuilderError when there are fewer weighted devices than replicas.
  RebalanceResult rebalance(std::optional<std::uint64_t> seed = std::nullopt);

  // Percent a device's partitions differ from what its weight gives it; the ring's balance is the
  // worst device (999.99 when a zero-weight device still holds partitions). Throws
  // RingBuilderError when there is no weight at all.
  double balance() const;
  std::vector<double> balance_per_device() const;  // by device id
  // The overload needed to disperse fully (0 when weights allow it).
  double required_overload() const;
  // Per failure domain holding replicas, in tier order, how many partitions have 0, 1, 2, ...
  // replicas in it (Swift's dispersion report).
  std::vector<DispersionTier> dispersion_report() const;
  // Throws RingBuilderError when a partition is unassigned or doubly on one device.
  void validate() const;

  Ring ring() const;

 private:
  struct Tiers;
  struct Plan {
    int min = 0;
    double target = 0;
    int max = 0;
  };

  TimePoint now() const { return clock_ ? clock_->now() : std::chrono::system_clock::now(); }
  std::int64_t now_seconds() const;
  const BuilderDevice& dev(int id) const { return *devices_[static_cast<size_t>(id)]; }
  BuilderDevice& dev(int id) { return *devices_[static_cast<size_t>(id)]; }
  BuilderDevice& existing(int id);
  double total_weight() const;

  Tiers tiers() const;
  std::vector<double> weighted_replicas(const Tiers& t) const;
  std::vector<double> max_replicas(const Tiers& t, bool ceiling) const;
  std::vector<double> wanted_replicas(const Tiers& t, const std::vector<double>& weighted) const;
  double required_overload(const Tiers& t, const std::vector<double>& weighted,
                           const std::vector<double>& wanted) const;
  std::vector<Plan> replica_plan(const Tiers& t) const;
  void set_parts_wanted(const Tiers& t, const std::vector<Plan>& plan);

  // Partition -> replicas to place, in the order partitions were gathered.
  struct Gathered {
    std::vector<std::int32_t> index;  // by partition: position in `parts` or -1
    std::vector<std::pair<std::uint32_t, std::vector<int>>> parts;
    void add(std::uint32_t part, int replica);
    bool empty() const { return parts.empty(); }
    void clear();
  };
  void update_last_part_moves();
  bool can_move(std::uint32_t part) const {
    return last_part_moves_[part] >= min_part_hours_ && !moved_[part];
  }
  void set_moved(std::uint32_t part) {
    last_part_moves_[part] = 0;
    moved_[part] = 1;
  }
  void take(std::uint32_t part, int replica, Gathered& gathered);
  void adjust_replica_arrays(Gathered& gathered);
  int gather_from_removed_devices(Gathered& gathered);
  void gather_for_dispersion(const Tiers& t, const std::vector<Plan>& plan, Gathered& gathered);
  void gather_for_balance(const Tiers& t, const std::vector<Plan>& plan, bool disperse_first,
                          Gathered& gathered, std::mt19937_64& random);
  void gather_for_balance_can_disperse(const Tiers& t, const std::vector<Plan>& plan,
                                       std::uint32_t start, Gathered& gathered);
  void gather_for_balance_forced(std::uint32_t start, Gathered& gathered);
  void reassign(const Tiers& t, const std::vector<Plan>& plan, Gathered& gathered,
                std::mt19937_64& random);
  std::int64_t measure_dispersion(const std::vector<std::vector<std::uint16_t>>* before);

  int part_power_;
  std::int64_t parts_;
  double replicas_;
  int min_part_hours_;
  double overload_ = 0;
  std::uint64_t version_ = 0;
  std::string id_;
  bool devices_changed_ = false;
  std::optional<double> dispersion_;
  std::vector<std::optional<BuilderDevice>> devices_;  // by id; deleted ids are empty
  std::vector<int> remove_devices_;                    // ids marked for removal
  std::vector<std::vector<std::uint16_t>> replica2part2dev_;
  std::vector<std::uint8_t> last_part_moves_;
  std::int64_t last_part_moves_epoch_ = 0;  // unix seconds last_part_moves_ counts from
  std::uint32_t last_part_gather_start_ = 0;
  const Clock* clock_ = nullptr;

  // Only during a rebalance.
  std::vector<std::uint8_t> moved_;         // by partition: moved in this rebalance
  std::vector<std::int64_t> parts_wanted_;  // by device id; negative: overweight
};

}  // namespace nubo::object
