// Credentials the identity service keeps for users: /v3/credentials, OS-EC2 keys,
// application credentials with their access rules, and OS-TRUST trusts.
#include "identity/api/common.hpp"

#include "common/ids.hpp"

#include <openssl/evp.h>
#include <soci/soci.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace nubo::identity::api {

namespace {

// ------------------------------------------------------------------------ helpers

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256 failed");
  return hex_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

json::value nullable(const json::object& row, std::string_view key) {
  auto* v = find(row, key);
  return v ? *v : json::value(nullptr);
}

std::string str(const json::object& row, std::string_view key) {
  auto* v = find(row, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool is_admin(const Context& ctx) { return ctx.allowed("admin_required", {}); }

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

void push_unique(std::vector<std::string>& v, const std::string& x) {
  if (!contains(v, x)) v.push_back(x);
}

// The JSON object a blob string holds; nullopt when it is not one.
std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A global role by name; 404 when there is none.
json::object global_role_by_name(IdentityService& s, const std::string& name) {
  auto rows = s.list(st::role, db::Query{}.eq("name", name).eq("domain_id", st::kNullDomain));
  if (rows.empty()) throw NotFound("Could not find role: " + name + ".");
  return std::move(rows.front());
}

// Role rows for these ids, in the order of the ids (missing ones skipped).
std::vector<json::object> roles_in_order(IdentityService& s, const std::vector<std::string>& ids) {
  std::vector<json::object> out;
  if (ids.empty()) return out;
  std::map<std::string, json::object> by_id;
  for (auto& r : s.list(st::role, db::Query{}.in("id", ids))) by_id.emplace(str(r, "id"), r);
  for (auto& id : ids) {
    auto it = by_id.find(id);
    if (it != by_id.end()) out.push_back(it->second);
  }
  return out;
}

// Application-credential tokens may only manage credentials when the app cred is unrestricted.
void check_unrestricted(IdentityService& s, const Context& ctx, const std::string& what) {
  if (!ctx.auth || ctx.auth->application_credential_id.empty()) return;
  auto ac = s.find(st::application_credential, ctx.auth->application_credential_id);
  if (ac && bool_or(*ac, "unrestricted", false)) return;
  throw Forbidden("Using method 'application_credential' is not allowed for managing " + what + ".");
}

bool delegated(const Context& ctx) {
  return ctx.auth && (!ctx.auth->trust_id.empty() || !ctx.auth->application_credential_id.empty());
}

// Optional ISO-8601 expiry that must lie in the future; BadRequest otherwise.
std::optional<TimePoint> parse_expiry(IdentityService& s, const json::value* v) {
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw BadRequest("Invalid input for field 'expires_at': not a string.");
  auto tp = parse_iso8601(v->as_string());
  if (!tp)
    throw BadRequest("Timestamp not in expected format. The server could not comply with the request since it is "
                     "either malformed or otherwise incorrect. The client is assumed to be in error.");
  if (*tp <= s.now()) throw BadRequest("The 'expires_at' must not be before now.");
  return tp;
}

// ------------------------------------------------------------------------ /v3/credentials

json::object credential_view(const IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  return json::object{{"id", id},
                      {"user_id", nullable(row, "user_id")},
                      {"project_id", nullable(row, "project_id")},
                      {"type", nullable(row, "type")},
                      {"blob", nullable(row, "blob")},
                      {"links", json::object{{"self", s.link("credentials/" + id)}}}};
}

// An ec2 blob must be a JSON object with an access key.
json::object ec2_blob(std::string_view blob) {
  auto o = parse_object(blob);
  if (!o) throw BadRequest("Invalid blob in credential.");
  auto* a = find(*o, "access");
  if (!a || !a->is_string() || a->as_string().empty())
    throw BadRequest("Invalid input for field 'access': the ec2 credential blob requires an 'access' key.");
  return std::move(*o);
}

std::string blob_string(const json::object& c) {
  auto* v = find(c, "blob");
  if (!v) throw BadRequest("Invalid input for field 'blob': 'blob' is a required property.");
  if (!v->is_string()) throw BadRequest("Invalid input for field 'blob': not a string.");
  return std::string(v->as_string());
}

void add_v3_credential_routes(std::vector<Route>& routes, IdentityService& s) {
  auto create_target = [](Context& ctx) -> Target {
    Target t;
    auto body = ctx.body();
    if (auto* c = find(body, "credential"); c && c->is_object())
      if (auto u = get_string(c->as_object(), "user_id")) t["target.credential.user_id"] = *u;
    return t;
  };
  auto credential_target = [&s](Context& ctx) -> Target {
    auto row = s.get(st::credential, ctx.param("credential_id"), "credential");
    return {{"target.credential.user_id", str(row, "user_id")}};
  };

  routes.push_back(Route{
      "POST", "/v3/credentials",
      [&s](Context& ctx) -> http::Response {
        auto c = entity(ctx, "credential");
        auto user_id = required_string(c, "user_id", 64);
        auto type = required_string(c, "type", 255);
        auto blob = blob_string(c);
        auto project_id = optional_string(c, "project_id", 64);
        bool ec2 = lower(type) == "ec2";
        if (ec2 && (!project_id || project_id->empty()))
          throw BadRequest("Invalid input for field 'project_id': 'project_id' is required for ec2 credentials.");
        if (ec2) check_unrestricted(s, ctx, "additional credentials");
        if (delegated(ctx) && project_id.value_or("") != ctx.auth->project_id)
          throw Forbidden("Credential project does not match the project scope of the delegated token.");
        load_user(s, user_id);
        std::string id;
        if (ec2) {
          auto b = ec2_blob(blob);
          id = sha256_hex(b.at("access").as_string());
          // Credentials created through a delegation carry it, as Keystone records it.
          bool changed = false;
          if (!ctx.auth->trust_id.empty()) {
            b["trust_id"] = ctx.auth->trust_id;
            changed = true;
          }
          if (!ctx.auth->application_credential_id.empty()) {
            b["app_cred_id"] = ctx.auth->application_credential_id;
            changed = true;
          }
          if (changed) blob = json::serialize(b);
        } else {
          id = uuid4_hex();
        }
        json::object row{{"id", id},
                         {"user_id", user_id},
                         {"project_id", project_id ? json::value(*project_id) : json::value(nullptr)},
                         {"type", type},
                         {"blob", blob}};
        s.write([&](soci::session& ss) {
          if (db::get(ss, st::credential, id))
            throw Conflict("Conflict occurred attempting to store credential - Duplicate entry.");
          db::insert(ss, st::credential, row);
        });
        return created(json::object{{"credential", credential_view(s, row)}});
      },
      "identity:create_credential", true, create_target});

  routes.push_back(Route{"GET", "/v3/credentials",
                         [&s](Context& ctx) -> http::Response {
                           db::Query q;
                           if (auto u = ctx.request.query_param("user_id")) q.eq("user_id", *u);
                           if (auto t = ctx.request.query_param("type")) q.eq("type", *t);
                           json::array items;
                           for (auto& r : s.list(st::credential, q)) {
                             // Only the credentials the caller may read (their own, unless admin).
                             if (!ctx.allowed("identity:get_credential",
                                              {{"target.credential.user_id", str(r, "user_id")}}))
                               continue;
                             if (delegated(ctx) && str(r, "project_id") != ctx.auth->project_id) continue;
                             items.push_back(credential_view(s, r));
                           }
                           return ok(collection(s, "credentials", std::move(items), "credentials"));
                         },
                         "identity:list_credentials"});

  routes.push_back(Route{"GET", "/v3/credentials/{credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           auto row = s.get(st::credential, ctx.param("credential_id"), "credential");
                           if (delegated(ctx) && str(row, "project_id") != ctx.auth->project_id)
                             throw Forbidden(
                                 "Credential project does not match the project scope of the delegated token.");
                           return ok(json::object{{"credential", credential_view(s, row)}});
                         },
                         "identity:get_credential", true, credential_target});

  routes.push_back(Route{
      "PATCH", "/v3/credentials/{credential_id}",
      [&s](Context& ctx) -> http::Response {
        const auto& id = ctx.param("credential_id");
        auto current = s.get(st::credential, id, "credential");
        if (delegated(ctx) && str(current, "project_id") != ctx.auth->project_id)
          throw Forbidden("Credential project does not match the project scope of the delegated token.");
        auto c = entity(ctx, "credential");
        reject_readonly(c, {"id", "links"}, id);
        json::object fields;
        std::string type = str(current, "type");
        if (find(c, "type")) {
          type = required_string(c, "type", 255);
          fields["type"] = type;
        }
        if (find(c, "blob")) fields["blob"] = blob_string(c);
        if (find(c, "project_id")) {
          auto p = optional_string(c, "project_id", 64);
          fields["project_id"] = p ? json::value(*p) : json::value(nullptr);
        }
        if (find(c, "user_id")) {
          auto u = required_string(c, "user_id", 64);
          if (u != str(current, "user_id")) {
            // The new owner must also be one the caller may manage.
            ctx.authorize("identity:update_credential", {{"target.credential.user_id", u}, {"credential_id", id}});
            load_user(s, u);
          }
          fields["user_id"] = u;
        }
        json::object merged = current;
        for (auto& kv : fields) merged[kv.key()] = kv.value();
        // An ec2 credential keeps its delegation markers.
        if (lower(str(current, "type")) == "ec2" && fields.contains("blob")) {
          auto nb = ec2_blob(str(merged, "blob"));
          auto ob = parse_object(str(current, "blob")).value_or(json::object{});
          for (const char* key : {"trust_id", "app_cred_id", "access_token_id", "access_id"}) {
            auto* a = find(ob, key);
            auto* b = find(nb, key);
            json::value av = a ? *a : json::value(nullptr), bv = b ? *b : json::value(nullptr);
            if (av != bv) throw BadRequest(std::string(key) + " can not be updated for credential.");
          }
        }
        if (lower(type) == "ec2") {
          if (fields.contains("type") || fields.contains("blob")) ec2_blob(str(merged, "blob"));
          if (str(merged, "project_id").empty())
            throw BadRequest("Invalid input for field 'project_id': 'project_id' is required for ec2 credentials.");
        }
        if (!fields.empty()) {
          s.write([&](soci::session& ss) {
            if (!db::get(ss, st::credential, id)) throw NotFound("Could not find credential: " + id + ".");
            db::update(ss, st::credential, id, fields);
          });
        }
        return ok(json::object{{"credential", credential_view(s, merged)}});
      },
      "identity:update_credential", true, credential_target});

  routes.push_back(Route{"DELETE", "/v3/credentials/{credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           const auto& id = ctx.param("credential_id");
                           auto row = s.get(st::credential, id, "credential");
                           if (delegated(ctx) && str(row, "project_id") != ctx.auth->project_id)
                             throw Forbidden(
                                 "Credential project does not match the project scope of the delegated token.");
                           s.write([&](soci::session& ss) { db::remove_id(ss, st::credential, id); });
                           return no_content();
                         },
                         "identity:delete_credential", true, credential_target});
}

// ------------------------------------------------------------------------ OS-EC2

json::object ec2_view(const IdentityService& s, const json::object& row) {
  auto blob = parse_object(str(row, "blob")).value_or(json::object{});
  auto user_id = str(row, "user_id");
  auto access = string_or(blob, "access");
  return json::object{
      {"user_id", user_id},
      {"tenant_id", nullable(row, "project_id")},
      {"access", access},
      {"secret", nullable(blob, "secret")},
      {"trust_id", nullable(blob, "trust_id")},
      {"links", json::object{{"self", s.link("users/" + user_id + "/credentials/OS-EC2/" + access)}}}};
}

// The user's ec2 credential with this access key; 404 otherwise.
json::object load_ec2(IdentityService& s, const std::string& user_id, const std::string& access) {
  auto row = s.find(st::credential, sha256_hex(access));
  if (!row || str(*row, "user_id") != user_id || lower(str(*row, "type")) != "ec2")
    throw NotFound("Could not find credential: " + access + ".");
  return std::move(*row);
}

void add_ec2_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/users/{user_id}/credentials/OS-EC2",
      [&s](Context& ctx) -> http::Response {
        const auto& user_id = ctx.param("user_id");
        check_unrestricted(s, ctx, "additional credentials");
        auto body = ctx.body();  // not wrapped: {"tenant_id": P}
        auto tenant = get_string(body, "tenant_id");
        if (!tenant || tenant->empty())
          throw BadRequest("Invalid input for field 'tenant_id': 'tenant_id' is a required property.");
        load_user(s, user_id);
        load_project(s, *tenant);
        if (delegated(ctx) && *tenant != ctx.auth->project_id)
          throw Forbidden("EC2 credential project does not match the project scope of the delegated token.");
        auto access = uuid4_hex();
        json::object blob{{"access", access},
                          {"secret", uuid4_hex()},
                          {"trust_id", ctx.auth->trust_id.empty() ? json::value(nullptr)
                                                                  : json::value(ctx.auth->trust_id)},
                          {"project_id", *tenant}};
        auto id = sha256_hex(access);
        json::object row{{"id", id},
                         {"user_id", user_id},
                         {"project_id", *tenant},
                         {"type", "ec2"},
                         {"blob", json::serialize(blob)}};
        s.write([&](soci::session& ss) {
          if (db::get(ss, st::credential, id))
            throw Conflict("Conflict occurred attempting to store credential - Duplicate entry.");
          db::insert(ss, st::credential, row);
        });
        return created(json::object{{"credential", ec2_view(s, row)}});
      },
      "identity:ec2_create_credential"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/credentials/OS-EC2",
                         [&s](Context& ctx) -> http::Response {
                           const auto& user_id = ctx.param("user_id");
                           load_user(s, user_id);
                           json::array items;
                           auto rows = s.list(st::credential, db::Query{}.eq("user_id", user_id).eq("type", "ec2"));
                           for (auto& r : rows) {
                             if (delegated(ctx) && str(r, "project_id") != ctx.auth->project_id) continue;
                             auto blob = parse_object(str(r, "blob"));
                             if (!blob || !get_string(*blob, "access")) continue;
                             items.push_back(ec2_view(s, r));
                           }
                           return ok(collection(s, "credentials", std::move(items),
                                                "users/" + user_id + "/credentials/OS-EC2"));
                         },
                         "identity:ec2_list_credentials"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           const auto& user_id = ctx.param("user_id");
                           load_user(s, user_id);
                           auto row = load_ec2(s, user_id, ctx.param("credential_id"));
                           if (delegated(ctx) && str(row, "project_id") != ctx.auth->project_id)
                             throw Forbidden(
                                 "EC2 credential project does not match the project scope of the delegated token.");
                           return ok(json::object{{"credential", ec2_view(s, row)}});
                         },
                         "identity:ec2_get_credential"});

  routes.push_back(Route{"DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           const auto& user_id = ctx.param("user_id");
                           load_user(s, user_id);
                           auto row = load_ec2(s, user_id, ctx.param("credential_id"));
                           if (delegated(ctx) && str(row, "project_id") != ctx.auth->project_id)
                             throw Forbidden(
                                 "EC2 credential project does not match the project scope of the delegated token.");
                           auto id = str(row, "id");
                           s.write([&](soci::session& ss) { db::remove_id(ss, st::credential, id); });
                           return no_content();
                         },
                         "identity:ec2_delete_credential"});
}

