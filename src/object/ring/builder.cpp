#include "object/ring/builder.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <tuple>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "object/ring/format.hpp"

namespace nubo::object {

// The failure domains: root ⊃ region ⊃ zone ⊃ server (ip) ⊃ device. Swift keys them by tuples;
// here every domain is a node and a device knows its four nodes.
struct RingBuilder::Tiers {
  struct Node {
    int depth = 0;  // 0 root, 1 region, 2 zone, 3 server, 4 device
    int parent = -1;
    int region = 0;
    int zone = 0;
    std::string ip;
    int device = -1;
    bool weighted = false;     // holds a device with weight > 0
    int weighted_devices = 0;  // how many
    // The weighted children, in (region, zone, ip, id) order as Swift sorts its tier tuples.
    std::vector<int> children;
  };
  std::vector<Node> nodes;
  std::vector<std::array<int, 4>> of_device;  // by device id: region, zone, server, device nodes
  std::string name(int node) const;
};

std::string RingBuilder::Tiers::name(int node) const {
  auto& n = nodes[static_cast<size_t>(node)];
  std::string s;
  if (n.depth >= 1) s += "r" + std::to_string(n.region);
  if (n.depth >= 2) s += "z" + std::to_string(n.zone);
  if (n.depth >= 3) s += "-" + n.ip;
  if (n.depth >= 4) s += "/d" + std::to_string(n.device);
  return s;
}

namespace {

constexpr int max_balance_gather_rounds = 3;

// Replica counts of one partition per failure domain: at most replicas * 4 entries, so a flat
// list is faster than any map.
class TierCounts {
 public:
  int get(int node) const {
    for (auto& [n, c] : entries_)
      if (n == node) return c;
    return 0;
  }
  void add(int node, int delta) {
    for (auto& [n, c] : entries_)
      if (n == node) {
        c += delta;
        return;
      }
    entries_.emplace_back(node, delta);
  }
  void clear() { entries_.clear(); }
  const std::vector<std::pair<int, int>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<int, int>> entries_;
};

int floor_int(double v) { return static_cast<int>(std::floor(v)); }
int ceil_int(double v) { return static_cast<int>(std::ceil(v)); }

using ring_format::python_float;

}  // namespace

void RingBuilder::Gathered::add(std::uint32_t part, int replica) {
  auto& slot = index[part];
  if (slot < 0) {
    slot = static_cast<std::int32_t>(parts.size());
    parts.push_back({part, {}});
  }
  parts[static_cast<size_t>(slot)].second.push_back(replica);
}

void RingBuilder::Gathered::clear() {
  for (auto& [part, replicas] : parts) index[part] = -1;
  parts.clear();
}

RingBuilder::RingBuilder(int part_power, double replicas, int min_part_hours, const Clock* clock)
    : part_power_(part_power),
      parts_(std::int64_t{1} << std::clamp(part_power, 0, 32)),
      replicas_(replicas),
      min_part_hours_(min_part_hours),
      id_(uuid4_hex()),
      clock_(clock) {
  if (part_power < 0 || part_power > 32)
    throw RingBuilderError("part_power must be at most 32 (was " + std::to_string(part_power) +
                           ")");
  if (part_power > 24)
    throw RingBuilderError("part_power above 24 is not supported (was " +
                           std::to_string(part_power) + ")");
  if (!(replicas >= 1))
    throw RingBuilderError("replicas must be at least 1 (was " + python_float(replicas) + ")");
  if (min_part_hours < 0)
    throw RingBuilderError("min_part_hours must be non-negative (was " +
                           std::to_string(min_part_hours) + ")");
  last_part_moves_.assign(static_cast<size_t>(parts_), 0);
}

std::int64_t RingBuilder::now_seconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
}

bool RingBuilder::marked_for_removal(int id) const {
  return std::find(remove_devices_.begin(), remove_devices_.end(), id) != remove_devices_.end();
}

BuilderDevice& RingBuilder::existing(int id) {
  if (id < 0 || static_cast<size_t>(id) >= devices_.size() || !devices_[static_cast<size_t>(id)])
    throw RingBuilderError("No device with id " + std::to_string(id));
  return dev(id);
}

double RingBuilder::total_weight() const {
  double total = 0;
  for (auto& d : devices_)
    if (d) total += d->device.weight;
  return total;
}

int RingBuilder::add_device(Device device) {
  if (device.id < 0) {
    auto hole = std::find_if(devices_.begin(), devices_.end(), [](auto& d) { return !d; });
    device.id = static_cast<int>(hole - devices_.begin());
  }
  auto id = static_cast<size_t>(device.id);
  if (id < devices_.size() && devices_[id])
    throw RingBuilderError("Duplicate device id: " + std::to_string(device.id));
  if (device.id >= none_device)
    throw RingBuilderError("Device id " + std::to_string(device.id) + " is too large");
  if (!(device.weight >= 0))
    throw RingBuilderError("Invalid weight value: " + python_float(device.weight));
  if (device.replication_ip.empty()) device.replication_ip = device.ip;
  if (!device.replication_port) device.replication_port = device.port;
  if (id >= devices_.size()) devices_.resize(id + 1);
  devices_[id] = BuilderDevice{std::move(device), 0};
  devices_changed_ = true;
  ++version_;
  return static_cast<int>(id);
}

void RingBuilder::set_weight(int id, double weight) {
  if (marked_for_removal(id))
    throw RingBuilderError("Can not set weight of dev_id " + std::to_string(id) +
                           " because it is marked for removal");
  if (!(weight >= 0)) throw RingBuilderError("Invalid weight value: " + python_float(weight));
  existing(id).device.weight = weight;
  devices_changed_ = true;
  ++version_;
}

