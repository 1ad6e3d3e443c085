// The database layer: group commit keeps each write's all-or-nothing and its own error, and
// cached statements see every change (they hold no stale snapshot).
#include "common/db/database.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/db/table.hpp"

using namespace nubo;

namespace {

const db::Table item{"item", {{"id"}, {"n", db::ColumnType::Int}}, false};

// A fresh database: SQLite in a temporary directory, or the PostgreSQL database named by
// NUBO_TEST_DATABASE (tests/api/run-postgresql), emptied of this test's table first.
struct TempDb {
  std::filesystem::path dir;
  std::unique_ptr<db::Database> db;
  TempDb() {
    char tmpl[] = "/tmp/nubo-db-test.XXXXXX";
    dir = mkdtemp(tmpl);
    auto* url = std::getenv("NUBO_TEST_DATABASE");
    db = db::Database::open(url ? url : "sqlite://" + (dir / "t.db").string(), 2);
    db->write([](soci::session& s) {
      s << "DROP TABLE IF EXISTS item";
      s << "CREATE TABLE IF NOT EXISTS nubo_migrations (service VARCHAR(64) NOT NULL, version "
           "INTEGER NOT NULL, applied_at VARCHAR(40) NOT NULL, PRIMARY KEY (service, version))";
      s << "DELETE FROM nubo_migrations WHERE service = 'database_test'";
    });
    db->migrate("database_test",
                {{1, "CREATE TABLE item (id VARCHAR(64) PRIMARY KEY, n INTEGER NOT NULL)"}});
  }
  ~TempDb() {
    db.reset();
    std::filesystem::remove_all(dir);
  }
  long count() {
    long n = 0;
    db->read([&](soci::session& s) { n = db::count(s, item); });
    return n;
  }
};

TEST(Database, ConcurrentWritesCommitEachAndAFailureUndoesOnlyItsOwn) {
  TempDb t;
  constexpr int threads = 8, per_thread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w)
    workers.emplace_back([&, w] {
      for (int i = 0; i < per_thread; ++i) {
        auto id = std::to_string(w) + "-" + std::to_string(i);
        try {
          t.db->write([&](soci::session& s) {
            db::insert(s, item, json::object{{"id", id}, {"n", i}});
            // Every tenth write fails after its insert: the insert must not survive.
            if (i % 10 == 0) throw std::runtime_error("refused " + id);
          });
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()), "refused " + id);  // its own error, not another's
          ++failures;
        }
      }
    });
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), threads * per_thread / 10);
  EXPECT_EQ(t.count(), threads * per_thread * 9 / 10);
  t.db->read([&](soci::session& s) {
    EXPECT_FALSE(db::get(s, item, "3-0"));
    auto row = db::get(s, item, "3-7");
    ASSERT_TRUE(row);
    EXPECT_EQ(row->at("n").as_int64(), 7);
  });
}

TEST(Database, AFailedStatementInsideAWriteIsReportedToThatWriterOnly) {
  TempDb t;
  t.db->write([](soci::session& s) { db::insert(s, item, json::object{{"id", "a"}, {"n", 1}}); });
  std::vector<std::thread> workers;
  std::atomic<int> duplicates{0}, ok{0};
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) try {
          t.db->write([&](soci::session& s) {
            // Half of them collide on the primary key.
            auto id = i % 2 ? std::string("a") : "w" + std::to_string(w) + "-" + std::to_string(i);
            db::insert(s, item, json::object{{"id", id}, {"n", i}});
          });
          ++ok;
        } catch (const soci::soci_error&) {
          ++duplicates;
        }
    });
  for (auto& w : workers) w.join();
  EXPECT_EQ(duplicates.load(), 100);
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(t.count(), 101);
}

