// The object-storage ring: Swift's hash_path and partitions, handoff order, and the builder's
// properties (dispersion first, weights, fewest moves, min_part_hours), its files and its CLI.
#include "object/ring/ring.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/ids.hpp"
#include "object/ring/builder.hpp"
#include "object/ring/cli.hpp"

using namespace nubo;
using namespace nubo::object;
namespace fs = std::filesystem;

namespace {

Device device(int region, int zone, const std::string& ip, const std::string& name, double weight,
              int port = 6200) {
  Device d;
  d.region = region;
  d.zone = zone;
  d.ip = ip;
  d.port = port;
  d.device = name;
  d.weight = weight;
  return d;
}

// ring-lab's helper: device i in zone z at 10.0.<region>.<zone>.
Device lab_device(int id, int zone, double weight, int region = 1) {
  auto d = device(region, zone, "10.0." + std::to_string(region) + "." + std::to_string(zone),
                  "sd" + std::to_string(id), weight);
  d.id = id;
  return d;
}

RingBuilder lab_builder(const std::vector<Device>& devices, double overload = 0,
                        std::uint64_t seed = 1) {
  RingBuilder b(10, 3, 1);
  for (auto& d : devices) b.add_device(d);
  b.set_overload(overload);
  b.rebalance(seed);
  return b;
}

std::vector<std::int64_t> parts_per_device(const RingBuilder& b) {
  std::vector<std::int64_t> out;
  for (auto& d : b.devices()) out.push_back(d ? d->parts : 0);
  return out;
}

// For each partition, how many of its replica slots differ between two tables.
std::vector<int> moved_per_partition(const std::vector<std::vector<std::uint16_t>>& before,
                                     const std::vector<std::vector<std::uint16_t>>& after) {
  std::vector<int> moved(after[0].size(), 0);
  for (size_t p = 0; p < moved.size(); ++p) {
    std::multiset<int> old_devices, new_devices;
    for (auto& row : before) old_devices.insert(row[p]);
    for (auto& row : after) new_devices.insert(row[p]);
    for (int d : new_devices)
      if (old_devices.count(d) == 0) ++moved[p];
  }
  return moved;
}

// No partition has two replicas on one device, nor (when there are enough zones) in one zone.
void expect_dispersed(const RingBuilder& b, bool distinct_zones) {
  auto& table = b.table();
  for (size_t p = 0; p < table[0].size(); ++p) {
    std::set<int> devices;
    std::set<std::pair<int, int>> zones;
    for (auto& row : table) {
      auto& d = b.devices()[row[p]]->device;
      EXPECT_TRUE(devices.insert(row[p]).second) << "partition " << p << " twice on " << row[p];
      if (distinct_zones) {
        EXPECT_TRUE(zones.insert({d.region, d.zone}).second)
            << "partition " << p << " twice in zone " << d.zone;
      }
    }
  }
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("nubo-ring-" + uuid4_hex());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

class FakeClock : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(std::chrono::seconds s) { now_ += s; }

 private:
  TimePoint now_ = from_unix(1'700'000'000);
};

}  // namespace

TEST(RingHash, MatchesSwiftTestVectors) {
  Ring ring(10, {}, {});
  struct Vector {
    std::string prefix, suffix, account, container, object, md5;
    std::uint32_t part;
  };
  std::vector<Vector> vectors = {
      {"anchor-prefix", "anchor-suffix", "AUTH_test", "", "", "59bc196129976b1171cad2411ba56474",
       358},
      {"anchor-prefix", "anchor-suffix", "AUTH_test", "anchor-smoke", "",
       "4774aec917933c0fdce2d0a878e15f43", 285},
      {"anchor-prefix", "anchor-suffix", "AUTH_test", "anchor-smoke", "hello",
       "ffe4f02c7903787befba0d822d607ce0", 1023},
      {"", "changeme", "AUTH_test", "anchor-smoke", "hello", "916a4d984f0bc12448f7d06c77a1cc2e",
       581},
      {"changeme", "changeme", "AUTH_test", "anchor-smoke", "hello",
       "af6e3e320eb1ce392534e852e7e4cc96", 701},
  };
  for (auto& v : vectors) {
    auto md5 = hash_path(v.prefix, v.suffix, v.account, v.container, v.object);
    EXPECT_EQ(md5, v.md5) << v.account << "/" << v.container << "/" << v.object;
    EXPECT_EQ(ring.partition_of_hash(md5), v.part) << md5;
  }
  // The top part_power bits of the first four bytes, read big-endian.
  EXPECT_EQ(Ring(0, {}, {}).partition_of_hash("ffe4f02c7903787befba0d822d607ce0"), 0u);
  EXPECT_EQ(Ring(32, {}, {}).partition_of_hash("ffe4f02c7903787befba0d822d607ce0"), 0xffe4f02cu);
  EXPECT_EQ(Ring(16, {}, {}).partition_of_hash("ffe4f02c7903787befba0d822d607ce0"), 0xffe4u);
  EXPECT_THROW(ring.partition_of_hash("xyz"), std::invalid_argument);
  EXPECT_THROW(hash_path("", "", "a", "", "o"), std::invalid_argument);
}

// A fixed table over 2 regions x 2 zones x 2 servers x 2 devices; the expected handoffs are what
// Swift 2.30.1's Ring.get_more_nodes yields for the same table.
namespace {

Ring lab_ring(int part_power) {
  std::vector<Device> devices;
  int id = 0;
  for (int region = 1; region <= 2; ++region)
    for (int zone = 1; zone <= 2; ++zone)
      for (int server = 1; server <= 2; ++server)
        for (int disk = 1; disk <= 2; ++disk) {
          auto d = device(region, zone,
                          "10." + std::to_string(region) + "." + std::to_string(zone) + "." +
                              std::to_string(server),
                          "sd" + std::to_string(id), 100);
          d.id = id++;
          devices.push_back(d);
        }
  std::vector<std::vector<std::uint16_t>> table(3, std::vector<std::uint16_t>(1u << part_power));
  for (std::uint32_t r = 0; r < 3; ++r)
    for (std::uint32_t p = 0; p < table[r].size(); ++p)
      table[r][p] = static_cast<std::uint16_t>((p * 3 + r * 5 + (p >> 4)) % 16);
  return Ring(part_power, devices, table);
}

std::vector<int> ids(const std::vector<Device>& devices) {
  std::vector<int> out;
  for (auto& d : devices) out.push_back(d.id);
  return out;
}

}  // namespace

TEST(Ring, HandoffsFollowSwiftsOrder) {
  struct Case {
    int part_power;
    std::uint32_t part;
    std::vector<int> primaries, handoffs;
  };
  std::vector<Case> cases = {
      {8, 0, {0, 5, 10}, {14, 9, 3, 13, 7, 2, 8, 6, 11, 12, 1, 15, 4}},
      {8, 1, {3, 8, 13}, {5, 11, 0, 14, 6, 2, 1, 4, 9, 7, 12, 10, 15}},
      {8, 7, {5, 10, 15}, {3, 9, 12, 1, 6, 14, 4, 2, 7, 8, 13, 11, 0}},
      {8, 100, {2, 7, 12}, {10, 1, 15, 4, 8, 13, 0, 5, 3, 6, 11, 9, 14}},
      {8, 255, {12, 1, 6}, {9, 14, 3, 11, 4, 8, 13, 0, 15, 2, 7, 5, 10}},
      // 2^17 partitions: the walk steps by 2 and wraps onto the other residue.
      {17, 0, {0, 5, 10}, {12, 7, 2, 8, 15, 1, 13, 3, 4, 6, 11, 14, 9}},
      {17, 5, {15, 4, 9}, {1, 7, 12, 2, 10, 13, 3, 8, 14, 5, 6, 0, 11}},
      {17, 77777, {0, 5, 10}, {15, 9, 6, 13, 2, 4, 11, 1, 8, 14, 3, 12, 7}},
      {17, 131071, {12, 1, 6}, {11, 3, 8, 14, 4, 0, 13, 9, 15, 5, 10, 7, 2}},
  };
  Ring small = lab_ring(8), large = lab_ring(17);
  for (auto& c : cases) {
    auto& ring = c.part_power == 8 ? small : large;
    EXPECT_EQ(ids(ring.primaries(c.part)), c.primaries) << c.part;
    std::vector<int> pointers;
    for (auto* d : ring.primary_devices(c.part)) pointers.push_back(d->id);
    EXPECT_EQ(pointers, c.primaries);
    EXPECT_EQ(ids(ring.handoffs(c.part, 100)), c.handoffs) << c.part_power << "/" << c.part;
    // A limit cuts the same sequence short.
    EXPECT_EQ(ids(ring.handoffs(c.part, 4)),
              std::vector<int>(c.handoffs.begin(), c.handoffs.begin() + 4));
  }
}

TEST(Ring, SaveAndLoadRoundTrip) {
  TempDir dir;
  auto path = (dir.path / "object.ring.json").string();
  auto ring = lab_ring(8);
  ring.save(path);
  auto loaded = Ring::load(path);
  EXPECT_TRUE(loaded == ring);
  EXPECT_EQ(loaded.part_power(), 8);
  EXPECT_EQ(loaded.replicas(), 3u);
  EXPECT_EQ(ids(loaded.handoffs(7, 100)), ids(ring.handoffs(7, 100)));
  EXPECT_EQ(loaded.devices()[3]->url(), "http://10.1.1.2:6200");
  // Only the file remains: the temporary file was renamed into place.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);

  std::ofstream(path) << "{\"part_power\": 8}";
  EXPECT_THROW(Ring::load(path), std::runtime_error);
  EXPECT_THROW(Ring::load((dir.path / "missing").string()), std::runtime_error);
}

TEST(Ring, LargeRingLoadsAndAnswersQuickly) {
  TempDir dir;
  auto path = (dir.path / "object.ring.json").string();
  std::vector<Device> devices;
  for (int i = 0; i < 30; ++i) {
    auto d = device(1, i % 3 + 1, "10.0.0." + std::to_string(i % 6), "d" + std::to_string(i), 100);
    d.id = i;
    devices.push_back(d);
  }
  std::vector<std::vector<std::uint16_t>> table(3, std::vector<std::uint16_t>(1u << 18));
  for (std::uint32_t r = 0; r < 3; ++r)
    for (std::uint32_t p = 0; p < table[r].size(); ++p)
      table[r][p] = static_cast<std::uint16_t>((p * 7 + r * 10) % 30);
  Ring(18, devices, table).save(path);

  auto start = std::chrono::steady_clock::now();
  auto ring = Ring::load(path);
  auto loaded = std::chrono::steady_clock::now();
  size_t seen = 0;
  for (std::uint32_t i = 0; i < 100000; ++i)
    seen += ring.primary_devices(
                    ring.partition_of_hash(hash_path("p", "s", "AUTH_a", "c", std::to_string(i))))
                .size();
  auto done = std::chrono::steady_clock::now();
  EXPECT_EQ(seen, 300000u);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(loaded - start).count(), 500);
  // Hashing and finding the primaries: a few microseconds per request at most.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(done - loaded).count(), 1000);
}

