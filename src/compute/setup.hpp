// Wiring the compute service from configuration: settings and database, and the control plane
// (bus, conductor, agents) that runs in this process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/bus.hpp"
#include "common/config.hpp"
#include "compute/placement/client.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute {

ComputeSettings settings_from_config(const Config& config, const std::string& state_dir);
// Opens the database (applying migrations) and creates the default flavors on a new cloud.
std::shared_ptr<ComputeService> open_compute_service(const Config& config,
                                                     const std::string& state_dir);
// The hypervisors this process drives, by `[compute] driver`: `qemu` (the default, unless
// fake_hosts is set) is this machine, its servers under <state_dir>/instances and its images
// fetched through `images`; `fake` is `[compute] fake_hosts = N` simulated ones (fake-host-1...,
// with `[fake] vcpus, memory_mb, local_gb`, their servers kept under <state_dir>/fake); `none`
// drives no hypervisor (an API-only process).
std::vector<std::unique_ptr<ComputeDriver>> make_drivers(
    const Config& config, const std::string& state_dir,
    std::shared_ptr<ImageClient> images = nullptr);

class Conductor;
class ComputeAgent;
class AgentWorkers;

// The compute control plane of this process: the bus, the conductor (with its scheduler) and an
// agent per driver. Agents register with the conductor, which then resumes their work in flight.
struct ControlPlane {
  std::shared_ptr<Bus> bus;
  std::shared_ptr<Conductor> conductor;
  std::vector<std::shared_ptr<ComputeAgent>> agents;
  std::shared_ptr<AgentWorkers> agent_workers;
  // Periodic work: agents' power-state reports, resize auto-confirmation.
  void tick();
  void stop();
  ~ControlPlane();
};
std::unique_ptr<ControlPlane> start_control_plane(
    const Config& config, const std::string& state_dir, std::shared_ptr<ComputeService> compute,
    std::shared_ptr<placement::PlacementClient> placement);

}  // namespace nubo::compute
