// The compute API over real HTTP: identity in-process (tests/api/support), compute beside it on
// port 0, validating tokens in-process as in the all-in-one.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "compute/api/service.hpp"
#include "compute/setup.hpp"
#include "tests/api/support/identity_cloud.hpp"

using namespace nubo;
using apitest::Reply;
namespace fs = std::filesystem;

namespace {

class Cloud : public apitest::IdentityCloud {
 public:
  explicit Cloud(int fake_hosts = 0) {
    dir_ = fs::temp_directory_path() / ("nubo-compute-api-" + uuid4_hex());
    auto config = Config::parse(
        "[compute]\ndriver = fake\nfake_hosts = " + std::to_string(fake_hosts) + "\n");
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url)
      config.set("database", "compute_connection", url);
    compute_ = compute::open_compute_service(config, dir_.string());
    for (auto& driver : compute::make_drivers(config, dir_.string()))
      compute_->register_compute_host(driver->resources());
    runtime_ = std::make_unique<Runtime>(1, 4);
    pipeline_ =
        std::make_shared<Pipeline>(compute::api::make_service_spec(compute_, service_ptr()));
    ServerOptions opts;
    opts.render_error = [](int status, const std::string& m) {
      return render_nova_error(ApiError(status, m));
    };
    url_ = "http://127.0.0.1:" + std::to_string(listen_pipeline(*runtime_, opts, pipeline_));
    runtime_->start();
    admin_ = token();
  }
  ~Cloud() {
    runtime_->stop(std::chrono::seconds(2));
    fs::remove_all(dir_);
  }
  Reply nova(const std::string& method, const std::string& path, const std::string& token,
             const json::object& body = {}, const std::string& version = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!version.empty()) headers.push_back({"OpenStack-API-Version", "compute " + version});
    return client_.request(url_ + path, method, token, body.empty() ? "" : json::serialize(body),
                           body.empty() ? "" : "application/json", headers);
  }
  // Any body text, as an admin, at a microversion.
  Reply raw(const std::string& method, const std::string& path, const std::string& body,
            const std::string& version) {
    return client_.request(url_ + path, method, admin_, body,
                           body.empty() ? "" : "application/json",
                           {{"OpenStack-API-Version", "compute " + version}});
  }
  // A member of a fresh project.
  std::string member(const std::string& name) {
    auto p = call("POST", "/v3/projects", admin_,
                  json::object{{"project", json::object{{"name", name}}}});
    std::string project(p.body.at("project").as_object().at("id").as_string());
    auto u = call("POST", "/v3/users", admin_,
                  json::object{{"user", json::object{{"name", name}, {"password", "pw-" + name}}}});
    std::string user(u.body.at("user").as_object().at("id").as_string());
    auto roles = call("GET", "/v3/roles?name=member", admin_);
    std::string role(roles.body.at("roles").as_array()[0].as_object().at("id").as_string());
    call("PUT", "/v3/projects/" + project + "/users/" + user + "/roles/" + role, admin_);
    project_ids_[name] = project;
    return token(name, "pw-" + name, name);
  }
  const std::string& admin() const { return admin_; }
  std::string project(const std::string& name) { return project_ids_[name]; }

 private:
  fs::path dir_;
  std::shared_ptr<compute::ComputeService> compute_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Pipeline> pipeline_;
  std::string url_, admin_;
  std::map<std::string, std::string> project_ids_;
  apitest::ApiClient client_;
};

void expect_fault(const Reply& r, int status, const char* fault) {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.contains(fault)) << r.raw;
  EXPECT_EQ(r.body.at(fault).at("code"), status);
}

