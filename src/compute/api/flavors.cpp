// /v2.1/flavors: list, detail, show, create, update (2.55), delete; extra specs; access lists.
#include <algorithm>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

json::object flavor_view(const ComputeService& s, Context& ctx, const json::object& f,
                         bool detail) {
  std::string id(f.at("id").as_string());
  json::object v{{"id", id}, {"name", f.at("name")}, {"links", links(s, "flavors", id)}};
  if (ctx.version >= Microversion{2, 55}) v["description"] = f.at("description");
  if (!detail) return v;
  auto swap = f.at("swap").as_int64();
  v["ram"] = f.at("memory_mb");
  v["vcpus"] = f.at("vcpus");
  v["disk"] = f.at("root_gb");
  v["OS-FLV-EXT-DATA:ephemeral"] = f.at("ephemeral_gb");
  v["OS-FLV-DISABLED:disabled"] = f.at("disabled");
  v["swap"] = swap == 0 && ctx.version < Microversion{2, 75} ? json::value("") : json::value(swap);
  v["rxtx_factor"] = f.at("rxtx_factor");
  v["os-flavor-access:is_public"] = f.at("is_public");
  if (ctx.version >= Microversion{2, 61} &&
      ctx.allowed("os_compute_api:os-flavor-extra-specs:index",
                  {{"project_id", ctx.auth ? ctx.auth->project_id : ""}}))
    v["extra_specs"] = f.at("extra_specs");
  return v;
}

http::Response list(ComputeService& s, Context& ctx, bool detail) {
  FlavorQuery q;
  auto number = [&](const char* name) -> std::optional<std::int64_t> {
    auto v = count_param(ctx, name);
    return v ? std::optional<std::int64_t>(*v) : std::nullopt;
  };
  q.min_ram = number("minRam");
  q.min_disk = number("minDisk");
  if (auto p = ctx.request.query_param("is_public")) {
    std::string v = *p;
    std::transform(v.begin(), v.end(), v.begin(), ::tolower);
    if (v == "none") {
      q.is_public.reset();
    } else {
      q.is_public = nova_boolean(json::value(*p));
      if (!q.is_public) throw BadRequest("Invalid is_public filter [" + *p + "]");
    }
  } else {
    q.is_public = true;
  }
  if (auto v = ctx.request.query_param("sort_key")) q.sort_key = *v;
  if (auto v = ctx.request.query_param("sort_dir")) q.sort_dir = *v;
  if (auto v = ctx.request.query_param("marker")) q.marker = *v;
  q.limit = count_param(ctx, "limit");
  auto rows = s.list_flavors(caller(ctx), q);
  json::array items;
  for (auto& f : rows) items.push_back(flavor_view(s, ctx, f, detail));
  json::object body{{"flavors", std::move(items)}};
  if (q.limit && !rows.empty() && static_cast<long>(rows.size()) == *q.limit)
    body["flavors_links"] = next_links(s, ctx, detail ? "flavors/detail" : "flavors",
                                       std::string(rows.back().at("id").as_string()));
  return json_response(200, body);
}

json::object access_view(const std::string& flavor_id, const std::vector<std::string>& projects) {
  json::array out;
  for (auto& p : projects) out.push_back(json::object{{"flavor_id", flavor_id}, {"tenant_id", p}});
  return json::object{{"flavor_access", std::move(out)}};
}

}  // namespace

