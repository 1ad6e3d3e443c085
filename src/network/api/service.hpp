// Builds the network service's pipeline specification: its routes, policy and error dialect.
#pragma once

#include <memory>
#include <string>

#include "common/auth.hpp"
#include "common/service.hpp"

namespace nubo::network {
class NetworkService;
namespace api {
// The routes refer to the service: the caller keeps it alive as long as the pipeline.
ServiceSpec make_service_spec(std::shared_ptr<NetworkService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file = {});
// Neutron's error body, also for transport-level errors.
http::Response render_error(const ApiError& e);
}  // namespace api
}  // namespace nubo::network
