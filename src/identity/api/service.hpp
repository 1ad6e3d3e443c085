// Builds the identity service's pipeline specification: its routes, policy and error dialect.
#pragma once

#include "common/service.hpp"

#include <memory>
#include <string>

namespace nubo::identity {
class IdentityService;
namespace api {
// policy_file: optional policy.yaml overriding the defaults.
ServiceSpec make_service_spec(std::shared_ptr<IdentityService> service, const std::string& policy_file = {});
}  // namespace api
}  // namespace nubo::identity
