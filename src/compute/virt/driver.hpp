// The compute driver interface: what a hypervisor host offers and what it does to the servers
// placed on it. Implementations: `fake` (no VMs, for scale and control-plane tests) and `qemu`
// (next); chosen by name in configuration. Agents call it; it never sees the database or the bus.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace nubo::compute {

// What one hypervisor host reports about itself.
struct HostResources {
  std::string host;                 // the compute service's host name
  std::string hypervisor_hostname;  // the node's name (equal to host here)
  std::string hypervisor_type;      // "QEMU", "fake"
  std::int64_t hypervisor_version = 0;
  std::int64_t vcpus = 0, memory_mb = 0, local_gb = 0;
  std::string host_ip = "127.0.0.1";
  std::string cpu_info = "{}";  // JSON text
};

// Nova's power states (the values of OS-EXT-STS:power_state).
enum class PowerState {
  NoState = 0,
  Running = 1,
  Paused = 3,
  Shutdown = 4,
  Crashed = 6,
  Suspended = 7
};

// Everything a driver needs to build or act on one server; travels over the bus as JSON.
struct InstanceSpec {
  std::string uuid, name, hostname;  // name: instance-0000002a
  std::string image_ref, user_data, key_data, admin_password;
  // What the guest reads about itself (config drive, metadata service).
  std::string display_name, key_name, project_id, availability_zone, launched_at;
  std::string flavor_name, reservation_id;
  std::int64_t launch_index = 0;
  std::int64_t vcpus = 0, memory_mb = 0, root_gb = 0, ephemeral_gb = 0, swap_mb = 0;
  std::map<std::string, std::string> metadata, extra_specs;
  bool config_drive = false;
  // The running task's parameters (a snapshot's image id and disk format, ...).
  json::object task_args;
  // The server's NICs, one per port, in order (Nova's network_info): port_id, network_id,
  // network_name, mac, mtu, devname (the host's tap device), ips [{address, version, type
  // (fixed|floating), subnet_id}]. Empty: no NIC from the network service.
  json::array vifs;

  json::object to_json() const;
  static InstanceSpec from_json(const json::object& o);
};

// A build that no other host could do better (a corrupt image, a flavor too small for it): the
// server goes to ERROR with this reason at once instead of being rescheduled, as Nova's
// BuildAbortException.
struct BuildAbort : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where one of a server's consoles is reached from its host (Nova's ConsoleSerial, ConsoleVNC):
// a unix socket `path`, or `host`:`port`.
struct ConsoleEndpoint {
  std::string host;
  std::int64_t port = 0;
  std::string path;
};

class ComputeDriver {
 public:
  virtual ~ComputeDriver() = default;
  virtual std::string name() const = 0;
  virtual HostResources resources() const = 0;
  // Whether the servers' NICs are devices the network agent plugs (a build then waits for
  // network-vif-plugged); the fake driver makes none.
  virtual bool plugs_vifs() const { return true; }

  // Every operation is idempotent, so that the conductor can replay it after a restart:
  // spawning a server that exists, or destroying one that does not, succeeds.
  virtual void spawn(const InstanceSpec& instance) = 0;
  virtual void destroy(const std::string& uuid) = 0;
  virtual void power_off(const std::string& uuid) = 0;
  virtual void power_on(const InstanceSpec& instance) = 0;
  virtual void reboot(const InstanceSpec& instance, bool hard) = 0;
  virtual void pause(const std::string& uuid) = 0;
  virtual void unpause(const std::string& uuid) = 0;
  virtual void suspend(const std::string& uuid) = 0;
  virtual void resume(const InstanceSpec& instance) = 0;
  // Boots the rescue image with the server's disk attached; unrescue boots the server again.
  virtual void rescue(const InstanceSpec& instance, const std::string& rescue_image_ref) = 0;
  virtual void unrescue(const InstanceSpec& instance) = 0;
  // Rebuilds the server's disk from an image (the spec's image_ref) and boots it.
  virtual void rebuild(const InstanceSpec& instance) = 0;
  // Applies a new flavor (resize) on this host; the spec carries the new sizes.
  virtual void resize(const InstanceSpec& instance) = 0;

  // The server's power state, or nullopt when this host does not have it.
  virtual std::optional<PowerState> power_state(const std::string& uuid) const = 0;
  virtual std::vector<std::string> list_instances() const = 0;
  virtual std::string console_output(const std::string& uuid) const = 0;
  // The server's interactive console of this protocol ("serial", "vnc"); throws Conflict when
  // the server does not run, BadRequest ("Unavailable console type") when the driver has none.
  virtual ConsoleEndpoint console(const std::string& uuid, const std::string& protocol) const;
  // Housekeeping the agent runs on each of its ticks (every few seconds); the driver decides
  // what is due (the qemu driver trims its image cache).
  virtual void periodic_tasks() {}
  // Writes the server's root disk as one image file in `disk_format` (raw, qcow2) and returns its
  // path; the caller removes the file once it has uploaded it.
  virtual std::string snapshot(const std::string& uuid, const std::string& disk_format) = 0;
  // Hot-plugs a NIC (one of the spec's vifs) into the running server, or takes it out; the spec
  // names the server's NICs after the change. Throws Conflict when the driver cannot.
  virtual void attach_interface(const InstanceSpec& instance, const json::object& vif);
  virtual void detach_interface(const InstanceSpec& instance, const json::object& vif);
};

}  // namespace nubo::compute
