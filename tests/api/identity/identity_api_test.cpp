// The identity API over real HTTP: the service runs in-process on port 0 with a temporary state
// directory (SQLite, or PostgreSQL when NUBO_TEST_DATABASE names one).
#include "common/auth_remote.hpp"
#include "common/config.hpp"
#include "tests/api/support/identity_cloud.hpp"
#include "common/http/client.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace nubo;
namespace fs = std::filesystem;

namespace {

using apitest::Reply;

using Cloud = apitest::IdentityCloud;
using apitest::kPassword;

void expect_keystone_error(const Reply& r, int status) {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.contains("error")) << r.raw;
  auto& e = r.body.at("error").as_object();
  EXPECT_EQ(e.at("code").as_int64(), status);
  EXPECT_TRUE(e.at("title").is_string());
  EXPECT_TRUE(e.at("message").is_string());
  EXPECT_EQ(r.headers.get_or("Content-Type"), "application/json");
}

}  // namespace

TEST(IdentityApi, VersionDiscovery) {
  Cloud c;
  auto root = c.call("GET", "/");
  EXPECT_EQ(root.status, 300);
  auto& values = root.body.at("versions").as_object().at("values").as_array();
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].as_object().at("id").as_string(), "v3.14");
  auto v3 = c.call("GET", "/v3");
  EXPECT_EQ(v3.status, 200);
  EXPECT_EQ(v3.body.at("version").as_object().at("status").as_string(), "stable");
  EXPECT_FALSE(v3.headers.get_or("x-openstack-request-id").empty());
}

TEST(IdentityApi, PasswordTokenIssueValidateRevoke) {
  Cloud c;
  auto r = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", kPassword, "admin"));
  ASSERT_EQ(r.status, 201) << r.raw;
  std::string token(*r.headers.get("X-Subject-Token"));
  auto& t = r.body.at("token").as_object();
  EXPECT_EQ(t.at("methods").as_array()[0].as_string(), "password");
  EXPECT_EQ(t.at("project").as_object().at("name").as_string(), "admin");
  EXPECT_EQ(t.at("user").as_object().at("domain").as_object().at("name").as_string(), "Default");
  bool admin = false;
  for (auto& role : t.at("roles").as_array()) admin |= role.as_object().at("name").as_string() == "admin";
  EXPECT_TRUE(admin);
  ASSERT_FALSE(t.at("catalog").as_array().empty());
  EXPECT_EQ(t.at("catalog").as_array()[0].as_object().at("type").as_string(), "identity");

  auto v = c.call("GET", "/v3/auth/tokens", token, "", {{"X-Subject-Token", token}});
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(json::serialize(v.body), json::serialize(r.body));  // the same body as at issue
  EXPECT_EQ(c.call("HEAD", "/v3/auth/tokens", token, "", {{"X-Subject-Token", token}}).status, 200);

  auto other = c.token();
  EXPECT_EQ(c.call("DELETE", "/v3/auth/tokens", other, "", {{"X-Subject-Token", token}}).status, 204);
  expect_keystone_error(c.call("GET", "/v3/auth/tokens", other, "", {{"X-Subject-Token", token}}), 404);
  expect_keystone_error(c.call("GET", "/v3/projects", token), 401);  // the revoked token no longer authenticates
  EXPECT_EQ(c.call("GET", "/v3/projects", other).status, 200);        // only that token was revoked
}

