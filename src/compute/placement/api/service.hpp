// Builds the placement service's pipeline specification: routes, microversions 1.0-1.39, policy
// and Placement's error body.
#pragma once

#include <memory>
#include <string>

#include "common/auth.hpp"
#include "common/service.hpp"

namespace nubo::placement {
class PlacementService;
namespace api {
// The routes refer to the service: the caller keeps it alive as long as the pipeline.
ServiceSpec make_service_spec(std::shared_ptr<PlacementService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file = {});
// Placement's error body without a request at hand (transport errors: 413, malformed requests).
http::Response render_transport_error(int status, const std::string& message);
}  // namespace api
}  // namespace nubo::placement
