// A partition of objects as replication sees it: per suffix directory a hash of the files every
// object in it currently consists of (equal hashes: nothing to send), and the file names behind a
// suffix when the hashes differ (Swift's hashes.pkl and its rsync listing, over HTTP).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "object/timestamp.hpp"

namespace nubo::object::partition {

// suffix → md5 hex over "<hash>/<file>" of the current files of each object, in name order. On
// the way it deletes obsolete files, tombstones older than reclaim_before, and directories left
// empty for a while (a write in flight may have just made one).
std::map<std::string, std::string> suffix_hashes(const std::string& partition_dir,
                                                 const Timestamp& reclaim_before);
// Recomputes only the given suffixes (the rest untouched): after pushing files, to compare again.
std::map<std::string, std::string> suffix_hashes(const std::string& partition_dir,
                                                 const std::vector<std::string>& suffixes,
                                                 const Timestamp& reclaim_before);
// suffix → object hash → its current file names.
using Listing = std::map<std::string, std::map<std::string, std::vector<std::string>>>;
Listing list(const std::string& partition_dir, const std::vector<std::string>& suffixes);

// The names of the entries of a directory (none when it does not exist).
std::vector<std::string> entries(const std::string& dir);
// rmdir when empty and not changed for `quiet_seconds`; true when it is gone.
bool remove_if_empty(const std::string& dir, int quiet_seconds = 10);

// The suffix hashes of the partitions on this server's devices, kept between passes and dropped
// per suffix whenever this process writes in it (the only writer of its devices), so a pass
// re-reads only what changed. Each is recomputed after `ttl` anyway: tombstones reach
// reclaim_age without any write.
class HashCache {
 public:
  explicit HashCache(std::chrono::seconds ttl = std::chrono::seconds(3600)) : ttl_(ttl) {}
  std::map<std::string, std::string> get(const std::string& partition_dir,
                                         const Timestamp& reclaim_before);
  void invalidate(const std::string& partition_dir, const std::string& suffix);

 private:
  struct Entry {
    std::string hash;
    std::uint64_t generation = 0;  // bumped by invalidate: a hash computed before is not stored
    bool valid = false;
    std::chrono::steady_clock::time_point at;
  };
  std::chrono::seconds ttl_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // by "<partition dir>/<suffix>"
};

bool valid_suffix(std::string_view s);
bool valid_hash(std::string_view s);

}  // namespace nubo::object::partition
