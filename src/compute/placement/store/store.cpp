#include "compute/placement/store/store.hpp"

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "common/db/table.hpp"
#include "common/ids.hpp"

namespace nubo::placement::store {

namespace {

using Params = std::vector<std::optional<std::string>>;
using Rows = std::vector<std::vector<std::optional<std::string>>>;

std::string now() { return iso8601(std::chrono::system_clock::now()); }

std::int64_t to_int(const std::optional<std::string>& v) {
  if (!v) return 0;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc()) return static_cast<std::int64_t>(std::stod(*v));  // "16.0", "1e3"
  return n;
}

// ":p<first>, :p<first+1>, ..." for the values, appended to params.
std::string placeholders(Params& params, const std::set<std::string>& values) {
  std::string out;
  for (auto& v : values) {
    out += (out.empty() ? ":p" : ", :p") + std::to_string(params.size());
    params.emplace_back(v);
  }
  return out;
}

// Sets this large are filtered in memory: SQLite finds each named parameter by a linear search,
// which makes an IN list of a thousand names cost more than reading the table.
constexpr std::size_t kMaxInList = 64;

std::string p(Params& params, std::optional<std::string> v) {
  params.push_back(std::move(v));
  return ":p" + std::to_string(params.size() - 1);
}

constexpr const char* kProviderColumns =
    "uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at";

Provider provider_row(const std::vector<std::optional<std::string>>& r) {
  return Provider{r[0].value_or(""), r[1].value_or(""), to_int(r[2]),     r[3],
                  r[4].value_or(""), r[5].value_or(""), r[6].value_or("")};
}

std::vector<Provider> provider_rows(const Rows& rows) {
  std::vector<Provider> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(provider_row(r));
  return out;
}

constexpr const char* kInventoryColumns =
    "total, reserved, min_unit, max_unit, step_size, allocation_ratio, used";

Inventory inventory_row(const std::vector<std::optional<std::string>>& r, std::size_t at) {
  Inventory i;
  i.total = to_int(r[at]);
  i.reserved = to_int(r[at + 1]);
  i.min_unit = to_int(r[at + 2]);
  i.max_unit = to_int(r[at + 3]);
  i.step_size = to_int(r[at + 4]);
  i.allocation_ratio = std::stod(r[at + 5].value_or("1"));
  i.used = to_int(r[at + 6]);
  return i;
}

std::vector<std::string> column(const Rows& rows) {
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(r[0].value_or(""));
  return out;
}

}  // namespace