TEST(RingBuilder, ThreeZonesEachHoldEveryPartition) {
  auto b = lab_builder({lab_device(0, 1, 100), lab_device(1, 2, 100), lab_device(2, 3, 100)});
  EXPECT_EQ(parts_per_device(b), (std::vector<std::int64_t>{1024, 1024, 1024}));
  EXPECT_DOUBLE_EQ(b.balance(), 0);
  EXPECT_DOUBLE_EQ(*b.dispersion(), 0);
  expect_dispersed(b, true);
  b.validate();
}

TEST(RingBuilder, ATinyZoneStillTakesAThird) {
  // ring-lab 3: one device never holds two replicas, so zone 3 (10+10) takes 1024 replicas.
  auto b = lab_builder(
      {lab_device(0, 1, 100), lab_device(1, 2, 100), lab_device(2, 3, 10), lab_device(3, 3, 10)});
  EXPECT_EQ(parts_per_device(b), (std::vector<std::int64_t>{1024, 1024, 512, 512}));
  EXPECT_NEAR(b.balance(), 266.7, 0.1);
  EXPECT_DOUBLE_EQ(*b.dispersion(), 0);
  expect_dispersed(b, true);
}

TEST(RingBuilder, OverloadTradesWeightForDispersion) {
  // ring-lab 2: zones 1 and 2 one device of 100 each, zone 3 devices of 200 and 100.
  std::vector<Device> devices = {lab_device(0, 1, 100), lab_device(1, 2, 100),
                                 lab_device(2, 3, 200), lab_device(3, 3, 100)};
  auto by_weight = lab_builder(devices, 0);
  EXPECT_NEAR(by_weight.required_overload(), 0.5, 1e-9);
  auto parts = parts_per_device(by_weight);
  EXPECT_NEAR(parts[0], 683, 2);
  EXPECT_NEAR(parts[1], 683, 2);
  EXPECT_EQ(parts[2], 1024);  // its weighted share (1.2 replicas) is capped at one
  EXPECT_NEAR(parts[3], 682, 2);
  EXPECT_NEAR(*by_weight.dispersion(), 22.2, 0.3);
  EXPECT_NEAR(by_weight.balance(), 16.7, 0.3);
  expect_dispersed(by_weight, false);

  auto dispersed = lab_builder(devices, 1.0);
  parts = parts_per_device(dispersed);
  EXPECT_EQ(parts[0], 1024);
  EXPECT_EQ(parts[1], 1024);
  EXPECT_NEAR(parts[2], 614, 2);
  EXPECT_NEAR(parts[3], 410, 2);
  EXPECT_DOUBLE_EQ(*dispersed.dispersion(), 0);
  expect_dispersed(dispersed, true);

  auto between = lab_builder(devices, 0.1);
  EXPECT_LT(*between.dispersion(), *by_weight.dispersion());
  EXPECT_GT(*between.dispersion(), 0);
}

