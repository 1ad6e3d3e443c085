// Servers on networks (Nova's neutron module): what a create may ask for, checked as the caller;
// the ports made and bound at build; the network info cache (`network_info` on the instance:
// its NICs, their addresses and floating IPs) that views and drivers read; the external events
// the network service sends (network-vif-plugged, network-changed, network-vif-deleted).
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/service/server_states.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

// The NIC a port makes: Nova's VIF, trimmed to what views and drivers use.
json::object vif_of(const json::object& port, const std::map<std::string, json::object>& networks,
                    const std::vector<json::object>& floating_ips, bool preexisting,
                    const json::value& tag) {
  auto id = string_or(port, "id"), network_id = string_or(port, "network_id");
  json::array ips;
  json::array fixed;
  if (auto* f = port.if_contains("fixed_ips"); f && f->is_array()) fixed = f->as_array();
  for (auto& ip : fixed) {
    auto address = string_or(ip.as_object(), "ip_address");
    ips.push_back(json::object{{"address", address},
                               {"version", address.find(':') == std::string::npos ? 4 : 6},
                               {"type", "fixed"},
                               {"subnet_id", string_or(ip.as_object(), "subnet_id")}});
  }
  for (auto& fip : floating_ips)
    if (string_or(fip, "port_id") == id)
      ips.push_back(json::object{{"address", string_or(fip, "floating_ip_address")},
                                 {"version", 4},
                                 {"type", "floating"},
                                 {"fixed_address", string_or(fip, "fixed_ip_address")}});
  auto n = networks.find(network_id);
  return json::object{
      {"port_id", id},
      {"network_id", network_id},
      {"network_name", n == networks.end() ? network_id : string_or(n->second, "name")},
      {"mac", string_or(port, "mac_address")},
      {"mtu", n == networks.end() ? 1500 : int_or(n->second, "mtu", 1500)},
      {"devname", "tap" + id.substr(0, 11)},
      {"ips", std::move(ips)},
      {"active", string_or(port, "status") == "ACTIVE"},
      {"preexisting", preexisting},
      {"tag", tag}};
}

json::array array_of(const json::object& row, const char* key) {
  auto* v = row.if_contains(key);
  return v && v->is_array() ? v->as_array() : json::array{};
}

// The ports a server has in the network service: its project's ports naming it (a port of
// another project that names the server is not its, as Nova's lookup by tenant and device).
NetworkFilters ports_of(const json::object& row) {
  return {{"device_id", string_or(row, "id")}, {"project_id", string_or(row, "project_id")}};
}

// The ports the user brought: named in the request (and not marked as compute's own) or
// recorded so in the cache.
std::set<std::string> users_ports(const json::object& row) {
  std::set<std::string> out;
  if (auto* req = row.if_contains("requested_networks"); req && req->is_array())
    for (auto& r : req->as_array())
      if (auto id = string_or(r.as_object(), "port_id");
          !id.empty() && bool_or(r.as_object(), "preexisting", true))
        out.insert(id);
  for (auto& v : array_of(row, "network_info"))
    if (bool_or(v.as_object(), "preexisting", false))
      out.insert(string_or(v.as_object(), "port_id"));
  return out;
}

// The request that gives the server exactly the NICs it has now (after an attach or detach, and
// for moves): each port by id, with whose it is and its tag.
json::array request_of(const json::array& info) {
  json::array out;
  for (auto& v : info) {
    auto& vif = v.as_object();
    out.push_back(json::object{{"port_id", string_or(vif, "port_id")},
                               {"network_id", string_or(vif, "network_id")},
                               {"preexisting", bool_or(vif, "preexisting", false)},
                               {"tag", vif.contains("tag") ? vif.at("tag") : nullptr}});
  }
  return out;
}

}  // namespace

