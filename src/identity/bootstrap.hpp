// `nubo bootstrap`: what keystone-manage bootstrap does (default domain, admin/member/reader roles,
// admin project and user, their grants, the region and the catalog). Idempotent.
#pragma once

#include <string>
#include <vector>

namespace nubo::identity {

class IdentityService;

struct CatalogEntry {
  std::string type, name, url;  // url for public, internal and admin
};

struct BootstrapOptions {
  std::string admin_username = "admin";
  std::string admin_password;
  std::string admin_project = "admin";
  std::string service_project = "service";
  std::string region = "RegionOne";
  std::vector<CatalogEntry> catalog;
};

void bootstrap(IdentityService& s, const BootstrapOptions& options);

}  // namespace nubo::identity
