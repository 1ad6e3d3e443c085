// The compute service's operations. This first part: flavors (extra specs, access lists) and
// keypairs; servers, placement and the scheduler build on the same store and settings.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bus.hpp"
#include "common/caller.hpp"
#include "common/db/database.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "compute/service/image_client.hpp"
#include "compute/service/network_client.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute {

// Nova's quota resources, in the order its views list them.
inline const std::vector<std::string> kQuotaResources = {"instances",
                                                         "cores",
                                                         "ram",
                                                         "floating_ips",
                                                         "fixed_ips",
                                                         "metadata_items",
                                                         "injected_files",
                                                         "injected_file_content_bytes",
                                                         "injected_file_path_bytes",
                                                         "key_pairs",
                                                         "security_groups",
                                                         "security_group_rules",
                                                         "server_groups",
                                                         "server_group_members"};

struct ComputeSettings {
  std::string public_url = "http://127.0.0.1:8774";  // base of links; the endpoint is <url>/v2.1
  std::string default_availability_zone = "nova";
  std::string internal_zone = "internal";  // where scheduler and conductor services are listed
  int service_down_time = 60;              // seconds without a heartbeat before a service is down
  // [quota] defaults (Nova's), used where neither a project nor the default class sets a limit.
  std::map<std::string, std::int64_t> quota_defaults = {{"instances", 10},
                                                        {"cores", 20},
                                                        {"ram", 51200},
                                                        {"floating_ips", 10},
                                                        {"fixed_ips", -1},
                                                        {"metadata_items", 128},
                                                        {"injected_files", 5},
                                                        {"injected_file_content_bytes", 10240},
                                                        {"injected_file_path_bytes", 255},
                                                        {"key_pairs", 100},
                                                        {"security_groups", 10},
                                                        {"security_group_rules", 20},
                                                        {"server_groups", 10},
                                                        {"server_group_members", 10}};
  // [serial_console]: consoles offered through the serial proxy at this base URL.
  bool serial_console_enabled = true;
  std::string serial_console_base_url = "ws://127.0.0.1:6083/";
  int console_token_ttl = 600;  // [consoleauth] token_ttl, seconds
  // How long a build waits for the network service's network-vif-plugged events once its VM
  // runs before the server goes to ERROR (Nova's vif_plugging_timeout, with
  // vif_plugging_is_fatal); 0: the build does not wait.
  int vif_plugging_timeout = 300;
};

struct QuotaEntry {
  std::int64_t limit = 0, in_use = 0;
};

// Flavors as rows (the store's columns: id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap,
// rxtx_factor, is_public, disabled, description) with `extra_specs` (an object) added.
struct FlavorQuery {
  std::optional<std::int64_t> min_ram, min_disk;
  std::optional<bool> is_public;  // nullopt: admins see all, others public + their own access
  std::string sort_key = "flavorid", sort_dir = "asc", marker;
  std::optional<long> limit;
};

struct KeypairRequest {
  std::string name, type = "ssh", user_id;  // user_id: admins may create for another user
  std::optional<std::string> public_key;    // absent: generate one
};

// A server create request, parsed and schema-checked by the API.
struct ServerRequest {
  std::string name, flavor_ref, image_ref, key_name, availability_zone, user_data, admin_pass;
  std::string access_ip_v4, access_ip_v6, disk_config = "MANUAL", hostname;
  std::optional<std::string> description;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> tags, security_groups;
  json::value networks;  // null (not given), "auto", "none", or the requested list
  json::object scheduler_hints;
  bool config_drive = false;
  long min_count = 1, max_count = 1;
  json::array block_devices;  // block_device_mapping_v2
};

// A server listing: filters already checked against the caller's rights by the API.
struct ServerQuery {
  std::map<std::string, std::string> filters;      // exact-match columns and the special filters
  std::vector<std::pair<std::string, bool>> sort;  // key, descending
  std::string marker;
  std::optional<long> limit;
  bool all_projects = false;
};

// Servers are returned as instance rows with `metadata` (object), `tags` (array), `fault`
// (object, only in ERROR) and `security_groups` added.
class ComputeService {
 public:
  ComputeService(std::unique_ptr<db::Database> database, ComputeSettings settings,
                 std::shared_ptr<Clock> clock = std::make_shared<Clock>());
  ~ComputeService();
  const ComputeSettings& settings() const { return settings_; }
  db::Database& database() { return *db_; }