json::value ComputeService::resolve_networks(const Caller& c, const ServerRequest& r, long count,
                                             json::array& security_group_ids) {
  auto& nets = r.networks;
  if (!network_) {
    // No network service in this deployment: a named network or port cannot exist, and only the
    // `default` security group does.
    if (nets.is_array())
      for (auto& n : nets.as_array()) {
        if (auto uuid = string_or(n.as_object(), "uuid"); !uuid.empty())
          throw BadRequest("Network " + uuid + " could not be found.");
        if (auto port = string_or(n.as_object(), "port"); !port.empty())
          throw NotFound("Port id " + port + " could not be found.");
      }
    for (auto& g : r.security_groups)
      if (g != "default")
        throw BadRequest("Security group " + g + " not found for project " + c.project() + ".");
    return nullptr;
  }
  // Security groups by name (the project's) or id; `default` alone is what Neutron gives a port.
  if (!(r.security_groups.size() == 1 && r.security_groups[0] == "default")) {
    auto groups = network_->list(&c.auth, "security-groups", {{"project_id", c.project()}});
    for (auto& want : r.security_groups) {
      std::vector<std::string> found;
      for (auto& g : groups)
        if (string_or(g, "name") == want || string_or(g, "id") == want)
          found.push_back(string_or(g, "id"));
      if (found.empty() && is_uuid(want))
        if (auto g = network_->show(&c.auth, "security-groups", want))
          found.push_back(string_or(*g, "id"));
      if (found.empty())
        throw BadRequest("Security group " + want + " not found for project " + c.project() + ".");
      if (found.size() > 1)
        throw Conflict("Multiple security groups found matching '" + want +
                       "'. Use an ID to be more specific.");
      if (std::find(security_group_ids.begin(), security_group_ids.end(), json::value(found[0])) ==
          security_group_ids.end())
        security_group_ids.push_back(json::value(found[0]));
    }
  }
  if (nets.is_string() && nets.as_string() == "none") return json::array{};
  json::array requested;
  if (nets.is_array()) {
    NetworkFilters by_id;
    for (auto& n : nets.as_array()) {
      auto& o = n.as_object();
      auto port_id = string_or(o, "port"), uuid = string_or(o, "uuid"),
           fixed_ip = string_or(o, "fixed_ip");
      json::object want;
      if (auto* tag = o.if_contains("tag")) want["tag"] = *tag;
      if (!port_id.empty()) {
        auto port = network_->show(&c.auth, "ports", port_id);
        if (!port) throw NotFound("Port id " + port_id + " could not be found.");
        if (!string_or(*port, "device_id").empty())
          throw Conflict("Port " + port_id + " is still in use.");
        auto* fixed = port->if_contains("fixed_ips");
        if (!fixed || !fixed->is_array() || fixed->as_array().empty())
          throw BadRequest("Port " + port_id + " requires a FixedIP in order to be used.");
        if (count > 1)
          throw BadRequest(
              "Unable to launch multiple instances with a single configured port ID. Please "
              "launch your instance one by one with different ports.");
        want["port_id"] = port_id;
        want["network_id"] = string_or(*port, "network_id");
      } else {
        if (uuid.empty())
          throw BadRequest("Bad networks format: network uuid is not in proper format ()");
        if (!fixed_ip.empty()) {
          if (count > 1)
            throw BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.");
          want["fixed_ip"] = fixed_ip;
        }
        want["network_id"] = uuid;
        by_id.emplace_back("id", uuid);
      }
      requested.push_back(std::move(want));
    }
    if (!by_id.empty()) {
      std::map<std::string, json::object> seen;
      for (auto& n : network_->list(&c.auth, "networks", by_id)) seen[string_or(n, "id")] = n;
      for (auto& [key, id] : by_id) {
        auto it = seen.find(id);
        if (it == seen.end()) throw BadRequest("Network " + id + " could not be found.");
        if (array_of(it->second, "subnets").empty())
          throw BadRequest("Network " + id + " requires a subnet in order to boot instances on.");
      }
    }
    return requested;
  }
  // Nothing named: the project's own networks and the shared ones (Nova's available networks).
  // One is used; more is ambiguous; none gives no NIC, or with `auto` a network made for the
  // project at build time (get-me-a-network). External networks count only when named: Nova
  // would put an admin's server on the cloud's public network, which the all-in-one's admin
  // project owns (an operator expects a private NIC or none).
  std::map<std::string, json::object> available;
  auto consider = [&](const NetworkFilters& filters) {
    for (auto& n : network_->list(&c.auth, "networks", filters))
      if (!bool_or(n, "router:external", false)) available[string_or(n, "id")] = n;
  };
  consider({{"project_id", c.project()}, {"shared", "false"}});
  consider({{"shared", "true"}});
  if (available.size() > 1)
    throw Conflict("Multiple possible networks found, use a Network ID to be more specific.");
  if (available.size() == 1) {
    requested.push_back(json::object{{"network_id", available.begin()->first}});
    return requested;
  }
  if (nets.is_string() && nets.as_string() == "auto") return "auto";
  return requested;
}

