// Wiring the placement service from configuration: settings and its own database.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"
#include "compute/placement/service/placement_service.hpp"

namespace nubo::placement {

PlacementSettings settings_from_config(const Config& config);
// Opens `[database] placement_connection` (default sqlite://<state_dir>/placement.db), applying
// migrations.
std::shared_ptr<PlacementService> open_placement_service(const Config& config,
                                                         const std::string& state_dir);

}  // namespace nubo::placement
