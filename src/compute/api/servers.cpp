// /v2.1/servers: create, list and detail (Nova's filters, sorting and paging), show, update,
// delete, and the views as each microversion renders them.
#include "compute/api/servers.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <regex>
#include <set>
#include <unordered_map>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

// "2026-11-21T16:00:00.123456" → "2026-11-21T16:00:00Z" (Nova's created/updated).
json::value zulu(const json::value& t) {
  if (!t.is_string()) return nullptr;
  std::string s(t.as_string());
  return json::value(s.substr(0, 19) + "Z");
}

std::string host_id(const std::string& project, const std::string& host) {
  if (host.empty()) return "";
  auto data = project + host;
  // A listing repeats few (project, host) pairs: each thread keeps the digests it made.
  thread_local std::unordered_map<std::string, std::string> known;
  if (auto it = known.find(data); it != known.end()) return it->second;
  if (known.size() > 4096) known.clear();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_sha224(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    hex += digits[out[i] >> 4];
    hex += digits[out[i] & 15];
  }
  known.emplace(std::move(data), hex);
  return hex;
}

json::array bookmark(const ComputeService& s, const std::string& collection,
                     const std::string& id) {
  return json::array{json::object{{"rel", "bookmark"},
                                  {"href", s.settings().public_url + "/" + collection + "/" + id}}};
}

// An IPv6 address in its canonical text (Nova stores what netaddr makes of it).
std::string ipv6_text(const std::string& address) {
  in6_addr a{};
  char out[INET6_ADDRSTRLEN];
  if (address.empty() || inet_pton(AF_INET6, address.c_str(), &a) != 1 ||
      !inet_ntop(AF_INET6, &a, out, sizeof out))
    return address;
  return out;
}

}  // namespace

json::object addresses_view(const json::object& row) {
  json::object out;
  auto* info = row.if_contains("network_info");
  if (!info || !info->is_array()) return out;
  for (auto& v : info->as_array()) {
    auto& vif = v.as_object();
    auto& list = out[string_or(vif, "network_name")];
    if (!list.is_array()) list = json::array{};
    auto* ips = vif.if_contains("ips");
    if (!ips || !ips->is_array()) continue;
    for (auto& ip : ips->as_array())
      list.as_array().push_back(
          json::object{{"version", int_or(ip.as_object(), "version", 4)},
                       {"addr", string_or(ip.as_object(), "address")},
                       {"OS-EXT-IPS:type", string_or(ip.as_object(), "type", "fixed")},
                       {"OS-EXT-IPS-MAC:mac_addr", string_or(vif, "mac")}});
  }
  return out;
}

