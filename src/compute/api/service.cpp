#include "compute/api/service.hpp"

#include <charconv>
#include <filesystem>

#include "common/policy.hpp"
#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

// Nova's default rules (2023.1) for what this API serves, in oslo.policy's language.
std::map<std::string, std::string> default_policy() {
  const std::string admin = "rule:admin_api";
  const std::string owner_or_admin = "(rule:admin_api) or user_id:%(user_id)s";
  return {
      {"context_is_admin", "role:admin"},
      {"admin_api", "role:admin"},
      {"project_reader_or_admin", "rule:admin_api or (role:reader and project_id:%(project_id)s)"},
      {"os_compute_api:os-flavor-manage:create", admin},
      {"os_compute_api:os-flavor-manage:update", admin},
      {"os_compute_api:os-flavor-manage:delete", admin},
      {"os_compute_api:os-flavor-extra-specs:index", "rule:project_reader_or_admin"},
      {"os_compute_api:os-flavor-extra-specs:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-flavor-extra-specs:create", admin},
      {"os_compute_api:os-flavor-extra-specs:update", admin},
      {"os_compute_api:os-flavor-extra-specs:delete", admin},
      {"os_compute_api:os-flavor-access", admin},
      {"os_compute_api:os-flavor-access:add_tenant_access", admin},
      {"os_compute_api:os-flavor-access:remove_tenant_access", admin},
      {"os_compute_api:os-keypairs:index", owner_or_admin},
      {"os_compute_api:os-keypairs:create", owner_or_admin},
      {"os_compute_api:os-keypairs:show", owner_or_admin},
      {"os_compute_api:os-keypairs:delete", owner_or_admin},
      {"os_compute_api:os-quota-sets:show", "rule:admin_api or project_id:%(project_id)s"},
      {"os_compute_api:os-quota-sets:detail", "rule:admin_api or project_id:%(project_id)s"},
      {"os_compute_api:os-quota-sets:defaults", "@"},
      {"os_compute_api:os-quota-sets:update", admin},
      {"os_compute_api:os-quota-sets:delete", admin},
      {"os_compute_api:os-quota-class-sets:show", "rule:admin_api or quota_class:%(quota_class)s"},
      {"os_compute_api:os-quota-class-sets:update", admin},
      {"os_compute_api:limits", "@"},
      {"os_compute_api:os-services:list", admin},
      {"os_compute_api:os-services:update", admin},
      {"os_compute_api:os-services:delete", admin},
      {"os_compute_api:os-hypervisors:list", admin},
      {"os_compute_api:os-hypervisors:detail", admin},
      {"os_compute_api:os-hypervisors:show", admin},
      {"os_compute_api:os-hypervisors:statistics", admin},
      {"os_compute_api:os-hypervisors:uptime", admin},
      {"os_compute_api:os-hypervisors:search", admin},
      {"os_compute_api:os-hypervisors:servers", admin},
      {"os_compute_api:os-aggregates:index", admin},
      {"os_compute_api:os-aggregates:create", admin},
      {"os_compute_api:os-aggregates:show", admin},
      {"os_compute_api:os-aggregates:update", admin},
      {"os_compute_api:os-aggregates:delete", admin},
      {"os_compute_api:os-aggregates:add_host", admin},
      {"os_compute_api:os-aggregates:remove_host", admin},
      {"os_compute_api:os-aggregates:set_metadata", admin},
      {"os_compute_api:os-availability-zone:list", "@"},
      {"os_compute_api:os-availability-zone:detail", admin},
      {"os_compute_api:os-server-groups:create", "project_id:%(project_id)s"},
      {"os_compute_api:os-server-groups:index", "rule:admin_api or project_id:%(project_id)s"},
      {"os_compute_api:os-server-groups:index:all_projects", admin},
      {"os_compute_api:os-server-groups:show", "rule:admin_api or project_id:%(project_id)s"},
      {"os_compute_api:os-server-groups:delete", "rule:admin_api or project_id:%(project_id)s"},
      {"os_compute_api:limits:other_project", admin},
      {"project_member_or_admin", "rule:admin_api or (role:member and project_id:%(project_id)s)"},
      {"os_compute_api:servers:index", "rule:project_reader_or_admin"},
      {"os_compute_api:servers:detail", "rule:project_reader_or_admin"},
      {"os_compute_api:servers:index:get_all_tenants", admin},
      {"os_compute_api:servers:detail:get_all_tenants", admin},
      {"os_compute_api:servers:allow_all_filters", admin},
      {"os_compute_api:servers:show", "rule:project_reader_or_admin"},
      {"os_compute_api:servers:show:host_status", admin},
      {"os_compute_api:servers:create", "rule:project_member_or_admin"},
      {"os_compute_api:servers:create:forced_host", admin},
      {"os_compute_api:servers:create:attach_volume", "rule:project_member_or_admin"},
      {"os_compute_api:servers:create:attach_network", "rule:project_member_or_admin"},
      {"os_compute_api:servers:delete", "rule:project_member_or_admin"},
      {"os_compute_api:servers:update", "rule:project_member_or_admin"},
      {"os_compute_api:servers:confirm_resize", "rule:project_member_or_admin"},
      {"os_compute_api:servers:revert_resize", "rule:project_member_or_admin"},
      {"os_compute_api:servers:reboot", "rule:project_member_or_admin"},
      {"os_compute_api:servers:resize", "rule:project_member_or_admin"},
      {"os_compute_api:servers:rebuild", "rule:project_member_or_admin"},
      {"os_compute_api:servers:start", "rule:project_member_or_admin"},
      {"os_compute_api:servers:stop", "rule:project_member_or_admin"},
      {"os_compute_api:servers:create_image", "rule:project_member_or_admin"},
      {"os_compute_api:os-create-backup", "rule:project_member_or_admin"},
      {"os_compute_api:servers:trigger_crash_dump", "rule:project_member_or_admin"},
      {"os_compute_api:os-extended-server-attributes", admin},
      {"os_compute_api:os-lock-server:lock", "rule:project_member_or_admin"},
      {"os_compute_api:os-lock-server:unlock", "rule:project_member_or_admin"},
      {"os_compute_api:os-lock-server:unlock:unlock_override", admin},
      {"os_compute_api:os-pause-server:pause", "rule:project_member_or_admin"},
      {"os_compute_api:os-pause-server:unpause", "rule:project_member_or_admin"},
      {"os_compute_api:os-suspend-server:suspend", "rule:project_member_or_admin"},
      {"os_compute_api:os-suspend-server:resume", "rule:project_member_or_admin"},
      {"os_compute_api:os-rescue", "rule:project_member_or_admin"},
      {"os_compute_api:os-unrescue", "rule:project_member_or_admin"},
      {"os_compute_api:os-shelve:shelve", "rule:project_member_or_admin"},
      {"os_compute_api:os-shelve:shelve_offload", admin},
      {"os_compute_api:os-shelve:unshelve", "rule:project_member_or_admin"},
      {"os_compute_api:os-migrate-server:migrate", admin},
      {"os_compute_api:os-migrate-server:migrate_live", admin},
      {"os_compute_api:os-evacuate", admin},
      {"os_compute_api:os-admin-actions:reset_state", admin},
      {"os_compute_api:os-deferred-delete:restore", "rule:project_member_or_admin"},
      {"os_compute_api:os-deferred-delete:force", "rule:project_member_or_admin"},
      {"os_compute_api:os-console-output", "rule:project_member_or_admin"},
      {"os_compute_api:os-server-password:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-remote-consoles", "rule:project_member_or_admin"},
      {"os_compute_api:os-console-auth-tokens", admin},
      {"os_compute_api:os-server-password:clear", "rule:project_member_or_admin"},
      {"os_compute_api:server-metadata:index", "rule:project_reader_or_admin"},
      {"os_compute_api:server-metadata:show", "rule:project_reader_or_admin"},
      {"os_compute_api:server-metadata:create", "rule:project_member_or_admin"},
      {"os_compute_api:server-metadata:update", "rule:project_member_or_admin"},
      {"os_compute_api:server-metadata:update_all", "rule:project_member_or_admin"},
      {"os_compute_api:server-metadata:delete", "rule:project_member_or_admin"},
      {"os_compute_api:os-server-tags:index", "rule:project_reader_or_admin"},
      {"os_compute_api:os-server-tags:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-server-tags:update", "rule:project_member_or_admin"},
      {"os_compute_api:os-server-tags:update_all", "rule:project_member_or_admin"},
      {"os_compute_api:os-server-tags:delete", "rule:project_member_or_admin"},
      {"os_compute_api:os-server-tags:delete_all", "rule:project_member_or_admin"},
      {"os_compute_api:os-instance-actions:list", "rule:project_reader_or_admin"},
      {"os_compute_api:os-instance-actions:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-instance-actions:events", admin},
      {"os_compute_api:os-instance-actions:events:details", admin},
      {"os_compute_api:ips:index", "rule:project_reader_or_admin"},
      {"os_compute_api:ips:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-networks:list", "rule:project_reader_or_admin"},
      {"os_compute_api:os-networks:view", "rule:project_reader_or_admin"},
      {"os_compute_api:os-security-groups:add", "rule:project_member_or_admin"},
      {"os_compute_api:os-security-groups:remove", "rule:project_member_or_admin"},
      {"os_compute_api:os-security-groups:list", "rule:project_reader_or_admin"},
      {"os_compute_api:os-attach-interfaces:list", "rule:project_reader_or_admin"},
      {"os_compute_api:os-attach-interfaces:show", "rule:project_reader_or_admin"},
      {"os_compute_api:os-attach-interfaces:create", "rule:project_member_or_admin"},
      {"os_compute_api:os-attach-interfaces:delete", "rule:project_member_or_admin"},
      {"os_compute_api:os-simple-tenant-usage:list", admin},
      {"os_compute_api:os-migrations:index", admin},
      {"os_compute_api:os-server-diagnostics", admin},
      {"os_compute_api:os-server-external-events:create", admin},
      {"os_compute_api:os-hosts:list", admin},
      {"os_compute_api:os-hosts:show", admin},
      {"os_compute_api:os-hosts:update", admin},
      {"os_compute_api:os-hosts:startup", admin},
      {"os_compute_api:os-hosts:shutdown", admin},
      {"os_compute_api:os-hosts:reboot", admin},
      {"os_compute_api:os-instance-usage-audit-log:list", admin},
      {"os_compute_api:servers:migrations:index", admin},
      {"os_compute_api:os-simple-tenant-usage:show", "rule:project_reader_or_admin"}};
}

