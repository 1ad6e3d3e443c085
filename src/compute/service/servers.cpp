// Servers on the API side: create (validation, quota, the durable records), list and show,
// update, delete, metadata and tags. Builds and deletes continue in the conductor and agents,
// reached over the bus once the records are committed.
#include <soci/soci.h>

#include <algorithm>
#include <regex>
#include <set>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/service/server_states.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

std::string random_text(size_t n) {
  static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  auto bytes = random_bytes(n);
  std::string out;
  for (unsigned char b : bytes) out += alphabet[b % (sizeof(alphabet) - 1)];
  return out;
}

// Nova's hostname from a display name: lower case, spaces and underscores to dashes, only
// [a-z0-9.-], no leading or trailing dot or dash, at most 63 characters.
std::string sanitize_hostname(const std::string& name, const std::string& uuid) {
  std::string out;
  for (unsigned char ch : name) {
    if (ch == ' ' || ch == '_')
      out += '-';
    else if (std::isalnum(ch) || ch == '.' || ch == '-')
      out += static_cast<char>(std::tolower(ch));
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && (out.front() == '.' || out.front() == '-')) out.erase(out.begin());
  while (!out.empty() && (out.back() == '.' || out.back() == '-')) out.pop_back();
  return out.empty() ? "server-" + uuid : out;
}

// The SQL column a sort key (Nova's names) orders by; empty for keys kept only for admins.
const std::map<std::string, std::string>& sort_columns() {
  static const std::map<std::string, std::string> m = {
      {"availability_zone", "availability_zone"},
      {"created_at", "created_at"},
      {"display_name", "name"},
      {"display_description", "description"},
      {"host", "host"},
      {"hostname", "hostname"},
      {"image_ref", "image_ref"},
      {"instance_type_id", "flavor_id"},
      {"key_name", "key_name"},
      {"launch_index", "launch_index"},
      {"launched_at", "launched_at"},
      {"locked", "locked"},
      {"node", "node"},
      {"power_state", "power_state"},
      {"project_id", "project_id"},
      {"task_state", "task_state"},
      {"terminated_at", "terminated_at"},
      {"updated_at", "updated_at"},
      {"user_id", "user_id"},
      {"uuid", "id"},
      {"vm_state", "vm_state"},
      // Kept in `extra`: accepted, ordered by creation.
      {"access_ip_v4", "created_at"},
      {"access_ip_v6", "created_at"},
      {"auto_disk_config", "created_at"},
      {"config_drive", "created_at"},
      {"kernel_id", "created_at"},
      {"locked_by", "created_at"},
      {"progress", "created_at"},
      {"ramdisk_id", "created_at"},
      {"root_device_name", "created_at"},
      {"vm_mode", "created_at"}};
  return m;
}

// Exact-match filters and their columns.
const std::map<std::string, std::string>& filter_columns() {
  static const std::map<std::string, std::string> m = {{"image", "image_ref"},
                                                       {"flavor", "flavor_id"},
                                                       {"host", "host"},
                                                       {"node", "node"},
                                                       {"hostname", "hostname"},
                                                       {"reservation_id", "reservation_id"},
                                                       {"availability_zone", "availability_zone"},
                                                       {"key_name", "key_name"},
                                                       {"uuid", "id"},
                                                       {"vm_state", "vm_state"},
                                                       {"task_state", "task_state"},
                                                       {"power_state", "power_state"},
                                                       {"user_id", "user_id"},
                                                       {"project_id", "project_id"},
                                                       {"launch_index", "launch_index"}};
  return m;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string instance_name(const json::object& row) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08llx",
                static_cast<unsigned long long>(row.at("number").as_int64()));
  return "instance-" + std::string(buf);
}