// ------------------------------------------------------------------------ application credentials

json::object access_rule_brief(const json::object& r) {
  return json::object{{"id", nullable(r, "id")},
                      {"service", nullable(r, "service")},
                      {"path", nullable(r, "path")},
                      {"method", nullable(r, "method")}};
}

json::object access_rule_view(const IdentityService& s, const json::object& r) {
  auto v = access_rule_brief(r);
  v["links"] =
      json::object{{"self", s.link("users/" + str(r, "user_id") + "/access_rules/" + str(r, "id"))}};
  return v;
}

std::vector<std::string> id_list(const json::object& row, std::string_view key) {
  std::vector<std::string> out;
  auto* v = find(row, key);
  if (!v || !v->is_array()) return out;
  for (auto& e : v->as_array()) {
    if (e.is_string())
      out.emplace_back(e.as_string());
    else if (e.is_object())
      if (auto id = get_string(e.as_object(), "id")) out.push_back(*id);
  }
  return out;
}

json::object app_cred_view(IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  auto user_id = str(row, "user_id");
  json::array rules;
  auto rule_ids = id_list(row, "access_rule_ids");
  if (!rule_ids.empty()) {
    std::map<std::string, json::object> by_id;
    for (auto& r : s.list(st::access_rule, db::Query{}.in("id", rule_ids))) by_id.emplace(str(r, "id"), r);
    for (auto& rid : rule_ids)
      if (auto it = by_id.find(rid); it != by_id.end()) rules.push_back(access_rule_brief(it->second));
  }
  auto* roles = find(row, "roles");
  auto* unrestricted = find(row, "unrestricted");
  return json::object{
      {"id", id},
      {"name", nullable(row, "name")},
      {"description", nullable(row, "description")},
      {"user_id", user_id},
      {"project_id", nullable(row, "project_id")},
      {"roles", roles && roles->is_array() ? *roles : json::value(json::array{})},
      {"expires_at", nullable(row, "expires_at")},
      {"unrestricted", unrestricted && unrestricted->is_bool() ? unrestricted->as_bool() : false},
      {"access_rules", std::move(rules)},
      {"links", json::object{{"self", s.link("users/" + user_id + "/application_credentials/" + id)}}}};
}

