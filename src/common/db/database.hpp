// One service's database: a serialized writer and pooled readers over SOCI (SQLite or PostgreSQL),
// with numbered migrations embedded in the binary.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace soci {
class session;
}

namespace nubo {
class Config;
}

namespace nubo::db {

struct Migration {
  int version;
  std::string sql;  // statements separated by ";\n"; portable between SQLite and PostgreSQL
};

class Database {
 public:
  // url: "sqlite:///absolute/path.db", "sqlite://:memory:" or
  // "postgresql://user:pass@host:port/dbname"
  static std::unique_ptr<Database> open(const std::string& url, unsigned readers = 4);
  // A service's database as configured: `[database] <service>_connection`, else
  // STATE_DIR/<service>.db, with `[database] readers` readers.
  static std::unique_ptr<Database> open_for(const Config& config, const std::string& service,
                                            const std::string& state_dir);
  ~Database();

  bool is_postgresql() const { return postgresql_; }
  // Runs fn on a pooled read connection.
  void read(const std::function<void(soci::session&)>& fn);
  // The same when it cannot wait: on an embedded (SQLite) database with a read connection idle,
  // runs fn and returns true; otherwise (PostgreSQL's round trips, every reader busy) false. For
  // the I/O threads' fast paths: SQLite readers in WAL mode never wait for the writer.
  bool try_read(const std::function<void(soci::session&)>& fn);
  // Runs fn in a transaction on the single writer; committed (durably) before returning.
  void write(const std::function<void(soci::session&)>& fn);
  // Applies the migrations of `service` newer than the recorded version, each in a transaction.
  int migrate(const std::string& service, const std::vector<Migration>& migrations);
  int version(const std::string& service);

  struct Impl;

 private:
  explicit Database(std::unique_ptr<Impl> impl, bool postgresql);
  std::unique_ptr<Impl> impl_;
  bool postgresql_;
};

// A write lost a race with another process's writer on the same (PostgreSQL) database: a unique
// key taken meanwhile, a deadlock victim, a serialization failure. Running the write again reads
// the winner's rows (what oslo.db's retry wrapper does for Neutron and Nova).
bool lost_race(const std::exception& error);

}  // namespace nubo::db
