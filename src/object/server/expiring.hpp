// The objects a storage server holds that carry X-Delete-At, by the time they expire: the
// expirer's queue. Swift queues them as rows of a hidden account's containers, which a separate
// process lists and deletes through the proxy. Here every replica keeps its own queue, in
// <device>/expiring.db, and reaps its own copy with a tombstone stamped with the delete-at time,
// the same on every replica; nothing needs another server to be up, and a copy the replicator
// brings in is queued where it lands.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace nubo::object {

class ExpiringIndex {
 public:
  explicit ExpiringIndex(std::string devices);
  ~ExpiringIndex();
  ExpiringIndex(const ExpiringIndex&) = delete;
  ExpiringIndex& operator=(const ExpiringIndex&) = delete;

  struct Entry {
    std::int64_t delete_at = 0;  // seconds since the epoch
    std::uint32_t partition = 0;
    std::string hash;
  };
  // Queues an object file's expiry when its metadata has X-Delete-At. Called before the file is
  // committed: a crash between the two leaves an entry that finds no such object (dropped when
  // due), never an expiring object that nobody reaps.
  void add(const std::string& device, std::uint32_t partition, const std::string& hash,
           const json::object& metadata);
  // Entries of a device due at `now` (seconds), oldest first.
  std::vector<Entry> due(const std::string& device, std::int64_t now, std::size_t limit);
  void remove(const std::string& device, const Entry& e);
  // How many entries a device has (tests).
  std::size_t size(const std::string& device);

 private:
  struct Db;
  // The device's queue, opened (made when create) on first use; nullptr when there is none.
  Db* db(const std::string& device, bool create);
  std::string devices_;
  std::mutex mutex_;  // one connection per device, used by one thread at a time
  std::map<std::string, std::unique_ptr<Db>> dbs_;
};

// X-Delete-At of an object's metadata (seconds), 0 when it has none or it does not parse.
std::int64_t delete_at_of(const json::object& metadata);

}  // namespace nubo::object
