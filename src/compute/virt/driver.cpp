#include "compute/virt/driver.hpp"

#include "common/error.hpp"

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

}  // namespace

json::object InstanceSpec::to_json() const {
  return json::object{{"uuid", uuid},
                      {"name", name},
                      {"hostname", hostname},
                      {"image_ref", image_ref},
                      {"user_data", user_data},
                      {"key_data", key_data},
                      {"admin_password", admin_password},
                      {"display_name", display_name},
                      {"key_name", key_name},
                      {"project_id", project_id},
                      {"availability_zone", availability_zone},
                      {"launched_at", launched_at},
                      {"flavor_name", flavor_name},
                      {"reservation_id", reservation_id},
                      {"launch_index", launch_index},
                      {"vcpus", vcpus},
                      {"memory_mb", memory_mb},
                      {"root_gb", root_gb},
                      {"ephemeral_gb", ephemeral_gb},
                      {"swap_mb", swap_mb},
                      {"metadata", string_map(metadata)},
                      {"extra_specs", string_map(extra_specs)},
                      {"config_drive", config_drive},
                      {"task_args", task_args},
                      {"vifs", vifs}};
}

InstanceSpec InstanceSpec::from_json(const json::object& o) {
  InstanceSpec s;
  s.uuid = string_or(o, "uuid");
  s.name = string_or(o, "name");
  s.hostname = string_or(o, "hostname");
  s.image_ref = string_or(o, "image_ref");
  s.user_data = string_or(o, "user_data");
  s.key_data = string_or(o, "key_data");
  s.admin_password = string_or(o, "admin_password");
  s.display_name = string_or(o, "display_name");
  s.key_name = string_or(o, "key_name");
  s.project_id = string_or(o, "project_id");
  s.availability_zone = string_or(o, "availability_zone");
  s.launched_at = string_or(o, "launched_at");
  s.flavor_name = string_or(o, "flavor_name");
  s.reservation_id = string_or(o, "reservation_id");
  s.launch_index = int_or(o, "launch_index");
  s.vcpus = int_or(o, "vcpus");
  s.memory_mb = int_or(o, "memory_mb");
  s.root_gb = int_or(o, "root_gb");
  s.ephemeral_gb = int_or(o, "ephemeral_gb");
  s.swap_mb = int_or(o, "swap_mb");
  s.metadata = string_map(o.if_contains("metadata"));
  s.extra_specs = string_map(o.if_contains("extra_specs"));
  auto* cd = o.if_contains("config_drive");
  s.config_drive = cd && cd->is_bool() && cd->as_bool();
  if (auto* args = o.if_contains("task_args"); args && args->is_object())
    s.task_args = args->as_object();
  if (auto* v = o.if_contains("vifs"); v && v->is_array()) s.vifs = v->as_array();
  return s;
}

ConsoleEndpoint ComputeDriver::console(const std::string&, const std::string& protocol) const {
  throw BadRequest("Unavailable console type " + protocol + ".");
}

void ComputeDriver::attach_interface(const InstanceSpec&, const json::object&) {
  throw Conflict("This hypervisor cannot hot-plug network interfaces.");
}

void ComputeDriver::detach_interface(const InstanceSpec&, const json::object&) {
  throw Conflict("This hypervisor cannot hot-unplug network interfaces.");
}

}  // namespace nubo::compute
