#include "compute/setup.hpp"

#include <unistd.h>

#include <filesystem>

#include "compute/agent/agent.hpp"
#include "compute/conductor/conductor.hpp"
#include "compute/virt/fake/fake_driver.hpp"
#include "compute/virt/qemu/qemu_driver.hpp"

namespace nubo::compute {

ComputeSettings settings_from_config(const Config& c, const std::string&) {
  ComputeSettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("compute", "port", 8774);
  s.public_url =
      c.get_string("compute", "public_url", "http://" + host + ":" + std::to_string(port));
  s.default_availability_zone =
      c.get_string("compute", "default_availability_zone", s.default_availability_zone);
  for (auto& [resource, limit] : s.quota_defaults) limit = c.get_int("quota", resource, limit);
  s.serial_console_enabled = c.get_bool("serial_console", "enabled", s.serial_console_enabled);
  s.serial_console_base_url =
      c.get_string("serial_console", "base_url",
                   "ws://" + host + ":" +
                       std::to_string(c.get_int("serial_console", "serialproxy_port", 6083)) + "/");
  s.console_token_ttl = static_cast<int>(c.get_int("consoleauth", "token_ttl", 600));
  s.vif_plugging_timeout =
      static_cast<int>(c.get_int("compute", "vif_plugging_timeout", s.vif_plugging_timeout));
  return s;
}

std::shared_ptr<ComputeService> open_compute_service(const Config& c,
                                                     const std::string& state_dir) {
  auto database = db::Database::open_for(c, "compute", state_dir);
  auto service =
      std::make_shared<ComputeService>(std::move(database), settings_from_config(c, state_dir));
  if (c.get_bool("compute", "default_flavors", true)) service->ensure_default_flavors();
  return service;
}

std::vector<std::unique_ptr<ComputeDriver>> make_drivers(const Config& c,
                                                         const std::string& state_dir,
                                                         std::shared_ptr<ImageClient> images) {
  std::vector<std::unique_ptr<ComputeDriver>> out;
  auto driver = c.get_string("compute", "driver",
                             c.get_int("compute", "fake_hosts", 0) > 0 ? "fake" : "qemu");
  if (driver == "none") return out;
  if (driver == "qemu") {
    QemuSettings q;
    q.host = c.host();
    q.host_namespace = c.get_string("network", "host_namespace", "");
    q.instances_dir = c.get_string("qemu", "instances_path",
                                   (std::filesystem::path(state_dir) / "instances").string());
    q.virt_type = c.get_string("qemu", "virt_type", q.virt_type);
    q.binary = c.get_string("qemu", "binary", q.binary);
    q.vcpus = c.get_int("qemu", "vcpus", 0);
    q.memory_mb = c.get_int("qemu", "memory_mb", 0);
    q.local_gb = c.get_int("qemu", "local_gb", 0);
    q.force_config_drive = c.get_bool("qemu", "force_config_drive", q.force_config_drive);
    q.shutdown_timeout = std::chrono::seconds(c.get_int("qemu", "shutdown_timeout", 10));
    q.image_cache_max_age = std::chrono::seconds(
        c.get_int("image_cache", "remove_unused_original_minimum_age_seconds", 86400));
    q.image_cache_interval =
        std::chrono::seconds(c.get_int("image_cache", "manager_interval", 2400));
    q.console_log_max_bytes = c.get_int("qemu", "console_log_max_bytes", q.console_log_max_bytes);
    if (c.get_bool("qemu", "user_network", true))
      q.metadata_relay = c.get_string("qemu", "metadata_relay", "");
    ImageFetcher fetch;
    if (images)
      fetch = [images](const std::string& id, const std::filesystem::path& to) {
        return images->download(id, to.string());
      };
    out.push_back(std::make_unique<QemuDriver>(std::move(q), std::move(fetch)));
    return out;
  }
  if (driver != "fake") throw std::runtime_error("[compute] driver: unknown driver " + driver);
  auto n = c.get_int("compute", "fake_hosts", 0);
  auto prefix = c.get_string("fake", "host_prefix", "fake-host-");
  for (long i = 1; i <= n; ++i) {
    auto host = prefix + std::to_string(i);
    auto driver = std::make_unique<FakeDriver>(
        host, c.get_int("fake", "vcpus", 16), c.get_int("fake", "memory_mb", 65536),
        c.get_int("fake", "local_gb", 1000), std::filesystem::path(state_dir) / "fake" / host);
    for (auto& failing : c.get_list("fake", "fail_spawn_hosts", {}))
      if (failing == host) driver->fail_spawns(true);
    driver->snapshot_delay(std::chrono::milliseconds(
        static_cast<long>(c.get_double("fake", "snapshot_seconds", 0) * 1000)));
    out.push_back(std::move(driver));
  }
  return out;
}

ControlPlane::~ControlPlane() { stop(); }

void ControlPlane::tick() {
  for (auto& a : agents) a->sync_power_states();
  conductor->confirm_old_resizes();
  conductor->check_vif_timeouts();
}

void ControlPlane::stop() {
  if (!bus) return;
  for (auto& a : agents) a->stop();
  if (agent_workers) stop_agent_workers(*agent_workers);
  conductor->stop();
  bus->stop();
  bus.reset();
}

std::unique_ptr<ControlPlane> start_control_plane(
    const Config& c, const std::string& state_dir, std::shared_ptr<ComputeService> compute,
    std::shared_ptr<placement::PlacementClient> placement) {
  auto plane = std::make_unique<ControlPlane>();
  plane->bus = make_in_process_bus(static_cast<unsigned>(c.get_int("compute", "bus_threads", 64)));
  compute->set_bus(plane->bus);
  ConductorSettings cs;
  cs.max_attempts = static_cast<int>(c.get_int("scheduler", "max_attempts", cs.max_attempts));
  cs.allow_resize_to_same_host =
      c.get_bool("DEFAULT", "allow_resize_to_same_host", cs.allow_resize_to_same_host);
  cs.cpu_allocation_ratio =
      c.get_double("DEFAULT", "cpu_allocation_ratio", cs.cpu_allocation_ratio);
  cs.ram_allocation_ratio =
      c.get_double("DEFAULT", "ram_allocation_ratio", cs.ram_allocation_ratio);
  cs.disk_allocation_ratio =
      c.get_double("DEFAULT", "disk_allocation_ratio", cs.disk_allocation_ratio);
  cs.reserved_host_memory_mb =
      c.get_int("DEFAULT", "reserved_host_memory_mb", cs.reserved_host_memory_mb);
  cs.reserved_host_disk_mb =
      c.get_int("DEFAULT", "reserved_host_disk_mb", cs.reserved_host_disk_mb);
  cs.resize_confirm_window = static_cast<int>(c.get_int("DEFAULT", "resize_confirm_window", 0));
  cs.scheduler.ram_weight_multiplier =
      c.get_double("filter_scheduler", "ram_weight_multiplier", 1.0);
  cs.scheduler.cpu_weight_multiplier =
      c.get_double("filter_scheduler", "cpu_weight_multiplier", 1.0);
  cs.scheduler.disk_weight_multiplier =
      c.get_double("filter_scheduler", "disk_weight_multiplier", 1.0);
  auto filters = c.get_list("filter_scheduler", "enabled_filters", {});
  if (!filters.empty()) cs.scheduler.enabled_filters = {filters.begin(), filters.end()};
  for (auto& image : c.get_list("filter_scheduler", "isolated_images", {}))
    cs.scheduler.isolated_images.insert(image);
  for (auto& host : c.get_list("filter_scheduler", "isolated_hosts", {}))
    cs.scheduler.isolated_hosts.insert(host);
  cs.scheduler.max_placement_results = c.get_int("scheduler", "max_placement_results", 1000);
  cs.scheduler.snapshot_ttl =
      std::chrono::milliseconds(c.get_int("scheduler", "placement_snapshot_ms", 1000));
  plane->conductor = std::make_shared<Conductor>(compute, plane->bus, std::move(placement), cs);
  auto host = c.host();
  compute->register_service(host, "nova-scheduler");
  compute->register_service(host, "nova-conductor");
  plane->conductor->start();
  // Nova's max_concurrent_builds is 10; here it bounds every kind of work at once.
  plane->agent_workers = make_agent_workers(
      static_cast<unsigned>(c.get_int("compute", "max_concurrent_operations", 10)));
  for (auto& driver : make_drivers(c, state_dir, compute->images())) {
    auto agent =
        std::make_shared<ComputeAgent>(std::shared_ptr<ComputeDriver>(std::move(driver)),
                                       plane->bus, compute->images(), plane->agent_workers);
    agent->start();
    plane->agents.push_back(std::move(agent));
  }
  return plane;
}

}  // namespace nubo::compute