// The v2.1 document, or v2.0's (listed and described, as Nova does, though only v2.1 is served).
json::object version_doc(const ComputeService& s, bool v21, bool full) {
  std::string path = v21 ? "/v2.1/" : "/v2/";
  json::object v{{"id", v21 ? "v2.1" : "v2.0"},
                 {"status", v21 ? "CURRENT" : "SUPPORTED"},
                 {"version", v21 ? kMaxVersion.str() : ""},
                 {"min_version", v21 ? "2.1" : ""},
                 {"updated", v21 ? "2013-07-23T11:33:21Z" : "2011-01-21T11:33:21Z"}};
  json::array links{json::object{{"rel", "self"}, {"href", s.settings().public_url + path}}};
  if (full) {
    links.push_back(json::object{
        {"rel", "describedby"}, {"type", "text/html"}, {"href", "http://docs.openstack.org/"}});
    v["media-types"] = json::array{json::object{
        {"base", "application/json"},
        {"type",
         std::string("application/vnd.openstack.compute+json;version=") + (v21 ? "2.1" : "2")}}};
  }
  v["links"] = std::move(links);
  return v;
}

}  // namespace

Caller caller(Context& ctx) {
  static const AuthContext anonymous;
  return Caller{ctx.auth ? *ctx.auth : anonymous,
                [&ctx](const std::string& rule, const PolicyTarget& target) {
                  return ctx.allowed(rule, target);
                },
                nova_denied, ctx.request_id};
}