void RingBuilder::remove_device(int id) {
  existing(id).device.weight = 0;
  if (!marked_for_removal(id)) remove_devices_.push_back(id);
  devices_changed_ = true;
  ++version_;
}

void RingBuilder::set_replicas(double replicas) {
  if (!(replicas >= 1))
    throw RingBuilderError("replicas must be at least 1 (was " + python_float(replicas) + ")");
  auto slots = [&](double r) { return static_cast<std::int64_t>(static_cast<double>(parts_) * r); };
  if (slots(replicas) != slots(replicas_)) devices_changed_ = true;
  replicas_ = replicas;
}

void RingBuilder::set_min_part_hours(int hours) {
  if (hours < 0)
    throw RingBuilderError("min_part_hours must be non-negative (was " + std::to_string(hours) +
                           ")");
  min_part_hours_ = hours;
}

void RingBuilder::set_overload(double overload) {
  if (!(overload >= 0)) throw RingBuilderError("Cannot set overload to a negative value");
  overload_ = overload;
}

void RingBuilder::pretend_min_part_hours_passed() {
  last_part_moves_epoch_ = 0;
  std::fill(last_part_moves_.begin(), last_part_moves_.end(), 0xff);
}

std::int64_t RingBuilder::min_part_seconds_left() const {
  auto elapsed = now_seconds() - last_part_moves_epoch_;
  return std::max<std::int64_t>(std::int64_t{min_part_hours_} * 3600 - elapsed, 0);
}

// --- the replica plan ---------------------------------------------------------------------------

RingBuilder::Tiers RingBuilder::tiers() const {
  Tiers t;
  t.nodes.push_back({});
  t.of_device.assign(devices_.size(), {-1, -1, -1, -1});
  std::vector<int> order;
  for (auto& d : devices_)
    if (d) order.push_back(d->device.id);
  auto key = [&](int id) {
    auto& d = dev(id).device;
    return std::tie(d.region, d.zone, d.ip, d.id);
  };
  std::sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  std::map<int, int> regions;
  std::map<std::pair<int, int>, int> zones;
  std::map<std::tuple<int, int, std::string>, int> servers;
  auto node = [&](auto& index, auto k, int depth, const Device& d, int parent) {
    auto [it, fresh] = index.try_emplace(k, static_cast<int>(t.nodes.size()));
    if (fresh) {
      Tiers::Node n;
      n.depth = depth;
      n.parent = parent;
      n.region = d.region;
      n.zone = d.zone;
      if (depth >= 3) n.ip = d.ip;
      t.nodes.push_back(std::move(n));
    }
    return it->second;
  };
  for (int id : order) {
    auto& d = dev(id).device;
    std::array<int, 4> path{};
    path[0] = node(regions, d.region, 1, d, 0);
    path[1] = node(zones, std::make_pair(d.region, d.zone), 2, d, path[0]);
    path[2] = node(servers, std::make_tuple(d.region, d.zone, d.ip), 3, d, path[1]);
    Tiers::Node leaf;
    leaf.depth = 4;
    leaf.parent = path[2];
    leaf.region = d.region;
    leaf.zone = d.zone;
    leaf.ip = d.ip;
    leaf.device = id;
    path[3] = static_cast<int>(t.nodes.size());
    t.nodes.push_back(std::move(leaf));
    t.of_device[static_cast<size_t>(id)] = path;
    if (d.weight > 0) {
      int parent = 0;
      for (int n : path) {
        auto& child = t.nodes[static_cast<size_t>(n)];
        // Devices come in sorted order, so children join their parent's list in sorted order.
        if (!child.weighted) t.nodes[static_cast<size_t>(parent)].children.push_back(n);
        child.weighted = true;
        ++child.weighted_devices;
        parent = n;
      }
      t.nodes[0].weighted = true;
      ++t.nodes[0].weighted_devices;
    }
  }
  return t;
}

// Each device's share of the replicas by weight, capped at 1 (one device never holds two
// replicas of a partition) with the excess spread over the others; tiers sum their devices.
std::vector<double> RingBuilder::weighted_replicas(const Tiers& t) const {
  std::vector<double> by_node(t.nodes.size(), 0.0);
  double total = total_weight();
  if (!(total > 0))
    throw RingBuilderError("There are no devices in this ring, or all devices have been deleted");
  double weight_of_one_part = static_cast<double>(parts_) * replicas_ / total;
  std::vector<std::pair<int, double>> share;  // device id, replicanths
  std::vector<size_t> with_room;
  for (auto& d : devices_) {
    if (!d || !(d->device.weight > 0)) continue;
    double r = d->device.weight * weight_of_one_part / static_cast<double>(parts_);
    if (r < 1)
      with_room.push_back(share.size());
    else
      r = 1;
    share.emplace_back(d->device.id, r);
  }
  for (int round = 0; round < 10000; ++round) {
    double sum = 0;
    for (auto& [id, r] : share) sum += r;
    double remaining = replicas_ - sum;
    if (remaining < 1e-10) break;
    std::erase_if(with_room, [&](size_t i) { return share[i].second >= 1; });
    double room = 0;
    for (auto i : with_room) room += share[i].second;
    if (!(room > 0)) break;
    double relative = remaining / room;
    for (auto i : with_room) share[i].second = std::min(1.0, share[i].second * (relative + 1));
  }
  for (auto& [id, r] : share) {
    by_node[0] += r;
    for (int n : t.of_device[static_cast<size_t>(id)]) by_node[static_cast<size_t>(n)] += r;
  }
  return by_node;
}

