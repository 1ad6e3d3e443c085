// What one host's network agent serves (the agents' side of Neutron's RPC): its desired dataplane
// as one document, and the port statuses it reports back.
#include <set>

#include "network/service/internal.hpp"

namespace nubo::network {

using namespace detail;

namespace {

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// A port this host's agent wires: VM ports bound here, and (on a network node) the DHCP and
// router ports, which live in this host's namespaces.
bool served(const json::object& port, const std::string& host, bool network_node) {
  auto owner = string_or(port, "device_owner");
  if (owner == "network:dhcp" || owner == "network:router_interface" ||
      owner == "network:router_gateway")
    return network_node;
  if (starts_with(owner, "network:")) return false;  // floating IPs and the like have no device
  return string_or(port, "binding:host_id") == host;
}

json::array addresses_of(const json::object& port) {
  json::array out;
  if (auto* ips = find(port, "fixed_ips"); ips && ips->is_array())
    for (auto& ip : ips->as_array())
      if (ip.is_object()) out.push_back(json::value(string_or(ip.as_object(), "ip_address")));
  if (auto* pairs = find(port, "allowed_address_pairs"); pairs && pairs->is_array())
    for (auto& p : pairs->as_array())
      if (p.is_object()) out.push_back(json::value(string_or(p.as_object(), "ip_address")));
  return out;
}

json::object pick(const json::object& row, std::initializer_list<const char*> keys) {
  json::object out;
  for (auto* k : keys)
    if (auto* v = find(row, k)) out[k] = *v;
  return out;
}

}  // namespace

json::object NetworkService::host_state(const std::string& host, bool network_node) {
  AuthContext auth;
  Caller c{auth, [](const std::string&, const PolicyTarget&) { return true; }};
  json::object out;
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, true, {}};
    std::multimap<std::string, std::string> groups_of_port, ports_of_group;
    for (auto& r :
         db::query_strings(s, "SELECT port_id, security_group_id FROM port_security_group", {})) {
      if (!r[0] || !r[1]) continue;
      groups_of_port.emplace(*r[0], *r[1]);
      ports_of_group.emplace(*r[1], *r[0]);
    }
    std::map<std::string, json::object> all_ports;
    for (auto& p : load_where(tx, Kind::port)) all_ports.emplace(string_or(p, "id"), std::move(p));

    json::array ports;
    std::set<std::string> network_ids, group_ids;
    for (auto& [id, p] : all_ports) {
      if (!served(p, host, network_node)) continue;
      auto view = pick(p, {"id", "network_id", "mac_address", "device_owner", "device_id",
                           "project_id", "admin_state_up", "port_security_enabled", "fixed_ips",
                           "allowed_address_pairs", "extra_dhcp_opts"});
      json::array groups;
      auto [from, to] = groups_of_port.equal_range(id);
      for (auto it = from; it != to; ++it) {
        groups.push_back(json::value(it->second));
        group_ids.insert(it->second);
      }
      view["security_groups"] = std::move(groups);
      network_ids.insert(string_or(p, "network_id"));
      ports.push_back(std::move(view));
    }

    json::array networks;
    for (auto& id : network_ids) {
      auto n = load(tx, Kind::network, id);
      if (!n) continue;
      auto view =
          pick(*n, {"id", "provider:network_type", "provider:segmentation_id",
                    "provider:physical_network", "mtu", "router:external", "admin_state_up"});
      json::array subnets;
      for (auto& sn : load_where(tx, Kind::subnet, db::Query{}.eq("network_id", id)))
        subnets.push_back(
            pick(sn, {"id", "cidr", "ip_version", "gateway_ip", "enable_dhcp", "dns_nameservers",
                      "host_routes", "ipv6_ra_mode", "ipv6_address_mode"}));
      view["subnets"] = std::move(subnets);
      networks.push_back(std::move(view));
    }

    // Security groups of the served ports, with the addresses of every member of the groups
    // their rules name as remote groups.
    json::array groups;
    std::set<std::string> remote_groups;
    for (auto& gid : group_ids) {
      json::array rules;
      for (auto& r :
           load_where(tx, Kind::security_group_rule, db::Query{}.eq("security_group_id", gid))) {
        if (auto remote = string_or(r, "remote_group_id"); !remote.empty())
          remote_groups.insert(remote);
        rules.push_back(pick(r, {"id", "direction", "ethertype", "protocol", "port_range_min",
                                 "port_range_max", "remote_ip_prefix", "remote_group_id"}));
      }
      groups.push_back(json::object{{"id", gid}, {"rules", std::move(rules)}});
    }
    json::object members;
    for (auto& gid : remote_groups) {
      json::array ips;
      auto [from, to] = ports_of_group.equal_range(gid);
      for (auto it = from; it != to; ++it)
        if (auto p = all_ports.find(it->second); p != all_ports.end())
          for (auto& ip : addresses_of(p->second)) ips.push_back(ip);
      members[gid] = std::move(ips);
    }

    json::array routers;
    if (network_node) {
      for (auto& r : load_where(tx, Kind::router)) {
        auto id = string_or(r, "id");
        json::object view = pick(r, {"id", "admin_state_up", "routes"});
        json::array interfaces;
        std::string gateway;
        for (auto& [pid, p] : all_ports) {
          if (string_or(p, "device_id") != id) continue;
          auto owner = string_or(p, "device_owner");
          if (owner == "network:router_interface")
            interfaces.push_back(json::value(pid));
          else if (owner == "network:router_gateway")
            gateway = pid;
        }
        if (interfaces.empty() && gateway.empty()) continue;
        view["interface_port_ids"] = std::move(interfaces);
        view["gateway_port_id"] = gateway;
        bool snat = true;
        if (auto* info = find(r, "external_gateway_info"); info && info->is_object())
          snat = bool_or(info->as_object(), "enable_snat", true);
        view["enable_snat"] = snat;
        json::array fips;
        for (auto& f : load_where(tx, Kind::floatingip, db::Query{}.eq("router_id", id)))
          if (!string_or(f, "port_id").empty())
            fips.push_back(pick(f, {"id", "floating_ip_address", "fixed_ip_address", "port_id"}));
        view["floating_ips"] = std::move(fips);
        routers.push_back(std::move(view));
      }
    }
    out = json::object{{"host", host},
                       {"networks", std::move(networks)},
                       {"ports", std::move(ports)},
                       {"security_groups", std::move(groups)},
                       {"group_members", std::move(members)},
                       {"routers", std::move(routers)}};
  });
  return out;
}

void NetworkService::set_port_status(const std::vector<std::string>& up,
                                     const std::vector<std::string>& down) {
  if (up.empty() && down.empty()) return;
  AuthContext auth;
  Caller c{auth, [](const std::string&, const PolicyTarget&) { return true; }};
  in_write(c, [&](Tx& tx) {
    for (auto* list : {&up, &down}) {
      const char* status = list == &up ? "ACTIVE" : "DOWN";
      for (auto& id : *list) {
        auto row = load(tx, Kind::port, id);
        if (!row || string_or(*row, "status") == status) continue;
        (*row)["status"] = status;
        save(tx, Kind::port, *row);
        if (list == &up) notify_compute(tx, *row, "network-vif-plugged");
      }
    }
  });
}

void NetworkService::set_change_listener(std::function<void()> listener) {
  std::lock_guard lock(listener_mutex_);
  listener_ = std::move(listener);
}

void NetworkService::changed() {
  state_->generation++;
  std::function<void()> listener;
  {
    std::lock_guard lock(listener_mutex_);
    listener = listener_;
  }
  if (listener) listener();
}

}  // namespace nubo::network
