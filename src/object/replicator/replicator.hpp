// The storage server's self-repair: the replicator pushes every object file and listing row a
// peer replica lacks (all three kinds, by the rings), moves handoff partitions to their primaries,
// and reclaims tombstones after reclaim_age; the updater delivers container updates that failed
// at write time; the auditor re-reads objects and quarantines those that no longer match their
// ETag, for the replicator to restore from a good replica.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "object/replicator/periodic.hpp"
#include "object/server/storage_server.hpp"

namespace nubo::object {

struct ReplicationStats {
  std::uint64_t partitions = 0, files_pushed = 0, handoff_files_removed = 0, dbs = 0,
                dbs_synced = 0, rows_pushed = 0, dbs_removed = 0, failures = 0;
};

class Replicator {
 public:
  explicit Replicator(std::shared_ptr<StorageServer> server);
  void start() { loop_.start(); }
  void stop() { loop_.stop(); }
  // One pass over every local device (what the loop runs every replicator_interval).
  ReplicationStats run_once();

 private:
  std::shared_ptr<StorageServer> server_;
  std::atomic<bool> first_pass_{true};
  Periodic loop_;
};

struct UpdaterStats {
  std::uint64_t records = 0, delivered = 0, superseded = 0, failures = 0;
};

class Updater {
 public:
  explicit Updater(std::shared_ptr<StorageServer> server);
  void start() { loop_.start(); }
  void stop() { loop_.stop(); }
  UpdaterStats run_once();

 private:
  std::shared_ptr<StorageServer> server_;
  Periodic loop_;
};

struct AuditStats {
  std::uint64_t files = 0, quarantined = 0;
};

class Auditor {
 public:
  explicit Auditor(std::shared_ptr<StorageServer> server);
  void start() { loop_.start(); }
  void stop() { loop_.stop(); }
  // One pass, at most auditor_files_per_second (no limit when unlimited is set).
  AuditStats run_once(bool unlimited = false);

 private:
  std::shared_ptr<StorageServer> server_;
  Periodic loop_;
};

struct ExpirerStats {
  std::uint64_t entries = 0, reaped = 0, failures = 0;
};

// Reaps the objects whose X-Delete-At has passed (see server/expiring.hpp).
class Expirer {
 public:
  explicit Expirer(std::shared_ptr<StorageServer> server);
  void start() { loop_.start(); }
  void stop() { loop_.stop(); }
  ExpirerStats run_once();

 private:
  // Whether the entry's object was reaped (false: the entry no longer matches it).
  bool reap(const std::string& device, const ExpiringIndex::Entry& e);
  std::shared_ptr<StorageServer> server_;
  Periodic loop_;
};

// The loops of one storage server, started together and stopped (joined) on destruction: the
// replicator, the updater, the auditor, the expirer, and the pass that sends containers' changed
// totals to their accounts (every account_update_interval).
struct StorageDaemons {
  explicit StorageDaemons(std::shared_ptr<StorageServer> server)
      : replicator(server),
        updater(server),
        auditor(server),
        expirer(server),
        totals("container-totals", server->settings.account_update_interval,
               [server] { server->report_totals(); }) {}
  ~StorageDaemons() { stop(); }
  void start() {
    replicator.start();
    updater.start();
    auditor.start();
    expirer.start();
    totals.start();
  }
  void stop() {
    replicator.stop();
    updater.stop();
    auditor.stop();
    expirer.stop();
    totals.stop();
  }
  Replicator replicator;
  Updater updater;
  Auditor auditor;
  Expirer expirer;
  Periodic totals;
};

// Moves an object's hash directory to <device>/quarantined/objects/<hash>[-<uuid>].
void quarantine(StorageServer& server, const std::string& device, const std::string& dir);

}  // namespace nubo::object
