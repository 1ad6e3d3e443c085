#include "common/db/database.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>

#include "common/config.hpp"
#include "common/db/table.hpp"

namespace nubo::db {

// A write waiting for the group commit that will carry it. Each has its own condition variable,
// so that a finished group wakes its own writers and the next leader only: one shared one woke
// every queued writer, most of them to sleep again (in a boot storm the writers' context switches
// went from 6% of the cloud's CPU to 3%).
struct PendingWrite {
  const std::function<void(soci::session&)>* fn;
  std::exception_ptr error;
  bool done = false;
  std::condition_variable wake;
};

struct Database::Impl {
  std::unique_ptr<soci::session> writer;
  std::mutex write_mu;  // held by whoever uses the writer connection
  std::vector<std::unique_ptr<soci::session>> readers;
  std::vector<soci::session*> free_readers;
  std::mutex read_mu;
  std::condition_variable read_cv;
  // Group commit: writes queue here; one caller at a time leads, running every queued write in
  // one transaction (each in its own savepoint) and committing them with a single sync.
  std::mutex queue_mu;
  std::deque<PendingWrite*> queue;
  bool leading = false;
  bool sqlite = true;

  void commit_group(std::deque<PendingWrite*>& group);
  std::vector<soci::session*> sessions() {
    std::vector<soci::session*> out{writer.get()};
    for (auto& r : readers) out.push_back(r.get());
    return out;
  }
};

namespace {

// A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE, waiting under the
// busy timeout): a deferred one that read first cannot be upgraded once the file moved on, and
// fails at once with "database is locked" instead of waiting.
class WriteTransaction {
 public:
  // BEGIN and COMMIT go through the statement cache: preparing them anew was 4% of a boot's CPU.
  WriteTransaction(soci::session& s, bool sqlite) : s_(s) {
    execute(s_, sqlite ? "BEGIN IMMEDIATE" : "BEGIN", {});
  }
  void commit() {
    execute(s_, "COMMIT", {});
    open_ = false;
  }
  ~WriteTransaction() {
    if (!open_) return;
    try {
      s_ << "ROLLBACK";
    } catch (...) {
    }
  }

 private:
  soci::session& s_;
  bool open_ = true;
};

}  // namespace

void Database::Impl::commit_group(std::deque<PendingWrite*>& group) {
  std::lock_guard lock(write_mu);
  auto& s = *writer;
  if (group.size() == 1) {  // the common case when idle: no savepoint needed
    try {
      WriteTransaction tr(s, sqlite);
      (*group.front()->fn)(s);
      tr.commit();
    } catch (...) {
      group.front()->error = std::current_exception();
    }
    return;
  }
  try {
    WriteTransaction tr(s, sqlite);
    for (auto* w : group) {
      execute(s, "SAVEPOINT nubo_write", {});
      try {
        (*w->fn)(s);
        execute(s, "RELEASE SAVEPOINT nubo_write", {});
      } catch (...) {
        w->error = std::current_exception();
        execute(s, "ROLLBACK TO SAVEPOINT nubo_write", {});
        execute(s, "RELEASE SAVEPOINT nubo_write", {});
      }
    }
    tr.commit();
  } catch (...) {
    // The transaction itself failed (commit, or the connection): nothing of the group is kept.
    auto error = std::current_exception();
    for (auto* w : group)
      if (!w->error) w->error = error;
  }
}

namespace {

std::string to_soci_postgres(const std::string& url) {
  // postgresql://user:pass@host:port/dbname -> libpq keyword string
  std::string rest = url.substr(url.find("://") + 3);
  std::string user, pass, host = "localhost", port, dbname;
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    auto cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    user = cred.substr(0, colon);
    if (colon != std::string::npos) pass = cred.substr(colon + 1);
  }
  auto slash = rest.find('/');
  auto hostport = rest.substr(0, slash);
  if (slash != std::string::npos) dbname = rest.substr(slash + 1);
  auto q = dbname.find('?');
  std::string params;
  if (q != std::string::npos) {
    params = dbname.substr(q + 1);
    dbname = dbname.substr(0, q);
  }
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  } else if (!hostport.empty()) {
    host = hostport;
  }
  // Query parameters (?host=/run/postgresql&port=5433) override the authority part.
  std::map<std::string, std::string> kv{{"host", host}, {"dbname", dbname}};
  if (!port.empty()) kv["port"] = port;
  if (!user.empty()) kv["user"] = user;
  if (!pass.empty()) kv["password"] = pass;
  size_t start = 0;
  while (start < params.size()) {
    auto amp = params.find('&', start);
    auto item = params.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    auto eq = item.find('=');
    if (eq != std::string::npos) kv[item.substr(0, eq)] = item.substr(eq + 1);
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  std::string s;
  for (auto& [k, v] : kv) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s;
}

std::vector<std::string> split_statements(const std::string& sql) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < sql.size()) {
    auto end = sql.find(";\n", start);
    if (end == std::string::npos) end = sql.size();
    auto stmt = sql.substr(start, end - start);
    if (stmt.find_first_not_of(" \t\r\n;") != std::string::npos) out.push_back(stmt);
    start = end + 2;
  }
  return out;
}

}  // namespace