TEST(RingBuilder, TwoZonesSplitTwoAndOne) {
  auto b = lab_builder(
      {lab_device(0, 1, 100), lab_device(1, 1, 100), lab_device(2, 2, 100), lab_device(3, 2, 100)});
  for (size_t p = 0; p < b.parts(); ++p) {
    std::map<int, int> zones;
    for (auto& row : b.table()) ++zones[b.devices()[row[p]]->device.zone];
    ASSERT_EQ(zones.size(), 2u) << p;
  }
  expect_dispersed(b, false);
  EXPECT_DOUBLE_EQ(*b.dispersion(), 0);
}

TEST(RingBuilder, AddingAZoneMovesAQuarterAndOneReplicaPerPartition) {
  // ring-lab 4: six devices in three zones, then a fourth zone of two devices.
  std::vector<Device> devices;
  for (int i = 0; i < 6; ++i) devices.push_back(lab_device(i, i / 2 + 1, 100));
  auto b = lab_builder(devices);
  auto before = b.table();
  b.add_device(lab_device(6, 4, 100));
  b.add_device(lab_device(7, 4, 100));
  // Right away nothing may move: every partition moved less than min_part_hours ago.
  auto now = b.rebalance(3);
  EXPECT_EQ(now.changed_parts, 0);
  EXPECT_EQ(b.table(), before);
  EXPECT_GT(b.min_part_seconds_left(), 3500);

  b.pretend_min_part_hours_passed();
  auto result = b.rebalance(3);
  auto moved = moved_per_partition(before, b.table());
  std::int64_t total = 0;
  for (int m : moved) {
    EXPECT_LE(m, 1);
    total += m;
  }
  EXPECT_EQ(total, result.changed_parts);
  // The ideal is exactly 25% of 3072 replica slots.
  EXPECT_NEAR(static_cast<double>(total), 768, 768 * 0.02);
  auto parts = parts_per_device(b);
  for (auto p : parts) EXPECT_NEAR(p, 384, 4);
  EXPECT_DOUBLE_EQ(*b.dispersion(), 0);
  expect_dispersed(b, true);
  b.validate();

  // And again straight away: min_part_hours holds everything where it is.
  auto again = b.rebalance(4);
  EXPECT_EQ(again.changed_parts, 0);
}