TEST(ComputeApi, VersionsAndMicroversions) {
  Cloud c;
  auto root = c.nova("GET", "/", "");
  ASSERT_EQ(root.status, 200) << root.raw;
  auto& versions = root.body.at("versions").as_array();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].at("version"), "2.96");
  auto plain = c.nova("GET", "/v2.1/flavors", c.admin());
  EXPECT_EQ(plain.headers.get_or("OpenStack-API-Version"), "compute 2.1");
  EXPECT_EQ(plain.headers.get_or("X-OpenStack-Nova-API-Version"), "2.1");
  auto v255 = c.nova("GET", "/v2.1/flavors", c.admin(), {}, "2.55");
  EXPECT_EQ(v255.headers.get_or("OpenStack-API-Version"), "compute 2.55");
  EXPECT_TRUE(v255.body.at("flavors").as_array()[0].as_object().contains("description"));
  EXPECT_FALSE(plain.body.at("flavors").as_array()[0].as_object().contains("description"));
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors", c.admin(), {}, "latest")
                .headers.get_or("OpenStack-API-Version"),
            "compute 2.96");
  expect_fault(c.nova("GET", "/v2.1/flavors", c.admin(), {}, "2.97"), 406, "computeFault");
  expect_fault(c.nova("GET", "/v2.1/flavors", c.admin(), {}, "two"), 400, "badRequest");
  // A route that exists only from a microversion is absent below it.
  json::object desc{{"flavor", json::object{{"description", "d"}}}};
  expect_fault(c.nova("PUT", "/v2.1/flavors/1", c.admin(), desc), 404, "itemNotFound");
  EXPECT_EQ(c.nova("PUT", "/v2.1/flavors/1", c.admin(), desc, "2.55").status, 200);
  expect_fault(c.nova("GET", "/v2.1/flavors", ""), 401, "unauthorized");
}

TEST(ComputeApi, FlavorsAccessAndExtraSpecs) {
  Cloud c;
  auto alice = c.member("alice");
  auto bob = c.member("bob");
  auto detail = c.nova("GET", "/v2.1/flavors/detail", alice);
  ASSERT_EQ(detail.status, 200);
  ASSERT_EQ(detail.body.at("flavors").as_array().size(), 5u);  // the defaults
  EXPECT_EQ(detail.body.at("flavors").as_array()[0].as_object().at("swap"), "");
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors/1", alice, {}, "2.75").body.at("flavor").at("swap"), 0);

  json::object flavor{{"flavor", json::object{{"name", "private"},
                                              {"ram", "256"},
                                              {"vcpus", 1},
                                              {"disk", 0},
                                              {"id", 42},
                                              {"os-flavor-access:is_public", "False"}}}};
  expect_fault(c.nova("POST", "/v2.1/flavors", alice, flavor), 403, "forbidden");
  auto created = c.nova("POST", "/v2.1/flavors", c.admin(), flavor);
  ASSERT_EQ(created.status, 200) << created.raw;
  EXPECT_EQ(created.body.at("flavor").at("id"), "42");
  EXPECT_EQ(created.body.at("flavor").at("ram"), 256);
  expect_fault(c.nova("POST", "/v2.1/flavors", c.admin(), flavor), 409, "conflictingRequest");
  json::object bad{
      {"flavor", json::object{{"name", "bad"}, {"ram", 0}, {"vcpus", 1}, {"disk", 0}}}};
  expect_fault(c.nova("POST", "/v2.1/flavors", c.admin(), bad), 400, "badRequest");

  expect_fault(c.nova("GET", "/v2.1/flavors/42", alice), 404, "itemNotFound");
  json::object add{{"addTenantAccess", json::object{{"tenant", c.project("alice")}}}};
  auto access = c.nova("POST", "/v2.1/flavors/42/action", c.admin(), add);
  ASSERT_EQ(access.status, 200) << access.raw;
  EXPECT_EQ(access.body.at("flavor_access").as_array().size(), 1u);
  expect_fault(c.nova("POST", "/v2.1/flavors/42/action", c.admin(), add), 409,
               "conflictingRequest");
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors/42", alice).status, 200);
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors", alice).body.at("flavors").as_array().size(), 6u);
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors", bob).body.at("flavors").as_array().size(), 5u);

  auto specs = c.nova("POST", "/v2.1/flavors/42/os-extra_specs", c.admin(),
                      json::object{{"extra_specs", json::object{{"hw:cpu_policy", "dedicated"}}}});
  ASSERT_EQ(specs.status, 200) << specs.raw;
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors/42/os-extra_specs/hw:cpu_policy", alice)
                .body.at("hw:cpu_policy"),
            "dedicated");
  EXPECT_EQ(c.nova("GET", "/v2.1/flavors/42", alice, {}, "2.61")
                .body.at("flavor")
                .at("extra_specs")
                .at("hw:cpu_policy"),
            "dedicated");
  EXPECT_EQ(c.nova("DELETE", "/v2.1/flavors/42/os-extra_specs/hw:cpu_policy", c.admin()).status,
            200);
  expect_fault(c.nova("DELETE", "/v2.1/flavors/42/os-extra_specs/hw:cpu_policy", c.admin()), 404,
               "itemNotFound");

  // Pages with a next link.
  auto page = c.nova("GET", "/v2.1/flavors?limit=2", c.admin());
  ASSERT_EQ(page.body.at("flavors").as_array().size(), 2u);
  std::string next(page.body.at("flavors_links").as_array()[0].at("href").as_string());
  EXPECT_NE(next.find("marker=2"), std::string::npos) << next;
  EXPECT_EQ(
      c.nova("GET", "/v2.1/flavors?marker=2", c.admin()).body.at("flavors").as_array()[0].at("id"),
      "3");
  EXPECT_EQ(c.nova("DELETE", "/v2.1/flavors/42", c.admin()).status, 202);
  expect_fault(c.nova("GET", "/v2.1/flavors/42", c.admin()), 404, "itemNotFound");
}

