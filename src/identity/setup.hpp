// Wiring the identity service from configuration: settings, database, key repository, bootstrap.
#pragma once

#include "common/config.hpp"
#include "identity/bootstrap.hpp"
#include "identity/service/identity_service.hpp"

#include <memory>
#include <string>

namespace nubo::identity {

IdentitySettings settings_from_config(const Config& config, const std::string& state_dir);
std::shared_ptr<IdentityService> open_identity_service(const Config& config, const std::string& state_dir);

}  // namespace nubo::identity
