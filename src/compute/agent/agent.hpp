// The compute agent of one host: serves its bus topic (`compute.<host>`), drives the driver, and
// reports every outcome to the conductor. It holds no database connection. Work on one server runs
// in the order sent, one step at a time; work on different servers runs side by side (on the
// shared AgentWorkers), as Nova's per-instance locks allow, so one slow stop does not hold up
// every boot on its host.
#pragma once

#include <memory>

#include "common/bus.hpp"
#include "compute/service/image_client.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute {

// The threads that run the agents' work, shared by every agent in the process (a host's servers
// each get an ordered lane on them).
class AgentWorkers;
std::shared_ptr<AgentWorkers> make_agent_workers(unsigned threads);
// Runs what is queued, then lets the threads go (before the agents and the bus go).
void stop_agent_workers(AgentWorkers& workers);

class ComputeAgent {
 public:
  // `images` receives snapshots and backups (none: those fail with that reason).
  // Without `workers`, every message is handled on the bus's delivery, one at a time.
  ComputeAgent(std::shared_ptr<ComputeDriver> driver, std::shared_ptr<Bus> bus,
               std::shared_ptr<ImageClient> images = nullptr,
               std::shared_ptr<AgentWorkers> workers = nullptr);
  // Subscribes, then registers the host with the conductor (which resumes the host's work).
  void start();
  void stop();
  // Reports the power state of every server on the host (run every few seconds): when a state
  // changed since the last report, and in full every `full_every` calls regardless.
  void sync_power_states(int full_every = 15);
  const std::string& host() const { return host_; }

 private:
  // Questions are answered at once; work goes to the server's lane.
  json::value dispatch(const BusMessage& m);
  json::value handle(const BusMessage& m);
  json::object power_report() const;
  // createImage / createBackup: the disk into the image made for it, then backups rotated.
  void snapshot(const InstanceSpec& spec, bool backup);

  std::shared_ptr<ComputeDriver> driver_;
  std::shared_ptr<Bus> bus_;
  std::shared_ptr<ImageClient> images_;
  std::shared_ptr<AgentWorkers> workers_;
  std::string host_;
  json::object last_states_;  // the last report sent, without its time
  int unchanged_ = 0;
};

}  // namespace nubo::compute