  // The default flavors (m1.tiny ... m1.xlarge, ids 1-5, as devstack creates) when none exist.
  void ensure_default_flavors();

  std::vector<json::object> list_flavors(const Caller& c, const FlavorQuery& q);
  json::object show_flavor(const Caller& c, const std::string& id);
  json::object create_flavor(const Caller& c, const json::object& body);
  json::object update_flavor(const Caller& c, const std::string& id, const json::object& body);
  void delete_flavor(const Caller& c, const std::string& id);

  json::object extra_specs(const Caller& c, const std::string& flavor_id);
  json::object set_extra_specs(const Caller& c, const std::string& flavor_id,
                               const json::object& specs);
  void delete_extra_spec(const Caller& c, const std::string& flavor_id, const std::string& key);

  std::vector<std::string> flavor_access(const Caller& c, const std::string& flavor_id);
  std::vector<std::string> add_flavor_access(const Caller& c, const std::string& flavor_id,
                                             const std::string& project);
  std::vector<std::string> remove_flavor_access(const Caller& c, const std::string& flavor_id,
                                                const std::string& project);

  // Keypairs: rows with `private_key` added when one was generated.
  json::object create_keypair(const Caller& c, const KeypairRequest& r, bool extended_names);
  std::vector<json::object> list_keypairs(const Caller& c, const std::string& user_id,
                                          const std::string& marker, std::optional<long> limit);
  json::object show_keypair(const Caller& c, const std::string& user_id, const std::string& name);
  void delete_keypair(const Caller& c, const std::string& user_id, const std::string& name);

  // Server groups: rows with `members` (an array of server ids) added. `rules` may hold
  // max_server_per_host (anti-affinity only).
  json::object create_server_group(const Caller& c, const std::string& name,
                                   const std::string& policy, const json::object& rules);
  std::vector<json::object> list_server_groups(const Caller& c, bool all_projects, long offset,
                                               std::optional<long> limit);
  json::object show_server_group(const Caller& c, const std::string& id);
  void delete_server_group(const Caller& c, const std::string& id);

  // Hosts: services (nova-compute with the hypervisor its driver reports; nova-scheduler and
  // nova-conductor) registered at start and kept up by heartbeats; state is "up" while the last
  // heartbeat is younger than service_down_time.
  void register_service(const std::string& host, const std::string& binary);
  void register_compute_host(const HostResources& resources);
  void heartbeat();
  std::vector<json::object> list_services(const Caller& c, const std::string& host,
                                          const std::string& binary);
  // Sets disabled (with a reason) and forced_down on the service with this uuid or number.
  json::object update_service(const Caller& c, const std::string& id, std::optional<bool> disabled,
                              std::optional<std::string> reason, std::optional<bool> forced_down);
  // The service named by host and binary (the pre-2.53 calls); 404 when none.
  std::string service_id(const std::string& host, const std::string& binary);
  void delete_service(const Caller& c, const std::string& id);
  // Hypervisors as rows with `service` (its row) and usage (`vcpus_used`, ...) added.
  std::vector<json::object> list_hypervisors(const Caller& c, const std::string& pattern);
  json::object show_hypervisor(const Caller& c, const std::string& id);
  bool service_up(const json::object& service) const;
  // Whether a nova-compute service is registered on this host.
  static bool is_compute_host(soci::session& s, const std::string& host);
  // Availability zones: name → hosts → binary → service row (detail for admins).
  std::map<std::string, std::map<std::string, std::map<std::string, json::object>>>
  availability_zones(const Caller& c, bool detail);

  // Aggregates: rows with `hosts` (array), `metadata` (object) and `availability_zone` added.
  // A host's availability zone is its aggregates' `availability_zone` metadata, else the default.
  std::vector<json::object> list_aggregates(const Caller& c);
  json::object show_aggregate(const Caller& c, const std::string& id);
  json::object create_aggregate(const Caller& c, const std::string& name,
                                const std::optional<std::string>& zone);
  json::object update_aggregate(const Caller& c, const std::string& id,
                                const std::optional<std::string>& name,
                                const std::optional<std::optional<std::string>>& zone);
  void delete_aggregate(const Caller& c, const std::string& id);
  json::object aggregate_add_host(const Caller& c, const std::string& id, const std::string& host);
  json::object aggregate_remove_host(const Caller& c, const std::string& id,
                                     const std::string& host);
  // Sets keys (a null value removes one).
  json::object aggregate_set_metadata(const Caller& c, const std::string& id,
                                      const json::object& metadata);