std::string ComputeService::auto_allocated_network(const std::string& project) {
  // Get-me-a-network: the project's network, subnet and router, made once (Neutron's
  // auto-allocated topology): the subnet from the default IPv4 subnet pool when there is one,
  // the router's gateway on the default (or only) external network.
  static const char* kName = "auto_allocated_network";
  auto have = network_->list(nullptr, "networks", {{"project_id", project}, {"name", kName}});
  for (auto& n : have)
    if (!array_of(n, "subnets").empty()) return string_or(n, "id");
  std::string network_id = have.empty() ? std::string() : string_or(have.front(), "id");
  if (network_id.empty())
    network_id = string_or(
        network_->create("networks", json::object{{"name", kName}, {"project_id", project}}), "id");
  json::object subnet{{"network_id", network_id},
                      {"project_id", project},
                      {"name", "auto_allocated_subnet_v4"},
                      {"ip_version", 4}};
  auto pools =
      network_->list(nullptr, "subnetpools", {{"is_default", "true"}, {"ip_version", "4"}});
  if (!pools.empty())
    subnet["subnetpool_id"] = string_or(pools.front(), "id");
  else
    subnet["cidr"] = "10.0.0.0/24";
  auto subnet_id = string_or(network_->create("subnets", subnet), "id");
  auto externals = network_->list(nullptr, "networks", {{"router:external", "true"}});
  std::string external;
  for (auto& n : externals)
    if (bool_or(n, "is_default", false)) external = string_or(n, "id");
  if (external.empty() && externals.size() == 1) external = string_or(externals.front(), "id");
  if (!external.empty()) {
    auto router = network_->create(
        "routers", json::object{{"name", "auto_allocated_router"},
                                {"project_id", project},
                                {"external_gateway_info", json::object{{"network_id", external}}}});
    network_->action("routers", string_or(router, "id"), "add_router_interface",
                     json::object{{"subnet_id", subnet_id}});
  }
  return network_id;
}

