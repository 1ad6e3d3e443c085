#include "common/db/table.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace nubo::db {

const Column* Table::column(std::string_view n) const {
  for (auto& c : columns)
    if (c.name == n) return &c;
  return nullptr;
}

namespace {

std::string cell_string(const soci::row& r, std::size_t i) {
  switch (r.get_properties(i).get_data_type()) {
    case soci::dt_string:
      return r.get<std::string>(i);
    case soci::dt_integer:
      return std::to_string(r.get<int>(i));
    case soci::dt_long_long:
      return std::to_string(r.get<long long>(i));
    case soci::dt_unsigned_long_long:
      return std::to_string(r.get<unsigned long long>(i));
    case soci::dt_double: {
      std::ostringstream ss;
      ss.precision(17);
      ss << r.get<double>(i);
      return ss.str();
    }
    case soci::dt_date: {
      std::tm tm = r.get<std::tm>(i);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      return buf;
    }
    default:
      return r.get<std::string>(i);
  }
}

json::value cell_json(const soci::row& r, std::size_t i, ColumnType type) {
  if (r.get_indicator(i) == soci::i_null) return nullptr;
  auto dt = r.get_properties(i).get_data_type();
  switch (type) {
    case ColumnType::Text:
      return json::string(cell_string(r, i));
    case ColumnType::Bool:
      if (dt == soci::dt_integer) return r.get<int>(i) != 0;
      if (dt == soci::dt_long_long) return r.get<long long>(i) != 0;
      {
        auto s = cell_string(r, i);
        return s == "1" || s == "t" || s == "true";
      }
    case ColumnType::Int:
      if (dt == soci::dt_integer) return static_cast<std::int64_t>(r.get<int>(i));
      if (dt == soci::dt_long_long) return static_cast<std::int64_t>(r.get<long long>(i));
      if (dt == soci::dt_double) return static_cast<std::int64_t>(r.get<double>(i));
      return static_cast<std::int64_t>(std::stoll(cell_string(r, i)));
    case ColumnType::Real:
      if (dt == soci::dt_double) return r.get<double>(i);
      return std::stod(cell_string(r, i));
    case ColumnType::Json: {
      auto s = cell_string(r, i);
      if (s.empty()) return nullptr;
      return json::parse(s);
    }
  }
  return nullptr;
}

std::vector<std::optional<std::string>> row_strings(const soci::row& r) {
  std::vector<std::optional<std::string>> row;
  row.reserve(r.size());
  for (std::size_t i = 0; i < r.size(); ++i)
    row.push_back(r.get_indicator(i) == soci::i_null ? std::nullopt
                                                     : std::optional(cell_string(r, i)));
  return row;
}

json::object row_to_object(const soci::row& r, const Table& t) {
  json::object o;
  json::value extra;
  if (t.has_extra) extra = cell_json(r, t.columns.size(), ColumnType::Json);
  o.reserve(t.columns.size() + (extra.is_object() ? extra.as_object().size() : 0));
  std::size_t i = 0;
  for (auto& c : t.columns) o.emplace(c.name, cell_json(r, i++, c.type));
  // Columns win, except a NULL one: a column added to a table later reads the value its rows kept
  // in `extra` until each row is next written.
  if (extra.is_object())
    for (auto& kv : extra.as_object()) {
      auto [it, added] = o.emplace(kv.key(), nullptr);
      if (added || it->value().is_null()) it->value() = std::move(kv.value());
    }
  return o;
}

std::string column_list(const Table& t) {
  std::string s;
  for (auto& c : t.columns) s += (s.empty() ? "" : ", ") + c.name;
  if (t.has_extra) s += ", extra";
  return s;
}

struct Bound {
  std::string sql;
  std::vector<std::string> values;
  std::vector<soci::indicator> indicators;
  void add(const std::optional<std::string>& v) {
    sql += ":p" + std::to_string(values.size());
    values.push_back(v.value_or(std::string()));
    indicators.push_back(v ? soci::i_ok : soci::i_null);
  }
};

void where_clause(Bound& b, const Table& t, const Query& q) {
  bool first = true;
  for (auto& c : q.where) {
    if (!t.column(c.column) && c.column.find('(') == std::string::npos)
      throw std::logic_error("unknown column " + c.column + " in " + t.name);
    b.sql += first ? " WHERE " : " AND ";
    first = false;
    if (c.op == "IS NULL" || c.op == "IS NOT NULL") {
      b.sql += c.column + " " + c.op;
    } else if (c.op == "IN") {
      if (c.values.empty()) {
        b.sql += "1 = 0";
        continue;
      }
      b.sql += c.column + " IN (";
      for (size_t i = 0; i < c.values.size(); ++i) {
        if (i) b.sql += ", ";
        b.add(c.values[i]);
      }
      b.sql += ")";
    } else {
      b.sql += c.column + " " + c.op + " ";
      b.add(c.values.empty() ? std::optional<std::string>() : c.values[0]);
    }
  }
}

// A statement with positional parameters (:p0, :p1...) already in its text.
Bound bound(std::string sql, const std::vector<std::optional<std::string>>& params) {
  Bound b;
  b.sql = std::move(sql);
  for (auto& p : params) {
    b.values.push_back(p.value_or(std::string()));
    b.indicators.push_back(p ? soci::i_ok : soci::i_null);
  }
  return b;
}

template <class Prep>
void bind_all(Prep& p, Bound& b) {
  for (size_t i = 0; i < b.values.size(); ++i) p, soci::use(b.values[i], b.indicators[i]);
}

// Prepared statements kept per connection, by SQL text. SOCI has no statement cache of its own,
// and preparing again was a third of the CPU of showing a server. A statement's parameters are
// bound by reference to its entry's values, so running it again is: set values, execute, fetch.
struct CachedStatement {
  std::vector<std::string> values;
  std::vector<soci::indicator> indicators;
  soci::row row;
  std::unique_ptr<soci::statement> statement;
};

struct StatementCache {
  std::unordered_map<std::string, std::unique_ptr<CachedStatement>> statements;
};

constexpr std::size_t max_cached_statements = 256;
constexpr std::size_t max_cached_parameters = 32;  // long IN lists vary too much to be worth it

std::shared_mutex caches_mu;
std::unordered_map<soci::session*, std::unique_ptr<StatementCache>> caches;

StatementCache* cache_of(soci::session& s) {
  std::shared_lock lock(caches_mu);
  auto it = caches.find(&s);
  return it == caches.end() ? nullptr : it->second.get();
}

// Runs b's statement; with rows, calls on_row for each result row. Returns the rows affected.
template <class OnRow>
long run_statement(soci::session& s, Bound& b, bool rows, OnRow&& on_row) {
  auto* cache = b.values.size() <= max_cached_parameters ? cache_of(s) : nullptr;
  if (!cache) {
    soci::details::prepare_temp_type p = (s.prepare << b.sql);
    bind_all(p, b);
    soci::row row;
    if (rows) p, soci::into(row);
    soci::statement st(p);
    for (bool got = st.execute(true); rows && got; got = st.fetch()) on_row(row);
    return static_cast<long>(st.get_affected_rows());
  }
  auto it = cache->statements.find(b.sql);
  if (it == cache->statements.end()) {
    if (cache->statements.size() >= max_cached_statements) cache->statements.clear();
    it = cache->statements.emplace(b.sql, std::make_unique<CachedStatement>()).first;
    auto& entry = it->second;
    entry->values.resize(b.values.size());
    entry->indicators.resize(b.values.size(), soci::i_ok);
    soci::details::prepare_temp_type p = (s.prepare << b.sql);
    for (size_t i = 0; i < entry->values.size(); ++i)
      p, soci::use(entry->values[i], entry->indicators[i]);
    if (rows) p, soci::into(entry->row);
    entry->statement = std::make_unique<soci::statement>(p);
  }
  auto& c = *it->second;
  for (size_t i = 0; i < c.values.size(); ++i) {
    c.values[i] = std::move(b.values[i]);
    c.indicators[i] = b.indicators[i];
  }
  try {
    for (bool got = c.statement->execute(true); rows && got; got = c.statement->fetch())
      on_row(c.row);
    return static_cast<long>(c.statement->get_affected_rows());
  } catch (...) {
    // A statement stopped half-way may hold a read snapshot open: prepare it afresh next time.
    cache->statements.erase(b.sql);
    throw;
  }
}

long run(soci::session& s, Bound& b) {
  return run_statement(s, b, false, [](const soci::row&) {});
}

std::vector<json::object> run_select(soci::session& s, const Table& t, Bound& b) {
  std::vector<json::object> out;
  run_statement(s, b, true, [&](const soci::row& r) { out.push_back(row_to_object(r, t)); });
  return out;
}

}  // namespace