InstanceSpec instance_spec(const json::object& row,
                           const std::map<std::string, std::string>& metadata) {
  InstanceSpec spec;
  spec.uuid = string_or(row, "id");
  spec.name = instance_name(row);
  spec.hostname = string_or(row, "hostname");
  spec.image_ref = string_or(row, "image_ref");
  spec.user_data = string_or(row, "user_data");
  spec.key_data = string_or(row, "key_data");
  spec.display_name = string_or(row, "name");
  spec.key_name = string_or(row, "key_name");
  spec.project_id = string_or(row, "project_id");
  spec.availability_zone = string_or(row, "availability_zone");
  spec.launched_at = string_or(row, "launched_at");
  spec.launch_index = int_or(row, "launch_index");
  spec.reservation_id = string_or(row, "reservation_id");
  auto& flavor = row.at("flavor").as_object();
  spec.flavor_name = string_or(flavor, "name");
  auto num = [&](const char* k) {
    auto* v = flavor.if_contains(k);
    return v && v->is_int64() ? v->as_int64() : 0;
  };
  spec.vcpus = num("vcpus");
  spec.memory_mb = num("memory_mb");
  spec.root_gb = num("root_gb");
  spec.ephemeral_gb = num("ephemeral_gb");
  spec.swap_mb = num("swap");
  if (auto* specs = flavor.if_contains("extra_specs"); specs && specs->is_object())
    for (auto& kv : specs->as_object())
      if (kv.value().is_string())
        spec.extra_specs[std::string(kv.key())] = std::string(kv.value().as_string());
  spec.metadata = metadata;
  auto* cd = row.if_contains("config_drive");
  spec.config_drive = cd && cd->is_bool() && cd->as_bool();
  if (auto* args = row.if_contains("task_args"); args && args->is_object())
    spec.task_args = args->as_object();
  if (auto* vifs = row.if_contains("network_info"); vifs && vifs->is_array())
    spec.vifs = vifs->as_array();
  return spec;
}

json::object ComputeService::server_row(soci::session& s, const Caller& c, const std::string& id,
                                        const std::string& rule) {
  auto row = db::get(s, st::instance, id);
  if (!row || row->at("deleted").as_bool() ||
      (!c.admin() && string_or(*row, "project_id") != c.project()))
    throw NotFound("Instance " + id + " could not be found.");
  c.authorize(rule, {{"project_id", string_or(*row, "project_id")},
                     {"user_id", string_or(*row, "user_id")}});
  return std::move(*row);
}

void ComputeService::decorate_servers(soci::session& s, std::vector<json::object>& rows) {
  if (rows.empty()) return;
  std::vector<std::string> ids;
  std::map<std::string, json::object*> by_id;
  for (auto& r : rows) {
    ids.push_back(string_or(r, "id"));
    by_id[ids.back()] = &r;
    r["metadata"] = json::object{};
    r["tags"] = json::array{};
  }
  for (auto& m : db::select_in(s, st::instance_metadata, {}, "instance_id", ids))
    (*by_id[string_or(m, "instance_id")])["metadata"].as_object()[m.at("key").as_string()] =
        m.at("value");
  db::Query tq;
  tq.order_by = "tag";
  for (auto& t : db::select_in(s, st::instance_tag, tq, "instance_id", ids))
    (*by_id[string_or(t, "instance_id")])["tags"].as_array().push_back(t.at("tag"));
  std::vector<std::string> failed;
  for (auto& r : rows)
    if (string_or(r, "vm_state") == "error") failed.push_back(string_or(r, "id"));
  if (!failed.empty()) {
    db::Query fq;
    fq.in("instance_id", failed);
    fq.order_by = "created_at";
    for (auto& f : db::select(s, st::instance_fault, fq))
      (*by_id[string_or(f, "instance_id")])["fault"] = f;  // latest wins
  }
}

void ComputeService::record_action(soci::session& s, const Caller& c,
                                   const std::string& instance_id, const std::string& action) {
  auto seq = db::query_strings(
      s, "SELECT COALESCE(MAX(seq), 0) FROM instance_action WHERE instance_id = :p0",
      {instance_id});
  db::insert(s, st::instance_action,
             json::object{{"id", uuid4()},
                          {"instance_id", instance_id},
                          {"action", action},
                          {"request_id", c.request_id.empty() ? "req-" + uuid4() : c.request_id},
                          {"user_id", c.user()},
                          {"project_id", c.project()},
                          {"start_time", now()},
                          {"finish_time", nullptr},
                          {"message", nullptr},
                          {"updated_at", now()},
                          {"seq", std::stoll(seq.at(0).at(0).value_or("0")) + 1}});
}

