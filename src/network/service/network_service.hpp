// The network service's operations (Neutron v2.0 semantics): networks, subnets and IPAM, ports,
// security groups, routers and floating IPs, subnet pools, RBAC sharing, tags, quotas, with
// Neutron's visibility rules and standard attributes (revision numbers, timestamps).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/caller.hpp"
#include "common/db/database.hpp"
#include "common/json.hpp"

namespace soci {
class session;
}

namespace nubo::network {

using nubo::Caller;

struct NetworkSettings {
  std::string public_url = "http://127.0.0.1:9696";
  std::string region = "RegionOne";
  std::string host = "localhost";  // this agent's host, for agents and bindings
  int global_mtu = 1500;           // the physical MTU; VXLAN networks get 50 less
  std::string default_network_type = "vxlan";
  std::string physical_network = "public";  // flat networks' name for the external bridge
  std::string base_mac = "fa:16:3e";
  long max_fixed_ips_per_port = 5;
  long max_allowed_address_pairs = 10;
  long max_routes = 30;
  long max_dns_nameservers = 5;
  long max_subnet_host_routes = 20;
  long pagination_max_limit = -1;  // -1: no cap
  std::string dns_domain = "openstacklocal";
  std::vector<std::string> availability_zones{"nova"};
  // Project quotas: -1 unlimited.
  std::map<std::string, long> default_quotas{{"network", 100},
                                             {"subnet", 100},
                                             {"port", 500},
                                             {"router", 10},
                                             {"floatingip", 50},
                                             {"security_group", 10},
                                             {"security_group_rule", 100},
                                             {"subnetpool", -1},
                                             {"rbac_policy", 10}};
};

enum class Kind {
  network,
  subnet,
  port,
  security_group,
  security_group_rule,
  router,
  floatingip,
  subnetpool,
  rbac_policy,
  address_scope,
};

struct KindInfo {
  Kind kind;
  const char* singular;  // "network"
  const char* plural;    // "networks"
  const char* label;     // "Network", for messages
  const char* error;     // "NetworkNotFound"
};
const KindInfo& info(Kind k);
const std::vector<KindInfo>& kinds();
// The kind behind a collection name ("security-groups" in tag paths also accepted).
std::optional<Kind> kind_by_plural(std::string_view plural);

struct ListParams {
  std::vector<std::pair<std::string, std::string>> filters;  // repeated keys: any of the values
  std::vector<std::pair<std::string, bool>> sort;            // key, ascending
  std::optional<long> limit;
  std::optional<std::string> marker;
  bool page_reverse = false;
};

struct ListResult {
  std::vector<json::object> items;
  bool has_more = false;  // rows beyond the page in its direction
};

class NetworkService {
 public:
  NetworkService(std::unique_ptr<db::Database> database, NetworkSettings settings);
  ~NetworkService();
  const NetworkSettings& settings() const { return settings_; }

  json::object create(const Caller& c, Kind k, json::object body);
  // Several at once, all or nothing (Neutron's bulk create).
  std::vector<json::object> create_bulk(const Caller& c, Kind k, std::vector<json::object> bodies);
  json::object show(const Caller& c, Kind k, const std::string& id);
  ListResult list(const Caller& c, Kind k, const ListParams& params);
  // The same listing as a JSON array's text appended to out, from rows rendered once and kept
  // until they change; false (out untouched) where it does not apply (pagination, sorting,
  // filters not on columns, kinds whose views read other rows). Listing 10,000 ports is this path.
  bool list_rendered(const Caller& c, Kind k, const ListParams& params, std::string& out);
  json::object update(const Caller& c, Kind k, const std::string& id, json::object body,
                      std::optional<long> if_match = std::nullopt);
  void remove(const Caller& c, Kind k, const std::string& id,
              std::optional<long> if_match = std::nullopt);

  // Routers' interfaces: {"subnet_id"} or {"port_id"}; returns Neutron's interface info.
  json::object add_router_interface(const Caller& c, const std::string& router_id,
                                    const json::object& body);
  json::object remove_router_interface(const Caller& c, const std::string& router_id,
                                       const json::object& body);
  // extraroute-atomic: add or remove routes without replacing the rest.
  json::object change_extra_routes(const Caller& c, const std::string& router_id,
                                   const json::object& body, bool add);

  // Tags on any resource with standard attributes.
  std::vector<std::string> tags(const Caller& c, Kind k, const std::string& id);
  std::vector<std::string> set_tags(const Caller& c, Kind k, const std::string& id,
                                    const json::value& tags);
  void add_tag(const Caller& c, Kind k, const std::string& id, const std::string& tag);
  void remove_tag(const Caller& c, Kind k, const std::string& id, const std::string& tag);
  void remove_tags(const Caller& c, Kind k, const std::string& id);
  bool has_tag(const Caller& c, Kind k, const std::string& id, const std::string& tag);

  // Quotas: the project's limits; with details, also used and reserved.
  json::object quota(const Caller& c, const std::string& project, bool details);
  json::object quota_defaults(const Caller& c, const std::string& project);
  json::array quotas(const Caller& c);  // projects with non-default quotas (admin)
  json::object update_quota(const Caller& c, const std::string& project, const json::object& body);
  void reset_quota(const Caller& c, const std::string& project);

  // Network IP availability (admin).
  json::array ip_availabilities(const Caller& c, const ListParams& params);
  json::object ip_availability(const Caller& c, const std::string& network_id);

  // An agent's report (its registration, and every state it fetches): it is alive.
  void agent_heartbeat(const std::string& host, bool network_node);
  // Agents that reported in: the network agent's roles on each host (Linux bridge and metadata;
  // DHCP and L3 on network nodes), alive while the last report is younger than 75 s (Neutron's
  // agent_down_time).
  json::array agents(const Caller& c, const ListParams& params);
  json::object agent(const Caller& c, const std::string& id);

  // Incremented by every write (the pipeline's cache key).
  std::uint64_t generation() const;

  // The agents' side (Neutron's RPC). The desired dataplane of one host: the VM ports bound
  // there and, on a network node, every DHCP and router port, with their networks, subnets,
  // security groups (and remote groups' member addresses), routers and floating IPs.
  json::object host_state(const std::string& host, bool network_node);
  // An agent's report: VM ports whose devices are plugged (ACTIVE) or gone (DOWN).
  void set_port_status(const std::vector<std::string>& up, const std::vector<std::string>& down);
  // Called after every committed write, outside the transaction (the agents' notifier).
  void set_change_listener(std::function<void()> listener);
  // Called after a committed write that compute must hear of (Nova's os-server-external-events:
  // network-vif-plugged, network-changed, network-vif-deleted), with the events.
  void set_compute_notifier(std::function<void(const json::array& events)> notifier);

  struct Tx;

 private:
  // Runs fn in one write transaction as the caller, then bumps the generation.
  void in_write(const Caller& c, const std::function<void(Tx&)>& fn);
  void changed();           // after a commit: bump the generation, tell the listener
  void ensure_revisions();  // rows from before revisions were columns (rendered.cpp)
  std::unique_ptr<db::Database> db_;
  NetworkSettings settings_;
  struct State;
  std::unique_ptr<State> state_;
  std::mutex listener_mutex_;
  std::function<void()> listener_;
  std::function<void(const json::array&)> compute_notifier_;
};

}  // namespace nubo::network