// The most replicas of one partition each tier may hold if spread as evenly as possible: the
// parent's count divided among its children (rounded up with `ceiling`), at most 1 per device.
std::vector<double> RingBuilder::max_replicas(const Tiers& t, bool ceiling) const {
  std::vector<double> by_node(t.nodes.size(), 0.0);
  std::function<void(int, double)> walk = [&](int node, double count) {
    auto& n = t.nodes[static_cast<size_t>(node)];
    if (n.depth == 4) count = std::min(1.0, count);
    by_node[static_cast<size_t>(node)] = count;
    for (int child : n.children) {
      double share = count / static_cast<double>(n.children.size());
      walk(child, ceiling ? std::ceil(share) : share);
    }
  };
  if (t.nodes[0].weighted) walk(0, replicas_);
  return by_node;
}

// Replicanths per tier for the widest dispersion the device counts allow, top-down: each child
// kept within [floor, ceil] of its even share and otherwise in proportion to weight.
std::vector<double> RingBuilder::wanted_replicas(const Tiers& t,
                                                 const std::vector<double>& weighted) const {
  auto dispersed = max_replicas(t, false);
  std::vector<double> wanted(t.nodes.size(), 0.0);
  std::function<void(int, double)> place = [&](int node, double replicanths) {
    auto& n = t.nodes[static_cast<size_t>(node)];
    if (replicanths > n.weighted_devices + 1e-9)
      throw RingBuilderError("More replicanths (" + python_float(replicanths) + ") than devices (" +
                             std::to_string(n.weighted_devices) + ") in tier (" + t.name(node) +
                             ")");
    wanted[static_cast<size_t>(node)] = replicanths;
    if (n.children.empty()) return;
    auto& children = n.children;
    size_t count = children.size();
    std::vector<double> to_place(count, 0.0), low(count), high(count), devices(count);
    for (size_t i = 0; i < count; ++i) {
      auto c = static_cast<size_t>(children[i]);
      low[i] = std::floor(dispersed[c]);
      high[i] = std::ceil(dispersed[c]);
      devices[i] = t.nodes[c].weighted_devices;
    }
    std::vector<char> spread(count, 1);
    double remaining = replicanths;
    bool device_limited = false;
    for (int round = 0; round < 10000; ++round) {
      double weight = 0;
      for (size_t i = 0; i < count; ++i)
        if (spread[i]) weight += weighted[static_cast<size_t>(children[i])];
      if (!(weight > 0)) break;
      double relative = remaining / weight;
      for (size_t i = 0; i < count; ++i) {
        if (!spread[i]) continue;
        double r = to_place[i] + weighted[static_cast<size_t>(children[i])] * relative;
        if (r < low[i])
          r = low[i];
        else if (r > high[i] && !device_limited)
          r = high[i];
        if (r > devices[i]) r = devices[i];
        to_place[i] = r;
      }
      remaining = replicanths - std::accumulate(to_place.begin(), to_place.end(), 0.0);
      if (remaining < -1e-10) {
        for (size_t i = 0; i < count; ++i) spread[i] = to_place[i] > low[i];
      } else if (remaining > 1e-10) {
        bool any = false;
        for (size_t i = 0; i < count; ++i)
          any |= (spread[i] = devices[i] > to_place[i] && to_place[i] < high[i]);
        if (!any) {
          device_limited = true;
          for (size_t i = 0; i < count; ++i) spread[i] = to_place[i] < devices[i];
        }
      } else {
        break;
      }
    }
    for (size_t i = 0; i < count; ++i) place(children[i], to_place[i]);
  };
  if (t.nodes[0].weighted) place(0, replicas_);
  return wanted;
}

double RingBuilder::required_overload(const Tiers& t, const std::vector<double>& weighted,
                                      const std::vector<double>& wanted) const {
  double most = 0;
  for (auto& d : devices_) {
    if (!d || !(d->device.weight > 0)) continue;
    auto n = static_cast<size_t>(t.of_device[static_cast<size_t>(d->device.id)][3]);
    double required = (wanted[n] - weighted[n]) / weighted[n];
    most = std::max(most, required);
  }
  return most;
}

double RingBuilder::required_overload() const {
  auto t = tiers();
  auto weighted = weighted_replicas(t);
  return required_overload(t, weighted, wanted_replicas(t, weighted));
}

// Target replicanths per tier: the weighted share moved toward full dispersion by as much of the
// required overload as the operator allows; min and max are the whole replicas around it.
std::vector<RingBuilder::Plan> RingBuilder::replica_plan(const Tiers& t) const {
  auto weighted = weighted_replicas(t);
  auto wanted = wanted_replicas(t, weighted);
  double required = required_overload(t, weighted, wanted);
  std::vector<double> target = wanted;
  if (required > 0) {
    double overload = std::min(overload_, required);
    for (size_t n = 0; n < t.nodes.size(); ++n) {
      if (!t.nodes[n].weighted) continue;
      target[n] = (wanted[n] - weighted[n]) / required * overload + weighted[n];
    }
  }
  std::vector<Plan> plan(t.nodes.size());
  for (size_t n = 0; n < t.nodes.size(); ++n) {
    if (!t.nodes[n].weighted) continue;
    plan[n] = {floor_int(target[n] + 1e-10), target[n], ceil_int(target[n] - 1e-10)};
  }
  return plan;
}

