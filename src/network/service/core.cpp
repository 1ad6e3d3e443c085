// The generic half of the network service: row access with standard attributes, visibility,
// attribute validation, the list engine (filters, sorting, pagination), tags and quotas.
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <random>
#include <thread>

#include "common/ids.hpp"
#include "network/service/internal.hpp"
#include "network/store/schema.hpp"

namespace nubo::network {

namespace {
const std::vector<KindInfo> kKinds = {
    {Kind::network, "network", "networks", "Network", "NetworkNotFound"},
    {Kind::subnet, "subnet", "subnets", "Subnet", "SubnetNotFound"},
    {Kind::port, "port", "ports", "Port", "PortNotFound"},
    {Kind::security_group, "security_group", "security_groups", "Security group",
     "SecurityGroupNotFound"},
    {Kind::security_group_rule, "security_group_rule", "security_group_rules",
     "Security group rule", "SecurityGroupRuleNotFound"},
    {Kind::router, "router", "routers", "Router", "RouterNotFound"},
    {Kind::floatingip, "floatingip", "floatingips", "Floating IP", "FloatingIPNotFound"},
    {Kind::subnetpool, "subnetpool", "subnetpools", "Subnet pool", "SubnetPoolNotFound"},
    {Kind::rbac_policy, "rbac_policy", "rbac_policies", "RBAC policy", "RbacPolicyNotFound"},
    {Kind::address_scope, "address_scope", "address_scopes", "Address scope",
     "AddressScopeNotFound"},
};
}  // namespace

const KindInfo& info(Kind k) { return kKinds[static_cast<size_t>(k)]; }
const std::vector<KindInfo>& kinds() { return kKinds; }

std::optional<Kind> kind_by_plural(std::string_view plural) {
  std::string p(plural);
  std::replace(p.begin(), p.end(), '-', '_');
  for (auto& k : kKinds)
    if (p == k.plural) return k.kind;
  return std::nullopt;
}

namespace {
std::string now_text() { return iso8601(std::chrono::system_clock::now(), false, true); }
}  // namespace

NetworkService::NetworkService(std::unique_ptr<db::Database> database, NetworkSettings settings)
    : db_(std::move(database)), settings_(std::move(settings)), state_(std::make_unique<State>()) {
  db_->migrate("network", store::migrations());
  ensure_revisions();
}
NetworkService::~NetworkService() = default;

std::uint64_t NetworkService::generation() const { return state_->generation.load(); }

void NetworkService::in_write(const Caller& c, const std::function<void(Tx&)>& fn) {
  bool admin = c.admin();
  json::array events;
  // Another process on the same PostgreSQL database may take the address (or MAC) this write
  // chose between its read and its insert: the write runs again and sees it taken, as Neutron
  // retries on a duplicate entry (ten times, with a growing random pause).
  constexpr int kAttempts = 10;
  for (int attempt = 1;; ++attempt) {
    try {
      db_->write([&](soci::session& s) {
        events.clear();
        Tx tx{s, c, settings_, admin, now_text(), &state_->ip_hints};
        fn(tx);
        for (auto& e : tx.compute_events) events.push_back(std::move(e));
      });
      break;
    } catch (const std::exception& e) {
      if (attempt == kAttempts || !db::lost_race(e)) throw;
      spdlog::info("network: write lost a race with another process (attempt {}), again: {}",
                   attempt, e.what());
      thread_local std::minstd_rand jitter(std::random_device{}());
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter() % (5 * attempt)));
    }
  }
  changed();
  if (events.empty()) return;
  std::function<void(const json::array&)> notifier;
  {
    std::lock_guard lock(listener_mutex_);
    notifier = compute_notifier_;
  }
  if (notifier) try {
      notifier(events);
    } catch (const std::exception& e) {
      spdlog::warn("network: compute was not told of {} events: {}", events.size(), e.what());
    }
}

void NetworkService::set_compute_notifier(std::function<void(const json::array&)> notifier) {
  std::lock_guard lock(listener_mutex_);
  compute_notifier_ = std::move(notifier);
}