json::object server_view(const ComputeService& s, Context& ctx, const json::object& row,
                         ServerView kind) {
  auto id = string_or(row, "id");
  auto vm = string_or(row, "vm_state"), task = string_or(row, "task_state");
  auto status = server_status(vm, task);
  json::object v{
      {"id", id},
      {"name", row.at("name")},
      {"status", status},
      {"tenant_id", row.at("project_id")},
      {"user_id", row.at("user_id")},
      {"metadata", row.at("metadata")},
      {"hostId", host_id(string_or(row, "project_id"), string_or(row, "host"))},
      {"created", zulu(row.at("created_at"))},
      {"updated", zulu(row.at("updated_at"))},
      {"addresses", addresses_view(row)},
      {"accessIPv4", string_or(row, "access_ip_v4")},
      {"accessIPv6", ipv6_text(string_or(row, "access_ip_v6"))},
      {"links", links(s, "servers", id)},
      {"OS-DCF:diskConfig",
       string_or(row, "disk_config").empty() ? "MANUAL" : string_or(row, "disk_config")}};
  auto image = string_or(row, "image_ref");
  if (image.empty())
    v["image"] = "";
  else
    v["image"] = json::object{{"id", image}, {"links", bookmark(s, "images", image)}};
  auto& flavor = row.at("flavor").as_object();
  if (at_least(ctx, 47)) {
    json::object f{{"vcpus", flavor.at("vcpus")},  {"ram", flavor.at("memory_mb")},
                   {"disk", flavor.at("root_gb")}, {"ephemeral", flavor.at("ephemeral_gb")},
                   {"swap", flavor.at("swap")},    {"original_name", flavor.at("name")}};
    if (ctx.allowed("os_compute_api:os-flavor-extra-specs:index",
                    {{"project_id", string_or(row, "project_id")}}))
      f["extra_specs"] = flavor.at("extra_specs");
    v["flavor"] = std::move(f);
  } else {
    auto fid = string_or(flavor, "id");
    v["flavor"] = json::object{{"id", fid}, {"links", bookmark(s, "flavors", fid)}};
  }
  static const std::set<std::string> progress_statuses{"ACTIVE", "BUILD",         "REBUILD",
                                                       "RESIZE", "VERIFY_RESIZE", "MIGRATING"};
  if (progress_statuses.count(status)) v["progress"] = status == "ACTIVE" ? 100 : 0;
  if ((status == "ERROR" || status == "DELETED") && row.contains("fault")) {
    auto& f = row.at("fault").as_object();
    json::object fault{{"code", f.at("code")},
                       {"created", zulu(f.at("created_at"))},
                       {"message", f.at("message")}};
    if (f.at("code").as_int64() != 500 || ctx.allowed("context_is_admin", {}))
      fault["details"] = string_or(f, "details");
    v["fault"] = std::move(fault);
  }
  if (at_least(ctx, 9)) v["locked"] = row.at("locked");
  if (at_least(ctx, 19)) v["description"] = row.at("description");
  if (at_least(ctx, 26)) v["tags"] = row.at("tags");
  if (at_least(ctx, 63)) v["trusted_image_certificates"] = nullptr;
  if (at_least(ctx, 73)) {
    auto* reason = row.if_contains("locked_reason");
    v["locked_reason"] = reason ? *reason : json::value(nullptr);
  }
  // Update and rebuild answered with the short view before 2.75.
  bool full = kind == ServerView::Show || kind == ServerView::Detail || at_least(ctx, 75);
  if (full) {
    Target target{{"project_id", string_or(row, "project_id")}};
    auto* key = row.if_contains("key_name");
    v["key_name"] = key ? *key : json::value(nullptr);
    auto* groups = row.if_contains("security_groups");
    if (groups && groups->is_array() && !groups->as_array().empty()) v["security_groups"] = *groups;
    auto* launched = row.if_contains("launched_at");
    v["OS-SRV-USG:launched_at"] =
        launched && launched->is_string() ? *launched : json::value(nullptr);
    auto* terminated = row.if_contains("terminated_at");
    v["OS-SRV-USG:terminated_at"] =
        terminated && terminated->is_string() ? *terminated : json::value(nullptr);
    v["OS-EXT-AZ:availability_zone"] = string_or(row, "availability_zone");
    auto* cd = row.if_contains("config_drive");
    v["config_drive"] = cd && cd->is_bool() && cd->as_bool() ? "True" : "";
    v["OS-EXT-STS:task_state"] = task.empty() ? json::value(nullptr) : json::value(task);
    v["OS-EXT-STS:vm_state"] = vm;
    v["OS-EXT-STS:power_state"] = row.at("power_state");
    v["os-extended-volumes:volumes_attached"] = json::array{};
    if (ctx.allowed("os_compute_api:os-extended-server-attributes", target)) {
      auto host = string_or(row, "host");
      v["OS-EXT-SRV-ATTR:host"] = host.empty() ? json::value(nullptr) : json::value(host);
      auto node = string_or(row, "node");
      v["OS-EXT-SRV-ATTR:hypervisor_hostname"] =
          node.empty() ? json::value(nullptr) : json::value(node);
      v["OS-EXT-SRV-ATTR:instance_name"] = instance_name(row);
      if (at_least(ctx, 3)) {
        v["OS-EXT-SRV-ATTR:reservation_id"] = row.at("reservation_id");
        v["OS-EXT-SRV-ATTR:launch_index"] = row.at("launch_index");
        auto kernel = string_or(row, "kernel_id"), ramdisk = string_or(row, "ramdisk_id");
        v["OS-EXT-SRV-ATTR:kernel_id"] = kernel;
        v["OS-EXT-SRV-ATTR:ramdisk_id"] = ramdisk;
        v["OS-EXT-SRV-ATTR:hostname"] = row.at("hostname");
        v["OS-EXT-SRV-ATTR:root_device_name"] = string_or(row, "root_device_name");
        auto ud = string_or(row, "user_data");
        if (kind != ServerView::Rebuild || !at_least(ctx, 57))
          v["OS-EXT-SRV-ATTR:user_data"] = ud.empty() ? json::value(nullptr) : json::value(ud);
      }
    } else if (at_least(ctx, 90)) {
      v["OS-EXT-SRV-ATTR:hostname"] = row.at("hostname");
    }
    if (at_least(ctx, 16) && ctx.allowed("os_compute_api:servers:show:host_status", target)) {
      auto host = string_or(row, "host");
      v["host_status"] = host.empty() ? "" : "UP";
    }
    if (at_least(ctx, 96))
      v["pinned_availability_zone"] =
          row.contains("availability_zone") ? row.at("availability_zone") : nullptr;
  }
  if (kind == ServerView::Rebuild && at_least(ctx, 57)) {
    auto ud = string_or(row, "user_data");
    v["user_data"] = ud.empty() ? json::value(nullptr) : json::value(ud);
  }
  if (kind == ServerView::Rebuild && at_least(ctx, 54) && !v.contains("key_name"))
    v["key_name"] = row.at("key_name");
  if ((kind == ServerView::Show || kind == ServerView::Update || kind == ServerView::Rebuild) &&
      at_least(ctx, 71)) {
    auto group = string_or(row, "group_id");
    v["server_groups"] = group.empty() ? json::array{} : json::array{json::value(group)};
  }
  return v;
}

