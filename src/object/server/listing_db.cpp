// SQLite through its C API rather than SOCI: one small file per container, opened and closed
// often, with a handful of fixed statements (SOCI's sessions cost more than the work here).
#include "object/server/listing_db.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/digest.hpp"
#include "object/server/disk.hpp"
#include "object/server/sqlite_statement.hpp"

namespace nubo::object {

using sqlite::Statement;

namespace {

Timestamp ts(const std::string& s) { return Timestamp::parse(s).value_or(Timestamp{}); }

}  // namespace

void ListingDb::exec(const char* sql) { sqlite::exec(db_, sql); }

std::shared_ptr<ListingDb> ListingDb::open(const std::string& path, Kind kind, bool create,
                                           const std::string& account,
                                           const std::string& container) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    db = nullptr;
    if (!create) return nullptr;
    disk::make_dirs_durable(path.substr(0, path.rfind('/')));
    if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      std::string message = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      throw std::runtime_error("sqlite open " + path + ": " + message);
    }
  }
  std::shared_ptr<ListingDb> out(new ListingDb(db, kind));
  sqlite3_busy_timeout(db, 10000);
  // Listings are rebuilt by replication from the other replicas and the objects themselves, as
  // Swift's are (its pending file is not fsynced either): WAL without a sync per commit.
  out->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  out->exec(
      "CREATE TABLE IF NOT EXISTS stat (id INTEGER PRIMARY KEY CHECK (id = 0), account TEXT, "
      "container TEXT, created_at TEXT, put_timestamp TEXT, delete_timestamp TEXT, "
      "object_count INTEGER, bytes_used INTEGER, container_count INTEGER, metadata TEXT, "
      "account_location TEXT);"
      "CREATE TABLE IF NOT EXISTS object (name TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
      "size INTEGER NOT NULL, content_type TEXT, etag TEXT, deleted INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS container (name TEXT PRIMARY KEY, put_timestamp TEXT, "
      "delete_timestamp TEXT, object_count INTEGER, bytes_used INTEGER, deleted INTEGER "
      "NOT NULL);");
  {
    // Account rows carry when their totals were reported (replicas keep the latest report).
    bool has_reported = false;
    Statement columns(db, "PRAGMA table_info(container)", Statement::kOnce);
    while (columns.step()) has_reported = has_reported || columns.text(1) == "reported";
    if (!has_reported)
      out->exec(
          "ALTER TABLE container ADD COLUMN reported TEXT NOT NULL DEFAULT '0000000000.00000'");
  }
  Statement(db,
            "INSERT OR IGNORE INTO stat VALUES (0, ?1, ?2, ?3, '0000000000.00000', "
            "'0000000000.00000', 0, 0, 0, '{}', '')")
      .bind(1, account)
      .bind(2, container)
      .bind(3, Timestamp::now().internal())
      .step();
  return out;
}

ListingDb::~ListingDb() { sqlite::close(db_); }

ListingDb::Info ListingDb::info() {
  std::lock_guard lock(mutex_);
  Statement s(db_,
              "SELECT account, container, created_at, put_timestamp, delete_timestamp, "
              "object_count, bytes_used, container_count, metadata, account_location FROM stat "
              "WHERE id = 0");
  Info i;
  if (!s.step()) return i;
  i.account = s.text(0);
  i.container = s.text(1);
  i.created_at = ts(s.text(2));
  i.put_timestamp = ts(s.text(3));
  i.delete_timestamp = ts(s.text(4));
  i.object_count = s.integer(5);
  i.bytes_used = s.integer(6);
  i.container_count = s.integer(7);
  boost::system::error_code ec;
  auto m = json::parse(s.text(8), ec);
  if (!ec && m.is_object()) i.metadata = std::move(m.as_object());
  i.account_location = s.text(9);
  return i;
}

void ListingDb::set_account_location(const std::string& location) {
  std::lock_guard lock(mutex_);
  Statement(db_, "UPDATE stat SET account_location = ?1 WHERE id = 0").bind(1, location).step();
}

bool ListingDb::put(const Timestamp& t) {
  auto before = info();
  bool created = before.put_timestamp == Timestamp{} || before.deleted();
  std::lock_guard lock(mutex_);
  if (t > before.put_timestamp)
    Statement(db_, "UPDATE stat SET put_timestamp = ?1 WHERE id = 0").bind(1, t.internal()).step();
  if (created && before.deleted())
    Statement(db_, "UPDATE stat SET created_at = ?1, metadata = '{}' WHERE id = 0")
        .bind(1, t.internal())
        .step();
  return created;
}

bool ListingDb::remove(const Timestamp& t) {
  auto before = info();
  if (before.object_count > 0 || before.container_count > 0) return false;
  std::lock_guard lock(mutex_);
  if (t > before.delete_timestamp)
    Statement(db_, "UPDATE stat SET delete_timestamp = ?1 WHERE id = 0")
        .bind(1, t.internal())
        .step();
  return true;
}

