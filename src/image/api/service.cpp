#include "image/api/service.hpp"

#include <filesystem>

#include "common/policy.hpp"
#include "image/api/common.hpp"
#include "image/api/policy.hpp"

namespace nubo::image::api {

ServiceSpec make_service_spec(std::shared_ptr<ImageService> service,
                              std::shared_ptr<TokenValidator> validator,
                              const std::string& policy_file) {
  ServiceSpec spec;
  spec.name = "image";
  auto& s = *service;
  add_discovery_routes(spec.routes, s);
  add_image_routes(spec.routes, s);
  add_member_routes(spec.routes, s);
  add_data_routes(spec.routes, s);
  add_metadef_routes(spec.routes, s);
  spec.render_error = render_glance_error;
  spec.validator = std::move(validator);
  spec.policy = Policy::with_overrides(default_policy(), policy_file);
  return spec;
}

}  // namespace nubo::image::api