json::object load_app_cred(IdentityService& s, const std::string& user_id, const std::string& id) {
  auto row = s.find(st::application_credential, id);
  if (!row || str(*row, "user_id") != user_id) throw NotFound("Could not find application credential: " + id + ".");
  return std::move(*row);
}

json::object load_access_rule(IdentityService& s, const std::string& user_id, const std::string& id) {
  auto row = s.find(st::access_rule, id);
  if (!row || str(*row, "user_id") != user_id) throw NotFound("Could not find access rule: " + id + ".");
  return std::move(*row);
}

// Trust- (and OAuth-) delegated tokens may not manage application credentials.
void block_trust_token(const Context& ctx) {
  if (ctx.auth && !ctx.auth->trust_id.empty())
    throw Forbidden("Cannot manage application credentials with a token issued via delegation.");
}

struct AccessRuleRequest {
  std::string id;
  std::string service, path, method;
  bool by_id = false;  // only an id: an existing rule
};

std::vector<AccessRuleRequest> parse_access_rules(const json::object& c) {
  std::vector<AccessRuleRequest> out;
  auto* v = find(c, "access_rules");
  if (!v || v->is_null()) return out;
  if (!v->is_array()) throw BadRequest("Invalid input for field 'access_rules': not an array.");
  static const std::set<std::string> methods{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"};
  for (auto& e : v->as_array()) {
    if (!e.is_object()) throw BadRequest("Invalid input for field 'access_rules': each rule must be an object.");
    auto& o = e.as_object();
    AccessRuleRequest r;
    if (auto* idv = find(o, "id")) {
      if (!idv->is_string() || idv->as_string().empty() || idv->as_string().size() > 64)
        throw BadRequest("Invalid input for field 'access_rules': invalid id.");
      r.id = idv->as_string();
    }
    bool has_fields = find(o, "service") || find(o, "path") || find(o, "method");
    if (!has_fields) {
      if (r.id.empty())
        throw BadRequest("Invalid input for field 'access_rules': a rule needs an id or service, path and method.");
      r.by_id = true;
      out.push_back(std::move(r));
      continue;
    }
    auto service = get_string(o, "service");
    if (!service || service->empty() || service->size() > 64 ||
        !std::all_of(service->begin(), service->end(),
                     [](unsigned char ch) { return std::isalnum(ch) || ch == '-'; }))
      throw BadRequest("Invalid input for field 'service': a service type is required.");
    auto path = get_string(o, "path");
    if (!path || path->empty() || (*path)[0] != '/')
      throw BadRequest("Invalid input for field 'path': a path starting with '/' is required.");
    // Keystone's schema allows 225 characters but its column (and ours) holds 128: longer failed to store.
    if (path->size() > 128) throw BadRequest("Invalid input for field 'path': longer than 128 characters.");
    auto method = get_string(o, "method");
    if (!method || !methods.count(*method))
      throw BadRequest("Invalid input for field 'method': must be one of DELETE, GET, HEAD, PATCH, POST, PUT.");
    for (auto& kv : o) {
      auto k = kv.key();
      if (k != "id" && k != "service" && k != "path" && k != "method")
        throw BadRequest("Invalid input for field 'access_rules': additional property '" + std::string(k) +
                         "' is not allowed.");
    }
    r.service = *service;
    r.path = *path;
    r.method = *method;
    out.push_back(std::move(r));
  }
  return out;
}

void add_app_cred_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/users/{user_id}/application_credentials",
      [&s](Context& ctx) -> http::Response {
        const auto& user_id = ctx.param("user_id");
        if (!ctx.auth || ctx.auth->user_id != user_id)
          throw Forbidden("Cannot create an application credential for another user.");
        block_trust_token(ctx);
        check_unrestricted(s, ctx, "additional application credentials");
        auto c = entity(ctx, "application_credential");
        if (ctx.auth->project_id.empty())
          throw BadRequest("Application credentials can only be created with a project-scoped token.");
        auto name = required_string(c, "name", 255);
        auto description = optional_string(c, "description");
        std::string secret = optional_string(c, "secret").value_or("");
        if (secret.empty()) secret = base64url_encode(random_bytes(64));
        bool unrestricted = false;
        if (auto* uv = find(c, "unrestricted"); uv && !uv->is_null()) {
          if (!uv->is_bool()) throw BadRequest("Invalid input for field 'unrestricted': not a boolean.");
          unrestricted = uv->as_bool();
        }
        auto* ev = find(c, "expires_at");
        auto expiry = parse_expiry(s, ev);  // validates; the response echoes the client's string
        json::value expires = nullptr;
        // ...unless it does not fit the 40-character column (a long fraction): then in canonical form.
        if (expiry) expires = ev->as_string().size() <= 40 ? *ev : json::value(iso8601(*expiry));

        // Roles: the token's, or the requested ones plus what they imply, all held by the token.
        json::array roles;
        const auto& token_ids = ctx.auth->role_ids;
        auto* rv = find(c, "roles");
        if (rv && !rv->is_null() && !(rv->is_array() && rv->as_array().empty())) {
          if (!rv->is_array()) throw BadRequest("Invalid input for field 'roles': not an array.");
          std::vector<std::string> ids;
          for (auto& e : rv->as_array()) {
            if (!e.is_object()) throw BadRequest("Invalid input for field 'roles': each role must be an object.");
            auto& o = e.as_object();
            if (auto id = get_string(o, "id"))
              push_unique(ids, *id);
            else if (auto n = get_string(o, "name"))
              push_unique(ids, str(global_role_by_name(s, *n), "id"));
            else
              throw BadRequest("Invalid input for field 'roles': each role needs an 'id' or a 'name'.");
          }
          for (auto& implied : s.expand_implied(ids)) push_unique(ids, implied);
          for (auto& id : ids)
            if (!contains(token_ids, id))
              throw BadRequest("Invalid application credential: Cannot create an application credential with "
                               "unassigned role.");
          auto rows = roles_in_order(s, ids);
          if (rows.size() != ids.size())
            throw BadRequest("Invalid application credential: Cannot create an application credential with "
                             "unassigned role.");
          for (auto& r : rows) {
            auto d = nullable(r, "domain_id");
            if (d.is_string() && d.as_string() == st::kNullDomain) d = nullptr;
            roles.push_back(json::object{{"id", r.at("id")}, {"name", r.at("name")}, {"domain_id", d}});
          }
        } else {
          for (size_t i = 0; i < token_ids.size(); ++i)
            roles.push_back(json::object{{"id", token_ids[i]},
                                         {"name", i < ctx.auth->roles.size() ? ctx.auth->roles[i] : std::string()},
                                         {"domain_id", nullptr}});
        }

        auto rule_requests = parse_access_rules(c);
        auto hash = s.hash_secret(secret);  // bcrypt: outside the write lock
        json::object row{{"id", uuid4_hex()},
                         {"name", name},
                         {"secret_hash", hash},
                         {"description", description ? json::value(*description) : json::value(nullptr)},
                         {"user_id", user_id},
                         {"project_id", ctx.auth->project_id},
                         {"expires_at", expires},
                         {"unrestricted", unrestricted},
                         {"roles", roles},
                         {"access_rule_ids", json::array{}},
                         {"created_at", iso8601(s.now())}};
        s.write([&](soci::session& ss) {
          if (db::count(ss, st::application_credential, db::Query{}.eq("user_id", user_id).eq("name", name)) > 0)
            throw Conflict("Conflict occurred attempting to store application credential - Duplicate entry.");
          std::vector<std::string> rule_ids;
          for (auto& r : rule_requests) {
            std::string rid;
            if (!r.id.empty()) {
              if (auto existing = db::get(ss, st::access_rule, r.id)) {
                if (str(*existing, "user_id") != user_id) throw NotFound("Could not find access rule: " + r.id + ".");
                rid = r.id;
              } else if (r.by_id) {
                throw NotFound("Could not find access rule: " + r.id + ".");
              }
            }
            if (rid.empty()) {
              // Identical rules of this user are shared.
              auto same = db::select(ss, st::access_rule, db::Query{}
                                                              .eq("user_id", user_id)
                                                              .eq("service", r.service)
                                                              .eq("path", r.path)
                                                              .eq("method", r.method));
              if (!same.empty()) {
                rid = str(same.front(), "id");
              } else {
                rid = r.id.empty() ? uuid4_hex() : r.id;
                db::insert(ss, st::access_rule,
                           json::object{{"id", rid},
                                        {"user_id", user_id},
                                        {"service", r.service},
                                        {"path", r.path},
                                        {"method", r.method}});
              }
            }
            push_unique(rule_ids, rid);
          }
          json::array ids;
          for (auto& id : rule_ids) ids.emplace_back(id);
          row["access_rule_ids"] = std::move(ids);
          db::insert(ss, st::application_credential, row);
        });
        auto view = app_cred_view(s, row);
        view["secret"] = secret;
        return created(json::object{{"application_credential", std::move(view)}});
      },
      "identity:create_application_credential"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/application_credentials",
                         [&s](Context& ctx) -> http::Response {
                           const auto& user_id = ctx.param("user_id");
                           block_trust_token(ctx);
                           db::Query q;
                           q.eq("user_id", user_id);
                           if (auto name = ctx.request.query_param("name")) q.eq("name", *name);
                           json::array items;
                           for (auto& r : s.list(st::application_credential, q)) items.push_back(app_cred_view(s, r));
                           return ok(collection(s, "application_credentials", std::move(items),
                                                "users/" + user_id + "/application_credentials"));
                         },
                         "identity:list_application_credentials"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/application_credentials/{application_credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           block_trust_token(ctx);
                           auto row = load_app_cred(s, ctx.param("user_id"), ctx.param("application_credential_id"));
                           return ok(json::object{{"application_credential", app_cred_view(s, row)}});
                         },
                         "identity:get_application_credential"});

  routes.push_back(Route{"DELETE", "/v3/users/{user_id}/application_credentials/{application_credential_id}",
                         [&s](Context& ctx) -> http::Response {
                           block_trust_token(ctx);
                           check_unrestricted(s, ctx, "additional application credentials");
                           auto row = load_app_cred(s, ctx.param("user_id"), ctx.param("application_credential_id"));
                           auto id = str(row, "id");
                           // Tokens issued with it stop validating once the row is gone.
                           s.write([&](soci::session& ss) { db::remove_id(ss, st::application_credential, id); });
                           return no_content();
                         },
                         "identity:delete_application_credential"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/access_rules",
                         [&s](Context& ctx) -> http::Response {
                           const auto& user_id = ctx.param("user_id");
                           block_trust_token(ctx);
                           db::Query q;
                           q.eq("user_id", user_id);
                           for (const char* f : {"service", "path", "method"})
                             if (auto v = ctx.request.query_param(f)) q.eq(f, *v);
                           json::array items;
                           for (auto& r : s.list(st::access_rule, q)) items.push_back(access_rule_view(s, r));
                           return ok(collection(s, "access_rules", std::move(items),
                                                "users/" + user_id + "/access_rules"));
                         },
                         "identity:list_access_rules"});

  routes.push_back(Route{"GET", "/v3/users/{user_id}/access_rules/{access_rule_id}",
                         [&s](Context& ctx) -> http::Response {
                           block_trust_token(ctx);
                           auto row = load_access_rule(s, ctx.param("user_id"), ctx.param("access_rule_id"));
                           return ok(json::object{{"access_rule", access_rule_view(s, row)}});
                         },
                         "identity:get_access_rule"});

  routes.push_back(Route{
      "DELETE", "/v3/users/{user_id}/access_rules/{access_rule_id}",
      [&s](Context& ctx) -> http::Response {
        block_trust_token(ctx);
        const auto& user_id = ctx.param("user_id");
        const auto& id = ctx.param("access_rule_id");
        load_access_rule(s, user_id, id);
        s.write([&](soci::session& ss) {
          auto row = db::get(ss, st::access_rule, id);
          if (!row || str(*row, "user_id") != user_id) throw NotFound("Could not find access rule: " + id + ".");
          for (auto& ac : db::select(ss, st::application_credential, db::Query{}.eq("user_id", user_id)))
            if (contains(id_list(ac, "access_rule_ids"), id))
              throw Forbidden("Cannot delete access rule " + id +
                              " because it is in use by application credential " + str(ac, "id") + ".");
          db::remove_id(ss, st::access_rule, id);
        });
        return no_content();
      },
      "identity:delete_access_rule"});
}