Database::Database(std::unique_ptr<Impl> impl, bool postgresql)
    : impl_(std::move(impl)), postgresql_(postgresql) {
  for (auto* s : impl_->sessions()) cache_statements(*s);
}

Database::~Database() {
  for (auto* s : impl_->sessions()) forget_statements(*s);
}

std::unique_ptr<Database> Database::open(const std::string& url, unsigned readers) {
  // Each connection is used by one thread at a time (the writer under its mutex, readers from
  // the pool), so SQLite's own per-connection locking and its global allocation statistics
  // (one process-wide mutex on every allocation) are only contention. Set before SQLite starts.
  static std::once_flag sqlite_configured;
  std::call_once(sqlite_configured, [] {
    // soci declares sqlite3.h inside namespace sqlite_api
    if (sqlite_api::sqlite3_config(SQLITE_CONFIG_MULTITHREAD) != SQLITE_OK ||
        sqlite_api::sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
      spdlog::warn("db: SQLite was started before its configuration; it keeps its own locking");
  });
  auto impl = std::make_unique<Impl>();
  bool pg = url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  auto make = [&]() {
    if (pg)
      return std::make_unique<soci::session>(*soci::factory_postgresql(), to_soci_postgres(url));
    if (url.rfind("sqlite://", 0) != 0)
      throw std::runtime_error("unsupported database url: " + url);
    std::string path = url.substr(9);
    auto s =
        std::make_unique<soci::session>(*soci::factory_sqlite3(), "db=" + path + " timeout=30");
    *s << "PRAGMA journal_mode=WAL";
    *s << "PRAGMA synchronous=FULL";
    *s << "PRAGMA foreign_keys=ON";
    *s << "PRAGMA busy_timeout=30000";
    // Sorts and temporary indexes in memory: on disk each one created and unlinked a file.
    *s << "PRAGMA temp_store=MEMORY";
    return s;
  };
  impl->sqlite = !pg;
  impl->writer = make();
  bool memory = url.find(":memory:") != std::string::npos;
  // An in-memory SQLite database exists per connection: readers must share the writer.
  if (!memory) {
    for (unsigned i = 0; i < std::max(1u, readers); ++i) {
      impl->readers.push_back(make());
      impl->free_readers.push_back(impl->readers.back().get());
    }
  }
  return std::unique_ptr<Database>(new Database(std::move(impl), pg));
}

namespace {
// Gives a pooled read connection back when the reading ends (or throws).
struct ReleaseReader {
  Database::Impl* impl;
  soci::session* s;
  ~ReleaseReader();
};
}  // namespace

ReleaseReader::~ReleaseReader() {
  std::lock_guard lock(impl->read_mu);
  impl->free_readers.push_back(s);
  impl->read_cv.notify_one();
}

void Database::read(const std::function<void(soci::session&)>& fn) {
  if (impl_->readers.empty()) {
    std::lock_guard lock(impl_->write_mu);
    fn(*impl_->writer);
    return;
  }
  soci::session* s;
  {
    std::unique_lock lock(impl_->read_mu);
    impl_->read_cv.wait(lock, [&] { return !impl_->free_readers.empty(); });
    s = impl_->free_readers.back();
    impl_->free_readers.pop_back();
  }
  ReleaseReader release{impl_.get(), s};
  fn(*s);
}

bool lost_race(const std::exception& error) {
  auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&error);
  if (!pg) return false;
  auto state = pg->sqlstate();
  return state == "23505" || state == "40P01" || state == "40001";
}

