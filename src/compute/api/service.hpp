// Builds the compute service's pipeline specification: routes, microversions, policy and Nova's
// error dialect.
#pragma once

#include <memory>
#include <string>

#include "common/auth.hpp"
#include "common/service.hpp"

namespace nubo::compute {
class ComputeService;
namespace api {
// The routes refer to the service: the caller keeps it alive as long as the pipeline.
ServiceSpec make_service_spec(std::shared_ptr<ComputeService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file = {});
}  // namespace api
}  // namespace nubo::compute
