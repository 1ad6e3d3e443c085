// Networks, subnets (with their allocation pools and IPAM), subnet pools, address scopes and
// RBAC policies.
#include <soci/soci.h>

#include <algorithm>

#include "common/ids.hpp"
#include "network/service/internal.hpp"
#include "network/store/schema.hpp"

namespace nubo::network::detail {

namespace {

json::array string_list(const json::value& v, const std::string& name) {
  if (!v.is_array()) throw bad_attribute(name, "'" + to_string(v) + "' is not a list");
  return v.as_array();
}

void require_admin(Tx& tx, const std::string& rule) {
  if (!tx.admin) throw policy_denied(rule);
}

// A flag only admins may turn on (shared, router:external, is_default).
void take_admin_flag(Tx& tx, json::object& row, const json::object& body, const char* name,
                     const std::string& rule) {
  auto* v = find(body, name);
  if (!v) return;
  bool on = to_bool(*v, name);
  if (on) require_admin(tx, rule);
  row[name] = on;
}

std::string range_text(const ipam::Range& r) {
  return "{'start': '" + r.start.str() + "', 'end': '" + r.end.str() + "'}";
}

json::array pools_json(const std::vector<ipam::Range>& pools) {
  json::array out;
  for (auto& r : pools) out.push_back(json::object{{"start", r.start.str()}, {"end", r.end.str()}});
  return out;
}

long network_mtu(Tx& tx, const std::string& type) {
  return type == "vxlan" ? tx.settings.global_mtu - 50 : tx.settings.global_mtu;
}

// A requested MTU, from 68 up to what the network's segment carries.
void take_mtu(Tx& tx, json::object& row, const json::object& body) {
  auto* v = find(body, "mtu");
  if (!v) return;
  long mtu = to_int(*v, "mtu");
  long max_mtu = network_mtu(tx, string_or(row, "provider:network_type"));
  if (mtu < 68)
    throw bad_attribute("mtu",
                        "'" + std::to_string(mtu) + "' is too small - must be at least '68'");
  if (mtu > max_mtu)
    throw invalid_input("Requested MTU is too big, maximum is " + std::to_string(max_mtu));
  row["mtu"] = mtu;
}

// The VXLAN network identifier not yet used (Neutron's tenant network segment allocation).
long next_vni(Tx& tx) {
  std::set<long> used;
  for (auto& n : load_where(tx, Kind::network))
    if (string_or(n, "provider:network_type") == "vxlan")
      used.insert(static_cast<long>(int_or(n, "provider:segmentation_id")));
  long vni = 1;
  while (used.count(vni)) ++vni;
  return vni;
}

std::vector<json::object> subnets_of(Tx& tx, const std::string& network_id) {
  auto rows = load_where(tx, Kind::subnet, db::Query{}.eq("network_id", network_id));
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
    return std::pair(string_or(a, "created_at"), string_or(a, "id")) <
           std::pair(string_or(b, "created_at"), string_or(b, "id"));
  });
  return rows;
}

}  // namespace

// ---- networks ----

json::object create_network(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  json::object row{{"project_id", project},
                   {"name", ""},
                   {"admin_state_up", true},
                   {"status", "ACTIVE"},
                   {"shared", false},
                   {"router:external", false},
                   {"port_security_enabled", true},
                   {"availability_zone_hints", json::array{}},
                   {"availability_zones", json::array{json::value("nova")}},
                   {"ipv4_address_scope", nullptr},
                   {"ipv6_address_scope", nullptr},
                   {"l2_adjacency", true}};
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  take_admin_flag(tx, row, body, "shared", "create_network:shared");
  take_admin_flag(tx, row, body, "router:external", "create_network:router:external");
  if (auto* v = find(body, "port_security_enabled"))
    row["port_security_enabled"] = to_bool(*v, "port_security_enabled");
  if (auto* v = find(body, "availability_zone_hints")) {
    auto hints = string_list(*v, "availability_zone_hints");
    for (auto& h : hints) {
      auto zone = to_string_attr(h, "availability_zone_hints");
      if (std::find(tx.settings.availability_zones.begin(), tx.settings.availability_zones.end(),
                    zone) == tx.settings.availability_zones.end())
        throw ApiError(404, "AvailabilityZone " + zone + " could not be found.",
                       "AvailabilityZoneNotFound");
    }
    row["availability_zone_hints"] = hints;
  }
  // Segments: VXLAN for project networks, flat on the physical network for external ones.
  std::string type = tx.settings.default_network_type;
  bool provider = false;
  for (auto* a : {"provider:network_type", "provider:physical_network", "provider:segmentation_id"})
    if (find(body, a)) provider = true;
  if (provider) require_admin(tx, "create_network:provider:network_type");
  if (auto* v = find(body, "provider:network_type")) {
    type = to_string_attr(*v, "provider:network_type");
    if (type != "flat" && type != "vxlan" && type != "local")
      throw invalid_input("network_type value '" + type + "' not supported");
  }
  row["provider:network_type"] = type;
  row["provider:physical_network"] = nullptr;
  row["provider:segmentation_id"] = nullptr;
  if (type == "flat") {
    std::string physnet = tx.settings.physical_network;
    if (auto* v = find(body, "provider:physical_network"))
      physnet = to_string_attr(*v, "provider:physical_network");
    if (physnet != tx.settings.physical_network)
      throw invalid_input("physical_network '" + physnet + "' unknown for flat provider network");
    for (auto& n : load_where(tx, Kind::network))
      if (string_or(n, "provider:network_type") == "flat" &&
          string_or(n, "provider:physical_network") == physnet)
        throw ApiError(
            409, "Unable to create the flat network. Physical network " + physnet + " is in use.",
            "FlatNetworkInUse");
    row["provider:physical_network"] = physnet;
  } else if (type == "vxlan") {
    long vni = next_vni(tx);
    if (auto* v = find(body, "provider:segmentation_id")) {
      vni = to_int(*v, "provider:segmentation_id");
      if (vni < 1 || vni > 16777215)
        throw invalid_input("segmentation_id out of range (1 through 16777215)");
      for (auto& n : load_where(tx, Kind::network))
        if (string_or(n, "provider:network_type") == "vxlan" &&
            int_or(n, "provider:segmentation_id") == vni)
          throw ApiError(
              409,
              "Unable to create the network. The tunnel ID " + std::to_string(vni) + " is in use.",
              "TunnelIdInUse");
    }
    row["provider:segmentation_id"] = vni;
  }
  row["mtu"] = network_mtu(tx, type);
  take_mtu(tx, row, body);
  check_quota(tx, Kind::network, project);
  insert(tx, Kind::network, row);
  return row;
}