TEST(IdentityApi, UnscopedTokenHasNoCatalogAndRescopes) {
  Cloud c;
  auto r = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", kPassword));
  ASSERT_EQ(r.status, 201);
  auto& t = r.body.at("token").as_object();
  EXPECT_FALSE(t.contains("catalog"));
  EXPECT_FALSE(t.contains("roles"));
  EXPECT_FALSE(t.contains("project"));
  std::string unscoped(*r.headers.get("X-Subject-Token"));
  json::object rescope{{"auth", json::object{{"identity", json::object{{"methods", json::array{"token"}},
                                                                       {"token", json::object{{"id", unscoped}}}}},
                                             {"scope", json::object{{"system", json::object{{"all", true}}}}}}}};
  auto s = c.call("POST", "/v3/auth/tokens", "", rescope);
  ASSERT_EQ(s.status, 201) << s.raw;
  auto& st = s.body.at("token").as_object();
  EXPECT_EQ(st.at("expires_at"), t.at("expires_at"));
  EXPECT_EQ(st.at("system").as_object().at("all").as_bool(), true);
  EXPECT_EQ(st.at("methods").as_array().size(), 2u);
  EXPECT_EQ(st.at("audit_ids").as_array().size(), 2u);
}

TEST(IdentityApi, BadInputGetsKeystoneErrors) {
  Cloud c;
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", std::string("{not json")), 400);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", std::string("[]")), 400);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", std::string("{\"auth\": 5}")), 400);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", std::string("{\"auth\": {\"identity\": {\"methods\": \"password\"}}}")), 400);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", "wrong")), 401);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("nobody", "x")), 401);
  expect_keystone_error(c.call("GET", "/v3/projects"), 401);
  expect_keystone_error(c.call("GET", "/v3/projects", "gAAAAABnot-a-real-token"), 401);
  auto token = c.token();
  expect_keystone_error(c.call("GET", "/v3/users/" + uuid4_hex(), token), 404);
  expect_keystone_error(c.call("GET", "/v3/no-such-collection", token), 404);
  expect_keystone_error(c.call("PUT", "/v3/auth/tokens", token), 405);
  std::string huge = "{\"auth\": \"" + std::string(200 * 1024, 'x') + "\"}";
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", huge), 413);
  // The server is still healthy afterwards.
  EXPECT_EQ(c.call("GET", "/v3").status, 200);
}

TEST(IdentityApi, ProjectUserGrantAndPolicy) {
  Cloud c;
  auto admin = c.token();
  auto p = c.call("POST", "/v3/projects", admin, json::object{{"project", json::object{{"name", "demo"}}}});
  ASSERT_EQ(p.status, 201) << p.raw;
  std::string project_id(p.body.at("project").as_object().at("id").as_string());
  EXPECT_EQ(p.body.at("project").as_object().at("parent_id").as_string(), "default");
  auto u = c.call("POST", "/v3/users", admin,
                  json::object{{"user", json::object{{"name", "alice"}, {"password", "alice-pw-1"}}}});
  ASSERT_EQ(u.status, 201) << u.raw;
  EXPECT_FALSE(u.body.at("user").as_object().contains("password"));
  std::string user_id(u.body.at("user").as_object().at("id").as_string());
  auto roles = c.call("GET", "/v3/roles?name=member", admin);
  ASSERT_EQ(roles.status, 200);
  std::string member(roles.body.at("roles").as_array()[0].as_object().at("id").as_string());
  EXPECT_EQ(c.call("PUT", "/v3/projects/" + project_id + "/users/" + user_id + "/roles/" + member, admin).status, 204);
  EXPECT_EQ(c.call("PUT", "/v3/projects/" + project_id + "/users/" + user_id + "/roles/" + member, admin).status, 204);

  auto alice = c.token("alice", "alice-pw-1", "demo");
  ASSERT_FALSE(alice.empty());
  expect_keystone_error(c.call("GET", "/v3/projects", alice), 403);
  expect_keystone_error(c.call("POST", "/v3/projects", alice, json::object{{"project", json::object{{"name", "x"}}}}), 403);
  auto mine = c.call("GET", "/v3/users/" + user_id + "/projects", alice);
  EXPECT_EQ(mine.status, 200);
  EXPECT_EQ(mine.body.at("projects").as_array().size(), 1u);
  auto eff = c.call("GET", "/v3/role_assignments?user.id=" + user_id + "&effective", admin);
  ASSERT_EQ(eff.status, 200) << eff.raw;
  EXPECT_EQ(eff.body.at("role_assignments").as_array().size(), 2u);  // member and its implied reader

  // Removing the grant ends the scoped token's authority.
  EXPECT_EQ(c.call("DELETE", "/v3/projects/" + project_id + "/users/" + user_id + "/roles/" + member, admin).status, 204);
  expect_keystone_error(c.call("GET", "/v3/users/" + user_id + "/projects", alice), 401);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("alice", "alice-pw-1", "demo")), 401);
}