namespace detail {

void notify_compute(Tx& tx, const json::object& port, const char* name) {
  auto device = string_or(port, "device_id");
  if (device.empty() || string_or(port, "device_owner").rfind("compute:", 0) != 0) return;
  auto tag = string_or(port, "id");
  for (auto& e : tx.compute_events)  // once per commit
    if (string_or(e, "name") == name && string_or(e, "tag") == tag) return;
  tx.compute_events.push_back(
      json::object{{"name", name}, {"server_uuid", device}, {"tag", tag}, {"status", "completed"}});
}

void port_changed(Tx& tx, const std::string& port_id) {
  if (port_id.empty()) return;
  if (auto port = load(tx, Kind::port, port_id)) notify_compute(tx, *port, "network-changed");
}

ApiError not_found(Kind k, const std::string& id) {
  auto& i = info(k);
  std::string message;
  switch (k) {
    case Kind::security_group:
    case Kind::security_group_rule:
      message = std::string(i.label) + " " + id + " does not exist";
      break;
    case Kind::router:
    case Kind::floatingip:
      message = std::string(i.label) + " " + id + " could not be found";
      break;
    case Kind::rbac_policy:
      message = "RBAC policy with type network and id " + id + " not found";
      break;
    default:
      message = std::string(i.label) + " " + id + " could not be found.";
  }
  return ApiError(404, message, i.error);
}
ApiError invalid_input(const std::string& message) {
  return ApiError(400, "Invalid input for operation: " + message + ".", "InvalidInput");
}
ApiError bad_attribute(const std::string& attr, const std::string& reason) {
  return ApiError(400, "Invalid input for " + attr + ". Reason: " + reason + ".", "HTTPBadRequest");
}
ApiError conflict(const std::string& type, const std::string& message) {
  return ApiError(409, message, type);
}
ApiError bad_request(const std::string& type, const std::string& message) {
  return ApiError(400, message, type);
}
ApiError policy_denied(const std::string& rule) {
  return ApiError(403, "(rule:" + rule + ") is disallowed by policy", "PolicyNotAuthorized");
}
ApiError network_in_use(const std::string& network_id) {
  return ApiError(409,
                  "Unable to complete operation on network " + network_id +
                      ". There are one or more ports still in use on the network.",
                  "NetworkInUse");
}
const json::value& required(const json::object& body, const std::string& name) {
  auto* v = find(body, name);
  if (!v)
    throw bad_request("HTTPBadRequest",
                      "Failed to parse request. Required attribute '" + name + "' not specified");
  return *v;
}

const db::Table& table(Kind k) {
  switch (k) {
    case Kind::network:
      return store::network;
    case Kind::subnet:
      return store::subnet;
    case Kind::port:
      return store::port;
    case Kind::security_group:
      return store::security_group;
    case Kind::security_group_rule:
      return store::security_group_rule;
    case Kind::router:
      return store::router;
    case Kind::floatingip:
      return store::floatingip;
    case Kind::subnetpool:
      return store::subnetpool;
    case Kind::rbac_policy:
      return store::rbac_policy;
    case Kind::address_scope:
      return store::address_scope;
  }
  throw std::logic_error("unknown kind");
}

std::optional<json::object> load(Tx& tx, Kind k, const std::string& id) {
  return db::get(tx.s, table(k), id);
}

std::vector<json::object> load_where(Tx& tx, Kind k, const db::Query& q) {
  return db::select(tx.s, table(k), q);
}

bool owns(const Tx& tx, const json::object& row) {
  auto* p = find(row, "project_id");
  return p && p->is_string() && p->as_string() == tx.project();
}

bool network_shared_with(Tx& tx, const json::object& network, const std::string& project,
                         const std::string& action) {
  if (action == "access_as_shared" && bool_or(network, "shared", false)) return true;
  auto id = string_or(network, "id");
  auto rows = db::query_strings(
      tx.s,
      "SELECT target_tenant FROM rbac_policy WHERE object_type = 'network' AND object_id = :p0 "
      "AND action = :p1",
      {id, action});
  for (auto& r : rows)
    if (r[0] && (*r[0] == "*" || *r[0] == project)) return true;
  return false;
}

namespace {
// A network read once per operation (a listing asks about the same few networks for every row).
const json::object* network_of(Tx& tx, const std::string& id) {
  auto it = tx.networks.find(id);
  if (it == tx.networks.end()) it = tx.networks.emplace(id, load(tx, Kind::network, id)).first;
  return it->second ? &*it->second : nullptr;
}
}  // namespace

bool visible(Tx& tx, Kind k, const json::object& row) {
  if (tx.admin || owns(tx, row)) return true;
  switch (k) {
    case Kind::network:
      return bool_or(row, "router:external", false) || network_shared_with(tx, row, tx.project()) ||
             network_shared_with(tx, row, tx.project(), "access_as_external");
    case Kind::subnet: {
      // Subnets of shared networks are visible; those of external networks are not.
      auto* network = network_of(tx, string_or(row, "network_id"));
      return network && network_shared_with(tx, *network, tx.project());
    }
    case Kind::port: {
      // The network's owner sees every port on it.
      auto* network = network_of(tx, string_or(row, "network_id"));
      return network && owns(tx, *network);
    }
    case Kind::security_group_rule: {
      auto group = load(tx, Kind::security_group, string_or(row, "security_group_id"));
      return group && owns(tx, *group);
    }
    case Kind::subnetpool:
    case Kind::address_scope:
      return bool_or(row, "shared", false);
    case Kind::rbac_policy:
      return string_or(row, "target_tenant") == tx.project();
    default:
      return false;
  }
}

json::object fetch(Tx& tx, Kind k, const std::string& id) {
  auto row = load(tx, k, id);
  if (!row || !visible(tx, k, *row)) throw not_found(k, id);
  return std::move(*row);
}

void insert(Tx& tx, Kind k, json::object& row) {
  if (!find(row, "id")) row["id"] = uuid4();
  if (!find(row, "project_id")) row["project_id"] = tx.project();
  row.erase("tenant_id");
  if (k != Kind::rbac_policy) {
    if (!find(row, "tags")) row["tags"] = json::array{};
    if (!find(row, "description")) row["description"] = "";
  }
  row["created_at"] = tx.now;
  row["updated_at"] = tx.now;
  row["revision_number"] = 0;
  db::insert(tx.s, table(k), row);
}

void save(Tx& tx, Kind k, json::object& row) {
  row["revision_number"] = int_or(row, "revision_number") + 1;
  row["updated_at"] = tx.now;
  row.erase("tenant_id");
  db::replace(tx.s, table(k), row);
}

void touch(Tx& tx, Kind k, const std::string& id) {
  if (auto row = load(tx, k, id)) save(tx, k, *row);
}

void erase(Tx& tx, Kind k, const std::string& id) { db::remove_id(tx.s, table(k), id); }

namespace {
const std::vector<Attr> kStandard = {{"id", false, false},
                                     {"tenant_id", true, false},
                                     {"project_id", true, false},
                                     {"name"},
                                     {"description"},
                                     {"tags", false, false},
                                     {"created_at", false, false},
                                     {"updated_at", false, false},
                                     {"revision_number", false, false}};

std::vector<Attr> with_standard(std::vector<Attr> own) {
  own.insert(own.end(), kStandard.begin(), kStandard.end());
  return own;
}
}  // namespace

const std::vector<Attr>& attributes(Kind k) {
  static const std::vector<Attr> network =
      with_standard({{"admin_state_up"},
                     {"shared"},
                     {"router:external"},
                     {"mtu"},
                     {"port_security_enabled"},
                     {"provider:network_type", true, false},
                     {"provider:physical_network", true, false},
                     {"provider:segmentation_id", true, false},
                     {"availability_zone_hints", true, false},
                     {"status", false, false},
                     {"subnets", false, false},
                     {"availability_zones", false, false},
                     {"ipv4_address_scope", false, false},
                     {"ipv6_address_scope", false, false},
                     {"l2_adjacency", false, false}});
  static const std::vector<Attr> subnet = with_standard({
      {"network_id", true, false},
      {"ip_version", true, false},
      {"cidr", true, false},
      {"prefixlen", true, false},
      {"subnetpool_id", true, false},
      {"gateway_ip"},
      {"allocation_pools"},
      {"dns_nameservers"},
      {"host_routes"},
      {"enable_dhcp"},
      {"ipv6_ra_mode", true, false},
      {"ipv6_address_mode", true, false},
      {"service_types"},
  });
  static const std::vector<Attr> port = with_standard({
      {"network_id", true, false},
      {"admin_state_up"},
      {"mac_address"},
      {"fixed_ips"},
      {"device_id"},
      {"device_owner"},
      {"security_groups"},
      {"allowed_address_pairs"},
      {"extra_dhcp_opts"},
      {"port_security_enabled"},
      {"binding:host_id"},
      {"binding:profile"},
      {"binding:vnic_type"},
      {"binding:vif_type", false, false},
      {"binding:vif_details", false, false},
      {"status", false, false},
  });
  static const std::vector<Attr> group =
      with_standard({{"stateful"}, {"security_group_rules", false, false}});
  static const std::vector<Attr> rule = with_standard({
      {"security_group_id", true, false},
      {"direction", true, false},
      {"ethertype", true, false},
      {"protocol", true, false},
      {"port_range_min", true, false},
      {"port_range_max", true, false},
      {"remote_ip_prefix", true, false},
      {"remote_group_id", true, false},
      {"normalized_cidr", false, false},
  });
  static const std::vector<Attr> router = with_standard({{"admin_state_up"},
                                                         {"external_gateway_info"},
                                                         {"routes"},
                                                         {"availability_zone_hints", true, false},
                                                         {"status", false, false},
                                                         {"availability_zones", false, false}});
  static const std::vector<Attr> floatingip = with_standard({
      {"floating_network_id", true, false},
      {"floating_ip_address", true, false},
      {"subnet_id", true, false},
      {"port_id"},
      {"fixed_ip_address"},
      {"router_id", false, false},
      {"status", false, false},
  });
  static const std::vector<Attr> subnetpool = with_standard({{"prefixes"},
                                                             {"default_prefixlen"},
                                                             {"min_prefixlen"},
                                                             {"max_prefixlen"},
                                                             {"shared", true, false},
                                                             {"is_default"},
                                                             {"default_quota"},
                                                             {"address_scope_id"},
                                                             {"ip_version", false, false}});
  static const std::vector<Attr> address_scope =
      with_standard({{"shared"}, {"ip_version", true, false}});
  static const std::vector<Attr> rbac = {{"id", false, false},        {"tenant_id", true, false},
                                         {"project_id", true, false}, {"object_type", true, false},
                                         {"object_id", true, false},  {"action", true, false},
                                         {"target_tenant"},           {"target_project"}};
  switch (k) {
    case Kind::network:
      return network;
    case Kind::subnet:
      return subnet;
    case Kind::port:
      return port;
    case Kind::security_group:
      return group;
    case Kind::security_group_rule:
      return rule;
    case Kind::router:
      return router;
    case Kind::floatingip:
      return floatingip;
    case Kind::subnetpool:
      return subnetpool;
    case Kind::address_scope:
      return address_scope;
    case Kind::rbac_policy:
      return rbac;
  }
  return network;
}

void check_attributes(Kind k, const json::object& body, bool post) {
  auto& attrs = attributes(k);
  std::vector<std::string> unknown;
  for (auto& kv : body) {
    auto it =
        std::find_if(attrs.begin(), attrs.end(), [&](const Attr& a) { return kv.key() == a.name; });
    if (it == attrs.end()) {
      unknown.emplace_back(kv.key());
      continue;
    }
    if (post && !it->post)
      throw bad_request("HTTPBadRequest",
                        "Attribute '" + std::string(kv.key()) + "' not allowed in POST");
    if (!post && !it->put)
      throw bad_request("HTTPBadRequest",
                        "Cannot update read-only attribute " + std::string(kv.key()));
  }
  if (!unknown.empty()) {
    std::string list;
    for (auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    throw bad_request("HTTPBadRequest", "Unrecognized attribute(s) '" + list + "'");
  }
}

std::string owner_from_body(Tx& tx, json::object& body) {
  auto project = get_string(body, "project_id");
  auto tenant = get_string(body, "tenant_id");
  if (project && tenant && *project != *tenant)
    throw bad_request("HTTPBadRequest", "'project_id' and 'tenant_id' do not match");
  auto owner = project ? *project : tenant ? *tenant : tx.project();
  if (owner != tx.project() && !tx.admin)
    throw bad_request("HTTPBadRequest",
                      "Specifying 'project_id' or 'tenant_id' other than the authenticated "
                      "project in request requires admin privileges");
  // The service's own ports (router gateways, floating IPs) belong to no project.
  if (owner.empty() && tx.admin && (project || tenant)) {
    body.erase("tenant_id");
    body.erase("project_id");
    return owner;
  }
  if (owner.empty())
    throw bad_request("HTTPBadRequest",
                      "Running without keystone AuthN requires that tenant_id is specified");
  body.erase("tenant_id");
  body.erase("project_id");
  return owner;
}

std::string to_string_attr(const json::value& v, const std::string& name, size_t max) {
  if (!v.is_string()) throw bad_attribute(name, "'" + to_string(v) + "' is not a valid string");
  std::string s(v.as_string());
  if (s.size() > max)
    throw bad_attribute(name, "'" + s + "' exceeds maximum length of " + std::to_string(max));
  return s;
}

bool to_bool(const json::value& v, const std::string& name) {
  if (v.is_bool()) return v.as_bool();
  if (v.is_int64() && (v.as_int64() == 0 || v.as_int64() == 1)) return v.as_int64() == 1;
  if (v.is_string()) {
    std::string s(v.as_string());
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0") return false;
  }
  throw bad_attribute(name, "'" + (v.is_string() ? std::string(v.as_string()) : to_string(v)) +
                                "' cannot be converted to boolean");
}

long to_int(const json::value& v, const std::string& name) {
  if (v.is_int64()) return static_cast<long>(v.as_int64());
  if (v.is_uint64()) return static_cast<long>(v.as_uint64());
  if (v.is_string()) {
    std::string s(v.as_string());
    try {
      size_t used = 0;
      long n = std::stol(s, &used);
      if (used == s.size()) return n;
    } catch (...) {
    }
  }
  throw bad_attribute(name, "'" + (v.is_string() ? std::string(v.as_string()) : to_string(v)) +
                                "' is not an integer");
}

std::string to_uuid(const json::value& v, const std::string& name) {
  if (!v.is_string() || !is_uuid(v.as_string()))
    throw bad_attribute(name, "'" + (v.is_string() ? std::string(v.as_string()) : to_string(v)) +
                                  "' is not a valid UUID");
  return std::string(v.as_string());
}

ipam::Address to_ip(const json::value& v, const std::string& name) {
  std::optional<ipam::Address> a;
  if (v.is_string()) a = ipam::parse_address(v.as_string());
  if (!a)
    throw bad_attribute(name, "'" + (v.is_string() ? std::string(v.as_string()) : to_string(v)) +
                                  "' is not a valid IP address");
  return *a;
}

void take_common(json::object& row, const json::object& body, bool has_name) {
  if (has_name)
    if (auto* v = find(body, "name")) row["name"] = to_string_attr(*v, "name");
  if (auto* v = find(body, "description")) row["description"] = to_string_attr(*v, "description");
}

// ---- views ----

std::vector<json::object> views(Tx& tx, Kind k, std::vector<json::object> rows) {
  std::map<std::string, json::array> children;
  if (k == Kind::network) {
    for (auto& r :
         db::query_strings(tx.s, "SELECT network_id, id FROM subnet ORDER BY created_at, id", {}))
      children[*r[0]].push_back(json::value(*r[1]));
  } else if (k == Kind::security_group) {
    std::vector<std::string> ids;
    for (auto& r : rows) ids.push_back(string_or(r, "id"));
    auto rules = db::select_in(tx.s, store::security_group_rule, {}, "security_group_id", ids);
    std::sort(rules.begin(), rules.end(), [](auto& a, auto& b) {
      return std::pair(string_or(a, "created_at"), string_or(a, "id")) <
             std::pair(string_or(b, "created_at"), string_or(b, "id"));
    });
    for (auto& rule : views(tx, Kind::security_group_rule, std::move(rules)))
      children[string_or(rule, "security_group_id")].push_back(std::move(rule));
  }
  for (auto& row : rows) {
    row["tenant_id"] = row["project_id"];
    switch (k) {
      case Kind::network:
        row["subnets"] = children[string_or(row, "id")];
        if (!tx.admin)
          for (auto* a :
               {"provider:network_type", "provider:physical_network", "provider:segmentation_id"})
            row.erase(a);
        break;
      case Kind::security_group:
        row["security_group_rules"] = children[string_or(row, "id")];
        break;
      case Kind::port:
        if (!tx.admin)
          for (auto* a :
               {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"})
            row.erase(a);
        break;
      case Kind::router:
        if (!tx.admin) {
          row.erase("distributed");
          row.erase("ha");
        }
        break;
      case Kind::rbac_policy:
        row.erase("created_at");
        row.erase("updated_at");
        row.erase("revision_number");
        row["target_project"] = row["target_tenant"];
        break;
      default:
        break;
    }
  }
  return rows;
}

}  // namespace detail

// ---- the list engine ----

namespace {

using namespace detail;

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto comma = s.find(',', start);
    auto part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool scalar_matches(const json::value& v, const std::string& wanted) {
  if (v.is_string()) return v.as_string() == wanted;
  if (v.is_bool()) {
    auto w = lower(wanted);
    return (w == "true" || w == "1") == v.as_bool() &&
           (w == "true" || w == "1" || w == "false" || w == "0");
  }
  if (v.is_int64()) return std::to_string(v.as_int64()) == wanted;
  if (v.is_null()) return wanted.empty() || wanted == "None";
  return to_string(v) == wanted;
}

// One filter against a view.
bool matches(const json::object& row, const std::string& key, const std::vector<std::string>& any) {
  if (key == "tags" || key == "tags-any" || key == "not-tags" || key == "not-tags-any") {
    std::set<std::string> have;
    if (auto* t = find(row, "tags"); t && t->is_array())
      for (auto& x : t->as_array())
        if (x.is_string()) have.insert(std::string(x.as_string()));
    std::vector<std::string> wanted;
    for (auto& v : any)
      for (auto& t : split_commas(v)) wanted.push_back(t);
    bool all = std::all_of(wanted.begin(), wanted.end(), [&](auto& t) { return have.count(t); });
    bool some = std::any_of(wanted.begin(), wanted.end(), [&](auto& t) { return have.count(t); });
    if (key == "tags") return all;
    if (key == "tags-any") return some;
    if (key == "not-tags") return !all;
    return !some;
  }
  if (key == "fixed_ips") {
    // fixed_ips=ip_address=X, fixed_ips=subnet_id=Y, ip_address_substr=...
    auto* f = find(row, "fixed_ips");
    if (!f || !f->is_array()) return false;
    for (auto& want : any) {
      auto eq = want.find('=');
      if (eq == std::string::npos) continue;
      auto field = want.substr(0, eq), value = want.substr(eq + 1);
      for (auto& ip : f->as_array()) {
        if (!ip.is_object()) continue;
        if (field == "ip_address_substr") {
          if (string_or(ip.as_object(), "ip_address").find(value) != std::string::npos) return true;
        } else if (string_or(ip.as_object(), field) == value) {
          return true;
        }
      }
    }
    return false;
  }
  auto* v = find(row, key == "tenant_id" ? "project_id" : key);
  if (!v) return true;  // unknown attributes are ignored, as without filter-validation
  for (auto& want : any) {
    if (v->is_array()) {
      for (auto& x : v->as_array())
        if (scalar_matches(x, want)) return true;
    } else if (scalar_matches(*v, want)) {
      return true;
    }
  }
  return false;
}

int compare(const json::value& a, const json::value& b) {
  auto rank = [](const json::value& v) {
    return v.is_null() ? 0 : v.is_bool() ? 1 : v.is_number() ? 2 : v.is_string() ? 3 : 4;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b) ? -1 : 1;
  if (a.is_bool()) return int(a.as_bool()) - int(b.as_bool());
  if (a.is_number()) {
    double x = a.to_number<double>(), y = b.to_number<double>();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string()) {
    int c = a.as_string().subview().compare(b.as_string().subview());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  auto x = to_string(a), y = to_string(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const json::value& field(const json::object& row, const std::string& key) {
  static const json::value null;
  auto* v = find(row, key == "tenant_id" ? "project_id" : key);
  return v ? *v : null;
}

}  // namespace

ListResult NetworkService::list(const Caller& c, Kind k, const ListParams& p) {
  std::vector<json::object> rows;
  bool admin = c.admin();
  // Neutron makes a project's default security group when the project first looks for groups.
  if (k == Kind::security_group && !c.project().empty()) {
    bool missing = false;
    db_->read([&](soci::session& s) {
      missing =
          db::query_strings(
              s, "SELECT security_group_id FROM default_security_group WHERE project_id = :p0",
              {c.project()})
              .empty();
    });
    if (missing) {
      db_->write([&](soci::session& s) {
        Tx tx{s, c, settings_, admin, now_text()};
        ensure_default_security_group(tx, c.project());
      });
      changed();
    }
  }
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, admin, {}};
    db::Query q;
    // Narrow in SQL by the filters that are columns; the rest is matched on the views below.
    std::map<std::string, std::vector<std::string>> by_key;
    for (auto& [key, value] : p.filters) by_key[key].push_back(value);
    for (auto& [key, values] : by_key) {
      auto* column = table(k).column(key == "tenant_id" ? "project_id" : key);
      if (column && column->type == db::ColumnType::Text && key != "name")
        q.in(column->name, values);
    }
    std::vector<json::object> all;
    for (auto& row : load_where(tx, k, q))
      if (visible(tx, k, row)) all.push_back(std::move(row));
    auto shown = views(tx, k, std::move(all));
    for (auto& row : shown) {
      bool keep = true;
      for (auto& [key, values] : by_key)
        if (!matches(row, key, values)) {
          keep = false;
          break;
        }
      if (keep) rows.push_back(std::move(row));
    }
    if (p.marker) {
      // The marker's position is its sort values; it need not match the filters.
      auto marker = load(tx, k, *p.marker);
      if (!marker) throw not_found(k, *p.marker);
      auto marker_view = views(tx, k, {std::move(*marker)}).front();
      rows.insert(rows.begin(), std::move(marker_view));
      rows.front()["__marker"] = true;
    }
  });
  auto keys = p.sort;
  if (std::none_of(keys.begin(), keys.end(), [](auto& key) { return key.first == "id"; }))
    keys.emplace_back("id", true);
  for (auto& key : keys) {
    if (key.first == "id" || key.first == "tenant_id") continue;
    auto& attrs = attributes(k);
    if (std::none_of(attrs.begin(), attrs.end(), [&](auto& a) { return key.first == a.name; }))
      throw bad_request("HTTPBadRequest", key.first + " is invalid attribute for sort_key");
  }
  auto before = [&](const json::object& a, const json::object& b) {
    for (auto& [key, ascending] : keys) {
      int cmp = compare(field(a, key), field(b, key));
      if (cmp) return ascending ? cmp < 0 : cmp > 0;
    }
    return false;
  };
  // Rows usually come from the database in id order already: then the default order needs no
  // sorting (checked, as a database's collation may order ids otherwise).
  bool in_order = keys.size() == 1 && keys[0].second &&
                  std::is_sorted(rows.begin(), rows.end(), [](auto& a, auto& b) {
                    return compare(field(a, "id"), field(b, "id")) < 0;
                  });
  if (!in_order) {
    // Each row's sort values are read once, not at every comparison.
    std::vector<std::pair<std::vector<json::value>, size_t>> order;
    order.reserve(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      std::vector<json::value> values;
      for (auto& key : keys) values.push_back(field(rows[i], key.first));
      order.emplace_back(std::move(values), i);
    }
    std::stable_sort(order.begin(), order.end(), [&](auto& a, auto& b) {
      for (size_t k = 0; k < keys.size(); ++k) {
        int cmp = compare(a.first[k], b.first[k]);
        if (cmp) return keys[k].second ? cmp < 0 : cmp > 0;
      }
      return false;
    });
    std::vector<json::object> sorted;
    sorted.reserve(rows.size());
    for (auto& [values, i] : order) sorted.push_back(std::move(rows[i]));
    rows = std::move(sorted);
  }
  ListResult result;
  if (p.marker || p.limit) {
    long limit = p.limit.value_or(-1);
    std::vector<json::object> page;
    if (!p.page_reverse) {
      auto it = rows.begin();
      if (p.marker) {
        it = std::find_if(rows.begin(), rows.end(), [](auto& r) { return find(r, "__marker"); });
        auto marker = *it;
        it = rows.erase(it);
        while (it != rows.end() && !before(marker, *it)) ++it;  // skip equals of the marker
      }
      for (; it != rows.end() && (limit < 0 || static_cast<long>(page.size()) < limit); ++it)
        page.push_back(std::move(*it));
      result.has_more = it != rows.end();
    } else {
      long end = static_cast<long>(rows.size());
      if (p.marker) {
        auto it =
            std::find_if(rows.begin(), rows.end(), [](auto& r) { return find(r, "__marker"); });
        auto marker = *it;
        end = it - rows.begin();
        rows.erase(it);
        while (end > 0 && !before(rows[end - 1], marker)) --end;
      }
      long start = limit < 0 ? 0 : std::max(0L, end - limit);
      for (long i = start; i < end; ++i) page.push_back(std::move(rows[i]));
      result.has_more = start > 0;
    }
    result.items = std::move(page);
  } else {
    result.items = std::move(rows);
  }
  return result;
}

// ---- create / show / update / delete ----

namespace {

json::object create_one(Tx& tx, Kind k, json::object& body) {
  check_attributes(k, body, true);
  switch (k) {
    case Kind::network:
      return create_network(tx, body);
    case Kind::subnet:
      return create_subnet(tx, body);
    case Kind::port:
      return create_port(tx, body);
    case Kind::security_group:
      return create_security_group(tx, body);
    case Kind::security_group_rule:
      return create_security_group_rule(tx, body);
    case Kind::router:
      return create_router(tx, body);
    case Kind::floatingip:
      return create_floatingip(tx, body);
    case Kind::subnetpool:
      return create_subnetpool(tx, body);
    case Kind::rbac_policy:
      return create_rbac_policy(tx, body);
    case Kind::address_scope:
      return create_address_scope(tx, body);
  }
  throw std::logic_error("unknown kind");
}

void check_revision(const json::object& row, std::optional<long> if_match) {
  if (!if_match) return;
  auto current = int_or(row, "revision_number");
  if (current != *if_match)
    throw ApiError(412,
                   "Constrained to " + std::to_string(*if_match) + ", but current revision is " +
                       std::to_string(current),
                   "RevisionNumberConstraintFailed");
}

}  // namespace

json::object NetworkService::create(const Caller& c, Kind k, json::object body) {
  json::object out;
  in_write(c, [&](Tx& tx) {
    auto fields = body;  // create_one takes from it; a retried write starts again from the request
    auto row = create_one(tx, k, fields);
    out = views(tx, k, {std::move(row)}).front();
  });
  return out;
}

std::vector<json::object> NetworkService::create_bulk(const Caller& c, Kind k,
                                                      std::vector<json::object> bodies) {
  std::vector<json::object> out;
  in_write(c, [&](Tx& tx) {
    std::vector<json::object> rows;
    for (auto body : bodies) rows.push_back(create_one(tx, k, body));
    out = views(tx, k, std::move(rows));
  });
  return out;
}

json::object NetworkService::show(const Caller& c, Kind k, const std::string& id) {
  json::object out;
  bool admin = c.admin();
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, admin, {}};
    out = views(tx, k, {fetch(tx, k, id)}).front();
  });
  return out;
}