void update_network(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  if (auto* v = find(body, "port_security_enabled"))
    row["port_security_enabled"] = to_bool(*v, "port_security_enabled");
  auto id = string_or(row, "id");
  if (auto* v = find(body, "shared")) {
    bool shared = to_bool(*v, "shared");
    if (shared != bool_or(row, "shared", false)) {
      require_admin(tx, "update_network:shared");
      if (!shared) {
        // Other projects' ports keep the network shared.
        for (auto& p : load_where(tx, Kind::port, db::Query{}.eq("network_id", id)))
          if (string_or(p, "project_id") != string_or(row, "project_id") &&
              string_or(p, "device_owner").rfind("network:", 0) != 0 &&
              !network_shared_with(tx, json::object{{"id", id}, {"shared", false}},
                                   string_or(p, "project_id")))
            throw ApiError(409,
                           "Unable to reconfigure sharing settings for network " + id +
                               ". Multiple tenants are using it.",
                           "InvalidSharedSetting");
      }
      row["shared"] = shared;
    }
  }
  if (auto* v = find(body, "router:external")) {
    bool external = to_bool(*v, "router:external");
    if (external != bool_or(row, "router:external", false)) {
      require_admin(tx, "update_network:router:external");
      if (!external)
        for (auto& p : load_where(tx, Kind::port, db::Query{}.eq("network_id", id)))
          if (string_or(p, "device_owner") == "network:router_gateway" ||
              string_or(p, "device_owner") == "network:floatingip")
            throw network_in_use(id);
      row["router:external"] = external;
    }
  }
  take_mtu(tx, row, body);
}

void delete_network(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  // Floating IPs not associated with a port go with their external network.
  for (auto& fip : load_where(tx, Kind::floatingip, db::Query{}.eq("floating_network_id", id)))
    if (fip["port_id"].is_null()) delete_floatingip(tx, fip);
  auto ports = load_where(tx, Kind::port, db::Query{}.eq("network_id", id));
  for (auto& p : ports)
    if (string_or(p, "device_owner") != "network:dhcp") throw network_in_use(id);
  for (auto& p : ports) delete_port(tx, p, true);
  db::execute(tx.s, "DELETE FROM ip_allocation WHERE network_id = :p0", {id});
  db::execute(tx.s, "DELETE FROM subnet WHERE network_id = :p0", {id});
  db::execute(tx.s, "DELETE FROM rbac_policy WHERE object_type = 'network' AND object_id = :p0",
              {id});
  erase(tx, Kind::network, id);
}

// ---- subnets ----

std::vector<ipam::Range> pools_of(const json::object& subnet) {
  std::vector<ipam::Range> out;
  if (auto* p = find(subnet, "allocation_pools"); p && p->is_array())
    for (auto& r : p->as_array()) {
      auto start = ipam::parse_address(string_or(r.as_object(), "start"));
      auto end = ipam::parse_address(string_or(r.as_object(), "end"));
      if (start && end) out.push_back({*start, *end});
    }
  return out;
}

