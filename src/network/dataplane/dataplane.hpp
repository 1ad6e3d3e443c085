// The network agent's driver (DESIGN §8): makes one host's kernel match its desired state.
// `linux` builds bridges, namespaces, dnsmasq and nftables; `fake` only remembers the state.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "network/dataplane/state.hpp"

namespace nubo::network::dataplane {

// Serves one metadata request from a guest: the connection's socket, and who the guest is (its
// port's device_id and project). Wired by the binary to the compute metadata service, so that
// the network code needs no compute code.
using MetadataForwarder =
    std::function<void(int socket, const std::string& instance_id, const std::string& project_id)>;

struct ApplyResult {
  std::vector<std::string> plugged;  // VM ports whose devices are on their bridges
  int repairs = 0;                   // differences from the kernel found and fixed
};

class Dataplane {
 public:
  virtual ~Dataplane() = default;
  // Applies the desired state. `full`: also reads the kernel's own state back and repairs what
  // differs (on start and periodically); otherwise only what changed since the last apply, and
  // VM devices that appeared, are touched.
  virtual ApplyResult apply(const HostState& desired, bool full) = 0;
  // Stops what runs inside this process (metadata listeners); the kernel state and dnsmasq stay,
  // so that traffic flows on while the agent restarts.
  virtual void stop() {}
};

struct LinuxSettings {
  std::string state_dir;       // dnsmasq files and the namespaces this agent made
  std::string host_namespace;  // where bridges and the host's nftables live; "" = this process's
  std::string external_bridge = "br-ex";  // the flat physical network's bridge
  std::string physical_network = "public";
  std::string local_ip;        // VXLAN underlay address; "" = no VXLAN devices (one host)
  std::string table = "nubo";  // nftables table name in each family
  int metadata_port = 9697;    // the metadata proxy's port inside router namespaces
  std::string dns_domain = "openstacklocal";
  MetadataForwarder metadata;
};

std::unique_ptr<Dataplane> make_linux_dataplane(LinuxSettings settings);
std::unique_ptr<Dataplane> make_fake_dataplane();

}  // namespace nubo::network::dataplane
