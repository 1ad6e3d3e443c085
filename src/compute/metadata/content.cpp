#include "compute/metadata/content.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "common/ids.hpp"

namespace nubo::compute::metadata {

namespace {

// The OpenStack versions that added files: password (Grizzly), vendor_data.json (Havana),
// network_data.json (Liberty), vendor_data2.json (Newton).
constexpr const char* kGrizzly = "2013-04-04";
constexpr const char* kHavana = "2013-10-17";
constexpr const char* kLiberty = "2015-10-15";
constexpr const char* kNewtonOne = "2016-06-30";
constexpr const char* kNewton = "2016-10-06";
constexpr const char* kVictoria = "2020-10-14";

// The version a request names, with "latest" as the newest; nullopt when unknown.
std::optional<std::string> resolve(const std::vector<std::string>& known, const std::string& v) {
  if (v == "latest") return known.back();
  if (std::find(known.begin(), known.end(), v) != known.end()) return v;
  return std::nullopt;
}

// "instance-0000002a" → "i-0000002a", as EC2 ids read.
std::string ec2_instance_id(const InstanceSpec& i) {
  auto dash = i.name.rfind('-');
  return "i-" + (dash == std::string::npos ? i.name : i.name.substr(dash + 1));
}

// Nova keeps a table of EC2 image ids; an id made from the image's uuid is as stable.
std::string ec2_image_id(const std::string& image_ref) {
  std::string hex;
  for (char c : image_ref)
    if (std::isxdigit(static_cast<unsigned char>(c)) && hex.size() < 8) hex += c;
  return "ami-" + hex;
}

// Nova's listing of a tree node: keys sorted, a subtree as "key/" (or its "_name"), lists one
// item per line.
std::string print(const json::value& v) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (auto& kv : v.as_object())
      if (kv.key() != "_name") keys.emplace_back(kv.key());
    std::sort(keys.begin(), keys.end());
    std::string out;
    for (auto& k : keys) {
      auto& child = v.as_object().at(k);
      if (child.is_object())
        out += child.as_object().contains("_name")
                   ? std::string(child.as_object().at("_name").as_string())
                   : k + "/";
      else
        out += k;
      out += '\n';
    }
    if (!out.empty()) out.pop_back();
    return out;
  }
  if (v.is_array()) {
    std::string out;
    for (auto& item : v.as_array()) out += (out.empty() ? "" : "\n") + print(item);
    return out;
  }
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

// The path's segments with "." and ".." resolved, as Nova normalizes it.
std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    auto part = path.substr(i, j - i);
    if (part == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!part.empty() && part != ".") {
      out.push_back(std::move(part));
    }
    i = j + 1;
  }
  return out;
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (auto& i : items) out += (out.empty() ? "" : "\n") + i;
  return out;
}

Answer text(std::string body) { return Answer{"text/plain; charset=UTF-8", std::move(body)}; }
Answer json_answer(const json::value& v) { return Answer{"application/json", json::serialize(v)}; }

json::object network_data(const InstanceSpec& instance) {
  // Nova's network_data.json: a link per NIC (its tap and MAC), its networks (DHCP for IPv4 on
  // a subnet, as the guests here configure them) and the DNS services none are given here.
  json::array links, networks;
  int n = 0;
  for (auto& v : instance.vifs) {
    auto& vif = v.as_object();
    auto link = string_or(vif, "devname");
    links.push_back(json::object{{"id", link},
                                 {"vif_id", string_or(vif, "port_id")},
                                 {"type", "bridge"},
                                 {"mtu", int_or(vif, "mtu", 1500)},
                                 {"ethernet_mac_address", string_or(vif, "mac")}});
    if (auto* ips = vif.if_contains("ips"); ips && ips->is_array())
      for (auto& ip : ips->as_array()) {
        auto& o = ip.as_object();
        if (string_or(o, "type") != "fixed") continue;
        networks.push_back(
            json::object{{"id", "network" + std::to_string(n++)},
                         {"type", int_or(o, "version", 4) == 6 ? "ipv6_dhcp" : "ipv4_dhcp"},
                         {"link", link},
                         {"network_id", string_or(vif, "network_id")}});
      }
  }
  return json::object{
      {"links", std::move(links)}, {"networks", std::move(networks)}, {"services", json::array{}}};
}