TEST(RingBuilder, RemovingADeviceMovesOnlyItsPartitionsImmediately) {
  std::vector<Device> devices;
  for (int i = 0; i < 8; ++i) devices.push_back(lab_device(i, i / 2 + 1, 100));
  auto b = lab_builder(devices);
  auto before = b.table();
  auto held = b.devices()[7]->parts;
  EXPECT_EQ(held, 384);
  b.remove_device(7);
  EXPECT_TRUE(b.marked_for_removal(7));
  EXPECT_THROW(b.set_weight(7, 50), RingBuilderError);
  // Every partition moved moments ago, yet the removed device's go now, and nothing else.
  auto result = b.rebalance(4);
  EXPECT_EQ(result.removed_devices, 1);
  EXPECT_EQ(result.changed_parts, held);
  EXPECT_FALSE(b.devices()[7].has_value());
  auto moved = moved_per_partition(before, b.table());
  for (size_t p = 0; p < moved.size(); ++p) {
    bool was_on_removed = false;
    for (auto& row : before) was_on_removed |= row[p] == 7;
    EXPECT_EQ(moved[p], was_on_removed ? 1 : 0) << p;
  }
  expect_dispersed(b, true);
  b.validate();
  // Device 6, alone in zone 4 now, keeps what it had and takes some of device 7's.
  EXPECT_GT(b.devices()[6]->parts, 384);
}