void ComputeService::cast_to_host(const json::object& server, const std::string& method,
                                  json::object body) {
  if (bus_) bus_->cast("compute." + string_or(server, "host"), method, std::move(body));
}

void ComputeService::cast_to_conductor(const std::string& method, json::object body) {
  if (bus_) bus_->cast("conductor", method, std::move(body));
}

std::vector<json::object> ComputeService::create_servers(const Caller& c, const ServerRequest& r) {
  c.authorize("os_compute_api:servers:create",
              {{"project_id", c.project()}, {"user_id", c.user()}});
  std::optional<ImageInfo> image;
  if (!r.image_ref.empty()) {
    if (images_) image = images_->show(c.auth, r.image_ref);
    if (!image) throw BadRequest("Image " + r.image_ref + " could not be found.");
    if (image->status != "active") throw BadRequest("Image " + r.image_ref + " is not active.");
    // Its kernel and ramdisk must be images the caller may use too (Nova's
    // _handle_kernel_and_ramdisk): the host fetches them with its own rights.
    for (auto* key : {"kernel_id", "ramdisk_id"})
      if (auto ref = string_or(image->properties, key); !ref.empty())
        if (!images_->show(c.auth, ref)) throw BadRequest("Image " + ref + " could not be found.");
  } else if (r.block_devices.empty()) {
    throw BadRequest(
        "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device "
        "mapping combination is not valid.");
  }
  json::array security_group_ids;
  auto requested_networks = resolve_networks(c, r, r.max_count, security_group_ids);
  std::vector<json::object> out;
  auto reservation = "r-" + random_text(8);
  // Read before the write, off the single writer: the flavor and the quota limits (the project's,
  // then the user's in it). Nova reads them before it creates too; what the servers use is counted
  // inside the write.
  json::object flavor;
  struct QuotaScope {
    std::string user;  // empty: the project's
    std::map<std::string, QuotaEntry> limits;
  } scopes[2] = {{std::string(), {}}, {c.user(), {}}};
  db_->read([&](soci::session& s) {
    try {
      flavor = flavor_row(s, c, r.flavor_ref);
    } catch (const ApiError& e) {
      if (e.status() != 404) throw;
      throw BadRequest("Flavor " + r.flavor_ref + " could not be found.");
    }
    for (auto& scope : scopes) scope.limits = effective_quotas(s, c.project(), scope.user, false);
  });
  db_->write([&](soci::session& s) {
    if (flavor.at("disabled").as_bool()) throw BadRequest("Flavor is disabled.");
    auto memory = flavor.at("memory_mb").as_int64(), vcpus = flavor.at("vcpus").as_int64(),
         root_gb = flavor.at("root_gb").as_int64();
    if (image) {
      if (image->min_ram > memory)
        throw BadRequest("Flavor's memory is too small for requested image.");
      if (root_gb > 0 && (image->min_disk > root_gb || image->size > (root_gb << 30)))
        throw BadRequest("Flavor's disk is too small for requested image.");
    }
    std::string key_data;
    if (!r.key_name.empty()) {
      auto keys =
          db::select(s, st::keypair, db::Query{}.eq("user_id", c.user()).eq("name", r.key_name));
      if (keys.empty()) throw BadRequest("Invalid key_name provided.");
      key_data = string_or(keys.front(), "public_key");
    }
    // availability_zone may be "zone", "zone:host" or "zone:host:node" (a forced host, admins
    // only).
    std::string zone = r.availability_zone, forced_host;
    if (auto colon = zone.find(':'); colon != std::string::npos) {
      forced_host = zone.substr(colon + 1);
      zone = zone.substr(0, colon);
      if (auto node = forced_host.find(':'); node != std::string::npos) forced_host.resize(node);
      c.authorize("os_compute_api:servers:create:forced_host", {{"project_id", c.project()}});
    }
    if (!zone.empty()) {
      auto zones = host_zones(s);
      bool known = zone == settings_.default_availability_zone;
      for (auto& [host, z] : zones) known = known || z == zone;
      if (!known) throw BadRequest("The requested availability zone is not available");
    }
    std::string group_id;
    if (auto* g = r.scheduler_hints.if_contains("group")) {
      group_id = g->is_string() ? std::string(g->as_string()) : "";
      auto group = db::get(s, st::server_group, group_id);
      if (!group || (!c.admin() && string_or(*group, "project_id") != c.project()))
        throw BadRequest("Invalid server group: " + group_id + " could not be found.");
    }
    // Quota: as many servers as fit, at least min_count (Nova's rule), checked for the project
    // and for the user.
    long n = r.max_count;
    std::string over;
    std::int64_t over_used = 0, over_limit = 0, over_requested = 0;
    for (auto& scope : scopes) {
      // Unlimited servers, cores and RAM need no count (an admin's project often has them).
      auto q = scope.limits;
      if (q["instances"].limit >= 0 || q["cores"].limit >= 0 || q["ram"].limit >= 0)
        count_servers(s, c.project(), scope.user, q);
      for (auto [resource, each] : {std::pair<const char*, std::int64_t>{"instances", 1},
                                    {"cores", vcpus},
                                    {"ram", memory}}) {
        auto& e = q[resource];
        if (e.limit < 0 || each == 0) continue;
        long fits = static_cast<long>(std::max<std::int64_t>(0, (e.limit - e.in_use) / each));
        if (fits < r.min_count && over.empty()) {
          over = resource;
          over_used = e.in_use;
          over_limit = e.limit;
          over_requested = each * r.min_count;
        }
        n = std::min(n, fits);
      }
      auto& meta = q["metadata_items"];
      if (meta.limit >= 0 && static_cast<std::int64_t>(r.metadata.size()) > meta.limit)
        throw Forbidden("Quota exceeded for metadata_items: Requested " +
                        std::to_string(r.metadata.size()) + ", but already used 0 of " +
                        std::to_string(meta.limit) + " metadata_items");
      if (!group_id.empty()) {
        auto& members = q["server_group_members"];
        auto used = db::count(s, st::server_group_member, db::Query{}.eq("group_id", group_id));
        if (members.limit >= 0 && used + r.min_count > members.limit)
          throw Forbidden("Quota exceeded, too many servers in group");
      }
    }
    if (!over.empty())
      throw Forbidden("Quota exceeded for " + over + ": Requested " +
                      std::to_string(over_requested) + ", but already used " +
                      std::to_string(over_used) + " of " + std::to_string(over_limit) + " " + over);
    json::object flavor_snapshot{{"id", flavor.at("id")},
                                 {"name", flavor.at("name")},
                                 {"vcpus", vcpus},
                                 {"memory_mb", memory},
                                 {"root_gb", root_gb},
                                 {"ephemeral_gb", flavor.at("ephemeral_gb")},
                                 {"swap", flavor.at("swap")},
                                 {"extra_specs", flavor.at("extra_specs")}};
    json::array groups;
    for (auto& name : r.security_groups) groups.push_back(json::object{{"name", name}});
    auto number = st::next_number(s, st::instance, "number", n);
    auto created = now();
    for (long i = 0; i < n; ++i) {
      auto id = uuid4();
      auto name = n > 1 ? r.name + "-" + std::to_string(i + 1) : r.name;
      json::object row{
          {"id", id},
          {"number", number + i},
          {"project_id", c.project()},
          {"user_id", c.user()},
          {"name", name},
          {"hostname", r.hostname.empty() || n > 1 ? sanitize_hostname(name, id) : r.hostname},
          {"description", r.description ? json::value(*r.description) : json::value(nullptr)},
          {"image_ref", r.image_ref},
          {"flavor_id", flavor.at("id")},
          {"flavor", flavor_snapshot},
          {"vcpus", vcpus},
          {"memory_mb", memory},
          {"key_name", r.key_name.empty() ? json::value(nullptr) : json::value(r.key_name)},
          {"availability_zone", zone.empty() ? json::value(nullptr) : json::value(zone)},
          {"host", nullptr},
          {"node", nullptr},
          {"vm_state", "building"},
          {"task_state", "scheduling"},
          {"power_state", 0},
          {"locked", false},
          {"reservation_id", reservation},
          {"launch_index", i},
          {"launched_at", nullptr},
          {"terminated_at", nullptr},
          {"created_at", created},
          {"updated_at", created},
          {"deleted_at", nullptr},
          {"deleted", false},
          {"user_data", r.user_data},
          {"key_data", key_data},
          {"access_ip_v4", r.access_ip_v4},
          {"access_ip_v6", r.access_ip_v6},
          {"disk_config", r.disk_config},
          {"config_drive", r.config_drive},
          {"security_groups", groups},
          {"networks", r.networks},
          {"requested_networks", requested_networks},
          {"security_group_ids", security_group_ids},
          {"scheduler_hints", r.scheduler_hints},
          {"forced_host", forced_host},
          {"group_id", group_id},
          {"block_devices", r.block_devices},
          {"root_device_name", "/dev/vda"},
          {"kernel_id", image ? string_or(image->properties, "kernel_id") : std::string()},
          {"ramdisk_id", image ? string_or(image->properties, "ramdisk_id") : std::string()},
          {"image_properties", image ? image->properties : json::object{}},
          {"admin_pass", r.admin_pass}};
      db::insert(s, st::instance, row);
      for (auto& [k, v] : r.metadata)
        db::insert(s, st::instance_metadata,
                   json::object{{"id", uuid4()}, {"instance_id", id}, {"key", k}, {"value", v}});
      for (auto& t : r.tags)
        db::insert(s, st::instance_tag,
                   json::object{{"id", uuid4()}, {"instance_id", id}, {"tag", t}});
      if (!group_id.empty())
        db::insert(s, st::server_group_member,
                   json::object{{"id", uuid4()}, {"group_id", group_id}, {"instance_id", id}});
      record_action(s, c, id, "create");
      out.push_back(std::move(row));
    }
  });
  // What decorate_servers would read back: the metadata and tags just written.
  json::object metadata;
  for (auto& [k, v] : r.metadata) metadata[k] = v;
  auto tags = r.tags;
  std::sort(tags.begin(), tags.end());
  for (auto& row : out) {
    row["metadata"] = metadata;
    auto& t = (row["tags"] = json::array{}).as_array();
    for (auto& tag : tags) t.emplace_back(tag);
  }
  json::array ids;
  for (auto& row : out) ids.push_back(row.at("id"));
  cast_to_conductor("build_instances", json::object{{"instance_ids", std::move(ids)}});
  return out;
}