std::optional<Answer> lookup_openstack(const InstanceSpec& instance,
                                       const std::vector<std::string>& parts,
                                       const std::string& password) {
  if (parts.size() == 1) {
    auto v = openstack_versions();
    v.push_back("latest");
    return text(lines(v));
  }
  auto version = resolve(openstack_versions(), parts[1]);
  if (!version) return std::nullopt;
  auto ud = user_data(instance);
  if (parts.size() == 2) {
    std::vector<std::string> files{"meta_data.json"};
    if (!ud.empty()) files.push_back("user_data");
    if (*version >= kGrizzly) files.push_back("password");
    if (*version >= kHavana) files.push_back("vendor_data.json");
    if (*version >= kLiberty) files.push_back("network_data.json");
    if (*version >= kNewton) files.push_back("vendor_data2.json");
    return text(lines(files));
  }
  if (parts.size() != 3) return std::nullopt;
  auto& file = parts[2];
  if (file == "meta_data.json") {
    auto meta = openstack_meta_data(instance, false);
    if (*version < kGrizzly) meta.erase("random_seed");
    if (*version < kLiberty) meta.erase("project_id");
    if (*version < kNewtonOne) meta.erase("devices");
    if (*version < kVictoria) meta.erase("dedicated_cpus");
    return json_answer(meta);
  }
  if (file == "user_data" && !ud.empty()) return Answer{"application/octet-stream", ud};
  if (file == "password" && *version >= kGrizzly) return text(password);
  if ((file == "vendor_data.json" && *version >= kHavana) ||
      (file == "vendor_data2.json" && *version >= kNewton))
    return json_answer(json::object{});
  if (file == "network_data.json" && *version >= kLiberty)
    return json_answer(network_data(instance));
  return std::nullopt;
}

std::optional<Answer> lookup_ec2(const InstanceSpec& instance,
                                 const std::vector<std::string>& parts) {
  auto version = resolve(ec2_versions(), parts[0]);
  if (!version) return std::nullopt;
  json::value node = ec2_tree(instance);
  auto& meta = node.as_object()["meta-data"].as_object();
  // Entries the older versions did not have.
  if (*version < "2007-01-19")
    for (auto* k : {"local-hostname", "public-hostname", "public-ipv4"}) meta.erase(k);
  if (*version < "2007-08-29") meta.erase("instance-type");
  if (*version < "2007-12-15") meta.erase("block-device-mapping");
  if (*version < "2008-09-01") meta.erase("instance-action");
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (!node.is_object()) return std::nullopt;
    auto* child = node.as_object().if_contains(parts[i]);
    if (!child) return std::nullopt;
    json::value next = *child;
    node = std::move(next);
  }
  if (parts.size() >= 2 && parts[1] == "user-data")
    return Answer{"application/octet-stream", std::string(node.as_string())};
  return text(print(node));
}

}  // namespace

const std::vector<std::string>& openstack_versions() {
  static const std::vector<std::string> v{"2012-08-10", "2013-04-04", "2013-10-17",
                                          "2015-10-15", "2016-06-30", "2016-10-06",
                                          "2017-02-22", "2018-08-27", "2020-10-14"};
  return v;
}

const std::vector<std::string>& ec2_versions() {
  static const std::vector<std::string> v{"1.0",        "2007-01-19", "2007-03-01",
                                          "2007-08-29", "2007-10-10", "2007-12-15",
                                          "2008-02-01", "2008-09-01", "2009-04-04"};
  return v;
}

std::string user_data(const InstanceSpec& instance) {
  if (instance.user_data.empty()) return {};
  std::string text;
  for (char ch : instance.user_data) {
    if (ch == '+')
      text += '-';
    else if (ch == '/')
      text += '_';
    else if (ch != '=' && ch != '\n' && ch != '\r')
      text += ch;
  }
  return base64url_decode(text).value_or(instance.user_data);
}

