#include "identity/api/service.hpp"

#include "common/policy.hpp"
#include "identity/api/common.hpp"
#include "identity/api/policy.hpp"

#include <filesystem>

namespace nubo::identity::api {

ServiceSpec make_service_spec(std::shared_ptr<IdentityService> service, const std::string& policy_file) {
  ServiceSpec spec;
  spec.name = "identity";
  auto& s = *service;
  add_auth_routes(spec.routes, s);
  add_resource_routes(spec.routes, s);
  add_role_routes(spec.routes, s);
  add_catalog_routes(spec.routes, s);
  add_credential_routes(spec.routes, s);
  // Identity reads change only through this service's writes (which bump its generation), so GET
  // responses are cached per caller until the next write; results that also depend on the clock
  // (trust and application credential expiry) and tokens (own cache) are left out.
  for (auto& r : spec.routes)
    r.cacheable = r.method == "GET" && r.path.find("/auth/") == std::string::npos &&
                  r.path.find("OS-TRUST") == std::string::npos &&
                  r.path.find("application_credentials") == std::string::npos;
  spec.generation = [&s] { return s.generation(); };
  spec.render_error = render_keystone_error;
  spec.validator = service;
  spec.policy = Policy::with_overrides(default_policy(), policy_file);
  spec.response_headers.emplace_back("Vary", "X-Auth-Token");
  return spec;
}

}  // namespace nubo::identity::api
