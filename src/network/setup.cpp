#include "network/setup.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace nubo::network {

NetworkSettings settings_from_config(const Config& c) {
  NetworkSettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("network", "port", 9696);
  s.public_url =
      c.get_string("network", "public_url", "http://" + host + ":" + std::to_string(port));
  s.region = c.get_string("DEFAULT", "region", s.region);
  s.host = c.host();
  s.global_mtu = static_cast<int>(c.get_int("network", "global_physnet_mtu", s.global_mtu));
  s.physical_network = c.get_string("network", "external_physical_network", s.physical_network);
  s.base_mac = c.get_string("network", "base_mac", s.base_mac);
  s.max_fixed_ips_per_port =
      c.get_int("network", "max_fixed_ips_per_port", s.max_fixed_ips_per_port);
  s.max_allowed_address_pairs =
      c.get_int("network", "max_allowed_address_pairs", s.max_allowed_address_pairs);
  s.max_routes = c.get_int("network", "max_routes", s.max_routes);
  s.max_dns_nameservers = c.get_int("network", "max_dns_nameservers", s.max_dns_nameservers);
  s.max_subnet_host_routes =
      c.get_int("network", "max_subnet_host_routes", s.max_subnet_host_routes);
  s.dns_domain = c.get_string("network", "dns_domain", s.dns_domain);
  for (auto& [resource, limit] : s.default_quotas)
    limit = c.get_int("quotas", "quota_" + resource, limit);
  return s;
}

std::shared_ptr<NetworkService> open_network_service(const Config& c,
                                                     const std::string& state_dir) {
  auto database = db::Database::open_for(c, "network", state_dir);
  return std::make_shared<NetworkService>(std::move(database), settings_from_config(c));
}

void ensure_public_network(NetworkService& service, const Config& c,
                           const std::string& admin_project_id) {
  if (!c.get_bool("network", "create_public_network", true)) return;
  AuthContext auth;
  auth.project_id = admin_project_id;
  auth.roles = {"admin", "member", "reader"};
  Caller admin{auth, [](const std::string&, const PolicyTarget&) { return true; }};
  ListParams external;
  external.filters.emplace_back("router:external", "true");
  if (!service.list(admin, Kind::network, external).items.empty()) return;
  auto name = c.get_string("network", "public_network_name", "public");
  auto network = service.create(admin, Kind::network,
                                json::object{{"name", name},
                                             {"router:external", true},
                                             {"shared", false},
                                             {"provider:network_type", "flat"}});
  auto cidr = c.get_string("network", "public_network_cidr", "172.24.4.0/24");
  service.create(admin, Kind::subnet,
                 json::object{{"name", name + "-subnet"},
                              {"network_id", network.at("id")},
                              {"ip_version", 4},
                              {"cidr", cidr},
                              {"enable_dhcp", false}});
  spdlog::info("network: external network {} ({}) created on {}", name,
               std::string(network.at("id").as_string()), cidr);
}

std::shared_ptr<dataplane::Dataplane> make_dataplane(const Config& c, const std::string& state_dir,
                                                     dataplane::MetadataForwarder metadata) {
  auto name = c.get_string("network", "dataplane", "linux");
  if (name == "fake") return dataplane::make_fake_dataplane();
  if (name != "linux")
    throw std::runtime_error("[network] dataplane: unknown driver '" + name + "' (linux or fake)");
  dataplane::LinuxSettings s;
  s.state_dir = c.get_string("network", "agent_state_dir", state_dir + "/network-agent");
  s.host_namespace = c.get_string("network", "host_namespace", "");
  s.external_bridge = c.get_string("network", "external_bridge", s.external_bridge);
  s.physical_network = c.get_string("network", "external_physical_network", s.physical_network);
  s.local_ip = c.get_string("network", "local_ip", "");
  s.table = c.get_string("network", "nft_table", s.table);
  s.metadata_port = static_cast<int>(c.get_int("network", "metadata_proxy_port", s.metadata_port));
  s.dns_domain = c.get_string("network", "dns_domain", s.dns_domain);
  s.metadata = std::move(metadata);
  return dataplane::make_linux_dataplane(std::move(s));
}

std::unique_ptr<NetworkAgent> start_network_agent(const Config& c, const std::string& state_dir,
                                                  const std::shared_ptr<Bus>& bus,
                                                  dataplane::MetadataForwarder metadata) {
  if (!c.get_bool("network", "agent", true)) return nullptr;
  AgentSettings a;
  a.host = c.host();
  a.network_node = c.get_bool("network", "network_node", true);
  a.tick = std::chrono::milliseconds(c.get_int("network", "agent_tick_ms", 1000));
  a.resync = std::chrono::milliseconds(
      static_cast<long>(c.get_double("network", "resync_seconds", 30) * 1000));
  auto agent =
      std::make_unique<NetworkAgent>(make_dataplane(c, state_dir, std::move(metadata)), bus, a);
  agent->start();
  spdlog::info("network agent on host {} started ({} dataplane)", a.host,
               c.get_string("network", "dataplane", "linux"));
  return agent;
}

}  // namespace nubo::network
