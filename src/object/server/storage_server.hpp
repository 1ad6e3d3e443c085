// `nubo object-server`: one storage host's account, container and object servers behind one
// port, speaking Swift's backend protocol under a prefix per kind:
//   /object/<device>/<partition>/<account>/<container>/<object>
//   /container/<device>/<partition>/<account>/<container>[/<object>]   (rows from object servers)
//   /account/<device>/<partition>/<account>[/<container>]              (rows from containers)
//   /replicate/objects|containers|accounts/<device>/<partition>[/...]   (replication, see below)
// Writes carry the proxy's X-Timestamp; the newest timestamp wins everywhere.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/service.hpp"
#include "object/backend.hpp"
#include "object/ring/ring_file.hpp"
#include "object/server/expiring.hpp"
#include "object/server/listing_db.hpp"
#include "object/server/partition.hpp"

namespace nubo::object {

struct StorageSettings {
  std::string devices;                             // the directory holding one directory per device
  std::string hash_prefix, hash_suffix;            // the cluster's secret for hash_path()
  std::chrono::milliseconds update_timeout{1000};  // container and account updates
  // Where the rings are (replication and pending updates find the other replicas there).
  std::string rings;
  // This server as the rings name it: devices at this ip (any, when empty or 0.0.0.0) and port
  // are local.
  std::string ip;
  int port = 6200;
  // How long tombstones (deleted objects and rows) are kept: longer than any replica stays away.
  std::chrono::seconds reclaim_age{7 * 24 * 3600};
  std::chrono::milliseconds replicator_interval{30000};
  std::chrono::milliseconds updater_interval{30000};
  std::chrono::milliseconds auditor_interval{30000};  // pause between two whole passes
  double auditor_files_per_second = 20;
  std::chrono::milliseconds replication_timeout{10000};
  // How soon a container's changed totals (objects, bytes) reach its account.
  std::chrono::milliseconds account_update_interval{1000};
  // Pause between two passes of the expirer over the objects whose X-Delete-At has passed.
  std::chrono::milliseconds expirer_interval{10000};
};

// One storage host's state shared by its HTTP routes and its replicator, updater and auditor.
class StorageServer {
 public:
  explicit StorageServer(StorageSettings s);
  StorageSettings settings;
  BackendPool pool;
  RingFile account_ring, container_ring, object_ring;
  partition::HashCache hashes;  // of the object partitions on this server's devices
  ExpiringIndex expiring;       // objects with X-Delete-At, for the expirer

  // A listing database, kept open (nullptr when missing and not created).
  std::shared_ptr<ListingDb> db(const std::string& path, ListingDb::Kind kind, bool create,
                                const std::string& account, const std::string& container);
  // Closes the kept handle, before the file is removed.
  void forget_db(const std::string& path);
  // Whether a ring device is served here (its ip and port).
  bool is_local(const Device& d) const;
  // After any change to an object's files (hash directory `dir`): its suffix's hash is stale.
  void changed(const std::string& dir);
  // Oldest timestamp a tombstone may have and still be kept.
  Timestamp reclaim_before() const;
  // A container's totals changed (an object row, merged rows): they are sent to its account
  // by report_totals(), not by the write (Swift's container-updater), so an object write does
  // not wait for an account database; a pass coalesces many writes into one update.
  void totals_changed(const std::string& path, std::shared_ptr<ListingDb> db);
  // Sends the changed totals to their accounts; those that fail wait for the next pass.
  void report_totals();
  // An object row's change made here rather than by a proxy's request (the expirer's deletes):
  // sent to the container replica paired with the object's replica on `device` by their index
  // among the rings' primaries (every container replica from a handoff), as a proxy's request
  // would have named it; a failed update is kept for the updater.
  void update_container_row(const std::string& device, std::uint32_t partition,
                            const std::string& hash, const std::string& name,
                            const std::string& method, const Timestamp& t);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<ListingDb>> open_;
  std::mutex totals_mutex_;
  std::unordered_map<std::string, std::shared_ptr<ListingDb>> changed_totals_;
};

std::shared_ptr<StorageServer> make_storage_server(StorageSettings settings);
ServiceSpec make_storage_spec(std::shared_ptr<StorageServer> server);

}  // namespace nubo::object