json::array ComputeService::allocate_network(const json::object& row, const std::string& host) {
  auto* req = row.if_contains("requested_networks");
  if (!network_ || !req || req->is_null()) return {};
  auto id = string_or(row, "id"), project = string_or(row, "project_id");
  json::array requested;
  if (req->is_string())  // "auto"
    requested.push_back(json::object{{"network_id", auto_allocated_network(project)}});
  else
    requested = req->as_array();
  if (requested.empty()) return {};
  auto owner = "compute:" + (string_or(row, "availability_zone").empty()
                                 ? settings_.default_availability_zone
                                 : string_or(row, "availability_zone"));
  json::object binding{{"device_id", id}, {"device_owner", owner}, {"binding:host_id", host}};
  // Ports already made for this server (a replay, a reschedule) are used again.
  auto existing = network_->list(nullptr, "ports", ports_of(row));
  // The user's ports are theirs only: never taken for a network request.
  std::set<std::string> used = users_ports(row);
  std::vector<std::pair<json::object, json::object>> ports;  // port, request
  for (auto& r : requested) {
    auto& want = r.as_object();
    auto port_id = string_or(want, "port_id");
    std::optional<json::object> port;
    if (!port_id.empty()) {
      port = network_->show(nullptr, "ports", port_id);
      if (!port) throw std::runtime_error("port " + port_id + " is gone");
    } else {
      for (auto& p : existing)
        if (!used.count(string_or(p, "id")) &&
            string_or(p, "network_id") == string_or(want, "network_id"))
          port = p;
    }
    if (port) {
      used.insert(string_or(*port, "id"));
      bool bound = string_or(*port, "device_id") == id &&
                   string_or(*port, "binding:host_id") == host &&
                   string_or(*port, "device_owner") == owner;
      if (!bound) port = network_->update("ports", string_or(*port, "id"), binding);
    } else {
      json::object body = binding;
      body["network_id"] = string_or(want, "network_id");
      body["project_id"] = project;
      if (auto ip = string_or(want, "fixed_ip"); !ip.empty())
        body["fixed_ips"] = json::array{json::object{{"ip_address", ip}}};
      if (auto groups = array_of(row, "security_group_ids"); !groups.empty())
        body["security_groups"] = groups;
      port = network_->create("ports", body);
      used.insert(string_or(*port, "id"));
    }
    ports.emplace_back(std::move(*port), want);
  }
  std::vector<json::object> bare;
  for (auto& [p, want] : ports) bare.push_back(p);
  auto info = network_info_of(bare, [&](const json::object& p) {
    for (auto& [port, want] : ports)
      if (string_or(port, "id") == string_or(p, "id"))
        return std::pair{bool_or(want, "preexisting", !string_or(want, "port_id").empty()),
                         want.contains("tag") ? want.at("tag") : json::value(nullptr)};
    return std::pair{false, json::value(nullptr)};
  });
  db_->write([&](soci::session& s) {
    db::update(s, st::instance, id, json::object{{"network_info", info}, {"network_host", host}});
  });
  return info;
}

json::array ComputeService::network_info_of(
    const std::vector<json::object>& ports,
    const std::function<std::pair<bool, json::value>(const json::object&)>& origin) {
  if (ports.empty()) return {};
  NetworkFilters networks_wanted, fips_wanted;
  for (auto& p : ports) {
    networks_wanted.emplace_back("id", string_or(p, "network_id"));
    fips_wanted.emplace_back("port_id", string_or(p, "id"));
  }
  std::map<std::string, json::object> networks;
  for (auto& n : network_->list(nullptr, "networks", networks_wanted))
    networks[string_or(n, "id")] = n;
  auto fips = network_->list(nullptr, "floatingips", fips_wanted);
  json::array info;
  for (auto& p : ports) {
    auto [preexisting, tag] = origin(p);
    info.push_back(vif_of(p, networks, fips, preexisting, tag));
  }
  return info;
}

json::array ComputeService::refresh_network_info(const std::string& id) {
  if (!network_) return {};
  std::optional<json::object> row;
  db_->read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || row->at("deleted").as_bool()) return {};
  auto previous = array_of(*row, "network_info");
  // The cache keeps its order (the guest's NIC order); new ports go last.
  auto ports = network_->list(nullptr, "ports", ports_of(*row));
  std::vector<json::object> ordered;
  for (auto& v : previous)
    for (auto& p : ports)
      if (string_or(p, "id") == string_or(v.as_object(), "port_id")) ordered.push_back(p);
  for (auto& p : ports)
    if (std::none_of(ordered.begin(), ordered.end(),
                     [&](auto& o) { return string_or(o, "id") == string_or(p, "id"); }))
      ordered.push_back(p);
  auto users = users_ports(*row);
  auto info = network_info_of(ordered, [&](const json::object& p) {
    for (auto& v : previous)
      if (string_or(v.as_object(), "port_id") == string_or(p, "id"))
        return std::pair{bool_or(v.as_object(), "preexisting", false), v.as_object().contains("tag")
                                                                           ? v.as_object().at("tag")
                                                                           : json::value(nullptr)};
    return std::pair{users.count(string_or(p, "id")) > 0, json::value(nullptr)};
  });
  bool written = false;
  db_->write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    // Written only over the cache it was made from: a concurrent attach, detach or build wins
    // (and its own event refreshes again).
    if (r && !r->at("deleted").as_bool() && array_of(*r, "network_info") == previous) {
      db::update(s, st::instance, id, json::object{{"network_info", info}});
      written = true;
    }
  });
  // A port deleted in the network service (network-vif-deleted) leaves the running guest too,
  // as Nova detaches it: the host unplugs the NIC and its tap.
  if (written && !string_or(*row, "host").empty()) {
    auto now_row = *row;
    now_row["network_info"] = info;
    for (auto& v : previous)
      if (std::none_of(ports.begin(), ports.end(), [&](auto& p) {
            return string_or(p, "id") == string_or(v.as_object(), "port_id");
          }))
        cast_to_host(*row, "unplug_vif",
                     json::object{{"instance_id", id},
                                  {"instance", instance_spec(now_row, {}).to_json()},
                                  {"vif", v}});
  }
  return info;
}

