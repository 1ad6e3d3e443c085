// Routers (gateway, interfaces, extra routes) and floating IPs.
#include <soci/soci.h>

#include <algorithm>

#include "common/ids.hpp"
#include "network/service/internal.hpp"
#include "network/store/schema.hpp"

namespace nubo::network::detail {

namespace {

std::vector<json::object> interfaces_of(Tx& tx, const std::string& router_id) {
  return load_where(
      tx, Kind::port,
      db::Query{}.eq("device_id", router_id).eq("device_owner", "network:router_interface"));
}

std::optional<json::object> gateway_port(Tx& tx, const std::string& router_id) {
  auto rows = load_where(
      tx, Kind::port,
      db::Query{}.eq("device_id", router_id).eq("device_owner", "network:router_gateway"));
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

// Ports made by the service for routers and floating IPs belong to no project (hidden from users).
json::object service_port(Tx& tx, const std::string& network_id, const std::string& owner,
                          const std::string& device_id, const json::value* fixed_ips,
                          const std::string& project = "") {
  json::object body{{"network_id", network_id},
                    {"device_owner", owner},
                    {"device_id", device_id},
                    {"project_id", project}};
  if (fixed_ips) body["fixed_ips"] = *fixed_ips;
  Tx admin{tx.s, tx.c, tx.settings, true, tx.now, tx.ip_hints};
  return create_port(admin, body);
}

void set_gateway(Tx& tx, json::object& router, const json::value& info) {
  auto router_id = string_or(router, "id");
  auto current = gateway_port(tx, router_id);
  if (info.is_null() || (info.is_object() && info.as_object().empty())) {
    if (current) {
      auto fips = load_where(tx, Kind::floatingip, db::Query{}.eq("router_id", router_id));
      if (!fips.empty())
        throw ApiError(409,
                       "Gateway cannot be updated for router " + router_id +
                           ", since a gateway to external network " +
                           string_or(*current, "network_id") +
                           " is required by one or more floating IPs.",
                       "RouterExternalGatewayInUseByFloatingIp");
      delete_port(tx, *current, true);
    }
    router["external_gateway_info"] = nullptr;
    return;
  }
  if (!info.is_object())
    throw bad_attribute("external_gateway_info", "'" + to_string(info) + "' is not a dictionary");
  auto& o = info.as_object();
  for (auto& kv : o)
    if (kv.key() != "network_id" && kv.key() != "enable_snat" && kv.key() != "external_fixed_ips")
      throw bad_attribute("external_gateway_info",
                          "Unexpected keys supplied: " + std::string(kv.key()));
  auto* net_v = find(o, "network_id");
  if (!net_v)
    throw bad_attribute("external_gateway_info",
                        "Validation of dictionary's keys failed. Expected keys: {'network_id'} "
                        "Provided keys: set()");
  std::string network_id = net_v->is_string() ? std::string(net_v->as_string()) : to_string(*net_v);
  auto network = load(tx, Kind::network, network_id);
  if (!network || !visible(tx, Kind::network, *network)) throw not_found(Kind::network, network_id);
  if (!bool_or(*network, "router:external", false))
    throw bad_request("BadRequest",
                      "Bad router request: Network " + network_id + " is not an external network.");
  bool snat = true;
  if (auto* v = find(o, "enable_snat")) {
    snat = to_bool(*v, "enable_snat");
    if (!tx.admin && !snat) throw policy_denied("update_router:external_gateway_info:enable_snat");
  } else if (auto* old = find(router, "external_gateway_info"); old && old->is_object()) {
    if (string_or(old->as_object(), "network_id") == network_id)
      snat = bool_or(old->as_object(), "enable_snat", true);
  }
  auto* fixed = find(o, "external_fixed_ips");
  if (fixed && !tx.admin)
    throw policy_denied("update_router:external_gateway_info:external_fixed_ips");
  bool same_network = current && string_or(*current, "network_id") == network_id;
  json::array ips;
  if (same_network && !fixed) {
    ips = current->at("fixed_ips").as_array();
  } else {
    if (current) {
      auto fips = load_where(tx, Kind::floatingip, db::Query{}.eq("router_id", router_id));
      if (!fips.empty() && !same_network)
        throw ApiError(409,
                       "Gateway cannot be updated for router " + router_id +
                           ", since a gateway to external network " +
                           string_or(*current, "network_id") +
                           " is required by one or more floating IPs.",
                       "RouterExternalGatewayInUseByFloatingIp");
      delete_port(tx, *current, true);
    }
    auto port = service_port(tx, network_id, "network:router_gateway", router_id, fixed);
    ips = port.at("fixed_ips").as_array();
  }
  router["external_gateway_info"] =
      json::object{{"network_id", network_id}, {"enable_snat", snat}, {"external_fixed_ips", ips}};
}

// The subnets a router is connected to through its interfaces.
std::vector<json::object> router_subnets(Tx& tx, const std::string& router_id) {
  std::vector<json::object> out;
  for (auto& port : interfaces_of(tx, router_id))
    for (auto& ip : port.at("fixed_ips").as_array())
      if (auto s = load(tx, Kind::subnet, string_or(ip.as_object(), "subnet_id")))
        out.push_back(*s);
  return out;
}

json::array parse_routes(Tx& tx, const json::object& router, const json::value& v) {
  if (v.is_null()) return {};
  if (!v.is_array()) throw bad_attribute("routes", "'" + to_string(v) + "' is not a list");
  if (static_cast<long>(v.as_array().size()) > tx.settings.max_routes)
    throw ApiError(400,
                   "Unable to complete operation for " + string_or(router, "id") +
                       ". The number of routes exceeds the maximum " +
                       std::to_string(tx.settings.max_routes) + ".",
                   "RoutesExhausted");
  auto subnets = router_subnets(tx, string_or(router, "id"));
  json::array out;
  std::set<std::string> seen;
  for (auto& r : v.as_array()) {
    if (!r.is_object() || !find(r.as_object(), "destination") || !find(r.as_object(), "nexthop"))
      throw bad_attribute("routes", "Invalid data format for hostroute: '" + to_string(r) + "'");
    auto dest_text = to_string_attr(r.as_object().at("destination"), "routes");
    auto dest = ipam::parse_cidr(dest_text);
    if (!dest) throw bad_attribute("routes", "'" + dest_text + "' is not a valid IP subnet");
    auto hop = to_ip(r.as_object().at("nexthop"), "routes");
    bool connected = false;
    for (auto& s : subnets)
      if (ipam::parse_cidr(string_or(s, "cidr"))->contains(hop)) connected = true;
    if (!connected)
      throw ApiError(400,
                     "Invalid format for routes: " + to_string(r) +
                         ", the nexthop is not connected with router",
                     "InvalidRoutes");
    if (!seen.insert(dest->str() + "|" + hop.str()).second) continue;
    out.push_back(json::object{{"destination", dest_text}, {"nexthop", hop.str()}});
  }
  return out;
}

json::object interface_info(const json::object& router, const json::object& port) {
  json::array subnets;
  std::string first;
  for (auto& ip : port.at("fixed_ips").as_array()) {
    auto s = string_or(ip.as_object(), "subnet_id");
    if (first.empty()) first = s;
    subnets.push_back(json::value(s));
  }
  return json::object{{"id", router.at("id")},
                      {"tenant_id", router.at("project_id")},
                      {"project_id", router.at("project_id")},
                      {"port_id", port.at("id")},
                      {"network_id", port.at("network_id")},
                      {"subnet_id", first},
                      {"subnet_ids", subnets}};
}

}  // namespace

json::object create_router(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  json::object row{{"project_id", project},
                   {"name", ""},
                   {"admin_state_up", true},
                   {"status", "ACTIVE"},
                   {"external_gateway_info", nullptr},
                   {"routes", json::array{}},
                   {"availability_zone_hints", json::array{}},
                   {"availability_zones", json::array{json::value("nova")}}};
  row["id"] = uuid4();
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  if (auto* v = find(body, "availability_zone_hints"); v && v->is_array())
    row["availability_zone_hints"] = *v;
  if (auto* v = find(body, "routes"); v && !v->is_null() && !v->as_array().empty())
    throw ApiError(400, "Invalid format for routes: the nexthop is not connected with router",
                   "InvalidRoutes");
  check_quota(tx, Kind::router, project);
  if (auto* v = find(body, "external_gateway_info")) set_gateway(tx, row, *v);
  insert(tx, Kind::router, row);
  return row;
}

void update_router(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  if (auto* v = find(body, "external_gateway_info")) set_gateway(tx, row, *v);
  if (auto* v = find(body, "routes")) row["routes"] = parse_routes(tx, row, *v);
}

void delete_router(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  if (!interfaces_of(tx, id).empty())
    throw ApiError(409, "Router " + id + " still has ports", "RouterInUse");
  if (!load_where(tx, Kind::floatingip, db::Query{}.eq("router_id", id)).empty())
    throw ApiError(409, "Router " + id + " still has ports", "RouterInUse");
  if (auto gw = gateway_port(tx, id)) delete_port(tx, *gw, true);
  erase(tx, Kind::router, id);
}

}  // namespace nubo::network::detail

namespace nubo::network {

using namespace detail;

json::object NetworkService::add_router_interface(const Caller& c, const std::string& router_id,
                                                  const json::object& body) {
  json::object out;
  in_write(c, [&](Tx& tx) {
    auto router = fetch(tx, Kind::router, router_id);
    if (!tx.admin && !owns(tx, router)) throw policy_denied("add_router_interface");
    auto* subnet_v = find(body, "subnet_id");
    auto* port_v = find(body, "port_id");
    if (subnet_v && port_v)
      throw bad_request("BadRequest",
                        "Bad router request: Cannot specify both subnet-id and port-id.");
    if (!subnet_v && !port_v)
      throw bad_request("BadRequest",
                        "Bad router request: Either subnet_id or port_id must be specified.");
    auto existing = router_subnets(tx, router_id);
    auto check_overlap = [&](const json::object& subnet) {
      auto cidr = *ipam::parse_cidr(string_or(subnet, "cidr"));
      for (auto& other : existing) {
        if (string_or(other, "id") == string_or(subnet, "id"))
          throw bad_request("BadRequest",
                            "Bad router request: Router already has a port on subnet " +
                                string_or(subnet, "id") + ".");
        if (ipam::parse_cidr(string_or(other, "cidr"))->overlaps(cidr))
          throw bad_request("BadRequest", "Bad router request: Cidr " + cidr.str() + " of subnet " +
                                              string_or(subnet, "id") + " overlaps with cidr " +
                                              string_or(other, "cidr") + " of subnet " +
                                              string_or(other, "id") + ".");
      }
    };
    json::object port;
    if (port_v) {
      auto port_id = to_string_attr(*port_v, "port_id");
      port = fetch(tx, Kind::port, port_id);
      if (!tx.admin && !owns(tx, port)) throw not_found(Kind::port, port_id);
      if (!string_or(port, "device_id").empty() || !string_or(port, "device_owner").empty())
        throw ApiError(409,
                       "Unable to complete operation on port " + port_id + " for network " +
                           string_or(port, "network_id") +
                           ". Port already has an attached device " + string_or(port, "device_id") +
                           ".",
                       "PortInUse");
      auto& ips = port.at("fixed_ips").as_array();
      if (ips.empty())
        throw bad_request("BadRequest",
                          "Bad router request: Router port must have at least one fixed IP.");
      for (auto& ip : ips)
        if (auto subnet = load(tx, Kind::subnet, string_or(ip.as_object(), "subnet_id")))
          check_overlap(*subnet);
      port["device_id"] = router_id;
      port["device_owner"] = "network:router_interface";
      port["status"] = "ACTIVE";
      port["security_groups"] = json::array{};
      db::execute(tx.s, "DELETE FROM port_security_group WHERE port_id = :p0", {port_id});
      save(tx, Kind::port, port);
    } else {
      auto subnet_id = to_string_attr(*subnet_v, "subnet_id");
      auto subnet = fetch(tx, Kind::subnet, subnet_id);
      auto gateway = get_string(subnet, "gateway_ip");
      if (!gateway)
        throw bad_request("BadRequest", "Bad router request: Subnet " + subnet_id +
                                            " does not have a gateway IP.");
      check_overlap(subnet);
      json::value ips =
          json::array{json::object{{"subnet_id", subnet_id}, {"ip_address", *gateway}}};
      json::object port_body{{"network_id", subnet.at("network_id")},
                             {"device_owner", "network:router_interface"},
                             {"device_id", router_id},
                             {"fixed_ips", ips},
                             {"project_id", router.at("project_id")}};
      Tx as_admin{tx.s, c, settings_, true, tx.now, tx.ip_hints};
      port = create_port(as_admin, port_body);
    }
    touch(tx, Kind::router, router_id);
    out = interface_info(router, port);
  });
  return out;
}

json::object NetworkService::remove_router_interface(const Caller& c, const std::string& router_id,
                                                     const json::object& body) {
  json::object out;
  in_write(c, [&](Tx& tx) {
    auto router = fetch(tx, Kind::router, router_id);
    if (!tx.admin && !owns(tx, router)) throw policy_denied("remove_router_interface");
    auto* subnet_v = find(body, "subnet_id");
    auto* port_v = find(body, "port_id");
    if (!subnet_v && !port_v)
      throw bad_request("BadRequest",
                        "Bad router request: Either subnet_id or port_id must be specified.");
    std::optional<json::object> port;
    std::string subnet_id = subnet_v ? to_string_attr(*subnet_v, "subnet_id") : "";
    if (port_v) {
      auto port_id = to_string_attr(*port_v, "port_id");
      for (auto& p : interfaces_of(tx, router_id))
        if (string_or(p, "id") == port_id) port = p;
      if (!port)
        throw ApiError(404,
                       "Router " + router_id + " does not have an interface with id " + port_id,
                       "RouterInterfaceNotFound");
      if (!subnet_id.empty()) {
        bool on = false;
        for (auto& ip : port->at("fixed_ips").as_array())
          if (string_or(ip.as_object(), "subnet_id") == subnet_id) on = true;
        if (!on)
          throw ApiError(409, "Subnet " + subnet_id + " is not on port " + port_id,
                         "SubnetMismatchForPort");
      }
    } else {
      if (!load(tx, Kind::subnet, subnet_id)) throw not_found(Kind::subnet, subnet_id);
      for (auto& p : interfaces_of(tx, router_id))
        for (auto& ip : p.at("fixed_ips").as_array())
          if (string_or(ip.as_object(), "subnet_id") == subnet_id) port = p;
      if (!port)
        throw ApiError(404, "Router " + router_id + " has no interface on subnet " + subnet_id,
                       "RouterInterfaceNotFoundForSubnet");
    }
    // Floating IPs reached through this interface keep it.
    for (auto& ip : port->at("fixed_ips").as_array()) {
      auto sid = string_or(ip.as_object(), "subnet_id");
      auto subnet = load(tx, Kind::subnet, sid);
      if (!subnet) continue;
      auto cidr = *ipam::parse_cidr(string_or(*subnet, "cidr"));
      for (auto& fip : load_where(tx, Kind::floatingip, db::Query{}.eq("router_id", router_id)))
        if (auto a = ipam::parse_address(string_or(fip, "fixed_ip_address"));
            a && cidr.contains(*a))
          throw ApiError(409,
                         "Router interface for subnet " + sid + " on router " + router_id +
                             " cannot be deleted, as it is required by one or more floating IPs.",
                         "RouterInterfaceInUseByFloatingIP");
    }
    out = interface_info(router, *port);
    delete_port(tx, *port, true);
    touch(tx, Kind::router, router_id);
  });
  return out;
}

json::object NetworkService::change_extra_routes(const Caller& c, const std::string& router_id,
                                                 const json::object& body, bool add) {
  json::object out;
  in_write(c, [&](Tx& tx) {
    auto router = fetch(tx, Kind::router, router_id);
    if (!tx.admin && !owns(tx, router)) throw policy_denied("update_router");
    auto* routes = find(body, "routes");
    if (!routes) throw bad_attribute("routes", "Expected routes");
    auto changes = parse_routes(tx, router, *routes);
    json::array current = router["routes"].as_array();
    for (auto& r : changes) {
      auto it = std::find(current.begin(), current.end(), r);
      if (add && it == current.end()) current.push_back(r);
      if (!add && it != current.end()) current.erase(it);
    }
    router["routes"] = current;
    save(tx, Kind::router, router);
    out = views(tx, Kind::router, {router}).front();
  });
  return out;
}

}  // namespace nubo::network

namespace nubo::network::detail {

// ---- floating IPs ----

namespace {

// The router that connects the port's subnet to the external network, with the fixed address.
void associate(Tx& tx, json::object& fip, const json::value& port_v, const json::value* fixed_v) {
  if (port_v.is_null()) {
    fip["port_id"] = nullptr;
    fip["fixed_ip_address"] = nullptr;
    fip["router_id"] = nullptr;
    fip["status"] = "DOWN";
    return;
  }
  auto port_id = to_uuid(port_v, "port_id");
  auto port = load(tx, Kind::port, port_id);
  if (!port || (!tx.admin && string_or(*port, "project_id") != string_or(fip, "project_id") &&
                !owns(tx, *port)))
    throw not_found(Kind::port, port_id);
  std::vector<std::pair<std::string, ipam::Address>> v4;
  for (auto& ip : port->at("fixed_ips").as_array()) {
    auto a = ipam::parse_address(string_or(ip.as_object(), "ip_address"));
    if (a && a->version == 4) v4.emplace_back(string_or(ip.as_object(), "subnet_id"), *a);
  }
  std::optional<std::pair<std::string, ipam::Address>> chosen;
  if (fixed_v && !fixed_v->is_null()) {
    auto want = to_ip(*fixed_v, "fixed_ip_address");
    for (auto& c : v4)
      if (c.second == want) chosen = c;
    if (!chosen)
      throw bad_request("BadRequest", "Bad floatingip request: Port " + port_id +
                                          " does not have fixed ip " + want.str() + ".");
  } else {
    if (v4.empty())
      throw bad_request("BadRequest", "Bad floatingip request: Port " + port_id +
                                          " does not have any IPv4 address.");
    if (v4.size() > 1)
      throw bad_request("BadRequest", "Port " + port_id +
                                          " has multiple fixed IPv4 addresses. Must provide a "
                                          "specific IPv4 address when assigning a floating IP.");
    chosen = v4.front();
  }
  auto external = string_or(fip, "floating_network_id");
  std::string router_id;
  for (auto& iface :
       load_where(tx, Kind::port, db::Query{}.eq("device_owner", "network:router_interface"))) {
    bool on_subnet = false;
    for (auto& ip : iface.at("fixed_ips").as_array())
      if (string_or(ip.as_object(), "subnet_id") == chosen->first) on_subnet = true;
    if (!on_subnet) continue;
    auto router = load(tx, Kind::router, string_or(iface, "device_id"));
    if (!router) continue;
    auto* gw = find(*router, "external_gateway_info");
    if (gw && gw->is_object() && string_or(gw->as_object(), "network_id") == external)
      router_id = string_or(*router, "id");
  }
  if (router_id.empty())
    throw ApiError(404,
                   "External network " + external + " is not reachable from subnet " +
                       chosen->first + ".  Therefore, cannot associate Port " + port_id +
                       " with a Floating IP.",
                   "ExternalGatewayForFloatingIPNotFound");
  for (auto& other : load_where(tx, Kind::floatingip, db::Query{}.eq("port_id", port_id)))
    if (string_or(other, "id") != string_or(fip, "id") &&
        string_or(other, "fixed_ip_address") == chosen->second.str())
      throw ApiError(409,
                     "Cannot associate floating IP " + string_or(fip, "floating_ip_address") +
                         " (" + string_or(fip, "id") + ") with port " + port_id +
                         " using fixed IP " + chosen->second.str() +
                         ", as that fixed IP already has a floating IP on external network " +
                         external + ".",
                     "FloatingIPPortAlreadyAssociated");
  fip["port_id"] = port_id;
  fip["fixed_ip_address"] = chosen->second.str();
  fip["router_id"] = router_id;
  fip["status"] = "ACTIVE";
}

}  // namespace

json::object create_floatingip(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  auto* net_v = &required(body, "floating_network_id");
  auto network_id = to_uuid(*net_v, "floating_network_id");
  auto network = load(tx, Kind::network, network_id);
  if (!network || !visible(tx, Kind::network, *network)) throw not_found(Kind::network, network_id);
  if (!bool_or(*network, "router:external", false))
    throw bad_request("BadRequest", "Bad floatingip request: Network " + network_id +
                                        " is not a valid external network.");
  json::object row{{"project_id", project}, {"floating_network_id", network_id},
                   {"port_id", nullptr},    {"fixed_ip_address", nullptr},
                   {"router_id", nullptr},  {"status", "DOWN"}};
  row["id"] = uuid4();
  take_common(row, body, false);
  json::array request;
  json::object want;
  if (auto* v = find(body, "subnet_id"); v && !v->is_null())
    want["subnet_id"] = to_uuid(*v, "subnet_id");
  if (auto* v = find(body, "floating_ip_address"); v && !v->is_null()) {
    if (!tx.admin) throw policy_denied("create_floatingip:floating_ip_address");
    want["ip_address"] = to_ip(*v, "floating_ip_address").str();
  }
  check_quota(tx, Kind::floatingip, project);
  json::value fixed = json::array{want};
  auto port = service_port(tx, network_id, "network:floatingip", string_or(row, "id"),
                           want.empty() ? nullptr : &fixed);
  std::string address;
  for (auto& ip : port.at("fixed_ips").as_array())
    if (ipam::parse_address(string_or(ip.as_object(), "ip_address"))->version == 4)
      address = string_or(ip.as_object(), "ip_address");
  if (address.empty())
    throw bad_request("BadRequest",
                      "Bad floatingip request: Network " + network_id + " has no IPv4 subnet.");
  row["floating_ip_address"] = address;
  if (auto* p = find(body, "port_id"); p && !p->is_null())
    associate(tx, row, *p, find(body, "fixed_ip_address"));
  insert(tx, Kind::floatingip, row);
  port_changed(tx, string_or(row, "port_id"));
  return row;
}

void update_floatingip(Tx& tx, json::object& row, const json::object& body) {
  take_common(row, body, false);
  auto before = string_or(row, "port_id"), fixed_before = string_or(row, "fixed_ip_address");
  if (auto* p = find(body, "port_id"))
    associate(tx, row, *p, find(body, "fixed_ip_address"));
  else if (auto* f = find(body, "fixed_ip_address"); f && !row["port_id"].is_null())
    associate(tx, row, row["port_id"], f);
  if (before != string_or(row, "port_id") || fixed_before != string_or(row, "fixed_ip_address")) {
    port_changed(tx, before);
    if (before != string_or(row, "port_id")) port_changed(tx, string_or(row, "port_id"));
  }
}

void delete_floatingip(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  for (auto& port :
       load_where(tx, Kind::port,
                  db::Query{}.eq("device_id", id).eq("device_owner", "network:floatingip")))
    delete_port(tx, port, true);
  erase(tx, Kind::floatingip, id);
  port_changed(tx, string_or(row, "port_id"));
}

void disassociate_floatingips(Tx& tx, const std::string& port_id) {
  for (auto& fip : load_where(tx, Kind::floatingip, db::Query{}.eq("port_id", port_id))) {
    fip["port_id"] = nullptr;
    fip["fixed_ip_address"] = nullptr;
    fip["router_id"] = nullptr;
    fip["status"] = "DOWN";
    save(tx, Kind::floatingip, fip);
  }
}

}  // namespace nubo::network::detail