namespace {

std::vector<ipam::Range> parse_pools(const json::value& v, const ipam::Cidr& cidr) {
  std::vector<ipam::Range> pools;
  for (auto& p : string_list(v, "allocation_pools")) {
    if (!p.is_object() || !find(p.as_object(), "start") || !find(p.as_object(), "end"))
      throw bad_attribute("allocation_pools",
                          "Invalid data format for IP pool: '" + to_string(p) + "'");
    auto start = to_ip(p.as_object().at("start"), "allocation_pools");
    auto end = to_ip(p.as_object().at("end"), "allocation_pools");
    ipam::Range r{start, end};
    if (start.version != cidr.network.version || end.version != cidr.network.version)
      throw ApiError(400,
                     "The allocation pool " + range_text(r) + " spans beyond the subnet cidr " +
                         cidr.str() + ".",
                     "OutOfBoundsAllocationPool");
    if (end < start)
      throw ApiError(400,
                     "Invalid input for operation: Pool start " + start.str() + " is after end " +
                         end.str() + ".",
                     "InvalidAllocationPool");
    if (!cidr.contains(start) || !cidr.contains(end))
      throw ApiError(400,
                     "The allocation pool " + range_text(r) + " spans beyond the subnet cidr " +
                         cidr.str() + ".",
                     "OutOfBoundsAllocationPool");
    pools.push_back(r);
  }
  for (size_t i = 0; i < pools.size(); ++i)
    for (size_t j = i + 1; j < pools.size(); ++j)
      if (!(pools[i].end < pools[j].start || pools[j].end < pools[i].start))
        throw ApiError(400,
                       "Found overlapping allocation pools: " + range_text(pools[i]) + " and " +
                           range_text(pools[j]),
                       "OverlappingAllocationPools");
  return pools;
}

void check_gateway_outside(const std::optional<ipam::Address>& gateway,
                           const std::vector<ipam::Range>& pools) {
  if (!gateway) return;
  for (auto& p : pools)
    if (p.contains(*gateway))
      throw ApiError(409,
                     "Gateway ip " + gateway->str() + " conflicts with allocation pool " +
                         p.start.str() + "-" + p.end.str(),
                     "GatewayConflictWithAllocationPools");
}

json::array parse_nameservers(Tx& tx, const json::value& v) {
  auto list = string_list(v, "dns_nameservers");
  if (static_cast<long>(list.size()) > tx.settings.max_dns_nameservers)
    throw ApiError(400,
                   "Unable to complete operation for the subnet. The number of DNS nameservers "
                   "exceeds the limit " +
                       std::to_string(tx.settings.max_dns_nameservers) + ".",
                   "DNSNameServersExhausted");
  std::set<std::string> seen;
  json::array out;
  for (auto& n : list) {
    auto a = to_ip(n, "dns_nameservers");
    if (!seen.insert(a.str()).second)
      throw bad_attribute("dns_nameservers", "Duplicate nameserver '" + a.str() + "'");
    out.push_back(json::value(std::string(n.as_string())));
  }
  return out;
}

json::array parse_host_routes(Tx& tx, const json::value& v, int version) {
  auto list = string_list(v, "host_routes");
  if (static_cast<long>(list.size()) > tx.settings.max_subnet_host_routes)
    throw ApiError(400,
                   "Unable to complete operation for the subnet. The number of host routes "
                   "exceeds the limit " +
                       std::to_string(tx.settings.max_subnet_host_routes) + ".",
                   "HostRoutesExhausted");
  json::array out;
  std::set<std::string> seen;
  for (auto& r : list) {
    if (!r.is_object() || !find(r.as_object(), "destination") || !find(r.as_object(), "nexthop"))
      throw bad_attribute("host_routes",
                          "Invalid data format for hostroute: '" + to_string(r) + "'");
    auto dest_text = to_string_attr(r.as_object().at("destination"), "host_routes");
    auto dest = ipam::parse_cidr(dest_text);
    if (!dest) throw bad_attribute("host_routes", "'" + dest_text + "' is not a valid IP subnet");
    auto hop = to_ip(r.as_object().at("nexthop"), "host_routes");
    if (dest->network.version != version || hop.version != version)
      throw invalid_input("Host route " + dest_text + " does not match the subnet's IP version");
    if (!seen.insert(dest->str() + hop.str()).second)
      throw bad_attribute("host_routes", "Duplicate hostroute '" + to_string(r) + "'");
    out.push_back(json::object{{"destination", dest->str()}, {"nexthop", hop.str()}});
  }
  return out;
}

const char* kIpv6Modes[] = {"slaac", "dhcpv6-stateful", "dhcpv6-stateless"};

std::optional<std::string> ipv6_mode(const json::object& body, const std::string& name) {
  auto* v = find(body, name);
  if (!v || v->is_null()) return std::nullopt;
  auto mode = to_string_attr(*v, name);
  if (std::none_of(std::begin(kIpv6Modes), std::end(kIpv6Modes),
                   [&](auto* m) { return mode == m; }))
    throw bad_attribute(
        name, "'" + mode + "' is not in ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac']");
  return mode;
}

// A prefix of `prefixlen` from the pool's prefixes, free of the subnets already taken from it.
ipam::Cidr allocate_prefix(Tx& tx, const json::object& pool, int prefixlen) {
  std::vector<ipam::Cidr> taken;
  for (auto& s : load_where(tx, Kind::subnet))
    if (string_or(s, "subnetpool_id") == string_or(pool, "id"))
      if (auto c = ipam::parse_cidr(string_or(s, "cidr"))) taken.push_back(*c);
  for (auto& p : pool.at("prefixes").as_array()) {
    auto prefix = ipam::parse_cidr(p.as_string());
    if (!prefix || prefix->prefix > prefixlen) continue;
    ipam::u128 step = ipam::network_of(prefix->network, prefixlen).size();
    for (auto candidate = ipam::network_of(prefix->network, prefixlen);
         prefix->contains(candidate.network);
         candidate = ipam::network_of(candidate.network + step, prefixlen)) {
      bool free =
          std::none_of(taken.begin(), taken.end(), [&](auto& t) { return t.overlaps(candidate); });
      if (free) return candidate;
      if (candidate.last() == prefix->last()) break;
    }
  }
  throw ApiError(409,
                 "Insufficient prefix space to allocate subnet size /" + std::to_string(prefixlen),
                 "SubnetAllocationError");
}

bool is_auto_address(const json::object& subnet) {
  auto mode = string_or(subnet, "ipv6_address_mode");
  return int_or(subnet, "ip_version") == 6 && (mode == "slaac" || mode == "dhcpv6-stateless");
}

// The network's DHCP port gets an address on each subnet with DHCP (Neutron's DHCP agent port).
void ensure_dhcp_port(Tx& tx, const json::object& network, const json::object& subnet) {
  if (!bool_or(subnet, "enable_dhcp", true)) return;
  auto network_id = string_or(network, "id");
  auto ports = load_where(
      tx, Kind::port, db::Query{}.eq("network_id", network_id).eq("device_owner", "network:dhcp"));
  if (ports.empty()) {
    json::object body{{"network_id", network_id},
                      {"device_owner", "network:dhcp"},
                      {"device_id", "dhcp-" + network_id},
                      {"project_id", string_or(network, "project_id")},
                      {"fixed_ips", json::array{json::object{{"subnet_id", subnet.at("id")}}}}};
    Tx admin{tx.s, tx.c, tx.settings, true, tx.now, tx.ip_hints};
    create_port(admin, body);
    return;
  }
  auto port = ports.front();
  auto ips = allocate_ips(tx, network, string_or(port, "id"), string_or(port, "mac_address"),
                          nullptr, {string_or(subnet, "id")});
  auto& fixed = port["fixed_ips"].as_array();
  for (auto& ip : ips) fixed.push_back(ip);
  save(tx, Kind::port, port);
}

}  // namespace