bool Database::try_read(const std::function<void(soci::session&)>& fn) {
  if (postgresql_ || impl_->readers.empty()) return false;
  soci::session* s;
  {
    std::lock_guard lock(impl_->read_mu);
    if (impl_->free_readers.empty()) return false;
    s = impl_->free_readers.back();
    impl_->free_readers.pop_back();
  }
  ReleaseReader release{impl_.get(), s};
  fn(*s);
  return true;
}

void Database::write(const std::function<void(soci::session&)>& fn) {
  PendingWrite me{&fn};
  auto& d = *impl_;
  std::unique_lock lock(d.queue_mu);
  d.queue.push_back(&me);
  while (!me.done) {
    if (d.leading) {
      me.wake.wait(lock);
      continue;
    }
    d.leading = true;
    auto group = std::move(d.queue);
    d.queue.clear();
    lock.unlock();
    d.commit_group(group);
    lock.lock();
    for (auto* w : group) {
      w->done = true;
      if (w != &me) w->wake.notify_one();
    }
    d.leading = false;
    // The writes queued meanwhile: the first leads the next group.
    if (!d.queue.empty()) d.queue.front()->wake.notify_one();
  }
  if (me.error) std::rethrow_exception(me.error);
}

int Database::version(const std::string& service) {
  int v = 0;
  write([&](soci::session& s) {
    s << "CREATE TABLE IF NOT EXISTS nubo_migrations (service VARCHAR(64) NOT NULL, version "
         "INTEGER NOT NULL, "
         "applied_at VARCHAR(40) NOT NULL, PRIMARY KEY (service, version))";
    soci::indicator ind;
    s << "SELECT MAX(version) FROM nubo_migrations WHERE service = :s", soci::into(v, ind),
        soci::use(service);
    if (ind == soci::i_null) v = 0;
  });
  return v;
}

int Database::migrate(const std::string& service, const std::vector<Migration>& migrations) {
  int current = version(service);
  int applied = 0;
  for (auto& m : migrations) {
    if (m.version <= current) continue;
    write([&](soci::session& s) {
      for (auto& stmt : split_statements(m.sql)) s << stmt;
      int version = m.version;
      s << "INSERT INTO nubo_migrations (service, version, applied_at) VALUES (:s, :v, "
           "CURRENT_TIMESTAMP)",
          soci::use(service), soci::use(version);
    });
    spdlog::info("db: {} migrated to version {}", service, m.version);
    ++applied;
  }
  if (applied)  // statements prepared against the old schema go
    for (auto* s : impl_->sessions()) {
      forget_statements(*s);
      cache_statements(*s);
    }
  return applied;
}

std::unique_ptr<Database> Database::open_for(const Config& c, const std::string& service,
                                             const std::string& state_dir) {
  std::filesystem::create_directories(state_dir);
  auto url = c.get_string("database", service + "_connection",
                          "sqlite://" + state_dir + "/" + service + ".db");
  return open(url, static_cast<unsigned>(c.get_int("database", "readers", 4)));
}

}  // namespace nubo::db