// How many partition-replicas each device should hold: the plan's targets in whole partitions,
// top-down, the leftovers dealt round-robin from the smallest target up.
void RingBuilder::set_parts_wanted(const Tiers& t, const std::vector<Plan>& plan) {
  std::vector<std::int64_t> placed(t.nodes.size(), 0);
  std::function<void(int, std::int64_t)> place = [&](int node, std::int64_t parts) {
    placed[static_cast<size_t>(node)] = parts;
    auto& children = t.nodes[static_cast<size_t>(node)].children;
    if (children.empty()) return;
    std::vector<std::int64_t> to_place(children.size());
    for (size_t i = 0; i < children.size(); ++i) {
      auto want = static_cast<std::int64_t>(
          std::floor(plan[static_cast<size_t>(children[i])].target * static_cast<double>(parts_)));
      to_place[i] = std::min(parts, want);
      parts -= to_place[i];
    }
    std::vector<size_t> order(children.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return plan[static_cast<size_t>(children[a])].target <
             plan[static_cast<size_t>(children[b])].target;
    });
    for (size_t k = 0; parts > 0; ++k, --parts) ++to_place[order[k % order.size()]];
    for (size_t i = 0; i < children.size(); ++i) place(children[i], to_place[i]);
  };
  auto total = static_cast<std::int64_t>(replicas_ * static_cast<double>(parts_));
  if (t.nodes[0].weighted) place(0, total);
  std::array<std::int64_t, 5> per_depth{};
  for (size_t n = 0; n < t.nodes.size(); ++n) per_depth[t.nodes[n].depth] += placed[n];
  for (int depth = 0; depth <= 4; ++depth)
    if (per_depth[depth] != total)
      throw RingBuilderError(std::to_string(per_depth[depth]) + " != " + std::to_string(total) +
                             " at tier depth " + std::to_string(depth));
  parts_wanted_.assign(devices_.size(), 0);
  for (auto& d : devices_) {
    if (!d) continue;
    auto id = static_cast<size_t>(d->device.id);
    if (!(d->device.weight > 0))
      // Drain it: it wants to give up everything it has.
      parts_wanted_[id] =
          -static_cast<std::int64_t>(std::ceil(static_cast<double>(parts_) * replicas_));
    else
      parts_wanted_[id] = placed[static_cast<size_t>(t.of_device[id][3])] - d->parts;
  }
}

// --- gathering and placing ----------------------------------------------------------------------

void RingBuilder::update_last_part_moves() {
  moved_.assign(static_cast<size_t>(parts_), 0);
  auto now = now_seconds();
  auto elapsed_hours = (now - last_part_moves_epoch_) / 3600;
  if (elapsed_hours <= 0) return;
  for (auto& hours : last_part_moves_)
    hours = static_cast<std::uint8_t>(std::min<std::int64_t>(hours + elapsed_hours, 0xff));
  last_part_moves_epoch_ = now;
}

// Picks up a replica from a device that keeps existing (it now wants one more partition).
void RingBuilder::take(std::uint32_t part, int replica, Gathered& gathered) {
  auto& slot = replica2part2dev_[static_cast<size_t>(replica)][part];
  auto id = slot;
  ++parts_wanted_[id];
  --dev(id).parts;
  gathered.add(part, replica);
  slot = none_device;
  set_moved(part);
}

void RingBuilder::adjust_replica_arrays(Gathered& gathered) {
  double whole = 0;
  double fraction = std::modf(replicas_, &whole);
  std::vector<size_t> lengths(static_cast<size_t>(whole), static_cast<size_t>(parts_));
  if (fraction > 0) lengths.push_back(static_cast<size_t>(static_cast<double>(parts_) * fraction));
  if (replica2part2dev_.size() > lengths.size()) replica2part2dev_.resize(lengths.size());
  for (size_t r = 0; r < lengths.size(); ++r) {
    if (r >= replica2part2dev_.size()) replica2part2dev_.emplace_back();
    auto& row = replica2part2dev_[r];
    for (size_t p = row.size(); p < lengths[r]; ++p)
      gathered.add(static_cast<std::uint32_t>(p), static_cast<int>(r));
    row.resize(lengths[r], none_device);
  }
}

// Every replica on a device marked for removal, min_part_hours or not; then the devices go.
int RingBuilder::gather_from_removed_devices(Gathered& gathered) {
  std::vector<char> removing(devices_.size(), 0);
  for (int id : remove_devices_)
    if (devices_[static_cast<size_t>(id)] && dev(id).parts) removing[static_cast<size_t>(id)] = 1;
  if (std::find(removing.begin(), removing.end(), 1) != removing.end()) {
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      for (size_t p = 0; p < row.size(); ++p) {
        if (row[p] == none_device || !removing[row[p]]) continue;
        row[p] = none_device;
        set_moved(static_cast<std::uint32_t>(p));
        gathered.add(static_cast<std::uint32_t>(p), static_cast<int>(r));
      }
    }
  }
  int removed = 0;
  for (int id : remove_devices_) {
    devices_[static_cast<size_t>(id)].reset();
    ++removed;
  }
  remove_devices_.clear();
  return removed;
}