json::object NetworkService::update(const Caller& c, Kind k, const std::string& id,
                                    json::object request, std::optional<long> if_match) {
  json::object out;
  in_write(c, [&](Tx& tx) {
    auto body = request;  // the updates take from it; a retried write starts again
    auto row = fetch(tx, k, id);
    check_attributes(k, body, false);
    if (!tx.admin && !owns(tx, row) && k != Kind::port)
      throw ApiError(403, "The request you have made requires authentication.", "HTTPForbidden");
    check_revision(row, if_match);
    switch (k) {
      case Kind::network:
        update_network(tx, row, body);
        break;
      case Kind::subnet:
        update_subnet(tx, row, body);
        break;
      case Kind::port:
        update_port(tx, row, body);
        break;
      case Kind::security_group:
        update_security_group(tx, row, body);
        break;
      case Kind::router:
        update_router(tx, row, body);
        break;
      case Kind::floatingip:
        update_floatingip(tx, row, body);
        break;
      case Kind::subnetpool:
        update_subnetpool(tx, row, body);
        break;
      case Kind::rbac_policy:
        update_rbac_policy(tx, row, body);
        break;
      case Kind::address_scope:
        update_address_scope(tx, row, body);
        break;
      case Kind::security_group_rule:
        throw ApiError(405, "The resource doesn't support this method", "HTTPMethodNotAllowed");
    }
    save(tx, k, row);
    out = views(tx, k, {std::move(row)}).front();
  });
  return out;
}

