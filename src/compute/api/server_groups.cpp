// /v2.1/os-server-groups: `policies` (a one-item list) before 2.64, `policy` and `rules` from it;
// the soft policies from 2.15; project and user ids shown from 2.13.
#include <set>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

json::object group_view(Context& ctx, const json::object& g) {
  json::object v{{"id", g.at("id")}, {"name", g.at("name")}, {"members", g.at("members")}};
  if (ctx.version >= Microversion{2, 64}) {
    v["policy"] = g.at("policy");
    v["rules"] = g.at("rules");
  } else {
    v["policies"] = json::array{g.at("policy")};
    v["metadata"] = json::object{};
  }
  if (ctx.version >= Microversion{2, 13}) {
    v["project_id"] = g.at("project_id");
    v["user_id"] = g.at("user_id");
  }
  return v;
}

}  // namespace

void add_server_group_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{
      "POST", "/v2.1/os-server-groups", [&s](Context& ctx) {
        auto body = member(ctx, "server_group");
        bool v264 = ctx.version >= Microversion{2, 64};
        std::set<std::string> allowed{"name", v264 ? "policy" : "policies"};
        if (v264) allowed.insert("rules");
        for (auto& kv : body)
          if (!allowed.count(std::string(kv.key())))
            throw BadRequest(
                "Invalid input for field/attribute server_group. Additional properties are not "
                "allowed ('" +
                std::string(kv.key()) + "' was unexpected)");
        auto* name = body.if_contains("name");
        if (!name)
          throw BadRequest(
              "Invalid input for field/attribute server_group. 'name' is a required property");
        auto group_name = checked_name(*name, "name");
        std::set<std::string> policies{"affinity", "anti-affinity"};
        if (ctx.version >= Microversion{2, 15})
          policies.insert({"soft-affinity", "soft-anti-affinity"});
        std::string policy;
        json::object rules;
        if (v264) {
          auto* p = body.if_contains("policy");
          if (!p)
            throw BadRequest(
                "Invalid input for field/attribute server_group. 'policy' is a required property");
          if (!p->is_string() || !policies.count(std::string(p->as_string())))
            throw BadRequest(invalid("policy", *p, "is not one of the allowed policies"));
          policy = std::string(p->as_string());
          if (auto* r = body.if_contains("rules")) {
            if (!r->is_object()) throw BadRequest(invalid("rules", *r, "is not of type 'object'"));
            for (auto& kv : r->as_object()) {
              if (kv.key() != "max_server_per_host")
                throw BadRequest(invalid("rules", *r, "Additional properties are not allowed"));
              auto& n = kv.value();
              if (!n.is_int64() || n.as_int64() < 1 || policy != "anti-affinity")
                throw BadRequest(invalid("max_server_per_host", n,
                                         "Only a positive integer for anti-affinity."));
            }
            rules = r->as_object();
          }
        } else {
          auto* p = body.if_contains("policies");
          if (!p)
            throw BadRequest(
                "Invalid input for field/attribute server_group. 'policies' is a required "
                "property");
          if (!p->is_array() || p->as_array().size() != 1 || !p->as_array()[0].is_string() ||
              !policies.count(std::string(p->as_array()[0].as_string())))
            throw BadRequest(
                invalid("policies", *p, "must be a list of exactly one allowed policy"));
          policy = std::string(p->as_array()[0].as_string());
        }
        auto g = s.create_server_group(caller(ctx), group_name, policy, rules);
        return json_response(200, json::object{{"server_group", group_view(ctx, g)}});
      }});
  routes.push_back(Route{
      "GET", "/v2.1/os-server-groups", [&s](Context& ctx) {
        bool all = ctx.request.has_query("all_projects");
        auto rows = s.list_server_groups(caller(ctx), all, count_param(ctx, "offset").value_or(0),
                                         count_param(ctx, "limit"));
        json::array items;
        for (auto& g : rows) items.push_back(group_view(ctx, g));
        return json_response(200, json::object{{"server_groups", std::move(items)}});
      }});
  routes.push_back(Route{
      "GET", "/v2.1/os-server-groups/{id}", [&s](Context& ctx) {
        return json_response(
            200,
            json::object{{"server_group",
                          group_view(ctx, s.show_server_group(caller(ctx), ctx.param("id")))}});
      }});
  routes.push_back(Route{"DELETE", "/v2.1/os-server-groups/{id}", [&s](Context& ctx) {
                           s.delete_server_group(caller(ctx), ctx.param("id"));
                           http::Response r;
                           r.status = 204;
                           return r;
                         }});
}

}  // namespace nubo::compute::api