json::object create_subnet(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  auto* network_v = &required(body, "network_id");
  auto network_id = to_uuid(*network_v, "network_id");
  auto network = fetch(tx, Kind::network, network_id);
  if (!tx.admin && !owns(tx, network)) throw policy_denied("create_subnet");
  auto* version_v = &required(body, "ip_version");
  long version = to_int(*version_v, "ip_version");
  if (version != 4 && version != 6)
    throw bad_attribute("ip_version", std::to_string(version) + " is not in [4, 6]");

  json::object row{{"project_id", project},
                   {"network_id", network_id},
                   {"name", ""},
                   {"ip_version", version},
                   {"subnetpool_id", nullptr},
                   {"enable_dhcp", true},
                   {"ipv6_ra_mode", nullptr},
                   {"ipv6_address_mode", nullptr},
                   {"dns_nameservers", json::array{}},
                   {"host_routes", json::array{}},
                   {"service_types", json::array{}}};
  take_common(row, body);
  std::optional<ipam::Cidr> cidr;
  if (auto* v = find(body, "cidr"); v && !v->is_null()) {
    auto text = to_string_attr(*v, "cidr");
    cidr = ipam::parse_cidr(text);
    if (!cidr || text.find('/') == std::string::npos)
      throw bad_attribute("cidr", "'" + text + "' is not a valid IP subnet");
    if (cidr->network.version == 4 && cidr->str() != text)
      throw bad_attribute("cidr",
                          "'" + text + "' isn't a recommended CIDR, use '" + cidr->str() + "'");
    if (cidr->network.version != version)
      throw invalid_input("Cidr " + text + " does not match the ip_version " +
                          std::to_string(version));
    if (cidr->prefix == 0 || (version == 4 && cidr->prefix > 32))
      throw invalid_input("0.0.0.0/0 is not allowed as a subnet CIDR");
  }
  if (auto* v = find(body, "subnetpool_id"); v && !v->is_null()) {
    auto pool_id = to_uuid(*v, "subnetpool_id");
    auto pool = fetch(tx, Kind::subnetpool, pool_id);
    if (int_or(pool, "ip_version") != version)
      throw bad_request("BadRequest", "Bad subnets request: Cannot allocate IPv" +
                                          std::to_string(version) + " subnet from IPv" +
                                          std::to_string(int_or(pool, "ip_version")) +
                                          " subnet pool.");
    long prefixlen = int_or(pool, "default_prefixlen");
    if (auto* p = find(body, "prefixlen")) prefixlen = to_int(*p, "prefixlen");
    if (prefixlen < int_or(pool, "min_prefixlen") || prefixlen > int_or(pool, "max_prefixlen"))
      throw bad_request("IllegalSubnetPoolPrefixLength",
                        "Illegal prefix bounds: prefixlen=" + std::to_string(prefixlen) +
                            ", min_prefixlen=" + std::to_string(int_or(pool, "min_prefixlen")) +
                            ", max_prefixlen=" + std::to_string(int_or(pool, "max_prefixlen")) +
                            ".");
    if (cidr) {
      bool inside = false;
      for (auto& p : pool.at("prefixes").as_array())
        if (auto c = ipam::parse_cidr(p.as_string());
            c && c->contains(cidr->network) && c->prefix <= cidr->prefix)
          inside = true;
      if (!inside)
        throw bad_request("BadRequest", "Bad subnets request: Cidr " + cidr->str() +
                                            " is not in the subnet pool's prefixes.");
    } else {
      cidr = allocate_prefix(tx, pool, static_cast<int>(prefixlen));
    }
    row["subnetpool_id"] = pool_id;
  } else if (!cidr) {
    throw bad_request(
        "BadRequest",
        "Bad subnets request: a subnetpool must be specified in the absence of a cidr.");
  }
  row["cidr"] = cidr->str();

  // Overlap with the network's other subnets.
  for (auto& other : subnets_of(tx, network_id))
    if (auto c = ipam::parse_cidr(string_or(other, "cidr")); c && c->overlaps(*cidr))
      throw invalid_input("Requested subnet with cidr: " + cidr->str() +
                          " for network: " + network_id + " overlaps with another subnet");

  auto ra = ipv6_mode(body, "ipv6_ra_mode");
  auto address = ipv6_mode(body, "ipv6_address_mode");
  if (version == 4 && (ra || address))
    throw invalid_input(std::string(ra ? "ipv6_ra_mode" : "ipv6_address_mode") +
                        " is not valid when ip_version is 4");
  if (ra && address && *ra != *address)
    throw invalid_input("ipv6_ra_mode set to '" + *ra + "' with ipv6_address_mode set to '" +
                        *address +
                        "' is not valid. If both attributes are set, they must be the same value");
  if ((ra || address) && cidr->prefix != 64 &&
      ((address && *address != "dhcpv6-stateful") || (ra && *ra != "dhcpv6-stateful")))
    throw invalid_input("Invalid CIDR " + cidr->str() +
                        " for IPv6 address mode. OpenStack uses the EUI-64 address format, which "
                        "requires the prefix to be /64");
  if (ra) row["ipv6_ra_mode"] = *ra;
  if (address) row["ipv6_address_mode"] = *address;

  if (auto* v = find(body, "enable_dhcp")) row["enable_dhcp"] = to_bool(*v, "enable_dhcp");
  std::optional<ipam::Address> gateway = cidr->first() + 1;
  if (cidr->prefix >= cidr->bits() - 1) gateway.reset();
  if (auto* v = find(body, "gateway_ip")) {
    if (v->is_null()) {
      gateway.reset();
    } else {
      gateway = to_ip(*v, "gateway_ip");
      if (gateway->version != version)
        throw invalid_input("Gateway IP version inconsistent with allocation pool version");
      if (cidr->contains(*gateway) &&
          ((*gateway == cidr->first() && version == 4) ||
           (version == 4 && *gateway == cidr->last() && cidr->prefix < 31)))
        throw invalid_input("Gateway is not valid on subnet");
    }
  }
  row["gateway_ip"] = gateway ? json::value(gateway->str()) : json::value(nullptr);
  std::vector<ipam::Range> pools;
  if (auto* v = find(body, "allocation_pools"); v && !v->is_null()) {
    pools = parse_pools(*v, *cidr);
    check_gateway_outside(gateway, pools);
  } else {
    pools =
        ipam::default_pools(*cidr, gateway && cidr->contains(*gateway) ? gateway : std::nullopt);
  }
  row["allocation_pools"] = pools_json(pools);
  if (auto* v = find(body, "dns_nameservers"); v && !v->is_null())
    row["dns_nameservers"] = parse_nameservers(tx, *v);
  if (auto* v = find(body, "host_routes"); v && !v->is_null())
    row["host_routes"] = parse_host_routes(tx, *v, static_cast<int>(version));
  if (auto* v = find(body, "service_types"); v && !v->is_null()) {
    json::array types;
    for (auto& t : string_list(*v, "service_types"))
      types.push_back(json::value(to_string_attr(t, "service_types")));
    row["service_types"] = types;
  }
  check_quota(tx, Kind::subnet, project);
  insert(tx, Kind::subnet, row);
  touch(tx, Kind::network, network_id);
  ensure_dhcp_port(tx, network, row);
  // Ports already on the network get an automatic address on a new SLAAC subnet.
  if (is_auto_address(row))
    for (auto& port : load_where(tx, Kind::port, db::Query{}.eq("network_id", network_id))) {
      auto owner = string_or(port, "device_owner");
      if (is_router_port(owner) || owner == "network:dhcp") continue;
      auto ips = allocate_ips(tx, network, string_or(port, "id"), string_or(port, "mac_address"),
                              nullptr, {string_or(row, "id")});
      for (auto& ip : ips) port["fixed_ips"].as_array().push_back(ip);
      save(tx, Kind::port, port);
    }
  return row;
}

