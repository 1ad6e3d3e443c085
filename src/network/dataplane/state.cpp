#include "network/dataplane/state.hpp"

#include <stdexcept>

namespace nubo::network::dataplane {

namespace {

const json::array& array_at(const json::object& o, std::string_view key) {
  static const json::array empty;
  auto* v = find(o, key);
  return v && v->is_array() ? v->as_array() : empty;
}

std::vector<std::string> strings_at(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  for (auto& v : array_at(o, key))
    if (v.is_string()) out.emplace_back(v.as_string());
  return out;
}

std::vector<Route> routes_at(const json::object& o, std::string_view key) {
  std::vector<Route> out;
  for (auto& v : array_at(o, key))
    if (v.is_object())
      out.push_back({string_or(v.as_object(), "destination"), string_or(v.as_object(), "nexthop")});
  return out;
}

std::optional<long> optional_int(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  if (!v || !v->is_number()) return std::nullopt;
  return static_cast<long>(int_or(o, key));
}

template <class T>
const T* by_id(const std::vector<T>& items, const std::string& id) {
  for (auto& item : items)
    if (item.id == id) return &item;
  return nullptr;
}

}  // namespace

const Subnet* Network::subnet(const std::string& id_) const { return by_id(subnets, id_); }
const Network* HostState::network(const std::string& id) const { return by_id(networks, id); }
const Port* HostState::port(const std::string& id) const { return by_id(ports, id); }
const Router* HostState::router(const std::string& id) const { return by_id(routers, id); }

HostState parse_host_state(const json::object& o) {
  if (!find(o, "networks") || !find(o, "ports"))
    throw std::invalid_argument("not a host state: no networks or ports");
  HostState h;
  h.host = string_or(o, "host");
  for (auto& v : array_at(o, "networks")) {
    auto& n = v.as_object();
    Network net{string_or(n, "id"),
                string_or(n, "provider:network_type"),
                static_cast<long>(int_or(n, "provider:segmentation_id")),
                string_or(n, "provider:physical_network"),
                static_cast<int>(int_or(n, "mtu", 1500)),
                bool_or(n, "router:external", false),
                bool_or(n, "admin_state_up", true),
                {}};
    for (auto& sv : array_at(n, "subnets")) {
      auto& s = sv.as_object();
      net.subnets.push_back({string_or(s, "id"), string_or(s, "cidr"), string_or(s, "gateway_ip"),
                             static_cast<int>(int_or(s, "ip_version", 4)),
                             bool_or(s, "enable_dhcp", false), strings_at(s, "dns_nameservers"),
                             routes_at(s, "host_routes"), string_or(s, "ipv6_ra_mode")});
    }
    h.networks.push_back(std::move(net));
  }
  for (auto& v : array_at(o, "ports")) {
    auto& p = v.as_object();
    Port port{string_or(p, "id"),
              string_or(p, "network_id"),
              string_or(p, "mac_address"),
              string_or(p, "device_owner"),
              string_or(p, "device_id"),
              string_or(p, "project_id"),
              bool_or(p, "admin_state_up", true),
              bool_or(p, "port_security_enabled", true),
              {},
              {},
              strings_at(p, "security_groups")};
    for (auto& ip : array_at(p, "fixed_ips"))
      if (ip.is_object())
        port.fixed_ips.push_back(
            {string_or(ip.as_object(), "subnet_id"), string_or(ip.as_object(), "ip_address")});
    for (auto& pair : array_at(p, "allowed_address_pairs"))
      if (pair.is_object())
        port.allowed_address_pairs.push_back({string_or(pair.as_object(), "ip_address"),
                                              string_or(pair.as_object(), "mac_address")});
    for (auto& opt : array_at(p, "extra_dhcp_opts"))
      if (opt.is_object())
        port.extra_dhcp_opts.push_back(
            {string_or(opt.as_object(), "opt_name"), string_or(opt.as_object(), "opt_value"),
             static_cast<int>(int_or(opt.as_object(), "ip_version", 4))});
    h.ports.push_back(std::move(port));
  }
  for (auto& v : array_at(o, "security_groups")) {
    auto& g = v.as_object();
    SecurityGroup group{string_or(g, "id"), {}};
    for (auto& rv : array_at(g, "rules")) {
      auto& r = rv.as_object();
      group.rules.push_back({string_or(r, "id"), string_or(r, "direction"),
                             string_or(r, "ethertype", "IPv4"), string_or(r, "protocol"),
                             optional_int(r, "port_range_min"), optional_int(r, "port_range_max"),
                             string_or(r, "remote_ip_prefix"), string_or(r, "remote_group_id")});
    }
    h.security_groups.emplace(group.id, std::move(group));
  }
  if (auto* m = find(o, "group_members"); m && m->is_object())
    for (auto& kv : m->as_object())
      if (kv.value().is_array())
        for (auto& ip : kv.value().as_array())
          if (ip.is_string()) h.group_members[kv.key()].emplace_back(ip.as_string());
  for (auto& v : array_at(o, "routers")) {
    auto& r = v.as_object();
    Router router{string_or(r, "id"),
                  bool_or(r, "admin_state_up", true),
                  bool_or(r, "enable_snat", true),
                  string_or(r, "gateway_port_id"),
                  strings_at(r, "interface_port_ids"),
                  routes_at(r, "routes"),
                  {}};
    for (auto& fv : array_at(r, "floating_ips")) {
      auto& f = fv.as_object();
      router.floating_ips.push_back({string_or(f, "id"), string_or(f, "floating_ip_address"),
                                     string_or(f, "fixed_ip_address"), string_or(f, "port_id")});
    }
    h.routers.push_back(std::move(router));
  }
  return h;
}

std::string bridge_name(const std::string& network_id) { return "brq" + network_id.substr(0, 11); }
std::string tap_name(const std::string& port_id) { return "tap" + port_id.substr(0, 11); }
std::string dhcp_device(const std::string& port_id) { return "ns-" + port_id.substr(0, 11); }
std::string router_device(const Port& port) {
  return (port.is_router_gateway() ? "qg-" : "qr-") + port.id.substr(0, 11);
}
std::string dhcp_namespace(const std::string& network_id) { return "qdhcp-" + network_id; }
std::string router_namespace(const std::string& router_id) { return "qrouter-" + router_id; }

}  // namespace nubo::network::dataplane
