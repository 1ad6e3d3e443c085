// The `fake` compute driver: a simulated hypervisor with configured resources whose "VMs" are
// lines in a per-host log (uuid and power state), so that they outlive a restart as real VMs do.
// Never the default; `nubo all-in-one --fake-hosts N` registers N of them for scale tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>

#include "compute/virt/driver.hpp"

namespace nubo::compute {

class FakeDriver : public ComputeDriver {
 public:
  // `state_dir` holds the simulated servers (empty: memory only).
  FakeDriver(std::string host, std::int64_t vcpus, std::int64_t memory_mb, std::int64_t local_gb,
             std::filesystem::path state_dir = {});
  ~FakeDriver() override;
  FakeDriver(const FakeDriver&) = delete;
  FakeDriver& operator=(const FakeDriver&) = delete;
  // Makes every spawn on this host fail (`[fake] fail_spawn_hosts`), to exercise rescheduling.
  void fail_spawns(bool fail) { fail_spawns_ = fail; }
  // How long a snapshot takes (`[fake] snapshot_seconds`, default none): a real disk copy takes
  // seconds, and clients (Tempest's test_delete_saving_image) act on the image while it is saved.
  void snapshot_delay(std::chrono::milliseconds delay) { snapshot_delay_ = delay; }
  std::string name() const override { return "fake"; }
  bool plugs_vifs() const override { return false; }
  // A fake VM takes any NIC.
  void attach_interface(const InstanceSpec&, const json::object&) override {}
  void detach_interface(const InstanceSpec&, const json::object&) override {}
  HostResources resources() const override { return resources_; }

  void spawn(const InstanceSpec& instance) override;
  void destroy(const std::string& uuid) override;
  void power_off(const std::string& uuid) override { set(uuid, PowerState::Shutdown); }
  void power_on(const InstanceSpec& instance) override { set(instance.uuid, PowerState::Running); }
  void reboot(const InstanceSpec& instance, bool) override {
    set(instance.uuid, PowerState::Running);
  }
  void pause(const std::string& uuid) override { set(uuid, PowerState::Paused); }
  void unpause(const std::string& uuid) override { set(uuid, PowerState::Running); }
  void suspend(const std::string& uuid) override { set(uuid, PowerState::Suspended); }
  void resume(const InstanceSpec& instance) override { set(instance.uuid, PowerState::Running); }
  void rescue(const InstanceSpec& instance, const std::string&) override {
    set(instance.uuid, PowerState::Running);
  }
  void unrescue(const InstanceSpec& instance) override { set(instance.uuid, PowerState::Running); }
  void rebuild(const InstanceSpec& instance) override { set(instance.uuid, PowerState::Running); }
  void resize(const InstanceSpec& instance) override { set(instance.uuid, PowerState::Running); }

  std::optional<PowerState> power_state(const std::string& uuid) const override;
  std::vector<std::string> list_instances() const override;
  std::string console_output(const std::string& uuid) const override;
  ConsoleEndpoint console(const std::string& uuid, const std::string& protocol) const override;
  // A small file naming the server, in the state directory (or the system's temporary one).
  std::string snapshot(const std::string& uuid, const std::string& disk_format) override;

 private:
  // Sets an existing server's state (NotFound when this host does not have it).
  void set(const std::string& uuid, PowerState state);
  // Records a server's state (nullopt: gone) in memory and appends it to the log.
  void save(const std::string& uuid, std::optional<PowerState> state);

  HostResources resources_;
  bool fail_spawns_ = false;
  std::chrono::milliseconds snapshot_delay_{0};
  std::filesystem::path dir_;
  int log_ = -1;  // servers.log, opened for appending
  mutable std::mutex mutex_;
  std::map<std::string, PowerState> servers_;
};

}  // namespace nubo::compute
