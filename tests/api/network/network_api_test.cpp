// The network API over real HTTP: identity in-process (tests/api/support), the network service
// beside it on port 0. Neutron's semantics: IPAM under concurrency, visibility, errors, routers
// and floating IPs, security groups, pagination, revisions and quotas.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "network/api/service.hpp"
#include "network/setup.hpp"
#include "tests/api/support/identity_cloud.hpp"
#include "tests/api/support/served_pipeline.hpp"

using namespace nubo;
using apitest::Reply;
namespace fs = std::filesystem;

namespace {

class Cloud : public apitest::IdentityCloud {
 public:
  Cloud() {
    dir_ = fs::temp_directory_path() / ("nubo-network-api-" + uuid4_hex());
    auto config = Config::parse("");
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url)
      config.set("database", "network_connection", url);
    network_ = network::open_network_service(config, dir_.string());
    admin_ = token();
    auto scoped =
        IdentityCloud::call("GET", "/v3/auth/tokens", admin_, "", {{"X-Subject-Token", admin_}});
    admin_project_ = std::string(
        scoped.body.at("token").as_object().at("project").as_object().at("id").as_string());
    network::ensure_public_network(*network_, config, admin_project_);
    served_ = std::make_unique<apitest::ServedPipeline>(
        network::api::make_service_spec(network_, service_ptr()),
        [](int status, const std::string& m) {
          return network::api::render_error(ApiError(status, m));
        });
    url_ = served_->url();
  }
  ~Cloud() {
    agent_.reset();
    served_.reset();
    second_served_.reset();
    second_.reset();
    fs::remove_all(dir_);
    if (!second_dir_.empty()) fs::remove_all(second_dir_);
  }
  // This host's network agent on the fake dataplane, on an in-process bus.
  void start_agent(const std::string& host) {
    bus_ = make_in_process_bus(2);
    network::serve_agents(network_, bus_);
    network::AgentSettings settings;
    settings.host = host;
    settings.tick = std::chrono::milliseconds(50);
    agent_ = std::make_unique<network::NetworkAgent>(network::dataplane::make_fake_dataplane(),
                                                     bus_, settings);
    agent_->start();
  }
  network::NetworkService& service() { return *network_; }
  // A second network API process on this one's database (PostgreSQL), served on its own port.
  std::string second_process() {
    auto config = Config::parse("");
    config.set("database", "network_connection", std::getenv("NUBO_TEST_DATABASE"));
    second_dir_ = fs::temp_directory_path() / ("nubo-network-second-" + uuid4_hex());
    second_ = network::open_network_service(config, second_dir_.string());
    second_served_ = std::make_unique<apitest::ServedPipeline>(
        network::api::make_service_spec(second_, service_ptr()),
        [](int status, const std::string& m) {
          return network::api::render_error(ApiError(status, m));
        });
    return second_served_->url();
  }
  Reply net(const std::string& method, const std::string& path, const json::value& body = nullptr,
            std::optional<std::string> token = std::nullopt,
            std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto text = body.is_null() ? std::string() : json::serialize(body);
    return client_.request(url_ + path, method, token ? *token : admin_, text,
                           text.empty() ? "" : "application/json", std::move(headers));
  }
  // POST /v2.0/<plural> {"<singular>": body}; the created object.
  json::object create(const std::string& plural, const std::string& singular, json::object body,
                      std::optional<std::string> token = std::nullopt) {
    auto r = net("POST", "/v2.0/" + plural, json::object{{singular, body}}, token);
    EXPECT_EQ(r.status, 201) << r.raw;
    if (r.status != 201) return {};
    return r.body.at(singular).as_object();
  }
  std::string id(const json::object& o) const { return std::string(o.at("id").as_string()); }
  const std::string& admin() const { return admin_; }
  const std::string& network_url() const { return url_; }
  const std::string& admin_project() const { return admin_project_; }

 private:
  fs::path dir_, second_dir_;
  std::shared_ptr<network::NetworkService> network_, second_;
  std::unique_ptr<apitest::ServedPipeline> served_, second_served_;
  std::shared_ptr<Bus> bus_;
  std::unique_ptr<network::NetworkAgent> agent_;
  std::string url_, admin_, admin_project_;
  apitest::ApiClient client_;
};

void expect_neutron_error(const Reply& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.contains("NeutronError")) << r.raw;
  auto& e = r.body.at("NeutronError").as_object();
  EXPECT_EQ(e.at("type").as_string(), type) << r.raw;
  EXPECT_FALSE(e.at("message").as_string().empty());
  EXPECT_EQ(r.headers.get_or("Content-Type"), "application/json");
}