void update_subnet(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body);
  auto cidr = *ipam::parse_cidr(string_or(row, "cidr"));
  int version = static_cast<int>(int_or(row, "ip_version", 4));
  auto id = string_or(row, "id");
  if (auto* v = find(body, "enable_dhcp")) row["enable_dhcp"] = to_bool(*v, "enable_dhcp");
  std::optional<ipam::Address> gateway;
  if (auto g = get_string(row, "gateway_ip")) gateway = ipam::parse_address(*g);
  if (auto* v = find(body, "gateway_ip")) {
    if (v->is_null()) {
      gateway.reset();
    } else {
      gateway = to_ip(*v, "gateway_ip");
      if (gateway->version != version)
        throw invalid_input("Gateway IP version inconsistent with allocation pool version");
      auto rows = db::query_strings(
          tx.s, "SELECT port_id FROM ip_allocation WHERE subnet_id = :p0 AND ip_address = :p1",
          {id, gateway->str()});
      if (!rows.empty() && string_or(row, "gateway_ip") != gateway->str())
        throw ApiError(
            409, "Gateway ip " + gateway->str() + " conflicts with allocation pool or is in use",
            "GatewayIpInUse");
    }
    row["gateway_ip"] = gateway ? json::value(gateway->str()) : json::value(nullptr);
  }
  if (auto* v = find(body, "allocation_pools"); v && !v->is_null()) {
    auto pools = parse_pools(*v, cidr);
    row["allocation_pools"] = pools_json(pools);
  }
  check_gateway_outside(gateway, pools_of(row));
  if (auto* v = find(body, "dns_nameservers"))
    row["dns_nameservers"] = v->is_null() ? json::array{} : parse_nameservers(tx, *v);
  if (auto* v = find(body, "host_routes"))
    row["host_routes"] = v->is_null() ? json::array{} : parse_host_routes(tx, *v, version);
  if (auto* v = find(body, "service_types"); v && !v->is_null()) {
    json::array types;
    for (auto& t : string_list(*v, "service_types"))
      types.push_back(json::value(to_string_attr(t, "service_types")));
    row["service_types"] = types;
  }
  if (bool_or(row, "enable_dhcp", true))
    if (auto network = load(tx, Kind::network, string_or(row, "network_id"))) {
      bool has_dhcp_ip = false;
      for (auto& p : load_where(tx, Kind::port,
                                db::Query{}
                                    .eq("network_id", string_or(row, "network_id"))
                                    .eq("device_owner", "network:dhcp")))
        for (auto& ip : p["fixed_ips"].as_array())
          if (string_or(ip.as_object(), "subnet_id") == id) has_dhcp_ip = true;
      if (!has_dhcp_ip) ensure_dhcp_port(tx, *network, row);
    }
}

void delete_subnet(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  auto network_id = string_or(row, "network_id");
  auto rows = db::query_strings(
      tx.s, "SELECT DISTINCT port_id FROM ip_allocation WHERE subnet_id = :p0", {id});
  std::vector<json::object> dhcp_ports, auto_ports;
  for (auto& r : rows) {
    if (!r[0]) continue;
    auto port = load(tx, Kind::port, *r[0]);
    if (!port) continue;
    auto owner = string_or(*port, "device_owner");
    if (owner == "network:dhcp") {
      dhcp_ports.push_back(*port);
    } else if (is_auto_address(row) && !is_router_port(owner)) {
      auto_ports.push_back(*port);
    } else {
      throw ApiError(409,
                     "Unable to complete operation on subnet " + id +
                         ": One or more ports have an IP allocation from this subnet.",
                     "SubnetInUse");
    }
  }
  // The DHCP port and automatic (SLAAC) addresses go with the subnet.
  for (auto ports : {&dhcp_ports, &auto_ports})
    for (auto& port : *ports) {
      json::array keep;
      for (auto& ip : port["fixed_ips"].as_array())
        if (string_or(ip.as_object(), "subnet_id") != id) keep.push_back(ip);
      if (keep.empty() && ports == &dhcp_ports) {
        delete_port(tx, port, true);
        continue;
      }
      port["fixed_ips"] = keep;
      save(tx, Kind::port, port);
    }
  db::execute(tx.s, "DELETE FROM ip_allocation WHERE subnet_id = :p0", {id});
  erase(tx, Kind::subnet, id);
  touch(tx, Kind::network, network_id);
}

// ---- IPAM ----

bool is_router_port(const std::string& owner) {
  return owner == "network:router_interface" || owner == "network:router_gateway" ||
         owner == "network:router_interface_distributed" ||
         owner == "network:ha_router_replicated_interface";
}
bool is_floating_port(const std::string& owner) { return owner == "network:floatingip"; }