TEST(RingBuilder, PartsFollowWeight) {
  // Four zones of equal weight; zone 1 is one device of weight 200, the others two of 100.
  std::vector<Device> devices = {lab_device(0, 1, 200)};
  for (int zone = 2; zone <= 4; ++zone) {
    devices.push_back(device(1, zone, "10.0.1." + std::to_string(zone), "a", 100));
    devices.push_back(device(1, zone, "10.0.1." + std::to_string(zone), "b", 100));
  }
  auto b = lab_builder(devices);
  auto parts = parts_per_device(b);
  EXPECT_EQ(parts[0], 768);
  for (size_t i = 1; i < parts.size(); ++i) EXPECT_EQ(parts[i], 384) << i;
  EXPECT_LT(b.balance(), 1);
  expect_dispersed(b, true);

  // One zone, one server: a device of double weight gets twice the partitions.
  RingBuilder single(10, 3, 0);
  for (int i = 0; i < 6; ++i)
    single.add_device(device(1, 1, "10.0.0.1", "d" + std::to_string(i), i == 5 ? 200 : 100));
  single.rebalance(7);
  parts = parts_per_device(single);
  EXPECT_NEAR(parts[5], 3072.0 * 2 / 7, 2);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(parts[i], 3072.0 / 7, 2);
  expect_dispersed(single, false);

  // Doubling a device's weight later brings it close to its new share (Swift's builder lands
  // within a few percent too: 748 of 768 with the same layout).
  single.set_weight(0, 200);
  single.pretend_min_part_hours_passed();
  single.rebalance(8);
  parts = parts_per_device(single);
  EXPECT_NEAR(parts[0], 3072.0 * 2 / 8, 25);
  EXPECT_NEAR(parts[5], 3072.0 * 2 / 8, 25);
  expect_dispersed(single, false);
}

TEST(RingBuilder, AddingAnEqualDeviceMovesItsFairShare) {
  // One server of six devices gets a seventh: it takes 3072 / 7 replicas and nothing else moves.
  RingBuilder b(10, 3, 0);
  for (int i = 0; i < 6; ++i) b.add_device(device(1, 1, "10.0.0.1", "d" + std::to_string(i), 100));
  b.rebalance(7);
  auto before = b.table();
  b.add_device(device(1, 1, "10.0.0.1", "d6", 100));
  auto result = b.rebalance(8);
  EXPECT_NEAR(static_cast<double>(result.changed_parts), 3072.0 / 7, 5);
  EXPECT_NEAR(b.devices()[6]->parts, 3072.0 / 7, 5);
  for (int m : moved_per_partition(before, b.table())) EXPECT_LE(m, 1);

  // Three zones of three devices; a tenth device in zone 2 takes its 307.
  RingBuilder zones(10, 3, 0);
  for (int i = 0; i < 9; ++i)
    zones.add_device(
        device(1, i % 3 + 1, "10.0.0." + std::to_string(i % 3 + 1), "d" + std::to_string(i), 100));
  zones.rebalance(1);
  zones.add_device(device(1, 2, "10.0.0.2", "d9", 100));
  result = zones.rebalance(2);
  EXPECT_NEAR(static_cast<double>(result.changed_parts), 307, 5);
  for (auto& d : zones.devices()) EXPECT_NEAR(d->parts, 307, 2);
  // Zone 2 now holds 1228 replicas over 1024 partitions: some share it, as with Swift (6.64).
  EXPECT_NEAR(*zones.dispersion(), 6.64, 0.5);
}

TEST(RingBuilder, MinPartHoursCountsWholeHours) {
  FakeClock clock;
  RingBuilder b(8, 3, 2, &clock);
  for (int zone = 1; zone <= 3; ++zone) b.add_device(lab_device(zone - 1, zone, 100));
  b.rebalance(1);
  b.add_device(lab_device(3, 4, 100));
  EXPECT_EQ(b.min_part_seconds_left(), 7200);
  clock.advance(std::chrono::hours(1));
  EXPECT_EQ(b.rebalance(2).changed_parts, 0);
  // That rebalance counted the hour into every partition (and restarted the clock from there).
  clock.advance(std::chrono::hours(1));
  auto result = b.rebalance(2);
  EXPECT_NEAR(static_cast<double>(result.changed_parts), 192, 8);
  // What just moved is held again for two hours.
  for (size_t p = 0; p < b.parts(); ++p)
    EXPECT_TRUE(b.last_part_moves()[p] == 0 || b.last_part_moves()[p] >= 2);
}

