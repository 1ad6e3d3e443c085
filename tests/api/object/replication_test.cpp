// Storage servers repairing themselves over real HTTP: three (or four) storage servers on port 0
// with three-replica rings, objects and listings written to some replicas only, then one pass of
// the replicator, the updater or the auditor, and the files on each server's disk compared.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/ids.hpp"
#include "object/backend.hpp"
#include "object/replicator/replicator.hpp"
#include "object/ring/ring.hpp"
#include "object/ring/ring_file.hpp"
#include "object/server/storage_server.hpp"
#include "object/swift_http.hpp"
#include "object/timestamp.hpp"
#include "tests/api/support/served_pipeline.hpp"

using namespace nubo;
using namespace nubo::object;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Cluster {
 public:
  static constexpr int kPartPower = 4;
  // servers: how many run; ring_servers: how many the ring places replicas on (the others are
  // only ever handoffs).
  explicit Cluster(int servers = 3, int ring_servers = 3) {
    dir_ = fs::temp_directory_path() / ("nubo-replication-" + uuid4_hex());
    fs::create_directories(dir_ / "rings");
    std::vector<Device> devices;
    for (int i = 0; i < servers; ++i) {
      StorageSettings s;
      s.devices = (dir_ / ("server" + std::to_string(i))).string();
      s.hash_suffix = "test-suffix";
      s.rings = (dir_ / "rings").string();
      s.ip = "127.0.0.1";
      s.update_timeout = std::chrono::milliseconds(2000);
      s.replication_timeout = std::chrono::milliseconds(5000);
      fs::create_directories(s.devices + "/" + device(i));
      auto server = make_storage_server(s);
      served_.push_back(std::make_unique<apitest::ServedPipeline>(
          make_storage_spec(server), [](int status, const std::string& m) {
            return render_swift_error(ApiError(status, m));
          }));
      auto& url = served_.back()->url();
      server->settings.port = std::stoi(url.substr(url.rfind(':') + 1));
      servers_.push_back(server);
      Device d;
      d.id = i;
      d.zone = i + 1;
      d.ip = "127.0.0.1";
      d.port = server->settings.port;
      d.device = device(i);
      d.weight = 100;
      devices.push_back(d);
    }
    std::vector<std::vector<std::uint16_t>> table(3, std::vector<std::uint16_t>(1u << kPartPower));
    for (int r = 0; r < 3; ++r)
      for (std::uint32_t p = 0; p < (1u << kPartPower); ++p)
        table[static_cast<size_t>(r)][p] = static_cast<std::uint16_t>((p + r) % ring_servers);
    ring_ = Ring(kPartPower, devices, table);
    for (auto* kind : {"account", "container", "object"})
      ring_.save((dir_ / "rings" / (std::string(kind) + ".ring.json")).string());
  }
  ~Cluster() {
    served_.clear();
    servers_.clear();
    fs::remove_all(dir_);
  }
  static std::string device(int i) { return "d" + std::to_string(i); }
  StorageServer& server(int i) { return *servers_[static_cast<size_t>(i)]; }
  std::shared_ptr<StorageServer> server_ptr(int i) { return servers_[static_cast<size_t>(i)]; }
  int port(int i) { return servers_[static_cast<size_t>(i)]->settings.port; }
  const Ring& ring() const { return ring_; }
  fs::path dir() const { return dir_; }

  std::uint32_t part(const std::string& a, const std::string& c = {}, const std::string& o = {}) {
    return ring_.partition_of_hash(hash_path("", "test-suffix", a, c, o));
  }
  // The directory of an object on server i's device.
  fs::path object_dir(int i, const std::string& o) {
    auto hash = hash_path("", "test-suffix", "AUTH_a", "c", o);
    return fs::path(server(i).settings.devices) / device(i) / "objects" /
           std::to_string(part("AUTH_a", "c", o)) / hash.substr(29) / hash;
  }
  std::vector<std::string> files(int i, const std::string& o) {
    std::vector<std::string> out;
    if (!fs::exists(object_dir(i, o))) return out;
    for (auto& e : fs::directory_iterator(object_dir(i, o)))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  int call(int i, const std::string& method, const std::string& path, const std::string& body,
           http::Headers h = {}, std::string* out = nullptr) {
    BackendRequest r(pool_, "127.0.0.1", port(i));
    int status = r.call(method, encode_path(path), h, body);
    auto text = r.read_all();
    if (out) *out = text;
    return status;
  }
  int put_object(int i, const std::string& o, const std::string& body, const Timestamp& t,
                 http::Headers h = {}) {
    h.set("X-Timestamp", t.internal());
    h.set("Content-Type", "text/plain");
    return call(
        i, "PUT",
        "/object/" + device(i) + "/" + std::to_string(part("AUTH_a", "c", o)) + "/AUTH_a/c/" + o,
        body, h);
  }
  int delete_object(int i, const std::string& o, const Timestamp& t) {
    http::Headers h;
    h.set("X-Timestamp", t.internal());
    return call(
        i, "DELETE",
        "/object/" + device(i) + "/" + std::to_string(part("AUTH_a", "c", o)) + "/AUTH_a/c/" + o,
        "", h);
  }
  int get_object(int i, const std::string& o, std::string* body) {
    return call(
        i, "GET",
        "/object/" + device(i) + "/" + std::to_string(part("AUTH_a", "c", o)) + "/AUTH_a/c/" + o,
        "", {}, body);
  }
  int put_container(int i, const Timestamp& t) {
    http::Headers h;
    h.set("X-Timestamp", t.internal());
    return call(i, "PUT",
                "/container/" + device(i) + "/" + std::to_string(part("AUTH_a", "c")) + "/AUTH_a/c",
                "", h);
  }
  int container_row(int i, const std::string& o, const Timestamp& t, int size) {
    http::Headers h;
    h.set("X-Timestamp", t.internal());
    h.set("X-Size", std::to_string(size));
    h.set("X-Content-Type", "text/plain");
    h.set("X-Etag", "d41d8cd98f00b204e9800998ecf8427e");
    return call(
        i, "PUT",
        "/container/" + device(i) + "/" + std::to_string(part("AUTH_a", "c")) + "/AUTH_a/c/" + o,
        "", h);
  }
  // The names in server i's listing of container c (empty when it has none).
  std::string listing(int i) {
    std::string body;
    int status =
        call(i, "GET",
             "/container/" + device(i) + "/" + std::to_string(part("AUTH_a", "c")) + "/AUTH_a/c",
             "", {}, &body);
    if (status != 200) return "status " + std::to_string(status);
    std::string names;
    auto rows = json::parse(body);
    for (auto& row : rows.as_array())
      names += std::string(row.as_object().at("name").as_string()) + " ";
    return names;
  }

 private:
  fs::path dir_;
  std::vector<std::shared_ptr<StorageServer>> servers_;
  std::vector<std::unique_ptr<apitest::ServedPipeline>> served_;
  Ring ring_;
  BackendPool pool_;
};

// Whole seconds from an hour ago: recent enough that no tombstone is reclaimed yet.
Timestamp at(std::int64_t seconds) {
  static const std::int64_t base = Timestamp::now().raw / 100000 - 3600;
  return Timestamp{(base + seconds) * 100000, 0};
}

TEST(Replication, MissingCopiesArePushedByteIdentical) {
  Cluster c;
  std::string data(200000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7) % 26);
  auto t = Timestamp::now();
  ASSERT_EQ(c.put_object(0, "big", data, t), 201);
  ASSERT_EQ(c.put_object(1, "big", data, t), 201);
  ASSERT_TRUE(c.files(2, "big").empty());
  auto stats = Replicator(c.server_ptr(0)).run_once();
  EXPECT_EQ(stats.files_pushed, 1u);
  EXPECT_EQ(stats.failures, 0u);
  ASSERT_EQ(c.files(2, "big"), c.files(0, "big"));
  auto name = c.files(0, "big")[0];
  EXPECT_EQ(read_file(c.object_dir(2, "big") / name), read_file(c.object_dir(0, "big") / name));
  std::string body;
  EXPECT_EQ(c.get_object(2, "big", &body), 200);
  EXPECT_TRUE(body == data);
  // In sync now: nothing more to send, from either side.
  EXPECT_EQ(Replicator(c.server_ptr(0)).run_once().files_pushed, 0u);
  EXPECT_EQ(Replicator(c.server_ptr(2)).run_once().files_pushed, 0u);
}