TEST(ComputeApi, Keypairs) {
  Cloud c;
  auto alice = c.member("alice");
  auto bob = c.member("bob");
  // An imported key's fingerprint is OpenSSH's MD5 form (`ssh-keygen -l -E md5`).
  const std::string pub =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDk1oyBsbwCcGNWU9UgI+Lr1zzkQP8mKecp1RDEO71bJ root@vm";
  auto imported =
      c.nova("POST", "/v2.1/os-keypairs", alice,
             json::object{{"keypair", json::object{{"name", "mine"}, {"public_key", pub}}}}, "2.2");
  ASSERT_EQ(imported.status, 201) << imported.raw;
  EXPECT_EQ(imported.body.at("keypair").at("fingerprint"),
            "6e:18:6f:b2:57:46:7e:46:59:f0:da:91:44:c1:d9:43");
  EXPECT_FALSE(imported.body.at("keypair").as_object().contains("private_key"));
  expect_fault(
      c.nova("POST", "/v2.1/os-keypairs", alice,
             json::object{{"keypair", json::object{{"name", "mine"}, {"public_key", pub}}}}),
      409, "conflictingRequest");
  expect_fault(
      c.nova("POST", "/v2.1/os-keypairs", alice,
             json::object{{"keypair",
                           json::object{{"name", "junk"}, {"public_key", "ssh-rsa AAAAnotakey"}}}}),
      400, "badRequest");
  expect_fault(c.nova("POST", "/v2.1/os-keypairs", alice,
                      json::object{{"keypair", json::object{{"name", "a/b"}}}}),
               400, "badRequest");

  auto generated = c.nova("POST", "/v2.1/os-keypairs", alice,
                          json::object{{"keypair", json::object{{"name", "gen"}}}});
  ASSERT_EQ(generated.status, 200) << generated.raw;
  auto& key = generated.body.at("keypair");
  EXPECT_EQ(
      std::string(key.at("private_key").as_string()).rfind("-----BEGIN RSA PRIVATE KEY-----", 0),
      0u);
  EXPECT_EQ(std::string(key.at("public_key").as_string()).rfind("ssh-rsa ", 0), 0u);
  // Generation is gone from 2.92: the public key is required.
  expect_fault(c.nova("POST", "/v2.1/os-keypairs", alice,
                      json::object{{"keypair", json::object{{"name", "x"}}}}, "2.92"),
               400, "badRequest");

  auto list = c.nova("GET", "/v2.1/os-keypairs", alice);
  EXPECT_EQ(list.body.at("keypairs").as_array().size(), 2u);
  EXPECT_TRUE(c.nova("GET", "/v2.1/os-keypairs", bob).body.at("keypairs").as_array().empty());
  auto shown = c.nova("GET", "/v2.1/os-keypairs/mine", alice, {}, "2.2");
  EXPECT_EQ(shown.body.at("keypair").at("type"), "ssh");
  expect_fault(c.nova("GET", "/v2.1/os-keypairs/mine", bob), 404, "itemNotFound");
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-keypairs/mine", alice, {}, "2.2").status, 204);
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-keypairs/gen", alice).status, 202);
  EXPECT_TRUE(c.nova("GET", "/v2.1/os-keypairs", alice).body.at("keypairs").as_array().empty());
}