std::vector<json::object> ComputeService::list_servers(const Caller& c, const ServerQuery& q) {
  std::string where = "1 = 1";
  std::vector<std::optional<std::string>> params;
  auto bind = [&](const std::string& v) {
    params.push_back(v);
    return ":p" + std::to_string(params.size() - 1);
  };
  auto& f = q.filters;
  if (!q.all_projects && !f.count("project_id")) where += " AND project_id = " + bind(c.project());
  bool include_deleted = f.count("changes-since") || f.count("changes-before");
  if (auto it = f.find("deleted"); it != f.end()) {
    where += std::string(" AND deleted = ") + (it->second == "true" ? "1" : "0");
  } else if (!include_deleted) {
    where += " AND deleted = 0";
  }
  for (auto& [key, column] : filter_columns())
    if (auto it = f.find(key); it != f.end()) where += " AND " + column + " = " + bind(it->second);
  if (auto it = f.find("locked"); it != f.end())
    where += std::string(" AND locked = ") + (it->second == "true" ? "1" : "0");
  if (auto it = f.find("changes-since"); it != f.end())
    where += " AND updated_at >= " + bind(it->second);
  if (auto it = f.find("changes-before"); it != f.end())
    where += " AND updated_at <= " + bind(it->second);
  if (auto it = f.find("status"); it != f.end()) {
    std::string any;
    for (auto& status : split_commas(it->second)) {
      auto sf = status_filter(status);
      if (sf.vm_state.empty()) continue;
      std::string one = "(vm_state = " + bind(sf.vm_state);
      if (!sf.task_states.empty()) {
        std::string in;
        for (auto& t : sf.task_states) in += (in.empty() ? "" : ", ") + bind(t);
        one += " AND task_state IN (" + in + ")";
      } else if (sf.vm_state == "active") {
        one +=
            " AND (task_state IS NULL OR task_state NOT LIKE 're%' AND task_state NOT LIKE "
            "'resize%')";
      }
      any += (any.empty() ? "" : " OR ") + one + ")";
    }
    if (any.empty()) return {};  // an unknown status matches nothing, as in Nova
    where += " AND (" + any + ")";
  }
  auto tag_set = [&](const std::string& list) {
    std::string in;
    auto tags = split_commas(list);
    for (auto& t : tags) in += (in.empty() ? "" : ", ") + bind(t);
    return std::make_pair(in, tags.size());
  };
  if (auto it = f.find("tags"); it != f.end()) {
    auto [in, n] = tag_set(it->second);
    where += " AND id IN (SELECT instance_id FROM instance_tag WHERE tag IN (" + in +
             ") GROUP BY instance_id HAVING COUNT(DISTINCT tag) = " + std::to_string(n) + ")";
  }
  if (auto it = f.find("tags-any"); it != f.end())
    where += " AND id IN (SELECT instance_id FROM instance_tag WHERE tag IN (" +
             tag_set(it->second).first + "))";
  if (auto it = f.find("not-tags"); it != f.end()) {
    auto [in, n] = tag_set(it->second);
    where += " AND id NOT IN (SELECT instance_id FROM instance_tag WHERE tag IN (" + in +
             ") GROUP BY instance_id HAVING COUNT(DISTINCT tag) = " + std::to_string(n) + ")";
  }
  if (auto it = f.find("not-tags-any"); it != f.end())
    where += " AND id NOT IN (SELECT instance_id FROM instance_tag WHERE tag IN (" +
             tag_set(it->second).first + "))";
  // Fixed addresses (ip: IPv4, ip6: IPv6) are matched as regular expressions against the
  // network info cache, as Nova's _ip_filter does.
  bool by_address = f.count("ip") || f.count("ip6");

  std::string order;
  for (auto& [key, descending] : q.sort) {
    auto it = sort_columns().find(key);
    if (it == sort_columns().end()) throw BadRequest("Invalid sort_key " + key);
    order += (order.empty() ? "" : ", ") + it->second + (descending ? " DESC" : " ASC");
  }
  if (order.empty()) order = "created_at DESC";
  order += ", id DESC";

  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    // The first page with no name pattern is one query; otherwise ids are scanned for the
    // pattern and the marker, then the page's rows loaded.
    if (!f.count("name") && !by_address && q.marker.empty()) {
      out = db::select_where(s, st::instance,
                             "WHERE " + where + " ORDER BY " + order +
                                 (q.limit ? " LIMIT " + std::to_string(*q.limit) : ""),
                             params);
      decorate_servers(s, out);
      return;
    }
    auto rows = db::query_strings(s,
                                  std::string("SELECT id, name") + (by_address ? ", extra" : "") +
                                      " FROM instance WHERE " + where + " ORDER BY " + order,
                                  params);
    // A pattern that is not a valid regular expression is matched as text.
    auto pattern = [&](const char* key) -> std::optional<std::regex> {
      auto it = f.find(key);
      if (it == f.end()) return std::nullopt;
      try {
        return std::regex(it->second, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error&) {
        return std::regex(
            std::regex_replace(it->second, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)"));
      }
    };
    auto name = pattern("name"), ip4 = pattern("ip"), ip6 = pattern("ip6");
    auto address_matches = [&](const std::optional<std::string>& extra) {
      if (!extra || extra->empty()) return false;
      auto e = json::parse(*extra);
      auto* info = e.is_object() ? e.as_object().if_contains("network_info") : nullptr;
      if (!info || !info->is_array()) return false;
      for (auto& v : info->as_array()) {
        auto* ips = v.as_object().if_contains("ips");
        if (!ips || !ips->is_array()) continue;
        for (auto& ip : ips->as_array()) {
          auto& o = ip.as_object();
          if (string_or(o, "type") != "fixed") continue;
          auto& re = int_or(o, "version", 4) == 6 ? ip6 : ip4;
          if (re && std::regex_search(string_or(o, "address"), *re)) return true;
        }
      }
      return false;
    };
    std::vector<std::string> ids;
    bool past_marker = q.marker.empty();
    for (auto& row : rows) {
      if (name && !std::regex_search(row[1].value_or(""), *name)) continue;
      if (by_address && !address_matches(row[2])) continue;
      if (!past_marker) {
        past_marker = row[0] == q.marker;
        continue;
      }
      if (q.limit && static_cast<long>(ids.size()) >= *q.limit) break;
      ids.push_back(*row[0]);
    }
    if (!past_marker) throw BadRequest("marker [" + q.marker + "] not found");
    if (ids.empty()) return;
    std::map<std::string, json::object> loaded;
    for (auto& row : db::select_in(s, st::instance, {}, "id", ids))
      loaded[string_or(row, "id")] = std::move(row);
    for (auto& id : ids) out.push_back(std::move(loaded[id]));
    decorate_servers(s, out);
  });
  return out;
}