void add_flavor_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(
      Route{"GET", "/v2.1/flavors", [&s](Context& ctx) { return list(s, ctx, false); }});
  routes.push_back(
      Route{"GET", "/v2.1/flavors/detail", [&s](Context& ctx) { return list(s, ctx, true); }});
  routes.push_back(
      Route{"GET", "/v2.1/flavors/{flavor_id}", [&s](Context& ctx) {
              auto f = s.show_flavor(caller(ctx), ctx.param("flavor_id"));
              return json_response(200, json::object{{"flavor", flavor_view(s, ctx, f, true)}});
            }});
  routes.push_back(
      Route{"POST", "/v2.1/flavors", [&s](Context& ctx) {
              auto body = member(ctx, "flavor");
              if (ctx.version < Microversion{2, 55} && body.contains("description"))
                throw BadRequest(unexpected("flavor", "description"));
              auto f = s.create_flavor(caller(ctx), body);
              return json_response(200, json::object{{"flavor", flavor_view(s, ctx, f, true)}});
            }});
  Route update{"PUT", "/v2.1/flavors/{flavor_id}", [&s](Context& ctx) {
                 auto f =
                     s.update_flavor(caller(ctx), ctx.param("flavor_id"), member(ctx, "flavor"));
                 return json_response(200, json::object{{"flavor", flavor_view(s, ctx, f, true)}});
               }};
  update.min_version = {2, 55};
  routes.push_back(update);
  routes.push_back(Route{"DELETE", "/v2.1/flavors/{flavor_id}", [&s](Context& ctx) {
                           s.delete_flavor(caller(ctx), ctx.param("flavor_id"));
                           http::Response r;
                           r.status = 202;
                           return r;
                         }});

  const std::string specs = "/v2.1/flavors/{flavor_id}/os-extra_specs";
  routes.push_back(Route{
      "GET", specs, [&s](Context& ctx) {
        return json_response(
            200, json::object{{"extra_specs", s.extra_specs(caller(ctx), ctx.param("flavor_id"))}});
      }});
  routes.push_back(Route{"POST", specs, [&s](Context& ctx) {
                           auto set = s.set_extra_specs(caller(ctx), ctx.param("flavor_id"),
                                                        member(ctx, "extra_specs"));
                           return json_response(200, json::object{{"extra_specs", std::move(set)}});
                         }});
  routes.push_back(Route{
      "GET", specs + "/{key}", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-flavor-extra-specs:show", {{"project_id", c.project()}});
        auto all = s.extra_specs(c, ctx.param("flavor_id"));
        auto* v = all.if_contains(ctx.param("key"));
        if (!v)
          throw NotFound("Flavor " + ctx.param("flavor_id") + " has no extra specs with key " +
                         ctx.param("key") + ".");
        return json_response(200, json::object{{ctx.param("key"), *v}});
      }});
  routes.push_back(Route{"PUT", specs + "/{key}", [&s](Context& ctx) {
                           auto body = ctx.body();
                           if (body.size() != 1)
                             throw BadRequest("Request body contains too many items");
                           if (!body.contains(ctx.param("key")))
                             throw BadRequest("Request body and URI mismatch");
                           auto set = s.set_extra_specs(caller(ctx), ctx.param("flavor_id"), body);
                           return json_response(200, set);
                         }});
  routes.push_back(Route{"DELETE", specs + "/{key}", [&s](Context& ctx) {
                           s.delete_extra_spec(caller(ctx), ctx.param("flavor_id"),
                                               ctx.param("key"));
                           http::Response r;
                           r.status = 200;
                           return r;
                         }});

  routes.push_back(Route{"GET", "/v2.1/flavors/{flavor_id}/os-flavor-access", [&s](Context& ctx) {
                           auto id = ctx.param("flavor_id");
                           return json_response(200,
                                                access_view(id, s.flavor_access(caller(ctx), id)));
                         }});
  routes.push_back(
      Route{"POST", "/v2.1/flavors/{flavor_id}/action", [&s](Context& ctx) {
              auto body = ctx.body();
              auto id = ctx.param("flavor_id");
              for (const char* action : {"addTenantAccess", "removeTenantAccess"}) {
                auto* v = body.if_contains(action);
                if (!v) continue;
                auto* tenant = v->is_object() ? v->as_object().if_contains("tenant") : nullptr;
                if (!tenant || !tenant->is_string() || tenant->as_string().empty() ||
                    tenant->as_string().size() > 255)
                  throw BadRequest("Invalid input for field/attribute tenant.");
                std::string project(tenant->as_string());
                auto c = caller(ctx);
                auto projects = std::string(action) == "addTenantAccess"
                                    ? s.add_flavor_access(c, id, project)
                                    : s.remove_flavor_access(c, id, project);
                return json_response(200, access_view(id, projects));
              }
              throw BadRequest("There is no such action: " +
                               (body.empty() ? std::string() : std::string(body.begin()->key())));
            }});
}

}  // namespace nubo::compute::api