void ComputeService::deallocate_network(const json::object& row) {
  if (!network_) return;
  auto id = string_or(row, "id");
  auto preexisting = users_ports(row);
  // Ports the user brought are unbound and stay; those made for the server go.
  for (auto& p : network_->list(nullptr, "ports", ports_of(row)))
    give_back_port(string_or(p, "id"), preexisting.count(string_or(p, "id")) > 0);
}

void ComputeService::give_back_port(const std::string& port_id, bool users) {
  if (users)
    network_->update(
        "ports", port_id,
        json::object{{"device_id", ""}, {"device_owner", ""}, {"binding:host_id", ""}});
  else
    network_->remove("ports", port_id);
}

bool ComputeService::vifs_plugged(const json::object& row) {
  auto info = array_of(row, "network_info");
  auto events = array_of(row, "vif_events");
  return std::all_of(info.begin(), info.end(), [&](const json::value& v) {
    return bool_or(v.as_object(), "active", false) ||
           std::find(events.begin(), events.end(),
                     json::value(string_or(v.as_object(), "port_id"))) != events.end();
  });
}

json::array ComputeService::external_events(const json::array& events) {
  json::array out;
  std::set<std::string> check, refresh;
  db_->write([&](soci::session& s) {
    for (auto& e : events) {
      auto& o = e.as_object();
      auto name = string_or(o, "name"), uuid = string_or(o, "server_uuid"),
           tag = string_or(o, "tag"), status = string_or(o, "status", "completed");
      json::object r = o;
      auto row = db::get(s, st::instance, uuid);
      if (!row || row->at("deleted").as_bool()) {
        r["code"] = 404;
        r["status"] = "failed";
        out.push_back(std::move(r));
        continue;
      }
      if (string_or(*row, "host").empty()) {
        r["code"] = 422;
        r["status"] = "failed";
        out.push_back(std::move(r));
        continue;
      }
      r["code"] = 200;
      if (name == "network-vif-plugged" && !tag.empty()) {
        auto seen = array_of(*row, status == "failed" ? "vif_failures" : "vif_events");
        if (std::find(seen.begin(), seen.end(), json::value(tag)) == seen.end()) {
          seen.push_back(json::value(tag));
          db::update(s, st::instance, uuid,
                     json::object{{status == "failed" ? "vif_failures" : "vif_events", seen}});
        }
        check.insert(uuid);
      } else if (name == "network-changed" || name == "network-vif-deleted") {
        refresh.insert(uuid);
      }
      out.push_back(std::move(r));
    }
  });
  for (auto& id : refresh) cast_to_conductor("refresh_network", json::object{{"instance_id", id}});
  for (auto& id : check) cast_to_conductor("vifs_plugged", json::object{{"instance_id", id}});
  return out;
}