std::vector<std::string> addresses(const json::object& port) {
  std::vector<std::string> out;
  for (auto& ip : port.at("fixed_ips").as_array())
    out.emplace_back(ip.as_object().at("ip_address").as_string());
  return out;
}

// Ports created on `network` by `threads` threads (one connection each, `per_thread` ports
// each), thread t through urls[t % urls.size()]: the addresses they got, and what failed.
struct ParallelPorts {
  std::vector<std::string> addresses, errors;
};
ParallelPorts create_ports_in_parallel(Cloud& c, const std::vector<std::string>& urls,
                                       const json::value& network_id, int threads, int per_thread) {
  ParallelPorts out;
  std::mutex mu;
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&, t] {
      apitest::ApiClient client;
      auto& url = urls[static_cast<size_t>(t) % urls.size()];
      for (int i = 0; i < per_thread; ++i) {
        auto r = client.request(
            url + "/v2.0/ports", "POST", c.admin(),
            json::serialize(json::object{{"port", json::object{{"network_id", network_id}}}}),
            "application/json");
        std::lock_guard lock(mu);
        if (r.status != 201) {
          out.errors.push_back(std::to_string(r.status) + " " + r.raw.substr(0, 300));
          continue;
        }
        for (auto& a : addresses(r.body.at("port").as_object())) out.addresses.push_back(a);
      }
    });
  for (auto& t : running) t.join();
  return out;
}

TEST(Network, AHundredParallelPortsGetAHundredDistinctAddresses) {
  Cloud c;
  auto network = c.create("networks", "network", {{"name", "busy"}});
  auto subnet = c.create("subnets", "subnet",
                         {{"network_id", network.at("id")},
                          {"cidr", "10.9.0.0/24"},
                          {"ip_version", 4},
                          {"enable_dhcp", false}});
  auto [got, errors] = create_ports_in_parallel(c, {c.network_url()}, network.at("id"), 10, 10);
  EXPECT_TRUE(errors.empty()) << errors.size() << " failed, first: " << errors.front();
  ASSERT_EQ(got.size(), 100u);
  std::set<std::string> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 100u);
  // The gateway (.1) is never handed out; every address is in the allocation pool.
  EXPECT_FALSE(distinct.count("10.9.0.1"));
  for (auto& a : distinct) EXPECT_EQ(a.rfind("10.9.0.", 0), 0u) << a;
  // Deleting a port frees its address for the next one.
  auto ports =
      c.net("GET", "/v2.0/ports?network_id=" + c.id(network) + "&fixed_ips=ip_address%3D10.9.0.50");
  ASSERT_EQ(ports.body.at("ports").as_array().size(), 1u) << ports.raw;
  auto port_id = c.id(ports.body.at("ports").as_array()[0].as_object());
  EXPECT_EQ(c.net("DELETE", "/v2.0/ports/" + port_id).status, 204);
  auto again = c.create("ports", "port",
                        {{"network_id", network.at("id")},
                         {"fixed_ips", json::array{json::object{{"ip_address", "10.9.0.50"}}}}});
  EXPECT_EQ(addresses(again), std::vector<std::string>{"10.9.0.50"});
  // A taken address is a conflict, in Neutron's words.
  auto taken =
      c.net("POST", "/v2.0/ports",
            json::object{{"port", json::object{{"network_id", network.at("id")},
                                               {"fixed_ips", json::array{json::object{
                                                                 {"ip_address", "10.9.0.50"}}}}}}});
  expect_neutron_error(taken, 409, "IpAddressAlreadyAllocated");
  (void)subnet;
}

// Two network API processes on one PostgreSQL database, each with its own writer: both pick the
// lowest free address, the (subnet, address) key lets one commit, and the other allocates again
// (Neutron retries on a duplicate entry) instead of failing the request.
TEST(Network, TwoProcessesOnOnePostgresqlGiveDistinctAddressesWithoutErrors) {
  const char* url = std::getenv("NUBO_TEST_DATABASE");
  if (!url || std::string(url).rfind("postgres", 0) != 0)
    GTEST_SKIP() << "needs NUBO_TEST_DATABASE (PostgreSQL)";
  Cloud c;
  auto second = c.second_process();
  auto network = c.create("networks", "network", {{"name", "shared"}});
  c.create("subnets", "subnet",
           {{"network_id", network.at("id")},
            {"cidr", "10.7.0.0/24"},
            {"ip_version", 4},
            {"enable_dhcp", false}});
  auto [got, errors] =
      create_ports_in_parallel(c, {c.network_url(), second}, network.at("id"), 8, 8);
  EXPECT_TRUE(errors.empty()) << errors.size() << " failed, first: " << errors.front();
  ASSERT_EQ(got.size(), 64u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 64u);
}

