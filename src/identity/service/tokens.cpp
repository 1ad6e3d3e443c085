// Token issue, validation, rendering and revocation for IdentityService.
#include "common/error.hpp"
#include "identity/service/identity_service.hpp"
#include "identity/store/schema.hpp"

#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace nubo::identity {

namespace st = store;

namespace {

const json::object& object_field(const json::object& o, std::string_view key, std::string_view where) {
  auto* v = nubo::find(o, key);
  if (!v || !v->is_object())
    throw BadRequest("'" + std::string(key) + "' is a required property in " + std::string(where) + ".");
  return v->as_object();
}

// An id in the auth request: nullopt when absent or null, BadRequest when not a string (rather than
// falling back to the name next to it).
std::optional<std::string> id_field(const json::object& o, std::string_view where) {
  auto* v = nubo::find(o, "id");
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw BadRequest("Invalid input for field 'id' in " + std::string(where) + ": not a string.");
  return std::string(v->as_string());
}

ApiError auth_failed(std::string m = "The request you have made requires authentication.") {
  return Unauthorized(std::move(m));
}

// A token that does not validate: Keystone answers 404 for the subject token.
ApiError token_not_found() { return NotFound("Failed to validate token"); }

double floor_seconds(double t) { return std::floor(t); }

}  // namespace

struct IdentityService::Resolved {
  std::string project_id, domain_id;
  bool system = false;
};

// Finds a domain row by {"id"} or {"name"}.
static std::optional<json::object> find_domain(IdentityService& s, const json::object& ref) {
  std::optional<json::object> out;
  s.read([&](soci::session& ss) {
    if (auto id = id_field(ref, "domain")) {
      auto d = db::get(ss, st::project, *id);
      if (d && (*d)["is_domain"].as_bool()) out = d;
    } else if (auto name = get_string(ref, "name")) {
      auto rows = db::select(ss, st::project, db::Query{}.eq("domain_id", st::kRootDomain).eq("name", *name));
      if (!rows.empty()) out = rows.front();
    }
  });
  return out;
}

json::object IdentityService::check_password_auth(const json::object& password) {
  auto& user_ref = object_field(password, "user", "password");
  auto pw = get_string(user_ref, "password");
  if (!pw) throw BadRequest("'password' is a required property in user.");
  std::optional<json::object> user;
  if (auto id = id_field(user_ref, "user")) {
    user = find(st::user, *id);
  } else if (auto name = get_string(user_ref, "name")) {
    auto* dref = nubo::find(user_ref, "domain");
    if (!dref || !dref->is_object()) throw BadRequest("'domain' is required when authenticating by user name.");
    auto domain = find_domain(*this, dref->as_object());
    if (!domain) throw auth_failed("Could not find domain.");
    auto rows = list(st::user, db::Query{}.eq("domain_id", std::string((*domain)["id"].as_string())).eq("name", *name));
    if (!rows.empty()) user = rows.front();
  } else {
    throw BadRequest("'id' or 'name' is required in user.");
  }
  if (!user) throw auth_failed("The request you have made requires authentication.");
  std::string user_id((*user)["id"].as_string());
  if (!(*user)["enabled"].as_bool()) throw auth_failed("The account is disabled for user: " + user_id + ".");
  double now_s = to_unix(now());
  std::int64_t failures = (*user)["failed_auth_count"].is_int64() ? (*user)["failed_auth_count"].as_int64() : 0;
  double failed_at = (*user)["failed_auth_at"].is_double() ? (*user)["failed_auth_at"].as_double() : 0;
  auto option = [&](const char* name) {
    auto* o = nubo::find(*user, "options");
    return o && o->is_object() && bool_or(o->as_object(), name, false);
  };
  bool lockout = settings_.lockout_failure_attempts > 0 && !option("ignore_lockout_failure_attempts");
  if (lockout && failures >= settings_.lockout_failure_attempts &&
      now_s - failed_at < settings_.lockout_duration)
    throw auth_failed("The account is locked for user: " + user_id + ".");
  std::string hash;
  std::optional<TimePoint> password_expires;
  read([&](soci::session& s) {
    db::Query q;
    q.eq("user_id", user_id);
    q.order_by = "created_at_us";
    q.descending = true;
    q.limit = 1;
    auto rows = db::select(s, st::password, q);
    if (!rows.empty()) {
      hash = rows.front()["password_hash"].as_string();
      if (rows.front()["expires_at"].is_string()) password_expires = parse_iso8601(rows.front()["expires_at"].as_string());
    }
  });
  if (!verify_secret(*pw, hash)) {
    if (lockout) {
      if (now_s - failed_at >= settings_.lockout_duration) failures = 0;
      db_->write([&](soci::session& s) {
        db::update(s, st::user, user_id, json::object{{"failed_auth_count", failures + 1}, {"failed_auth_at", now_s}});
      });
    }
    throw auth_failed("The request you have made requires authentication.");
  }
  if (password_expires && *password_expires <= now() && !option("ignore_password_expiry"))
    throw auth_failed("The password is expired and needs to be changed for user: " + user_id + ".");
  if (failures > 0) {
    db_->write([&](soci::session& s) {
      db::update(s, st::user, user_id, json::object{{"failed_auth_count", 0}, {"failed_auth_at", nullptr}});
    });
  }
  return std::move(*user);
}

