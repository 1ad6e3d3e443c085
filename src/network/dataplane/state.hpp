// The desired dataplane of one host, as the network service sends it to the host's agent
// (NetworkService::host_state), in typed form for the drivers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace nubo::network::dataplane {

struct Route {
  std::string destination, nexthop;
  bool operator==(const Route&) const = default;
};

struct Subnet {
  std::string id, cidr, gateway_ip;
  int ip_version = 4;
  bool enable_dhcp = false;
  std::vector<std::string> dns_nameservers;
  std::vector<Route> host_routes;
  std::string ipv6_ra_mode;  // IPv6: slaac, dhcpv6-stateless, dhcpv6-stateful or none ("")
};

struct Network {
  std::string id;
  std::string network_type;  // vxlan, flat, local
  long segmentation_id = 0;
  std::string physical_network;
  int mtu = 1500;
  bool external = false;
  bool admin_state_up = true;
  std::vector<Subnet> subnets;
  const Subnet* subnet(const std::string& id) const;
};

struct FixedIp {
  std::string subnet_id, ip_address;
};

struct AddressPair {
  std::string ip_address, mac_address;  // ip_address may be a CIDR
};

// One of a port's extra_dhcp_opts (a DHCP option by name or number, for IPv4 or IPv6).
struct DhcpOption {
  std::string name, value;
  int ip_version = 4;
  bool operator==(const DhcpOption&) const = default;
};

struct Port {
  std::string id, network_id, mac_address, device_owner, device_id, project_id;
  bool admin_state_up = true;
  bool port_security_enabled = true;
  std::vector<FixedIp> fixed_ips;
  std::vector<AddressPair> allowed_address_pairs;
  std::vector<std::string> security_groups;
  std::vector<DhcpOption> extra_dhcp_opts;
  bool is_dhcp() const { return device_owner == "network:dhcp"; }
  bool is_router_interface() const { return device_owner == "network:router_interface"; }
  bool is_router_gateway() const { return device_owner == "network:router_gateway"; }
  // A VM's (or anything else's bound here): its device is made by someone else (QEMU).
  bool is_vm() const { return !is_dhcp() && !is_router_interface() && !is_router_gateway(); }
};

struct Rule {
  std::string id, direction, ethertype, protocol;  // protocol "" = any
  std::optional<long> port_range_min, port_range_max;
  std::string remote_ip_prefix, remote_group_id;
};

struct SecurityGroup {
  std::string id;
  std::vector<Rule> rules;
};

struct FloatingIp {
  std::string id, floating_ip_address, fixed_ip_address, port_id;
  bool operator==(const FloatingIp&) const = default;
};

struct Router {
  std::string id;
  bool admin_state_up = true;
  bool enable_snat = true;
  std::string gateway_port_id;  // "" when the router has no external gateway
  std::vector<std::string> interface_port_ids;
  std::vector<Route> routes;
  std::vector<FloatingIp> floating_ips;
};

struct HostState {
  std::string host;
  std::vector<Network> networks;
  std::vector<Port> ports;
  std::map<std::string, SecurityGroup> security_groups;
  std::map<std::string, std::vector<std::string>> group_members;  // group id -> addresses
  std::vector<Router> routers;

  const Network* network(const std::string& id) const;
  const Port* port(const std::string& id) const;
  const Router* router(const std::string& id) const;
};

// Throws std::invalid_argument when the document is not a host state.
HostState parse_host_state(const json::object& o);

// Device names, as Neutron's Linux bridge agent names them (IFNAMSIZ is 16).
std::string bridge_name(const std::string& network_id);  // brq + 11
std::string tap_name(const std::string& port_id);        // tap + 11: the host's end
std::string dhcp_device(const std::string& port_id);     // ns- + 11, in qdhcp-<network>
std::string router_device(const Port& port);             // qr- / qg- + 11, in qrouter-<router>
std::string dhcp_namespace(const std::string& network_id);
std::string router_namespace(const std::string& router_id);

}  // namespace nubo::network::dataplane
