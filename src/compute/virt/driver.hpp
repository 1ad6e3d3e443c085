// The compute driver interface: what a hypervisor host offers and, as servers land, what it does
// to them. Implementations: `fake` (no VMs, for scale tests and control-plane tests) now, `qemu`
// next; chosen by name in configuration.
#pragma once

#include <cstdint>
#include <string>

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

class ComputeDriver {
 public:
  virtual ~ComputeDriver() = default;
  virtual std::string name() const = 0;
  virtual HostResources resources() const = 0;
};

}  // namespace nubo::compute