void NetworkService::remove(const Caller& c, Kind k, const std::string& id,
                            std::optional<long> if_match) {
  in_write(c, [&](Tx& tx) {
    auto row = fetch(tx, k, id);
    if (!tx.admin && !owns(tx, row)) {
      // A port on the caller's network may be deleted by the network's owner.
      bool network_owner = false;
      if (k == Kind::port)
        if (auto network = load(tx, Kind::network, string_or(row, "network_id")))
          network_owner = owns(tx, *network);
      if (!network_owner)
        throw ApiError(403, "The request you have made requires authentication.", "HTTPForbidden");
    }
    check_revision(row, if_match);
    switch (k) {
      case Kind::network:
        delete_network(tx, row);
        break;
      case Kind::subnet:
        delete_subnet(tx, row);
        break;
      case Kind::port:
        delete_port(tx, row);
        break;
      case Kind::security_group:
        delete_security_group(tx, row);
        break;
      case Kind::security_group_rule:
        delete_security_group_rule(tx, row);
        break;
      case Kind::router:
        delete_router(tx, row);
        break;
      case Kind::floatingip:
        delete_floatingip(tx, row);
        break;
      case Kind::subnetpool:
        delete_subnetpool(tx, row);
        break;
      case Kind::rbac_policy:
        delete_rbac_policy(tx, row);
        break;
      case Kind::address_scope:
        delete_address_scope(tx, row);
        break;
    }
  });
}