namespace {

std::set<ipam::Address> allocated(Tx& tx, const std::string& subnet_id) {
  std::set<ipam::Address> out;
  for (auto& r : db::query_strings(
           tx.s, "SELECT ip_address FROM ip_allocation WHERE subnet_id = :p0", {subnet_id}))
    if (r[0])
      if (auto a = ipam::parse_address(*r[0])) out.insert(*a);
  return out;
}

void record(Tx& tx, const json::object& subnet, const ipam::Address& a,
            const std::string& port_id) {
  if (tx.ip_hints) (*tx.ip_hints)[string_or(subnet, "id")] = a;
  db::execute(tx.s,
              "INSERT INTO ip_allocation (subnet_id, ip_address, network_id, port_id) VALUES (:p0, "
              ":p1, :p2, :p3)",
              {string_or(subnet, "id"), a.str(), string_or(subnet, "network_id"), port_id});
}

std::optional<ipam::Address> lowest_free(Tx& tx, const std::string& subnet_id,
                                         const std::vector<ipam::Range>& pools);

bool taken(Tx& tx, const std::string& subnet_id, const ipam::Address& a) {
  return !db::query_strings(
              tx.s, "SELECT port_id FROM ip_allocation WHERE subnet_id = :p0 AND ip_address = :p1",
              {subnet_id, a.str()})
              .empty();
}

// The lowest free address of the subnet's pools, or nullopt when they are full. Allocation usually
// continues after the previous one (a few lookups by key); without a hint, or when the next few
// addresses are taken, every allocated address is read once.
std::optional<ipam::Address> next_free(Tx& tx, const json::object& subnet) {
  auto subnet_id = string_or(subnet, "id");
  auto pools = pools_of(subnet);
  if (tx.ip_hints)
    if (auto hint = tx.ip_hints->find(subnet_id); hint != tx.ip_hints->end()) {
      auto a = hint->second + 1;
      for (int tries = 0; tries < 8; ++tries, a = a + 1) {
        auto in_pool =
            std::find_if(pools.begin(), pools.end(), [&](auto& r) { return r.contains(a); });
        if (in_pool == pools.end()) break;
        if (!taken(tx, subnet_id, a)) return a;
      }
    }
  return lowest_free(tx, subnet_id, pools);
}

std::optional<ipam::Address> lowest_free(Tx& tx, const std::string& subnet_id,
                                         const std::vector<ipam::Range>& pools) {
  auto used = allocated(tx, subnet_id);
  for (auto& pool : pools) {
    auto a = pool.start;
    auto it = used.lower_bound(a);
    while (true) {
      if (it == used.end() || *it != a) return a;
      if (a == pool.end) break;
      a = a + 1;
      ++it;
    }
  }
  return std::nullopt;
}

}  // namespace

json::array allocate_ips(Tx& tx, const json::object& network, const std::string& port_id,
                         const std::string& mac, const json::value* requests,
                         const std::vector<std::string>& only_subnets, const std::string& owner) {
  auto network_id = string_or(network, "id");
  auto subnets = subnets_of(tx, network_id);
  auto subnet_by_id = [&](const std::string& id) -> const json::object* {
    for (auto& s : subnets)
      if (string_or(s, "id") == id) return &s;
    return nullptr;
  };
  json::array out;
  auto give = [&](const json::object& subnet, const ipam::Address& a) {
    record(tx, subnet, a, port_id);
    out.push_back(json::object{{"subnet_id", subnet.at("id")}, {"ip_address", a.str()}});
  };
  auto give_next = [&](const json::object& subnet) {
    if (is_auto_address(subnet) && !is_router_port(owner)) {
      auto cidr = *ipam::parse_cidr(string_or(subnet, "cidr"));
      auto a = ipam::eui64(cidr, mac);
      if (allocated(tx, string_or(subnet, "id")).count(a))
        throw ApiError(
            409,
            "IP address " + a.str() + " already allocated in subnet " + string_or(subnet, "id"),
            "IpAddressAlreadyAllocated");
      give(subnet, a);
      return;
    }
    auto a = next_free(tx, subnet);
    if (!a)
      throw ApiError(409, "No more IP addresses available on network " + network_id + ".",
                     "IpAddressGenerationFailure");
    give(subnet, *a);
  };
  if (!requests || requests->is_null()) {
    // Neutron's automatic choice: one IPv4 subnet with room, one stateful IPv6 subnet, and every
    // SLAAC/stateless IPv6 subnet.
    bool v4 = false, v6 = false;
    std::optional<ApiError> full;
    for (auto& s : subnets) {
      auto id = string_or(s, "id");
      if (!only_subnets.empty() &&
          std::find(only_subnets.begin(), only_subnets.end(), id) == only_subnets.end())
        continue;
      long version = int_or(s, "ip_version", 4);
      bool auto_address = is_auto_address(s);
      if (version == 4 && v4 && only_subnets.empty()) continue;
      if (version == 6 && !auto_address && v6 && only_subnets.empty()) continue;
      if (auto_address && is_router_port(owner)) continue;
      try {
        give_next(s);
        if (version == 4)
          v4 = true;
        else if (!auto_address)
          v6 = true;
      } catch (const ApiError& e) {
        if (e.status() != 409) throw;
        full = e;
      }
    }
    if (out.empty() && full) throw *full;
    return out;
  }
  if (!requests->is_array())
    throw bad_attribute("fixed_ips",
                        "Invalid data format for fixed IP: '" + to_string(*requests) + "'");
  if (static_cast<long>(requests->as_array().size()) > tx.settings.max_fixed_ips_per_port)
    throw bad_request("InvalidInput", "Exceeded maximum amount of fixed ips per port.");
  std::set<std::pair<std::string, std::string>> seen;
  for (auto& r : requests->as_array()) {
    if (!r.is_object())
      throw bad_attribute("fixed_ips", "Invalid data format for fixed IP: '" + to_string(r) + "'");
    auto& o = r.as_object();
    for (auto& kv : o)
      if (kv.key() != "subnet_id" && kv.key() != "ip_address")
        throw bad_attribute("fixed_ips",
                            "Invalid data format for fixed IP: '" + to_string(r) + "'");
    const json::object* subnet = nullptr;
    if (auto* sid = find(o, "subnet_id")) {
      auto id = to_uuid(*sid, "fixed_ips");
      subnet = subnet_by_id(id);
      if (!subnet) {
        if (load(tx, Kind::subnet, id))
          throw invalid_input("Failed to create port on network " + network_id +
                              ", because fixed_ips included invalid subnet " + id);
        throw not_found(Kind::subnet, id);
      }
    }
    if (auto* ip = find(o, "ip_address")) {
      auto a = to_ip(*ip, "fixed_ips");
      if (!subnet)
        for (auto& s : subnets)
          if (ipam::parse_cidr(string_or(s, "cidr"))->contains(a)) subnet = &s;
      if (!subnet || !ipam::parse_cidr(string_or(*subnet, "cidr"))->contains(a))
        throw invalid_input("IP address " + a.str() +
                            " is not a valid IP for the specified subnet");
      if (!tx.admin && !owns(tx, network)) throw policy_denied("create_port:fixed_ips:ip_address");
      if (!seen.insert({string_or(*subnet, "id"), a.str()}).second)
        throw invalid_input("Duplicate IP address '" + a.str() + "'");
      if (allocated(tx, string_or(*subnet, "id")).count(a))
        throw ApiError(
            409,
            "IP address " + a.str() + " already allocated in subnet " + string_or(*subnet, "id"),
            "IpAddressAlreadyAllocated");
      give(*subnet, a);
      continue;
    }
    if (!subnet)
      throw bad_attribute("fixed_ips", "Invalid data format for fixed IP: '" + to_string(r) + "'");
    give_next(*subnet);
  }
  return out;
}