TEST(Network, AFullSubnetRefusesWithNeutronsConflict) {
  Cloud c;
  auto network = c.create("networks", "network", {{"name", "small"}});
  // A /29 without DHCP: .2 to .6 (the gateway is .1).
  c.create("subnets", "subnet",
           {{"network_id", network.at("id")},
            {"cidr", "10.8.0.0/29"},
            {"ip_version", 4},
            {"enable_dhcp", false}});
  std::vector<std::string> ports, got;
  for (int i = 0; i < 5; ++i) {
    auto port = c.create("ports", "port", {{"network_id", network.at("id")}});
    ports.push_back(c.id(port));
    got.push_back(addresses(port).at(0));
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"10.8.0.2", "10.8.0.3", "10.8.0.4", "10.8.0.5", "10.8.0.6"}));
  auto full = c.net("POST", "/v2.0/ports",
                    json::object{{"port", json::object{{"network_id", network.at("id")}}}});
  expect_neutron_error(full, 409, "IpAddressGenerationFailure");
  // A freed address is found again once the pool has been gone through.
  EXPECT_EQ(c.net("DELETE", "/v2.0/ports/" + ports[1]).status, 204);
  auto again = c.create("ports", "port", {{"network_id", network.at("id")}});
  EXPECT_EQ(addresses(again), std::vector<std::string>{"10.8.0.3"});
}

TEST(Network, SubnetsPoolsAndErrorsAsNeutron) {
  Cloud c;
  auto network = c.create("networks", "network", {{"name", "n"}});
  EXPECT_EQ(network.at("status"), "ACTIVE");
  EXPECT_EQ(network.at("mtu"), 1450);
  EXPECT_EQ(network.at("revision_number"), 0);
  auto subnet =
      c.create("subnets", "subnet",
               {{"network_id", network.at("id")}, {"cidr", "10.100.0.0/28"}, {"ip_version", 4}});
  EXPECT_EQ(subnet.at("gateway_ip"), "10.100.0.1");
  EXPECT_EQ(json::serialize(subnet.at("allocation_pools")),
            R"([{"start":"10.100.0.2","end":"10.100.0.14"}])");
  // The same CIDR on another network is fine; on the same network it overlaps.
  auto other = c.create("networks", "network", {{"name", "m"}});
  c.create("subnets", "subnet",
           {{"network_id", other.at("id")}, {"cidr", "10.100.0.0/28"}, {"ip_version", 4}});
  auto overlap = c.net("POST", "/v2.0/subnets",
                       json::object{{"subnet", json::object{{"network_id", network.at("id")},
                                                            {"cidr", "10.100.0.8/29"},
                                                            {"ip_version", 4}}}});
  expect_neutron_error(overlap, 400, "InvalidInput");
  EXPECT_NE(overlap.raw.find("overlaps with another subnet"), std::string::npos);
  // IPv6: the pool runs to the last address; SLAAC addresses are EUI-64 of the MAC.
  auto v6 = c.create("subnets", "subnet",
                     {{"network_id", network.at("id")},
                      {"cidr", "2001:db8::/64"},
                      {"ip_version", 6},
                      {"ipv6_ra_mode", "slaac"},
                      {"ipv6_address_mode", "slaac"}});
  EXPECT_EQ(json::serialize(v6.at("allocation_pools")),
            R"([{"start":"2001:db8::2","end":"2001:db8::ffff:ffff:ffff:ffff"}])");
  auto port = c.create("ports", "port",
                       {{"network_id", network.at("id")}, {"mac_address", "fa:16:3e:12:34:56"}});
  auto ips = addresses(port);
  EXPECT_NE(std::find(ips.begin(), ips.end(), "2001:db8::f816:3eff:fe12:3456"), ips.end()) << port;
  // Unknown attributes, bad values, unknown ids.
  expect_neutron_error(
      c.net("POST", "/v2.0/networks", json::object{{"network", json::object{{"colour", "red"}}}}),
      400, "HTTPBadRequest");
  expect_neutron_error(c.net("POST", "/v2.0/networks",
                             json::object{{"network", json::object{{"admin_state_up", "maybe"}}}}),
                       400, "HTTPBadRequest");
  expect_neutron_error(c.net("GET", "/v2.0/networks/not-a-uuid"), 404, "NetworkNotFound");
  expect_neutron_error(c.net("POST", "/v2.0/networks", "not json"), 400, "HTTPBadRequest");
  // A network with a port in use stays; its subnet too.
  auto in_use = c.net("DELETE", "/v2.0/networks/" + c.id(network));
  expect_neutron_error(in_use, 409, "NetworkInUse");
  expect_neutron_error(c.net("DELETE", "/v2.0/subnets/" + c.id(subnet)), 409, "SubnetInUse");
  EXPECT_EQ(c.net("DELETE", "/v2.0/ports/" + c.id(port)).status, 204);
  // Without user ports, deleting the network takes its subnets (and DHCP port) along.
  EXPECT_EQ(c.net("DELETE", "/v2.0/networks/" + c.id(network)).status, 204);
  EXPECT_EQ(c.net("GET", "/v2.0/subnets/" + c.id(subnet)).status, 404);
  EXPECT_TRUE(
      c.net("GET", "/v2.0/ports?network_id=" + c.id(network)).body.at("ports").as_array().empty());
}