// ---- tags ----

namespace {
void check_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 255 || tag.find(',') != std::string::npos ||
      tag.find('/') != std::string::npos)
    throw bad_attribute("tags", "'" + tag + "' is not a valid tag");
}
}  // namespace

std::vector<std::string> NetworkService::tags(const Caller& c, Kind k, const std::string& id) {
  auto row = show(c, k, id);
  std::vector<std::string> out;
  if (auto* t = find(row, "tags"); t && t->is_array())
    for (auto& x : t->as_array()) out.emplace_back(x.as_string());
  return out;
}

std::vector<std::string> NetworkService::set_tags(const Caller& c, Kind k, const std::string& id,
                                                  const json::value& tags) {
  if (!tags.is_array()) throw bad_attribute("tags", "'" + to_string(tags) + "' is not a list");
  std::vector<std::string> list;
  for (auto& t : tags.as_array()) {
    if (!t.is_string()) throw bad_attribute("tags", "'" + to_string(t) + "' is not a valid string");
    std::string tag(t.as_string());
    check_tag(tag);
    if (std::find(list.begin(), list.end(), tag) == list.end()) list.push_back(tag);
  }
  if (list.size() > 50) throw bad_request("HTTPBadRequest", "Too many tags");
  in_write(c, [&](Tx& tx) {
    auto row = fetch(tx, k, id);
    json::array arr;
    for (auto& t : list) arr.push_back(json::value(t));
    row["tags"] = arr;
    save(tx, k, row);
  });
  return list;
}

