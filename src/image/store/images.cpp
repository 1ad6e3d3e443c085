#include "image/store/images.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "image/store/schema.hpp"

namespace nubo::image::store {

namespace {

// Columns that may hold NULL: they sort with an explicit null flag so that both databases agree.
bool nullable(const std::string& column) {
  static const std::vector<std::string> cols = {
      "name",  "disk_format", "container_format", "size",          "virtual_size",
      "owner", "checksum",    "os_hash_algo",     "os_hash_value", "location"};
  return std::find(cols.begin(), cols.end(), column) != cols.end();
}

struct Sql {
  std::string text;
  std::vector<std::optional<std::string>> params;
  std::string param(std::optional<std::string> v) {
    params.push_back(std::move(v));
    return ":p" + std::to_string(params.size() - 1);
  }
};

const db::Column& column_of(const std::string& name) {
  auto* c = image.column(name);
  if (!c) throw std::logic_error("unknown image column " + name);
  return *c;
}

std::string condition_sql(Sql& q, const db::Condition& c) {
  column_of(c.column);
  if (c.op == "IS NULL" || c.op == "IS NOT NULL") return c.column + " " + c.op;
  if (c.op == "OUTSIDE") {  // [values[0], values[1]) excluded
    if (c.values.size() != 2) throw std::logic_error("OUTSIDE needs two values");
    return "(" + c.column + " < " + q.param(c.values[0]) + " OR " + c.column +
           " >= " + q.param(c.values[1]) + ")";
  }
  if (c.op == "IN") {
    if (c.values.empty()) return "1 = 0";
    std::string s = c.column + " IN (";
    for (size_t i = 0; i < c.values.size(); ++i) s += (i ? ", " : "") + q.param(c.values[i]);
    return s + ")";
  }
  static const std::vector<std::string> ops = {"=", "!=", "<", "<=", ">", ">="};
  if (std::find(ops.begin(), ops.end(), c.op) == ops.end())
    throw std::logic_error("bad operator " + c.op);
  if (c.values.empty()) throw std::logic_error("condition without value on " + c.column);
  // != must keep NULLs out as Glance's SQL does (NULL != x is not true).
  return c.column + " " + (c.op == "!=" ? std::string("<>") : c.op) + " " + q.param(c.values[0]);
}

}  // namespace

std::vector<std::string> list_image_ids(soci::session& s, const ListQuery& lq) {
  Sql q;
  std::vector<std::string> where;
  for (auto& c : lq.conditions) where.push_back(condition_sql(q, c));
  for (auto& tag : lq.tags)
    where.push_back("id IN (SELECT image_id FROM image_tag WHERE value = " + q.param(tag) + ")");

  if (!lq.admin) {
    // What a regular user sees: public and community images, its own, and shared images it is a
    // member of (with the requested member status).
    std::string scope = "visibility IN ('public', 'community')";
    if (!lq.project.empty()) {
      auto p = q.param(lq.project);
      scope += " OR owner = " + p;
      std::string member =
          "SELECT image_id FROM image_member WHERE member_id = " + q.param(lq.project);
      if (lq.member_status != "all") member += " AND status = " + q.param(lq.member_status);
      scope += " OR (visibility = 'shared' AND id IN (" + member + "))";
    }
    where.push_back("(" + scope + ")");
  }
  if (lq.visibility) {
    if (*lq.visibility != "all") where.push_back("visibility = " + q.param(*lq.visibility));
  } else if (lq.project.empty()) {
    where.push_back("visibility <> 'community'");
  } else {
    where.push_back("(owner = " + q.param(lq.project) + " OR visibility <> 'community')");
  }

  if (lq.marker) {
    // Keyset: rows strictly after the marker in the sort order. Every placeholder is used once
    // (SOCI binds PostgreSQL parameters by occurrence).
    std::vector<std::pair<const SortKey*, std::optional<std::string>>> keys;
    for (auto& k : lq.sort) {
      auto& col = column_of(k.column);
      auto* v = find(*lq.marker, k.column);
      keys.emplace_back(&k, v ? db::bind_value(col, *v) : std::nullopt);
    }
    auto equal = [&](size_t j) {
      auto& [k, mv] = keys[j];
      return mv ? k->column + " = " + q.param(mv) : k->column + " IS NULL";
    };
    auto after = [&](size_t i) {
      auto& [k, mv] = keys[i];
      if (!mv) return k->descending ? std::string("1 = 0") : k->column + " IS NOT NULL";
      auto p = q.param(mv);
      if (!k->descending) return k->column + " > " + p;
      return nullable(k->column) ? "(" + k->column + " < " + p + " OR " + k->column + " IS NULL)"
                                 : k->column + " < " + p;
    };
    std::string any;
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string alt;
      for (size_t j = 0; j < i; ++j) alt += equal(j) + " AND ";
      any += (any.empty() ? "(" : " OR (") + alt + after(i) + ")";
    }
    if (!any.empty()) where.push_back("(" + any + ")");
  }