IdentityService::Resolved IdentityService::resolve_scope(const std::string& user_id, const json::object* scope,
                                                          const std::string& default_project) {
  Resolved r;
  if (!scope) {
    if (default_project.empty()) return r;
    auto p = find(st::project, default_project);
    if (!p || !(*p)["enabled"].as_bool() || (*p)["is_domain"].as_bool()) return r;
    if (effective_roles(user_id, Scope{default_project, {}, false}).empty()) return r;
    r.project_id = default_project;
    return r;
  }
  if (auto* pv = nubo::find(*scope, "project")) {
    if (!pv->is_object()) throw BadRequest("Invalid scope: project must be an object.");
    auto& pref = pv->as_object();
    std::optional<json::object> project;
    if (auto id = id_field(pref, "scope.project")) {
      project = find(st::project, *id);
    } else if (auto name = get_string(pref, "name")) {
      auto* dref = nubo::find(pref, "domain");
      if (!dref || !dref->is_object()) throw BadRequest("'domain' is required when scoping to a project by name.");
      auto domain = find_domain(*this, dref->as_object());
      if (!domain) throw auth_failed("Could not find domain for the project.");
      auto rows =
          list(st::project, db::Query{}.eq("domain_id", std::string((*domain)["id"].as_string())).eq("name", *name));
      if (!rows.empty()) project = rows.front();
    } else {
      throw BadRequest("'id' or 'name' is required in scope.project.");
    }
    if (!project || (*project)["is_domain"].as_bool()) throw auth_failed("Could not find project.");
    if (!(*project)["enabled"].as_bool()) throw auth_failed("The project is disabled.");
    auto domain = find(st::project, (*project)["domain_id"].as_string());
    if (domain && !(*domain)["enabled"].as_bool()) throw auth_failed("The project's domain is disabled.");
    r.project_id = (*project)["id"].as_string();
  } else if (auto* dv = nubo::find(*scope, "domain")) {
    if (!dv->is_object()) throw BadRequest("Invalid scope: domain must be an object.");
    auto domain = find_domain(*this, dv->as_object());
    if (!domain) throw auth_failed("Could not find domain.");
    if (!(*domain)["enabled"].as_bool()) throw auth_failed("The domain is disabled.");
    r.domain_id = (*domain)["id"].as_string();
  } else if (auto* sv = nubo::find(*scope, "system")) {
    if (!sv->is_object() || !bool_or(sv->as_object(), "all", false)) throw BadRequest("Invalid system scope.");
    r.system = true;
  } else {
    throw BadRequest("Invalid scope.");
  }
  if (effective_roles(user_id, Scope{r.project_id, r.domain_id, r.system}).empty())
    throw auth_failed("User " + user_id + " has no access to the requested scope.");
  return r;
}