void NetworkService::add_tag(const Caller& c, Kind k, const std::string& id,
                             const std::string& tag) {
  check_tag(tag);
  in_write(c, [&](Tx& tx) {
    auto row = fetch(tx, k, id);
    auto& arr = row["tags"].as_array();
    for (auto& t : arr)
      if (t.as_string() == tag) return;
    arr.push_back(json::value(tag));
    save(tx, k, row);
  });
}

void NetworkService::remove_tag(const Caller& c, Kind k, const std::string& id,
                                const std::string& tag) {
  in_write(c, [&](Tx& tx) {
    auto row = fetch(tx, k, id);
    auto& arr = row["tags"].as_array();
    auto it = std::find_if(arr.begin(), arr.end(), [&](auto& t) { return t.as_string() == tag; });
    if (it == arr.end())
      throw ApiError(404,
                     "Tag " + tag + " could not be found for " + info(k).singular + " " + id + ".",
                     "TagNotFound");
    arr.erase(it);
    save(tx, k, row);
  });
}

void NetworkService::remove_tags(const Caller& c, Kind k, const std::string& id) {
  set_tags(c, k, id, json::array{});
}

bool NetworkService::has_tag(const Caller& c, Kind k, const std::string& id,
                             const std::string& tag) {
  auto list = tags(c, k, id);
  return std::find(list.begin(), list.end(), tag) != list.end();
}