json::object openstack_meta_data(const InstanceSpec& instance, bool with_admin_pass) {
  json::object meta{{"uuid", instance.uuid},
                    {"name", instance.display_name},
                    {"hostname", instance.hostname},
                    {"launch_index", instance.launch_index},
                    {"availability_zone", instance.availability_zone},
                    {"project_id", instance.project_id},
                    {"random_seed", base64_encode(random_bytes(512))},
                    {"devices", json::array{}},
                    {"dedicated_cpus", json::array{}}};
  json::object items;
  for (auto& [k, v] : instance.metadata) items[k] = v;
  meta["meta"] = std::move(items);
  if (!instance.key_data.empty()) {
    auto key_name = instance.key_name.empty() ? std::string("key") : instance.key_name;
    meta["public_keys"] = json::object{{key_name, instance.key_data}};
    meta["keys"] =
        json::array{json::object{{"name", key_name}, {"type", "ssh"}, {"data", instance.key_data}}};
  }
  if (with_admin_pass && !instance.admin_password.empty())
    meta["admin_pass"] = instance.admin_password;
  return meta;
}

json::object ec2_tree(const InstanceSpec& instance) {
  json::object meta{{"ami-id", ec2_image_id(instance.image_ref)},
                    {"ami-launch-index", instance.launch_index},
                    {"ami-manifest-path", "FIXME"},
                    {"block-device-mapping", json::object{{"ami", "vda"}, {"root", "/dev/vda"}}},
                    {"hostname", instance.hostname},
                    {"instance-action", "none"},
                    {"instance-id", ec2_instance_id(instance)},
                    {"instance-type", instance.flavor_name},
                    {"local-hostname", instance.hostname},
                    {"local-ipv4", ""},
                    {"public-hostname", instance.hostname},
                    {"public-ipv4", ""},
                    {"reservation-id", instance.reservation_id},
                    {"security-groups", json::array{"default"}},
                    {"placement", json::object{{"availability-zone", instance.availability_zone}}}};
  if (!instance.key_data.empty()) {
    auto key_name = instance.key_name.empty() ? std::string("key") : instance.key_name;
    meta["public-keys"] = json::object{
        {"0", json::object{{"_name", "0=" + key_name}, {"openssh-key", instance.key_data}}}};
  }
  json::object tree{{"meta-data", std::move(meta)}};
  if (auto ud = user_data(instance); !ud.empty()) tree["user-data"] = ud;
  return tree;
}

std::map<std::string, std::string> config_drive_files(const InstanceSpec& instance) {
  std::map<std::string, std::string> files;
  auto latest = "openstack/latest/";
  files[std::string(latest) + "meta_data.json"] =
      json::serialize(openstack_meta_data(instance, true));
  files[std::string(latest) + "network_data.json"] = json::serialize(network_data(instance));
  files[std::string(latest) + "vendor_data.json"] = "{}";
  files[std::string(latest) + "vendor_data2.json"] = "{}";
  auto tree = ec2_tree(instance);
  files["ec2/latest/meta-data.json"] = json::serialize(tree.at("meta-data"));
  if (auto ud = user_data(instance); !ud.empty()) {
    files[std::string(latest) + "user_data"] = ud;
    files["ec2/latest/user-data"] = ud;
  }
  return files;
}

std::optional<Answer> lookup(const InstanceSpec& instance, const std::string& path,
                             const std::string& password) {
  auto parts = split(path);
  if (parts.empty()) {
    auto v = ec2_versions();
    v.push_back("latest");
    return text(lines(v));
  }
  if (parts[0] == "openstack") return lookup_openstack(instance, parts, password);
  // EC2's tree also answers under /ec2, as Nova's does.
  if (parts[0] == "ec2") {
    parts.erase(parts.begin());
    if (parts.empty()) return lookup(instance, "", password);
  }
  return lookup_ec2(instance, parts);
}

std::string sign(const std::string& secret, const std::string& instance_id) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(instance_id.data()), instance_id.size(), mac, &len);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace nubo::compute::metadata
