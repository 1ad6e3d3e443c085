#include "object/server/expiring.hpp"

#include <unistd.h>

#include <charconv>

#include "object/server/sqlite_statement.hpp"

namespace nubo::object {

using sqlite::Statement;

std::int64_t delete_at_of(const json::object& metadata) {
  auto* at = metadata.if_contains("X-Delete-At");
  if (!at || !at->is_string()) return 0;
  std::int64_t when = 0;
  auto s = at->as_string();
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), when);
  return ec == std::errc() && ptr == s.data() + s.size() ? when : 0;
}

struct ExpiringIndex::Db {
  sqlite3* handle = nullptr;
  ~Db() { sqlite::close(handle); }
};

ExpiringIndex::ExpiringIndex(std::string devices) : devices_(std::move(devices)) {}
ExpiringIndex::~ExpiringIndex() = default;

ExpiringIndex::Db* ExpiringIndex::db(const std::string& device, bool create) {
  auto& slot = dbs_[device];
  if (slot) return slot.get();
  auto path = devices_ + "/" + device + "/expiring.db";
  // Made by the first expiring object: a device that never had one keeps no empty queue.
  if (!create && ::access(path.c_str(), F_OK) != 0) {
    dbs_.erase(device);
    return nullptr;
  }
  auto db = std::make_unique<Db>();
  if (sqlite3_open_v2(path.c_str(), &db->handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    throw std::runtime_error("expiring index: cannot open " + path);
  sqlite3_busy_timeout(db->handle, 10000);
  sqlite::exec(
      db->handle,
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS expiring (delete_at INTEGER NOT NULL, partition INTEGER NOT "
      "NULL, hash TEXT NOT NULL, PRIMARY KEY (delete_at, partition, hash)) WITHOUT ROWID");
  slot = std::move(db);
  return slot.get();
}

void ExpiringIndex::add(const std::string& device, std::uint32_t partition, const std::string& hash,
                        const json::object& metadata) {
  auto at = delete_at_of(metadata);
  if (!at) return;
  std::lock_guard lock(mutex_);
  Statement(db(device, true)->handle, "INSERT OR IGNORE INTO expiring VALUES (?1, ?2, ?3)")
      .bind(1, at)
      .bind(2, static_cast<std::int64_t>(partition))
      .bind(3, hash)
      .step();
}

std::vector<ExpiringIndex::Entry> ExpiringIndex::due(const std::string& device, std::int64_t now,
                                                     std::size_t limit) {
  std::lock_guard lock(mutex_);
  auto* d = db(device, false);
  if (!d) return {};
  Statement s(d->handle,
              "SELECT delete_at, partition, hash FROM expiring WHERE delete_at <= ?1 "
              "ORDER BY delete_at LIMIT ?2");
  s.bind(1, now).bind(2, static_cast<std::int64_t>(limit));
  std::vector<Entry> out;
  while (s.step())
    out.push_back({s.integer(0), static_cast<std::uint32_t>(s.integer(1)), s.text(2)});
  return out;
}

void ExpiringIndex::remove(const std::string& device, const Entry& e) {
  std::lock_guard lock(mutex_);
  auto* d = db(device, false);
  if (!d) return;
  Statement(d->handle, "DELETE FROM expiring WHERE delete_at = ?1 AND partition = ?2 AND hash = ?3")
      .bind(1, e.delete_at)
      .bind(2, static_cast<std::int64_t>(e.partition))
      .bind(3, e.hash)
      .step();
}

std::size_t ExpiringIndex::size(const std::string& device) {
  std::lock_guard lock(mutex_);
  auto* d = db(device, false);
  if (!d) return 0;
  Statement s(d->handle, "SELECT count(*) FROM expiring");
  return s.step() ? static_cast<std::size_t>(s.integer(0)) : 0;
}

}  // namespace nubo::object