json::object ComputeService::interface_server(const Caller& c, const std::string& id,
                                              const std::string& rule, const char* record) {
  json::object row;
  db_->read([&](soci::session& s) { row = server_row(s, c, id, rule); });
  if (!record) return row;
  if (row.at("locked").as_bool() && !c.admin()) throw Conflict("Instance " + id + " is locked");
  auto vm = string_or(row, "vm_state");
  if ((vm != "active" && vm != "paused" && vm != "stopped") ||
      !string_or(row, "task_state").empty())
    throw Conflict(state_conflict(record, id, row));
  if (!network_)
    throw ApiError(501, "Network driver does not support this function.", "NotImplemented");
  return row;
}

std::vector<json::object> ComputeService::interfaces(const Caller& c, const std::string& id) {
  auto row = interface_server(c, id, "os_compute_api:os-attach-interfaces:list", nullptr);
  if (!network_) return {};
  auto ports = network_->list(nullptr, "ports", ports_of(row));
  // The device tags live in the network info cache.
  for (auto& p : ports)
    for (auto& v : array_of(row, "network_info"))
      if (string_or(v.as_object(), "port_id") == string_or(p, "id"))
        p["__tag"] = v.as_object().contains("tag") ? v.as_object().at("tag") : nullptr;
  return ports;
}

json::object ComputeService::attach_interface(const Caller& c, const std::string& id,
                                              const std::string& net_id, const std::string& port_id,
                                              const std::string& fixed_ip, const json::value& tag) {
  auto row =
      interface_server(c, id, "os_compute_api:os-attach-interfaces:create", "attach_interface");
  // What a create would ask, checked the same way (as the caller).
  ServerRequest r;
  json::object want;
  if (!port_id.empty()) want["port"] = port_id;
  if (!net_id.empty()) want["uuid"] = net_id;
  if (!fixed_ip.empty()) want["fixed_ip"] = fixed_ip;
  if (!tag.is_null()) want["tag"] = tag;
  json::array groups;
  r.security_groups = {"default"};
  if (port_id.empty() && net_id.empty()) {
    r.networks = nullptr;  // the one network the project may use
  } else {
    r.networks = json::array{want};
  }
  json::value resolved;
  try {
    resolved = resolve_networks(c, r, 1, groups);
  } catch (const ApiError& e) {
    // Nova's os-interface answers: an unknown network 404, an ambiguous one 400.
    if (e.status() == 400 && std::string(e.what()).find("could not be found") != std::string::npos)
      throw NotFound(e.what());
    if (e.status() == 409 && !std::string(e.what()).starts_with("Port")) throw BadRequest(e.what());
    throw;
  }
  if (!resolved.is_array() || resolved.as_array().empty())
    throw BadRequest("No network is available to attach an interface to.");
  // The ports the server has now, then the new one (allocate_network keeps the others).
  auto requested = request_of(array_of(row, "network_info"));
  auto added = resolved.as_array().front().as_object();
  requested.push_back(added);
  auto spec_row = row;
  spec_row["requested_networks"] = requested;
  auto before = array_of(row, "network_info");
  auto info = allocate_network(spec_row, string_or(row, "host"));
  if (info.size() <= before.size())
    throw ApiError(500, "Failed to allocate the port.", "InternalServerError");
  auto vif = info.back().as_object();
  spec_row["network_info"] = info;
  try {
    ask_host(
        spec_row, "attach_interface",
        json::object{
            {"instance_id", id}, {"instance", instance_spec(spec_row, {}).to_json()}, {"vif", vif}},
        "Failed to attach network adapter device: ", std::chrono::seconds(30));
  } catch (...) {
    // Back as it was: the NIC's port goes (or is unbound), the cache loses it.
    try {
      give_back_port(string_or(vif, "port_id"), !port_id.empty());
      db_->write([&](soci::session& s) {
        db::update(s, st::instance, id, json::object{{"network_info", before}});
      });
    } catch (const std::exception& e) {
      spdlog::warn("compute: undoing the interface attach of {}: {}", id, e.what());
    }
    throw;
  }
  db_->write([&](soci::session& s) {
    db::update(s, st::instance, id,
               json::object{{"network_info", info}, {"requested_networks", request_of(info)}});
    record_action(s, c, id, "attach_interface");
  });
  auto port = network_->show(nullptr, "ports", string_or(vif, "port_id"));
  return port ? *port : json::object{};
}