// ---- quotas ----

namespace detail {

long quota_limit(Tx& tx, const std::string& project, const std::string& resource) {
  auto rows = db::query_strings(
      tx.s, "SELECT hard_limit FROM quota WHERE project_id = :p0 AND resource = :p1",
      {project, resource});
  if (!rows.empty() && rows[0][0]) return std::stol(*rows[0][0]);
  auto it = tx.settings.default_quotas.find(resource);
  return it == tx.settings.default_quotas.end() ? -1 : it->second;
}

namespace {
long used(Tx& tx, const std::string& resource, const std::string& project) {
  auto k = kind_by_plural(resource + "s");
  if (resource == "rbac_policy") k = Kind::rbac_policy;
  if (!k) return 0;
  auto rows = db::query_strings(
      tx.s, "SELECT COUNT(*) FROM " + table(*k).name + " WHERE project_id = :p0", {project});
  return rows.empty() || !rows[0][0] ? 0 : std::stol(*rows[0][0]);
}
}  // namespace

void check_quota(Tx& tx, Kind k, const std::string& project, long adding) {
  std::string resource = info(k).singular;
  long limit = quota_limit(tx, project, resource);
  if (limit < 0) return;
  if (used(tx, resource, project) + adding > limit)
    throw ApiError(409, "Quota exceeded for resources: ['" + resource + "'].", "OverQuota");
}

}  // namespace detail

json::object NetworkService::quota(const Caller& c, const std::string& project, bool details) {
  if (!c.admin() && project != c.project())
    throw ApiError(403, "Non-admin is not authorised to access quotas for another project",
                   "HTTPForbidden");
  json::object out;
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, true, {}};
    for (auto& [resource, _] : settings_.default_quotas) {
      long limit = quota_limit(tx, project, resource);
      if (details)
        out[resource] =
            json::object{{"limit", limit}, {"used", used(tx, resource, project)}, {"reserved", 0}};
      else
        out[resource] = limit;
    }
  });
  return out;
}

json::object NetworkService::quota_defaults(const Caller& c, const std::string& project) {
  (void)c;
  (void)project;
  json::object out;
  for (auto& [resource, limit] : settings_.default_quotas) out[resource] = limit;
  return out;
}

json::array NetworkService::quotas(const Caller& c) {
  if (!c.admin()) throw ApiError(403, "Only admin can view or configure quota", "AdminRequired");
  json::array out;
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, true, {}};
    for (auto& r :
         db::query_strings(s, "SELECT DISTINCT project_id FROM quota ORDER BY project_id", {})) {
      json::object q;
      for (auto& [resource, _] : settings_.default_quotas)
        q[resource] = quota_limit(tx, *r[0], resource);
      q["project_id"] = *r[0];
      q["tenant_id"] = *r[0];
      out.push_back(std::move(q));
    }
  });
  return out;
}

json::object NetworkService::update_quota(const Caller& c, const std::string& project,
                                          const json::object& body) {
  if (!c.admin()) throw ApiError(403, "Only admin can view or configure quota", "AdminRequired");
  for (auto& kv : body) {
    std::string resource(kv.key());
    if (!settings_.default_quotas.count(resource))
      throw bad_request("HTTPBadRequest", "Unrecognized attribute(s) '" + resource + "'");
    long limit = to_int(kv.value(), resource);
    if (limit < -1)
      throw bad_attribute(resource,
                          "'" + std::to_string(limit) + "' is too small - must be at least '-1'");
  }
  db_->write([&](soci::session& s) {
    for (auto& kv : body) {
      long limit = to_int(kv.value(), std::string(kv.key()));
      db::execute(s, "DELETE FROM quota WHERE project_id = :p0 AND resource = :p1",
                  {project, std::string(kv.key())});
      db::execute(s, "INSERT INTO quota (project_id, resource, hard_limit) VALUES (:p0, :p1, :p2)",
                  {project, std::string(kv.key()), std::to_string(limit)});
    }
  });
  changed();
  return quota(c, project, false);
}