IdentityService::Issued IdentityService::authenticate(const json::object& body) {
  auto& auth = object_field(body, "auth", "request body");
  auto& identity = object_field(auth, "identity", "auth");
  auto* mv = nubo::find(identity, "methods");
  if (!mv || !mv->is_array() || mv->as_array().empty()) throw BadRequest("'methods' is a required property in identity.");
  std::vector<std::string> methods;
  for (auto& m : mv->as_array()) {
    if (!m.is_string()) throw BadRequest("Invalid value in methods.");
    methods.emplace_back(m.as_string());
  }
  const json::object* scope = nullptr;
  if (auto* sv = nubo::find(auth, "scope")) {
    if (sv->is_string() && sv->as_string() == "unscoped") {
      scope = nullptr;
    } else if (!sv->is_object()) {
      throw BadRequest("Invalid scope.");
    } else {
      scope = &sv->as_object();
    }
  }

  std::string user_id, default_project;
  TokenPayload payload;
  std::optional<TokenPayload> parent;
  std::optional<json::object> app_cred;
  bool explicit_unscoped = false;
  if (auto* sv = nubo::find(auth, "scope"); sv && sv->is_string()) explicit_unscoped = true;
  auto same_user = [&](const std::string& id) {
    if (!user_id.empty() && user_id != id) throw auth_failed("Authentication methods identify different users.");
    user_id = id;
  };
  for (auto& method : methods) {
    if (method == "password") {
      auto user = check_password_auth(object_field(identity, "password", "identity"));
      same_user(std::string(user["id"].as_string()));
      if (user["default_project_id"].is_string()) default_project = user["default_project_id"].as_string();
    } else if (method == "token") {
      auto& t = object_field(identity, "token", "identity");
      auto id = get_string(t, "id");
      if (!id) throw BadRequest("'id' is a required property in token.");
      parent = parse(*id, false);
      if (!parent->application_credential_id.empty())
        throw Forbidden("A token created from an application credential cannot be used to create a new token.");
      if (!parent->trust_id.empty()) throw Forbidden("Trust-scoped tokens cannot be rescoped.");
      same_user(parent->user_id);
    } else if (method == "application_credential") {
      auto& ac = object_field(identity, "application_credential", "identity");
      auto secret = get_string(ac, "secret");
      if (!secret) throw BadRequest("'secret' is a required property in application_credential.");
      std::optional<json::object> row;
      if (auto id = id_field(ac, "application_credential")) {
        row = find(st::application_credential, *id);
      } else if (auto name = get_string(ac, "name")) {
        auto* uref = nubo::find(ac, "user");
        if (!uref || !uref->is_object()) throw BadRequest("'user' is required with an application credential name.");
        std::string uid = id_field(uref->as_object(), "application_credential.user").value_or("");
        if (uid.empty()) {
          auto uname = string_or(uref->as_object(), "name");
          auto* dref = nubo::find(uref->as_object(), "domain");
          if (dref && dref->is_object()) {
            auto domain = find_domain(*this, dref->as_object());
            if (domain) {
              auto rows = list(st::user, db::Query{}
                                             .eq("domain_id", std::string((*domain)["id"].as_string()))
                                             .eq("name", uname));
              if (!rows.empty()) uid = rows.front()["id"].as_string();
            }
          }
        }
        auto rows = list(st::application_credential, db::Query{}.eq("user_id", uid).eq("name", *name));
        if (!rows.empty()) row = rows.front();
      } else {
        throw BadRequest("'id' or 'name' is required in application_credential.");
      }
      if (!row || !verify_secret(*secret, (*row)["secret_hash"].as_string()))
        throw auth_failed("Invalid application credential.");
      if ((*row)["expires_at"].is_string()) {
        auto exp = parse_iso8601((*row)["expires_at"].as_string());
        if (exp && *exp <= now()) throw auth_failed("The application credential has expired.");
      }
      auto user = find(st::user, (*row)["user_id"].as_string());
      if (!user || !(*user)["enabled"].as_bool()) throw auth_failed();
      same_user(std::string((*row)["user_id"].as_string()));
      app_cred = std::move(row);
    } else {
      throw auth_failed("Attempted to authenticate with an unsupported method.");
    }
  }
  auto user = find(st::user, user_id);
  if (!user || !(*user)["enabled"].as_bool()) throw auth_failed();

  auto now_tp = now();
  auto issued = static_cast<std::int64_t>(std::floor(to_unix(now_tp)));
  payload.user_id = user_id;
  payload.issued_at = issued;
  payload.expires_at = to_unix(now_tp) + settings_.token_expiration;
  payload.audit_ids = {base64url_encode(random_bytes(16))};
  if (parent) {
    payload.expires_at = std::min(payload.expires_at, parent->expires_at);
    payload.audit_ids.push_back(parent->audit_ids.empty() ? payload.audit_ids[0] : parent->audit_ids.back());
    for (auto& m : parent->methods)
      if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
    if (!scope && !explicit_unscoped && (!parent->project_id.empty() || !parent->domain_id.empty() || parent->system))
      throw Forbidden("Rescoping a scoped token requires a scope.");
  }
  payload.methods = methods;
  const json::value* trust_ref = scope ? nubo::find(*scope, "OS-TRUST:trust") : nullptr;
  if (trust_ref) {
    if (app_cred) throw Forbidden("Application credentials cannot request a trust-scoped token.");
    if (!trust_ref->is_object()) throw BadRequest("Invalid scope: OS-TRUST:trust must be an object.");
    auto trust_id = string_or(trust_ref->as_object(), "id");
    auto trust = find(st::trust, trust_id);
    if (!trust) throw auth_failed("Could not find trust: " + trust_id + ".");
    if ((*trust)["expires_at"].is_string()) {
      auto exp = parse_iso8601((*trust)["expires_at"].as_string());
      if (exp && *exp <= now()) throw auth_failed("The trust has expired.");
    }
    if ((*trust)["remaining_uses"].is_int64() && (*trust)["remaining_uses"].as_int64() <= 0)
      throw auth_failed("The trust has no remaining uses.");
    if ((*trust)["trustee_user_id"].as_string() != user_id) throw Forbidden("The user is not the trustee.");
    auto trustor = find(st::user, (*trust)["trustor_user_id"].as_string());
    if (!trustor || !(*trustor)["enabled"].as_bool()) throw auth_failed("The trustor is disabled or gone.");
    if (!(*trust)["project_id"].is_string()) throw Forbidden("The trust is not scoped to a project.");
    payload.trust_id = trust_id;
    payload.project_id = (*trust)["project_id"].as_string();
    if ((*trust)["impersonation"].as_bool()) payload.user_id = (*trust)["trustor_user_id"].as_string();
    if ((*trust)["remaining_uses"].is_int64())
      write([&](soci::session& ss) {
        db::execute(ss, "UPDATE trust SET remaining_uses = remaining_uses - 1 WHERE id = :p0", {trust_id});
      });
  } else if (app_cred) {
    if (scope) {
      auto* pv = nubo::find(*scope, "project");
      if (!pv || !pv->is_object() || string_or(pv->as_object(), "id") != (*app_cred)["project_id"].as_string())
        throw auth_failed("Application credentials can only be scoped to their project.");
    }
    payload.project_id = (*app_cred)["project_id"].as_string();
    payload.application_credential_id = (*app_cred)["id"].as_string();
  } else {
    auto r = resolve_scope(user_id, scope, explicit_unscoped ? std::string() : default_project);
    payload.project_id = r.project_id;
    payload.domain_id = r.domain_id;
    payload.system = r.system;
  }
  Issued out;
  out.token = formatter_.create(payload, static_cast<std::uint64_t>(issued));
  out.body = render(payload, true);
  return out;
}