// Hosts registered by the fake driver: services (disable with a reason, force down), hypervisors
// (integer ids before 2.53, uuids from it; usage fields until 2.88) and availability zones.
TEST(ComputeApi, ServicesHypervisorsZones) {
  Cloud c(2);
  auto alice = c.member("alice");
  auto services = c.nova("GET", "/v2.1/os-services", c.admin());
  ASSERT_EQ(services.status, 200) << services.raw;
  auto& list = services.body.at("services").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("binary"), "nova-compute");
  EXPECT_EQ(list[0].at("state"), "up");
  EXPECT_TRUE(list[0].at("id").is_int64());
  expect_fault(c.nova("GET", "/v2.1/os-services", alice), 403, "forbidden");
  auto disabled = c.nova(
      "PUT", "/v2.1/os-services/disable-log-reason", c.admin(),
      json::object{
          {"host", "fake-host-1"}, {"binary", "nova-compute"}, {"disabled_reason", "maintenance"}});
  ASSERT_EQ(disabled.status, 200) << disabled.raw;
  auto one = c.nova("GET", "/v2.1/os-services?host=fake-host-1", c.admin(), {}, "2.53");
  auto& svc = one.body.at("services").as_array().at(0);
  EXPECT_EQ(svc.at("status"), "disabled");
  EXPECT_EQ(svc.at("disabled_reason"), "maintenance");
  std::string uuid(svc.at("id").as_string());
  auto down = c.nova("PUT", "/v2.1/os-services/" + uuid, c.admin(),
                     json::object{{"forced_down", true}}, "2.53");
  ASSERT_EQ(down.status, 200) << down.raw;
  EXPECT_EQ(down.body.at("service").at("state"), "down");
  expect_fault(c.nova("PUT", "/v2.1/os-services/" + uuid, c.admin(), json::object{}, "2.53"), 400,
               "badRequest");

  auto detail = c.nova("GET", "/v2.1/os-hypervisors/detail", c.admin());
  ASSERT_EQ(detail.status, 200) << detail.raw;
  auto& h = detail.body.at("hypervisors").as_array().at(1);
  EXPECT_EQ(h.at("hypervisor_hostname"), "fake-host-2");
  EXPECT_EQ(h.at("vcpus"), 16);
  EXPECT_TRUE(h.at("cpu_info").is_string());
  auto h253 = c.nova("GET", "/v2.1/os-hypervisors/detail", c.admin(), {}, "2.53")
                  .body.at("hypervisors")
                  .as_array()
                  .at(1);
  EXPECT_TRUE(h253.at("id").is_string());
  auto h288 = c.nova("GET", "/v2.1/os-hypervisors/detail", c.admin(), {}, "2.88")
                  .body.at("hypervisors")
                  .as_array()
                  .at(1);
  EXPECT_FALSE(h288.as_object().contains("vcpus"));
  EXPECT_EQ(c.nova("GET", "/v2.1/os-hypervisors/statistics", c.admin())
                .body.at("hypervisor_statistics")
                .at("vcpus"),
            32);
  expect_fault(c.nova("GET", "/v2.1/os-hypervisors/statistics", c.admin(), {}, "2.88"), 404,
               "itemNotFound");
  EXPECT_EQ(c.nova("GET", "/v2.1/os-hypervisors/fake-host/search", c.admin())
                .body.at("hypervisors")
                .as_array()
                .size(),
            2u);
  expect_fault(c.nova("GET", "/v2.1/os-hypervisors/nothing/search", c.admin()), 404,
               "itemNotFound");

  auto zones = c.nova("GET", "/v2.1/os-availability-zone", alice);
  ASSERT_EQ(zones.status, 200) << zones.raw;
  auto& zone = zones.body.at("availabilityZoneInfo").as_array().at(0);
  EXPECT_EQ(zone.at("zoneName"), "nova");
  EXPECT_TRUE(
      zone.at("zoneState").at("available").as_bool());  // fake-host-2 is still up and enabled
  expect_fault(c.nova("GET", "/v2.1/os-availability-zone/detail", alice), 403, "forbidden");
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-services/" + uuid, c.admin()).status, 204);
  EXPECT_EQ(
      c.nova("GET", "/v2.1/os-hypervisors", c.admin()).body.at("hypervisors").as_array().size(),
      1u);
}