  // Every host's zone from aggregate metadata (hosts absent: the default zone).
  std::map<std::string, std::string> host_zones(soci::session& s);
  std::string now() const;

  // Servers. The bus carries builds and actions to the conductor and agents; images are looked
  // up through the image client.
  void set_bus(std::shared_ptr<Bus> bus) { bus_ = std::move(bus); }
  void set_image_client(std::shared_ptr<ImageClient> images) { images_ = std::move(images); }
  const std::shared_ptr<ImageClient>& images() const { return images_; }
  // Networks: the network service's client (none: servers get no NICs from it).
  void set_network_client(std::shared_ptr<NetworkClient> n) { network_ = std::move(n); }
  const std::shared_ptr<NetworkClient>& network() const { return network_; }
  // What a create asks of the network service, checked as the caller (networks and ports they
  // may use, security groups by name or id): the instance's requested networks ([{network_id,
  // port_id?, fixed_ip?, tag?}], "auto" for a network made at build, null without a network
  // service) and fills the security groups' ids (empty: the project's default).
  json::value resolve_networks(const Caller& c, const ServerRequest& r, long count,
                               json::array& security_group_ids);
  // The build's ports on `host`: made (or found again, or the user's bound) and recorded as the
  // instance's network_info, which is returned.
  json::array allocate_network(const json::object& row, const std::string& host);
  // The network info cache read again from the network service (network-changed).
  json::array refresh_network_info(const std::string& id);
  // A deleted server's ports: those made for it removed, the user's unbound.
  void deallocate_network(const json::object& row);
  // Whether every NIC of the instance row reported plugged.
  static bool vifs_plugged(const json::object& row);
  // os-server-external-events (from the network service): each event with its `code` (200, 404
  // no such server, 422 not on a host yet); the conductor acts on them.
  json::array external_events(const json::array& events);
  // os-interface: the server's ports (as Neutron shows them); a NIC hot-plugged on a port made on
  // `net_id` (or the project's one network), or on the caller's `port_id`, returning the port;
  // and one taken out (its port removed, or unbound when the caller brought it).
  std::vector<json::object> interfaces(const Caller& c, const std::string& id);
  json::object attach_interface(const Caller& c, const std::string& id, const std::string& net_id,
                                const std::string& port_id, const std::string& fixed_ip,
                                const json::value& tag);
  void detach_interface(const Caller& c, const std::string& id, const std::string& port_id);
  // addSecurityGroup / removeSecurityGroup: the group (a name or id in the caller's project) set
  // on or taken off every port of the server; the network agents apply it at once.
  void change_security_group(const Caller& c, const std::string& id, const std::string& group,
                             bool add);
  std::vector<json::object> create_servers(const Caller& c, const ServerRequest& r);
  std::vector<json::object> list_servers(const Caller& c, const ServerQuery& q);
  json::object show_server(const Caller& c, const std::string& id);
  // The same on an I/O thread: nullopt when the database cannot answer without waiting.
  std::optional<json::object> show_server_now(const Caller& c, const std::string& id);
  // Sets name, description, access IPs, hostname (columns or extra) on the server.
  json::object update_server(const Caller& c, const std::string& id, const json::object& fields);
  void delete_server(const Caller& c, const std::string& id, bool force);
  // Metadata: `replace` drops keys not given (PUT), else merges (POST).
  std::map<std::string, std::string> server_metadata(const Caller& c, const std::string& id);
  std::map<std::string, std::string> set_server_metadata(
      const Caller& c, const std::string& id, const std::map<std::string, std::string>& items,
      bool replace);
  void delete_server_metadata(const Caller& c, const std::string& id, const std::string& key);
  std::vector<std::string> server_tags(const Caller& c, const std::string& id);
  std::vector<std::string> set_server_tags(const Caller& c, const std::string& id,
                                           const std::vector<std::string>& tags);
  // Returns whether the tag was new.
  bool add_server_tag(const Caller& c, const std::string& id, const std::string& tag);
  void delete_server_tag(const Caller& c, const std::string& id, const std::string& tag);
  // A server action (os-stop, reboot, ...): checks policy, lock and state, records the instance
  // action, moves the task state and hands the work to the agent or conductor. Returns the
  // action's response body (adminPass for rebuild/rescue), empty for most.
  json::object server_action(const Caller& c, const std::string& id, const std::string& action,
                             const json::value& args);
  // createImage / createBackup: the image is made (queued) as the caller, then the server's
  // disk goes into it; `backup` carries backup_type and rotation. Returns the image id.
  std::string snapshot_server(const Caller& c, const std::string& id, const std::string& name,
                              const std::map<std::string, std::string>& metadata,
                              const std::optional<std::pair<std::string, std::int64_t>>& backup);
  // Shelving keeps the server's disk as an image (<name>-shelved) that unshelve boots and removes.
  void shelve_server(const Caller& c, const std::string& id);
  std::vector<json::object> instance_actions(const Caller& c, const std::string& id);
  // The action with its `events` (array) added.
  json::object instance_action(const Caller& c, const std::string& id,
                               const std::string& request_id);
  std::string console_output(const Caller& c, const std::string& id, std::optional<long> length);

