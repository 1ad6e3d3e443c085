// The `fake` compute driver: a simulated hypervisor with configured resources and no VMs. Never
// the default; `nubo all-in-one --fake-hosts N` registers N of them for scale tests.
#pragma once

#include "compute/virt/driver.hpp"

namespace nubo::compute {

class FakeDriver : public ComputeDriver {
 public:
  FakeDriver(std::string host, std::int64_t vcpus, std::int64_t memory_mb, std::int64_t local_gb);
  std::string name() const override { return "fake"; }
  HostResources resources() const override { return resources_; }

 private:
  HostResources resources_;
};

}  // namespace nubo::compute
