// Generic row access for stores: a table described once (columns and types) is read and
// written as JSON objects, with SQL built and bound portably. Fields that are not columns
// live in an optional `extra` JSON column, as Keystone keeps them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"

namespace soci {
class session;
}

namespace nubo::db {

enum class ColumnType { Text, Bool, Int, Real, Json };

struct Column {
  std::string name;
  ColumnType type = ColumnType::Text;
};

struct Table {
  std::string name;
  std::vector<Column> columns;  // the first is the primary key
  bool has_extra = false;       // unknown fields go to / come from the `extra` column
  const Column* column(std::string_view name) const;
};

struct Condition {
  std::string column;
  std::string op = "=";  // =, !=, <, <=, >, >=, LIKE, IN, IS NULL, IS NOT NULL
  std::vector<std::string> values;
};

struct Query {
  std::vector<Condition> where;
  std::string order_by;  // column name; empty: primary key
  bool descending = false;
  std::optional<long> limit;

  Query& eq(std::string column, std::string value) {
    where.push_back({std::move(column), "=", {std::move(value)}});
    return *this;
  }
  Query& in(std::string column, std::vector<std::string> values) {
    where.push_back({std::move(column), "IN", std::move(values)});
    return *this;
  }
  Query& is_null(std::string column) {
    where.push_back({std::move(column), "IS NULL", {}});
    return *this;
  }
};

// Statements prepared on a connection are kept and reused while it is registered here (Database
// registers its connections, and forgets them before closing). Unregistered connections prepare
// each statement afresh.
void cache_statements(soci::session& s);
void forget_statements(soci::session& s);

// Scalar to its bound string form ("1"/"0" for booleans).
std::optional<std::string> bind_value(const Column& column, const json::value& v);

void insert(soci::session& s, const Table& t, const json::object& row);
std::optional<json::object> get(soci::session& s, const Table& t, std::string_view id);
std::vector<json::object> select(soci::session& s, const Table& t, const Query& q = {});
// Some columns of the rows q selects, as strings (nullopt for NULL), in q's order.
std::vector<std::vector<std::optional<std::string>>> select_columns(
    soci::session& s, const Table& t, const std::vector<std::string>& columns, const Query& q = {});
// select() with `column IN values` added, run in slices of a few values so that each slice's
// statement is prepared once and kept (a thousand-value list was prepared anew every time). Rows
// come slice by slice: q's order holds within a slice.
std::vector<json::object> select_in(soci::session& s, const Table& t, const Query& q,
                                    const std::string& column,
                                    const std::vector<std::string>& values);
// Rows selected by a hand-written clause ("WHERE ... ORDER BY ... LIMIT ...", parameters :p0...).
std::vector<json::object> select_where(soci::session& s, const Table& t, const std::string& clause,
                                       const std::vector<std::optional<std::string>>& params);
long count(soci::session& s, const Table& t, const Query& q = {});
// Sets the given fields (columns and extra) on the row with this id; returns rows changed.
long update(soci::session& s, const Table& t, std::string_view id, const json::object& fields);
// The same only while the row also matches `only_if` (a compare-and-set: 0 when it does not).
long update(soci::session& s, const Table& t, std::string_view id, const json::object& fields,
            const Query& only_if);
// Writes a whole row (found by its primary key): every column, and `extra` as exactly the row's
// other fields, nulls included.
long replace(soci::session& s, const Table& t, const json::object& row);
long remove(soci::session& s, const Table& t, const Query& q);
long remove_id(soci::session& s, const Table& t, std::string_view id);
// Runs a statement with positional string parameters (:p0, :p1...) that returns no rows.
long execute(soci::session& s, const std::string& sql,
             const std::vector<std::optional<std::string>>& params);
// Runs a query with positional string parameters; each row as strings (nullopt for NULL).
std::vector<std::vector<std::optional<std::string>>> query_strings(
    soci::session& s, const std::string& sql,
    const std::vector<std::optional<std::string>>& params);

}  // namespace nubo::db
