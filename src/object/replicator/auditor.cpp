// The object auditor: every object file re-read at a bounded rate, its body's md5 compared with
// the ETag it was stored with; a file that fails (or whose metadata no longer parses) has its
// whole hash directory moved to quarantine, where nothing serves it, so the replicas that still
// hold good copies push them back.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>

#include "object/replicator/replicator.hpp"
#include "object/server/disk.hpp"
#include "object/server/partition.hpp"

namespace nubo::object {

namespace {

// An expiring object is queued again as the auditor passes it: the queue's entry is written
// with synchronous=NORMAL, which a power loss may undo (a killed process cannot).
void requeue_expiry(StorageServer& s, const std::string& device, const std::string& part,
                    const std::string& hash, const disk::File& file) {
  std::uint32_t partition = 0;
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), partition);
  if (ec != std::errc() || ptr != part.data() + part.size()) return;
  auto metadata = disk::read_metadata(file.path);
  if (!metadata || !delete_at_of(metadata->first)) return;
  try {
    s.expiring.add(device, partition, hash, metadata->first);
  } catch (const std::exception& e) {
    spdlog::warn("object-auditor: {}: {}", file.path, e.what());
  }
}

}  // namespace

Auditor::Auditor(std::shared_ptr<StorageServer> server)
    : server_(std::move(server)),
      loop_("object-auditor", server_->settings.auditor_interval, [this] { run_once(); }) {}

AuditStats Auditor::run_once(bool unlimited) {
  AuditStats stats;
  auto& s = *server_;
  auto rate = s.settings.auditor_files_per_second;
  auto gap =
      std::chrono::microseconds(unlimited || rate <= 0 ? 0 : static_cast<std::int64_t>(1e6 / rate));
  auto next = std::chrono::steady_clock::now();
  for (auto& device : partition::entries(s.settings.devices)) {
    auto root = s.settings.devices + "/" + device + "/objects";
    for (auto& part : partition::entries(root)) {
      for (auto& suffix : partition::entries(root + "/" + part)) {
        if (!partition::valid_suffix(suffix)) continue;
        auto suffix_dir = root + "/" + part + "/" + suffix;
        for (auto& hash : partition::entries(suffix_dir)) {
          if (!partition::valid_hash(hash)) continue;
          auto dir = suffix_dir + "/" + hash;
          for (auto& file : disk::current_files(disk::files_of(dir))) {
            if (gap.count()) {
              auto now = std::chrono::steady_clock::now();
              if (next > now &&
                  !loop_.sleep(std::chrono::duration_cast<std::chrono::milliseconds>(next - now)))
                return stats;
              next = std::max(next, now) + gap;
            } else if (loop_.stopping()) {
              return stats;
            }
            ++stats.files;
            if (file.extension != "ts") requeue_expiry(s, device, part, hash, file);
            if (disk::check_file(file) != disk::Check::corrupt) continue;
            // Checked twice: a file replaced by a newer write between open and read is not bad.
            if (disk::check_file(file) != disk::Check::corrupt) continue;
            spdlog::warn("object-auditor: {} does not match its metadata: quarantined", file.path);
            quarantine(s, device, dir);
            ++stats.quarantined;
            break;
          }
        }
      }
    }
  }
  spdlog::debug("object-auditor: pass: {} files, {} quarantined", stats.files, stats.quarantined);
  return stats;
}

}  // namespace nubo::object