TEST(Network, ProjectsSeeTheirOwnSharedAndExternalNetworksOnly) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  auto [bob, bob_project] = c.member_of_new_project(c.admin(), "bob");
  auto mine = c.create("networks", "network", {{"name", "alice-net"}}, alice);
  EXPECT_EQ(mine.at("project_id").as_string(), alice_project);
  EXPECT_FALSE(mine.contains("provider:network_type")) << "provider attributes are for admins";
  auto names = [&](const std::string& token) {
    std::set<std::string> out;
    auto r = c.net("GET", "/v2.0/networks", nullptr, token);
    for (auto& n : r.body.at("networks").as_array())
      out.insert(std::string(n.as_object().at("name").as_string()));
    return out;
  };
  EXPECT_EQ(names(alice), (std::set<std::string>{"alice-net", "public"}));
  EXPECT_EQ(names(bob), (std::set<std::string>{"public"}));
  expect_neutron_error(c.net("GET", "/v2.0/networks/" + c.id(mine), nullptr, bob), 404,
                       "NetworkNotFound");
  // Members cannot share or make external networks.
  expect_neutron_error(c.net("POST", "/v2.0/networks",
                             json::object{{"network", json::object{{"shared", true}}}}, alice),
                       403, "PolicyNotAuthorized");
  // An admin's RBAC policy shares alice's network with bob alone.
  auto rbac = c.create("rbac-policies", "rbac_policy",
                       {{"object_type", "network"},
                        {"object_id", mine.at("id")},
                        {"action", "access_as_shared"},
                        {"target_tenant", bob_project}});
  EXPECT_EQ(names(bob), (std::set<std::string>{"alice-net", "public"}));
  // Bob can put a port on it; alice, the owner, sees it; then the policy cannot go.
  auto sub =
      c.create("subnets", "subnet",
               {{"network_id", mine.at("id")}, {"cidr", "10.1.0.0/24"}, {"ip_version", 4}}, alice);
  auto bobs = c.create("ports", "port", {{"network_id", mine.at("id")}}, bob);
  EXPECT_EQ(bobs.at("project_id").as_string(), bob_project);
  auto seen = c.net("GET", "/v2.0/ports/" + c.id(bobs), nullptr, alice);
  EXPECT_EQ(seen.status, 200);
  expect_neutron_error(c.net("DELETE", "/v2.0/rbac-policies/" + c.id(rbac)), 409,
                       "RbacPolicyInUse");
  // The public network's subnets are not shown to other projects.
  EXPECT_TRUE(c.net("GET", "/v2.0/subnets", nullptr, bob).body.at("subnets").as_array().size() ==
              1);
  (void)sub;
}