namespace {

const json::value* field(const json::object& o, const char* key) { return o.if_contains(key); }

std::string string_field(const json::object& o, const char* key, size_t max = 255,
                         bool allow_empty = true) {
  auto* v = field(o, key);
  if (!v) return {};
  if (!v->is_string())
    throw BadRequest(invalid(key, *v, json::serialize(*v) + " is not of type 'string'"));
  if (v->as_string().size() > max)
    throw BadRequest(invalid(key, *v, json::serialize(*v) + " is too long"));
  if (!allow_empty && v->as_string().empty())
    throw BadRequest(invalid(key, *v, json::serialize(*v) + " is too short"));
  return std::string(v->as_string());
}

long count_field(const json::object& o, const char* key) {
  auto* v = field(o, key);
  if (!v) return 1;
  long n = 0;
  if (v->is_int64()) {
    n = static_cast<long>(v->as_int64());
  } else if (v->is_string() && !v->as_string().empty() &&
             std::all_of(v->as_string().begin(), v->as_string().end(),
                         [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
             v->as_string().size() < 10) {
    n = std::stol(std::string(v->as_string()));
  } else {
    throw BadRequest(invalid(key, *v, json::serialize(*v) + " is not of type 'integer', 'string'"));
  }
  if (n < 1)
    throw BadRequest(invalid(key, *v, json::serialize(*v) + " is less than the minimum of 1"));
  return n;
}

bool valid_base64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '=') {
      if (i < s.size() - 2) return false;
      ++pad;
    } else if (pad || !(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) {
      return false;
    }
  }
  return true;
}

bool valid_ipv4(const std::string& s) {
  static const std::regex re(
      R"(^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$)");
  return std::regex_match(s, re);
}

bool valid_ipv6(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
    return false;
  auto colons = std::count(s.begin(), s.end(), ':');
  return colons >= 2 && colons <= 7 && s.find(":::") == std::string::npos;
}

std::vector<std::string> tag_list(const json::value& v, const char* key) {
  if (!v.is_array())
    throw BadRequest(invalid(key, v, json::serialize(v) + " is not of type 'array'"));
  if (v.as_array().size() > 50)
    throw BadRequest(invalid(key, v, json::serialize(v) + " is too long"));
  std::vector<std::string> out;
  for (auto& t : v.as_array()) {
    if (!t.is_string() || t.as_string().empty() || t.as_string().size() > 60 ||
        std::string_view(t.as_string()).find_first_of("/,") != std::string_view::npos)
      throw BadRequest(invalid(key, t, json::serialize(t) + " does not match '^[^,/]*$'"));
    out.emplace_back(t.as_string());
  }
  return out;
}

ServerRequest parse_create(Context& ctx) {
  auto body = ctx.body();
  auto server = member(ctx, "server");
  std::set<std::string> allowed{"name",
                                "imageRef",
                                "flavorRef",
                                "adminPass",
                                "metadata",
                                "networks",
                                "OS-DCF:diskConfig",
                                "accessIPv4",
                                "accessIPv6",
                                "personality",
                                "key_name",
                                "availability_zone",
                                "block_device_mapping",
                                "block_device_mapping_v2",
                                "config_drive",
                                "min_count",
                                "max_count",
                                "return_reservation_id",
                                "security_groups",
                                "user_data"};
  if (at_least(ctx, 19)) allowed.insert("description");
  if (at_least(ctx, 52)) allowed.insert("tags");
  if (at_least(ctx, 63)) allowed.insert("trusted_image_certificates");
  if (at_least(ctx, 74)) allowed.insert({"host", "hypervisor_hostname"});
  if (at_least(ctx, 90)) allowed.insert("hostname");
  if (at_least(ctx, 57)) allowed.erase("personality");
  for (auto& kv : server)
    if (!allowed.count(std::string(kv.key()))) throw BadRequest(unexpected("server", kv.key()));
  ServerRequest r;
  auto* name = field(server, "name");
  if (!name)
    throw BadRequest("Invalid input for field/attribute server. 'name' is a required property");
  r.name = checked_name(*name, "name");
  auto* flavor = field(server, "flavorRef");
  if (!flavor)
    throw BadRequest(
        "Invalid input for field/attribute server. 'flavorRef' is a required property");
  if (flavor->is_int64())
    r.flavor_ref = std::to_string(flavor->as_int64());
  else if (flavor->is_string() && !flavor->as_string().empty())
    r.flavor_ref = std::string(flavor->as_string());
  else
    throw BadRequest(invalid("flavorRef", *flavor,
                             json::serialize(*flavor) + " is not of type 'string', 'integer'"));
  // A bookmark link is accepted for flavorRef and imageRef, as Nova does: its last segment.
  if (auto slash = r.flavor_ref.rfind('/'); slash != std::string::npos)
    r.flavor_ref = r.flavor_ref.substr(slash + 1);
  if (auto* image = field(server, "imageRef")) {
    if (!image->is_string())
      throw BadRequest(
          invalid("imageRef", *image, json::serialize(*image) + " is not of type 'string'"));
    r.image_ref = std::string(image->as_string());
    if (auto slash = r.image_ref.rfind('/'); slash != std::string::npos)
      r.image_ref = r.image_ref.substr(slash + 1);
    static const std::regex uuid(
        R"(^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$)");
    if (!r.image_ref.empty() && !std::regex_match(r.image_ref, uuid))
      throw BadRequest("Invalid imageRef provided.");
  }
  if (auto* meta = field(server, "metadata")) r.metadata = metadata_field(*meta, "metadata");
  r.key_name = string_field(server, "key_name", 255, false);
  r.availability_zone = string_field(server, "availability_zone", 255, false);
  r.admin_pass = string_field(server, "adminPass", 255);
  if (auto* ud = field(server, "user_data")) {
    if (!ud->is_null()) {
      if (!ud->is_string() || ud->as_string().size() > 65535 || !valid_base64(ud->as_string()))
        throw BadRequest(invalid("user_data", *ud, json::serialize(*ud) + " is not a 'base64'"));
      r.user_data = std::string(ud->as_string());
    }
  }
  if (auto* ip = field(server, "accessIPv4")) {
    if (!ip->is_string() || !valid_ipv4(std::string(ip->as_string())))
      throw BadRequest(invalid("accessIPv4", *ip, json::serialize(*ip) + " is not a 'ipv4'"));
    r.access_ip_v4 = std::string(ip->as_string());
  }
  if (auto* ip = field(server, "accessIPv6")) {
    if (!ip->is_string() || !valid_ipv6(std::string(ip->as_string())))
      throw BadRequest(invalid("accessIPv6", *ip, json::serialize(*ip) + " is not a 'ipv6'"));
    r.access_ip_v6 = std::string(ip->as_string());
  }
  if (auto* dc = field(server, "OS-DCF:diskConfig")) {
    if (!dc->is_string() || (dc->as_string() != "AUTO" && dc->as_string() != "MANUAL"))
      throw BadRequest(invalid("OS-DCF:diskConfig", *dc,
                               json::serialize(*dc) + " is not one of ['AUTO', 'MANUAL']"));
    r.disk_config = std::string(dc->as_string());
  }
  if (auto* cd = field(server, "config_drive")) {
    auto b = nova_boolean(*cd);
    if (!b && !cd->is_null() && !(cd->is_string() && cd->as_string().empty()))
      throw BadRequest(
          invalid("config_drive", *cd,
                  json::serialize(*cd) + " is not of type 'boolean', 'string', 'null'"));
    r.config_drive = b.value_or(false);
  }
  r.min_count = count_field(server, "min_count");
  r.max_count = field(server, "max_count") ? count_field(server, "max_count") : r.min_count;
  if (r.min_count > r.max_count) throw BadRequest("min_count must be <= max_count");
  if (auto* d = field(server, "description")) {
    if (!d->is_null()) {
      if (!d->is_string() || d->as_string().size() > 255)
        throw BadRequest(
            invalid("description", *d, json::serialize(*d) + " is not of type 'string', 'null'"));
      r.description = std::string(d->as_string());
    }
  }
  if (auto* t = field(server, "tags")) r.tags = tag_list(*t, "tags");
  if (auto* h = field(server, "hostname")) r.hostname = checked_name(*h, "hostname");
  if (auto* sg = field(server, "security_groups")) {
    if (!sg->is_array())
      throw BadRequest(
          invalid("security_groups", *sg, json::serialize(*sg) + " is not of type 'array'"));
    for (auto& g : sg->as_array()) {
      if (!g.is_object() || !g.as_object().contains("name") ||
          !g.as_object().at("name").is_string())
        throw BadRequest(invalid("security_groups", g, "'name' is a required property"));
      r.security_groups.emplace_back(g.as_object().at("name").as_string());
    }
  }
  if (r.security_groups.empty()) r.security_groups.push_back("default");
  if (auto* nets = field(server, "networks")) {
    if (nets->is_string()) {
      if (nets->as_string() != "auto" && nets->as_string() != "none")
        throw BadRequest(
            invalid("networks", *nets, json::serialize(*nets) + " is not one of ['none', 'auto']"));
    } else if (nets->is_array()) {
      for (auto& n : nets->as_array()) {
        if (!n.is_object())
          throw BadRequest(invalid("networks", n, json::serialize(n) + " is not of type 'object'"));
      }
    } else {
      throw BadRequest(
          invalid("networks", *nets, json::serialize(*nets) + " is not of type 'array', 'string'"));
    }
    r.networks = *nets;
  }
  for (auto* key : {"block_device_mapping_v2", "block_device_mapping"})
    if (auto* bdm = field(server, key)) {
      if (!bdm->is_array())
        throw BadRequest(invalid(key, *bdm, json::serialize(*bdm) + " is not of type 'array'"));
      for (auto& b : bdm->as_array()) {
        if (!b.is_object())
          throw BadRequest(invalid(key, b, json::serialize(b) + " is not of type 'object'"));
        auto& o = b.as_object();
        auto source = string_or(o, "source_type"), dest = string_or(o, "destination_type");
        // Volumes come with the block storage issue; image-backed local disks are what exists.
        if (source == "volume" || source == "snapshot" || dest == "volume")
          throw BadRequest(
              "Block Device Mapping is Invalid: volumes are not available in this cloud yet.");
        if (source == "image" && r.image_ref.empty()) r.image_ref = string_or(o, "uuid");
      }
      r.block_devices = bdm->as_array();
    }
  for (auto* key : {"os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"})
    if (auto* hints = body.if_contains(key)) {
      if (!hints->is_object())
        throw BadRequest(
            invalid(key, *hints, json::serialize(*hints) + " is not of type 'object'"));
      r.scheduler_hints = hints->as_object();
      if (auto* g = r.scheduler_hints.if_contains("group"); g && !g->is_string())
        throw BadRequest(invalid("group", *g, json::serialize(*g) + " is not of type 'string'"));
    }
  return r;
}

// Nova's list filters: which a project member may use (others are dropped, as Nova does), and
// which need an admin.
const std::set<std::string>& user_filters(const Context& ctx) {
  static const std::set<std::string> base{"reservation_id", "name",        "status",
                                          "image",          "flavor",      "ip",
                                          "changes-since",  "all_tenants", "ip6"};
  static std::set<std::string> v226 = [] {
    auto s = base;
    s.insert({"tags", "tags-any", "not-tags", "not-tags-any"});
    return s;
  }();
  static std::set<std::string> v266 = [] {
    auto s = v226;
    s.insert("changes-before");
    return s;
  }();
  static std::set<std::string> v273 = [] {
    auto s = v266;
    s.insert("locked");
    return s;
  }();
  static std::set<std::string> v283 = [] {
    auto s = v273;
    s.insert({"availability_zone", "config_drive", "key_name", "created_at", "launched_at",
              "terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id"});
    return s;
  }();
  if (at_least(ctx, 83)) return v283;
  if (at_least(ctx, 73)) return v273;
  if (at_least(ctx, 66)) return v266;
  if (at_least(ctx, 26)) return v226;
  return base;
}

ServerQuery parse_query(ComputeService& s, Context& ctx, bool detail) {
  ServerQuery q;
  bool admin = ctx.allowed("os_compute_api:servers:allow_all_filters",
                           {{"project_id", ctx.auth->project_id}});
  auto& users = user_filters(ctx);
  std::vector<std::string> sort_keys, sort_dirs;
  for (auto& [key, value] : ctx.request.query) {
    if (key == "limit" || key == "marker" || key == "sort_key" || key == "sort_dir") continue;
    if (!admin && !users.count(key)) continue;
    q.filters[key] = value;
  }
  for (auto& [key, value] : ctx.request.query) {
    if (key == "sort_key") sort_keys.push_back(value);
    if (key == "sort_dir") sort_dirs.push_back(value);
  }
  // Another project's id asks for all projects (and their policy), as in Nova.
  if (auto it = q.filters.find("tenant_id"); it != q.filters.end()) {
    if (!q.filters.count("all_tenants") && it->second != ctx.auth->project_id)
      q.filters["all_tenants"] = "1";
    q.filters["project_id"] = it->second;
    q.filters.erase("tenant_id");
  }
  if (q.filters.count("all_tenants")) {
    auto all = q.filters["all_tenants"];
    auto b = all.empty() ? std::optional<bool>(true) : nova_boolean(json::value(all));
    if (!b)
      throw BadRequest("Invalid input for query parameters all_tenants. Value: " + all + ". '" +
                       all + "' is not a 'boolean'");
    q.filters.erase("all_tenants");
    if (*b) {
      ctx.authorize(detail ? "os_compute_api:servers:detail:get_all_tenants"
                           : "os_compute_api:servers:index:get_all_tenants",
                    {{"project_id", ctx.auth->project_id}});
      q.all_projects = true;
    }
  }
  for (auto* key : {"changes-since", "changes-before"})
    if (auto it = q.filters.find(key); it != q.filters.end()) {
      auto t = parse_iso8601(it->second);
      if (!t)
        throw BadRequest("Invalid input for query parameters " + std::string(key) +
                         ". Value: " + it->second + ". '" + it->second + "' is not a 'date-time'");
      it->second = iso8601(*t, true, false);
    }
  if (q.filters.count("changes-since") && q.filters.count("changes-before") &&
      q.filters["changes-before"] < q.filters["changes-since"])
    throw BadRequest("The value of changes-since must be less than or equal to changes-before.");
  for (auto* key : {"deleted", "locked"})
    if (auto it = q.filters.find(key); it != q.filters.end()) {
      auto b = nova_boolean(json::value(it->second));
      if (!b) {
        if (std::string(key) == "locked")
          throw BadRequest("Invalid input for query parameters locked. Value: " + it->second +
                           ". '" + it->second + "' is not a 'boolean'");
        q.filters.erase(it);  // Nova ignores a deleted value it cannot read
        continue;
      }
      it->second = *b ? "true" : "false";
    }
  if (auto it = q.filters.find("deleted"); it != q.filters.end() && !admin) q.filters.erase(it);
  if (auto it = q.filters.find("image"); it != q.filters.end())
    if (auto slash = it->second.rfind('/'); slash != std::string::npos)
      it->second = it->second.substr(slash + 1);
  if (auto it = q.filters.find("flavor"); it != q.filters.end())
    if (auto slash = it->second.rfind('/'); slash != std::string::npos)
      it->second = it->second.substr(slash + 1);
  for (size_t i = 0; i < sort_keys.size(); ++i) {
    auto dir = i < sort_dirs.size() ? sort_dirs[i] : "desc";
    if (dir != "asc" && dir != "desc")
      throw BadRequest("Invalid input for query parameters sort_dir. Value: " + dir + ". '" + dir +
                       "' is not one of ['asc', 'desc']");
    // Admin-only keys are ignored for others, as Nova does.
    static const std::set<std::string> admin_keys{"host", "node"};
    if (!admin && admin_keys.count(sort_keys[i])) continue;
    q.sort.emplace_back(sort_keys[i], dir == "desc");
  }
  if (sort_keys.empty() && !sort_dirs.empty()) {
    // sort_dir without sort_key: Nova orders by created_at in that direction.
    if (sort_dirs[0] != "asc" && sort_dirs[0] != "desc")
      throw BadRequest("Invalid input for query parameters sort_dir. Value: " + sort_dirs[0] + ".");
    q.sort.emplace_back("created_at", sort_dirs[0] == "desc");
  }
  auto limit = count_param(ctx, "limit");
  q.limit = std::min<long>(limit.value_or(1000), 1000);
  q.marker = ctx.request.query_param("marker").value_or("");
  (void)s;
  return q;
}

http::Response server_list(ComputeService& s, Context& ctx, bool detail) {
  ctx.authorize(detail ? "os_compute_api:servers:detail" : "os_compute_api:servers:index",
                {{"project_id", ctx.auth->project_id}});
  auto q = parse_query(s, ctx, detail);
  auto rows = s.list_servers(caller(ctx), q);
  json::array items;
  for (auto& row : rows) {
    if (detail) {
      items.push_back(server_view(s, ctx, row, ServerView::Detail));
    } else {
      auto id = string_or(row, "id");
      items.push_back(
          json::object{{"id", id}, {"name", row.at("name")}, {"links", links(s, "servers", id)}});
    }
  }
  json::object out{{"servers", std::move(items)}};
  if (q.limit && !rows.empty() && static_cast<long>(rows.size()) >= *q.limit)
    out["servers_links"] =
        next_links(s, ctx, detail ? "servers/detail" : "servers", string_or(rows.back(), "id"));
  return json_response(200, out);
}

}  // namespace