  q.text = "SELECT id FROM image";
  for (size_t i = 0; i < where.size(); ++i) q.text += (i ? " AND " : " WHERE ") + where[i];
  std::string order;
  for (auto& k : lq.sort) {
    column_of(k.column);
    const char* dir = k.descending ? " DESC" : " ASC";
    if (!order.empty()) order += ", ";
    if (nullable(k.column))
      order += "CASE WHEN " + k.column + " IS NULL THEN 0 ELSE 1 END" + dir + ", ";
    order += k.column + dir;
  }
  if (!order.empty()) q.text += " ORDER BY " + order;
  if (lq.limit) q.text += " LIMIT " + std::to_string(*lq.limit);

  std::vector<std::string> ids;
  for (auto& row : db::query_strings(s, q.text, q.params))
    if (!row.empty() && row[0]) ids.push_back(*row[0]);
  return ids;
}

std::vector<json::object> load_images(soci::session& s, const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  std::vector<json::object> out;
  std::unordered_map<std::string, size_t> index;
  // Bounded IN lists keep statements reasonable on long pages.
  for (size_t start = 0; start < ids.size(); start += 500) {
    std::vector<std::string> chunk(
        ids.begin() + static_cast<long>(start),
        ids.begin() + static_cast<long>(std::min(ids.size(), start + 500)));
    auto rows = db::select(s, image, db::Query{}.in("id", chunk));
    std::unordered_map<std::string, std::vector<std::string>> tags;
    db::Query tq;
    tq.in("image_id", chunk);
    tq.order_by = "value";
    for (auto& t : db::select(s, image_tag, tq))
      tags[std::string(t["image_id"].as_string())].emplace_back(t["value"].as_string());
    for (auto& r : rows) {
      std::string id(r["id"].as_string());
      json::array ta;
      for (auto& t : tags[id]) ta.emplace_back(t);
      r["tags"] = std::move(ta);
      index[id] = out.size();
      out.push_back(std::move(r));
    }
  }
  std::vector<json::object> ordered;
  ordered.reserve(out.size());
  for (auto& id : ids) {
    auto it = index.find(id);
    if (it != index.end()) ordered.push_back(std::move(out[it->second]));
  }
  return ordered;
}

std::vector<std::string> tags_of(soci::session& s, const std::string& image_id) {
  db::Query q;
  q.eq("image_id", image_id);
  q.order_by = "value";
  std::vector<std::string> out;
  for (auto& t : db::select(s, image_tag, q)) out.emplace_back(t["value"].as_string());
  return out;
}

std::optional<json::object> membership(soci::session& s, const std::string& image_id,
                                       const std::string& member_id) {
  if (member_id.empty()) return std::nullopt;
  auto rows =
      db::select(s, image_member, db::Query{}.eq("image_id", image_id).eq("member_id", member_id));
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

}  // namespace nubo::image::store