// Replicas sitting in a tier that holds more of the partition than the plan's max.
void RingBuilder::gather_for_dispersion(const Tiers& t, const std::vector<Plan>& plan,
                                        Gathered& gathered) {
  TierCounts counts;
  std::vector<std::pair<std::uint16_t, int>> undispersed;
  for (std::uint32_t part = 0; part < parts_; ++part) {
    if (!can_move(part)) continue;
    counts.clear();
    for (auto& row : replica2part2dev_)
      if (part < row.size() && row[part] != none_device)
        for (int n : t.of_device[row[part]]) counts.add(n, 1);
    undispersed.clear();
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      if (part >= row.size() || row[part] == none_device) continue;
      auto& path = t.of_device[row[part]];
      if (std::any_of(path.begin(), path.end(),
                      [&](int n) { return counts.get(n) > plan[static_cast<size_t>(n)].max; }))
        undispersed.emplace_back(row[part], static_cast<int>(r));
    }
    if (undispersed.empty()) continue;
    std::stable_sort(undispersed.begin(), undispersed.end(), [&](auto& a, auto& b) {
      return parts_wanted_[a.first] < parts_wanted_[b.first];
    });
    for (auto [id, replica] : undispersed) {
      // Only one replica per partition moves, unless a device holds two (older rings could).
      if (!can_move(part) && !(counts.get(t.of_device[id][3]) > 1)) continue;
      for (int n : t.of_device[id]) counts.add(n, -1);
      take(part, replica, gathered);
    }
  }
}

void RingBuilder::gather_for_balance(const Tiers& t, const std::vector<Plan>& plan,
                                     bool disperse_first, Gathered& gathered,
                                     std::mt19937_64& random) {
  // Start somewhere on the other side of the ring from last time.
  auto quarter_turn = static_cast<std::uint64_t>(parts_ / 4);
  std::uniform_int_distribution<std::uint64_t> half(0, static_cast<std::uint64_t>(parts_ / 2));
  auto start = static_cast<std::uint32_t>((last_part_gather_start_ + quarter_turn + half(random)) %
                                          static_cast<std::uint64_t>(parts_));
  last_part_gather_start_ = start;
  if (disperse_first) gather_for_balance_can_disperse(t, plan, start, gathered);
  gather_for_balance_forced(start, gathered);
}

// From overweight devices, replicas that another failure domain wanting parts can take without
// breaking the plan's minimums.
void RingBuilder::gather_for_balance_can_disperse(const Tiers& t, const std::vector<Plan>& plan,
                                                  std::uint32_t start, Gathered& gathered) {
  std::vector<std::int64_t> wanted_in_tier(t.nodes.size(), 0);
  for (auto& d : devices_) {
    if (!d) continue;
    auto id = static_cast<size_t>(d->device.id);
    auto wanted = std::max<std::int64_t>(parts_wanted_[id], 0);
    for (int n : t.of_device[id]) wanted_in_tier[static_cast<size_t>(n)] += wanted;
  }
  TierCounts counts;
  std::vector<std::pair<std::uint16_t, int>> overweight;
  for (std::int64_t offset = 0; offset < parts_; ++offset) {
    auto part = static_cast<std::uint32_t>((start + offset) % parts_);
    if (!can_move(part)) continue;
    counts.clear();
    overweight.clear();
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      if (part >= row.size() || row[part] == none_device) continue;
      auto id = row[part];
      for (int n : t.of_device[id]) counts.add(n, 1);
      if (parts_wanted_[id] < 0) overweight.emplace_back(id, static_cast<int>(r));
    }
    if (overweight.empty()) continue;
    std::stable_sort(overweight.begin(), overweight.end(), [&](auto& a, auto& b) {
      return parts_wanted_[a.first] < parts_wanted_[b.first];
    });
    for (auto [id, replica] : overweight) {
      auto& path = t.of_device[id];
      // Stuck by the plan: some tier of this device holds no more than its share.
      if (std::any_of(path.begin(), path.end(), [&](int n) {
            auto& p = plan[static_cast<size_t>(n)];
            int c = counts.get(n);
            return p.min <= c && c < p.max;
          }))
        continue;
      // The deepest tier that must keep this replica; its other children must want parts.
      int stuck = path[0];
      for (int k = 3; k >= 0; --k) {
        stuck = path[static_cast<size_t>(k)];
        if (counts.get(stuck) - 1 < plan[static_cast<size_t>(stuck)].min) break;
      }
      std::int64_t elsewhere = 0;
      for (int c : t.nodes[static_cast<size_t>(stuck)].children)
        if (std::find(path.begin(), path.end(), c) == path.end())
          elsewhere += wanted_in_tier[static_cast<size_t>(c)];
      if (elsewhere <= 0) continue;
      for (int n : path) {
        counts.add(n, -1);
        --wanted_in_tier[static_cast<size_t>(n)];
      }
      take(part, replica, gathered);
      break;
    }
  }
}

// One replica of each movable partition from its most overweight device, wherever it may land.
void RingBuilder::gather_for_balance_forced(std::uint32_t start, Gathered& gathered) {
  for (std::int64_t offset = 0; offset < parts_; ++offset) {
    auto part = static_cast<std::uint32_t>((start + offset) % parts_);
    if (!can_move(part)) continue;
    int best_replica = -1;
    std::int64_t best_wanted = 0;
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      if (part >= row.size() || row[part] == none_device) continue;
      auto wanted = parts_wanted_[row[part]];
      // Strictly less: ties keep the earlier replica, as a stable sort would.
      if (wanted < 0 && (best_replica < 0 || wanted < best_wanted)) {
        best_replica = static_cast<int>(r);
        best_wanted = wanted;
      }
    }
    if (best_replica >= 0) take(part, best_replica, gathered);
  }
}

