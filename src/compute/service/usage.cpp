// os-simple-tenant-usage: what each project's servers used over a period, from their launch and
// termination times (deleted servers included).
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

std::vector<json::object> ComputeService::tenant_usage(const Caller& c, const std::string& project,
                                                       TimePoint start, TimePoint end) {
  if (project.empty())
    c.authorize("os_compute_api:os-simple-tenant-usage:list", {{"project_id", c.project()}});
  else
    c.authorize("os_compute_api:os-simple-tenant-usage:show", {{"project_id", project}});
  auto start_text = iso8601(start, true, false), end_text = iso8601(end, true, false);
  std::map<std::string, json::object> by_project;
  db_->read([&](soci::session& s) {
    // Servers launched before the period ends and not terminated before it starts.
    std::string sql =
        "SELECT id FROM instance WHERE launched_at IS NOT NULL AND launched_at < :p0 AND "
        "(terminated_at IS NULL OR terminated_at >= :p1)";
    std::vector<std::optional<std::string>> params{end_text, start_text};
    if (!project.empty()) {
      sql += " AND project_id = :p2";
      params.push_back(project);
    }
    std::vector<std::string> ids;
    for (auto& row : db::query_strings(s, sql + " ORDER BY created_at", params))
      ids.push_back(*row[0]);
    if (ids.empty()) return;
    auto now = clock_->now();
    for (auto& row : db::select(s, st::instance, db::Query{}.in("id", ids))) {
      auto launched = parse_iso8601(row.at("launched_at").as_string()).value_or(start);
      auto* t = row.if_contains("terminated_at");
      std::optional<TimePoint> terminated;
      if (t && t->is_string()) terminated = parse_iso8601(t->as_string());
      auto from = std::max(launched, start), to = std::min(terminated.value_or(end), end);
      double hours = std::max(0.0, std::chrono::duration<double>(to - from).count() / 3600.0);
      auto& flavor = row.at("flavor").as_object();
      auto local_gb = flavor.at("root_gb").as_int64() + flavor.at("ephemeral_gb").as_int64();
      auto vcpus = flavor.at("vcpus").as_int64(), memory = flavor.at("memory_mb").as_int64();
      auto tenant = std::string(row.at("project_id").as_string());
      auto& u = by_project[tenant];
      if (u.empty())
        u = json::object{{"tenant_id", tenant},      {"total_local_gb_usage", 0.0},
                         {"total_vcpus_usage", 0.0}, {"total_memory_mb_usage", 0.0},
                         {"total_hours", 0.0},       {"server_usages", json::array{}}};
      u["total_local_gb_usage"] =
          u.at("total_local_gb_usage").as_double() + hours * static_cast<double>(local_gb);
      u["total_vcpus_usage"] =
          u.at("total_vcpus_usage").as_double() + hours * static_cast<double>(vcpus);
      u["total_memory_mb_usage"] =
          u.at("total_memory_mb_usage").as_double() + hours * static_cast<double>(memory);
      u["total_hours"] = u.at("total_hours").as_double() + hours;
      bool deleted = row.at("deleted").as_bool();
      auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                        (terminated ? *terminated : now) - launched)
                        .count();
      u["server_usages"].as_array().push_back(
          json::object{{"instance_id", row.at("id")},
                       {"name", row.at("name")},
                       {"hours", hours},
                       {"memory_mb", memory},
                       {"local_gb", local_gb},
                       {"vcpus", vcpus},
                       {"tenant_id", tenant},
                       {"flavor", flavor.at("name")},
                       {"started_at", row.at("launched_at")},
                       {"ended_at", terminated ? row.at("terminated_at") : json::value(nullptr)},
                       {"state", deleted ? "terminated" : row.at("vm_state")},
                       {"uptime", uptime}});
    }
  });
  std::vector<json::object> out;
  for (auto& [tenant, u] : by_project) out.push_back(std::move(u));
  return out;
}

}  // namespace nubo::compute
