// Inside the network service: the transaction context each operation runs in, row access with
// standard attributes, Neutron's attribute validation, and the per-kind operations.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "network/ipam/address.hpp"
#include "network/service/network_service.hpp"

namespace nubo::network {

struct NetworkService::Tx {
  soci::session& s;
  const Caller& c;
  const NetworkSettings& settings;
  bool admin;
  std::string now;  // this operation's timestamp, as Neutron shows it
  // Where each subnet's last allocation ended (writes only; the writer serializes them).
  std::map<std::string, ipam::Address>* ip_hints = nullptr;
  // Networks read for visibility checks within this operation.
  std::map<std::string, std::optional<json::object>> networks = {};
  // What compute is told once this commits (Neutron's Nova notifier): os-server-external-events
  // {name, server_uuid, tag (the port), status}.
  std::vector<json::object> compute_events = {};

  const std::string& project() const { return c.project(); }
  bool allowed(const std::string& rule, const PolicyTarget& target = {}) const {
    return c.allowed(rule, target);
  }
};
using Tx = NetworkService::Tx;

struct NetworkService::State {
  std::atomic<std::uint64_t> generation{1};
  std::map<std::string, ipam::Address> ip_hints;
  // The agents that reported in, by host (kept in memory: an agent reports again within its
  // resync interval, and registers again when it or this service restarts).
  struct Agent {
    bool network_node = true;
    std::string started_at;
    std::chrono::system_clock::time_point heartbeat;
  };
  std::mutex agents_mutex;
  std::map<std::string, Agent> agents;
  // Rows rendered as the API shows them, kept between listings (list_rendered): valid while the
  // stored row has the same revision and creation time (ids are never reused).
  struct Rendered {
    std::int64_t revision = -1;
    std::string created_at;
    json::object keys;                           // the attributes visible() reads
    std::shared_ptr<const std::string> text[2];  // the view as JSON, [admin]
  };
  std::shared_mutex rendered_mutex;
  std::map<Kind, std::unordered_map<std::string, Rendered>> rendered;
};

namespace detail {

// Queues an external event for the server behind a port (a port of another kind: nothing).
void notify_compute(Tx& tx, const json::object& port, const char* name);
// network-changed for the server behind this port id.
void port_changed(Tx& tx, const std::string& port_id);

// Neutron's error types.
ApiError not_found(Kind k, const std::string& id);
ApiError invalid_input(const std::string& message);  // "Invalid input for operation: ..."
ApiError bad_attribute(const std::string& attr,
                       const std::string& reason);  // "Invalid input for X. Reason: ..."
ApiError conflict(const std::string& type, const std::string& message);
ApiError bad_request(const std::string& type, const std::string& message);
ApiError policy_denied(const std::string& rule);  // 403 "(rule:X) is disallowed by policy"
ApiError network_in_use(const std::string& network_id);
// The body's attribute, or 400 "Required attribute 'X' not specified".
const json::value& required(const json::object& body, const std::string& name);

const db::Table& table(Kind k);

// Rows as stored (every attribute but the computed ones).
std::optional<json::object> load(Tx& tx, Kind k, const std::string& id);
std::vector<json::object> load_where(Tx& tx, Kind k, const db::Query& q = {});
// The row when the caller may see it; NotFound otherwise.
json::object fetch(Tx& tx, Kind k, const std::string& id);
// New row: id (unless given), project_id, standard attributes; then inserted.
void insert(Tx& tx, Kind k, json::object& row);
// Writes a changed row with revision_number + 1 and updated_at now.
void save(Tx& tx, Kind k, json::object& row);
// Bumps a parent's revision (a subnet added to a network, a rule to a group).
void touch(Tx& tx, Kind k, const std::string& id);
void erase(Tx& tx, Kind k, const std::string& id);

// Visibility (Neutron's ownership plus shared/external networks and RBAC).
bool visible(Tx& tx, Kind k, const json::object& row);
bool owns(const Tx& tx, const json::object& row);
bool network_shared_with(Tx& tx, const json::object& network, const std::string& project,
                         const std::string& action = "access_as_shared");
// Rows the caller may see, decorated as the API shows them.
std::vector<json::object> views(Tx& tx, Kind k, std::vector<json::object> rows);

// Attribute rules: unknown ones, ones not allowed in POST, read-only ones in PUT.
struct Attr {
  const char* name;
  bool post = true;
  bool put = true;
};
const std::vector<Attr>& attributes(Kind k);
void check_attributes(Kind k, const json::object& body, bool post);
// The project a new resource belongs to: the caller's, or (admins) the one named in the body.
std::string owner_from_body(Tx& tx, json::object& body);

// Converters as neutron-lib's: each raises "Invalid input for <name>. Reason: ...".
std::string to_string_attr(const json::value& v, const std::string& name, size_t max = 255);
bool to_bool(const json::value& v, const std::string& name);
long to_int(const json::value& v, const std::string& name);
std::string to_uuid(const json::value& v, const std::string& name);
ipam::Address to_ip(const json::value& v, const std::string& name);
// Standard attributes present in the body: name, description (validated, copied).
void take_common(json::object& row, const json::object& body, bool has_name = true);
using nubo::is_uuid;  // common/ids.hpp

// The per-kind operations (one file each).
json::object create_network(Tx& tx, json::object& body);
void update_network(Tx& tx, json::object& row, const json::object& body);
void delete_network(Tx& tx, const json::object& row);
json::object create_subnet(Tx& tx, json::object& body);
void update_subnet(Tx& tx, json::object& row, const json::object& body);
void delete_subnet(Tx& tx, const json::object& row);
json::object create_subnetpool(Tx& tx, json::object& body);
void update_subnetpool(Tx& tx, json::object& row, const json::object& body);
void delete_subnetpool(Tx& tx, const json::object& row);
json::object create_address_scope(Tx& tx, json::object& body);
void update_address_scope(Tx& tx, json::object& row, const json::object& body);
void delete_address_scope(Tx& tx, const json::object& row);
json::object create_port(Tx& tx, json::object& body);
void update_port(Tx& tx, json::object& row, const json::object& body);
void delete_port(Tx& tx, const json::object& row, bool internal = false);
json::object create_security_group(Tx& tx, json::object& body);
void update_security_group(Tx& tx, json::object& row, const json::object& body);
void delete_security_group(Tx& tx, const json::object& row);
json::object create_security_group_rule(Tx& tx, json::object& body);
void delete_security_group_rule(Tx& tx, const json::object& row);
json::object create_router(Tx& tx, json::object& body);
void update_router(Tx& tx, json::object& row, const json::object& body);
void delete_router(Tx& tx, const json::object& row);
json::object create_floatingip(Tx& tx, json::object& body);
void update_floatingip(Tx& tx, json::object& row, const json::object& body);
void delete_floatingip(Tx& tx, const json::object& row);
json::object create_rbac_policy(Tx& tx, json::object& body);
void update_rbac_policy(Tx& tx, json::object& row, const json::object& body);
void delete_rbac_policy(Tx& tx, const json::object& row);

// The project's default security group, made with Neutron's default rules on first need.
std::string ensure_default_security_group(Tx& tx, const std::string& project);
// Counts the project's resources of a kind and raises OverQuota (409) past its limit.
void check_quota(Tx& tx, Kind k, const std::string& project, long adding = 1);
long quota_limit(Tx& tx, const std::string& project, const std::string& resource);

// IPAM: addresses for a port on its network, from requests [{subnet_id?, ip_address?}] or, when
// `requests` is null, one address per IPv4 subnet (and each IPv6 subnet) as Neutron allocates.
json::array allocate_ips(Tx& tx, const json::object& network, const std::string& port_id,
                         const std::string& mac, const json::value* requests,
                         const std::vector<std::string>& device_owner_subnets = {},
                         const std::string& device_owner = "");
void release_ips(Tx& tx, const std::string& port_id);
// The subnet's allocation pools as ranges.
std::vector<ipam::Range> pools_of(const json::object& subnet);
bool is_router_port(const std::string& device_owner);
bool is_floating_port(const std::string& device_owner);
// Floating IPs that point at this port are disassociated (port delete).
void disassociate_floatingips(Tx& tx, const std::string& port_id);

}  // namespace detail
}  // namespace nubo::network