// Places each gathered replica by walking down the tiers, at each level into the child that
// still has room for this partition under the plan's max and the most partitions wanted.
void RingBuilder::reassign(const Tiers& t, const std::vector<Plan>& plan, Gathered& gathered,
                           std::mt19937_64& random) {
  std::vector<std::int64_t> available(t.nodes.size(), 0);
  using SortKey = std::tuple<std::int64_t, int, int>;
  std::vector<SortKey> key_of(devices_.size());
  std::uniform_int_distribution<int> tiebreak(0, 0xFFFF);
  std::vector<int> weighted;
  for (auto& d : devices_) {
    if (!d) continue;
    auto id = static_cast<size_t>(d->device.id);
    key_of[id] = {parts_wanted_[id], tiebreak(random), d->device.id};
    auto wanted = std::max<std::int64_t>(parts_wanted_[id], 0);
    for (int n : t.of_device[id]) available[static_cast<size_t>(n)] += wanted;
    if (d->device.weight > 0) weighted.push_back(d->device.id);
  }
  std::sort(weighted.begin(), weighted.end(), [&](int a, int b) {
    return key_of[static_cast<size_t>(a)] < key_of[static_cast<size_t>(b)];
  });
  // A tier sorts as its device sorting last; children are tried in that order and the first
  // with the most room wins ties.
  std::vector<SortKey> tier_key(t.nodes.size());
  for (int id : weighted)
    for (int n : t.of_device[static_cast<size_t>(id)])
      tier_key[static_cast<size_t>(n)] = key_of[static_cast<size_t>(id)];
  std::vector<std::vector<int>> children(t.nodes.size());
  for (size_t n = 0; n < t.nodes.size(); ++n) {
    children[n] = t.nodes[n].children;
    std::stable_sort(children[n].begin(), children[n].end(), [&](int a, int b) {
      return tier_key[static_cast<size_t>(a)] < tier_key[static_cast<size_t>(b)];
    });
  }

  TierCounts counts;
  for (auto& [part, replicas] : gathered.parts) {
    last_part_moves_[part] = 0;
    counts.clear();
    for (auto& row : replica2part2dev_)
      if (part < row.size() && row[part] != none_device)
        for (int n : t.of_device[row[part]]) counts.add(n, 1);
    for (int replica : replicas) {
      int node = 0;
      for (int depth = 1; depth <= 4; ++depth) {
        int best = -1;
        for (int c : children[static_cast<size_t>(node)]) {
          if (counts.get(c) >= plan[static_cast<size_t>(c)].max) continue;
          if (best < 0 || available[static_cast<size_t>(c)] > available[static_cast<size_t>(best)])
            best = c;
        }
        if (best < 0)
          throw RingBuilderError("no home for partition " + std::to_string(part) + " replica " +
                                 std::to_string(replica) + " below tier " + t.name(node));
        node = best;
      }
      int id = t.nodes[static_cast<size_t>(node)].device;
      --parts_wanted_[static_cast<size_t>(id)];
      ++dev(id).parts;
      for (int n : t.of_device[static_cast<size_t>(id)]) {
        --available[static_cast<size_t>(n)];
        counts.add(n, 1);
      }
      replica2part2dev_[static_cast<size_t>(replica)][part] = static_cast<std::uint16_t>(id);
    }
  }
}

RebalanceResult RingBuilder::rebalance(std::optional<std::uint64_t> seed) {
  int weighted_devices = 0;
  for (auto& d : devices_)
    if (d && d->device.weight > 0) ++weighted_devices;
  if (weighted_devices < replicas_)
    throw RingBuilderError("Replica count of " + python_float(replicas_) + " requires more than " +
                           std::to_string(weighted_devices) + " devices");
  std::optional<std::vector<std::vector<std::uint16_t>>> before;
  if (ever_rebalanced()) before = replica2part2dev_;

  update_last_part_moves();
  std::mt19937_64 random(seed ? *seed : std::random_device{}());
  Gathered gathered;
  gathered.index.assign(static_cast<size_t>(parts_), -1);
  adjust_replica_arrays(gathered);
  // What each device holds, counted afresh from the table.
  for (auto& d : devices_)
    if (d) d->parts = 0;
  for (auto& row : replica2part2dev_)
    for (auto id : row)
      if (id != none_device) ++dev(id).parts;

  auto t = tiers();
  auto plan = replica_plan(t);
  set_parts_wanted(t, plan);
  RebalanceResult result;
  result.removed_devices = gather_from_removed_devices(gathered);
  gather_for_dispersion(t, plan, gathered);
  for (int round = 0; round < max_balance_gather_rounds; ++round) {
    gather_for_balance(t, plan, round == 0, gathered, random);
    if (gathered.empty()) break;  // most likely min_part_hours
    std::shuffle(gathered.parts.begin(), gathered.parts.end(), random);
    reassign(t, plan, gathered, random);
    gathered.clear();
    bool overweight = false;
    for (auto& d : devices_)
      if (d && parts_wanted_[static_cast<size_t>(d->device.id)] < 0) overweight = true;
    if (!overweight) {
      result.finished = true;
      break;
    }
  }
  devices_changed_ = false;
  result.changed_parts = measure_dispersion(before ? &*before : nullptr);
  result.balance = balance();
  moved_.clear();
  parts_wanted_.clear();
  return result;
}