TEST(RingBuilder, HandoffsAvoidPrimariesAndPreferOtherZones) {
  std::vector<Device> devices;
  for (int i = 0; i < 8; ++i) devices.push_back(lab_device(i, i / 2 + 1, 100));
  auto b = lab_builder(devices);
  auto ring = b.ring();
  for (std::uint32_t part = 0; part < ring.partitions(); part += 37) {
    auto primaries = ring.primaries(part);
    ASSERT_EQ(primaries.size(), 3u);
    std::set<int> primary_ids, primary_zones;
    for (auto& d : primaries) {
      primary_ids.insert(d.id);
      primary_zones.insert(d.zone);
    }
    auto handoffs = ring.handoffs(part, 100);
    EXPECT_EQ(handoffs.size(), 5u);
    std::set<int> seen;
    for (auto& d : handoffs) {
      EXPECT_EQ(primary_ids.count(d.id), 0u);
      EXPECT_TRUE(seen.insert(d.id).second);
    }
    // The first handoff is in the one zone no primary uses.
    EXPECT_EQ(primary_zones.count(handoffs[0].zone), 0u);
  }
}

TEST(RingBuilder, FractionalReplicasAndValidation) {
  RingBuilder b(10, 2.5, 1);
  for (int zone = 1; zone <= 3; ++zone) b.add_device(lab_device(zone - 1, zone, 100));
  b.rebalance(1);
  ASSERT_EQ(b.table().size(), 3u);
  EXPECT_EQ(b.table()[2].size(), 512u);
  b.validate();
  auto ring = b.ring();
  EXPECT_EQ(ring.primaries(0).size(), 3u);
  EXPECT_EQ(ring.primaries(1023).size(), 2u);

  RingBuilder too_few(10, 3, 1);
  too_few.add_device(lab_device(0, 1, 100));
  too_few.add_device(lab_device(1, 2, 100));
  EXPECT_THROW(too_few.rebalance(), RingBuilderError);
  EXPECT_THROW(RingBuilder(10, 0.5, 1), RingBuilderError);
  EXPECT_THROW(too_few.add_device(lab_device(1, 3, 100)), RingBuilderError);  // id taken
}

TEST(RingBuilder, SaveAndLoadRoundTrip) {
  TempDir dir;
  auto path = (dir.path / "object.builder").string();
  std::vector<Device> devices;
  for (int i = 0; i < 6; ++i) devices.push_back(lab_device(i, i / 2 + 1, 100));
  auto b = lab_builder(devices);
  b.add_device(lab_device(6, 4, 50));
  b.remove_device(2);
  b.set_overload(0.25);
  b.save(path);
  auto loaded = RingBuilder::load(path);
  EXPECT_EQ(loaded.id(), b.id());
  EXPECT_EQ(loaded.version(), b.version());
  EXPECT_EQ(loaded.table(), b.table());
  EXPECT_EQ(loaded.last_part_moves(), b.last_part_moves());
  EXPECT_EQ(loaded.min_part_seconds_left(), b.min_part_seconds_left());
  EXPECT_DOUBLE_EQ(loaded.overload(), 0.25);
  EXPECT_TRUE(loaded.devices_changed());
  EXPECT_TRUE(loaded.marked_for_removal(2));
  EXPECT_EQ(parts_per_device(loaded), parts_per_device(b));
  EXPECT_TRUE(loaded.ring() == b.ring());
  // Both go on the same way from here.
  loaded.pretend_min_part_hours_passed();
  b.pretend_min_part_hours_passed();
  EXPECT_EQ(loaded.rebalance(9).changed_parts, b.rebalance(9).changed_parts);
  EXPECT_EQ(loaded.table(), b.table());
}

namespace {

struct Cli {
  TempDir dir;
  std::string builder = (dir.path / "object.builder").string();
  std::string out, err;
  int run(std::vector<std::string> args) {
    args.insert(args.begin(), builder);
    std::ostringstream o, e;
    int rc = ring_command(args, o, e);
    out = o.str();
    err = e.str();
    return rc;
  }
};

}  // namespace