TEST(Network, RoutersAndFloatingIps) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  auto publics = c.net("GET", "/v2.0/networks?router:external=True", nullptr, alice);
  ASSERT_EQ(publics.body.at("networks").as_array().size(), 1u) << publics.raw;
  auto public_id =
      std::string(publics.body.at("networks").as_array()[0].as_object().at("id").as_string());
  auto network = c.create("networks", "network", {{"name", "private"}}, alice);
  auto subnet = c.create(
      "subnets", "subnet",
      {{"network_id", network.at("id")}, {"cidr", "10.0.0.0/24"}, {"ip_version", 4}}, alice);
  auto router = c.create(
      "routers", "router",
      {{"name", "r"}, {"external_gateway_info", json::object{{"network_id", public_id}}}}, alice);
  auto& gw = router.at("external_gateway_info").as_object();
  EXPECT_EQ(gw.at("enable_snat"), true);
  ASSERT_EQ(gw.at("external_fixed_ips").as_array().size(), 1u);
  // The interface takes the subnet's gateway address.
  auto iface = c.net("PUT", "/v2.0/routers/" + c.id(router) + "/add_router_interface",
                     json::object{{"subnet_id", subnet.at("id")}}, alice);
  ASSERT_EQ(iface.status, 200) << iface.raw;
  auto iface_port = c.net("GET", "/v2.0/ports/" + std::string(iface.body.at("port_id").as_string()),
                          nullptr, alice);
  EXPECT_EQ(addresses(iface_port.body.at("port").as_object()),
            std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(iface_port.body.at("port").as_object().at("device_owner"), "network:router_interface");
  auto again = c.net("PUT", "/v2.0/routers/" + c.id(router) + "/add_router_interface",
                     json::object{{"subnet_id", subnet.at("id")}}, alice);
  EXPECT_EQ(again.status, 400) << again.raw;
  // A floating IP for a VM port: the router is found through the interface.
  auto vm = c.create("ports", "port", {{"network_id", network.at("id")}}, alice);
  auto fip = c.create("floatingips", "floatingip",
                      {{"floating_network_id", public_id}, {"port_id", vm.at("id")}}, alice);
  EXPECT_EQ(fip.at("router_id"), router.at("id"));
  EXPECT_EQ(fip.at("fixed_ip_address").as_string(), addresses(vm)[0]);
  EXPECT_EQ(std::string(fip.at("floating_ip_address").as_string()).rfind("172.24.4.", 0), 0u);
  // The interface and the gateway are needed while the floating IP is associated.
  expect_neutron_error(c.net("PUT", "/v2.0/routers/" + c.id(router) + "/remove_router_interface",
                             json::object{{"subnet_id", subnet.at("id")}}, alice),
                       409, "RouterInterfaceInUseByFloatingIP");
  expect_neutron_error(c.net("DELETE", "/v2.0/routers/" + c.id(router), nullptr, alice), 409,
                       "RouterInUse");
  // Deleting the VM's port disassociates the floating IP.
  EXPECT_EQ(c.net("DELETE", "/v2.0/ports/" + c.id(vm), nullptr, alice).status, 204);
  auto shown = c.net("GET", "/v2.0/floatingips/" + c.id(fip), nullptr, alice)
                   .body.at("floatingip")
                   .as_object();
  EXPECT_TRUE(shown.at("port_id").is_null());
  EXPECT_TRUE(shown.at("router_id").is_null());
  // A floating IP's address is taken in the external subnet.
  auto clash = c.net(
      "POST", "/v2.0/ports",
      json::object{
          {"port",
           json::object{{"network_id", public_id},
                        {"fixed_ips", json::array{json::object{
                                          {"ip_address", shown.at("floating_ip_address")}}}}}}});
  expect_neutron_error(clash, 409, "IpAddressAlreadyAllocated");
  // Interface removal deletes its port; the router then goes with its gateway.
  auto removed = c.net("PUT", "/v2.0/routers/" + c.id(router) + "/remove_router_interface",
                       json::object{{"subnet_id", subnet.at("id")}}, alice);
  EXPECT_EQ(removed.status, 200) << removed.raw;
  EXPECT_EQ(c.net("GET", "/v2.0/ports/" + std::string(iface.body.at("port_id").as_string())).status,
            404);
  EXPECT_EQ(c.net("DELETE", "/v2.0/routers/" + c.id(router), nullptr, alice).status, 204);
  auto gateways = c.net("GET", "/v2.0/ports?device_owner=network:router_gateway");
  EXPECT_TRUE(gateways.body.at("ports").as_array().empty()) << gateways.raw;
}