// Counts the replica slots that changed and Swift's dispersion: the percentage of
// partition-replicas in a failure domain holding more of their partition than it should, each
// partition counted at its worst tier depth.
std::int64_t RingBuilder::measure_dispersion(
    const std::vector<std::vector<std::uint16_t>>* before) {
  auto t = tiers();
  auto most = max_replicas(t, true);
  std::int64_t changed = 0, at_risk = 0;
  TierCounts counts;
  for (std::uint32_t part = 0; part < parts_; ++part) {
    counts.clear();
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      if (part >= row.size() || row[part] == none_device) continue;
      auto id = row[part];
      for (int n : t.of_device[id]) counts.add(n, 1);
      if (!before || r >= before->size() || part >= (*before)[r].size() || (*before)[r][part] != id)
        ++changed;
    }
    std::array<std::int64_t, 5> risk{};
    for (auto& [n, c] : counts.entries()) {
      auto allowed = most[static_cast<size_t>(n)];
      if (c > allowed)
        risk[t.nodes[static_cast<size_t>(n)].depth] += static_cast<std::int64_t>(c - allowed);
    }
    at_risk += *std::max_element(risk.begin(), risk.end());
  }
  dispersion_ = 100.0 * static_cast<double>(at_risk) / (static_cast<double>(parts_) * replicas_);
  ++version_;
  return changed;
}

std::vector<DispersionTier> RingBuilder::dispersion_report() const {
  std::vector<DispersionTier> out;
  if (!ever_rebalanced()) return out;
  auto t = tiers();
  auto most = max_replicas(t, true);
  auto width = static_cast<size_t>(std::ceil(replicas_)) + 1;
  std::vector<std::vector<std::int64_t>> graph(t.nodes.size());
  TierCounts counts;
  for (std::uint32_t part = 0; part < parts_; ++part) {
    counts.clear();
    for (auto& row : replica2part2dev_)
      if (part < row.size() && row[part] != none_device)
        for (int n : t.of_device[row[part]]) counts.add(n, 1);
    for (auto& [n, c] : counts.entries()) {
      auto& g = graph[static_cast<size_t>(n)];
      if (g.empty()) g.assign(width, 0);
      if (static_cast<size_t>(c) < width) ++g[static_cast<size_t>(c)];
    }
  }
  // Tiers in (region, zone, ip, device) order, parents before their children.
  std::vector<int> order;
  std::function<void(int)> walk;
  std::vector<std::vector<int>> all_children(t.nodes.size());
  for (size_t n = 1; n < t.nodes.size(); ++n)
    all_children[static_cast<size_t>(t.nodes[n].parent)].push_back(static_cast<int>(n));
  walk = [&](int n) {
    if (n) order.push_back(n);
    for (int c : all_children[static_cast<size_t>(n)]) walk(c);
  };
  walk(0);
  for (int n : order) {
    auto& g = graph[static_cast<size_t>(n)];
    if (g.empty()) continue;  // no replicas here
    DispersionTier tier;
    auto& node = t.nodes[static_cast<size_t>(n)];
    tier.name = node.depth == 4
                    ? "r" + std::to_string(node.region) + "z" + std::to_string(node.zone) + "-" +
                          node.ip + "/" + dev(node.device).device.device
                    : t.name(n);
    tier.max_replicas = static_cast<int>(most[static_cast<size_t>(n)]);
    std::int64_t with_some = 0, at_risk = 0;
    for (size_t k = 1; k < width; ++k) {
      with_some += g[k];
      tier.placed_parts += g[k] * static_cast<std::int64_t>(k);
      if (k > static_cast<size_t>(tier.max_replicas))
        at_risk += g[k] * static_cast<std::int64_t>(k - static_cast<size_t>(tier.max_replicas));
    }
    g[0] = parts_ - with_some;
    tier.dispersion = 100.0 * static_cast<double>(at_risk) / static_cast<double>(tier.placed_parts);
    tier.replicas = g;
    out.push_back(std::move(tier));
  }
  return out;
}

// --- reports ------------------------------------------------------------------------------------

std::vector<double> RingBuilder::balance_per_device() const {
  double total = total_weight();
  if (!(total > 0))
    throw RingBuilderError("There are no devices in this ring, or all devices have been deleted");
  double weight_of_one_part = static_cast<double>(parts_) * replicas_ / total;
  std::vector<double> out(devices_.size(), 0.0);
  for (auto& d : devices_) {
    if (!d) continue;
    auto& b = out[static_cast<size_t>(d->device.id)];
    if (!(d->device.weight > 0))
      b = d->parts ? max_balance : 0;
    else
      b = 100.0 * static_cast<double>(d->parts) / (d->device.weight * weight_of_one_part) - 100.0;
  }
  return out;
}

double RingBuilder::balance() const {
  auto per_device = balance_per_device();
  double worst = 0;
  for (auto& d : devices_)
    if (d) worst = std::max(worst, std::abs(per_device[static_cast<size_t>(d->device.id)]));
  return worst;
}

void RingBuilder::validate() const {
  if (replica2part2dev_.empty())
    throw RingBuilderError("_replica2part2dev empty; did you forget to rebalance?");
  std::int64_t on_devices = 0, in_table = 0;
  for (auto& d : devices_)
    if (d) on_devices += d->parts;
  for (auto& row : replica2part2dev_) in_table += static_cast<std::int64_t>(row.size());
  if (on_devices != in_table)
    throw RingBuilderError("All partitions are not double accounted for: " +
                           std::to_string(on_devices) + " != " + std::to_string(in_table));
  auto whole = static_cast<size_t>(std::ceil(replicas_));
  std::vector<std::uint16_t> holders;
  for (std::uint32_t part = 0; part < parts_; ++part) {
    holders.clear();
    for (size_t r = 0; r < replica2part2dev_.size(); ++r) {
      auto& row = replica2part2dev_[r];
      if (part >= row.size()) {
        if (r + 1 < whole)
          throw RingBuilderError("The partition assignments of replica " + std::to_string(r) +
                                 " were shorter than expected");
        break;
      }
      auto id = row[part];
      if (id >= devices_.size() || !devices_[id])
        throw RingBuilderError("Partition " + std::to_string(part) + ", replica " +
                               std::to_string(r) + " was not allocated to a device.");
      if (std::find(holders.begin(), holders.end(), id) != holders.end())
        throw RingBuilderError("The partition " + std::to_string(part) +
                               " has been assigned to duplicate devices");
      holders.push_back(id);
    }
  }
}