json::object ComputeService::show_server(const Caller& c, const std::string& id) {
  std::vector<json::object> rows;
  db_->read([&](soci::session& s) {
    rows.push_back(server_row(s, c, id, "os_compute_api:servers:show"));
    decorate_servers(s, rows);
  });
  return std::move(rows.front());
}

std::optional<json::object> ComputeService::show_server_now(const Caller& c,
                                                            const std::string& id) {
  std::vector<json::object> rows;
  if (!db_->try_read([&](soci::session& s) {
        rows.push_back(server_row(s, c, id, "os_compute_api:servers:show"));
        decorate_servers(s, rows);
      }))
    return std::nullopt;
  return std::move(rows.front());
}

json::object ComputeService::update_server(const Caller& c, const std::string& id,
                                           const json::object& fields) {
  std::vector<json::object> rows;
  db_->write([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:servers:update");
    json::object changes = fields;
    changes["updated_at"] = now();
    db::update(s, st::instance, id, changes);
    rows.push_back(*db::get(s, st::instance, id));
    decorate_servers(s, rows);
  });
  return std::move(rows.front());
}

void ComputeService::delete_server(const Caller& c, const std::string& id, bool force) {
  json::object row;
  bool local = false;
  db_->write([&](soci::session& s) {
    row = server_row(
        s, c, id,
        force ? "os_compute_api:os-deferred-delete:force" : "os_compute_api:servers:delete");
    if (row.at("locked").as_bool() && !c.admin()) throw Conflict("Instance " + id + " is locked");
    record_action(s, c, id, "delete");
    // A server on no host (never placed, or shelved and offloaded) has nothing to tear down.
    local = string_or(row, "host").empty();
    if (local) {
      auto t = now();
      db::update(s, st::instance, id,
                 json::object{{"vm_state", "deleted"},
                              {"task_state", nullptr},
                              {"power_state", 0},
                              {"deleted", true},
                              {"deleted_at", t},
                              {"terminated_at", t},
                              {"updated_at", t}});
      db::remove(s, st::server_group_member, db::Query{}.eq("instance_id", id));
    } else {
      db::update(s, st::instance, id,
                 json::object{{"task_state", "deleting"}, {"updated_at", now()}});
    }
  });
  // The conductor frees what the scheduler may have claimed meanwhile, and tears the VM down.
  cast_to_conductor(local ? "release_instance" : "delete_instance",
                    json::object{{"instance_id", id}});
}