TEST(Database, CachedStatementsSeeEveryCommittedChange) {
  TempDb t;
  for (int i = 0; i < 50; ++i) {
    t.db->write([&](soci::session& s) {
      db::insert(s, item, json::object{{"id", "k" + std::to_string(i)}, {"n", i}});
      // Reads inside the write go through the writer's cached statements.
      db::Query q;
      q.limit = 1;
      EXPECT_EQ(db::select(s, item, q).size(), 1u);
    });
    // The same statements, run again on the readers, see the row just written.
    t.db->read([&](soci::session& s) {
      auto row = db::get(s, item, "k" + std::to_string(i));
      ASSERT_TRUE(row);
      EXPECT_EQ(row->at("n").as_int64(), i);
      EXPECT_EQ(db::count(s, item), i + 1);
      EXPECT_FALSE(db::get(s, item, "missing"));
    });
  }
  t.db->write([](soci::session& s) { db::update(s, item, "k3", json::object{{"n", 33}}); });
  t.db->read([](soci::session& s) { EXPECT_EQ(db::get(s, item, "k3")->at("n").as_int64(), 33); });
}

// The I/O threads' reads: on SQLite they run at once while a reader is idle, even while the
// writer holds a transaction open, and refuse rather than wait when every reader is taken; on
// PostgreSQL (round trips over the network) they always refuse.
TEST(Database, TryReadRunsAtOnceOrRefusesWithoutWaiting) {
  TempDb t;
  t.db->write([](soci::session& s) { db::insert(s, item, json::object{{"id", "a"}, {"n", 1}}); });
  bool pg = t.db->is_postgresql();
  long seen = -1;
  bool ran = false;
  std::promise<void> writing, release;
  std::thread writer([&] {
    t.db->write([&](soci::session& s) {
      db::update(s, item, "a", json::object{{"n", 2}});
      writing.set_value();
      release.get_future().wait();
    });
  });
  writing.get_future().wait();
  ran = t.db->try_read([&](soci::session& s) { seen = db::get(s, item, "a")->at("n").as_int64(); });
  EXPECT_EQ(ran, !pg);
  if (!pg) {
    EXPECT_EQ(seen, 1);  // the committed row, not the open transaction's
  }
  // Both readers busy: refused, without waiting for either.
  std::promise<void> both_in, leave;
  auto left = leave.get_future().share();
  std::atomic<int> inside{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i)
    readers.emplace_back([&] {
      t.db->read([&](soci::session&) {
        if (++inside == 2) both_in.set_value();
        left.wait();
      });
    });
  both_in.get_future().wait();
  EXPECT_FALSE(t.db->try_read([](soci::session&) { ADD_FAILURE() << "ran with no idle reader"; }));
  leave.set_value();
  for (auto& r : readers) r.join();
  release.set_value();
  writer.join();
  EXPECT_EQ(
      t.db->try_read([&](soci::session& s) { seen = db::get(s, item, "a")->at("n").as_int64(); }),
      !pg);
  if (!pg) {
    EXPECT_EQ(seen, 2);
  }
}