TEST(IdentityApi, LockoutAndPasswordChange) {
  Cloud c;
  auto admin = c.token();
  auto u = c.call("POST", "/v3/users", admin, json::object{{"user", json::object{{"name", "bob"}, {"password", "pw-one"}}}});
  ASSERT_EQ(u.status, 201);
  std::string id(u.body.at("user").as_object().at("id").as_string());
  auto bob = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "pw-one"));
  ASSERT_EQ(bob.status, 201);
  std::string bob_token(*bob.headers.get("X-Subject-Token"));

  // Self-service change: history enforced, old tokens revoked.
  json::object same{{"user", json::object{{"password", "pw-one"}, {"original_password", "pw-one"}}}};
  expect_keystone_error(c.call("POST", "/v3/users/" + id + "/password", bob_token, same), 400);
  json::object wrong{{"user", json::object{{"password", "pw-two"}, {"original_password", "nope"}}}};
  expect_keystone_error(c.call("POST", "/v3/users/" + id + "/password", bob_token, wrong), 401);
  json::object change{{"user", json::object{{"password", "pw-two"}, {"original_password", "pw-one"}}}};
  EXPECT_EQ(c.call("POST", "/v3/users/" + id + "/password", bob_token, change).status, 204);
  expect_keystone_error(c.call("GET", "/v3/auth/tokens", admin, "", {{"X-Subject-Token", bob_token}}), 404);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "pw-two")).status, 201);

  // Two failures lock the account for lockout_duration (2 s), even for the right password.
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "bad")), 401);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "bad")), 401);
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "pw-two")), 401);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("bob", "pw-two")).status, 201);
}

TEST(IdentityApi, ApplicationCredentialAuthenticates) {
  Cloud c;
  auto admin_reply = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", kPassword, "admin"));
  std::string admin(*admin_reply.headers.get("X-Subject-Token"));
  std::string user_id(admin_reply.body.at("token").as_object().at("user").as_object().at("id").as_string());
  std::string project_id(admin_reply.body.at("token").as_object().at("project").as_object().at("id").as_string());
  auto ac = c.call("POST", "/v3/users/" + user_id + "/application_credentials", admin,
                   json::object{{"application_credential", json::object{{"name", "ci"}}}});
  ASSERT_EQ(ac.status, 201) << ac.raw;
  auto& body = ac.body.at("application_credential").as_object();
  json::object auth{{"auth", json::object{{"identity", json::object{{"methods", json::array{"application_credential"}},
                                                                    {"application_credential",
                                                                     json::object{{"id", body.at("id")},
                                                                                  {"secret", body.at("secret")}}}}}}}};
  auto r = c.call("POST", "/v3/auth/tokens", "", auth);
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.body.at("token").as_object().at("project").as_object().at("id").as_string(), project_id);
  EXPECT_TRUE(r.body.at("token").as_object().contains("application_credential"));
  auto shown = c.call("GET", "/v3/users/" + user_id + "/application_credentials/" +
                                 std::string(body.at("id").as_string()), admin);
  EXPECT_EQ(shown.status, 200);
  EXPECT_FALSE(shown.body.at("application_credential").as_object().contains("secret"));
  auth["auth"].as_object()["identity"].as_object()["application_credential"].as_object()["secret"] = "wrong";
  expect_keystone_error(c.call("POST", "/v3/auth/tokens", "", auth), 401);
}