json::object member(const Context& ctx, const char* key) {
  auto body = ctx.body();
  auto* v = body.if_contains(key);
  if (!v)
    throw BadRequest("Invalid input for field/attribute " + std::string(key) + ". '" + key +
                     "' is a required property");
  if (!v->is_object())
    throw BadRequest("Invalid input for field/attribute " + std::string(key) + ". Value: " +
                     json::serialize(*v) + ". " + json::serialize(*v) + " is not of type 'object'");
  return v->as_object();
}

std::string invalid(const std::string& field, const json::value& v, const std::string& why) {
  return "Invalid input for field/attribute " + field + ". Value: " + json::serialize(v) + ". " +
         why;
}

std::string unexpected(const std::string& field, std::string_view key) {
  return "Invalid input for field/attribute " + field +
         ". Additional properties are not allowed ('" + std::string(key) + "' was unexpected)";
}

std::string checked_name(const json::value& v, const char* field) {
  if (!v.is_string() || v.as_string().empty() || v.as_string().size() > 255 ||
      std::isspace(static_cast<unsigned char>(v.as_string().front())) ||
      std::isspace(static_cast<unsigned char>(v.as_string().back())))
    throw BadRequest("Invalid input for field/attribute " + std::string(field) +
                     ". Value: " + json::serialize(v) + ".");
  return std::string(v.as_string());
}

