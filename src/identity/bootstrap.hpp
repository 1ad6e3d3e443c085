// `nubo bootstrap`: what keystone-manage bootstrap does (default domain, admin/member/reader roles,
// admin project and user, their grants, the region and the catalog). Idempotent.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nubo::identity {

class IdentityService;

struct CatalogEntry {
  std::string type, name, url;  // url for public, internal and admin
  // Unified limits the service enforces, registered with these defaults in the bootstrap region
  // unless the resource is registered already (an operator's change is kept).
  std::vector<std::pair<std::string, std::int64_t>> registered_limits = {};
};

struct BootstrapOptions {
  std::string admin_username = "admin";
  std::string admin_password;
  std::string admin_project = "admin";
  std::string service_project = "service";
  std::string region = "RegionOne";
  std::vector<CatalogEntry> catalog;
  // Roles services expect besides admin, member, reader and service (Swift's ResellerAdmin).
  std::vector<std::string> roles = {};
};

struct BootstrapResult {
  std::string admin_project_id;
};

BootstrapResult bootstrap(IdentityService& s, const BootstrapOptions& options);

}  // namespace nubo::identity