TEST(Replication, TheNewestStateWinsOnEveryReplica) {
  Cluster c;
  ASSERT_EQ(c.put_object(0, "o", "old", at(0)), 201);
  ASSERT_EQ(c.put_object(1, "o", "old", at(0)), 201);
  ASSERT_EQ(c.delete_object(2, "o", at(100)), 404);  // a tombstone where nothing was
  ASSERT_EQ(c.put_object(1, "p", "new", at(200)), 201);
  ASSERT_EQ(c.put_object(0, "p", "older", at(150)), 201);
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 3; ++i) Replicator(c.server_ptr(i)).run_once();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.files(i, "o"), std::vector<std::string>{at(100).internal() + ".ts"}) << i;
    EXPECT_EQ(c.files(i, "p"), std::vector<std::string>{at(200).internal() + ".data"}) << i;
  }
}

TEST(Replication, HandoffCopiesMoveToThePrimariesAndGo) {
  Cluster c(4, 3);  // server 3 holds no primaries: whatever it has is a handoff copy
  auto t = Timestamp::now();
  std::string body = "written while a primary was down";
  auto part = c.part("AUTH_a", "c", "h");
  // The partition number on the handoff server, as the proxy sends it.
  BackendPool pool;
  http::Headers h;
  h.set("X-Timestamp", t.internal());
  ASSERT_EQ(c.call(3, "PUT", "/object/d3/" + std::to_string(part) + "/AUTH_a/c/h", body, h), 201);
  ASSERT_EQ(c.put_object(0, "h", body, t), 201);
  auto stats = Replicator(c.server_ptr(3)).run_once();
  EXPECT_EQ(stats.files_pushed, 2u);
  EXPECT_EQ(stats.handoff_files_removed, 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.files(i, "h").size(), 1u) << i;
  EXPECT_TRUE(c.files(3, "h").empty());
  EXPECT_FALSE(
      fs::exists(fs::path(c.server(3).settings.devices) / "d3" / "objects" / std::to_string(part)))
      << "the emptied handoff partition is removed";
}

