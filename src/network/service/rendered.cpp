// Listings from rendered rows: each row's view is serialized once and kept, keyed by the row's
// revision, so that listing thousands of unchanged rows reads two columns and joins text instead
// of reading, parsing, decorating and serializing every row again (issue 6: 10,000 ports).
#include <soci/soci.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "network/service/internal.hpp"
#include "network/store/schema.hpp"

namespace nubo::network {

using namespace detail;

namespace {

// Kinds whose view is a function of the stored row and the caller's admin flag alone (networks
// list their subnets, security groups their rules: those are rendered each time).
bool row_local_view(Kind k) { return k != Kind::network && k != Kind::security_group; }

// The attributes visible() reads (ownership, the network, the group, sharing).
json::object visibility_keys(const json::object& row) {
  json::object keys;
  for (auto* name : {"id", "project_id", "network_id", "security_group_id", "target_tenant",
                     "shared", "router:external"})
    if (auto* v = find(row, name)) keys[name] = *v;
  return keys;
}

constexpr size_t kMaxRendered = 200000;  // rows kept per kind; past it the kind starts afresh

}  // namespace

bool NetworkService::list_rendered(const Caller& c, Kind k, const ListParams& p, std::string& out) {
  if (!row_local_view(k) || p.limit || p.marker || !p.sort.empty()) return false;
  // Only filters SQL applies exactly: text columns (names are matched on the views, as list()).
  db::Query q;
  std::map<std::string, std::vector<std::string>> by_key;
  for (auto& [key, value] : p.filters)
    by_key[key == "tenant_id" ? "project_id" : key].push_back(value);
  for (auto& [key, values] : by_key) {
    auto* column = table(k).column(key);
    if (!column || column->type != db::ColumnType::Text || key == "name") return false;
    q.in(column->name, values);
  }
  bool admin = c.admin();
  auto start = out.size();
  out += '[';
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, admin, {}};
    auto current = db::select_columns(s, table(k), {"id", "revision_number", "created_at"}, q);
    // Ids in the order list() gives (a database's collation may order them otherwise).
    auto by_id = [](auto& a, auto& b) { return *a[0] < *b[0]; };
    if (!std::is_sorted(current.begin(), current.end(), by_id))
      std::sort(current.begin(), current.end(), by_id);
    std::vector<std::shared_ptr<const std::string>> texts(current.size());
    std::vector<size_t> missing;
    {
      std::shared_lock lock(state_->rendered_mutex);
      auto& kept = state_->rendered[k];
      for (size_t i = 0; i < current.size(); ++i) {
        auto& r = current[i];
        auto it = kept.find(*r[0]);
        bool fresh = it != kept.end() && r[1] && it->second.revision == std::stoll(*r[1]) &&
                     it->second.created_at == r[2].value_or("");
        if (!fresh || !it->second.text[admin]) {
          missing.push_back(i);
          continue;
        }
        if (!admin && !visible(tx, k, it->second.keys)) continue;
        texts[i] = it->second.text[admin];
      }
    }
    if (!missing.empty()) {
      // Rows not kept (or changed since): read and rendered once, then kept. Many at once are
      // read with the listing's own query rather than by id.
      std::vector<json::object> rows;
      if (missing.size() * 4 > current.size()) {
        rows = load_where(tx, k, q);
      } else {
        std::vector<std::string> ids;
        for (auto i : missing) ids.push_back(*current[i][0]);
        rows = db::select_in(s, table(k), {}, "id", ids);
      }
      std::unordered_map<std::string, size_t> position;
      for (auto i : missing) position.emplace(*current[i][0], i);
      std::vector<json::object> keys;
      std::vector<std::pair<size_t, std::int64_t>> where;  // position, revision
      std::vector<json::object> seen;
      for (auto& row : rows) {
        auto it = position.find(string_or(row, "id"));
        if (it == position.end() || !visible(tx, k, row)) continue;
        where.emplace_back(it->second, int_or(row, "revision_number", -1));
        keys.push_back(visibility_keys(row));
        seen.push_back(std::move(row));
      }
      auto shown = views(tx, k, std::move(seen));
      std::unique_lock lock(state_->rendered_mutex);
      auto& kept = state_->rendered[k];
      if (kept.size() > kMaxRendered) kept.clear();
      for (size_t j = 0; j < shown.size(); ++j) {
        auto [i, revision] = where[j];
        auto text = std::make_shared<const std::string>(json::serialize(shown[j]));
        texts[i] = text;
        if (revision < 0) continue;  // a row from before revisions were columns: not kept
        auto& entry = kept[*current[i][0]];
        if (entry.revision != revision || entry.created_at != current[i][2].value_or("")) {
          entry = {revision, current[i][2].value_or(""), std::move(keys[j]), {}};
        }
        entry.text[admin] = std::move(text);
      }
    }
    size_t size = out.size() + 2;
    for (auto& t : texts) size += t ? t->size() + 1 : 0;
    out.reserve(size);
    for (auto& t : texts) {
      if (!t) continue;
      if (out.size() > start + 1) out += ',';
      out += *t;
    }
  });
  out += ']';
  return true;
}

// Rows stored before revision_number was a column get it from `extra`, once, so that their
// renderings can be kept too.
void NetworkService::ensure_revisions() {
  db_->write([&](soci::session& s) {
    for (auto k : {Kind::subnet, Kind::port, Kind::security_group_rule, Kind::router,
                   Kind::floatingip, Kind::subnetpool, Kind::rbac_policy, Kind::address_scope}) {
      db::Query q;
      q.is_null("revision_number");
      for (auto& row : db::select(s, table(k), q))
        db::update(s, table(k), string_or(row, "id"),
                   {{"revision_number", int_or(row, "revision_number", 0)}});
    }
  });
}

}  // namespace nubo::network