void release_ips(Tx& tx, const std::string& port_id) {
  db::execute(tx.s, "DELETE FROM ip_allocation WHERE port_id = :p0", {port_id});
}

// ---- subnet pools and address scopes ----

json::object create_subnetpool(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  auto* prefixes_v = &required(body, "prefixes");
  json::object row{{"project_id", project},    {"name", ""},
                   {"shared", false},          {"is_default", false},
                   {"default_quota", nullptr}, {"address_scope_id", nullptr}};
  take_common(row, body);
  required(body, "name");
  json::array prefixes;
  int version = 0;
  for (auto& p : string_list(*prefixes_v, "prefixes")) {
    auto text = to_string_attr(p, "prefixes");
    auto c = ipam::parse_cidr(text);
    if (!c) throw bad_attribute("prefixes", "'" + text + "' is not a valid IP subnet");
    if (version && c->network.version != version)
      throw bad_request("PrefixVersionMismatch",
                        "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.");
    version = c->network.version;
    prefixes.push_back(json::value(c->str()));
  }
  if (!version) throw bad_attribute("prefixes", "No prefixes given");
  row["prefixes"] = prefixes;
  row["ip_version"] = version;
  long bits = version == 4 ? 32 : 128;
  long min = version == 4 ? 8 : 64, max = bits;
  if (auto* v = find(body, "min_prefixlen")) min = to_int(*v, "min_prefixlen");
  if (auto* v = find(body, "max_prefixlen")) max = to_int(*v, "max_prefixlen");
  long def = min;
  if (auto* v = find(body, "default_prefixlen")) def = to_int(*v, "default_prefixlen");
  if (min < 0 || max > bits || min > max || def < min || def > max)
    throw bad_request(
        "IllegalSubnetPoolPrefixBounds",
        "Illegal prefix bounds: prefix_type=default_prefixlen, prefixlen=" + std::to_string(def) +
            ", base_prefix_type=min_prefixlen, base_prefixlen=" + std::to_string(min) + ".");
  row["min_prefixlen"] = min;
  row["max_prefixlen"] = max;
  row["default_prefixlen"] = def;
  take_admin_flag(tx, row, body, "shared", "create_subnetpool:shared");
  take_admin_flag(tx, row, body, "is_default", "create_subnetpool:is_default");
  if (auto* v = find(body, "default_quota"); v && !v->is_null())
    row["default_quota"] = to_int(*v, "default_quota");
  if (auto* v = find(body, "address_scope_id"); v && !v->is_null()) {
    auto scope = fetch(tx, Kind::address_scope, to_uuid(*v, "address_scope_id"));
    row["address_scope_id"] = scope.at("id");
  }
  check_quota(tx, Kind::subnetpool, project);
  insert(tx, Kind::subnetpool, row);
  return row;
}

void update_subnetpool(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body);
  if (auto* v = find(body, "prefixes")) {
    json::array merged = row["prefixes"].as_array();
    for (auto& p : string_list(*v, "prefixes")) {
      auto c = ipam::parse_cidr(to_string_attr(p, "prefixes"));
      if (!c || c->network.version != int_or(row, "ip_version"))
        throw bad_attribute("prefixes", "'" + to_string(p) + "' is not a valid IP subnet");
      if (std::none_of(merged.begin(), merged.end(),
                       [&](auto& x) { return x.as_string() == c->str(); }))
        merged.push_back(json::value(c->str()));
    }
    // Existing prefixes may only grow.
    for (auto& old : row["prefixes"].as_array()) {
      auto o = *ipam::parse_cidr(old.as_string());
      bool covered = false;
      for (auto& p : string_list(*v, "prefixes"))
        if (auto c = ipam::parse_cidr(p.as_string());
            c && c->contains(o.network) && c->prefix <= o.prefix)
          covered = true;
      if (!covered)
        throw bad_request(
            "IllegalSubnetPoolPrefixUpdate",
            "Illegal update to prefixes: " + std::string(old.as_string()) + " was removed");
    }
    json::array out;
    for (auto& p : string_list(*v, "prefixes"))
      out.push_back(json::value(ipam::parse_cidr(p.as_string())->str()));
    row["prefixes"] = out;
  }
  for (auto* a : {"min_prefixlen", "max_prefixlen", "default_prefixlen"})
    if (auto* v = find(body, a)) row[a] = to_int(*v, a);
  if (auto* v = find(body, "is_default")) row["is_default"] = to_bool(*v, "is_default");
  if (auto* v = find(body, "default_quota"))
    row["default_quota"] =
        v->is_null() ? json::value(nullptr) : json::value(to_int(*v, "default_quota"));
  if (auto* v = find(body, "address_scope_id"))
    row["address_scope_id"] =
        v->is_null() ? json::value(nullptr)
                     : fetch(tx, Kind::address_scope, to_uuid(*v, "address_scope_id")).at("id");
}

