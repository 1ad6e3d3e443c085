// The metadata service (port 8775): what a guest reads about itself, for the instance a proxy
// vouches for with X-Instance-ID, X-Tenant-ID and X-Instance-ID-Signature (HMAC-SHA256 under
// the shared secret), as Nova serves it behind Neutron's metadata agent.
#pragma once

#include <memory>
#include <string>

#include "common/service.hpp"

namespace nubo::compute {
class ComputeService;
}

namespace nubo::compute::metadata {

ServiceSpec make_service_spec(std::shared_ptr<ComputeService> compute, std::string shared_secret);
// Errors as plain text with the status line first, as webob words them.
http::Response render_error(const ApiError& e);

}  // namespace nubo::compute::metadata