// Aggregates: hosts, metadata, and the availability zone they give their hosts.
TEST(ComputeApi, AggregatesAndZones) {
  Cloud c(2);
  auto agg = [](json::object a) { return json::object{{"aggregate", std::move(a)}}; };
  auto created = c.nova("POST", "/v2.1/os-aggregates", c.admin(),
                        agg({{"name", "rack1"}, {"availability_zone", "az1"}}));
  ASSERT_EQ(created.status, 200) << created.raw;
  EXPECT_FALSE(created.body.at("aggregate").as_object().contains("hosts"));
  auto id = std::to_string(created.body.at("aggregate").at("id").as_int64());
  expect_fault(c.nova("POST", "/v2.1/os-aggregates", c.admin(), agg({{"name", "rack1"}})), 409,
               "conflictingRequest");
  expect_fault(c.nova("POST", "/v2.1/os-aggregates", c.admin(), agg({{"name", " x"}})), 400,
               "badRequest");
  auto action = [&](json::object a) {
    return c.nova("POST", "/v2.1/os-aggregates/" + id + "/action", c.admin(), a);
  };
  expect_fault(action({{"add_host", json::object{{"host", "nowhere"}}}}), 404, "itemNotFound");
  auto added = action({{"add_host", json::object{{"host", "fake-host-1"}}}});
  ASSERT_EQ(added.status, 200) << added.raw;
  EXPECT_EQ(added.body.at("aggregate").at("hosts").as_array().size(), 1u);
  expect_fault(action({{"add_host", json::object{{"host", "fake-host-1"}}}}), 409,
               "conflictingRequest");
  // fake-host-1 is now in az1, fake-host-2 still in the default zone.
  auto zones = c.nova("GET", "/v2.1/os-availability-zone", c.admin())
                   .body.at("availabilityZoneInfo")
                   .as_array();
  std::set<std::string> names;
  for (auto& z : zones) names.insert(std::string(z.at("zoneName").as_string()));
  EXPECT_EQ(names, (std::set<std::string>{"az1", "nova"}));
  // A host's zone must agree across aggregates.
  auto other = c.nova("POST", "/v2.1/os-aggregates", c.admin(),
                      agg({{"name", "rack2"}, {"availability_zone", "az2"}}));
  auto other_id = std::to_string(other.body.at("aggregate").at("id").as_int64());
  expect_fault(c.nova("POST", "/v2.1/os-aggregates/" + other_id + "/action", c.admin(),
                      json::object{{"add_host", json::object{{"host", "fake-host-1"}}}}),
               400, "badRequest");
  auto meta = action({{"set_metadata", json::object{{"metadata", json::object{{"ssd", "true"}}}}}});
  EXPECT_EQ(meta.body.at("aggregate").at("metadata").at("ssd"), "true");
  meta = action({{"set_metadata", json::object{{"metadata", json::object{{"ssd", nullptr}}}}}});
  EXPECT_FALSE(meta.body.at("aggregate").at("metadata").as_object().contains("ssd"));
  expect_fault(c.nova("DELETE", "/v2.1/os-aggregates/" + id, c.admin()), 400, "badRequest");
  ASSERT_EQ(action({{"remove_host", json::object{{"host", "fake-host-1"}}}}).status, 200);
  expect_fault(action({{"remove_host", json::object{{"host", "fake-host-1"}}}}), 404,
               "itemNotFound");
  EXPECT_EQ(c.nova("GET", "/v2.1/os-aggregates/" + id, c.admin(), {}, "2.41")
                .body.at("aggregate")
                .at("uuid")
                .as_string()
                .size(),
            36u);
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-aggregates/" + id, c.admin()).status, 200);
  expect_fault(c.nova("GET", "/v2.1/os-aggregates/" + id, c.admin()), 404, "itemNotFound");
  // An id is never given again, even once the newest aggregate is gone: a client still holding
  // it must not reach the next one.
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-aggregates/" + other_id, c.admin()).status, 200);
  auto next = c.nova("POST", "/v2.1/os-aggregates", c.admin(), agg({{"name", "rack3"}}));
  EXPECT_GT(next.body.at("aggregate").at("id").as_int64(), std::stoll(other_id));
}

