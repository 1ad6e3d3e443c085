// os-migrations: the resizes and cold migrations servers went through, newest first.
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

std::vector<json::object> ComputeService::list_migrations(
    const Caller& c, const std::map<std::string, std::string>& filters, const std::string& marker,
    std::optional<long> limit) {
  c.authorize("os_compute_api:os-migrations:index", {{"project_id", c.project()}});
  std::string where = "1 = 1";
  std::vector<std::optional<std::string>> params;
  auto bind = [&](const std::string& v) {
    params.push_back(v);
    return ":p" + std::to_string(params.size() - 1);
  };
  for (auto* key : {"status", "migration_type", "user_id", "project_id"})
    if (auto it = filters.find(key); it != filters.end())
      where += std::string(" AND ") + key + " = " + bind(it->second);
  if (auto it = filters.find("instance_uuid"); it != filters.end())
    where += " AND instance_id = " + bind(it->second);
  if (auto it = filters.find("host"); it != filters.end()) {
    auto p = bind(it->second);
    where += " AND (source_compute = " + p + " OR dest_compute = " + p + ")";
  }
  if (auto it = filters.find("changes-since"); it != filters.end())
    where += " AND updated_at >= " + bind(it->second);
  if (auto it = filters.find("changes-before"); it != filters.end())
    where += " AND updated_at <= " + bind(it->second);
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    auto ids = db::query_strings(
        s, "SELECT id FROM migration WHERE " + where + " ORDER BY created_at DESC, number DESC",
        params);
    std::vector<std::string> page;
    bool past = marker.empty();
    for (auto& row : ids) {
      if (!past) {
        past = row[0] == marker;
        continue;
      }
      page.push_back(*row[0]);
      if (limit && static_cast<long>(page.size()) >= *limit) break;
    }
    if (!past) throw NotFound("Migration " + marker + " could not be found.");
    if (page.empty()) return;
    std::map<std::string, json::object> rows;
    for (auto& r : db::select(s, st::migration, db::Query{}.in("id", page)))
      rows[std::string(r.at("id").as_string())] = std::move(r);
    for (auto& id : page) out.push_back(std::move(rows[id]));
  });
  return out;
}

}  // namespace nubo::compute