TEST(Network, SecurityGroupsAndTheirRules) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  auto groups =
      c.net("GET", "/v2.0/security-groups", nullptr, alice).body.at("security_groups").as_array();
  ASSERT_EQ(groups.size(), 1u);
  auto& def = groups[0].as_object();
  EXPECT_EQ(def.at("name"), "default");
  EXPECT_EQ(def.at("security_group_rules").as_array().size(), 4u);
  auto web = c.create("security-groups", "security_group", {{"name", "web"}}, alice);
  EXPECT_EQ(web.at("security_group_rules").as_array().size(), 2u) << "egress IPv4 and IPv6";
  json::object rule{{"security_group_id", web.at("id")},
                    {"direction", "ingress"},
                    {"protocol", "tcp"},
                    {"port_range_min", 22},
                    {"port_range_max", 22},
                    {"remote_ip_prefix", "0.0.0.0/0"}};
  auto created = c.create("security-group-rules", "security_group_rule", rule, alice);
  auto shown = c.net("GET", "/v2.0/security-group-rules/" + c.id(created), nullptr, alice);
  EXPECT_EQ(shown.body.at("security_group_rule"), json::value(created));
  expect_neutron_error(c.net("POST", "/v2.0/security-group-rules",
                             json::object{{"security_group_rule", rule}}, alice),
                       409, "SecurityGroupRuleExists");
  rule["port_range_min"] = 80;
  rule["port_range_max"] = 79;
  auto bad = c.net("POST", "/v2.0/security-group-rules",
                   json::object{{"security_group_rule", rule}}, alice);
  expect_neutron_error(bad, 400, "SecurityGroupInvalidPortRange");
  rule["protocol"] = "icmp";
  rule["port_range_min"] = 300;
  rule["port_range_max"] = 1;
  EXPECT_NE(c.net("POST", "/v2.0/security-group-rules", json::object{{"security_group_rule", rule}},
                  alice)
                .raw.find("Invalid value for ICMP type"),
            std::string::npos);
  rule.erase("port_range_min");
  rule.erase("port_range_max");
  rule["remote_ip_prefix"] = "2001:db8::/48";
  expect_neutron_error(c.net("POST", "/v2.0/security-group-rules",
                             json::object{{"security_group_rule", rule}}, alice),
                       400, "SecurityGroupRuleParameterConflict");
  // The default group is the project's: no second one, no renaming, no deleting it while used.
  expect_neutron_error(
      c.net("POST", "/v2.0/security-groups",
            json::object{{"security_group", json::object{{"name", "default"}}}}, alice),
      409, "SecurityGroupDefaultAlreadyExists");
  auto network = c.create("networks", "network", {{"name", "n"}}, alice);
  auto port = c.create(
      "ports", "port",
      {{"network_id", network.at("id")}, {"security_groups", json::array{web.at("id")}}}, alice);
  EXPECT_EQ(json::serialize(port.at("security_groups")), "[" + json::serialize(web.at("id")) + "]");
  expect_neutron_error(c.net("DELETE", "/v2.0/security-groups/" + c.id(web), nullptr, alice), 409,
                       "SecurityGroupInUse");
  auto plain = c.create("ports", "port", {{"network_id", network.at("id")}}, alice);
  EXPECT_EQ(json::serialize(plain.at("security_groups")),
            "[" + json::serialize(def.at("id")) + "]");
  auto none =
      c.create("ports", "port",
               {{"network_id", network.at("id")}, {"security_groups", json::array{}}}, alice);
  EXPECT_TRUE(none.at("security_groups").as_array().empty());
}

TEST(Network, ListsFilterSortPageAndHonourRevisions) {
  Cloud c;
  for (auto* name : {"b", "a", "d", "c", "e"})
    c.create("networks", "network", {{"name", name}, {"description", "x"}});
  auto page = [&](const std::string& query) {
    auto r = c.net("GET", "/v2.0/networks?" + query);
    EXPECT_EQ(r.status, 200) << r.raw;
    std::vector<std::string> names;
    for (auto& n : r.body.at("networks").as_array())
      names.emplace_back(n.as_object().at("name").as_string());
    return std::pair(names, r.body);
  };
  auto [first, body] = page("description=x&sort_key=name&sort_dir=asc&limit=2");
  EXPECT_EQ(first, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(body.contains("networks_links")) << body;
  std::string next(body.at("networks_links").as_array()[0].as_object().at("href").as_string());
  auto marker = next.substr(next.find("marker=") + 7, 36);
  auto [second, body2] = page("description=x&sort_key=name&sort_dir=asc&limit=2&marker=" + marker);
  EXPECT_EQ(second, (std::vector<std::string>{"c", "d"}));
  auto [back, body3] =
      page("description=x&sort_key=name&sort_dir=asc&limit=2&page_reverse=True&marker=" + marker);
  EXPECT_EQ(back, (std::vector<std::string>{"a"}));
  auto [desc, body4] = page("description=x&sort_key=name&sort_dir=desc");
  EXPECT_EQ(desc, (std::vector<std::string>{"e", "d", "c", "b", "a"}));
  // fields= keeps exactly the asked attributes.
  auto fields =
      c.net("GET", "/v2.0/networks?name=a&fields=id&fields=name").body.at("networks").as_array();
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].as_object().size(), 2u);
  // If-Match on the revision number.
  auto a = c.net("GET", "/v2.0/networks?name=a").body.at("networks").as_array()[0].as_object();
  auto id = c.id(a);
  auto stale =
      c.net("PUT", "/v2.0/networks/" + id, json::object{{"network", json::object{{"name", "a2"}}}},
            std::nullopt, {{"If-Match", "revision_number=7"}});
  expect_neutron_error(stale, 412, "RevisionNumberConstraintFailed");
  auto fresh =
      c.net("PUT", "/v2.0/networks/" + id, json::object{{"network", json::object{{"name", "a2"}}}},
            std::nullopt, {{"If-Match", "revision_number=0"}});
  EXPECT_EQ(fresh.status, 200) << fresh.raw;
  EXPECT_EQ(fresh.body.at("network").as_object().at("revision_number"), 1);
  // Tags: set, filter, remove.
  EXPECT_EQ(c.net("PUT", "/v2.0/networks/" + id + "/tags/red").status, 201);
  EXPECT_EQ(c.net("GET", "/v2.0/networks/" + id + "/tags/red").status, 204);
  EXPECT_EQ(page("tags=red").first, std::vector<std::string>{"a2"});
  EXPECT_EQ(page("not-tags=red&description=x").first.size(), 4u);
  EXPECT_EQ(c.net("DELETE", "/v2.0/networks/" + id + "/tags/red").status, 204);
  EXPECT_EQ(c.net("GET", "/v2.0/networks/" + id + "/tags/red").status, 404);
}