std::map<std::string, std::string> ComputeService::server_metadata(const Caller& c,
                                                                   const std::string& id) {
  std::map<std::string, std::string> out;
  db_->read([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:server-metadata:index");
    for (auto& m : db::select(s, st::instance_metadata, db::Query{}.eq("instance_id", id)))
      out[string_or(m, "key")] = string_or(m, "value");
  });
  return out;
}

std::map<std::string, std::string> ComputeService::set_server_metadata(
    const Caller& c, const std::string& id, const std::map<std::string, std::string>& items,
    bool replace) {
  std::map<std::string, std::string> out;
  db_->write([&](soci::session& s) {
    auto row = server_row(s, c, id,
                          replace ? "os_compute_api:server-metadata:update_all"
                                  : "os_compute_api:server-metadata:create");
    if (row.at("locked").as_bool() && !c.admin()) throw Conflict("Instance " + id + " is locked");
    if (!string_or(row, "task_state").empty() && string_or(row, "task_state") == "deleting")
      throw Conflict("Cannot 'update metadata' instance " + id +
                     " while it is in task_state deleting");
    if (replace) db::remove(s, st::instance_metadata, db::Query{}.eq("instance_id", id));
    for (auto& m : db::select(s, st::instance_metadata, db::Query{}.eq("instance_id", id)))
      out[string_or(m, "key")] = string_or(m, "value");
    for (auto& [k, v] : items) out[k] = v;
    auto limit = effective_quotas(s, string_or(row, "project_id"), "")["metadata_items"].limit;
    if (limit >= 0 && static_cast<std::int64_t>(out.size()) > limit)
      throw Forbidden("Quota exceeded for metadata_items: Requested " + std::to_string(out.size()) +
                      ", but already used 0 of " + std::to_string(limit) + " metadata_items");
    for (auto& [k, v] : items) {
      db::remove(s, st::instance_metadata, db::Query{}.eq("instance_id", id).eq("key", k));
      db::insert(s, st::instance_metadata,
                 json::object{{"id", uuid4()}, {"instance_id", id}, {"key", k}, {"value", v}});
    }
    db::update(s, st::instance, id, json::object{{"updated_at", now()}});
  });
  return out;
}