// ------------------------------------------------------------------------ OS-TRUST

bool trust_usable(IdentityService& s, const json::object& row) {
  if (auto* e = find(row, "expires_at"); e && e->is_string()) {
    auto tp = parse_iso8601(e->as_string());
    if (tp && *tp <= s.now()) return false;
  }
  if (auto* u = find(row, "remaining_uses"); u && u->is_int64() && u->as_int64() <= 0) return false;
  return true;
}

// The trust if it exists and has not expired (or run out of uses); 404 otherwise.
json::object load_trust(IdentityService& s, const std::string& id) {
  auto row = s.find(st::trust, id);
  if (!row || !trust_usable(s, *row)) throw NotFound("Could not find trust: " + id + ".");
  return std::move(*row);
}

json::array trust_roles(IdentityService& s, const json::object& row) {
  json::array out;
  for (auto& r : roles_in_order(s, id_list(row, "roles"))) out.push_back(role_view(s, r));
  return out;
}

json::object trust_view(IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  auto* imp = find(row, "impersonation");
  auto* redel = find(row, "allow_redelegation");
  auto count = nullable(row, "redelegation_count");
  return json::object{
      {"id", id},
      {"trustor_user_id", nullable(row, "trustor_user_id")},
      {"trustee_user_id", nullable(row, "trustee_user_id")},
      {"project_id", nullable(row, "project_id")},
      {"impersonation", imp && imp->is_bool() ? imp->as_bool() : false},
      {"expires_at", nullable(row, "expires_at")},
      {"remaining_uses", nullable(row, "remaining_uses")},
      {"allow_redelegation", redel && redel->is_bool() ? redel->as_bool() : false},
      {"redelegation_count", count.is_null() ? json::value(0) : count},
      {"roles", trust_roles(s, row)},
      {"roles_links", json::object{{"self", s.link("OS-TRUST/trusts/" + id + "/roles")},
                                   {"previous", nullptr},
                                   {"next", nullptr}}},
      {"links", json::object{{"self", s.link("OS-TRUST/trusts/" + id)}}}};
}

