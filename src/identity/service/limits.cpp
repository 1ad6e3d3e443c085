// Unified limits read in-process: the effective limit of each of a service type's resources for
// one project (its own limit, else the registered default), in one region or none.
#include <soci/soci.h>

#include "identity/service/identity_service.hpp"

namespace nubo::identity {

std::map<std::string, std::int64_t> IdentityService::project_limits(const std::string& service_type,
                                                                   const std::string& region,
                                                                   const std::string& project_id) {
  std::map<std::string, std::int64_t> out;
  db_->read([&](soci::session& s) {
    // Registered defaults first, then the project's own limits override them.
    auto take = [&](const char* sql, std::vector<std::optional<std::string>> params) {
      for (auto& row : db::query_strings(s, sql, params))
        if (row.size() == 2 && row[0] && row[1]) out[*row[0]] = std::stoll(*row[1]);
    };
    take("SELECT r.resource_name, r.default_limit FROM registered_limit r JOIN service v ON v.id = r.service_id "
         "WHERE v.type = :p0 AND (r.region_id = :p1 OR r.region_id IS NULL)",
         {service_type, region});
    take("SELECT l.resource_name, l.resource_limit FROM project_limit l JOIN service v ON v.id = l.service_id "
         "WHERE v.type = :p0 AND (l.region_id = :p1 OR l.region_id IS NULL) AND l.project_id = :p2",
         {service_type, region, project_id});
  });
  return out;
}

}  // namespace nubo::identity