// Listings of row-local kinds come from rows rendered once and kept (list_rendered): they must
// follow every change and show each caller its own view, exactly as the rendering each time does.
TEST(Network, KeptRenderingsFollowEveryChangeAndEveryCaller) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  auto [bob, bob_project] = c.member_of_new_project(c.admin(), "bob");
  auto net = c.create("networks", "network", {{"name", "n"}}, alice);
  c.create("subnets", "subnet",
           {{"network_id", net.at("id")},
            {"cidr", "10.9.0.0/24"},
            {"ip_version", 4},
            {"enable_dhcp", false}},
           alice);
  auto mine = c.create("ports", "port", {{"network_id", net.at("id")}, {"name", "a"}}, alice);
  auto admins = c.create("ports", "port",
                         {{"network_id", net.at("id")}, {"name", "b"}, {"binding:host_id", "h1"}});
  auto query = "/v2.0/ports?network_id=" + c.id(net);
  auto listed = [&](const std::string& path, const std::string& token) {
    auto r = c.net("GET", path, nullptr, token);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.at("ports").as_array();
  };
  // Sorting takes the rendering-each-time path: both must agree, for every caller, twice (the
  // second time from what was kept).
  for (int round = 0; round < 2; ++round)
    for (auto& token : {c.admin(), alice, bob}) {
      auto kept = listed(query, token);
      EXPECT_EQ(kept, listed(query + "&sort_key=id", token));
      EXPECT_EQ(kept.size(), token == bob ? 0u : 2u);
    }
  auto admin_view = listed(query, c.admin());
  EXPECT_TRUE(admin_view[0].as_object().contains("binding:host_id"));
  EXPECT_FALSE(listed(query, alice)[0].as_object().contains("binding:host_id"))
      << "an admin's rendering is not shown to a member";
  // Changes show at once: an update, a tag, a deletion, a new port.
  auto find_port = [&](const json::array& ports, const std::string& id) -> json::object {
    for (auto& p : ports)
      if (p.as_object().at("id").as_string() == id) return p.as_object();
    return {};
  };
  EXPECT_EQ(c.net("PUT", "/v2.0/ports/" + c.id(mine),
                  json::object{{"port", json::object{{"name", "renamed"}}}}, alice)
                .status,
            200);
  EXPECT_EQ(c.net("PUT", "/v2.0/ports/" + c.id(mine) + "/tags/red", nullptr, alice).status, 201);
  auto after = find_port(listed(query, alice), c.id(mine));
  EXPECT_EQ(after.at("name"), "renamed");
  EXPECT_EQ(after.at("tags"), json::array{"red"});
  EXPECT_EQ(after.at("revision_number"), 2);
  EXPECT_EQ(c.net("DELETE", "/v2.0/ports/" + c.id(admins)).status, 204);
  auto bobs =
      c.create("ports", "port", {{"network_id", net.at("id")}, {"project_id", bob_project}});
  auto now = listed(query, alice);
  EXPECT_EQ(now.size(), 2u);
  EXPECT_TRUE(find_port(now, c.id(admins)).empty());
  EXPECT_FALSE(find_port(now, c.id(bobs)).empty()) << "the network's owner sees bob's port";
  EXPECT_EQ(listed(query, bob).size(), 1u);
  EXPECT_EQ(listed(query + "&project_id=" + bob_project, alice).size(), 1u);
  EXPECT_EQ(now, listed(query + "&sort_key=id", alice));
}