TEST(Replication, AHandoffKeepsItsCopyWhileAPrimaryIsUnreachable) {
  Cluster c(4, 3);
  auto t = Timestamp::now();
  auto part = c.part("AUTH_a", "c", "k");
  http::Headers h;
  h.set("X-Timestamp", t.internal());
  ASSERT_EQ(c.call(3, "PUT", "/object/d3/" + std::to_string(part) + "/AUTH_a/c/k", "keep", h), 201);
  // A primary's device goes away (507 on every request).
  auto primaries = c.ring().primaries(part);
  int down = primaries[0].id;
  fs::rename(fs::path(c.server(down).settings.devices) / Cluster::device(down),
             fs::path(c.server(down).settings.devices) / "gone");
  auto stats = Replicator(c.server_ptr(3)).run_once();
  EXPECT_GE(stats.failures, 1u);
  EXPECT_EQ(stats.handoff_files_removed, 0u);
  EXPECT_EQ(c.files(3, "k").size(), 1u) << "the handoff copy stays until every primary has it";
}

TEST(Replication, TheAuditorQuarantinesACorruptFileAndTheReplicatorRestoresIt) {
  Cluster c;
  std::string data(50000, 'q');
  auto t = Timestamp::now();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.put_object(i, "doc", data, t), 201);
  auto name = c.files(1, "doc").at(0);
  auto path = c.object_dir(1, "doc") / name;
  auto good = read_file(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('Z');  // one byte of the body flipped: same size, different md5
  }
  auto audit = Auditor(c.server_ptr(1)).run_once(true);
  EXPECT_EQ(audit.quarantined, 1u);
  EXPECT_TRUE(c.files(1, "doc").empty());
  auto hash = c.object_dir(1, "doc").filename();
  EXPECT_TRUE(fs::exists(fs::path(c.server(1).settings.devices) / "d1" / "quarantined" / "objects" /
                         hash / name));
  std::string body;
  EXPECT_EQ(c.get_object(1, "doc", &body), 404) << "a quarantined object is not served";
  EXPECT_EQ(Auditor(c.server_ptr(0)).run_once(true).quarantined, 0u);
  Replicator(c.server_ptr(0)).run_once();
  EXPECT_EQ(read_file(path), good) << "restored from a good replica";
}

TEST(Replication, ACorruptCopyIsNotSpread) {
  Cluster c;
  auto t = Timestamp::now();
  ASSERT_EQ(c.put_object(0, "bad", std::string(4000, 'b'), t), 201);
  auto path = c.object_dir(0, "bad") / c.files(0, "bad").at(0);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('X');
  }
  auto stats = Replicator(c.server_ptr(0)).run_once();
  EXPECT_EQ(stats.files_pushed, 0u);
  EXPECT_TRUE(c.files(1, "bad").empty());
  EXPECT_TRUE(c.files(2, "bad").empty());
  EXPECT_TRUE(c.files(0, "bad").empty()) << "the sender quarantines its own bad copy";
}