std::optional<std::string> bind_value(const Column& c, const json::value& v) {
  if (v.is_null()) return std::nullopt;
  switch (c.type) {
    case ColumnType::Json:
      return json::serialize(v);
    case ColumnType::Bool:
      if (v.is_bool()) return v.as_bool() ? "1" : "0";
      break;
    default:
      break;
  }
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "1" : "0";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) {
    std::ostringstream ss;
    ss.precision(17);
    ss << v.as_double();
    return ss.str();
  }
  return json::serialize(v);
}

// The row's fields that are not columns (what the `extra` column holds).
static json::object extra_fields(const Table& t, const json::object& row) {
  json::object extra;
  for (auto& kv : row)
    if (!t.column(kv.key())) extra[kv.key()] = kv.value();
  return extra;
}

void insert(soci::session& s, const Table& t, const json::object& row) {
  Bound b;
  b.sql = "INSERT INTO " + t.name + " (" + column_list(t) + ") VALUES (";
  bool first = true;
  for (auto& c : t.columns) {
    if (!first) b.sql += ", ";
    first = false;
    auto* v = find(row, c.name);
    b.add(v ? bind_value(c, *v) : std::nullopt);
  }
  if (t.has_extra) {
    b.sql += ", ";
    b.add(json::serialize(extra_fields(t, row)));
  }
  b.sql += ")";
  run(s, b);
}

