// The Neutron v2.0 API: version discovery, extensions, the resource collections with Neutron's
// query language (filters, fields, sorting, pagination), router actions, tags, quotas, IP
// availability and agents.
#include <algorithm>

#include "common/policy.hpp"
#include "network/api/service.hpp"
#include "network/service/network_service.hpp"

namespace nubo::network::api {

namespace {

struct Extension {
  const char* alias;
  const char* name;
  const char* description;
};

// Exactly what is implemented (Tempest and clients read this list to decide what to call).
const Extension kExtensions[] = {
    {"address-scope", "Address scope", "Address scopes extension."},
    {"agent", "agent", "The agent management extension."},
    {"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"},
    {"availability_zone", "Availability Zone", "The availability zone extension."},
    {"binding", "Port Binding", "Expose port bindings of a virtual port to external application"},
    {"ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the "
     "external gateway"},
    {"external-net", "Neutron external network",
     "Adds external network attribute to network resource."},
    {"extra_dhcp_opt", "Neutron Extra DHCP options",
     "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be "
     "specified (e.g. tftp-server, server-ip-address, bootfile-name)"},
    {"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"},
    {"extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra routes"},
    {"ip-substring-filtering", "IP address substring filtering",
     "Provides IP address substring filtering when listing ports"},
    {"multi-provider", "Multi Provider Network",
     "Expose mapping of virtual networks to multiple physical networks"},
    {"net-mtu", "Network MTU", "Provides MTU attribute for a network resource."},
    {"net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource."},
    {"network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet."},
    {"network_availability_zone", "Network Availability Zone",
     "Availability zone support for network."},
    {"pagination", "Pagination support", "Extension that indicates that pagination is enabled."},
    {"port-security", "Port Security", "Provides port security"},
    {"project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled."},
    {"provider", "Provider Network", "Expose mapping of virtual networks to physical networks"},
    {"quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"},
    {"quotas", "Quota management support", "Expose functions for quotas management per project"},
    {"rbac-policies", "RBAC Policies",
     "Allows creation and modification of policies that control tenant access to resources."},
    {"revision-if-match", "If-Match constraints based on revision_number",
     "Extension indicating that If-Match based on revision_number is supported."},
    {"router", "Neutron L3 Router",
     "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to "
     "external networks via a NAT gateway."},
    {"router_availability_zone", "Router Availability Zone",
     "Availability zone support for router."},
    {"security-group", "security-group", "The security groups extension."},
    {"security-groups-normalized-cidr", "Security Group Rule normalized CIDR",
     "Add new field with normalized remote_ip_prefix cidr in SG rule"},
    {"service-type", "Service Type",
     "API for retrieving service providers for Neutron advanced services"},
    {"sorting", "Sorting support", "Extension that indicates that sorting is enabled."},
    {"standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"},
    {"standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."},
    {"standard-attr-tag",
     "Tag support for resources with standard attribute: subnet, trunk, "
     "network_segment_range, router, network, policy, subnetpool, port, "
     "security_group, floatingip",
     "Enables to set tag on resources with standard attribute."},
    {"standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard "
     "attributes."},
    {"stateful-security-group", "Stateful security group",
     "Indicates if the security group is stateful or not"},
    {"subnet-service-types", "Subnet service types",
     "Provides ability to set the subnet service_types field"},
    {"subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"},
};

json::object extension_view(const Extension& e) {
  return json::object{{"alias", e.alias},
                      {"name", e.name},
                      {"description", e.description},
                      {"updated", "2013-01-01T10:00:00-00:00"},
                      {"links", json::array{}}};
}

Caller caller(Context& ctx) {
  static const AuthContext anonymous;
  return Caller{
      ctx.auth ? *ctx.auth : anonymous,
      [&ctx](const std::string& rule, const PolicyTarget& target) {
        return ctx.allowed(rule, target);
      },
      [](const std::string& rule) { return "(rule:" + rule + ") is disallowed by policy"; },
      ctx.request_id};
}

json::value parse_body(const Context& ctx) {
  if (ctx.request.body.empty()) throw ApiError(400, "Resource body required", "HTTPBadRequest");
  boost::system::error_code ec;
  auto v = json::parse(ctx.request.body, ec);
  if (ec) throw ApiError(400, "Malformed request body", "HTTPBadRequest");
  return v;
}

// Neutron's resource envelope: {"network": {...}}.
json::object inner(const Context& ctx, const std::string& singular) {
  auto v = parse_body(ctx);
  if (!v.is_object()) throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
  auto* o = find(v.as_object(), singular);
  if (!o)
    throw ApiError(400, "Unable to find '" + singular + "' in request body", "HTTPBadRequest");
  if (!o->is_object()) throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
  return o->as_object();
}

struct Query {
  ListParams params;
  std::vector<std::string> fields;
};

Query parse_query(const Context& ctx) {
  Query q;
  std::vector<std::string> keys, dirs;
  for (auto& [key, value] : ctx.request.query) {
    if (key == "fields") {
      if (!value.empty()) q.fields.push_back(value);
    } else if (key == "sort_key") {
      keys.push_back(value);
    } else if (key == "sort_dir") {
      if (value != "asc" && value != "desc")
        throw ApiError(400, "Invalid input for operation: sort_dir must be 'asc' or 'desc'.",
                       "HTTPBadRequest");
      dirs.push_back(value);
    } else if (key == "limit") {
      long n = -1;
      try {
        size_t used = 0;
        n = std::stol(value, &used);
        if (used != value.size()) n = -1;
      } catch (...) {
      }
      if (n < 0)
        throw ApiError(
            400,
            "Bad limit request: Limit must be an integer 0 or greater and not '" + value + "'.",
            "BadRequest");
      if (n > 0) q.params.limit = n;
    } else if (key == "marker") {
      q.params.marker = value;
    } else if (key == "page_reverse") {
      q.params.page_reverse = value == "True" || value == "true" || value == "1";
    } else {
      q.params.filters.emplace_back(key, value);
    }
  }
  if (!dirs.empty() && dirs.size() != keys.size())
    throw ApiError(400, "The number of sort_keys and sort_dirs must be same", "HTTPBadRequest");
  for (size_t i = 0; i < keys.size(); ++i)
    q.params.sort.emplace_back(keys[i], dirs.empty() || dirs[i] == "asc");
  return q;
}

json::object select_fields(json::object row, const std::vector<std::string>& fields) {
  if (fields.empty()) return row;
  json::object out;
  for (auto& f : fields)
    if (auto* v = find(row, f)) out[f] = *v;
  return out;
}

std::optional<long> if_match(const Context& ctx) {
  auto h = ctx.request.headers.get("If-Match");
  if (!h) return std::nullopt;
  std::string v(*h);
  auto eq = v.find("revision_number=");
  if (eq == std::string::npos) return std::nullopt;
  try {
    return std::stol(v.substr(eq + 16));
  } catch (...) {
    throw ApiError(400, "If-Match header must be revision_number=<integer>", "HTTPBadRequest");
  }
}

std::string query_without(const Context& ctx, const std::vector<std::string>& drop) {
  std::string out;
  for (auto& [k, v] : ctx.request.query) {
    if (std::find(drop.begin(), drop.end(), k) != drop.end()) continue;
    out += (out.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

http::Response list_response(Context& ctx, NetworkService& s, Kind k, const std::string& path) {
  auto q = parse_query(ctx);
  if (q.fields.empty()) {
    http::Response r;
    r.body.append("{\"").append(info(k).plural).append("\": ");
    if (s.list_rendered(caller(ctx), k, q.params, r.body)) {
      r.status = 200;
      r.headers.set("Content-Type", "application/json");
      r.body += '}';
      return r;
    }
  }
  auto result = s.list(caller(ctx), k, q.params);
  json::array items;
  for (auto& row : result.items) items.push_back(select_fields(std::move(row), q.fields));
  auto plural = info(k).plural;
  json::object body;
  if (q.params.limit || q.params.marker) {
    json::array links;
    auto base = s.settings().public_url + path + "?";
    auto rest = query_without(ctx, {"marker", "page_reverse"});
    auto id_of = [](const json::value& v) {
      auto* id = find(v.as_object(), "id");
      return id && id->is_string() ? std::string(id->as_string()) : std::string();
    };
    bool forward = !q.params.page_reverse;
    // Next continues in the listing's direction; previous goes back from the first row.
    if (!result.items.empty() || !q.params.limit) {
      if ((forward && result.has_more) || (!forward && q.params.marker)) {
        auto last = items.empty() ? std::string() : id_of(items.back());
        if (!last.empty())
          links.push_back(
              json::object{{"rel", "next"},
                           {"href", base + rest + (rest.empty() ? "" : "&") + "marker=" + last}});
      }
      if ((forward && q.params.marker) || (!forward && result.has_more)) {
        auto first = items.empty() ? std::string() : id_of(items.front());
        if (!first.empty())
          links.push_back(json::object{{"rel", "previous"},
                                       {"href", base + rest + (rest.empty() ? "" : "&") +
                                                    "marker=" + first + "&page_reverse=True"}});
      }
    }
    if (!links.empty()) body[std::string(plural) + "_links"] = std::move(links);
  }
  // Moved, not copied: a listing of 10,000 ports is megabytes of objects.
  body[plural] = std::move(items);
  return json_response(200, json::value(std::move(body)));
}

std::string path_name(Kind k) {
  std::string p = info(k).plural;
  std::replace(p.begin(), p.end(), '_', '-');
  return p;
}

void add_resource_routes(std::vector<Route>& routes, std::shared_ptr<NetworkService> service,
                         Kind k) {
  auto& s = *service;
  auto collection = "/v2.0/" + path_name(k);
  std::string singular = info(k).singular, plural = info(k).plural;
  routes.push_back({"GET", collection, [&s, k, collection](Context& ctx) {
                      return list_response(ctx, s, k, collection);
                    }});
  routes.push_back({"POST", collection, [&s, k, singular, plural](Context& ctx) {
                      auto v = parse_body(ctx);
                      if (!v.is_object())
                        throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
                      auto& o = v.as_object();
                      if (auto* many = find(o, plural)) {
                        if (!many->is_array())
                          throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
                        std::vector<json::object> bodies;
                        for (auto& item : many->as_array()) {
                          if (!item.is_object() || !find(item.as_object(), singular) ||
                              !item.as_object().at(singular).is_object()) {
                            if (item.is_object()) {
                              bodies.push_back(item.as_object());
                              continue;
                            }
                            throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
                          }
                          bodies.push_back(item.as_object().at(singular).as_object());
                        }
                        if (bodies.empty())
                          throw ApiError(400, "Resources required", "HTTPBadRequest");
                        json::array out;
                        for (auto& r : s.create_bulk(caller(ctx), k, std::move(bodies)))
                          out.push_back(std::move(r));
                        return json_response(201, json::object{{plural, out}});
                      }
                      auto* one = find(o, singular);
                      if (!one)
                        throw ApiError(400, "Unable to find '" + singular + "' in request body",
                                       "HTTPBadRequest");
                      if (!one->is_object())
                        throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
                      return json_response(
                          201,
                          json::object{{singular, s.create(caller(ctx), k, one->as_object())}});
                    }});
  routes.push_back({"GET", collection + "/{id}", [&s, k, singular](Context& ctx) {
                      auto q = parse_query(ctx);
                      auto row = s.show(caller(ctx), k, ctx.param("id"));
                      return json_response(
                          200, json::object{{singular, select_fields(std::move(row), q.fields)}});
                    }});
  routes.push_back({"PUT", collection + "/{id}", [&s, k, singular](Context& ctx) {
                      auto body = inner(ctx, singular);
                      return json_response(
                          200, json::object{{singular, s.update(caller(ctx), k, ctx.param("id"),
                                                                std::move(body), if_match(ctx))}});
                    }});
  routes.push_back({"DELETE", collection + "/{id}", [&s, k](Context& ctx) {
                      s.remove(caller(ctx), k, ctx.param("id"), if_match(ctx));
                      return empty_response(204);
                    }});
  if (k == Kind::rbac_policy || k == Kind::security_group_rule) return;
  // Tags.
  auto tags = collection + "/{id}/tags";
  routes.push_back({"GET", tags, [&s, k](Context& ctx) {
                      json::array out;
                      for (auto& t : s.tags(caller(ctx), k, ctx.param("id")))
                        out.push_back(json::value(t));
                      return json_response(200, json::object{{"tags", out}});
                    }});
  routes.push_back({"PUT", tags, [&s, k](Context& ctx) {
                      auto v = parse_body(ctx);
                      auto* t = v.is_object() ? find(v.as_object(), "tags") : nullptr;
                      if (!t)
                        throw ApiError(400, "Invalid input for tags. Reason: tags are required.",
                                       "HTTPBadRequest");
                      json::array out;
                      for (auto& tag : s.set_tags(caller(ctx), k, ctx.param("id"), *t))
                        out.push_back(json::value(tag));
                      return json_response(200, json::object{{"tags", out}});
                    }});
  routes.push_back({"DELETE", tags, [&s, k](Context& ctx) {
                      s.remove_tags(caller(ctx), k, ctx.param("id"));
                      return empty_response(204);
                    }});
  routes.push_back({"GET", tags + "/{tag}", [&s, k](Context& ctx) {
                      if (!s.has_tag(caller(ctx), k, ctx.param("id"), ctx.param("tag")))
                        throw ApiError(404,
                                       "Tag " + ctx.param("tag") + " could not be found for " +
                                           info(k).singular + " " + ctx.param("id") + ".",
                                       "TagNotFound");
                      return empty_response(204);
                    }});
  routes.push_back({"PUT", tags + "/{tag}", [&s, k](Context& ctx) {
                      // The body (clients send "{}" or nothing) is ignored.
                      s.add_tag(caller(ctx), k, ctx.param("id"), ctx.param("tag"));
                      return empty_response(201);
                    }});
  routes.push_back({"DELETE", tags + "/{tag}", [&s, k](Context& ctx) {
                      s.remove_tag(caller(ctx), k, ctx.param("id"), ctx.param("tag"));
                      return empty_response(204);
                    }});
}

json::object body_object(const Context& ctx) {
  auto v = parse_body(ctx);
  if (!v.is_object()) throw ApiError(400, "Body contains invalid data", "HTTPBadRequest");
  return v.as_object();
}

}  // namespace

http::Response render_error(const ApiError& e) { return render_neutron_error(e); }

std::map<std::string, std::string> default_policy() {
  // The service checks ownership and admin-only attributes itself; operators may tighten these.
  return {{"context_is_admin", "role:admin"}, {"admin_only", "rule:context_is_admin"}};
}

ServiceSpec make_service_spec(std::shared_ptr<NetworkService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file) {
  ServiceSpec spec;
  spec.name = "network";
  auto& s = *service;
  auto& routes = spec.routes;
  auto versions = [&s](Context&) {
    return json_response(
        200,
        json::object{
            {"versions",
             json::array{json::object{
                 {"id", "v2.0"},
                 {"status", "CURRENT"},
                 {"links", json::array{json::object{{"href", s.settings().public_url + "/v2.0/"},
                                                    {"rel", "self"}}}}}}}});
  };
  Route root{"GET", "/", versions};
  root.authenticated = false;
  routes.push_back(root);
  auto resources = [&s](Context&) {
    json::array out;
    for (auto& k : kinds()) {
      std::string path = k.plural;
      std::replace(path.begin(), path.end(), '_', '-');
      out.push_back(json::object{
          {"name", k.singular},
          {"collection", k.plural},
          {"links", json::array{json::object{{"href", s.settings().public_url + "/v2.0/" + path},
                                             {"rel", "self"}}}}});
    }
    return json_response(200, json::object{{"resources", out}});
  };
  routes.push_back({"GET", "/v2.0", resources});
  routes.push_back({"GET", "/v2.0/", resources});
  routes.push_back({"GET", "/v2.0/extensions", [](Context&) {
                      json::array out;
                      for (auto& e : kExtensions) out.push_back(extension_view(e));
                      return json_response(200, json::object{{"extensions", out}});
                    }});
  routes.push_back({"GET", "/v2.0/extensions/{alias}", [](Context& ctx) {
                      for (auto& e : kExtensions)
                        if (ctx.param("alias") == e.alias)
                          return json_response(200, json::object{{"extension", extension_view(e)}});
                      throw ApiError(
                          404, "Extension with alias " + ctx.param("alias") + " does not exist",
                          "HTTPNotFound");
                    }});
  for (auto& k : kinds()) add_resource_routes(routes, service, k.kind);
  for (auto* action : {"add_router_interface", "remove_router_interface", "add_extraroutes",
                       "remove_extraroutes"}) {
    std::string a = action;
    routes.push_back(
        {"PUT", "/v2.0/routers/{id}/" + a, [&s, a](Context& ctx) {
           auto body = body_object(ctx);
           if (a == "add_router_interface")
             return json_response(200, s.add_router_interface(caller(ctx), ctx.param("id"), body));
           if (a == "remove_router_interface")
             return json_response(200,
                                  s.remove_router_interface(caller(ctx), ctx.param("id"), body));
           auto* router = find(body, "router");
           if (!router || !router->is_object())
             throw ApiError(400, "Unable to find 'router' in request body", "HTTPBadRequest");
           return json_response(
               200, json::object{{"router", s.change_extra_routes(caller(ctx), ctx.param("id"),
                                                                  router->as_object(),
                                                                  a == "add_extraroutes")}});
         }});
  }
  // Quotas.
  routes.push_back({"GET", "/v2.0/quotas", [&s](Context& ctx) {
                      return json_response(200, json::object{{"quotas", s.quotas(caller(ctx))}});
                    }});
  routes.push_back(
      {"GET", "/v2.0/quotas/{project_id}", [&s](Context& ctx) {
         return json_response(
             200, json::object{{"quota", s.quota(caller(ctx), ctx.param("project_id"), false)}});
       }});
  routes.push_back(
      {"GET", "/v2.0/quotas/{project_id}/default", [&s](Context& ctx) {
         return json_response(
             200, json::object{{"quota", s.quota_defaults(caller(ctx), ctx.param("project_id"))}});
       }});
  for (auto* details :
       {"/v2.0/quotas/{project_id}/details.json", "/v2.0/quotas/{project_id}/details"})
    routes.push_back(
        {"GET", details, [&s](Context& ctx) {
           return json_response(
               200, json::object{{"quota", s.quota(caller(ctx), ctx.param("project_id"), true)}});
         }});
  routes.push_back(
      {"PUT", "/v2.0/quotas/{project_id}", [&s](Context& ctx) {
         auto body = inner(ctx, "quota");
         return json_response(
             200,
             json::object{{"quota", s.update_quota(caller(ctx), ctx.param("project_id"), body)}});
       }});
  routes.push_back({"DELETE", "/v2.0/quotas/{project_id}", [&s](Context& ctx) {
                      s.reset_quota(caller(ctx), ctx.param("project_id"));
                      return empty_response(204);
                    }});
  // IP availability, agents, service providers, availability zones.
  routes.push_back({"GET", "/v2.0/network-ip-availabilities", [&s](Context& ctx) {
                      auto q = parse_query(ctx);
                      json::array out;
                      for (auto& a : s.ip_availabilities(caller(ctx), q.params))
                        out.push_back(select_fields(a.as_object(), q.fields));
                      return json_response(200, json::object{{"network_ip_availabilities", out}});
                    }});
  routes.push_back({"GET", "/v2.0/network-ip-availabilities/{id}", [&s](Context& ctx) {
                      return json_response(
                          200, json::object{{"network_ip_availability",
                                             s.ip_availability(caller(ctx), ctx.param("id"))}});
                    }});
  routes.push_back({"GET", "/v2.0/agents", [&s](Context& ctx) {
                      auto q = parse_query(ctx);
                      json::array out;
                      for (auto& a : s.agents(caller(ctx), q.params))
                        out.push_back(select_fields(a.as_object(), q.fields));
                      return json_response(200, json::object{{"agents", out}});
                    }});
  routes.push_back(
      {"GET", "/v2.0/agents/{id}", [&s](Context& ctx) {
         return json_response(200, json::object{{"agent", s.agent(caller(ctx), ctx.param("id"))}});
       }});
  routes.push_back({"GET", "/v2.0/service-providers", [](Context&) {
                      return json_response(200, json::object{{"service_providers", json::array{}}});
                    }});
  routes.push_back({"GET", "/v2.0/availability_zones", [&s](Context&) {
                      json::array out;
                      for (auto& zone : s.settings().availability_zones)
                        for (auto* resource : {"network", "router"})
                          out.push_back(json::object{
                              {"name", zone}, {"resource", resource}, {"state", "available"}});
                      return json_response(200, json::object{{"availability_zones", out}});
                    }});
  spec.render_error = render_error;
  spec.validator = std::move(validator);
  spec.policy = Policy::with_overrides(default_policy(), policy_file);
  return spec;
}

}  // namespace nubo::network::api