TEST(ComputeApi, ServerGroups) {
  Cloud c;
  auto alice = c.member("alice");
  auto bob = c.member("bob");
  auto group = [](json::object g) { return json::object{{"server_group", std::move(g)}}; };
  auto old = c.nova("POST", "/v2.1/os-server-groups", alice,
                    group({{"name", "g1"}, {"policies", json::array{"anti-affinity"}}}));
  ASSERT_EQ(old.status, 200) << old.raw;
  EXPECT_EQ(old.body.at("server_group").at("policies").as_array()[0], "anti-affinity");
  EXPECT_FALSE(old.body.at("server_group").as_object().contains("project_id"));
  expect_fault(c.nova("POST", "/v2.1/os-server-groups", alice,
                      group({{"name", "g"}, {"policies", json::array{"soft-affinity"}}})),
               400, "badRequest");  // soft policies from 2.15
  auto v264 = c.nova("POST", "/v2.1/os-server-groups", alice,
                     group({{"name", "g2"},
                            {"policy", "anti-affinity"},
                            {"rules", json::object{{"max_server_per_host", 2}}}}),
                     "2.64");
  ASSERT_EQ(v264.status, 200) << v264.raw;
  EXPECT_EQ(v264.body.at("server_group").at("rules").at("max_server_per_host"), 2);
  expect_fault(c.nova("POST", "/v2.1/os-server-groups", alice,
                      group({{"name", "g"},
                             {"policy", "affinity"},
                             {"rules", json::object{{"max_server_per_host", 2}}}}),
                      "2.64"),
               400, "badRequest");
  std::string id(old.body.at("server_group").at("id").as_string());
  EXPECT_EQ(
      c.nova("GET", "/v2.1/os-server-groups", alice).body.at("server_groups").as_array().size(),
      2u);
  EXPECT_TRUE(
      c.nova("GET", "/v2.1/os-server-groups", bob).body.at("server_groups").as_array().empty());
  expect_fault(c.nova("GET", "/v2.1/os-server-groups/" + id, bob), 404, "itemNotFound");
  EXPECT_EQ(c.nova("GET", "/v2.1/os-server-groups?all_projects=1", c.admin())
                .body.at("server_groups")
                .as_array()
                .size(),
            2u);
  c.nova("PUT", "/v2.1/os-quota-sets/" + c.project("alice"), c.admin(),
         json::object{{"quota_set", json::object{{"server_groups", 2}}}});
  auto over = c.nova("POST", "/v2.1/os-server-groups", alice,
                     group({{"name", "g3"}, {"policies", json::array{"affinity"}}}));
  expect_fault(over, 403, "forbidden");
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-server-groups/" + id, alice).status, 204);
  expect_fault(c.nova("GET", "/v2.1/os-server-groups/" + id, alice), 404, "itemNotFound");
}