std::map<std::string, std::string> metadata_field(const json::value& v, const char* key) {
  if (!v.is_object())
    throw BadRequest(invalid(key, v, json::serialize(v) + " is not of type 'object'"));
  std::map<std::string, std::string> out;
  for (auto& kv : v.as_object()) {
    if (kv.key().empty() || kv.key().size() > 255)
      throw BadRequest(invalid(key, v,
                               "Additional properties are not allowed ('" + std::string(kv.key()) +
                                   "' was unexpected)"));
    if (!kv.value().is_string() || kv.value().as_string().size() > 255)
      throw BadRequest(invalid(key + std::string("/") + std::string(kv.key()), kv.value(),
                               json::serialize(kv.value()) + " is not of type 'string'"));
    out[std::string(kv.key())] = std::string(kv.value().as_string());
  }
  return out;
}

void add_server_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(
      Route{"POST", "/v2.1/servers", [&s](Context& ctx) {
              auto r = parse_create(ctx);
              bool reservation = false;
              if (auto* rr = member(ctx, "server").if_contains("return_reservation_id")) {
                auto b = nova_boolean(*rr);
                if (!b)
                  throw BadRequest(invalid("return_reservation_id", *rr,
                                           json::serialize(*rr) + " is not of type 'boolean'"));
                reservation = *b;
              }
              if (r.admin_pass.empty()) r.admin_pass = uuid4_hex().substr(0, 12);
              auto c = caller(ctx);
              auto rows = s.create_servers(c, r);
              if (reservation)
                return json_response(
                    202, json::object{{"reservation_id", rows.front().at("reservation_id")}});
              auto id = string_or(rows.front(), "id");
              json::object server{{"id", id},
                                  {"links", links(s, "servers", id)},
                                  {"OS-DCF:diskConfig", r.disk_config},
                                  {"adminPass", r.admin_pass}};
              json::array groups;
              for (auto& g : r.security_groups) groups.push_back(json::object{{"name", g}});
              server["security_groups"] = std::move(groups);
              auto resp = json_response(202, json::object{{"server", std::move(server)}});
              resp.headers.set("Location", s.settings().public_url + "/v2.1/servers/" + id);
              return resp;
            }});
  routes.push_back(
      Route{"GET", "/v2.1/servers", [&s](Context& ctx) { return server_list(s, ctx, false); }});
  routes.push_back(Route{"GET", "/v2.1/servers/detail",
                         [&s](Context& ctx) { return server_list(s, ctx, true); }});
  // What clients poll while they wait for a server: answered on the I/O thread when the
  // database can answer at once (the hop to the worker pool and back was a third of its cost).
  auto show = [&s](Context& ctx, const json::object& row) {
    return json_response(200, json::object{{"server", server_view(s, ctx, row, ServerView::Show)}});
  };
  Route show_route{"GET", "/v2.1/servers/{id}", [&s, show](Context& ctx) {
                     return show(ctx, s.show_server(caller(ctx), ctx.param("id")));
                   }};
  show_route.fast = [&s, show](Context& ctx) -> std::optional<http::Response> {
    auto row = s.show_server_now(caller(ctx), ctx.param("id"));
    if (!row) return std::nullopt;
    return show(ctx, *row);
  };
  routes.push_back(std::move(show_route));
  routes.push_back(Route{
      "PUT", "/v2.1/servers/{id}", [&s](Context& ctx) {
        auto body = member(ctx, "server");
        json::object fields;
        for (auto& kv : body) {
          std::string key(kv.key());
          auto& v = kv.value();
          if (key == "name") {
            fields["name"] = checked_name(v, "name");
          } else if (key == "description" && at_least(ctx, 19)) {
            if (!v.is_null() && (!v.is_string() || v.as_string().size() > 255))
              throw BadRequest(invalid("description", v,
                                       json::serialize(v) + " is not of type 'string', 'null'"));
            fields["description"] = v;
          } else if (key == "accessIPv4") {
            if (!v.is_string() || !valid_ipv4(std::string(v.as_string())))
              throw BadRequest(invalid("accessIPv4", v, json::serialize(v) + " is not a 'ipv4'"));
            fields["access_ip_v4"] = v;
          } else if (key == "accessIPv6") {
            if (!v.is_string() || !valid_ipv6(std::string(v.as_string())))
              throw BadRequest(invalid("accessIPv6", v, json::serialize(v) + " is not a 'ipv6'"));
            fields["access_ip_v6"] = v;
          } else if (key == "OS-DCF:diskConfig") {
            if (!v.is_string() || (v.as_string() != "AUTO" && v.as_string() != "MANUAL"))
              throw BadRequest(invalid("OS-DCF:diskConfig", v,
                                       json::serialize(v) + " is not one of ['AUTO', 'MANUAL']"));
            fields["disk_config"] = v;
          } else if (key == "hostname" && at_least(ctx, 90)) {
            fields["hostname"] = checked_name(v, "hostname");
          } else {
            throw BadRequest(unexpected("server", key));
          }
        }
        auto row = s.update_server(caller(ctx), ctx.param("id"), fields);
        return json_response(
            200, json::object{{"server", server_view(s, ctx, row, ServerView::Update)}});
      }});
  routes.push_back(Route{"DELETE", "/v2.1/servers/{id}", [&s](Context& ctx) {
                           s.delete_server(caller(ctx), ctx.param("id"), false);
                           http::Response r;
                           r.status = 204;
                           return r;
                         }});
  add_server_action_routes(routes, s);
  add_console_routes(routes, s);
  add_server_detail_routes(routes, s);
  add_server_extra_routes(routes, s);
}

}  // namespace nubo::compute::api
