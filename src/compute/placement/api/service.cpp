#include "compute/placement/api/service.hpp"

#include "common/policy.hpp"
#include "compute/placement/api/common.hpp"

namespace nubo::placement::api {

namespace {

// Placement's default rules: every operation is the admin's.
std::map<std::string, std::string> default_policy() {
  std::map<std::string, std::string> rules{{"admin_api", "role:admin"},
                                           {"context_is_admin", "role:admin"}};
  for (const char* name : {"placement:resource_providers:list",
                           "placement:resource_providers:create",
                           "placement:resource_providers:show",
                           "placement:resource_providers:update",
                           "placement:resource_providers:delete",
                           "placement:resource_providers:inventories:list",
                           "placement:resource_providers:inventories:create",
                           "placement:resource_providers:inventories:show",
                           "placement:resource_providers:inventories:update",
                           "placement:resource_providers:inventories:delete",
                           "placement:resource_providers:aggregates:list",
                           "placement:resource_providers:aggregates:update",
                           "placement:resource_providers:usages",
                           "placement:usages",
                           "placement:resource_providers:traits:list",
                           "placement:resource_providers:traits:update",
                           "placement:resource_providers:traits:delete",
                           "placement:resource_providers:allocations:list",
                           "placement:traits:list",
                           "placement:traits:show",
                           "placement:traits:update",
                           "placement:traits:delete",
                           "placement:resource_classes:list",
                           "placement:resource_classes:create",
                           "placement:resource_classes:show",
                           "placement:resource_classes:update",
                           "placement:resource_classes:delete",
                           "placement:allocations:list",
                           "placement:allocations:manage",
                           "placement:allocations:update",
                           "placement:allocations:delete",
                           "placement:allocation_candidates:list",
                           "placement:reshaper:reshape"})
    rules[name] = "rule:admin_api";
  return rules;
}

}  // namespace

ServiceSpec make_service_spec(std::shared_ptr<PlacementService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file) {
  ServiceSpec spec;
  spec.name = "placement";
  auto& s = *service;
  // Version discovery, as Placement renders it: one version, a relative self link.
  Route root;
  root.method = "GET";
  root.path = "/";
  root.authenticated = false;
  root.handler = [](Context& ctx) {
    json::object v{{"id", "v" + kMinVersion.str()},
                   {"max_version", kMaxVersion.str()},
                   {"min_version", kMinVersion.str()},
                   {"status", "CURRENT"},
                   {"links", json::array{json::object{{"rel", "self"}, {"href", ""}}}}};
    auto r = json_response(200, json::object{{"versions", json::array{std::move(v)}}});
    if (at_least(ctx, 15)) r.headers.set("Cache-Control", "no-cache");
    return r;
  };
  spec.routes.push_back(std::move(root));
  add_provider_routes(spec.routes, s);
  add_allocation_routes(spec.routes, s);
  add_class_and_trait_routes(spec.routes, s);
  spec.render_error = [](const ApiError& e) {
    return render_transport_error(e.status(), e.what());
  };
  spec.render_error_in_context = render_error;
  spec.validator = std::move(validator);
  spec.microversions = MicroversionSpec{"placement", "", kMinVersion, kMaxVersion};
  spec.policy = Policy::with_overrides(default_policy(), policy_file);
  return spec;
}

http::Response render_transport_error(int status, const std::string& message) {
  json::object err{{"status", status}, {"title", status_reason(status)}, {"detail", message}};
  return json_response(status, json::object{{"errors", json::array{std::move(err)}}});
}

}  // namespace nubo::placement::api