void ComputeService::detach_interface(const Caller& c, const std::string& id,
                                      const std::string& port_id) {
  auto row =
      interface_server(c, id, "os_compute_api:os-attach-interfaces:delete", "detach_interface");
  auto info = array_of(row, "network_info");
  json::array left;
  json::object vif;
  for (auto& v : info)
    if (string_or(v.as_object(), "port_id") == port_id)
      vif = v.as_object();
    else
      left.push_back(v);
  if (vif.empty()) throw NotFound("Port " + port_id + " is not attached");
  auto spec_row = row;
  spec_row["network_info"] = left;
  ask_host(
      spec_row, "detach_interface",
      json::object{
          {"instance_id", id}, {"instance", instance_spec(spec_row, {}).to_json()}, {"vif", vif}},
      "Failed to detach network adapter device: ", std::chrono::seconds(30));
  give_back_port(port_id, bool_or(vif, "preexisting", false));
  db_->write([&](soci::session& s) {
    db::update(s, st::instance, id,
               json::object{{"network_info", left}, {"requested_networks", request_of(left)}});
    record_action(s, c, id, "detach_interface");
  });
}

void ComputeService::change_security_group(const Caller& c, const std::string& id,
                                           const std::string& group, bool add) {
  auto row = interface_server(
      c, id,
      add ? "os_compute_api:os-security-groups:add" : "os_compute_api:os-security-groups:remove",
      nullptr);
  if (!network_)
    throw ApiError(501, "Network driver does not support this function.", "NotImplemented");
  std::string group_id, group_name;
  for (auto& g : network_->list(&c.auth, "security-groups", {{"project_id", c.project()}}))
    if (string_or(g, "name") == group || string_or(g, "id") == group) {
      if (!group_id.empty())
        throw Conflict("Multiple security groups found matching '" + group +
                       "'. Use an ID to be more specific.");
      group_id = string_or(g, "id");
      group_name = string_or(g, "name");
    }
  if (group_id.empty())
    throw NotFound("Security group " + group + " not found for project " + c.project() + ".");
  auto ports = network_->list(nullptr, "ports", ports_of(row));
  if (ports.empty()) throw NotFound("Instance " + id + " has no ports to apply a group to.");
  for (auto& p : ports)
    if (!bool_or(p, "port_security_enabled", true))
      throw BadRequest("Port " + string_or(p, "id") +
                       " does not have port security enabled: security groups cannot be applied.");
  bool member = false;
  for (auto& p : ports)
    for (auto& g : array_of(p, "security_groups"))
      if (g.is_string() && g.as_string() == group_id) member = true;
  if (add && member)
    throw BadRequest("Security group " + group_name + " is already associated with the instance " +
                     id);
  if (!add && !member)
    throw BadRequest("Security group " + group_name + " not associated with the instance " + id);
  json::array now_groups;  // what the server's ports (and any port made for it later) carry
  for (auto& p : ports) {
    json::array groups;
    for (auto& g : array_of(p, "security_groups"))
      if (!(g.is_string() && g.as_string() == group_id)) groups.push_back(g);
    if (add) groups.push_back(json::value(group_id));
    network_->update("ports", string_or(p, "id"), json::object{{"security_groups", groups}});
    now_groups = groups;
  }
  db_->write([&](soci::session& s) {
    json::array names;
    for (auto& g : array_of(row, "security_groups"))
      if (string_or(g.as_object(), "name") != group_name) names.push_back(g);
    if (add) names.push_back(json::object{{"name", group_name}});
    db::update(s, st::instance, id,
               json::object{{"security_groups", names}, {"security_group_ids", now_groups}});
  });
}

}  // namespace nubo::compute
