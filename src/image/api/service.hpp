// Builds the image service's pipeline specification: its routes, policy and error dialect.
#pragma once

#include <memory>
#include <string>

#include "common/auth.hpp"
#include "common/service.hpp"

namespace nubo::image {
class ImageService;
namespace api {
// validator: the identity service in-process, or a remote validator; policy_file: optional
// policy.yaml overriding Glance's defaults. The routes refer to the service: the caller keeps it
// alive as long as the pipeline.
ServiceSpec make_service_spec(std::shared_ptr<ImageService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file = {});
}  // namespace api
}  // namespace nubo::image