std::optional<long> count_param(const Context& ctx, const char* name) {
  auto v = ctx.request.query_param(name);
  if (!v) return std::nullopt;
  long n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || p != v->data() + v->size() || n < 0)
    throw BadRequest("Invalid input for query parameters " + std::string(name) + ". Value: " + *v +
                     ". '" + *v + "' does not match '^[0-9]*$'");
  return n;
}

json::array links(const ComputeService& s, const std::string& collection, const std::string& id) {
  auto& base = s.settings().public_url;
  return json::array{
      json::object{{"rel", "self"}, {"href", base + "/v2.1/" + collection + "/" + id}},
      json::object{{"rel", "bookmark"}, {"href", base + "/" + collection + "/" + id}}};
}

json::array next_links(const ComputeService& s, const Context& ctx, const std::string& path,
                       const std::string& marker) {
  std::string query;
  for (auto& [k, v] : ctx.request.query)
    if (k != "marker")
      query += (query.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
  query += (query.empty() ? "" : "&") + std::string("marker=") + http::percent_encode(marker);
  return json::array{json::object{
      {"rel", "next"}, {"href", s.settings().public_url + "/v2.1/" + path + "?" + query}}};
}

ServiceSpec make_service_spec(std::shared_ptr<ComputeService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file) {
  ServiceSpec spec;
  spec.name = "compute";
  spec.request_id_alias = "X-Compute-Request-Id";
  auto& s = *service;
  auto root = [&s](Context&) {
    return json_response(200, json::object{{"versions", json::array{version_doc(s, false, false),
                                                                    version_doc(s, true, false)}}});
  };
  spec.routes.push_back(Route{"GET", "/", root, "", false});
  for (bool v21 : {false, true})
    for (const char* path : {"", "/"})
      spec.routes.push_back(
          Route{"GET", std::string(v21 ? "/v2.1" : "/v2") + path,
                [&s, v21](Context&) {
                  return json_response(200, json::object{{"version", version_doc(s, v21, true)}});
                },
                "", false});
  add_flavor_routes(spec.routes, s);
  add_keypair_routes(spec.routes, s);
  add_quota_routes(spec.routes, s);
  add_server_group_routes(spec.routes, s);
  add_host_routes(spec.routes, s);
  add_aggregate_routes(spec.routes, s);
  add_server_routes(spec.routes, s);
  add_usage_routes(spec.routes, s);
  add_migration_routes(spec.routes, s);
  if (s.images()) add_image_routes(spec.routes, s);
  add_network_proxy_routes(spec.routes, s);
  spec.render_error = render_nova_error;
  spec.validator = std::move(validator);
  spec.microversions =
      MicroversionSpec{"compute", "X-OpenStack-Nova-API-Version", {2, 1}, kMaxVersion};
  spec.policy = Policy::with_overrides(default_policy(), policy_file);
  return spec;
}

}  // namespace nubo::compute::api