void ComputeService::delete_server_metadata(const Caller& c, const std::string& id,
                                            const std::string& key) {
  db_->write([&](soci::session& s) {
    auto row = server_row(s, c, id, "os_compute_api:server-metadata:delete");
    if (row.at("locked").as_bool() && !c.admin()) throw Conflict("Instance " + id + " is locked");
    if (db::remove(s, st::instance_metadata, db::Query{}.eq("instance_id", id).eq("key", key)) == 0)
      throw NotFound("Metadata item was not found");
    db::update(s, st::instance, id, json::object{{"updated_at", now()}});
  });
}

std::vector<std::string> ComputeService::server_tags(const Caller& c, const std::string& id) {
  std::vector<std::string> out;
  db_->read([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:os-server-tags:index");
    db::Query q;
    q.eq("instance_id", id);
    q.order_by = "tag";
    for (auto& t : db::select(s, st::instance_tag, q)) out.push_back(string_or(t, "tag"));
  });
  return out;
}

std::vector<std::string> ComputeService::set_server_tags(const Caller& c, const std::string& id,
                                                         const std::vector<std::string>& tags) {
  db_->write([&](soci::session& s) {
    server_row(s, c, id,
               tags.empty() ? "os_compute_api:os-server-tags:delete_all"
                            : "os_compute_api:os-server-tags:update_all");
    db::remove(s, st::instance_tag, db::Query{}.eq("instance_id", id));
    for (auto& t : std::set<std::string>(tags.begin(), tags.end()))
      db::insert(s, st::instance_tag,
                 json::object{{"id", uuid4()}, {"instance_id", id}, {"tag", t}});
    db::update(s, st::instance, id, json::object{{"updated_at", now()}});
  });
  std::set<std::string> sorted(tags.begin(), tags.end());
  return {sorted.begin(), sorted.end()};
}

bool ComputeService::add_server_tag(const Caller& c, const std::string& id,
                                    const std::string& tag) {
  bool added = false;
  db_->write([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:os-server-tags:update");
    if (db::count(s, st::instance_tag, db::Query{}.eq("instance_id", id).eq("tag", tag)) > 0)
      return;
    if (db::count(s, st::instance_tag, db::Query{}.eq("instance_id", id)) >= 50)
      throw BadRequest("The number of tags exceeded the per-server limit 50");
    db::insert(s, st::instance_tag,
               json::object{{"id", uuid4()}, {"instance_id", id}, {"tag", tag}});
    db::update(s, st::instance, id, json::object{{"updated_at", now()}});
    added = true;
  });
  return added;
}

void ComputeService::delete_server_tag(const Caller& c, const std::string& id,
                                       const std::string& tag) {
  db_->write([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:os-server-tags:delete");
    if (db::remove(s, st::instance_tag, db::Query{}.eq("instance_id", id).eq("tag", tag)) == 0)
      throw NotFound("Tag " + tag + " could not be found.");
    db::update(s, st::instance, id, json::object{{"updated_at", now()}});
  });
}

}  // namespace nubo::compute
