// Ports (addresses, MAC, bindings, security groups, allowed address pairs, extra DHCP options)
// and security groups with their rules.
#include <soci/soci.h>

#include <algorithm>

#include "common/ids.hpp"
#include "network/service/internal.hpp"
#include "network/store/schema.hpp"

namespace nubo::network::detail {

namespace {

json::array list_of(const json::value& v, const std::string& name) {
  if (!v.is_array()) throw bad_attribute(name, "'" + to_string(v) + "' is not a list");
  return v.as_array();
}

// Security group ids for a port: each must exist and belong to the port's project (or be
// visible to an admin).
json::array parse_groups(Tx& tx, const json::value& v, const std::string& project) {
  json::array out;
  for (auto& g : list_of(v, "security_groups")) {
    if (!g.is_string())
      throw bad_attribute("security_groups", "'" + to_string(g) + "' is not a valid UUID");
    std::string id(g.as_string());
    auto group = load(tx, Kind::security_group, id);
    if (!group || (!tx.admin && string_or(*group, "project_id") != project))
      throw ApiError(404, "Security group " + id + " does not exist", "SecurityGroupNotFound");
    if (std::none_of(out.begin(), out.end(), [&](auto& x) { return x.as_string() == id; }))
      out.push_back(json::value(id));
  }
  return out;
}

json::array parse_address_pairs(Tx& tx, const json::value& v, const std::string& port_mac) {
  auto list = list_of(v, "allowed_address_pairs");
  if (static_cast<long>(list.size()) > tx.settings.max_allowed_address_pairs)
    throw ApiError(400,
                   "Exceeded maximum amount of allowed address pairs " +
                       std::to_string(tx.settings.max_allowed_address_pairs),
                   "AllowedAddressPairExhausted");
  json::array out;
  std::set<std::pair<std::string, std::string>> seen;
  for (auto& p : list) {
    if (!p.is_object())
      throw bad_attribute("allowed_address_pairs",
                          "Allowed address pairs must be a list of dictionaries");
    auto& o = p.as_object();
    for (auto& kv : o)
      if (kv.key() != "ip_address" && kv.key() != "mac_address")
        throw bad_attribute("allowed_address_pairs",
                            "Unrecognized attribute(s) '" + std::string(kv.key()) + "'");
    auto* ip = find(o, "ip_address");
    if (!ip)
      throw bad_request("AllowedAddressPairsMissingIP",
                        "AllowedAddressPair must contain ip_address");
    auto text = to_string_attr(*ip, "allowed_address_pairs");
    if (!ipam::parse_cidr(text))
      throw bad_attribute("allowed_address_pairs", "'" + text + "' is not a valid IP address");
    std::string mac = port_mac;
    if (auto* m = find(o, "mac_address")) {
      auto normalized = m->is_string() ? ipam::normalize_mac(m->as_string()) : std::nullopt;
      if (!normalized)
        throw bad_attribute("allowed_address_pairs",
                            "'" + to_string(*m) + "' is not a valid MAC address");
      mac = *normalized;
    }
    if (!seen.insert({text, mac}).second)
      throw bad_request("DuplicateAddressPairInRequest",
                        "Request contains duplicate address pair: mac_address " + mac +
                            " ip_address " + text + ".");
    out.push_back(json::object{{"ip_address", text}, {"mac_address", mac}});
  }
  return out;
}

json::array parse_dhcp_opts(const json::value& v) {
  json::array out;
  for (auto& o : list_of(v, "extra_dhcp_opts")) {
    if (!o.is_object())
      throw bad_attribute("extra_dhcp_opts", "'" + to_string(o) + "' is not a dictionary");
    auto& d = o.as_object();
    for (auto& kv : d)
      if (kv.key() != "opt_name" && kv.key() != "opt_value" && kv.key() != "ip_version")
        throw bad_attribute("extra_dhcp_opts",
                            "Unrecognized attribute(s) '" + std::string(kv.key()) + "'");
    auto* name = find(d, "opt_name");
    if (!name) throw bad_attribute("extra_dhcp_opts", "opt_name is missing");
    json::object opt{{"opt_name", to_string_attr(*name, "extra_dhcp_opts")},
                     {"opt_value", find(d, "opt_value") ? d.at("opt_value") : json::value(nullptr)},
                     {"ip_version", 4}};
    if (auto* ver = find(d, "ip_version")) {
      long version = to_int(*ver, "extra_dhcp_opts");
      if (version != 4 && version != 6)
        throw bad_attribute("extra_dhcp_opts", std::to_string(version) + " is not in [4, 6]");
      opt["ip_version"] = version;
    } else if (auto* val = find(d, "opt_value"); val && val->is_string()) {
      if (auto a = ipam::parse_address(val->as_string()); a && a->version == 6)
        opt["ip_version"] = 6;
    }
    out.push_back(std::move(opt));
  }
  return out;
}

void bind_groups(Tx& tx, const std::string& port_id, const json::array& groups) {
  db::execute(tx.s, "DELETE FROM port_security_group WHERE port_id = :p0", {port_id});
  for (auto& g : groups)
    db::execute(tx.s,
                "INSERT INTO port_security_group (port_id, security_group_id) VALUES (:p0, :p1)",
                {port_id, std::string(g.as_string())});
}

void set_binding(json::object& row) {
  bool bound = !string_or(row, "binding:host_id").empty();
  row["binding:vif_type"] = bound ? "bridge" : "unbound";
  row["binding:vif_details"] =
      bound ? json::object{{"port_filter", true}, {"connectivity", "l2"}} : json::object{};
}

void check_mac_free(Tx& tx, const std::string& network_id, const std::string& mac) {
  auto rows = db::query_strings(
      tx.s, "SELECT id FROM port WHERE network_id = :p0 AND mac_address = :p1", {network_id, mac});
  if (!rows.empty())
    throw ApiError(409,
                   "Unable to complete operation for network " + network_id + ". The mac address " +
                       mac + " is in use.",
                   "MacAddressInUse");
}

}  // namespace

json::object create_port(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  auto* network_v = &required(body, "network_id");
  auto network_id = to_uuid(*network_v, "network_id");
  auto network = load(tx, Kind::network, network_id);
  if (!network || !visible(tx, Kind::network, *network)) throw not_found(Kind::network, network_id);
  bool network_owner = tx.admin || owns(tx, *network);
  if (!network_owner && !network_shared_with(tx, *network, tx.project()))
    throw policy_denied("create_port");
  json::object row{{"project_id", project},
                   {"network_id", network_id},
                   {"name", ""},
                   {"admin_state_up", true},
                   {"status", "DOWN"},
                   {"device_id", ""},
                   {"device_owner", ""},
                   {"allowed_address_pairs", json::array{}},
                   {"extra_dhcp_opts", json::array{}},
                   {"binding:host_id", ""},
                   {"binding:profile", json::object{}},
                   {"binding:vnic_type", "normal"}};
  row["id"] = uuid4();
  auto id = string_or(row, "id");
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  if (auto* v = find(body, "device_id")) row["device_id"] = to_string_attr(*v, "device_id");
  if (auto* v = find(body, "device_owner"))
    row["device_owner"] = to_string_attr(*v, "device_owner");
  auto owner = string_or(row, "device_owner");
  if (owner.rfind("network:", 0) == 0 && !network_owner)
    throw policy_denied("create_port:device_owner");
  std::string mac;
  if (auto* v = find(body, "mac_address"); v && !v->is_null()) {
    auto m = v->is_string() ? ipam::normalize_mac(v->as_string()) : std::nullopt;
    if (!m)
      throw bad_attribute("mac_address",
                          "'" + (v->is_string() ? std::string(v->as_string()) : to_string(*v)) +
                              "' is not a valid MAC address");
    if (!network_owner) throw policy_denied("create_port:mac_address");
    mac = *m;
    check_mac_free(tx, network_id, mac);
  } else {
    do mac = ipam::random_mac(tx.settings.base_mac);
    while (!db::query_strings(tx.s,
                              "SELECT id FROM port WHERE network_id = :p0 AND mac_address = :p1",
                              {network_id, mac})
                .empty());
  }
  row["mac_address"] = mac;
  bool port_security = bool_or(*network, "port_security_enabled", true);
  if (auto* v = find(body, "port_security_enabled"))
    port_security = to_bool(*v, "port_security_enabled");
  row["port_security_enabled"] = port_security;
  json::array groups;
  if (auto* v = find(body, "security_groups"); v && !v->is_null()) {
    groups = parse_groups(tx, *v, project);
    if (!port_security && !groups.empty())
      throw bad_request("PortSecurityAndIPRequiredForSecurityGroups",
                        "Port security must be enabled and port must have an IP address in order "
                        "to use security groups.");
  } else if (port_security && owner.rfind("network:", 0) != 0) {
    groups.push_back(json::value(ensure_default_security_group(tx, project)));
  }
  row["security_groups"] = groups;
  if (auto* v = find(body, "allowed_address_pairs"); v && !v->is_null()) {
    auto pairs = parse_address_pairs(tx, *v, mac);
    if (!port_security && !pairs.empty())
      throw ApiError(
          409, "Port Security must be enabled in order to have allowed address pairs on a port.",
          "AddressPairAndPortSecurityRequired");
    row["allowed_address_pairs"] = pairs;
  }
  if (auto* v = find(body, "extra_dhcp_opts"); v && !v->is_null())
    row["extra_dhcp_opts"] = parse_dhcp_opts(*v);
  if (auto* v = find(body, "binding:host_id"); v && !v->is_null()) {
    if (!tx.admin) throw policy_denied("create_port:binding:host_id");
    row["binding:host_id"] = to_string_attr(*v, "binding:host_id");
  }
  if (auto* v = find(body, "binding:profile"); v && !v->is_null()) {
    if (!tx.admin) throw policy_denied("create_port:binding:profile");
    if (!v->is_object())
      throw bad_attribute("binding:profile", "'" + to_string(*v) + "' is not a dictionary");
    row["binding:profile"] = *v;
  }
  if (auto* v = find(body, "binding:vnic_type")) {
    auto type = to_string_attr(*v, "binding:vnic_type");
    static const char* kTypes[] = {"normal",          "direct",           "macvtap",   "baremetal",
                                   "direct-physical", "virtio-forwarder", "smart-nic", "vdpa",
                                   "remote-managed"};
    if (std::none_of(std::begin(kTypes), std::end(kTypes), [&](auto* t) { return type == t; }))
      throw bad_attribute(
          "binding:vnic_type",
          "'" + type +
              "' is not in ['normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', "
              "'virtio-forwarder', 'smart-nic', 'vdpa', 'remote-managed']");
    row["binding:vnic_type"] = type;
  }
  set_binding(row);
  if (owner == "network:dhcp" || is_router_port(owner) || is_floating_port(owner))
    row["status"] = "ACTIVE";
  check_quota(tx, Kind::port, project);
  row["fixed_ips"] = allocate_ips(tx, *network, id, mac, find(body, "fixed_ips"), {}, owner);
  insert(tx, Kind::port, row);
  bind_groups(tx, id, groups);
  return row;
}

void update_port(Tx& tx, json::object& row, const json::object& body) {
  auto network = load(tx, Kind::network, string_or(row, "network_id"));
  bool network_owner = tx.admin || (network && owns(tx, *network));
  if (!tx.admin && !owns(tx, row) && !network_owner)
    throw ApiError(403, "The request you have made requires authentication.", "HTTPForbidden");
  auto id = string_or(row, "id");
  take_common(row, body);
  if (auto* v = find(body, "admin_state_up")) row["admin_state_up"] = to_bool(*v, "admin_state_up");
  if (auto* v = find(body, "device_id")) row["device_id"] = to_string_attr(*v, "device_id");
  if (auto* v = find(body, "device_owner")) {
    auto owner = to_string_attr(*v, "device_owner");
    if (owner.rfind("network:", 0) == 0 && !network_owner)
      throw policy_denied("update_port:device_owner");
    row["device_owner"] = owner;
  }
  if (auto* v = find(body, "mac_address"); v && !v->is_null()) {
    auto m = v->is_string() ? ipam::normalize_mac(v->as_string()) : std::nullopt;
    if (!m)
      throw bad_attribute("mac_address", "'" + to_string(*v) + "' is not a valid MAC address");
    if (!tx.admin) throw policy_denied("update_port:mac_address");
    if (*m != string_or(row, "mac_address")) {
      if (string_or(row, "binding:vif_type") != "unbound")
        throw ApiError(409, "Port " + id + " is bound; its MAC address cannot be changed.",
                       "PortBound");
      check_mac_free(tx, string_or(row, "network_id"), *m);
      row["mac_address"] = *m;
    }
  }
  if (auto* v = find(body, "port_security_enabled"))
    row["port_security_enabled"] = to_bool(*v, "port_security_enabled");
  bool port_security = bool_or(row, "port_security_enabled", true);
  if (auto* v = find(body, "security_groups")) {
    json::array groups =
        v->is_null() ? json::array{} : parse_groups(tx, *v, string_or(row, "project_id"));
    row["security_groups"] = groups;
    bind_groups(tx, id, groups);
  }
  if (!port_security && !row["security_groups"].as_array().empty())
    throw ApiError(409,
                   "Port has security group associated. Cannot disable port security or ip address "
                   "until security group is removed",
                   "PortSecurityPortHasSecurityGroup");
  if (auto* v = find(body, "allowed_address_pairs"))
    row["allowed_address_pairs"] =
        v->is_null() ? json::array{} : parse_address_pairs(tx, *v, string_or(row, "mac_address"));
  if (!port_security && !row["allowed_address_pairs"].as_array().empty())
    throw ApiError(
        409, "Port Security must be enabled in order to have allowed address pairs on a port.",
        "AddressPairAndPortSecurityRequired");
  if (auto* v = find(body, "extra_dhcp_opts")) {
    // Options are merged by name; a null value removes one.
    auto changes = v->is_null() ? json::array{} : parse_dhcp_opts(*v);
    json::array merged = row["extra_dhcp_opts"].as_array();
    for (auto& c : changes) {
      auto& co = c.as_object();
      auto it = std::find_if(merged.begin(), merged.end(), [&](auto& m) {
        return m.as_object().at("opt_name") == co.at("opt_name") &&
               m.as_object().at("ip_version") == co.at("ip_version");
      });
      if (co.at("opt_value").is_null()) {
        if (it != merged.end()) merged.erase(it);
      } else if (it != merged.end()) {
        *it = c;
      } else {
        merged.push_back(c);
      }
    }
    row["extra_dhcp_opts"] = merged;
  }
  if (auto* v = find(body, "binding:host_id")) {
    if (!tx.admin) throw policy_denied("update_port:binding:host_id");
    auto host = v->is_null() ? std::string() : to_string_attr(*v, "binding:host_id");
    // Bound elsewhere: down until that host's agent reports its device plugged (as ML2).
    auto owner = string_or(row, "device_owner");
    if (host != string_or(row, "binding:host_id") && owner.rfind("network:", 0) != 0)
      row["status"] = "DOWN";
    row["binding:host_id"] = host;
  }
  if (auto* v = find(body, "binding:profile")) {
    if (!tx.admin) throw policy_denied("update_port:binding:profile");
    row["binding:profile"] = v->is_object() ? *v : json::value(json::object{});
  }
  if (auto* v = find(body, "binding:vnic_type"))
    row["binding:vnic_type"] = to_string_attr(*v, "binding:vnic_type");
  set_binding(row);
  if (auto* v = find(body, "fixed_ips")) {
    if (!network) throw not_found(Kind::network, string_or(row, "network_id"));
    // Addresses kept where the request names them again; the rest released, new ones allocated.
    std::vector<std::pair<std::string, std::string>> current;
    for (auto& ip : row["fixed_ips"].as_array())
      current.emplace_back(string_or(ip.as_object(), "subnet_id"),
                           string_or(ip.as_object(), "ip_address"));
    json::array keep, wanted;
    std::set<std::string> kept_subnets_auto;
    for (auto& r : v->is_null() ? json::array{} : list_of(*v, "fixed_ips")) {
      if (!r.is_object())
        throw bad_attribute("fixed_ips",
                            "Invalid data format for fixed IP: '" + to_string(r) + "'");
      auto& o = r.as_object();
      auto subnet = string_or(o, "subnet_id");
      auto ip = string_or(o, "ip_address");
      auto match = std::find_if(current.begin(), current.end(), [&](auto& c) {
        return (ip.empty() || ipam::parse_address(ip) == ipam::parse_address(c.second)) &&
               (subnet.empty() || subnet == c.first) && !(ip.empty() && subnet.empty());
      });
      if (match != current.end()) {
        keep.push_back(json::object{{"subnet_id", match->first}, {"ip_address", match->second}});
        current.erase(match);
      } else {
        wanted.push_back(r);
      }
    }
    if (static_cast<long>(keep.size() + wanted.size()) > tx.settings.max_fixed_ips_per_port)
      throw bad_request("InvalidInput", "Exceeded maximum amount of fixed ips per port.");
    for (auto& c : current)
      db::execute(
          tx.s,
          "DELETE FROM ip_allocation WHERE subnet_id = :p0 AND ip_address = :p1 AND port_id = :p2",
          {c.first, c.second, id});
    json::value wanted_value = wanted;
    auto fresh = wanted.empty() ? json::array{}
                                : allocate_ips(tx, *network, id, string_or(row, "mac_address"),
                                               &wanted_value, {}, string_or(row, "device_owner"));
    for (auto& f : fresh) keep.push_back(f);
    row["fixed_ips"] = keep;
    notify_compute(tx, row, "network-changed");
  }
}

void delete_port(Tx& tx, const json::object& row, bool internal) {
  auto id = string_or(row, "id");
  auto owner = string_or(row, "device_owner");
  if (!internal && owner == "network:router_interface" && !string_or(row, "device_id").empty() &&
      load(tx, Kind::router, string_or(row, "device_id")))
    throw ApiError(409,
                   "Port " + id +
                       " cannot be deleted directly via the port API: has device owner " + owner +
                       ".",
                   "ServicePortInUse");
  if (!internal && (owner == "network:router_gateway" || owner == "network:floatingip") &&
      !string_or(row, "device_id").empty())
    throw ApiError(409,
                   "Port " + id +
                       " cannot be deleted directly via the port API: has device owner " + owner +
                       ".",
                   "ServicePortInUse");
  disassociate_floatingips(tx, id);
  notify_compute(tx, row, "network-vif-deleted");
  release_ips(tx, id);
  db::execute(tx.s, "DELETE FROM port_security_group WHERE port_id = :p0", {id});
  erase(tx, Kind::port, id);
}

// ---- security groups ----

namespace {

json::object rule_row(const std::string& project, const std::string& group,
                      const std::string& direction, const std::string& ethertype,
                      const json::value& remote_group) {
  return json::object{{"project_id", project},      {"security_group_id", group},
                      {"direction", direction},     {"ethertype", ethertype},
                      {"protocol", nullptr},        {"port_range_min", nullptr},
                      {"port_range_max", nullptr},  {"remote_ip_prefix", nullptr},
                      {"normalized_cidr", nullptr}, {"remote_group_id", remote_group},
                      {"description", ""}};
}

// New groups allow all egress; the default group also allows ingress from its own members.
void add_default_rules(Tx& tx, const std::string& project, const std::string& group,
                       bool is_default) {
  for (auto* ethertype : {"IPv4", "IPv6"}) {
    auto egress = rule_row(project, group, "egress", ethertype, nullptr);
    insert(tx, Kind::security_group_rule, egress);
    if (is_default) {
      auto ingress = rule_row(project, group, "ingress", ethertype, json::value(group));
      insert(tx, Kind::security_group_rule, ingress);
    }
  }
}

}  // namespace

std::string ensure_default_security_group(Tx& tx, const std::string& project) {
  if (project.empty()) return {};
  auto rows = db::query_strings(
      tx.s, "SELECT security_group_id FROM default_security_group WHERE project_id = :p0",
      {project});
  if (!rows.empty() && rows[0][0]) return *rows[0][0];
  json::object group{{"project_id", project},
                     {"name", "default"},
                     {"description", "Default security group"},
                     {"stateful", true}};
  insert(tx, Kind::security_group, group);
  auto id = string_or(group, "id");
  db::execute(
      tx.s, "INSERT INTO default_security_group (project_id, security_group_id) VALUES (:p0, :p1)",
      {project, id});
  add_default_rules(tx, project, id, true);
  return id;
}

json::object create_security_group(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  json::object row{{"project_id", project}, {"name", ""}, {"stateful", true}};
  take_common(row, body);
  if (auto* v = find(body, "stateful")) row["stateful"] = to_bool(*v, "stateful");
  ensure_default_security_group(tx, project);
  if (string_or(row, "name") == "default")
    throw ApiError(409, "Default security group already exists.",
                   "SecurityGroupDefaultAlreadyExists");
  check_quota(tx, Kind::security_group, project);
  insert(tx, Kind::security_group, row);
  add_default_rules(tx, project, string_or(row, "id"), false);
  return row;
}

void update_security_group(Tx& tx, json::object& row, const json::object& body) {
  bool is_default = string_or(row, "name") == "default";
  if (auto* v = find(body, "name")) {
    auto name = to_string_attr(*v, "name");
    if (is_default && name != "default")
      throw ApiError(409, "Updating default security group not allowed.",
                     "SecurityGroupCannotUpdateDefault");
    if (!is_default && name == "default")
      throw ApiError(409, "Default security group already exists.",
                     "SecurityGroupDefaultAlreadyExists");
  }
  take_common(row, body);
  if (auto* v = find(body, "stateful")) {
    bool stateful = to_bool(*v, "stateful");
    if (stateful != bool_or(row, "stateful", true)) {
      auto used = db::query_strings(
          tx.s, "SELECT port_id FROM port_security_group WHERE security_group_id = :p0",
          {string_or(row, "id")});
      if (!used.empty())
        throw ApiError(409, "Security Group " + string_or(row, "id") + " in use.",
                       "SecurityGroupInUse");
      row["stateful"] = stateful;
    }
  }
}

void delete_security_group(Tx& tx, const json::object& row) {
  auto id = string_or(row, "id");
  auto project = string_or(row, "project_id");
  bool is_default =
      !db::query_strings(
           tx.s, "SELECT project_id FROM default_security_group WHERE security_group_id = :p0",
           {id})
           .empty();
  if (is_default && !tx.admin)
    throw ApiError(409, "Insufficient rights for removing default security group.",
                   "SecurityGroupCannotRemoveDefault");
  auto used = db::query_strings(
      tx.s, "SELECT port_id FROM port_security_group WHERE security_group_id = :p0", {id});
  if (!used.empty()) throw ApiError(409, "Security Group " + id + " in use.", "SecurityGroupInUse");
  db::execute(tx.s, "DELETE FROM security_group_rule WHERE security_group_id = :p0", {id});
  db::execute(tx.s, "DELETE FROM default_security_group WHERE security_group_id = :p0", {id});
  // Rules of other groups that name this one as their remote group go too.
  db::execute(tx.s, "DELETE FROM security_group_rule WHERE remote_group_id = :p0", {id});
  erase(tx, Kind::security_group, id);
}

namespace {

const std::map<std::string, int> kProtocols = {
    {"ah", 51},         {"dccp", 33},       {"egp", 8},        {"esp", 50},      {"gre", 47},
    {"hopopt", 0},      {"icmp", 1},        {"igmp", 2},       {"ip", 0},        {"ipip", 4},
    {"ipv6-encap", 41}, {"ipv6-frag", 44},  {"ipv6-icmp", 58}, {"icmpv6", 58},   {"ipv6-nonxt", 59},
    {"ipv6-opts", 60},  {"ipv6-route", 43}, {"ospf", 89},      {"pgm", 113},     {"rsvp", 46},
    {"sctp", 132},      {"tcp", 6},         {"udp", 17},       {"udplite", 136}, {"vrrp", 112},
    {"any", -1}};

std::optional<long> port_value(const json::object& body, const char* name) {
  auto* v = find(body, name);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string() && v->as_string().empty()) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_string()) {
    try {
      size_t used = 0;
      std::string s(v->as_string());
      long n = std::stol(s, &used);
      if (used == s.size()) return n;
    } catch (...) {
    }
  }
  throw ApiError(400, "Invalid value for port " + to_string(*v), "SecurityGroupInvalidPortValue");
}

}  // namespace

