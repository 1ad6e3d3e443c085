// A kept SQLite statement (C API), shared by the storage server's SQLite files: listings and the
// expiring-object index. Included by .cpp files only (it brings sqlite3.h).
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace nubo::object::sqlite {

// Runs SQL without results (pragmas, schema, BEGIN/COMMIT); throws with SQLite's message.
inline void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + message);
  }
}

// Finalizes the statements a connection kept, then closes it.
inline void close(sqlite3* db) {
  while (auto* s = sqlite3_next_stmt(db, nullptr)) sqlite3_finalize(s);
  sqlite3_close(db);
}

// A statement of fixed text is prepared once per connection and kept there (found again by its
// text among the connection's statements): parsing it anew cost a PUT more CPU than running it.
// A connection is used by one thread at a time (ListingDb's mutex); `in_use` keeps a statement
// from being handed out twice by nested uses.
class Statement {
 public:
  enum Use { kKept, kOnce };
  Statement(sqlite3* db, const char* sql, Use use = kKept) : kept_(use == kKept) {
    if (kept_)
      for (auto* s = sqlite3_next_stmt(db, nullptr); s; s = sqlite3_next_stmt(db, s))
        if (std::strcmp(sqlite3_sql(s), sql) == 0 &&
            std::find(in_use().begin(), in_use().end(), s) == in_use().end()) {
          stmt_ = s;
          break;
        }
    if (!stmt_ && sqlite3_prepare_v3(db, sql, -1, kept_ ? SQLITE_PREPARE_PERSISTENT : 0, &stmt_,
                                     nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    if (kept_) in_use().push_back(stmt_);
  }
  ~Statement() {
    if (!kept_) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    std::erase(in_use(), stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite step: ") +
                             sqlite3_errmsg(sqlite3_db_handle(stmt_)));
  }
  std::string text(int i) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  std::int64_t integer(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  static std::vector<sqlite3_stmt*>& in_use() {
    thread_local std::vector<sqlite3_stmt*> statements;
    return statements;
  }
  bool kept_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace nubo::object::sqlite