// Hostile input on every write route and list query, at several microversions: always a 4xx with
// Nova's fault body ({"badRequest": {"code", "message"}} and kin), never a 5xx.
TEST(ComputeApi, BadInputGetsNovaFaults) {
  Cloud c(1);
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "/v2.1/flavors"},
      {"PUT", "/v2.1/flavors/1"},
      {"POST", "/v2.1/flavors/1/os-extra_specs"},
      {"PUT", "/v2.1/flavors/1/os-extra_specs/a"},
      {"POST", "/v2.1/flavors/1/action"},
      {"POST", "/v2.1/os-keypairs"},
      {"PUT", "/v2.1/os-quota-sets/p"},
      {"PUT", "/v2.1/os-quota-class-sets/default"},
      {"POST", "/v2.1/os-server-groups"},
      {"PUT", "/v2.1/os-services/enable"},
      {"PUT", "/v2.1/os-services/x"},
      {"POST", "/v2.1/os-aggregates"},
      {"PUT", "/v2.1/os-aggregates/1"},
      {"POST", "/v2.1/os-aggregates/1/action"}};
  const std::vector<std::string> bodies = {
      "not json",
      "[]",
      "{}",
      "{\"flavor\": 1}",
      "{\"flavor\": {\"name\": 123, \"ram\": \"x\", \"vcpus\": -1, \"disk\": 1e99}}",
      "{\"keypair\": {\"name\": \"a\", \"public_key\": 12}}",
      "{\"quota_set\": {\"ram\": \"abc\"}}",
      "{\"server_group\": {\"name\": \"x\", \"policies\": \"affinity\"}}",
      "{\"aggregate\": {\"name\": \"\"}}",
      "{\"add_host\": {\"host\": 5}}",
      "{\"host\": 1, \"binary\": []}",
      "{\"status\": \"maybe\"}"};
  for (auto& [method, path] : routes)
    for (auto& body : bodies)
      for (const char* version : {"2.1", "2.55", "2.64", "latest"}) {
        auto r = c.raw(method, path, body, version);
        ASSERT_GE(r.status, 400) << method << " " << path << " " << body << " " << version << ": "
                                 << r.raw;
        ASSERT_LT(r.status, 500) << method << " " << path << " " << body << " " << version << ": "
                                 << r.raw;
        ASSERT_EQ(r.body.size(), 1u) << r.raw;
        EXPECT_EQ(r.body.begin()->value().at("code"), r.status) << r.raw;
      }
  for (const char* query :
       {"flavors?limit=-1", "flavors?limit=abc", "flavors?marker=zzz", "flavors/detail?minRam=abc",
        "flavors?sort_key=bad", "flavors?sort_dir=up", "flavors?is_public=maybe",
        "os-server-groups?offset=-3"})
    for (const char* version : {"2.1", "2.35", "2.53", "latest"}) {
      auto r = c.raw("GET", std::string("/v2.1/") + query, "", version);
      EXPECT_EQ(r.status, 400) << query << " " << version << ": " << r.raw;
    }
  // Hypervisor paging exists from 2.33; before it the parameters are ignored, as in Nova.
  EXPECT_EQ(c.raw("GET", "/v2.1/os-hypervisors?limit=1&marker=99", "", "2.33").status, 400);
  EXPECT_EQ(c.raw("GET", "/v2.1/os-hypervisors?limit=1&marker=99", "", "2.1").status, 200);
}