TokenPayload IdentityService::parse(std::string_view token, bool allow_expired) {
  // Decrypted payloads are kept (they never change for a token); expiry and revocation are
  // checked on every call.
  std::optional<TokenPayload> p;
  {
    std::lock_guard lock(cache_mu_);
    auto it = payload_cache_.find(std::string(token));
    if (it != payload_cache_.end()) p = it->second;
  }
  if (!p) {
    p = formatter_.parse(token);
    if (!p) throw token_not_found();
    std::lock_guard lock(cache_mu_);
    if (payload_cache_.size() > 10000) payload_cache_.clear();
    payload_cache_.emplace(std::string(token), *p);
  }
  double now_s = to_unix(now());
  if (p->expires_at <= now_s) {
    if (!allow_expired || p->expires_at + settings_.expired_token_window <= now_s) throw token_not_found();
  }
  if (revoked(*p)) throw token_not_found();
  return *p;
}

bool IdentityService::revoked(const TokenPayload& p) {
  std::shared_lock lock(revocation_mu_);
  for (auto& e : revocations_) {
    if (static_cast<double>(p.issued_at) > e.issued_before) continue;
    if (!e.user_id.empty() && e.user_id != p.user_id) continue;
    if (!e.project_id.empty() && e.project_id != p.project_id) continue;
    if (!e.domain_id.empty() && e.domain_id != p.domain_id) continue;
    if (!e.trust_id.empty() && e.trust_id != p.trust_id) continue;
    if (!e.audit_id.empty() && std::find(p.audit_ids.begin(), p.audit_ids.end(), e.audit_id) == p.audit_ids.end())
      continue;
    return true;
  }
  return false;
}