TEST(RingCli, CreateAddRebalanceSession) {
  Cli cli;
  ASSERT_EQ(cli.run({"create", "10", "3", "1"}), 0);
  EXPECT_EQ(cli.out, "");
  EXPECT_TRUE(fs::exists(cli.builder));
  EXPECT_TRUE(fs::is_directory(cli.dir.path / "backups"));

  EXPECT_EQ(cli.run({"add", "r1z1-127.0.0.1:6200/d1", "100"}), 0);
  EXPECT_EQ(cli.out,
            "Device d0r1z1-127.0.0.1:6200R127.0.0.1:6200/d1_\"\" with 100.0 weight got id 0\n");
  EXPECT_EQ(cli.run({"add", "r1z2-127.0.0.1:6200/d2", "100"}), 0);
  EXPECT_EQ(cli.run({"add", "z3-127.0.0.1:6200/d3_fast", "100"}), 0);
  EXPECT_EQ(cli.out,
            "Device d2r1z3-127.0.0.1:6200R127.0.0.1:6200/d3_\"fast\" with 100.0 weight got id 2\n");
  EXPECT_EQ(cli.err,
            "WARNING: No region specified for z3-127.0.0.1:6200/d3_fast. Defaulting to "
            "region 1.\n");
  EXPECT_EQ(cli.run({"add", "r1z3-127.0.0.1:6200/d3", "100"}), 2);
  EXPECT_EQ(cli.out,
            "Device 2 already uses 127.0.0.1:6200/d3.\nThe on-disk ring builder is "
            "unchanged.\n\n");
  EXPECT_EQ(cli.run({"add", "r1x3-127.0.0.1:6200/d4", "100"}), 2);
  EXPECT_EQ(cli.out,
            "Invalid add value: r1x3-127.0.0.1:6200/d4\nThe on-disk ring builder is "
            "unchanged.\n");

  EXPECT_EQ(cli.run({"rebalance", "--seed", "1"}), 0);
  EXPECT_EQ(cli.out,
            "Reassigned 3072 (300.00%) partitions. Balance is now 0.00.  Dispersion is now 0.00\n");
  auto ring_file = cli.dir.path / "object.ring.json";
  ASSERT_TRUE(fs::exists(ring_file));
  auto ring = Ring::load(ring_file.string());
  EXPECT_EQ(ring.replicas(), 3u);
  EXPECT_EQ(ring.devices().size(), 3u);

  EXPECT_EQ(cli.run({"rebalance"}), 1);
  EXPECT_TRUE(std::regex_match(cli.out, std::regex("No partitions could be reassigned.\n"
                                                   "The time between rebalances must be at least "
                                                   "min_part_hours: 1 hours \\((1:00:00|0:59:5.) "
                                                   "remaining\\)\n")))
      << cli.out;

  EXPECT_EQ(cli.run({}), 0);
  EXPECT_NE(cli.out.find("1024 partitions, 3.000000 replicas, 1 regions, 3 zones, 3 devices, "
                         "0.00 balance, 0.00 dispersion\n"),
            std::string::npos)
      << cli.out;
  EXPECT_NE(cli.out.find("The overload factor is 0.00% (0.000000)\n"), std::string::npos);
  EXPECT_NE(cli.out.find("Ring file " + ring_file.string() + " is up-to-date\n"),
            std::string::npos);
  EXPECT_NE(cli.out.find("Devices:   id region zone ip address:port replication ip:port  name "
                         "weight partitions balance flags meta\n"),
            std::string::npos);
  EXPECT_NE(cli.out.find("            2      1    3  127.0.0.1:6200      127.0.0.1:6200    d3 "
                         "100.00       1024    0.00       fast\n"),
            std::string::npos)
      << cli.out;

  EXPECT_EQ(cli.run({"set_weight", "d2", "50"}), 0);
  EXPECT_EQ(cli.out, "d2r1z3-127.0.0.1:6200R127.0.0.1:6200/d3_\"fast\" weight set to 50.0\n");
  EXPECT_EQ(cli.run({"set_weight", "d9", "50"}), 2);
  EXPECT_EQ(cli.out, "Search value matched 0 devices.\nThe on-disk ring builder is unchanged.\n");
  EXPECT_EQ(cli.run({"set_weight", "z1", "50", "z9x", "1"}), 2);
  EXPECT_EQ(cli.out, "Invalid <search-value>: 'z9x'\n");
  EXPECT_EQ(cli.run({}), 0);
  EXPECT_NE(cli.out.find(" is obsolete\n"), std::string::npos);

  EXPECT_EQ(cli.run({"add", "r1z4-127.0.0.1:6200/d4", "100"}), 0);
  EXPECT_EQ(cli.run({"remove", "/d1"}), 0);
  EXPECT_EQ(cli.out,
            "d0r1z1-127.0.0.1:6200R127.0.0.1:6200/d1_\"\" marked for removal and will be "
            "removed next rebalance.\n");
  EXPECT_EQ(cli.run({}), 0);
  EXPECT_NE(cli.out.find("   0.00       1024  999.99   DEL \n"), std::string::npos) << cli.out;
  // The removed device's partitions move at once, min_part_hours notwithstanding; device 2's
  // weight of 50 cannot be honoured (three devices hold every partition), hence the note.
  EXPECT_EQ(cli.run({"rebalance"}), 1) << cli.out;
  EXPECT_EQ(cli.out.substr(0, 31), "Reassigned 1024 (100.00%) parti");
  EXPECT_NE(cli.out.find("NOTE: Balance of 66.67 indicates you should push this \n      ring, "
                         "wait at least 1 hours, and rebalance/repush.\n"),
            std::string::npos)
      << cli.out;

  EXPECT_EQ(cli.run({"pretend_min_part_hours_passed"}), 0);
  EXPECT_EQ(cli.out, "");
  EXPECT_EQ(cli.run({"write_ring"}), 0);
  EXPECT_EQ(cli.run({"validate"}), 0);
  EXPECT_EQ(cli.run({"dispersion", "-v"}), 0) << cli.out;
  EXPECT_NE(cli.out.find("Dispersion is 0.000000, Balance is "), std::string::npos);
  EXPECT_EQ(cli.run({"frobnicate"}), 2);
  EXPECT_EQ(cli.out, "Unknown command: frobnicate\n");
}