Ring RingBuilder::ring() const {
  std::vector<Device> devices;
  for (auto& d : devices_)
    if (d) devices.push_back(d->device);
  return Ring(part_power_, std::move(devices), replica2part2dev_);
}

// --- the builder file ---------------------------------------------------------------------------

void RingBuilder::save(const std::string& path) const {
  json::object o;
  o["format"] = "nubo-ring-builder";
  o["id"] = id_;
  o["part_power"] = part_power_;
  o["replicas"] = ring_format::number(replicas_);
  o["min_part_hours"] = min_part_hours_;
  o["overload"] = ring_format::number(overload_);
  o["version"] = version_;
  o["devs_changed"] = devices_changed_;
  if (dispersion_)
    o["dispersion"] = ring_format::number(*dispersion_);
  else
    o["dispersion"] = nullptr;
  json::array devices;
  for (auto& d : devices_) {
    if (!d) {
      devices.push_back(nullptr);
      continue;
    }
    auto j = ring_format::device_to_json(d->device);
    j["parts"] = d->parts;
    devices.push_back(std::move(j));
  }
  o["devices"] = std::move(devices);
  json::array removing;
  for (int id : remove_devices_) removing.push_back(id);
  o["remove_devices"] = std::move(removing);
  json::array rows;
  for (auto& row : replica2part2dev_) rows.push_back(json::string(ring_format::pack_u16(row)));
  o["replica2part2dev"] = std::move(rows);
  o["last_part_moves"] = base64_encode(std::string_view(
      reinterpret_cast<const char*>(last_part_moves_.data()), last_part_moves_.size()));
  o["last_part_moves_epoch"] = last_part_moves_epoch_;
  o["last_part_gather_start"] = last_part_gather_start_;
  ring_format::write_durably(path, json::serialize(o) + "\n");
}

RingBuilder RingBuilder::load(const std::string& path, const Clock* clock) {
  auto text = ring_format::read_whole(path);
  try {
    json::value doc = json::parse(text);
    if (!doc.is_object()) throw std::runtime_error("not a JSON object");
    auto& o = doc.as_object();
    auto number = [&](std::string_view key) {
      auto* v = find(o, key);
      if (!v || !v->is_number())
        throw std::runtime_error("missing or non-numeric \"" + std::string(key) + "\"");
      return v->to_number<double>();
    };
    RingBuilder b(static_cast<int>(number("part_power")), number("replicas"),
                  static_cast<int>(number("min_part_hours")), clock);
    b.id_ = string_or(o, "id", b.id_);
    b.overload_ = number("overload");
    b.version_ = static_cast<std::uint64_t>(number("version"));
    b.devices_changed_ = bool_or(o, "devs_changed", false);
    if (auto* v = find(o, "dispersion"); v && v->is_number())
      b.dispersion_ = v->to_number<double>();
    auto* devices = find(o, "devices");
    if (!devices || !devices->is_array()) throw std::runtime_error("missing \"devices\"");
    for (auto& d : devices->as_array()) {
      if (d.is_null()) {
        b.devices_.emplace_back();
        continue;
      }
      if (!d.is_object()) throw std::runtime_error("a device is not an object");
      BuilderDevice bd{ring_format::device_from_json(d.as_object()),
                       int_or(d.as_object(), "parts", 0)};
      if (static_cast<size_t>(bd.device.id) != b.devices_.size())
        throw std::runtime_error("device " + std::to_string(bd.device.id) + " is out of place");
      b.devices_.emplace_back(std::move(bd));
    }
    if (auto* v = find(o, "remove_devices"); v && v->is_array())
      for (auto& id : v->as_array()) {
        auto i = id.is_int64() ? id.as_int64() : -1;
        if (i < 0 || static_cast<size_t>(i) >= b.devices_.size() ||
            !b.devices_[static_cast<size_t>(i)])
          throw std::runtime_error("a device marked for removal does not exist");
        b.remove_devices_.push_back(static_cast<int>(i));
      }
    if (auto* v = find(o, "replica2part2dev"); v && v->is_array())
      for (auto& row : v->as_array()) {
        if (!row.is_string()) throw std::runtime_error("a replica row is not a string");
        auto values = ring_format::unpack_u16(row.as_string());
        if (values.size() > static_cast<size_t>(b.parts_))
          throw std::runtime_error("a replica row is too long");
        for (auto id : values)
          if (id != none_device && (id >= b.devices_.size() || !b.devices_[id]))
            throw std::runtime_error("a partition is on unknown device " + std::to_string(id));
        b.replica2part2dev_.push_back(std::move(values));
      }
    auto moves = ring_format::unpack_bytes(string_or(o, "last_part_moves"));
    if (moves.size() == b.last_part_moves_.size())
      std::copy(moves.begin(), moves.end(), b.last_part_moves_.begin());
    b.last_part_moves_epoch_ = static_cast<std::int64_t>(number("last_part_moves_epoch"));
    b.last_part_gather_start_ = static_cast<std::uint32_t>(int_or(o, "last_part_gather_start", 0)) %
                                static_cast<std::uint32_t>(b.parts_);
    return b;
  } catch (const std::exception& e) {
    throw std::runtime_error("invalid builder file " + path + ": " + e.what());
  }
}

}  // namespace nubo::object