void ListingDb::update_metadata(const json::object& updates, const Timestamp& t) {
  auto current = info().metadata;
  for (auto& kv : updates) {
    auto* old = current.if_contains(kv.key());
    if (old && old->is_array() && old->as_array().size() == 2 &&
        ts(std::string(old->as_array()[1].as_string())) > t)
      continue;
    current[kv.key()] = json::array{kv.value(), json::value(t.internal())};
  }
  // Empty values are kept with their timestamp (a later, older update must not revive the key)
  // and hidden by the readers.
  std::lock_guard lock(mutex_);
  Statement(db_, "UPDATE stat SET metadata = ?1 WHERE id = 0")
      .bind(1, json::serialize(current))
      .step();
}

void ListingDb::put_object(const std::string& name, const Timestamp& t, std::int64_t size,
                           const std::string& content_type, const std::string& etag, bool deleted) {
  std::lock_guard lock(mutex_);
  exec("BEGIN IMMEDIATE");
  try {
    put_object_locked(name, t, size, content_type, etag, deleted);
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void ListingDb::put_object_locked(const std::string& name, const Timestamp& t, std::int64_t size,
                                  const std::string& content_type, const std::string& etag,
                                  bool deleted) {
  {
    Statement old(db_, "SELECT created_at, size, deleted FROM object WHERE name = ?1");
    old.bind(1, name);
    std::int64_t count_delta = deleted ? 0 : 1, bytes_delta = deleted ? 0 : size;
    if (old.step()) {
      if (ts(old.text(0)) >= t) return;
      if (!old.integer(2)) {
        count_delta -= 1;
        bytes_delta -= old.integer(1);
      }
    }
    Statement(db_,
              "INSERT OR REPLACE INTO object (name, created_at, size, content_type, etag, "
              "deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, name)
        .bind(2, t.internal())
        .bind(3, deleted ? 0 : size)
        .bind(4, deleted ? std::string("application/deleted") : content_type)
        .bind(5, deleted ? std::string("noetag") : etag)
        .bind(6, std::int64_t{deleted})
        .step();
    if (count_delta || bytes_delta)
      Statement(db_,
                "UPDATE stat SET object_count = object_count + ?1, bytes_used = bytes_used + ?2 "
                "WHERE id = 0")
          .bind(1, count_delta)
          .bind(2, bytes_delta)
          .step();
  }
}

void ListingDb::put_container(const std::string& name, const Timestamp& put_timestamp,
                              const Timestamp& delete_timestamp, std::int64_t object_count,
                              std::int64_t bytes_used) {
  std::lock_guard lock(mutex_);
  exec("BEGIN IMMEDIATE");
  try {
    put_container_locked(name, put_timestamp, delete_timestamp, object_count, bytes_used,
                         Timestamp::now(), false);
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void ListingDb::put_container_locked(const std::string& name, const Timestamp& put_timestamp,
                                     const Timestamp& delete_timestamp, std::int64_t object_count,
                                     std::int64_t bytes_used, const Timestamp& reported,
                                     bool from_peer) {
  {
    Statement old(db_,
                  "SELECT put_timestamp, delete_timestamp, object_count, bytes_used, deleted, "
                  "reported FROM container WHERE name = ?1");
    old.bind(1, name);
    Timestamp put = put_timestamp, del = delete_timestamp, when = reported;
    std::int64_t count_delta = 0, bytes_delta = 0, containers_delta = 0;
    bool was_deleted = true;
    if (old.step()) {
      auto old_put = ts(old.text(0)), old_del = ts(old.text(1)), old_reported = ts(old.text(5));
      // A peer's row older in every respect changes nothing (replicas converge, no ping-pong).
      if (from_peer && put <= old_put && del <= old_del && reported <= old_reported) return;
      if (from_peer && reported < old_reported) {
        object_count = old.integer(2);
        bytes_used = old.integer(3);
        when = old_reported;
      }
      put = std::max(put, old_put);
      del = std::max(del, old_del);
      was_deleted = old.integer(4) != 0;
      count_delta -= old.integer(2);
      bytes_delta -= old.integer(3);
    }
    bool deleted = del > put && object_count == 0;
    if (deleted) {
      object_count = 0;
      bytes_used = 0;
    }
    count_delta += object_count;
    bytes_delta += bytes_used;
    containers_delta = (deleted ? 0 : 1) - (was_deleted ? 0 : 1);
    Statement(db_,
              "INSERT OR REPLACE INTO container (name, put_timestamp, delete_timestamp, "
              "object_count, bytes_used, deleted, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(1, name)
        .bind(2, put.internal())
        .bind(3, del.internal())
        .bind(4, object_count)
        .bind(5, bytes_used)
        .bind(6, std::int64_t{deleted})
        .bind(7, when.internal())
        .step();
    Statement(db_,
              "UPDATE stat SET object_count = object_count + ?1, bytes_used = bytes_used + ?2, "
              "container_count = container_count + ?3 WHERE id = 0")
        .bind(1, count_delta)
        .bind(2, bytes_delta)
        .bind(3, containers_delta)
        .step();
  }
}

std::vector<ListingEntry> ListingDb::list(const ListingQuery& q) {
  std::lock_guard lock(mutex_);
  bool objects = kind_ == Kind::container;
  std::string columns = objects ? "name, created_at, size, content_type, etag"
                                : "name, put_timestamp, bytes_used, object_count, ''";
  std::string table = objects ? "object" : "container";
  std::vector<ListingEntry> out;
  std::string marker = q.marker, end_marker = q.end_marker;
  // The first name after every name starting with the prefix.
  std::string prefix_end;
  if (!q.prefix.empty()) {
    prefix_end = q.prefix;
    while (!prefix_end.empty() && static_cast<unsigned char>(prefix_end.back()) == 0xff)
      prefix_end.pop_back();
    if (!prefix_end.empty()) prefix_end.back() = static_cast<char>(prefix_end.back() + 1);
  }
  bool marker_inclusive = false;
  while (static_cast<long>(out.size()) < q.limit) {
    std::string sql = "SELECT " + columns + " FROM " + table + " WHERE deleted = 0";
    std::vector<std::string> params;
    auto lower = q.reverse ? end_marker : marker;
    auto upper = q.reverse ? marker : end_marker;
    bool lower_inclusive = !q.reverse && marker_inclusive;
    if (!lower.empty()) {
      params.push_back(lower);
      sql += std::string(" AND name ") + (lower_inclusive ? ">=" : ">") + " ?" +
             std::to_string(params.size());
    }
    if (!upper.empty()) {
      params.push_back(upper);
      sql += " AND name < ?" + std::to_string(params.size());
    }
    if (!q.prefix.empty()) {
      params.push_back(q.prefix);
      sql += " AND name >= ?" + std::to_string(params.size());
      if (!prefix_end.empty()) {
        params.push_back(prefix_end);
        sql += " AND name < ?" + std::to_string(params.size());
      }
    }
    sql += std::string(" ORDER BY name ") + (q.reverse ? "DESC" : "ASC") + " LIMIT " +
           std::to_string(q.limit - static_cast<long>(out.size()));
    Statement s(db_, sql.c_str(), Statement::kOnce);
    for (size_t i = 0; i < params.size(); ++i) s.bind(static_cast<int>(i + 1), params[i]);
    bool any = false, restart = false;
    while (s.step()) {
      any = true;
      ListingEntry e;
      e.name = s.text(0);
      if (!q.delimiter.empty()) {
        auto end = e.name.find(q.delimiter, q.prefix.size());
        if (end != std::string::npos) {
          auto dir = e.name.substr(0, end + q.delimiter.size());
          if (q.reverse) {
            marker = dir;  // continue below the directory
            marker_inclusive = false;
          } else {
            marker = e.name.substr(0, end) +
                     static_cast<char>(q.delimiter.back() + 1);  // past every name under it
            marker_inclusive = true;
          }
          if (dir != q.marker) {
            ListingEntry d;
            d.name = dir;
            d.subdir = true;
            out.push_back(std::move(d));
          }
          restart = true;
          break;
        }
      }
      if (objects) {
        e.modified = ts(s.text(1));
        e.bytes = s.integer(2);
        e.content_type = s.text(3);
        e.etag = s.text(4);
      } else {
        e.modified = ts(s.text(1));
        e.bytes = s.integer(2);
        e.count = s.integer(3);
      }
      out.push_back(std::move(e));
    }
    if (!any || !restart) break;
  }
  return out;
}

std::string ListingDb::digest() {
  std::lock_guard lock(mutex_);
  bool objects = kind_ == Kind::container;
  Statement s(db_, objects ? "SELECT name, created_at, size, content_type, etag, deleted FROM "
                             "object ORDER BY name"
                           : "SELECT name, put_timestamp, delete_timestamp, object_count, "
                             "bytes_used, deleted, reported FROM container ORDER BY name");
  Md5 md5;
  int columns = objects ? 6 : 7;
  while (s.step()) {
    for (int i = 0; i < columns; ++i) {
      auto v = s.text(i);
      v += '\0';
      md5.update(v);
    }
  }
  return md5.hex();
}

json::object ListingDb::sync_info() {
  auto i = info();
  return json::object{{"account", i.account},
                      {"container", i.container},
                      {"created_at", i.created_at.internal()},
                      {"put_timestamp", i.put_timestamp.internal()},
                      {"delete_timestamp", i.delete_timestamp.internal()},
                      {"metadata", i.metadata},
                      {"account_location", i.account_location}};
}

void ListingDb::merge_info(const json::object& peer) {
  auto text = [&](const char* key) {
    auto* v = peer.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  auto mine = info();
  auto metadata = mine.metadata;
  if (auto* m = peer.if_contains("metadata"); m && m->is_object()) {
    for (auto& kv : m->as_object()) {
      auto& v = kv.value();
      if (!v.is_array() || v.as_array().size() != 2 || !v.as_array()[1].is_string()) continue;
      auto t = ts(std::string(v.as_array()[1].as_string()));
      auto* old = metadata.if_contains(kv.key());
      if (old && old->is_array() && old->as_array().size() == 2 && old->as_array()[1].is_string() &&
          ts(std::string(old->as_array()[1].as_string())) >= t)
        continue;
      metadata[kv.key()] = v;
    }
  }
  auto created = ts(text("created_at"));
  std::lock_guard lock(mutex_);
  Statement(db_,
            "UPDATE stat SET put_timestamp = ?1, delete_timestamp = ?2, created_at = ?3, "
            "metadata = ?4, account_location = ?5 WHERE id = 0")
      .bind(1, std::max(mine.put_timestamp, ts(text("put_timestamp"))).internal())
      .bind(2, std::max(mine.delete_timestamp, ts(text("delete_timestamp"))).internal())
      .bind(3, (created == Timestamp{} ? mine.created_at : std::min(mine.created_at, created))
                   .internal())
      .bind(4, json::serialize(metadata))
      .bind(5, mine.account_location.empty() ? text("account_location") : mine.account_location)
      .step();
}

json::array ListingDb::rows_after(const std::string& marker, size_t max_bytes) {
  std::lock_guard lock(mutex_);
  bool objects = kind_ == Kind::container;
  Statement s(db_, objects ? "SELECT name, created_at, size, content_type, etag, deleted FROM "
                             "object WHERE name > ?1 ORDER BY name"
                           : "SELECT name, put_timestamp, delete_timestamp, object_count, "
                             "bytes_used, deleted, reported FROM container WHERE name > ?1 "
                             "ORDER BY name");
  s.bind(1, marker);
  json::array out;
  size_t bytes = 0;
  while (bytes < max_bytes && s.step()) {
    json::array row;
    if (objects) {
      row = {json::value(s.text(0)), json::value(s.text(1)), json::value(s.integer(2)),
             json::value(s.text(3)), json::value(s.text(4)), json::value(s.integer(5))};
    } else {
      row = {json::value(s.text(0)),    json::value(s.text(1)),    json::value(s.text(2)),
             json::value(s.integer(3)), json::value(s.integer(4)), json::value(s.integer(5)),
             json::value(s.text(6))};
    }
    bytes += s.text(0).size() + 96;
    out.push_back(std::move(row));
  }
  return out;
}

void ListingDb::merge_rows(const json::array& rows, const Timestamp& reclaim_before) {
  bool objects = kind_ == Kind::container;
  auto str = [](const json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : std::string();
  };
  auto num = [](const json::value& v) -> std::int64_t {
    return v.is_int64()    ? v.as_int64()
           : v.is_uint64() ? static_cast<std::int64_t>(v.as_uint64())
                           : 0;
  };
  std::lock_guard lock(mutex_);
  exec("BEGIN IMMEDIATE");
  try {
    for (auto& v : rows) {
      if (!v.is_array()) continue;
      auto& row = v.as_array();
      if (objects && row.size() == 6) {
        auto t = ts(str(row[1]));
        bool deleted = num(row[5]) != 0;
        if (deleted && t < reclaim_before) continue;
        put_object_locked(str(row[0]), t, num(row[2]), str(row[3]), str(row[4]), deleted);
      } else if (!objects && row.size() == 7) {
        auto put = ts(str(row[1])), del = ts(str(row[2]));
        if (num(row[5]) != 0 && del < reclaim_before) continue;
        put_container_locked(str(row[0]), put, del, num(row[3]), num(row[4]), ts(str(row[6])),
                             true);
      }
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void ListingDb::reclaim(const Timestamp& reclaim_before) {
  std::lock_guard lock(mutex_);
  if (kind_ == Kind::container)
    Statement(db_, "DELETE FROM object WHERE deleted = 1 AND created_at < ?1")
        .bind(1, reclaim_before.internal())
        .step();
  else
    Statement(db_, "DELETE FROM container WHERE deleted = 1 AND delete_timestamp < ?1")
        .bind(1, reclaim_before.internal())
        .step();
}

}  // namespace nubo::object