// Application-credential tokens may not read or manage trusts.
void block_app_cred_token(const Context& ctx) {
  if (ctx.auth && !ctx.auth->application_credential_id.empty())
    throw Forbidden("Using method 'application_credential' is not allowed for managing trusts.");
}

void require_party(const Context& ctx, const json::object& trust) {
  if (is_admin(ctx)) return;
  const auto& me = ctx.auth->user_id;
  if (me == str(trust, "trustor_user_id") || me == str(trust, "trustee_user_id")) return;
  throw Forbidden("Requested user has no relation to this trust.");
}

// The trust's delegated role with this id; 404 when it is not delegated.
json::object trust_role(IdentityService& s, const json::object& trust, const std::string& role_id) {
  if (!contains(id_list(trust, "roles"), role_id)) throw NotFound("Could not find role: " + role_id + ".");
  auto role = s.find(st::role, role_id);
  if (!role) throw NotFound("Could not find role: " + role_id + ".");
  return std::move(*role);
}

void add_trust_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/OS-TRUST/trusts",
      [&s](Context& ctx) -> http::Response {
        auto t = entity(ctx, "trust");
        auto trustor = required_string(t, "trustor_user_id", 255);
        auto trustee = required_string(t, "trustee_user_id", 255);
        auto* iv = find(t, "impersonation");
        if (!iv || !iv->is_bool())
          throw BadRequest("Invalid input for field 'impersonation': 'impersonation' is a required boolean.");
        bool impersonation = iv->as_bool();
        auto project_id = optional_string(t, "project_id", 64).value_or("");
        auto* rv = find(t, "roles");
        if (rv && !rv->is_null() && !rv->is_array()) throw BadRequest("Invalid input for field 'roles': not an array.");
        json::value remaining = nullptr;
        if (auto* uv = find(t, "remaining_uses"); uv && !uv->is_null()) {
          // Past INT64_MAX the parser yields a uint64, which the int64 column would wrap to a negative count.
          if (!(uv->is_int64() && uv->as_int64() >= 1))
            throw BadRequest("Invalid input for field 'remaining_uses': must be a positive integer or null.");
          remaining = uv->as_int64();
        }
        bool allow_redelegation = false;
        if (auto* av = find(t, "allow_redelegation"); av && !av->is_null()) {
          if (!av->is_bool()) throw BadRequest("Invalid input for field 'allow_redelegation': not a boolean.");
          allow_redelegation = av->as_bool();
        }
        std::int64_t redelegation_count = 0;
        if (allow_redelegation) {
          if (!remaining.is_null())
            throw BadRequest("remaining_uses must not be set if redelegation is allowed.");
          redelegation_count = 3;  // Keystone's max_redelegation_count default
          if (auto* cv = find(t, "redelegation_count"); cv && !cv->is_null()) {
            if (!cv->is_int64() || cv->as_int64() < 0 || cv->as_int64() > 3)
              throw BadRequest("Invalid input for field 'redelegation_count'.");
            redelegation_count = cv->as_int64();
          }
        }
        auto expires = parse_expiry(s, find(t, "expires_at"));

        block_app_cred_token(ctx);
        if (!project_id.empty() && (!rv || !rv->is_array() || rv->as_array().empty()))
          throw Forbidden("You are not authorized to perform the requested action: At least one role should be "
                          "specified.");
        if (ctx.auth->user_id != trustor)
          throw Forbidden("You are not authorized to perform the requested action: The authenticated user should "
                          "match the trustor.");
        load_user(s, trustee);
        if (!project_id.empty()) load_project(s, project_id);

        std::vector<std::string> role_ids;
        if (rv && rv->is_array()) {
          for (auto& e : rv->as_array()) {
            if (!e.is_object()) throw BadRequest("Invalid input for field 'roles': each role must be an object.");
            auto& o = e.as_object();
            if (auto id = get_string(o, "id")) {
              if (!s.find(st::role, *id)) throw NotFound("Could not find role: " + *id + ".");
              push_unique(role_ids, *id);
            } else if (auto n = get_string(o, "name")) {
              push_unique(role_ids, str(global_role_by_name(s, *n), "id"));
            } else {
              throw BadRequest("Invalid input for field 'roles': each role needs an 'id' or a 'name'.");
            }
          }
        }
        if (!role_ids.empty()) {
          std::vector<std::string> held;
          if (!project_id.empty())
            for (auto& r : s.effective_roles(trustor, Scope{project_id, "", false})) held.push_back(str(r, "id"));
          for (auto& id : role_ids)
            if (!contains(held, id))
              throw Forbidden("You are not authorized to perform the requested action: the trustor does not have "
                              "role " + id + " on the project.");
        }

        json::array stored_roles;
        for (auto& id : role_ids) stored_roles.push_back(json::object{{"id", id}});
        json::object row{{"id", uuid4_hex()},
                         {"trustor_user_id", trustor},
                         {"trustee_user_id", trustee},
                         {"project_id", project_id.empty() ? json::value(nullptr) : json::value(project_id)},
                         {"impersonation", impersonation},
                         {"expires_at", expires ? json::value(iso8601(*expires)) : json::value(nullptr)},
                         {"remaining_uses", remaining},
                         {"allow_redelegation", allow_redelegation},
                         {"redelegation_count", redelegation_count},
                         {"roles", std::move(stored_roles)}};
        s.write([&](soci::session& ss) { db::insert(ss, st::trust, row); });
        return created(json::object{{"trust", trust_view(s, row)}});
      },
      "identity:create_trust"});

  routes.push_back(Route{"GET", "/v3/OS-TRUST/trusts",
                         [&s](Context& ctx) -> http::Response {
                           block_app_cred_token(ctx);
                           bool admin = is_admin(ctx);
                           auto trustor = ctx.request.query_param("trustor_user_id");
                           auto trustee = ctx.request.query_param("trustee_user_id");
                           db::Query q;
                           bool filtered = false;
                           if (trustor && !trustor->empty()) {
                             if (!admin && *trustor != ctx.auth->user_id)
                               throw Forbidden("You are not authorized to perform the requested action: "
                                               "identity:list_trusts_for_trustor.");
                             q.eq("trustor_user_id", *trustor);
                             filtered = true;
                           }
                           if (trustee && !trustee->empty()) {
                             if (!admin && *trustee != ctx.auth->user_id)
                               throw Forbidden("You are not authorized to perform the requested action: "
                                               "identity:list_trusts_for_trustee.");
                             q.eq("trustee_user_id", *trustee);
                             filtered = true;
                           }
                           if (!filtered && !admin)
                             throw Forbidden("You are not authorized to perform the requested action: "
                                             "identity:list_trusts.");
                           json::array items;
                           for (auto& r : s.list(st::trust, q))
                             if (trust_usable(s, r)) items.push_back(trust_view(s, r));
                           return ok(collection(s, "trusts", std::move(items), "OS-TRUST/trusts"));
                         },
                         "identity:list_trusts"});

  routes.push_back(Route{"GET", "/v3/OS-TRUST/trusts/{trust_id}",
                         [&s](Context& ctx) -> http::Response {
                           auto trust = load_trust(s, ctx.param("trust_id"));
                           block_app_cred_token(ctx);
                           require_party(ctx, trust);
                           return ok(json::object{{"trust", trust_view(s, trust)}});
                         },
                         "identity:get_trust"});

  routes.push_back(Route{"DELETE", "/v3/OS-TRUST/trusts/{trust_id}",
                         [&s](Context& ctx) -> http::Response {
                           const auto& id = ctx.param("trust_id");
                           auto trust = load_trust(s, id);
                           block_app_cred_token(ctx);
                           if (ctx.auth->user_id != str(trust, "trustor_user_id") && !is_admin(ctx))
                             throw Forbidden("You are not authorized to perform the requested action: Only admin "
                                             "or trustor can delete a trust.");
                           s.write([&](soci::session& ss) { db::remove_id(ss, st::trust, id); });
                           s.revoke("", "", "", "", id);
                           return no_content();
                         },
                         "identity:delete_trust"});

  routes.push_back(Route{"GET", "/v3/OS-TRUST/trusts/{trust_id}/roles",
                         [&s](Context& ctx) -> http::Response {
                           const auto& id = ctx.param("trust_id");
                           auto trust = load_trust(s, id);
                           block_app_cred_token(ctx);
                           require_party(ctx, trust);
                           return ok(json::object{
                               {"roles", trust_roles(s, trust)},
                               {"links", json::object{{"self", s.link("OS-TRUST/trusts/" + id + "/roles")},
                                                      {"previous", nullptr},
                                                      {"next", nullptr}}}});
                         },
                         "identity:list_roles_for_trust"});

  routes.push_back(Route{"GET", "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
                         [&s](Context& ctx) -> http::Response {
                           auto trust = load_trust(s, ctx.param("trust_id"));
                           block_app_cred_token(ctx);
                           require_party(ctx, trust);
                           auto role = trust_role(s, trust, ctx.param("role_id"));
                           return ok(json::object{{"role", role_view(s, role)}});
                         },
                         "identity:get_role_for_trust"});

  routes.push_back(Route{"HEAD", "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
                         [&s](Context& ctx) -> http::Response {
                           auto trust = load_trust(s, ctx.param("trust_id"));
                           block_app_cred_token(ctx);
                           require_party(ctx, trust);
                           trust_role(s, trust, ctx.param("role_id"));
                           return empty_response(200);
                         },
                         "identity:get_role_for_trust"});
}

}  // namespace

void add_credential_routes(std::vector<Route>& routes, IdentityService& s) {
  add_v3_credential_routes(routes, s);
  add_ec2_routes(routes, s);
  add_app_cred_routes(routes, s);
  add_trust_routes(routes, s);
}

}  // namespace nubo::identity::api