std::vector<db::Migration> migrations() {
  // Integers that sum usage are BIGINT; ratios DOUBLE PRECISION (REAL is 4 bytes in PostgreSQL).
  return {{1, R"SQL(
CREATE TABLE placement_provider (uuid VARCHAR(36) PRIMARY KEY, name VARCHAR(200) NOT NULL UNIQUE,
  generation BIGINT NOT NULL DEFAULT 0, parent_uuid VARCHAR(36), root_uuid VARCHAR(36) NOT NULL,
  created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX placement_provider_root ON placement_provider (root_uuid);
CREATE INDEX placement_provider_parent ON placement_provider (parent_uuid);
CREATE TABLE placement_inventory (provider_uuid VARCHAR(36) NOT NULL, resource_class VARCHAR(255) NOT NULL,
  total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL,
  step_size BIGINT NOT NULL, allocation_ratio DOUBLE PRECISION NOT NULL, used BIGINT NOT NULL DEFAULT 0,
  updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (provider_uuid, resource_class));
CREATE INDEX placement_inventory_capacity ON placement_inventory (resource_class, provider_uuid, total,
  reserved, min_unit, max_unit, step_size, allocation_ratio, used);
CREATE TABLE placement_consumer (uuid VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255) NOT NULL,
  user_id VARCHAR(255) NOT NULL, generation BIGINT NOT NULL DEFAULT 0, consumer_type VARCHAR(255),
  created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL);
CREATE INDEX placement_consumer_project ON placement_consumer (project_id, user_id);
CREATE TABLE placement_allocation (consumer_uuid VARCHAR(36) NOT NULL, provider_uuid VARCHAR(36) NOT NULL,
  resource_class VARCHAR(255) NOT NULL, used BIGINT NOT NULL, created_at VARCHAR(32) NOT NULL,
  PRIMARY KEY (consumer_uuid, provider_uuid, resource_class));
CREATE INDEX placement_allocation_provider ON placement_allocation (provider_uuid, resource_class);
CREATE TABLE placement_resource_class (name VARCHAR(255) PRIMARY KEY, created_at VARCHAR(32) NOT NULL);
CREATE TABLE placement_trait (name VARCHAR(255) PRIMARY KEY, created_at VARCHAR(32) NOT NULL);
CREATE TABLE placement_provider_trait (provider_uuid VARCHAR(36) NOT NULL, trait VARCHAR(255) NOT NULL,
  PRIMARY KEY (provider_uuid, trait));
CREATE INDEX placement_provider_trait_name ON placement_provider_trait (trait);
CREATE TABLE placement_provider_aggregate (provider_uuid VARCHAR(36) NOT NULL, aggregate_uuid VARCHAR(36) NOT NULL,
  PRIMARY KEY (provider_uuid, aggregate_uuid));
CREATE INDEX placement_provider_aggregate_uuid ON placement_provider_aggregate (aggregate_uuid);
)SQL"}};
}

std::optional<Provider> provider(soci::session& s, const std::string& uuid) {
  auto rows = db::query_strings(
      s, std::string("SELECT ") + kProviderColumns + " FROM placement_provider WHERE uuid = :p0",
      {uuid});
  if (rows.empty()) return std::nullopt;
  return provider_row(rows[0]);
}

std::optional<Provider> provider_by_name(soci::session& s, const std::string& name) {
  auto rows = db::query_strings(
      s, std::string("SELECT ") + kProviderColumns + " FROM placement_provider WHERE name = :p0",
      {name});
  if (rows.empty()) return std::nullopt;
  return provider_row(rows[0]);
}

std::vector<Provider> providers(soci::session& s, const ProviderFilter& f) {
  Params params;
  std::string sql =
      std::string("SELECT ") + kProviderColumns + " FROM placement_provider WHERE 1 = 1";
  if (f.name) sql += " AND name = " + p(params, *f.name);
  if (f.uuid) sql += " AND uuid = " + p(params, *f.uuid);
  if (f.in_tree)
    sql += " AND root_uuid = (SELECT root_uuid FROM placement_provider WHERE uuid = " +
           p(params, *f.in_tree) + ")";
  sql += " ORDER BY created_at, uuid";
  return provider_rows(db::query_strings(s, sql, params));
}

std::vector<Provider> providers_in(soci::session& s, const std::set<std::string>& uuids) {
  if (uuids.empty()) return {};
  Params params;
  auto sql = std::string("SELECT ") + kProviderColumns + " FROM placement_provider";
  if (uuids.size() <= kMaxInList) sql += " WHERE uuid IN (" + placeholders(params, uuids) + ")";
  auto all = provider_rows(db::query_strings(s, sql, params));
  if (uuids.size() <= kMaxInList) return all;
  std::erase_if(all, [&](const Provider& p) { return !uuids.count(p.uuid); });
  return all;
}

void insert_provider(soci::session& s, const Provider& pr) {
  db::execute(s,
              "INSERT INTO placement_provider (uuid, name, generation, parent_uuid, root_uuid, "
              "created_at, updated_at) "
              "VALUES (:p0, :p1, 0, :p2, :p3, :p4, :p5)",
              {pr.uuid, pr.name, pr.parent_uuid, pr.root_uuid, pr.created_at, pr.updated_at});
}

void update_provider(soci::session& s, const Provider& pr) {
  db::execute(s,
              "UPDATE placement_provider SET name = :p0, parent_uuid = :p1, root_uuid = :p2, "
              "updated_at = :p3 "
              "WHERE uuid = :p4",
              {pr.name, pr.parent_uuid, pr.root_uuid, now(), pr.uuid});
}

void set_subtree_root(soci::session& s, const std::string& uuid, const std::string& new_root) {
  // Walk down level by level: trees are shallow and this runs only when a provider moves.
  std::set<std::string> level{uuid};
  while (!level.empty()) {
    Params params{new_root};
    auto in = placeholders(params, level);
    db::execute(s, "UPDATE placement_provider SET root_uuid = :p0 WHERE uuid IN (" + in + ")",
                params);
    Params child_params;
    auto rows = db::query_strings(s,
                                  "SELECT uuid FROM placement_provider WHERE parent_uuid IN (" +
                                      placeholders(child_params, level) + ")",
                                  child_params);
    level.clear();
    for (auto& r : rows) level.insert(r[0].value_or(""));
  }
}

bool has_children(soci::session& s, const std::string& uuid) {
  return !db::query_strings(
              s, "SELECT uuid FROM placement_provider WHERE parent_uuid = :p0 LIMIT 1", {uuid})
              .empty();
}

void delete_provider(soci::session& s, const std::string& uuid) {
  for (const char* table :
       {"placement_inventory", "placement_provider_trait", "placement_provider_aggregate"})
    db::execute(s, std::string("DELETE FROM ") + table + " WHERE provider_uuid = :p0", {uuid});
  db::execute(s, "DELETE FROM placement_provider WHERE uuid = :p0", {uuid});
}

bool bump_generation(soci::session& s, const std::string& uuid, std::int64_t expected) {
  return db::execute(s,
                     "UPDATE placement_provider SET generation = generation + 1, updated_at = :p0 "
                     "WHERE uuid = :p1 AND generation = CAST(:p2 AS BIGINT)",
                     {now(), uuid, std::to_string(expected)}) == 1;
}

Inventories inventories(soci::session& s, const std::string& provider_uuid) {
  Inventories out;
  for (auto& r : db::query_strings(s,
                                   std::string("SELECT resource_class, ") + kInventoryColumns +
                                       " FROM placement_inventory WHERE provider_uuid = :p0",
                                   {provider_uuid}))
    out[r[0].value_or("")] = inventory_row(r, 1);
  return out;
}

std::map<std::string, Inventories> inventories_of(soci::session& s,
                                                  const std::set<std::string>& providers) {
  std::map<std::string, Inventories> out;
  if (providers.empty()) return out;
  Params params;
  auto sql = std::string("SELECT provider_uuid, resource_class, ") + kInventoryColumns +
             " FROM placement_inventory";
  bool in = providers.size() <= kMaxInList;
  if (in) sql += " WHERE provider_uuid IN (" + placeholders(params, providers) + ")";
  for (auto& r : db::query_strings(s, sql, params))
    if (in || providers.count(r[0].value_or("")))
      out[r[0].value_or("")][r[1].value_or("")] = inventory_row(r, 2);
  return out;
}

void upsert_inventory(soci::session& s, const std::string& provider_uuid,
                      const std::string& resource_class, const Inventory& inv, bool exists) {
  std::ostringstream ratio;
  ratio.precision(17);
  ratio << inv.allocation_ratio;
  Params params{std::to_string(inv.total),
                std::to_string(inv.reserved),
                std::to_string(inv.min_unit),
                std::to_string(inv.max_unit),
                std::to_string(inv.step_size),
                ratio.str(),
                now(),
                provider_uuid,
                resource_class};
  if (exists) {
    db::execute(s,
                "UPDATE placement_inventory SET total = CAST(:p0 AS BIGINT), reserved = CAST(:p1 "
                "AS BIGINT), "
                "min_unit = CAST(:p2 AS BIGINT), max_unit = CAST(:p3 AS BIGINT), step_size = "
                "CAST(:p4 AS BIGINT), "
                "allocation_ratio = CAST(:p5 AS DOUBLE PRECISION), updated_at = :p6 "
                "WHERE provider_uuid = :p7 AND resource_class = :p8",
                params);
  } else {
    db::execute(s,
                "INSERT INTO placement_inventory (total, reserved, min_unit, max_unit, step_size, "
                "allocation_ratio, "
                "updated_at, provider_uuid, resource_class, used) VALUES (CAST(:p0 AS BIGINT), "
                "CAST(:p1 AS BIGINT), "
                "CAST(:p2 AS BIGINT), CAST(:p3 AS BIGINT), CAST(:p4 AS BIGINT), CAST(:p5 AS DOUBLE "
                "PRECISION), :p6, "
                ":p7, :p8, 0)",
                params);
  }
}

void delete_inventory(soci::session& s, const std::string& provider_uuid,
                      const std::string& resource_class) {
  db::execute(s,
              "DELETE FROM placement_inventory WHERE provider_uuid = :p0 AND resource_class = :p1",
              {provider_uuid, resource_class});
}

void add_used(soci::session& s, const std::string& provider_uuid, const std::string& resource_class,
              std::int64_t delta) {
  db::execute(s,
              "UPDATE placement_inventory SET used = used + CAST(:p0 AS BIGINT) "
              "WHERE provider_uuid = :p1 AND resource_class = :p2",
              {std::to_string(delta), provider_uuid, resource_class});
}

std::map<std::string, Capable> providers_with_capacity(soci::session& s, const Amounts& resources,
                                                       const std::optional<std::string>& root) {
  // The scheduler's hot path: per class one statement answered from a covering index, typed binds
  // and bulk fetches; where providers sit comes from one statement over the few that have a parent.
  std::unordered_map<std::string, std::pair<std::string, std::string>>
      nested;  // child → root, parent
  {
    constexpr std::size_t kBatch = 256;
    std::vector<std::string> uuid(kBatch), roots(kBatch), parents(kBatch);
    soci::statement st =
        (s.prepare << "SELECT uuid, root_uuid, parent_uuid FROM placement_provider "
                      "WHERE parent_uuid IS NOT NULL",
         soci::into(uuid), soci::into(roots), soci::into(parents));
    st.execute();
    while (st.fetch()) {
      for (std::size_t i = 0; i < uuid.size(); ++i) nested[uuid[i]] = {roots[i], parents[i]};
      for (auto* v : {&uuid, &roots, &parents}) v->resize(kBatch);
    }
  }
  std::unordered_map<std::string, Capable> found;
  auto add = [&](const std::string& rc, std::string_view uuid, const Inventory& inv,
                 long long amount) {
    if (inv.step_size > 0 && amount % inv.step_size != 0) return;
    auto [it, fresh] = found.try_emplace(std::string(uuid));
    auto& c = it->second;
    if (fresh) {
      auto n = nested.find(it->first);
      if (n == nested.end()) {
        c.root_uuid = it->first;
      } else {
        c.root_uuid = n->second.first;
        c.parent_uuid = n->second.second;
      }
    }
    c.inventories.emplace(rc, inv);
  };
  const char* sql =
      "SELECT provider_uuid, total, reserved, min_unit, max_unit, step_size, allocation_ratio, "
      "used "
      "FROM placement_inventory WHERE resource_class = :rc AND min_unit <= :a1 AND max_unit >= :a2 "
      "AND (total - reserved) * allocation_ratio >= used + :a3";
  for (auto& [resource_class, amount_value] : resources) {
    std::string rc = resource_class;
    long long amount = amount_value;
    if (s.get_backend_name() == "sqlite3") {
      // SOCI's SQLite backend converts every fetched cell through text; read the columns directly.
      auto* conn = static_cast<soci::sqlite3_session_backend*>(s.get_backend())->conn_;
      sqlite_api::sqlite3_stmt* st = nullptr;
      if (sqlite_api::sqlite3_prepare_v2(conn, sql, -1, &st, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("placement: ") + sqlite_api::sqlite3_errmsg(conn));
      std::unique_ptr<sqlite_api::sqlite3_stmt, int (*)(sqlite_api::sqlite3_stmt*)> guard(
          st, sqlite_api::sqlite3_finalize);
      sqlite_api::sqlite3_bind_text(st, 1, rc.c_str(), static_cast<int>(rc.size()), SQLITE_STATIC);
      for (int i = 2; i <= 4; ++i) sqlite_api::sqlite3_bind_int64(st, i, amount);
      int rcode;
      while ((rcode = sqlite_api::sqlite3_step(st)) == SQLITE_ROW) {
        std::string_view uuid(reinterpret_cast<const char*>(sqlite_api::sqlite3_column_text(st, 0)),
                              static_cast<std::size_t>(sqlite_api::sqlite3_column_bytes(st, 0)));
        add(rc, uuid,
            Inventory{
                sqlite_api::sqlite3_column_int64(st, 1), sqlite_api::sqlite3_column_int64(st, 2),
                sqlite_api::sqlite3_column_int64(st, 3), sqlite_api::sqlite3_column_int64(st, 4),
                sqlite_api::sqlite3_column_int64(st, 5), sqlite_api::sqlite3_column_double(st, 6),
                sqlite_api::sqlite3_column_int64(st, 7)},
            amount);
      }
      if (rcode != SQLITE_DONE)
        throw std::runtime_error(std::string("placement: ") + sqlite_api::sqlite3_errmsg(conn));
      continue;
    }
    constexpr std::size_t kBatch = 1024;
    std::vector<std::string> uuid(kBatch);
    std::vector<long long> total(kBatch), reserved(kBatch), min_unit(kBatch), max_unit(kBatch),
        step(kBatch), used(kBatch);
    std::vector<double> ratio(kBatch);
    soci::statement st =
        (s.prepare << sql, soci::into(uuid), soci::into(total), soci::into(reserved),
         soci::into(min_unit), soci::into(max_unit), soci::into(step), soci::into(ratio),
         soci::into(used), soci::use(rc, "rc"), soci::use(amount, "a1"), soci::use(amount, "a2"),
         soci::use(amount, "a3"));
    st.execute();
    while (st.fetch()) {
      for (std::size_t i = 0; i < uuid.size(); ++i)
        add(rc, uuid[i],
            Inventory{total[i], reserved[i], min_unit[i], max_unit[i], step[i], ratio[i], used[i]},
            amount);
      uuid.resize(kBatch);
      for (auto* v : {&total, &reserved, &min_unit, &max_unit, &step, &used}) v->resize(kBatch);
      ratio.resize(kBatch);
    }
  }
  // In uuid order, so that answers are stable.
  std::vector<std::pair<std::string, Capable>> sorted;
  sorted.reserve(found.size());
  for (auto& [uuid, c] : found)
    if (!root || c.root_uuid == *root) sorted.emplace_back(uuid, std::move(c));
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::map<std::string, Capable> out;
  for (auto& entry : sorted) out.emplace_hint(out.end(), std::move(entry));
  return out;
}

std::map<std::string, std::pair<std::string, std::optional<std::string>>> tree_of(
    soci::session& s, const std::set<std::string>& roots) {
  std::map<std::string, std::pair<std::string, std::optional<std::string>>> out;
  Params params;
  std::string sql = "SELECT uuid, root_uuid, parent_uuid FROM placement_provider";
  bool in = !roots.empty() && roots.size() <= kMaxInList;
  if (in) sql += " WHERE root_uuid IN (" + placeholders(params, roots) + ")";
  for (auto& r : db::query_strings(s, sql, params))
    if (in || roots.empty() || roots.count(r[1].value_or("")))
      out[r[0].value_or("")] = {r[1].value_or(""), r[2]};
  return out;
}

std::optional<ConsumerRecord> consumer(soci::session& s, const std::string& uuid) {
  auto rows = db::query_strings(s,
                                "SELECT uuid, project_id, user_id, generation, consumer_type FROM "
                                "placement_consumer WHERE uuid = :p0",
                                {uuid});
  if (rows.empty()) return std::nullopt;
  auto& r = rows[0];
  return ConsumerRecord{r[0].value_or(""), r[1].value_or(""), r[2].value_or(""), to_int(r[3]),
                        r[4]};
}

void insert_consumer(soci::session& s, const ConsumerRecord& c) {
  auto t = now();
  db::execute(s,
              "INSERT INTO placement_consumer (uuid, project_id, user_id, generation, "
              "consumer_type, created_at, "
              "updated_at) VALUES (:p0, :p1, :p2, 0, :p3, :p4, :p5)",
              {c.uuid, c.project_id, c.user_id, c.consumer_type, t, t});
}

void update_consumer(soci::session& s, const ConsumerRecord& c) {
  db::execute(s,
              "UPDATE placement_consumer SET project_id = :p0, user_id = :p1, consumer_type = :p2, "
              "updated_at = :p3 "
              "WHERE uuid = :p4",
              {c.project_id, c.user_id, c.consumer_type, now(), c.uuid});
}

bool bump_consumer_generation(soci::session& s, const std::string& uuid, std::int64_t expected) {
  return db::execute(s,
                     "UPDATE placement_consumer SET generation = generation + 1, updated_at = :p0 "
                     "WHERE uuid = :p1 AND generation = CAST(:p2 AS BIGINT)",
                     {now(), uuid, std::to_string(expected)}) == 1;
}

void delete_consumer(soci::session& s, const std::string& uuid) {
  db::execute(s, "DELETE FROM placement_consumer WHERE uuid = :p0", {uuid});
}

ProviderAmounts consumer_allocations(soci::session& s, const std::string& consumer_uuid) {
  ProviderAmounts out;
  for (auto& r : db::query_strings(s,
                                   "SELECT provider_uuid, resource_class, used FROM "
                                   "placement_allocation WHERE consumer_uuid = :p0",
                                   {consumer_uuid}))
    out[r[0].value_or("")][r[1].value_or("")] = to_int(r[2]);
  return out;
}

void delete_consumer_allocations(soci::session& s, const std::string& consumer_uuid) {
  db::execute(s, "DELETE FROM placement_allocation WHERE consumer_uuid = :p0", {consumer_uuid});
}

void insert_allocation(soci::session& s, const std::string& consumer_uuid,
                       const std::string& provider_uuid, const std::string& resource_class,
                       std::int64_t used) {
  db::execute(s,
              "INSERT INTO placement_allocation (consumer_uuid, provider_uuid, resource_class, "
              "used, created_at) "
              "VALUES (:p0, :p1, :p2, CAST(:p3 AS BIGINT), :p4)",
              {consumer_uuid, provider_uuid, resource_class, std::to_string(used), now()});
}

std::map<std::string, Amounts> provider_allocations(
    soci::session& s, const std::string& provider_uuid,
    std::map<std::string, std::int64_t>& consumer_generations) {
  std::map<std::string, Amounts> out;
  for (auto& r : db::query_strings(s,
                                   "SELECT a.consumer_uuid, a.resource_class, a.used, c.generation "
                                   "FROM placement_allocation a LEFT JOIN placement_consumer c "
                                   "ON c.uuid = a.consumer_uuid WHERE a.provider_uuid = :p0",
                                   {provider_uuid})) {
    auto consumer_uuid = r[0].value_or("");
    out[consumer_uuid][r[1].value_or("")] = to_int(r[2]);
    consumer_generations[consumer_uuid] = to_int(r[3]);
  }
  return out;
}

bool provider_has_allocations(soci::session& s, const std::string& provider_uuid) {
  return !db::query_strings(
              s, "SELECT consumer_uuid FROM placement_allocation WHERE provider_uuid = :p0 LIMIT 1",
              {provider_uuid})
              .empty();
}

bool class_in_use(soci::session& s, const std::string& resource_class) {
  return !db::query_strings(
              s, "SELECT provider_uuid FROM placement_inventory WHERE resource_class = :p0 LIMIT 1",
              {resource_class})
              .empty();
}

std::map<std::string, TypedUsage> project_usages(soci::session& s, const std::string& project_id,
                                                 const std::optional<std::string>& user_id) {
  Params params{project_id};
  std::string where = "c.project_id = :p0";
  if (user_id) where += " AND c.user_id = " + p(params, *user_id);
  std::map<std::string, TypedUsage> out;
  for (auto& r : db::query_strings(
           s,
           "SELECT COALESCE(c.consumer_type, ''), a.resource_class, SUM(a.used) "
           "FROM placement_allocation a JOIN placement_consumer c ON c.uuid = a.consumer_uuid "
           "WHERE " +
               where + " GROUP BY COALESCE(c.consumer_type, ''), a.resource_class",
           params))
    out[r[0].value_or("")].usages[r[1].value_or("")] = to_int(r[2]);
  for (auto& r : db::query_strings(
           s,
           "SELECT COALESCE(c.consumer_type, ''), COUNT(DISTINCT c.uuid) FROM placement_consumer c "
           "JOIN placement_allocation a ON a.consumer_uuid = c.uuid WHERE " +
               where + " GROUP BY COALESCE(c.consumer_type, '')",
           params))
    out[r[0].value_or("")].consumer_count = to_int(r[1]);
  return out;
}

std::vector<std::string> custom_classes(soci::session& s) {
  return column(
      db::query_strings(s, "SELECT name FROM placement_resource_class ORDER BY name", {}));
}

bool custom_class_exists(soci::session& s, const std::string& name) {
  return !db::query_strings(s, "SELECT name FROM placement_resource_class WHERE name = :p0", {name})
              .empty();
}

void insert_custom_class(soci::session& s, const std::string& name) {
  db::execute(s, "INSERT INTO placement_resource_class (name, created_at) VALUES (:p0, :p1)",
              {name, now()});
}

void rename_custom_class(soci::session& s, const std::string& from, const std::string& to) {
  // Inventories and allocations name their class: they follow it.
  db::execute(s, "UPDATE placement_resource_class SET name = :p0 WHERE name = :p1", {to, from});
  for (const char* table : {"placement_inventory", "placement_allocation"})
    db::execute(
        s, std::string("UPDATE ") + table + " SET resource_class = :p0 WHERE resource_class = :p1",
        {to, from});
}

void delete_custom_class(soci::session& s, const std::string& name) {
  db::execute(s, "DELETE FROM placement_resource_class WHERE name = :p0", {name});
}

std::vector<std::string> custom_traits(soci::session& s) {
  return column(db::query_strings(s, "SELECT name FROM placement_trait ORDER BY name", {}));
}

bool custom_trait_exists(soci::session& s, const std::string& name) {
  return !db::query_strings(s, "SELECT name FROM placement_trait WHERE name = :p0", {name}).empty();
}

void insert_custom_trait(soci::session& s, const std::string& name) {
  db::execute(s, "INSERT INTO placement_trait (name, created_at) VALUES (:p0, :p1)", {name, now()});
}

void delete_custom_trait(soci::session& s, const std::string& name) {
  db::execute(s, "DELETE FROM placement_trait WHERE name = :p0", {name});
}

bool trait_in_use(soci::session& s, const std::string& name) {
  return !db::query_strings(
              s, "SELECT provider_uuid FROM placement_provider_trait WHERE trait = :p0 LIMIT 1",
              {name})
              .empty();
}

std::set<std::string> associated_traits(soci::session& s) {
  auto names =
      column(db::query_strings(s, "SELECT DISTINCT trait FROM placement_provider_trait", {}));
  return {names.begin(), names.end()};
}

std::vector<std::string> provider_traits(soci::session& s, const std::string& provider_uuid) {
  return column(db::query_strings(
      s, "SELECT trait FROM placement_provider_trait WHERE provider_uuid = :p0 ORDER BY trait",
      {provider_uuid}));
}

void set_provider_traits(soci::session& s, const std::string& provider_uuid,
                         const std::vector<std::string>& traits) {
  db::execute(s, "DELETE FROM placement_provider_trait WHERE provider_uuid = :p0", {provider_uuid});
  for (auto& t : std::set<std::string>(traits.begin(), traits.end()))
    db::execute(s, "INSERT INTO placement_provider_trait (provider_uuid, trait) VALUES (:p0, :p1)",
                {provider_uuid, t});
}

std::map<std::string, std::set<std::string>> traits_of(soci::session& s,
                                                       const std::set<std::string>& providers,
                                                       const std::set<std::string>& traits) {
  Params params;
  std::string sql = "SELECT provider_uuid, trait FROM placement_provider_trait WHERE 1 = 1";
  bool in = !providers.empty() && providers.size() <= kMaxInList;
  if (in) sql += " AND provider_uuid IN (" + placeholders(params, providers) + ")";
  if (!traits.empty()) sql += " AND trait IN (" + placeholders(params, traits) + ")";
  std::map<std::string, std::set<std::string>> out;
  for (auto& r : db::query_strings(s, sql, params))
    if (in || providers.empty() || providers.count(r[0].value_or("")))
      out[r[0].value_or("")].insert(r[1].value_or(""));
  return out;
}

std::vector<std::string> provider_aggregates(soci::session& s, const std::string& provider_uuid) {
  return column(db::query_strings(s,
                                  "SELECT aggregate_uuid FROM placement_provider_aggregate WHERE "
                                  "provider_uuid = :p0 ORDER BY aggregate_uuid",
                                  {provider_uuid}));
}

void set_provider_aggregates(soci::session& s, const std::string& provider_uuid,
                             const std::vector<std::string>& aggregates) {
  db::execute(s, "DELETE FROM placement_provider_aggregate WHERE provider_uuid = :p0",
              {provider_uuid});
  for (auto& a : std::set<std::string>(aggregates.begin(), aggregates.end()))
    db::execute(s,
                "INSERT INTO placement_provider_aggregate (provider_uuid, aggregate_uuid) VALUES "
                "(:p0, :p1)",
                {provider_uuid, a});
}

std::map<std::string, std::set<std::string>> members_of(soci::session& s,
                                                        const std::set<std::string>& aggregates) {
  std::map<std::string, std::set<std::string>> out;
  if (aggregates.empty()) return out;
  Params params;
  auto sql =
      "SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregate WHERE aggregate_uuid "
      "IN (" +
      placeholders(params, aggregates) + ")";
  for (auto& r : db::query_strings(s, sql, params))
    out[r[0].value_or("")].insert(r[1].value_or(""));
  return out;
}

}  // namespace nubo::placement::store