TEST(RingCli, ErrorsAndWarnings) {
  Cli cli;
  EXPECT_EQ(cli.run({}), 2);
  EXPECT_EQ(cli.out, "Ring Builder file does not exist: " + cli.builder + "\n");
  EXPECT_EQ(cli.run({"create", "10", "3"}), 2);
  ASSERT_EQ(cli.run({"create", "8", "3", "1"}), 0);
  EXPECT_EQ(cli.run({"add", "--region", "1", "--zone", "1", "--ip", "10.0.0.1", "--port", "6200",
                     "--device", "sdb", "--weight", "100", "--meta", "rack 4"}),
            0);
  EXPECT_EQ(
      cli.out,
      "Device d0r1z1-10.0.0.1:6200R10.0.0.1:6200/sdb_\"rack 4\" with 100.0 weight got id 0\n");
  EXPECT_EQ(cli.run({"add", "--region", "1", "--zone", "2"}), 2);
  EXPECT_EQ(cli.out,
            "Required argument -i/--ip not specified.\nThe on-disk ring builder is "
            "unchanged.\n");
  // Too few devices for three replicas.
  EXPECT_EQ(cli.run({"rebalance"}), 2);
  EXPECT_NE(cli.out.find("Replica count of 3.0 requires more than 1 devices"), std::string::npos);
  EXPECT_EQ(cli.run({"add", "r1z1-10.0.0.1:6200/sdc", "100", "r1z1-10.0.0.2:6200/sdb", "100"}), 0);
  // All in one zone: dispersion is fine (one zone), balanced.
  EXPECT_EQ(cli.run({"rebalance"}), 0) << cli.out;
  EXPECT_EQ(cli.run({"set_overload", "10%"}), 0);
  EXPECT_EQ(cli.out,
            "The overload factor is now 10.00% (0.100000)\nThe change will take effect "
            "after the next rebalance.\n");
  EXPECT_EQ(cli.run({"set_overload", "2"}), 1);
  EXPECT_EQ(cli.run({"set_min_part_hours", "0"}), 0);
  // Nothing to gain: refused, and nothing written.
  EXPECT_EQ(cli.run({"rebalance"}), 1);
  EXPECT_EQ(cli.out,
            "No partitions could be reassigned.\nThere is no need to do so at this time\n");
  EXPECT_EQ(cli.run({"search", "/sdb"}), 0);
  EXPECT_EQ(std::count(cli.out.begin(), cli.out.end(), '\n'), 3);  // header and two devices
  EXPECT_EQ(cli.run({"remove", "z1"}), 2);
  EXPECT_NE(cli.out.find("Matched more than one device:"), std::string::npos);
  // The ring file's name gives its builder.
  std::ostringstream out, err;
  EXPECT_EQ(ring_command({(cli.dir.path / "object.ring.json").string()}, out, err), 0);
  EXPECT_EQ(out.str().substr(0, 12), "Note: using ");
}