TEST(Replication, ListingsConvergeOnEveryReplica) {
  Cluster c;
  auto t = Timestamp::now();
  ASSERT_EQ(c.put_container(0, t), 201);
  ASSERT_EQ(c.container_row(0, "a", t, 1), 201);
  ASSERT_EQ(c.container_row(0, "b", t, 2), 201);
  ASSERT_EQ(c.put_container(1, t), 201);
  Timestamp later = t;
  later.raw += 100;
  ASSERT_EQ(c.container_row(1, "c", later, 3), 201);
  EXPECT_EQ(c.listing(2), "status 404");
  auto stats = Replicator(c.server_ptr(0)).run_once();
  EXPECT_EQ(stats.failures, 0u);
  EXPECT_GE(stats.dbs_synced, 2u);
  Replicator(c.server_ptr(1)).run_once();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.listing(i), "a b c ") << i;
  // A deletion is a row too, and travels the same way.
  Timestamp deleted = later;
  deleted.raw += 100;
  http::Headers h;
  h.set("X-Timestamp", deleted.internal());
  ASSERT_EQ(c.call(2, "DELETE",
                   "/container/d2/" + std::to_string(c.part("AUTH_a", "c")) + "/AUTH_a/c/b", "", h),
            204);
  Replicator(c.server_ptr(2)).run_once();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.listing(i), "a c ") << i;
  // Converged: the next passes find every digest equal.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Replicator(c.server_ptr(i)).run_once().dbs_synced, 0u);
}

TEST(Replication, TheUpdaterDeliversPendingContainerUpdates) {
  Cluster c;
  auto t = Timestamp::now();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.put_container(i, t), 201);
  // The container server named for the update cannot be reached: the object server keeps it.
  http::Headers h;
  h.set("X-Container-Host", "127.0.0.1:1");
  h.set("X-Container-Device", "d0");
  h.set("X-Container-Partition", std::to_string(c.part("AUTH_a", "c")));
  Timestamp later = t;
  later.raw += 10;
  ASSERT_EQ(c.put_object(0, "late", "body", later, h), 201);
  auto pending = fs::path(c.server(0).settings.devices) / "d0" / "async_pending";
  ASSERT_TRUE(fs::exists(pending));
  EXPECT_EQ(c.listing(0), "");
  auto stats = Updater(c.server_ptr(0)).run_once();
  EXPECT_EQ(stats.records, 1u);
  EXPECT_EQ(stats.delivered, 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.listing(i), "late ") << i;
  EXPECT_EQ(Updater(c.server_ptr(0)).run_once().records, 0u) << "delivered records are removed";
}

TEST(Replication, OldTombstonesAreReclaimed) {
  Cluster c;
  c.server(0).settings.reclaim_age = std::chrono::seconds(3600);
  ASSERT_EQ(c.delete_object(0, "gone", Timestamp{Timestamp::now().raw - 7200 * 100000LL, 0}), 404);
  ASSERT_EQ(c.delete_object(0, "recent", Timestamp::now()), 404);
  ASSERT_EQ(c.files(0, "gone").size(), 1u);
  Replicator(c.server_ptr(0)).run_once();
  EXPECT_TRUE(c.files(0, "gone").empty());
  EXPECT_EQ(c.files(0, "recent").size(), 1u);
}

TEST(Replication, RingFilesAreReloadedWhenReplaced) {
  Cluster c;
  RingFile file((c.dir() / "rings" / "object.ring.json").string(), std::chrono::milliseconds(0));
  auto first = file.get();
  ASSERT_TRUE(first);
  EXPECT_EQ(file.get(), first) << "unchanged: the same ring";
  auto devices = c.ring().devices();
  std::vector<Device> devs;
  for (auto& d : devices) devs.push_back(*d);
  std::vector<std::vector<std::uint16_t>> table(2, std::vector<std::uint16_t>(16, 0));
  for (auto& v : table[1]) v = 1;
  Ring(4, devs, table).save(file.path());
  auto second = file.get();
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->replicas(), 2u);
}

}  // namespace