TEST(Database, AColumnAddedLaterReadsItsValueFromExtraUntilTheRowIsWritten) {
  TempDb t;
  const db::Table before{"thing", {{"id"}, {"name"}}, true};
  const db::Table after{"thing", {{"id"}, {"name"}, {"revision", db::ColumnType::Int}}, true};
  t.db->write([&](soci::session& s) {
    s << "DROP TABLE IF EXISTS thing";
    s << "CREATE TABLE thing (id VARCHAR(64) PRIMARY KEY, name VARCHAR(64), extra TEXT)";
    db::insert(s, before, json::object{{"id", "a"}, {"name", "x"}, {"revision", 4}});
    db::insert(s, before, json::object{{"id", "b"}, {"name", nullptr}, {"revision", 7}});
    s << "ALTER TABLE thing ADD COLUMN revision BIGINT";
  });
  t.db->read([&](soci::session& s) {
    auto a = db::get(s, after, "a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->at("revision").as_int64(), 4) << "the old value, from extra";
    EXPECT_EQ(a->at("name").as_string(), "x");
    EXPECT_TRUE(db::get(s, after, "b")->at("name").is_null()) << "a NULL column stays null";
    // select_columns reads the columns themselves: NULL until the row is written again.
    auto cols = db::select_columns(s, after, {"id", "revision"});
    ASSERT_EQ(cols.size(), 2u);
    EXPECT_EQ(*cols[0][0], "a");
    EXPECT_FALSE(cols[0][1]);
  });
  t.db->write([&](soci::session& s) {
    auto a = *db::get(s, after, "a");
    a["revision"] = 5;
    db::replace(s, after, a);
  });
  t.db->read([&](soci::session& s) {
    EXPECT_EQ(db::get(s, after, "a")->at("revision").as_int64(), 5);
    db::Query q;
    q.eq("id", "a");
    EXPECT_EQ(*db::select_columns(s, after, {"revision"}, q).at(0).at(0), "5");
    EXPECT_THROW(db::select_columns(s, after, {"nope"}), std::logic_error);
  });
  t.db->write([](soci::session& s) { s << "DROP TABLE thing"; });
}

TEST(Database, AnUpdateSetsAndRemovesExtraFieldsAndKeepsTheOthers) {
  TempDb t;
  const db::Table thing{"thing", {{"id"}, {"name"}}, true};
  t.db->write([&](soci::session& s) {
    s << "DROP TABLE IF EXISTS thing";
    s << "CREATE TABLE thing (id VARCHAR(64) PRIMARY KEY, name VARCHAR(64), extra TEXT)";
    db::insert(s, thing,
               json::object{{"id", "a"},
                            {"name", "x"},
                            {"kept", json::object{{"deep", json::array{1, 2}}}},
                            {"gone", "soon"},
                            {"replaced", json::object{{"old", 1}}}});
    db::insert(s, thing, json::object{{"id", "b"}, {"name", "y"}});
  });
  t.db->write([&](soci::session& s) {
    EXPECT_EQ(db::update(s, thing, "a",
                         json::object{{"name", "z"},
                                      {"gone", nullptr},
                                      {"replaced", json::object{{"new", "v\"q"}}},
                                      {"added", 3.5},
                                      {"flag", true},
                                      {"count", 9007199254740993LL}}),
              1);
    EXPECT_EQ(db::update(s, thing, "missing", json::object{{"added", 1}}), 0);
    EXPECT_EQ(db::update(s, thing, "b", json::object{{"only", "extra"}}), 1);
    // Compare-and-set: nothing changes unless the row still matches.
    EXPECT_EQ(db::update(s, thing, "b", json::object{{"name", "no"}, {"only", "no"}},
                         db::Query{}.eq("name", "x")),
              0);
    EXPECT_EQ(db::update(s, thing, "b", json::object{{"then", 1}}, db::Query{}.eq("name", "y")), 1);
  });
  t.db->read([&](soci::session& s) {
    auto a = *db::get(s, thing, "a");
    EXPECT_EQ(a.at("name").as_string(), "z");
    EXPECT_FALSE(a.contains("gone"));
    EXPECT_EQ(a.at("kept"), (json::object{{"deep", json::array{1, 2}}}));
    EXPECT_EQ(a.at("replaced"), (json::object{{"new", "v\"q"}})) << "replaced, not merged";
    EXPECT_EQ(a.at("added").as_double(), 3.5);
    EXPECT_EQ(a.at("flag").as_bool(), true);
    EXPECT_EQ(a.at("count").as_int64(), 9007199254740993LL);
    auto b = *db::get(s, thing, "b");
    EXPECT_EQ(b.at("name").as_string(), "y");
    EXPECT_EQ(b.at("only").as_string(), "extra");
    EXPECT_EQ(b.at("then").as_int64(), 1);
    EXPECT_FALSE(db::get(s, thing, "missing"));
  });
  t.db->write([](soci::session& s) { s << "DROP TABLE thing"; });
}

}  // namespace
