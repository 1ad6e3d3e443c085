// /v3/auth/*: token issue, validation, check and revocation; the scopes a token may take;
// and the version discovery documents.
#include "identity/api/common.hpp"

#include <soci/soci.h>

#include <set>

namespace nubo::identity::api {

namespace {

json::object version_v3(const IdentityService& s) {
  return json::object{
      {"id", "v3.14"},
      {"status", "stable"},
      {"updated", "2020-04-07T00:00:00Z"},
      {"links", json::array{json::object{{"rel", "self"}, {"href", s.settings().public_url + "/v3/"}}}},
      {"media-types",
       json::array{json::object{{"base", "application/json"}, {"type", "application/vnd.openstack.identity-v3+json"}}}}};
}

std::string subject_token(const Context& ctx) {
  auto t = ctx.request.headers.get("X-Subject-Token");
  if (!t || t->empty()) throw NotFound("Could not find token: X-Subject-Token header is missing.");
  return std::string(*t);
}

// Token calls are allowed for admins and for the token's own user; the subject's user is
// the policy target (target.token.user_id).
Target subject_target(IdentityService& s, Context& ctx) {
  auto allow_expired = query_bool(ctx, "allow_expired").value_or(false);
  return {{"target.token.user_id", s.token_user(subject_token(ctx), allow_expired)}};
}

json::array scoped_projects(IdentityService& s, const std::string& user_id) {
  // Projects reachable by any effective role: direct and group grants, domain and project inheritance.
  auto actors = s.user_group_ids(user_id);
  actors.push_back(user_id);
  std::set<std::string> ids;
  std::vector<std::string> inherited_domains, inherited_projects;
  s.read([&](soci::session& ss) {
    for (auto& a : db::select(ss, st::assignment, db::Query{}.in("actor_id", actors))) {
      std::string type(a["type"].as_string()), target(a["target_id"].as_string());
      bool inherited = a["inherited"].as_bool();
      if (type == "UserProject" || type == "GroupProject") {
        if (inherited)
          inherited_projects.push_back(target);
        else
          ids.insert(target);
      } else if ((type == "UserDomain" || type == "GroupDomain") && inherited) {
        inherited_domains.push_back(target);
      }
    }
    if (!inherited_domains.empty())
      for (auto& p : db::select(ss, st::project, db::Query{}.in("domain_id", inherited_domains).eq("is_domain", "0")))
        ids.insert(std::string(p["id"].as_string()));
  });
  for (auto& p : inherited_projects)
    for (auto& d : s.project_descendants(p)) ids.insert(d);
  json::array out;
  if (ids.empty()) return out;
  std::vector<json::object> rows;
  s.read([&](soci::session& ss) {
    rows = db::select(ss, st::project,
                      db::Query{}.in("id", std::vector<std::string>(ids.begin(), ids.end())).eq("enabled", "1"));
  });
  for (auto& r : rows) {
    if (r["is_domain"].as_bool()) continue;
    if (s.effective_roles(user_id, Scope{std::string(r["id"].as_string()), {}, false}).empty()) continue;
    out.push_back(project_view(s, r, project_tags(s, std::string(r["id"].as_string()))));
  }
  return out;
}

json::array scoped_domains(IdentityService& s, const std::string& user_id) {
  auto actors = s.user_group_ids(user_id);
  actors.push_back(user_id);
  std::set<std::string> ids;
  s.read([&](soci::session& ss) {
    db::Query q;
    q.in("actor_id", actors).in("type", {"UserDomain", "GroupDomain"}).eq("inherited", "0");
    for (auto& a : db::select(ss, st::assignment, q)) ids.insert(std::string(a["target_id"].as_string()));
  });
  json::array out;
  for (auto& id : ids) {
    auto d = s.find(st::project, id);
    if (d && (*d)["enabled"].as_bool() && !s.effective_roles(user_id, Scope{{}, id, false}).empty())
      out.push_back(domain_view(s, *d));
  }
  return out;
}

}  // namespace

void add_auth_routes(std::vector<Route>& routes, IdentityService& s) {
  auto discovery = [&s](Context&) {
    json::object v = version_v3(s);
    auto r = json_response(300, json::object{{"versions", json::object{{"values", json::array{v}}}}});
    r.headers.set("Location", s.settings().public_url + "/v3/");
    return r;
  };
  routes.push_back(Route{"GET", "/", discovery, "", false});
  routes.push_back(Route{"GET", "/v3", [&s](Context&) { return ok(json::object{{"version", version_v3(s)}}); }, "",
                         false});

  routes.push_back(Route{"POST", "/v3/auth/tokens",
                         [&s](Context& ctx) {
                           auto issued = s.authenticate(ctx.body());
                           if (query_bool(ctx, "nocatalog").value_or(false))
                             issued.body["token"].as_object().erase("catalog");
                           auto r = json_response(201, issued.body);
                           r.headers.set("X-Subject-Token", issued.token);
                           return r;
                         },
                         "", false});
  auto token_target = [&s](Context& ctx) { return subject_target(s, ctx); };
  routes.push_back(Route{"GET", "/v3/auth/tokens",
                         [&s](Context& ctx) {
                           auto token = subject_token(ctx);
                           http::Response r;
                           r.headers.set("Content-Type", "application/json");
                           r.body = s.validate_text(token, !query_bool(ctx, "nocatalog").value_or(false),
                                                    query_bool(ctx, "allow_expired").value_or(false));
                           r.headers.set("X-Subject-Token", token);
                           return r;
                         },
                         "identity:validate_token", true, token_target,
                         [&s](Context& ctx) -> std::optional<http::Response> {
                           if (ctx.request.has_query("allow_expired")) return std::nullopt;
                           auto token = subject_token(ctx);
                           auto text = s.cached_text(token, !query_bool(ctx, "nocatalog").value_or(false));
                           if (!text) return std::nullopt;
                           http::Response r;
                           r.headers.set("Content-Type", "application/json");
                           r.headers.set("X-Subject-Token", token);
                           r.body = std::move(*text);
                           return r;
                         }});
  routes.push_back(Route{"HEAD", "/v3/auth/tokens",
                         [&s](Context& ctx) {
                           auto token = subject_token(ctx);
                           s.validate_text(token, false, query_bool(ctx, "allow_expired").value_or(false));
                           auto r = empty_response(200);
                           r.headers.set("X-Subject-Token", token);
                           return r;
                         },
                         "identity:check_token", true, token_target,
                         [&s](Context& ctx) -> std::optional<http::Response> {
                           if (ctx.request.has_query("allow_expired")) return std::nullopt;
                           auto token = subject_token(ctx);
                           if (!s.cached_text(token, false)) return std::nullopt;
                           auto r = empty_response(200);
                           r.headers.set("X-Subject-Token", token);
                           return r;
                         }});
  routes.push_back(Route{"DELETE", "/v3/auth/tokens",
                         [&s](Context& ctx) {
                           s.revoke_token(subject_token(ctx));
                           return no_content();
                         },
                         "identity:revoke_token", true, token_target});
  routes.push_back(Route{"GET", "/v3/auth/catalog",
                         [&s](Context& ctx) {
                           if (!ctx.auth->scoped()) throw Forbidden("A scoped token is required to list the catalog.");
                           return ok(json::object{{"catalog", s.catalog(ctx.auth->project_id, ctx.auth->user_id)},
                                                  {"links", json::object{{"self", s.link("auth/catalog")},
                                                                         {"previous", nullptr},
                                                                         {"next", nullptr}}}});
                         },
                         "identity:get_auth_catalog"});
  routes.push_back(Route{"GET", "/v3/auth/projects",
                         [&s](Context& ctx) {
                           return ok(collection(s, "projects", scoped_projects(s, ctx.auth->user_id), "auth/projects"));
                         },
                         "identity:get_auth_projects"});
  routes.push_back(Route{"GET", "/v3/auth/domains",
                         [&s](Context& ctx) {
                           return ok(collection(s, "domains", scoped_domains(s, ctx.auth->user_id), "auth/domains"));
                         },
                         "identity:get_auth_domains"});
  routes.push_back(Route{"GET", "/v3/auth/system",
                         [&s](Context& ctx) {
                           json::array systems;
                           if (!s.effective_roles(ctx.auth->user_id, Scope{{}, {}, true}).empty())
                             systems.push_back(json::object{{"all", true}});
                           return ok(json::object{{"system", std::move(systems)},
                                                  {"links", json::object{{"self", s.link("auth/system")},
                                                                         {"previous", nullptr},
                                                                         {"next", nullptr}}}});
                         },
                         "identity:get_auth_system"});
}

}  // namespace nubo::identity::api