std::optional<json::object> get(soci::session& s, const Table& t, std::string_view id) {
  Query q;
  q.eq(t.columns.front().name, std::string(id));
  auto rows = select(s, t, q);
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

std::vector<json::object> select(soci::session& s, const Table& t, const Query& q) {
  Bound b;
  b.sql = "SELECT " + column_list(t) + " FROM " + t.name;
  where_clause(b, t, q);
  b.sql += " ORDER BY " + (q.order_by.empty() ? t.columns.front().name : q.order_by) +
           (q.descending ? " DESC" : " ASC");
  if (q.limit) b.sql += " LIMIT " + std::to_string(*q.limit);
  return run_select(s, t, b);
}

std::vector<std::vector<std::optional<std::string>>> select_columns(
    soci::session& s, const Table& t, const std::vector<std::string>& columns, const Query& q) {
  Bound b;
  b.sql = "SELECT ";
  for (auto& c : columns) {
    if (!t.column(c)) throw std::logic_error("unknown column " + c + " in " + t.name);
    b.sql += (&c == &columns.front() ? "" : ", ") + c;
  }
  b.sql += " FROM " + t.name;
  where_clause(b, t, q);
  b.sql += " ORDER BY " + (q.order_by.empty() ? t.columns.front().name : q.order_by) +
           (q.descending ? " DESC" : " ASC");
  if (q.limit) b.sql += " LIMIT " + std::to_string(*q.limit);
  std::vector<std::vector<std::optional<std::string>>> out;
  run_statement(s, b, true, [&](const soci::row& r) { out.push_back(row_strings(r)); });
  return out;
}

std::vector<json::object> select_in(soci::session& s, const Table& t, const Query& q,
                                    const std::string& column,
                                    const std::vector<std::string>& values) {
  constexpr std::size_t slice = 16;
  std::vector<json::object> out;
  for (std::size_t i = 0; i < values.size(); i += slice) {
    Query part = q;
    part.in(column, std::vector<std::string>(
                        values.begin() + static_cast<long>(i),
                        values.begin() + static_cast<long>(std::min(values.size(), i + slice))));
    for (auto& row : select(s, t, part)) out.push_back(std::move(row));
  }
  return out;
}

std::vector<json::object> select_where(soci::session& s, const Table& t, const std::string& clause,
                                       const std::vector<std::optional<std::string>>& params) {
  auto b = bound("SELECT " + column_list(t) + " FROM " + t.name + " " + clause, params);
  return run_select(s, t, b);
}

long count(soci::session& s, const Table& t, const Query& q) {
  Bound b;
  b.sql = "SELECT COUNT(*) FROM " + t.name;
  where_clause(b, t, q);
  long n = 0;
  run_statement(s, b, true, [&](const soci::row& r) {
    n = static_cast<long>(cell_json(r, 0, ColumnType::Int).as_int64());
  });
  return n;
}

// A field name that can stand in a JSON path unescaped.
static bool plain_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

long update(soci::session& s, const Table& t, std::string_view id, const json::object& fields) {
  return update(s, t, id, fields, Query{});
}

long update(soci::session& s, const Table& t, std::string_view id, const json::object& fields,
            const Query& only_if) {
  Bound b;
  b.sql = "UPDATE " + t.name + " SET ";
  bool first = true;
  json::object extra_changes;
  for (auto& kv : fields) {
    auto* c = t.column(kv.key());
    if (!c) {
      extra_changes[kv.key()] = kv.value();
      continue;
    }
    if (c == &t.columns.front()) continue;
    if (!first) b.sql += ", ";
    first = false;
    b.sql += c->name + " = ";
    b.add(bind_value(*c, kv.value()));
  }
  if (t.has_extra && !extra_changes.empty() && s.get_backend_name() == "sqlite3" &&
      std::all_of(extra_changes.begin(), extra_changes.end(),
                  [](auto& kv) { return plain_key(kv.key()); })) {
    // SQLite edits the stored JSON in place (json_set, json_remove): no read of the whole row,
    // with its JSON parsed, to change a few fields.
    std::vector<std::string_view> removed;
    std::vector<const json::key_value_pair*> set;
    for (auto& kv : extra_changes)
      if (kv.value().is_null())
        removed.push_back(kv.key());
      else
        set.push_back(&kv);
    if (!first) b.sql += ", ";
    first = false;
    b.sql += "extra = ";
    if (!removed.empty()) b.sql += "json_remove(";
    if (!set.empty()) b.sql += "json_set(";
    b.sql += "COALESCE(extra, '{}')";
    for (auto* kv : set) {
      b.sql += ", '$.\"" + std::string(kv->key()) + "\"', json(";
      b.add(json::serialize(kv->value()));
      b.sql += ")";
    }
    if (!set.empty()) b.sql += ")";
    for (auto key : removed) b.sql += ", '$.\"" + std::string(key) + "\"'";
    if (!removed.empty()) b.sql += ")";
  } else if (t.has_extra && !extra_changes.empty()) {
    auto current = get(s, t, id);
    if (!current) return 0;
    json::object extra;
    for (auto& kv : *current)
      if (!t.column(kv.key())) extra[kv.key()] = kv.value();
    for (auto& kv : extra_changes) {
      if (kv.value().is_null())
        extra.erase(kv.key());
      else
        extra[kv.key()] = kv.value();
    }
    if (!first) b.sql += ", ";
    first = false;
    b.sql += "extra = ";
    b.add(json::serialize(extra));
  }
  if (first) return 1;  // nothing to change
  Query where = only_if;
  where.where.insert(where.where.begin(),
                     Condition{t.columns.front().name, "=", {std::string(id)}});
  where_clause(b, t, where);
  return run(s, b);
}

long replace(soci::session& s, const Table& t, const json::object& row) {
  Bound b;
  b.sql = "UPDATE " + t.name + " SET ";
  bool first = true;
  for (auto& c : t.columns) {
    if (&c == &t.columns.front()) continue;
    if (!first) b.sql += ", ";
    first = false;
    b.sql += c.name + " = ";
    auto* v = find(row, c.name);
    b.add(v ? bind_value(c, *v) : std::nullopt);
  }
  if (t.has_extra) {
    if (!first) b.sql += ", ";
    first = false;
    b.sql += "extra = ";
    b.add(json::serialize(extra_fields(t, row)));
  }
  if (first) return 1;
  auto* id = find(row, t.columns.front().name);
  b.sql += " WHERE " + t.columns.front().name + " = ";
  b.add(id && id->is_string() ? std::string(id->as_string()) : std::string());
  return run(s, b);
}

long remove(soci::session& s, const Table& t, const Query& q) {
  Bound b;
  b.sql = "DELETE FROM " + t.name;
  where_clause(b, t, q);
  return run(s, b);
}

long remove_id(soci::session& s, const Table& t, std::string_view id) {
  Query q;
  q.eq(t.columns.front().name, std::string(id));
  return remove(s, t, q);
}

long execute(soci::session& s, const std::string& sql,
             const std::vector<std::optional<std::string>>& params) {
  auto b = bound(sql, params);
  return run(s, b);
}

std::vector<std::vector<std::optional<std::string>>> query_strings(
    soci::session& s, const std::string& sql,
    const std::vector<std::optional<std::string>>& params) {
  auto b = bound(sql, params);
  std::vector<std::vector<std::optional<std::string>>> out;
  run_statement(s, b, true, [&](const soci::row& r) { out.push_back(row_strings(r)); });
  return out;
}

void cache_statements(soci::session& s) {
  std::unique_lock lock(caches_mu);
  caches.try_emplace(&s, std::make_unique<StatementCache>());
}

void forget_statements(soci::session& s) {
  std::unique_ptr<StatementCache> gone;
  std::unique_lock lock(caches_mu);
  if (auto it = caches.find(&s); it != caches.end()) {
    gone = std::move(it->second);
    caches.erase(it);
  }
}

}  // namespace nubo::db