// Quota sets (Nova's database driver): defaults, per-project limits, usage, the fields each
// microversion shows, and enforcement with Nova's 403.
TEST(ComputeApi, QuotasAndLimits) {
  Cloud c;
  auto alice = c.member("alice");
  auto project = c.project("alice");
  auto shown = c.nova("GET", "/v2.1/os-quota-sets/" + project, alice);
  ASSERT_EQ(shown.status, 200) << shown.raw;
  EXPECT_EQ(shown.body.at("quota_set").at("key_pairs"), 100);
  EXPECT_EQ(shown.body.at("quota_set").at("id").as_string(), project);
  EXPECT_TRUE(shown.body.at("quota_set").as_object().contains("floating_ips"));
  auto v236 = c.nova("GET", "/v2.1/os-quota-sets/" + project, alice, {}, "2.36")
                  .body.at("quota_set")
                  .as_object();
  EXPECT_FALSE(v236.contains("floating_ips"));
  EXPECT_TRUE(v236.contains("injected_files"));
  EXPECT_FALSE(c.nova("GET", "/v2.1/os-quota-sets/" + project, alice, {}, "2.57")
                   .body.at("quota_set")
                   .as_object()
                   .contains("injected_files"));

  json::object one{{"quota_set", json::object{{"key_pairs", 1}}}};
  expect_fault(c.nova("PUT", "/v2.1/os-quota-sets/" + project, alice, one), 403, "forbidden");
  auto updated = c.nova("PUT", "/v2.1/os-quota-sets/" + project, c.admin(), one);
  ASSERT_EQ(updated.status, 200) << updated.raw;
  EXPECT_EQ(updated.body.at("quota_set").at("key_pairs"), 1);
  EXPECT_FALSE(updated.body.at("quota_set").as_object().contains("id"));
  expect_fault(c.nova("PUT", "/v2.1/os-quota-sets/" + project, c.admin(),
                      json::object{{"quota_set", json::object{{"bogus", 1}}}}),
               400, "badRequest");
  expect_fault(c.nova("PUT", "/v2.1/os-quota-sets/" + project, c.admin(),
                      json::object{{"quota_set", json::object{{"ram", -2}}}}),
               400, "badRequest");

  auto pub = [](const char* name) {
    return json::object{{"keypair", json::object{{"name", name}}}};
  };
  ASSERT_EQ(c.nova("POST", "/v2.1/os-keypairs", alice, pub("first")).status, 200);
  auto over = c.nova("POST", "/v2.1/os-keypairs", alice, pub("second"));
  expect_fault(over, 403, "forbidden");
  EXPECT_EQ(over.body.at("forbidden").at("message"), "Quota exceeded, too many key pairs.");
  auto limits = c.nova("GET", "/v2.1/limits", alice);
  ASSERT_EQ(limits.status, 200) << limits.raw;
  EXPECT_EQ(limits.body.at("limits").at("absolute").at("maxTotalKeypairs"), 1);
  EXPECT_TRUE(limits.body.at("limits").at("rate").as_array().empty());
  // Lowering a limit below usage needs force.
  json::object zero{{"quota_set", json::object{{"key_pairs", 0}}}};
  auto user_id = [&] {
    auto t = c.call("GET", "/v3/auth/tokens", c.admin(), "", {{"X-Subject-Token", alice}});
    return std::string(t.body.at("token").at("user").at("id").as_string());
  }();
  auto detail =
      c.nova("GET", "/v2.1/os-quota-sets/" + project + "/detail?user_id=" + user_id, alice);
  ASSERT_EQ(detail.status, 200) << detail.raw;
  EXPECT_EQ(detail.body.at("quota_set").at("key_pairs").at("in_use"), 1);
  expect_fault(
      c.nova("PUT", "/v2.1/os-quota-sets/" + project + "?user_id=" + user_id, c.admin(), zero), 400,
      "badRequest");
  json::object forced{{"quota_set", json::object{{"key_pairs", 0}, {"force", true}}}};
  EXPECT_EQ(
      c.nova("PUT", "/v2.1/os-quota-sets/" + project + "?user_id=" + user_id, c.admin(), forced)
          .status,
      200);
  EXPECT_EQ(c.nova("DELETE", "/v2.1/os-quota-sets/" + project, c.admin()).status, 202);
  EXPECT_EQ(
      c.nova("GET", "/v2.1/os-quota-sets/" + project, alice).body.at("quota_set").at("key_pairs"),
      100);
  EXPECT_EQ(c.nova("POST", "/v2.1/os-keypairs", alice, pub("second")).status, 200);

  // The default class changes every project without its own limit.
  auto cls = c.nova("PUT", "/v2.1/os-quota-class-sets/default", c.admin(),
                    json::object{{"quota_class_set", json::object{{"instances", 3}}}});
  ASSERT_EQ(cls.status, 200) << cls.raw;
  EXPECT_EQ(
      c.nova("GET", "/v2.1/limits", alice).body.at("limits").at("absolute").at("maxTotalInstances"),
      3);
}

}  // namespace