void IdentityService::load_revocations() {
  std::vector<json::object> rows;
  double horizon = to_unix(now()) - settings_.token_expiration - settings_.expired_token_window;
  db_->write([&](soci::session& s) {
    // Events older than any live token can no longer match anything.
    db::Query old;
    old.where.push_back({"revoked_at", "<", {std::to_string(horizon)}});
    db::remove(s, st::revocation_event, old);
    rows = db::select(s, st::revocation_event);
  });
  std::vector<RevocationEvent> events;
  for (auto& r : rows) {
    auto str = [&](const char* k) { return r[k].is_string() ? std::string(r[k].as_string()) : std::string(); };
    events.push_back({str("user_id"), str("project_id"), str("domain_id"), str("audit_id"), str("trust_id"),
                      r["issued_before"].as_double()});
  }
  std::unique_lock lock(revocation_mu_);
  revocations_ = std::move(events);
}

void IdentityService::revoke(const std::string& user_id, const std::string& project_id, const std::string& domain_id,
                             const std::string& audit_id, const std::string& trust_id) {
  double now_s = to_unix(now());
  RevocationEvent e{user_id, project_id, domain_id, audit_id, trust_id, floor_seconds(now_s)};
  auto opt = [](const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); };
  write([&](soci::session& s) {
    db::insert(s, st::revocation_event,
               json::object{{"id", uuid4_hex()},
                            {"user_id", opt(user_id)},
                            {"project_id", opt(project_id)},
                            {"domain_id", opt(domain_id)},
                            {"role_id", nullptr},
                            {"trust_id", opt(trust_id)},
                            {"audit_id", opt(audit_id)},
                            {"issued_before", e.issued_before},
                            {"revoked_at", now_s}});
  });
  std::unique_lock lock(revocation_mu_);
  revocations_.push_back(std::move(e));
}

