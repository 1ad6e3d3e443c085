#include "identity/bootstrap.hpp"

#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include "identity/service/identity_service.hpp"
#include "identity/store/schema.hpp"

namespace nubo::identity {

namespace st = store;

namespace {

std::string ensure_role(soci::session& ss, const std::string& name) {
  auto rows =
      db::select(ss, st::role, db::Query{}.eq("name", name).eq("domain_id", st::kNullDomain));
  if (!rows.empty()) return std::string(rows.front()["id"].as_string());
  auto id = uuid4_hex();
  db::insert(
      ss, st::role,
      json::object{
          {"id", id}, {"name", name}, {"domain_id", st::kNullDomain}, {"options", json::object{}}});
  return id;
}

void ensure_grant(soci::session& ss, const std::string& type, const std::string& actor,
                  const std::string& target, const std::string& role) {
  db::Query q;
  q.eq("type", type)
      .eq("actor_id", actor)
      .eq("target_id", target)
      .eq("role_id", role)
      .eq("inherited", "0");
  if (db::count(ss, st::assignment, q) == 0)
    db::insert(ss, st::assignment,
               json::object{{"type", type},
                            {"actor_id", actor},
                            {"target_id", target},
                            {"role_id", role},
                            {"inherited", false}});
}

std::string ensure_project(soci::session& ss, const std::string& name,
                           const std::string& domain_id) {
  auto rows = db::select(ss, st::project, db::Query{}.eq("name", name).eq("domain_id", domain_id));
  if (!rows.empty()) return std::string(rows.front()["id"].as_string());
  auto id = uuid4_hex();
  db::insert(ss, st::project,
             json::object{{"id", id},
                          {"name", name},
                          {"domain_id", domain_id},
                          {"parent_id", domain_id},
                          {"is_domain", false},
                          {"enabled", true},
                          {"description", "Bootstrap project for " + name}});
  return id;
}

}  // namespace

BootstrapResult bootstrap(IdentityService& s, const BootstrapOptions& o) {
  const std::string domain = s.settings().default_domain_id;
  std::string admin_user_id;
  BootstrapResult result;
  bool new_user = false;
  s.write([&](soci::session& ss) {
    if (!db::get(ss, st::project, domain))
      db::insert(ss, st::project,
                 json::object{{"id", domain},
                              {"name", "Default"},
                              {"domain_id", st::kRootDomain},
                              {"parent_id", nullptr},
                              {"is_domain", true},
                              {"enabled", true},
                              {"description", "The default domain"}});
    auto admin = ensure_role(ss, "admin");
    auto member = ensure_role(ss, "member");
    auto reader = ensure_role(ss, "reader");
    ensure_role(ss, "service");
    for (auto& role : o.roles) ensure_role(ss, role);
    for (auto& [prior, implied] : {std::pair{admin, member}, std::pair{member, reader}}) {
      db::Query q;
      q.eq("prior_role_id", prior).eq("implied_role_id", implied);
      if (db::count(ss, st::implied_role, q) == 0)
        db::insert(ss, st::implied_role,
                   json::object{{"prior_role_id", prior}, {"implied_role_id", implied}});
    }
    auto project = ensure_project(ss, o.admin_project, domain);
    result.admin_project_id = project;
    ensure_project(ss, o.service_project, domain);
    auto users =
        db::select(ss, st::user, db::Query{}.eq("name", o.admin_username).eq("domain_id", domain));
    if (users.empty()) {
      admin_user_id = uuid4_hex();
      new_user = true;
      db::insert(ss, st::user,
                 json::object{{"id", admin_user_id},
                              {"name", o.admin_username},
                              {"domain_id", domain},
                              {"enabled", true},
                              {"default_project_id", nullptr},
                              {"created_at", iso8601(s.now())},
                              {"failed_auth_count", 0},
                              {"options", json::object{}}});
    } else {
      admin_user_id = users.front()["id"].as_string();
    }
    ensure_grant(ss, "UserProject", admin_user_id, project, admin);
    ensure_grant(ss, "UserSystem", admin_user_id, "system", admin);
    if (!db::get(ss, st::region, o.region))
      db::insert(
          ss, st::region,
          json::object{{"id", o.region}, {"description", ""}, {"parent_region_id", nullptr}});
    for (auto& entry : o.catalog) {
      auto services = db::select(ss, st::service, db::Query{}.eq("type", entry.type));
      std::string service_id;
      for (auto& svc : services)
        if (svc["name"] == json::value(entry.name)) service_id = svc["id"].as_string();
      if (service_id.empty()) {
        service_id = uuid4_hex();
        db::insert(
            ss, st::service,
            json::object{
                {"id", service_id}, {"type", entry.type}, {"enabled", true}, {"name", entry.name}});
      }
      for (const char* iface : {"public", "internal", "admin"}) {
        db::Query q;
        q.eq("service_id", service_id).eq("interface", iface).eq("region_id", o.region);
        auto eps = db::select(ss, st::endpoint, q);
        if (eps.empty()) {
          db::insert(ss, st::endpoint,
                     json::object{{"id", uuid4_hex()},
                                  {"service_id", service_id},
                                  {"interface", iface},
                                  {"region_id", o.region},
                                  {"url", entry.url},
                                  {"enabled", true}});
        } else if (eps.front()["url"] != json::value(entry.url)) {
          db::update(ss, st::endpoint, eps.front()["id"].as_string(),
                     json::object{{"url", entry.url}});
        }
      }
      for (auto& [resource, value] : entry.registered_limits) {
        db::Query q;
        q.eq("service_id", service_id).eq("resource_name", resource);
        if (db::count(ss, st::registered_limit, q) == 0)
          db::insert(ss, st::registered_limit,
                     json::object{{"id", uuid4_hex()},
                                  {"service_id", service_id},
                                  {"region_id", o.region},
                                  {"resource_name", resource},
                                  {"default_limit", value},
                                  {"description", nullptr}});
      }
    }
  });
  if (new_user && !o.admin_password.empty()) {
    s.set_password(admin_user_id, o.admin_password, false);
    spdlog::info("bootstrap: created user {} in domain {}", o.admin_username, domain);
  }
  return result;
}

}  // namespace nubo::identity