  // Simple tenant usage: per project over [start, end), servers' hours and what they held
  // (vcpus, memory_mb, local_gb per hour); `project` empty: every project (admins). Rows are
  // {tenant_id, total_*, server_usages: [...]}.
  std::vector<json::object> tenant_usage(const Caller& c, const std::string& project,
                                         TimePoint start, TimePoint end);

  // os-migrations: newest first; filters instance_uuid, status, host (source or destination),
  // migration_type, changes-since/changes-before, user_id, project_id; `marker` a migration uuid.
  std::vector<json::object> list_migrations(const Caller& c,
                                            const std::map<std::string, std::string>& filters,
                                            const std::string& marker, std::optional<long> limit);

  // Quotas (Nova's database driver): effective limits for a project or one of its users (user
  // limit, else project limit, else the default class, else the configured default), with usage.
  std::map<std::string, QuotaEntry> quotas(const Caller& c, const std::string& project,
                                           const std::string& user);
  std::map<std::string, std::int64_t> default_quotas(const Caller& c, const std::string& project);
  // Sets limits; without `force` a limit below current usage is refused (400).
  void update_quotas(const Caller& c, const std::string& project, const std::string& user,
                     const std::map<std::string, std::int64_t>& limits, bool force);
  void delete_quotas(const Caller& c, const std::string& project, const std::string& user);
  std::map<std::string, std::int64_t> quota_class(const Caller& c, const std::string& name);
  void update_quota_class(const Caller& c, const std::string& name,
                          const std::map<std::string, std::int64_t>& limits);

  // The metadata service's view of a live server (no caller: the proxy's signature vouched for
  // the instance): its spec and the password its guest posted; nullopt when there is no such
  // server.
  struct MetadataView {
    InstanceSpec instance;
    std::string password;
  };
  std::optional<MetadataView> metadata_view(const std::string& id);
  // A guest posts its (encrypted) password once: Conflict when one is already set.
  void set_metadata_password(const std::string& id, const std::string& password);
  // os-server-password: the password the guest posted ("" when none), and its removal.
  std::string server_password(const Caller& c, const std::string& id);
  void clear_server_password(const Caller& c, const std::string& id);

  // Remote consoles: a token for the server's console (protocol serial, vnc...; type serial,
  // novnc...) and the URL that carries it, as {"protocol", "type", "url"}.
  json::object create_remote_console(const Caller& c, const std::string& id,
                                     const std::string& protocol, const std::string& type);
  // os-console-auth-tokens: what a valid token leads to (instance_uuid, host, port,
  // internal_access_path); before microversion 2.31 (`any_type` false) only RDP's were, and
  // RDP is gone: 400.
  json::object console_auth_token(const Caller& c, const std::string& token, bool any_type);
  // The console proxy's question: where a valid, unexpired token leads, with the server's id.
  struct ConsoleTarget {
    std::string instance_uuid, console_type, host, internal_access_path;
    std::int64_t port = 0;
  };
  std::optional<ConsoleTarget> console_target(const std::string& token);