void IdentityService::revoke_token(std::string_view token) {
  auto p = parse(token, false);
  revoke({}, {}, {}, p.audit_ids.front());
}

json::object IdentityService::render(const TokenPayload& p, bool with_catalog) {
  auto user = find(st::user, p.user_id);
  if (!user || !(*user)["enabled"].as_bool()) throw token_not_found();
  auto user_domain = find(st::project, (*user)["domain_id"].as_string());
  if (!user_domain || !(*user_domain)["enabled"].as_bool()) throw token_not_found();
  json::object t;
  json::array methods;
  for (auto& m : p.methods) methods.emplace_back(m);
  t["methods"] = std::move(methods);
  t["user"] = json::object{{"domain", json::object{{"id", (*user)["domain_id"]}, {"name", (*user_domain)["name"]}}},
                           {"id", p.user_id},
                           {"name", (*user)["name"]},
                           {"password_expires_at", nullptr}};
  json::array audit;
  for (auto& a : p.audit_ids) audit.emplace_back(a);
  t["audit_ids"] = std::move(audit);
  t["expires_at"] = iso8601(from_unix(p.expires_at));
  t["issued_at"] = iso8601(from_unix(static_cast<double>(p.issued_at)));
  bool scoped = !p.project_id.empty() || !p.domain_id.empty() || p.system;
  if (!scoped) return json::object{{"token", std::move(t)}};

  std::vector<json::object> roles;
  if (!p.project_id.empty()) {
    auto project = find(st::project, p.project_id);
    if (!project || !(*project)["enabled"].as_bool()) throw token_not_found();
    auto pdomain = find(st::project, (*project)["domain_id"].as_string());
    if (!pdomain || !(*pdomain)["enabled"].as_bool()) throw token_not_found();
    t["project"] = json::object{{"domain", json::object{{"id", (*pdomain)["id"]}, {"name", (*pdomain)["name"]}}},
                                {"id", p.project_id},
                                {"name", (*project)["name"]}};
    t["is_domain"] = false;
    if (p.trust_id.empty()) {
      roles = effective_roles(p.user_id, Scope{p.project_id, {}, false});
    } else {
      // A trust delegates its roles (and what they imply) as long as the trustor still holds them.
      auto trust = find(st::trust, p.trust_id);
      if (!trust) throw token_not_found();
      if ((*trust)["expires_at"].is_string()) {
        auto exp = parse_iso8601((*trust)["expires_at"].as_string());
        if (exp && *exp <= now()) throw token_not_found();
      }
      std::string trustor((*trust)["trustor_user_id"].as_string());
      std::vector<std::string> delegated;
      if ((*trust)["roles"].is_array())
        for (auto& r : (*trust)["roles"].as_array())
          if (r.is_object() && r.as_object().contains("id")) delegated.emplace_back(r.as_object().at("id").as_string());
      delegated = expand_implied(delegated);
      roles = effective_roles(trustor, Scope{p.project_id, {}, false});
      std::erase_if(roles, [&](const json::object& r) {
        return std::find(delegated.begin(), delegated.end(), std::string(r.at("id").as_string())) == delegated.end();
      });
      t["OS-TRUST:trust"] = json::object{{"id", p.trust_id},
                                         {"impersonation", (*trust)["impersonation"]},
                                         {"trustee_user", json::object{{"id", (*trust)["trustee_user_id"]}}},
                                         {"trustor_user", json::object{{"id", trustor}}}};
    }
  } else if (!p.domain_id.empty()) {
    auto domain = find(st::project, p.domain_id);
    if (!domain || !(*domain)["enabled"].as_bool()) throw token_not_found();
    t["domain"] = json::object{{"id", p.domain_id}, {"name", (*domain)["name"]}};
    roles = effective_roles(p.user_id, Scope{{}, p.domain_id, false});
  } else {
    t["system"] = json::object{{"all", true}};
    roles = effective_roles(p.user_id, Scope{{}, {}, true});
  }
  if (!p.application_credential_id.empty()) {
    auto ac = find(st::application_credential, p.application_credential_id);
    if (!ac) throw token_not_found();
    std::vector<std::string> allowed;
    if ((*ac)["roles"].is_array())
      for (auto& r : (*ac)["roles"].as_array()) allowed.emplace_back(r.as_object().at("id").as_string());
    std::erase_if(roles, [&](const json::object& r) {
      return std::find(allowed.begin(), allowed.end(), std::string(r.at("id").as_string())) == allowed.end();
    });
    json::object acv{{"id", (*ac)["id"]}, {"name", (*ac)["name"]}, {"restricted", !(*ac)["unrestricted"].as_bool()}};
    t["application_credential"] = std::move(acv);
  }
  if (roles.empty()) throw token_not_found();
  json::array rv;
  for (auto& r : roles) rv.push_back(json::object{{"id", r["id"]}, {"name", r["name"]}});
  t["roles"] = std::move(rv);
  if (with_catalog) t["catalog"] = catalog(p.project_id, p.user_id);
  return json::object{{"token", std::move(t)}};
}