TEST(Network, QuotasRefuseBeyondTheLimit) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  auto set = c.net("PUT", "/v2.0/quotas/" + alice_project,
                   json::object{{"quota", json::object{{"network", 1}}}});
  EXPECT_EQ(set.status, 200) << set.raw;
  EXPECT_EQ(set.body.at("quota").as_object().at("network"), 1);
  c.create("networks", "network", {{"name", "one"}}, alice);
  auto over = c.net("POST", "/v2.0/networks",
                    json::object{{"network", json::object{{"name", "two"}}}}, alice);
  expect_neutron_error(over, 409, "OverQuota");
  EXPECT_NE(over.raw.find("Quota exceeded for resources: ['network']."), std::string::npos);
  auto details = c.net("GET", "/v2.0/quotas/" + alice_project + "/details.json", nullptr, alice);
  EXPECT_EQ(details.body.at("quota").as_object().at("network").as_object().at("used"), 1);
  // Only admins change quotas; members read their own.
  EXPECT_EQ(c.net("PUT", "/v2.0/quotas/" + alice_project,
                  json::object{{"quota", json::object{{"network", 9}}}}, alice)
                .status,
            403);
  EXPECT_EQ(c.net("DELETE", "/v2.0/quotas/" + alice_project).status, 204);
  EXPECT_EQ(c.net("GET", "/v2.0/quotas/" + alice_project, nullptr, alice)
                .body.at("quota")
                .as_object()
                .at("network"),
            100);
}

}  // namespace

TEST(Network, TheAgentReportsPortsBoundToItsHost) {
  Cloud c;
  EXPECT_TRUE(c.net("GET", "/v2.0/agents").body.at("agents").as_array().empty())
      << "no agent has reported yet";
  c.start_agent("h1");
  // The agent's roles on its host (a network node: DHCP and L3 too), alive.
  auto agents = c.net("GET", "/v2.0/agents").body.at("agents").as_array();
  ASSERT_EQ(agents.size(), 4u);
  for (auto& a : agents) {
    EXPECT_EQ(a.as_object().at("host").as_string(), "h1");
    EXPECT_TRUE(a.as_object().at("alive").as_bool());
  }
  auto l3 = c.net("GET", "/v2.0/agents?agent_type=L3+agent").body.at("agents").as_array();
  ASSERT_EQ(l3.size(), 1u);
  EXPECT_EQ(
      c.net("GET", "/v2.0/agents/" + std::string(l3[0].as_object().at("id").as_string())).status,
      200);
  auto network = c.create("networks", "network", {{"name", "wired"}});
  c.create("subnets", "subnet",
           {{"network_id", network.at("id")}, {"cidr", "10.8.0.0/24"}, {"ip_version", 4}});
  auto here = c.create("ports", "port",
                       {{"network_id", network.at("id")},
                        {"device_owner", "compute:nova"},
                        {"device_id", "vm-1"},
                        {"binding:host_id", "h1"}});
  auto elsewhere = c.create("ports", "port",
                            {{"network_id", network.at("id")},
                             {"device_owner", "compute:nova"},
                             {"binding:host_id", "h2"}});
  auto status = [&](const json::object& port) {
    auto r = c.net("GET", "/v2.0/ports/" + c.id(port));
    return std::string(r.body.at("port").as_object().at("status").as_string());
  };
  auto wait_for = [&](const json::object& port, const std::string& want) {
    for (int i = 0; i < 100 && status(port) != want; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return status(port);
  };
  EXPECT_EQ(wait_for(here, "ACTIVE"), "ACTIVE");
  EXPECT_EQ(status(elsewhere), "DOWN") << "another host's port";
  // The desired state of h1: its VM port and (a network node) the network's DHCP port.
  auto state = c.service().host_state("h1", true);
  std::set<std::string> owners;
  for (auto& p : state.at("ports").as_array())
    owners.insert(std::string(p.as_object().at("device_owner").as_string()));
  EXPECT_EQ(owners, (std::set<std::string>{"compute:nova", "network:dhcp"}));
  EXPECT_EQ(state.at("networks").as_array().size(), 1u);
  EXPECT_EQ(state.at("security_groups").as_array().size(), 1u) << "the default group";
  // Bound elsewhere: no longer this agent's, so DOWN.
  auto r = c.net("PUT", "/v2.0/ports/" + c.id(here),
                 json::object{{"port", json::object{{"binding:host_id", "h3"}}}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(wait_for(here, "DOWN"), "DOWN");
}
