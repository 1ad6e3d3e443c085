// A container's (or an account's) listing on a storage device: one SQLite file per replica, as
// Swift keeps them, holding the rows (objects or containers) with their timestamps, deletions
// as rows too (so that replicas merge by timestamp), the totals and the metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "object/timestamp.hpp"

struct sqlite3;

namespace nubo::object {

struct ListingQuery {
  long limit = 10000;
  std::string marker, end_marker, prefix, delimiter;
  bool reverse = false;
};

struct ListingEntry {
  std::string name;
  bool subdir = false;
  // objects: size, content type, etag, last modified; containers: object count, bytes, last
  // modified
  std::int64_t bytes = 0, count = 0;
  std::string content_type, etag;
  Timestamp modified;
};

class ListingDb {
 public:
  enum class Kind { container, account };
  struct Info {
    std::string account, container;
    Timestamp created_at, put_timestamp, delete_timestamp;
    std::int64_t object_count = 0, bytes_used = 0, container_count = 0;
    json::object metadata;         // {"X-Container-Meta-Color": ["blue", "<timestamp>"]}
    std::string account_location;  // a container's account replica: "ip:port/device/partition"
    bool deleted() const {
      return object_count == 0 && container_count == 0 && delete_timestamp > put_timestamp;
    }
  };

  // Opens the file, creating it (and its directories, durably) when `create` is set; nullptr when
  // it does not exist and create is not set.
  static std::shared_ptr<ListingDb> open(const std::string& path, Kind kind, bool create,
                                         const std::string& account, const std::string& container);
  ~ListingDb();

  Info info();
  void set_account_location(const std::string& location);
  // A PUT of the container/account itself: created (true) or put_timestamp moved forward.
  bool put(const Timestamp& t);
  // A DELETE: false when it still holds rows (a container with objects).
  bool remove(const Timestamp& t);
  // Metadata: values with their timestamps; newer wins, an empty value deletes.
  void update_metadata(const json::object& updates, const Timestamp& t);

  // Object rows (container listings): newer timestamp wins; deleted rows stay as tombstones.
  void put_object(const std::string& name, const Timestamp& t, std::int64_t size,
                  const std::string& content_type, const std::string& etag, bool deleted);
  // Container rows (account listings): the container's totals as its server reports them.
  void put_container(const std::string& name, const Timestamp& put_timestamp,
                     const Timestamp& delete_timestamp, std::int64_t object_count,
                     std::int64_t bytes_used);
  std::vector<ListingEntry> list(const ListingQuery& q);

  // ---- replication between the replicas of one listing ----
  // md5 over every row, deleted ones included, in name order: equal digests, equal rows.
  std::string digest();
  // The container's or account's own record (names, timestamps, metadata, account location).
  json::object sync_info();
  // Merges a peer's record: the newest put and delete timestamps, the oldest created_at, each
  // metadata key's newest value.
  void merge_info(const json::object& info);
  // Rows after `marker` in name order, as JSON arrays, up to about max_bytes of JSON.
  json::array rows_after(const std::string& marker, size_t max_bytes);
  // A peer's rows, each kept when newer than ours (objects by timestamp, containers by their put
  // and delete timestamps and their totals by when they were reported); deleted rows older than
  // reclaim_before are dropped rather than revived.
  void merge_rows(const json::array& rows, const Timestamp& reclaim_before);
  // Forgets deleted rows older than reclaim_before.
  void reclaim(const Timestamp& reclaim_before);

 private:
  ListingDb(sqlite3* db, Kind kind) : db_(db), kind_(kind) {}
  void exec(const char* sql);
  void put_object_locked(const std::string& name, const Timestamp& t, std::int64_t size,
                         const std::string& content_type, const std::string& etag, bool deleted);
  void put_container_locked(const std::string& name, const Timestamp& put_timestamp,
                            const Timestamp& delete_timestamp, std::int64_t object_count,
                            std::int64_t bytes_used, const Timestamp& reported, bool from_peer);
  sqlite3* db_;
  Kind kind_;
  std::mutex mutex_;
};

}  // namespace nubo::object