  // Moves on whenever what the scheduler sees of hosts changes (services, nodes, aggregates and
  // their metadata), so the conductor can keep its view of hosts between decisions.
  std::uint64_t hosts_generation() const { return hosts_generation_.load(); }

 private:
  // A write that changes what the scheduler sees of hosts.
  void write_hosts(const std::function<void(soci::session&)>& fn) {
    db_->write(fn);
    ++hosts_generation_;
  }
  json::object flavor_row(soci::session& s, const Caller& c, const std::string& id);
  std::map<std::string, std::int64_t> class_limits(soci::session& s, const std::string& name);
  json::object aggregate_row(soci::session& s, const std::string& id);
  // The prelude of every aggregate change: policy rule, the aggregate (404), the change, the
  // result.
  json::object change_aggregate(
      const Caller& c, const char* rule, const std::string& id,
      const std::function<void(soci::session&, const json::object&, const std::string&)>& change);
  // Limits with usage; `count_usage` false gives the limits alone (a boot counts only what it
  // takes, with count_servers, inside the writer's transaction).
  std::map<std::string, QuotaEntry> effective_quotas(soci::session& s, const std::string& project,
                                                     const std::string& user,
                                                     bool count_usage = true);
  // Fills the usage of instances, cores and RAM (the project's, or the user's in it).
  void count_servers(soci::session& s, const std::string& project, const std::string& user,
                     std::map<std::string, QuotaEntry>& quotas);
  // The server the caller may see under `rule` (404 as Nova words it otherwise).
  json::object server_row(soci::session& s, const Caller& c, const std::string& id,
                          const std::string& rule);
  // Adds metadata, tags, fault and security groups to instance rows (one query each).
  void decorate_servers(soci::session& s, std::vector<json::object>& rows);
  void record_action(soci::session& s, const Caller& c, const std::string& instance_id,
                     const std::string& action);
  void cast_to_host(const json::object& server, const std::string& method, json::object body);
  // A question to the server's host (10 s): 409 when the server is not built there (yet), 503
  // starting with `unavailable` when the host does not answer.
  json::value ask_host(const json::object& server, const std::string& method,
                       const json::object& body, const std::string& unavailable,
                       std::chrono::seconds timeout = std::chrono::seconds(10));
  void cast_to_conductor(const std::string& method, json::object body);
  std::string image_action(const Caller& c, const std::string& id, const std::string& action,
                           std::string name, const std::map<std::string, std::string>& metadata,
                           const std::optional<std::pair<std::string, std::int64_t>>& backup);

  std::unique_ptr<db::Database> db_;
  ComputeSettings settings_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<Bus> bus_;
  std::shared_ptr<ImageClient> images_;
  std::shared_ptr<NetworkClient> network_;
  // The server for an interface call under `rule`; with `record` (the action's name) also
  // checked to be in a state that takes one (and not locked).
  json::object interface_server(const Caller& c, const std::string& id, const std::string& rule,
                                const char* record);
  // A port back from a server: unbound when the user brought it, else removed.
  void give_back_port(const std::string& port_id, bool users);
  // Get-me-a-network: the project's auto-allocated network, made on first use.
  std::string auto_allocated_network(const std::string& project);
  // network_info from ports; `origin` tells for each whether the user brought it, and its tag.
  json::array network_info_of(
      const std::vector<json::object>& ports,
      const std::function<std::pair<bool, json::value>(const json::object&)>& origin);
  std::atomic<std::uint64_t> hosts_generation_{0};
};

// The server's name on its hypervisor, as Nova's instance_name_template: instance-0000002a.
std::string instance_name(const json::object& row);
// What an instance row holds, for the conductor and agents: the driver's spec.
InstanceSpec instance_spec(const json::object& row,
                           const std::map<std::string, std::string>& metadata);

// Nova's wording for a policy refusal.
std::string nova_denied(const std::string& rule);
// Nova's boolean parameters (bodies and query strings): JSON booleans or their usual spellings
// ("True", "yes", "0", ...) in any case; nullopt for anything else.
std::optional<bool> nova_boolean(const json::value& v);

}  // namespace nubo::compute