TEST(Replication, TheExpirerReapsWhatExpiredAndLeavesTheRest) {
  Cluster c;
  auto now = Timestamp::now().raw / 100000;
  auto past = std::to_string(now - 10), future = std::to_string(now + 3600);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.put_container(i, at(0)), 201);
  // Every object server sends its row to the container replica of the same index.
  auto with_row = [&](int i, std::optional<std::string> delete_at) {
    http::Headers h;
    h.set("X-Container-Host", "127.0.0.1:" + std::to_string(c.port(i)));
    h.set("X-Container-Device", Cluster::device(i));
    h.set("X-Container-Partition", std::to_string(c.part("AUTH_a", "c")));
    if (delete_at) h.set("X-Delete-At", *delete_at);
    return h;
  };
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.put_object(i, "expired", "e", at(1), with_row(i, past)), 201);
    ASSERT_EQ(c.put_object(i, "later", "l", at(2), with_row(i, future)), 201);
    ASSERT_EQ(c.put_object(i, "plain", "p", at(3), with_row(i, std::nullopt)), 201);
    // Overwritten without an expiry after it was queued: its entry no longer matches.
    ASSERT_EQ(c.put_object(i, "rewritten", "r", at(4), with_row(i, past)), 201);
    ASSERT_EQ(c.put_object(i, "rewritten", "r2", at(5), with_row(i, std::nullopt)), 201);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.listing(i), "expired later plain rewritten ") << i;
    EXPECT_EQ(c.server(i).expiring.size(Cluster::device(i)), 3u) << i;
  }
  for (int i = 0; i < 3; ++i) {
    auto stats = Expirer(c.server_ptr(i)).run_once();
    EXPECT_EQ(stats.entries, 2u) << i;
    EXPECT_EQ(stats.reaped, 1u) << i;
    EXPECT_EQ(stats.failures, 0u) << i;
    // The tombstone carries the delete-at time, the same on every replica.
    std::vector<std::string> tombstone{Timestamp{(now - 10) * 100000, 0}.internal() + ".ts"};
    EXPECT_EQ(c.files(i, "expired"), tombstone) << i;
    std::string body;
    EXPECT_EQ(c.get_object(i, "rewritten", &body), 200);
    EXPECT_EQ(body, "r2");
    EXPECT_EQ(c.server(i).expiring.size(Cluster::device(i)), 1u) << "only 'later' is left";
    EXPECT_EQ(Expirer(c.server_ptr(i)).run_once().entries, 0u) << "nothing more is due";
  }
  // Each replica's row went to its paired container replica: every listing lost it.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.listing(i), "later plain rewritten ") << i;
}

TEST(Replication, ACopyTheReplicatorBringsInExpiresThere) {
  Cluster c;
  auto now = Timestamp::now().raw / 100000;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.put_container(i, at(0)), 201);
  http::Headers h;
  h.set("X-Delete-At", std::to_string(now - 5));
  ASSERT_EQ(c.put_object(0, "o", "data", at(1), h), 201);
  Replicator(c.server_ptr(0)).run_once();
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(c.files(i, "o").size(), 1u) << i;
    EXPECT_EQ(c.server(i).expiring.size(Cluster::device(i)), 1u) << i;
    EXPECT_EQ(Expirer(c.server_ptr(i)).run_once().reaped, 1u) << i;
    EXPECT_TRUE(c.files(i, "o")[0].ends_with(".ts")) << i;
  }
}

TEST(Replication, TheAuditorQueuesAnExpiringObjectTheIndexLost) {
  Cluster c;
  auto now = Timestamp::now().raw / 100000;
  http::Headers h;
  h.set("X-Delete-At", std::to_string(now - 5));
  ASSERT_EQ(c.put_object(0, "o", "data", at(1), h), 201);
  auto& index = c.server(0).expiring;
  auto due = index.due("d0", now, 10);
  ASSERT_EQ(due.size(), 1u);
  index.remove("d0", due[0]);  // as a power loss could undo the entry
  ASSERT_EQ(index.size("d0"), 0u);
  Auditor(c.server_ptr(0)).run_once(true);
  EXPECT_EQ(index.size("d0"), 1u);
  EXPECT_EQ(Expirer(c.server_ptr(0)).run_once().reaped, 1u);
}

TEST(Replication, ADeviceWithoutExpiringObjectsKeepsNoQueue) {
  Cluster c;
  ASSERT_EQ(c.put_object(0, "o", "data", at(1)), 201);
  EXPECT_EQ(Expirer(c.server_ptr(0)).run_once().entries, 0u);
  EXPECT_FALSE(fs::exists(fs::path(c.server(0).settings.devices) / "d0" / "expiring.db"));
}