void NetworkService::reset_quota(const Caller& c, const std::string& project) {
  if (!c.admin()) throw ApiError(403, "Only admin can view or configure quota", "AdminRequired");
  db_->write([&](soci::session& s) {
    db::execute(s, "DELETE FROM quota WHERE project_id = :p0", {project});
  });
  changed();
}

// ---- IP availability and agents ----

json::array NetworkService::ip_availabilities(const Caller& c, const ListParams& params) {
  if (!c.admin())
    throw ApiError(403, "(rule:get_network_ip_availability) is disallowed by policy",
                   "PolicyNotAuthorized");
  json::array out;
  db_->read([&](soci::session& s) {
    Tx tx{s, c, settings_, true, {}};
    for (auto& network : load_where(tx, Kind::network)) {
      bool keep = true;
      for (auto& [key, value] : params.filters) {
        std::string k = key == "network_id" ? "id" : key == "network_name" ? "name" : key;
        if (k == "ip_version") continue;
        if (!matches(network, k, {value})) keep = false;
      }
      if (!keep) continue;
      long total = 0, used_ips = 0;
      json::array subnets;
      std::optional<long> want_version;
      for (auto& [key, value] : params.filters)
        if (key == "ip_version") want_version = std::stol(value);
      for (auto& subnet :
           load_where(tx, Kind::subnet, db::Query{}.eq("network_id", string_or(network, "id")))) {
        long version = int_or(subnet, "ip_version", 4);
        if (want_version && version != *want_version) continue;
        ipam::u128 size = 0;
        for (auto& r : pools_of(subnet)) size += r.end.value - r.start.value + 1;
        auto count =
            db::query_strings(s, "SELECT COUNT(*) FROM ip_allocation WHERE subnet_id = :p0",
                              {string_or(subnet, "id")});
        long n = std::stol(*count[0][0]);
        long t = size > ipam::u128(1) << 62 ? (1L << 62) : static_cast<long>(size);
        subnets.push_back(json::object{{"subnet_id", subnet["id"]},
                                       {"subnet_name", subnet["name"]},
                                       {"cidr", subnet["cidr"]},
                                       {"ip_version", version},
                                       {"total_ips", t},
                                       {"used_ips", n}});
        total += t;
        used_ips += n;
      }
      out.push_back(json::object{{"network_id", network["id"]},
                                 {"network_name", network["name"]},
                                 {"project_id", network["project_id"]},
                                 {"tenant_id", network["project_id"]},
                                 {"total_ips", total},
                                 {"used_ips", used_ips},
                                 {"subnet_ip_availability", subnets}});
    }
  });
  return out;
}

json::object NetworkService::ip_availability(const Caller& c, const std::string& network_id) {
  ListParams p;
  p.filters.emplace_back("network_id", network_id);
  auto all = ip_availabilities(c, p);
  if (all.empty()) throw not_found(Kind::network, network_id);
  return all.front().as_object();
}

void NetworkService::agent_heartbeat(const std::string& host, bool network_node) {
  std::lock_guard lock(state_->agents_mutex);
  auto now = std::chrono::system_clock::now();
  auto [it, fresh] = state_->agents.try_emplace(host);
  if (fresh) it->second.started_at = iso8601(now, false, false);
  it->second.network_node = network_node;
  it->second.heartbeat = now;
}

json::array NetworkService::agents(const Caller& c, const ListParams& params) {
  json::array out;
  // Agents are an admin's view: others get an empty list, as Neutron's policy filters it.
  if (!c.admin()) return out;
  struct Role {
    const char* type;
    const char* binary;
    const char* topic;
    bool network_node_only;
  };
  std::map<std::string, State::Agent> agents;
  {
    std::lock_guard lock(state_->agents_mutex);
    agents = state_->agents;
  }
  auto now = std::chrono::system_clock::now();
  for (auto& [host, agent] : agents)
    for (auto role : {Role{"DHCP agent", "neutron-dhcp-agent", "dhcp_agent", true},
                      Role{"L3 agent", "neutron-l3-agent", "l3_agent", true},
                      Role{"Linux bridge agent", "neutron-linuxbridge-agent", "N/A", false},
                      Role{"Metadata agent", "neutron-metadata-agent", "N/A", false}}) {
      if (role.network_node_only && !agent.network_node) continue;
      // A stable id per host and role.
      std::string seed = host + "/" + role.binary;
      std::string hex = hex_encode(seed).substr(0, 32);
      while (hex.size() < 32) hex += "0";
      std::string id = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
                       hex.substr(16, 4) + "-" + hex.substr(20, 12);
      json::object a{{"id", id},
                     {"agent_type", role.type},
                     {"binary", role.binary},
                     {"topic", role.topic},
                     {"host", host},
                     {"admin_state_up", true},
                     {"alive", now - agent.heartbeat < std::chrono::seconds(75)},
                     {"availability_zone", std::string(role.topic) == "N/A" ? json::value(nullptr)
                                                                            : json::value("nova")},
                     {"configurations", json::object{}},
                     {"created_at", agent.started_at},
                     {"started_at", agent.started_at},
                     {"heartbeat_timestamp", iso8601(agent.heartbeat, false, false)},
                     {"description", nullptr},
                     {"resources_synced", nullptr}};
      bool keep = true;
      for (auto& [key, value] : params.filters)
        if (!matches(a, key, {value})) keep = false;
      if (keep) out.push_back(std::move(a));
    }
  return out;
}

json::object NetworkService::agent(const Caller& c, const std::string& id) {
  for (auto& a : agents(c, {}))
    if (a.as_object().at("id").as_string() == id) return a.as_object();
  throw ApiError(404, "Agent " + id + " could not be found.", "AgentNotFound");
}

}  // namespace nubo::network
