#include "object/setup.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "object/proxy/tempauth.hpp"
#include "object/ring/ring.hpp"

namespace nubo::object {

namespace fs = std::filesystem;

namespace {
std::string rings_dir(const Config& c, const std::string& state_dir) {
  return c.get_string("object", "rings", state_dir + "/object/rings");
}
std::vector<std::string> device_names(const Config& c) {
  return c.get_list("object_server", "device_names", {"d1"});
}
}  // namespace

ProxySettings proxy_settings_from_config(const Config& c, const std::string& state_dir,
                                         const std::string& hash_suffix) {
  ProxySettings s;
  s.rings = rings_dir(c, state_dir);
  s.hash_prefix = c.get_string("object", "hash_path_prefix", "");
  s.hash_suffix = c.get_string("object", "hash_path_suffix", hash_suffix);
  s.reseller_prefix = c.get_string("object", "reseller_prefix", "AUTH") + "_";
  s.operator_roles =
      c.get_list("object", "operator_roles", {"admin", "member", "swiftoperator"});
  s.cors_allow_origin = c.get_list("object", "cors_allow_origin", {});
  s.reseller_admin_role = c.get_string("object", "reseller_admin_role", "ResellerAdmin");
  s.node_timeout = std::chrono::milliseconds(c.get_int("object", "node_timeout_ms", 10000));
  auto strategy = c.get_string("object", "auth_strategy", "keystone");
  if (strategy == "tempauth") {
    s.tempauth = std::make_shared<TempAuth>(
        tempauth_settings_from_config(c, "tempauth:" + s.hash_prefix + s.hash_suffix));
    s.operator_roles = {".admin"};
    s.reseller_admin_role = ".reseller_admin";
  } else if (strategy != "keystone") {
    throw std::runtime_error("[object] auth_strategy: keystone or tempauth, not " + strategy);
  }
  return s;
}

StorageSettings storage_settings_from_config(const Config& c, const std::string& state_dir,
                                             const std::string& hash_suffix) {
  StorageSettings s;
  s.devices = c.get_string("object_server", "devices", state_dir + "/object/devices");
  s.hash_prefix = c.get_string("object", "hash_path_prefix", "");
  s.hash_suffix = c.get_string("object", "hash_path_suffix", hash_suffix);
  s.rings = rings_dir(c, state_dir);
  s.ip =
      c.get_string("object_server", "bind_host", c.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  s.port = static_cast<int>(c.get_int("object_server", "port", 6200));
  s.reclaim_age = std::chrono::seconds(c.get_int("object_server", "reclaim_age", 604800));
  auto seconds = [&](const char* key, double fallback) {
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(c.get_double("object_server", key, fallback) * 1000));
  };
  s.replicator_interval = seconds("replicator_interval", 30);
  s.updater_interval = seconds("updater_interval", 30);
  s.auditor_interval = seconds("auditor_interval", 30);
  s.auditor_files_per_second = c.get_double("object_server", "auditor_files_per_second", 20);
  s.replication_timeout = seconds("replication_timeout", 10);
  s.account_update_interval = seconds("account_update_interval", 1);
  s.expirer_interval = seconds("expirer_interval", 10);
  return s;
}

std::string public_url(const Config& c) {
  auto host =
      c.get_string("object", "bind_host", c.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  if (host == "0.0.0.0") host = "127.0.0.1";
  return c.get_string("object", "public_url",
                      "http://" + host + ":" + std::to_string(c.get_int("object", "port", 8080)) +
                          "/v1/AUTH_%(project_id)s");
}

void ensure_local_rings(const Config& c, const std::string& state_dir) {
  auto dir = rings_dir(c, state_dir);
  auto names = device_names(c);
  auto devices = c.get_string("object_server", "devices", state_dir + "/object/devices");
  for (auto& name : names) fs::create_directories(devices + "/" + name);
  fs::create_directories(dir);
  auto ip =
      c.get_string("object_server", "bind_host", c.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  if (ip == "0.0.0.0") ip = "127.0.0.1";
  int port = static_cast<int>(c.get_int("object_server", "port", 6200));
  int part_power = static_cast<int>(c.get_int("object", "part_power", 10));
  size_t replicas =
      std::min<size_t>(static_cast<size_t>(c.get_int("object", "replicas", 1)), names.size());
  for (auto* kind : {"account", "container", "object"}) {
    auto path = dir + "/" + kind + ".ring.json";
    if (fs::exists(path)) continue;
    std::vector<Device> devs;
    for (size_t i = 0; i < names.size(); ++i) {
      Device d;
      d.id = static_cast<int>(i);
      d.zone = static_cast<int>(i) + 1;
      d.ip = ip;
      d.port = port;
      d.device = names[i];
      d.weight = 100;
      devs.push_back(d);
    }
    // Replica r of partition p on device (p + r) mod n: each partition's copies on distinct
    // devices, every device an equal share.
    std::vector<std::vector<std::uint16_t>> table(replicas);
    std::uint32_t parts = 1u << part_power;
    for (size_t r = 0; r < replicas; ++r) {
      table[r].resize(parts);
      for (std::uint32_t p = 0; p < parts; ++p)
        table[r][p] = static_cast<std::uint16_t>((p + r) % names.size());
    }
    Ring(part_power, devs, table).save(path);
    spdlog::info("object: made the {} ring ({} devices, {} replicas) at {}", kind, names.size(),
                 replicas, path);
  }
}

std::shared_ptr<void> serve_storage_locally(const StorageSettings& settings,
                                            std::shared_ptr<Pipeline> pipeline, Runtime& runtime,
                                            const ServerOptions& options) {
  auto ip = settings.ip.empty() || settings.ip == "0.0.0.0" ? "127.0.0.1" : settings.ip;
  LocalServer local;
  local.handle = [pipeline](http::Request& r) { return pipeline->handle(r); };
  local.streams = [pipeline](const http::Request& r) { return pipeline->streams(r); };
  local.begin_upload = [pipeline](http::Request& r) { return pipeline->begin_upload(r); };
  local.serial = [&runtime] { return runtime.serial_work(); };
  local.render_error = options.render_error;
  return serve_locally(ip + ":" + std::to_string(settings.port), std::move(local));
}

}  // namespace nubo::object