json::object IdentityService::validate_body(std::string_view token, bool with_catalog, bool allow_expired) {
  auto p = parse(token, allow_expired);
  return render(p, with_catalog);
}

std::string IdentityService::validate_text(std::string_view token, bool with_catalog, bool allow_expired) {
  auto p = parse(token, allow_expired);  // expiry and revocation are checked on every call
  auto gen = generation_.load(std::memory_order_relaxed);
  std::string key(token);
  key += with_catalog ? "#c" : "#n";
  {
    std::lock_guard lock(cache_mu_);
    auto it = body_cache_.find(key);
    if (it != body_cache_.end() && it->second.generation == gen) return it->second.text;
  }
  auto text = json::serialize(render(p, with_catalog));
  std::lock_guard lock(cache_mu_);
  if (body_cache_.size() > 10000) body_cache_.clear();
  body_cache_[key] = BodyEntry{gen, text};
  return text;
}

std::optional<std::string> IdentityService::cached_text(std::string_view token, bool with_catalog) {
  parse(token, false);
  auto gen = generation_.load(std::memory_order_relaxed);
  std::string key(token);
  key += with_catalog ? "#c" : "#n";
  std::lock_guard lock(cache_mu_);
  auto it = body_cache_.find(key);
  if (it != body_cache_.end() && it->second.generation == gen) return it->second.text;
  return std::nullopt;
}

std::optional<AuthContext> IdentityService::validate_cached(std::string_view token) {
  auto gen = generation_.load(std::memory_order_relaxed);
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(std::string(token));
  if (it == cache_.end() || it->second.generation != gen) return std::nullopt;
  if (it->second.expires_at <= to_unix(now())) return std::nullopt;
  return it->second.context;
}

std::string IdentityService::token_user(std::string_view token, bool allow_expired) {
  return parse(token, allow_expired).user_id;
}

AuthContext IdentityService::validate(std::string_view token, bool allow_expired) {
  auto gen = generation_.load(std::memory_order_relaxed);
  std::string key(token);
  if (!allow_expired)
    if (auto cached = validate_cached(token)) return std::move(*cached);
  TokenPayload p;
  json::object body;
  try {
    p = parse(token, allow_expired);
    body = render(p, false);
  } catch (const ApiError&) {
    throw Unauthorized("The request you have made requires authentication.");
  }
  auto c = auth_context_from_token(body, key);
  if (!allow_expired) {
    std::lock_guard lock(cache_mu_);
    if (cache_.size() > 10000) cache_.clear();
    cache_[key] = CacheEntry{gen, c, p.expires_at};
  }
  return c;
}

}  // namespace nubo::identity
