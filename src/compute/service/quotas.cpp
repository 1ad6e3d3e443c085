// Nova's quota sets and quota classes (the database driver), and the usage they are checked
// against. Usage counts what exists: key pairs and server groups now; servers add theirs.
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

std::map<std::string, std::int64_t> ComputeService::class_limits(soci::session& s,
                                                                 const std::string& name) {
  auto out = settings_.quota_defaults;
  for (auto& row : db::select(s, st::quota_class, db::Query{}.eq("class_name", name)))
    out[std::string(row.at("resource").as_string())] = row.at("hard_limit").as_int64();
  return out;
}

std::map<std::string, QuotaEntry> ComputeService::effective_quotas(soci::session& s,
                                                                   const std::string& project,
                                                                   const std::string& user,
                                                                   bool count_usage) {
  std::map<std::string, QuotaEntry> out;
  for (auto& [resource, limit] : class_limits(s, "default")) out[resource].limit = limit;
  auto apply = [&](const std::string& who) {
    for (auto& row :
         db::select(s, st::quota, db::Query{}.eq("project_id", project).eq("user_id", who)))
      out[std::string(row.at("resource").as_string())].limit = row.at("hard_limit").as_int64();
  };
  apply("");
  if (!user.empty()) apply(user);
  if (!count_usage) return out;
  out["server_groups"].in_use =
      db::count(s, st::server_group, db::Query{}.eq("project_id", project));
  if (!user.empty())
    out["key_pairs"].in_use = db::count(s, st::keypair, db::Query{}.eq("user_id", user));
  count_servers(s, project, user, out);
  return out;
}

void ComputeService::count_servers(soci::session& s, const std::string& project,
                                   const std::string& user,
                                   std::map<std::string, QuotaEntry>& quotas) {
  // Servers count what they hold: instances, and their flavors' cores and RAM (index
  // instance_usage covers the query).
  std::string sql =
      "SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0) FROM instance "
      "WHERE project_id = :p0 AND deleted = 0";
  std::vector<std::optional<std::string>> params{project};
  if (!user.empty()) {
    sql += " AND user_id = :p1";
    params.push_back(user);
  }
  // PostgreSQL's SUM(integer) is numeric: read as text and parse.
  auto row = db::query_strings(s, sql, params).at(0);
  quotas["instances"].in_use = std::stoll(row[0].value_or("0"));
  quotas["cores"].in_use = static_cast<std::int64_t>(std::stod(row[1].value_or("0")));
  quotas["ram"].in_use = static_cast<std::int64_t>(std::stod(row[2].value_or("0")));
}

std::map<std::string, QuotaEntry> ComputeService::quotas(const Caller& c,
                                                         const std::string& project,
                                                         const std::string& user) {
  c.authorize("os_compute_api:os-quota-sets:show", {{"project_id", project}});
  std::map<std::string, QuotaEntry> out;
  db_->read([&](soci::session& s) { out = effective_quotas(s, project, user); });
  return out;
}

std::map<std::string, std::int64_t> ComputeService::default_quotas(const Caller& c,
                                                                   const std::string& project) {
  c.authorize("os_compute_api:os-quota-sets:defaults", {{"project_id", project}});
  std::map<std::string, std::int64_t> out;
  db_->read([&](soci::session& s) { out = class_limits(s, "default"); });
  return out;
}

void ComputeService::update_quotas(const Caller& c, const std::string& project,
                                   const std::string& user,
                                   const std::map<std::string, std::int64_t>& limits, bool force) {
  c.authorize("os_compute_api:os-quota-sets:update", {{"project_id", project}});
  db_->write([&](soci::session& s) {
    auto current = effective_quotas(s, project, user);
    for (auto& [resource, limit] : limits) {
      if (!force && limit >= 0 && limit < current[resource].in_use)
        throw BadRequest("Quota limit " + std::to_string(limit) + " for " + resource +
                         " must be greater than or equal to already used and reserved " +
                         std::to_string(current[resource].in_use) + ".");
      db::remove(
          s, st::quota,
          db::Query{}.eq("project_id", project).eq("user_id", user).eq("resource", resource));
      db::insert(s, st::quota,
                 json::object{{"id", uuid4()},
                              {"project_id", project},
                              {"user_id", user},
                              {"resource", resource},
                              {"hard_limit", limit}});
    }
  });
}

void ComputeService::delete_quotas(const Caller& c, const std::string& project,
                                   const std::string& user) {
  c.authorize("os_compute_api:os-quota-sets:delete", {{"project_id", project}});
  db_->write([&](soci::session& s) {
    db::Query q;
    q.eq("project_id", project);
    if (!user.empty()) q.eq("user_id", user);
    db::remove(s, st::quota, q);
  });
}

std::map<std::string, std::int64_t> ComputeService::quota_class(const Caller& c,
                                                                const std::string& name) {
  c.authorize("os_compute_api:os-quota-class-sets:show", {{"project_id", c.project()}});
  std::map<std::string, std::int64_t> out;
  db_->read([&](soci::session& s) { out = class_limits(s, name); });
  return out;
}

void ComputeService::update_quota_class(const Caller& c, const std::string& name,
                                        const std::map<std::string, std::int64_t>& limits) {
  c.authorize("os_compute_api:os-quota-class-sets:update", {{"project_id", c.project()}});
  db_->write([&](soci::session& s) {
    for (auto& [resource, limit] : limits) {
      db::remove(s, st::quota_class, db::Query{}.eq("class_name", name).eq("resource", resource));
      db::insert(s, st::quota_class,
                 json::object{{"id", uuid4()},
                              {"class_name", name},
                              {"resource", resource},
                              {"hard_limit", limit}});
    }
  });
}

}  // namespace nubo::compute