TEST(IdentityApi, RemoteValidatorChecksTokensOverHttp) {
  Cloud c;
  auto session = [&] {
    return std::make_shared<ServiceSession>(ServiceCredentials{c.url() + "/v3", "admin", kPassword, "admin"});
  };
  RemoteTokenValidator v(session());
  auto token = c.token();
  auto ctx = v.validate(token);
  EXPECT_EQ(ctx.project_name, "admin");
  EXPECT_TRUE(ctx.has_role("admin"));
  EXPECT_TRUE(v.validate_cached(token).has_value());
  EXPECT_THROW(v.validate("gAAAAAB-bogus"), ApiError);
  // Revocation is seen once the cache entry is gone: a fresh validator refuses the token.
  auto other = c.token();
  EXPECT_EQ(c.call("DELETE", "/v3/auth/tokens", other, "", {{"X-Subject-Token", token}}).status, 204);
  RemoteTokenValidator fresh(session());
  EXPECT_THROW(fresh.validate(token), ApiError);
}

// The limits a service enforces: the project's own limit, else the registered default, for the
// service's region or none; the same in-process and over the API.
TEST(IdentityApi, LimitSourcesAgreeInProcessAndRemote) {
  Cloud c;
  auto admin = c.token();
  auto id_of = [](const Reply& r, const char* kind) {
    EXPECT_EQ(r.status, 201) << r.raw;
    auto& b = r.body.at(kind);
    return std::string((b.is_array() ? b.as_array().at(0) : b).as_object().at("id").as_string());
  };
  auto service = id_of(c.call("POST", "/v3/services", admin,
                              json::object{{"service", json::object{{"type", "image"}, {"name", "glance"}}}}),
                       "service");
  auto other = id_of(c.call("POST", "/v3/services", admin,
                            json::object{{"service", json::object{{"type", "volume"}, {"name", "cinder"}}}}),
                     "service");
  auto project = id_of(c.call("POST", "/v3/projects", admin, json::object{{"project", json::object{{"name", "p"}}}}),
                       "project");
  auto reg = [&](const std::string& svc, const char* name, int value, bool region) {
    json::object l{{"service_id", svc}, {"resource_name", name}, {"default_limit", value}};
    if (region) l["region_id"] = "RegionOne";
    id_of(c.call("POST", "/v3/registered_limits", admin, json::object{{"registered_limits", json::array{l}}}),
          "registered_limits");
  };
  reg(service, "image_count_total", 100, true);
  reg(service, "image_size_total", 1000, false);
  reg(other, "volumes", 7, true);
  json::object pl{{"service_id", service}, {"project_id", project}, {"resource_name", "image_count_total"},
                  {"resource_limit", 3}, {"region_id", "RegionOne"}};
  id_of(c.call("POST", "/v3/limits", admin, json::object{{"limits", json::array{pl}}}), "limits");

  std::map<std::string, std::int64_t> want{{"image_count_total", 3}, {"image_size_total", 1000}};
  EXPECT_EQ(c.service().project_limits("image", "RegionOne", project), want);
  RemoteLimitSource remote(
      std::make_shared<ServiceSession>(ServiceCredentials{c.url() + "/v3", "admin", kPassword, "admin"}));
  EXPECT_EQ(remote.project_limits("image", "RegionOne", project), want);
  // Another project gets the defaults; another region only the limits without a region.
  std::map<std::string, std::int64_t> defaults{{"image_count_total", 100}, {"image_size_total", 1000}};
  EXPECT_EQ(remote.project_limits("image", "RegionOne", "someone-else"), defaults);
  EXPECT_EQ(c.service().project_limits("image", "RegionTwo", project),
            (std::map<std::string, std::int64_t>{{"image_size_total", 1000}}));
  EXPECT_TRUE(remote.project_limits("network", "RegionOne", project).empty());
}

