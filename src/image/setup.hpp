// Wiring the image service from configuration: settings, database, stores.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"
#include "image/service/image_service.hpp"

namespace nubo::image {

ImageSettings settings_from_config(const Config& config, const std::string& state_dir);
// Opens the database (applying migrations) and the stores; `recover` (for a process about to
// serve) also cleans up after an unclean stop.
std::shared_ptr<ImageService> open_image_service(const Config& config, const std::string& state_dir,
                                                 bool recover = true);

}  // namespace nubo::image
