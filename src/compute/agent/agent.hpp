// The compute agent of one host: serves its bus topic (`compute.<host>`) in order, drives the
// driver, and reports every outcome to the conductor. It holds no database connection.
#pragma once

#include <memory>

#include "common/bus.hpp"
#include "compute/service/image_client.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute {

class ComputeAgent {
 public:
  // `images` receives snapshots and backups (none: those fail with that reason).
  ComputeAgent(std::shared_ptr<ComputeDriver> driver, std::shared_ptr<Bus> bus,
               std::shared_ptr<ImageClient> images = nullptr);
  // Subscribes, then registers the host with the conductor (which resumes the host's work).
  void start();
  void stop();
  // Reports the power state of every server on the host (run every few seconds): when a state
  // changed since the last report, and in full every `full_every` calls regardless.
  void sync_power_states(int full_every = 15);
  const std::string& host() const { return host_; }

 private:
  json::value handle(const BusMessage& m);
  json::object power_report() const;
  // createImage / createBackup: the disk into the image made for it, then backups rotated.
  void snapshot(const InstanceSpec& spec, bool backup);

  std::shared_ptr<ComputeDriver> driver_;
  std::shared_ptr<Bus> bus_;
  std::shared_ptr<ImageClient> images_;
  std::string host_;
  json::object last_states_;  // the last report sent, without its time
  int unchanged_ = 0;
};

}  // namespace nubo::compute
