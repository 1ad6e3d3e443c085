#include "compute/virt/driver.hpp"

namespace nubo::compute {

namespace {

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (auto& [k, v] : m) o[k] = v;
  return o;
}

std::map<std::string, std::string> string_map(const json::value* v) {
  std::map<std::string, std::string> m;
  if (v && v->is_object())
    for (auto& kv : v->as_object())
      if (kv.value().is_string()) m[std::string(kv.key())] = std::string(kv.value().as_string());
  return m;
}

std::string text(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t number(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

json::object InstanceSpec::to_json() const {
  return json::object{{"uuid", uuid},
                      {"name", name},
                      {"hostname", hostname},
                      {"image_ref", image_ref},
                      {"user_data", user_data},
                      {"key_data", key_data},
                      {"admin_password", admin_password},
                      {"vcpus", vcpus},
                      {"memory_mb", memory_mb},
                      {"root_gb", root_gb},
                      {"ephemeral_gb", ephemeral_gb},
                      {"swap_mb", swap_mb},
                      {"metadata", string_map(metadata)},
                      {"extra_specs", string_map(extra_specs)},
                      {"config_drive", config_drive}};
}

InstanceSpec InstanceSpec::from_json(const json::object& o) {
  InstanceSpec s;
  s.uuid = text(o, "uuid");
  s.name = text(o, "name");
  s.hostname = text(o, "hostname");
  s.image_ref = text(o, "image_ref");
  s.user_data = text(o, "user_data");
  s.key_data = text(o, "key_data");
  s.admin_password = text(o, "admin_password");
  s.vcpus = number(o, "vcpus");
  s.memory_mb = number(o, "memory_mb");
  s.root_gb = number(o, "root_gb");
  s.ephemeral_gb = number(o, "ephemeral_gb");
  s.swap_mb = number(o, "swap_mb");
  s.metadata = string_map(o.if_contains("metadata"));
  s.extra_specs = string_map(o.if_contains("extra_specs"));
  auto* cd = o.if_contains("config_drive");
  s.config_drive = cd && cd->is_bool() && cd->as_bool();
  return s;
}

}  // namespace nubo::compute