json::object create_security_group_rule(Tx& tx, json::object& body) {
  auto project = owner_from_body(tx, body);
  auto* group_v = &required(body, "security_group_id");
  std::string group_id =
      group_v->is_string() ? std::string(group_v->as_string()) : to_string(*group_v);
  auto group = load(tx, Kind::security_group, group_id);
  if (!group || (!tx.admin && !owns(tx, *group)))
    throw ApiError(404, "Security group " + group_id + " does not exist", "SecurityGroupNotFound");
  auto* direction_v = &required(body, "direction");
  auto direction =
      direction_v->is_string() ? std::string(direction_v->as_string()) : to_string(*direction_v);
  if (direction != "ingress" && direction != "egress")
    throw bad_attribute("direction", "'" + direction + "' is not in ['ingress', 'egress']");
  std::string ethertype = "IPv4";
  if (auto* v = find(body, "ethertype"); v && !v->is_null()) {
    ethertype = v->is_string() ? std::string(v->as_string()) : to_string(*v);
    if (ethertype == "ipv4") ethertype = "IPv4";
    if (ethertype == "ipv6") ethertype = "IPv6";
    if (ethertype != "IPv4" && ethertype != "IPv6")
      throw bad_request("SecurityGroupRuleInvalidEtherType",
                        "Security group rule for ethertype '" + ethertype +
                            "' not supported. Allowed values are ['IPv4', 'IPv6'].");
  }
  json::object row = rule_row(project, group_id, direction, ethertype, nullptr);
  take_common(row, body, false);
  // Protocol: a name or a number 0-255, kept as given.
  json::value protocol = nullptr;
  int number = -1;  // none
  if (auto* v = find(body, "protocol"); v && !v->is_null()) {
    std::string text = v->is_string()  ? std::string(v->as_string())
                       : v->is_int64() ? std::to_string(v->as_int64())
                                       : to_string(*v);
    std::string lowered = text;
    for (auto& ch : lowered) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (auto it = kProtocols.find(lowered); it != kProtocols.end()) {
      number = it->second;
      protocol = lowered == "any" ? json::value(nullptr) : json::value(lowered);
    } else {
      bool numeric =
          !text.empty() && std::all_of(text.begin(), text.end(), ::isdigit) && text.size() <= 3;
      if (!numeric || std::stoi(text) > 255)
        throw ApiError(400,
                       "Security group rule protocol " + text +
                           " not supported. Only protocol values [None, 'ah', 'dccp', 'egp', "
                           "'esp', 'gre', 'hopopt', 'icmp', 'igmp', 'ip', 'ipip', 'ipv6-encap', "
                           "'ipv6-frag', 'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', "
                           "'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', 'udp', 'udplite', "
                           "'vrrp'] and integer representations [0 to 255] are supported.",
                       "SecurityGroupRuleInvalidProtocol");
      number = std::stoi(text);
      protocol = json::value(text);
    }
  }
  row["protocol"] = protocol;
  if (number == 58 && ethertype == "IPv4")
    throw bad_request(
        "SecurityGroupEthertypeConflictWithProtocol",
        "Invalid ethertype IPv4 for protocol " + std::string(protocol.as_string()) + ".");
  auto min = port_value(body, "port_range_min");
  auto max = port_value(body, "port_range_max");
  bool icmp = number == 1 || number == 58;
  bool ports = number == 6 || number == 17 || number == 33 || number == 132 || number == 136;
  if ((min || max) && number < 0)
    throw bad_request("SecurityGroupProtocolRequiredWithPorts",
                      "Must also specify protocol if port range is given.");
  if (ports) {
    for (auto p : {min, max})
      if (p && (*p < 0 || *p > 65535))
        throw ApiError(400, "Invalid value for port " + std::to_string(*p),
                       "SecurityGroupInvalidPortValue");
    if ((min && *min == 0) || (max && *max == 0))
      throw ApiError(400, "Invalid value for port 0", "SecurityGroupInvalidPortValue");
    if (!min && max)
      throw bad_request("SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max");
    if (min && max && *min > *max)
      throw bad_request("SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max");
  } else if (icmp) {
    if (min && (*min < 0 || *min > 255))
      throw bad_request("SecurityGroupInvalidIcmpValue",
                        "Invalid value for ICMP type (port-range-min) " + std::to_string(*min) +
                            ". It must be 0 to 255.");
    if (max && (*max < 0 || *max > 255))
      throw bad_request("SecurityGroupInvalidIcmpValue",
                        "Invalid value for ICMP code (port-range-max) " + std::to_string(*max) +
                            ". It must be 0 to 255.");
    if (max && !min)
      throw bad_request("SecurityGroupMissingIcmpType",
                        "ICMP code (port-range-max) " + std::to_string(*max) +
                            " is provided but ICMP type (port-range-min) is missing.");
  } else if (min || max) {
    throw bad_request(
        "SecurityGroupInvalidProtocolForPort",
        "Invalid protocol " +
            (protocol.is_string() ? std::string(protocol.as_string()) : std::string()) +
            " for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.");
  }
  if (ports && min && !max) max = min;
  row["port_range_min"] = min ? json::value(*min) : json::value(nullptr);
  row["port_range_max"] = max ? json::value(*max) : json::value(nullptr);
  auto* prefix_v = find(body, "remote_ip_prefix");
  auto* remote_v = find(body, "remote_group_id");
  bool has_prefix = prefix_v && !prefix_v->is_null();
  bool has_remote = remote_v && !remote_v->is_null();
  if (has_prefix && has_remote)
    throw bad_request("SecurityGroupRemoteGroupAndRemoteIpPrefix",
                      "Only remote_ip_prefix or remote_group_id may be provided.");
  if (has_prefix) {
    std::string text =
        prefix_v->is_string() ? std::string(prefix_v->as_string()) : to_string(*prefix_v);
    auto cidr = ipam::parse_cidr(text);
    bool bare_number = !text.empty() && std::all_of(text.begin(), text.end(), ::isdigit);
    if (!cidr || bare_number)
      throw bad_attribute("remote_ip_prefix", "'" + text + "' is not a valid IP subnet");
    if ((cidr->network.version == 4) != (ethertype == "IPv4"))
      throw bad_request("SecurityGroupRuleParameterConflict",
                        "Conflicting value ethertype " + ethertype + " for CIDR " + text);
    row["remote_ip_prefix"] = text;
    row["normalized_cidr"] = cidr->str();
  }
  if (has_remote) {
    std::string remote =
        remote_v->is_string() ? std::string(remote_v->as_string()) : to_string(*remote_v);
    auto other = load(tx, Kind::security_group, remote);
    if (!other || (!tx.admin && !owns(tx, *other) && string_or(*other, "project_id") != project))
      throw ApiError(404, "Security group " + remote + " does not exist", "SecurityGroupNotFound");
    row["remote_group_id"] = remote;
  }
  // An identical rule already in the group is a conflict.
  static const char* kSame[] = {"direction",      "ethertype",      "protocol",
                                "port_range_min", "port_range_max", "normalized_cidr",
                                "remote_group_id"};
  for (auto& other :
       load_where(tx, Kind::security_group_rule, db::Query{}.eq("security_group_id", group_id))) {
    bool same = true;
    for (auto* k : kSame) {
      auto* a = find(other, k);
      auto* b = find(row, k);
      json::value x = a ? *a : json::value(nullptr), y = b ? *b : json::value(nullptr);
      if (x != y) same = false;
    }
    if (same)
      throw ApiError(
          409, "Security group rule already exists. Rule id is " + string_or(other, "id") + ".",
          "SecurityGroupRuleExists");
  }
  check_quota(tx, Kind::security_group_rule, project);
  insert(tx, Kind::security_group_rule, row);
  touch(tx, Kind::security_group, group_id);
  return row;
}

void delete_security_group_rule(Tx& tx, const json::object& row) {
  erase(tx, Kind::security_group_rule, string_or(row, "id"));
  touch(tx, Kind::security_group, string_or(row, "security_group_id"));
}

}  // namespace nubo::network::detail
