// Wiring the compute service from configuration: settings and database.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute {

ComputeSettings settings_from_config(const Config& config, const std::string& state_dir);
// Opens the database (applying migrations) and creates the default flavors on a new cloud.
std::shared_ptr<ComputeService> open_compute_service(const Config& config, const std::string& state_dir);
// The hypervisors this process drives: `[compute] fake_hosts = N` simulated ones (fake-host-1...,
// with `[fake] vcpus, memory_mb, local_gb`); none otherwise until the qemu driver lands.
std::vector<std::unique_ptr<ComputeDriver>> make_drivers(const Config& config);

}  // namespace nubo::compute
