// The object expirer: every expirer_interval, each device's due entries (ExpiringIndex) are
// reaped. An entry whose object still carries that X-Delete-At gets a tombstone stamped with the
// delete-at time, as Swift's expirer's DELETE (X-Timestamp = delete-at, X-If-Delete-At) makes one,
// and its container row is deleted; an entry the object no longer matches (overwritten, its
// expiry changed by a POST, deleted, moved away by the replicator) is only dropped.
#include <spdlog/spdlog.h>

#include "object/replicator/replicator.hpp"
#include "object/server/disk.hpp"
#include "object/server/partition.hpp"

namespace nubo::object {

Expirer::Expirer(std::shared_ptr<StorageServer> server)
    : server_(std::move(server)),
      loop_("object-expirer", server_->settings.expirer_interval, [this] { run_once(); }) {}

ExpirerStats Expirer::run_once() {
  ExpirerStats stats;
  auto& s = *server_;
  constexpr std::size_t kBatch = 1000;
  for (auto& device : partition::entries(s.settings.devices)) {
    for (;;) {
      if (loop_.stopping()) return stats;
      std::vector<ExpiringIndex::Entry> due;
      try {
        due = s.expiring.due(device, Timestamp::now().raw / 100000, kBatch);
      } catch (const std::exception& e) {
        spdlog::warn("object-expirer: device {}: {}", device, e.what());
        break;
      }
      for (auto& e : due) {
        ++stats.entries;
        try {
          if (reap(device, e)) ++stats.reaped;
          s.expiring.remove(device, e);
        } catch (const std::exception& ex) {
          // Kept for the next pass (a full disk, an unreadable file).
          ++stats.failures;
          spdlog::warn("object-expirer: {}/{}/{} (delete-at {}): {}", device, e.partition, e.hash,
                       e.delete_at, ex.what());
        }
      }
      if (due.size() < kBatch || stats.failures) break;
    }
  }
  if (stats.entries)
    spdlog::info("object-expirer: {} due: {} reaped, {} failed", stats.entries, stats.reaped,
                 stats.failures);
  return stats;
}

bool Expirer::reap(const std::string& device, const ExpiringIndex::Entry& e) {
  auto& s = *server_;
  disk::Location at{s.settings.devices, device, e.partition, e.hash};
  auto current = disk::open(at);
  if (current.kind != disk::Current::data || delete_at_of(current.metadata) != e.delete_at)
    return false;
  Timestamp t{e.delete_at * 100000, 0};
  if (current.timestamp >= t) return false;  // written after it was due: not this expiry's
  auto* name = current.metadata.if_contains("name");
  if (!name || !name->is_string()) return false;
  disk::write_tombstone(at, t, std::string(name->as_string()));
  s.changed(at.dir());
  s.update_container_row(device, e.partition, e.hash, std::string(name->as_string()), "DELETE", t);
  return true;
}

}  // namespace nubo::object