void delete_subnetpool(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  for (auto& s : load_where(tx, Kind::subnet))
    if (string_or(s, "subnetpool_id") == id)
      throw ApiError(409, "Subnet pool " + id + " is still in use", "SubnetPoolInUse");
  erase(tx, Kind::subnetpool, id);
}

json::object create_address_scope(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  json::object row{{"project_id", project}, {"name", ""}, {"shared", false}};
  take_common(row, body);
  auto* v = &required(body, "ip_version");
  long version = to_int(*v, "ip_version");
  if (version != 4 && version != 6)
    throw bad_attribute("ip_version", std::to_string(version) + " is not in [4, 6]");
  row["ip_version"] = version;
  if (auto* s = find(body, "shared")) {
    bool shared = to_bool(*s, "shared");
    if (shared) require_admin(tx, "create_address_scope:shared");
    row["shared"] = shared;
  }
  insert(tx, Kind::address_scope, row);
  return row;
}

void update_address_scope(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body);
  if (auto* s = find(body, "shared")) {
    bool shared = to_bool(*s, "shared");
    if (!shared && bool_or(row, "shared", false))
      throw bad_request("BadRequest", "Unsharing of an address scope is not allowed");
    if (shared) require_admin(tx, "update_address_scope:shared");
    row["shared"] = shared;
  }
}

void delete_address_scope(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  for (auto& p : load_where(tx, Kind::subnetpool))
    if (string_or(p, "address_scope_id") == id)
      throw ApiError(409,
                     "Unable to complete operation on address scope " + id +
                         ". There are one or more subnet pools in use on the address scope",
                     "AddressScopeInUse");
  erase(tx, Kind::address_scope, id);
}

// ---- RBAC ----

json::object create_rbac_policy(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  for (auto* a : {"object_type", "object_id", "action"}) required(body, a);
  auto type = to_string_attr(body.at("object_type"), "object_type");
  if (type != "network") throw bad_attribute("object_type", "'" + type + "' is not in ['network']");
  auto object_id = to_uuid(body.at("object_id"), "object_id");
  auto action = to_string_attr(body.at("action"), "action");
  if (action != "access_as_shared" && action != "access_as_external")
    throw bad_attribute("action",
                        "'" + action + "' is not in ['access_as_external', 'access_as_shared']");
  std::string target;
  if (auto* t = find(body, "target_tenant"))
    target = to_string_attr(*t, "target_tenant");
  else if (auto* t2 = find(body, "target_project"))
    target = to_string_attr(*t2, "target_project");
  else
    required(body, "target_tenant");
  auto network = load(tx, Kind::network, object_id);
  if (!network || (!tx.admin && !owns(tx, *network)))
    throw ApiError(404,
                   "RBAC policy on object " + object_id +
                       " cannot be created because the object is not found.",
                   "RbacPolicyInitError");
  if (action == "access_as_external" && !tx.admin)
    throw policy_denied("create_rbac_policy:target_tenant");
  auto dup = db::query_strings(tx.s,
                               "SELECT id FROM rbac_policy WHERE object_type = :p0 AND object_id = "
                               ":p1 AND action = :p2 AND target_tenant = :p3",
                               {type, object_id, action, target});
  if (!dup.empty())
    throw ApiError(409, "An RBAC policy already exists with those values.", "DuplicateRbacPolicy");
  json::object row{{"project_id", project},
                   {"object_type", type},
                   {"object_id", object_id},
                   {"action", action},
                   {"target_tenant", target}};
  check_quota(tx, Kind::rbac_policy, project);
  insert(tx, Kind::rbac_policy, row);
  return row;
}

namespace {
void check_rbac_unused(Tx& tx, const json::object& row, const std::string& new_target) {
  auto target = string_or(row, "target_tenant");
  if (target == new_target) return;
  auto network_id = string_or(row, "object_id");
  auto network = load(tx, Kind::network, network_id);
  if (!network) return;
  for (auto& p : load_where(tx, Kind::port, db::Query{}.eq("network_id", network_id))) {
    auto project = string_or(p, "project_id");
    if (project == string_or(*network, "project_id") ||
        string_or(p, "device_owner").rfind("network:", 0) == 0)
      continue;
    if (target != "*" && project != target) continue;
    if (bool_or(*network, "shared", false) && string_or(row, "action") == "access_as_shared" &&
        false)
      continue;
    throw ApiError(409,
                   "RBAC policy on object " + network_id +
                       " cannot be removed because other objects depend on it.\nDetails: Callback "
                       "neutron.plugins.ml2.plugin.Ml2Plugin.validate_network_rbac_policy_change--"
                       "9223372036854775808 failed with \"Unable to reconfigure sharing settings "
                       "for network " +
                       network_id + ". Multiple tenants are using it.\"",
                   "RbacPolicyInUse");
  }
}
}  // namespace

void update_rbac_policy(Tx& tx, json::object& row, const json::object& body) {
  std::string target = string_or(row, "target_tenant");
  if (auto* t = find(body, "target_tenant")) target = to_string_attr(*t, "target_tenant");
  if (auto* t = find(body, "target_project")) target = to_string_attr(*t, "target_project");
  check_rbac_unused(tx, row, target);
  row["target_tenant"] = target;
  row.erase("target_project");
}

void delete_rbac_policy(Tx& tx, const json::object& row) {
  check_rbac_unused(tx, row, "\x01");
  erase(tx, Kind::rbac_policy, string_or(row, "id"));
}

}  // namespace nubo::network::detail
