// Wiring the image service from configuration: settings, database, stores.
#pragma once

#include <memory>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "image/service/image_service.hpp"

namespace nubo::image {

ImageSettings settings_from_config(const Config& config, const std::string& state_dir);
// Opens the database (applying migrations) and the stores; `recover` (for a process about to
// serve) also cleans up after an unclean stop.
std::shared_ptr<ImageService> open_image_service(const Config& config, const std::string& state_dir,
                                                 bool recover = true);
// The unified limits the image service enforces and the defaults bootstrap registers for them.
std::vector<std::pair<std::string, std::int64_t>> default_registered_limits();

}  // namespace nubo::image
