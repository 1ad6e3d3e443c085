// Wiring the compute service from configuration: settings and database.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"
#include "compute/service/compute_service.hpp"

namespace nubo::compute {

ComputeSettings settings_from_config(const Config& config, const std::string& state_dir);
// Opens the database (applying migrations) and creates the default flavors on a new cloud.
std::shared_ptr<ComputeService> open_compute_service(const Config& config, const std::string& state_dir);

}  // namespace nubo::compute