TEST(IdentityApi, TrustScopedTokenCarriesOnlyDelegatedRoles) {
  Cloud c;
  auto admin_reply = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", kPassword, "admin"));
  std::string admin(*admin_reply.headers.get("X-Subject-Token"));
  auto& at = admin_reply.body.at("token").as_object();
  std::string admin_id(at.at("user").as_object().at("id").as_string());
  std::string project_id(at.at("project").as_object().at("id").as_string());
  auto u = c.call("POST", "/v3/users", admin, json::object{{"user", json::object{{"name", "heat"}, {"password", "heat-pw"}}}});
  std::string trustee(u.body.at("user").as_object().at("id").as_string());
  auto t = c.call("POST", "/v3/OS-TRUST/trusts", admin,
                  json::object{{"trust", json::object{{"trustor_user_id", admin_id},
                                                      {"trustee_user_id", trustee},
                                                      {"project_id", project_id},
                                                      {"impersonation", false},
                                                      {"roles", json::array{json::object{{"name", "member"}}}}}}});
  ASSERT_EQ(t.status, 201) << t.raw;
  std::string trust_id(t.body.at("trust").as_object().at("id").as_string());
  auto auth = Cloud::password_auth("heat", "heat-pw");
  auth["auth"].as_object()["scope"] = json::object{{"OS-TRUST:trust", json::object{{"id", trust_id}}}};
  auto r = c.call("POST", "/v3/auth/tokens", "", auth);
  ASSERT_EQ(r.status, 201) << r.raw;
  auto& tok = r.body.at("token").as_object();
  EXPECT_EQ(tok.at("project").as_object().at("id").as_string(), project_id);
  EXPECT_EQ(tok.at("user").as_object().at("id").as_string(), trustee);
  EXPECT_EQ(tok.at("OS-TRUST:trust").as_object().at("id").as_string(), trust_id);
  std::set<std::string> names;
  for (auto& role : tok.at("roles").as_array()) names.insert(std::string(role.as_object().at("name").as_string()));
  EXPECT_EQ(names, (std::set<std::string>{"member", "reader"}));
  std::string trust_token(*r.headers.get("X-Subject-Token"));
  EXPECT_EQ(c.call("DELETE", "/v3/OS-TRUST/trusts/" + trust_id, admin).status, 204);
  expect_keystone_error(c.call("GET", "/v3/auth/tokens", admin, "", {{"X-Subject-Token", trust_token}}), 404);
}

TEST(IdentityApi, PolicyFileOverridesDefaults) {
  auto dir = fs::temp_directory_path() / ("nubo-policy-" + uuid4_hex());
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "policy.yaml");
    f << "\"identity:list_projects\": \"!\"\n\"identity:list_users\": \"role:admin and system_scope:all\"\n";
  }
  identity::IdentitySettings settings;
  settings.bcrypt_cost = 4;
  settings.key_repository = (dir / "keys").string();
  auto svc = std::make_shared<identity::IdentityService>(db::Database::open("sqlite://:memory:"), settings);
  identity::BootstrapOptions boot;
  boot.admin_password = kPassword;
  identity::bootstrap(*svc, boot);
  Pipeline pipeline(identity::api::make_service_spec(svc, (dir / "policy.yaml").string()));
  auto issued = svc->authenticate(Cloud::password_auth("admin", kPassword, "admin"));
  auto call = [&](const std::string& path) {
    http::Request r;
    r.method = "GET";
    r.target = path;
    http::parse_target(r);
    r.headers.add("X-Auth-Token", issued.token);
    return pipeline.handle(r).status;
  };
  EXPECT_EQ(call("/v3/projects"), 403);
  EXPECT_EQ(call("/v3/users"), 403);  // project scope no longer enough
  EXPECT_EQ(call("/v3/roles"), 200);  // defaults still apply elsewhere
  fs::remove_all(dir);
}
