// /v2.1/os-keypairs: create (generated or imported; ssh and x509 from 2.2), list (paged from
// 2.35, other users' for admins from 2.10), show, delete.
#include <set>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

// Admins name another user's keypairs with ?user_id= from 2.10.
std::string user_param(const Context& ctx) {
  if (ctx.version < Microversion{2, 10}) return {};
  return ctx.request.query_param("user_id").value_or("");
}

http::Response no_content(const Context& ctx) {
  http::Response r;
  r.status = ctx.version >= Microversion{2, 2} ? 204 : 202;
  return r;
}

}  // namespace

void add_keypair_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{"GET", "/v2.1/os-keypairs", [&s](Context& ctx) {
                           std::string marker;
                           std::optional<long> limit;
                           if (ctx.version >= Microversion{2, 35}) {
                             marker = ctx.request.query_param("marker").value_or("");
                             limit = count_param(ctx, "limit");
                           }
                           auto rows = s.list_keypairs(caller(ctx), user_param(ctx), marker, limit);
                           json::array items;
                           for (auto& k : rows) {
                             json::object v{{"name", k.at("name")},
                                            {"public_key", k.at("public_key")},
                                            {"fingerprint", k.at("fingerprint")}};
                             if (ctx.version >= Microversion{2, 2}) v["type"] = k.at("type");
                             items.push_back(json::object{{"keypair", std::move(v)}});
                           }
                           json::object body{{"keypairs", std::move(items)}};
                           if (limit && !rows.empty() && static_cast<long>(rows.size()) == *limit)
                             body["keypairs_links"] =
                                 next_links(s, ctx, "os-keypairs",
                                            std::string(rows.back().at("name").as_string()));
                           return json_response(200, body);
                         }});
  routes.push_back(Route{
      "POST", "/v2.1/os-keypairs", [&s](Context& ctx) {
        auto body = member(ctx, "keypair");
        KeypairRequest r;
        auto* name = body.if_contains("name");
        if (!name)
          throw BadRequest(
              "Invalid input for field/attribute keypair. 'name' is a required property");
        if (!name->is_string())
          throw BadRequest("Keypair data is invalid: Keypair name must be string");
        r.name = std::string(name->as_string());
        std::set<std::string> allowed{"name", "public_key"};
        if (ctx.version >= Microversion{2, 2}) allowed.insert("type");
        if (ctx.version >= Microversion{2, 10}) allowed.insert("user_id");
        for (auto& kv : body)
          if (!allowed.count(std::string(kv.key())))
            throw BadRequest(unexpected("keypair", kv.key()));
        if (auto* v = body.if_contains("public_key")) {
          if (!v->is_string()) throw BadRequest("Invalid input for field/attribute public_key.");
          r.public_key = std::string(v->as_string());
        } else if (ctx.version >= Microversion{2, 92}) {
          throw BadRequest(
              "Invalid input for field/attribute keypair. 'public_key' is a required property");
        }
        if (auto* v = body.if_contains("type")) {
          if (!v->is_string()) throw BadRequest("Invalid input for field/attribute type.");
          r.type = std::string(v->as_string());
        }
        if (auto* v = body.if_contains("user_id")) {
          if (!v->is_string()) throw BadRequest("Invalid input for field/attribute user_id.");
          r.user_id = std::string(v->as_string());
        }
        auto k = s.create_keypair(caller(ctx), r, ctx.version >= Microversion{2, 92});
        json::object v{{"name", k.at("name")},
                       {"public_key", k.at("public_key")},
                       {"fingerprint", k.at("fingerprint")},
                       {"user_id", k.at("user_id")}};
        if (ctx.version >= Microversion{2, 2}) v["type"] = k.at("type");
        if (auto* p = k.if_contains("private_key")) v["private_key"] = *p;
        return json_response(ctx.version >= Microversion{2, 2} ? 201 : 200,
                             json::object{{"keypair", std::move(v)}});
      }});
  routes.push_back(Route{"GET", "/v2.1/os-keypairs/{name}", [&s](Context& ctx) {
                           auto k = s.show_keypair(caller(ctx), user_param(ctx), ctx.param("name"));
                           json::object v{{"public_key", k.at("public_key")},
                                          {"name", k.at("name")},
                                          {"fingerprint", k.at("fingerprint")},
                                          {"user_id", k.at("user_id")},
                                          {"deleted", false},
                                          {"created_at", k.at("created_at")},
                                          {"updated_at", nullptr},
                                          {"deleted_at", nullptr},
                                          {"id", k.at("number")}};
                           if (ctx.version >= Microversion{2, 2}) v["type"] = k.at("type");
                           return json_response(200, json::object{{"keypair", std::move(v)}});
                         }});
  routes.push_back(Route{"DELETE", "/v2.1/os-keypairs/{name}", [&s](Context& ctx) {
                           s.delete_keypair(caller(ctx), user_param(ctx), ctx.param("name"));
                           return no_content(ctx);
                         }});
}

}  // namespace nubo::compute::api
