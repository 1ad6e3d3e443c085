#include "compute/metadata/api.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/algorithm/string/predicate.hpp>

#include "common/error.hpp"
#include "compute/metadata/content.hpp"
#include "compute/service/compute_service.hpp"

namespace nubo::compute::metadata {

namespace {

http::Response text(int status, std::string body, const std::string& type) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", type);
  r.body = std::move(body);
  return r;
}

// The instance the request is about, checked as Nova checks a proxied request.
ComputeService::MetadataView identify(ComputeService& compute, const std::string& secret,
                                      const http::Request& request) {
  auto instance_id = request.headers.get("X-Instance-ID");
  auto signature = request.headers.get("X-Instance-ID-Signature");
  auto tenant_id = request.headers.get("X-Tenant-ID");
  if (!instance_id) throw BadRequest("X-Instance-ID header is missing from request.");
  if (!signature) throw BadRequest("X-Instance-ID-Signature header is missing from request.");
  if (!tenant_id) throw BadRequest("X-Tenant-ID header is missing from request.");
  auto count = [&](std::string_view name) {
    return std::count_if(request.headers.all().begin(), request.headers.all().end(),
                         [&](auto& h) { return boost::iequals(h.first, name); });
  };
  if (count("X-Instance-ID") > 1)
    throw BadRequest("Multiple X-Instance-ID headers found within request.");
  if (count("X-Tenant-ID") > 1)
    throw BadRequest("Multiple X-Tenant-ID headers found within request.");
  auto expected = sign(secret, std::string(*instance_id));
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    spdlog::warn(
        "metadata: X-Instance-ID-Signature {} does not match the expected value for id {}; "
        "request from {}",
        *signature, *instance_id,
        request.headers.get_or("X-Forwarded-For", request.remote_address));
    throw Forbidden("Invalid proxy request signature.");
  }
  auto view = compute.metadata_view(std::string(*instance_id));
  if (!view) {
    spdlog::error("metadata: no instance {} (request from {})", *instance_id,
                  request.headers.get_or("X-Forwarded-For", request.remote_address));
    throw NotFound("The resource could not be found.");
  }
  if (view->instance.project_id != *tenant_id) {
    spdlog::warn("metadata: tenant {} does not match the tenant of instance {}", *tenant_id,
                 *instance_id);
    throw NotFound("The resource could not be found.");
  }
  return std::move(*view);
}

}  // namespace

http::Response render_error(const ApiError& e) {
  return text(
      e.status(),
      std::to_string(e.status()) + " " + status_reason(e.status()) + "\n\n" + e.what() + "\n\n",
      "text/plain; charset=UTF-8");
}

ServiceSpec make_service_spec(std::shared_ptr<ComputeService> compute, std::string shared_secret) {
  ServiceSpec spec;
  spec.name = "metadata";
  spec.render_error = render_error;
  auto& c = *compute;
  auto secret = std::make_shared<std::string>(std::move(shared_secret));
  Route get{"GET", "/{path*}", [compute, secret, &c](Context& ctx) {
              auto& path = ctx.param("path");
              // The versions are no secret: listed before the caller is known, as Nova does.
              if (path.empty()) {
                auto a = lookup(InstanceSpec{}, "", "");
                return text(200, a->body, a->content_type);
              }
              auto view = identify(c, *secret, ctx.request);
              auto a = lookup(view.instance, path, view.password);
              if (!a) throw NotFound("The resource could not be found.");
              return text(200, std::move(a->body), a->content_type);
            }};
  get.authenticated = false;
  spec.routes.push_back(std::move(get));
  Route post{"POST", "/openstack/{version}/password", [compute, secret, &c](Context& ctx) {
               auto view = identify(c, *secret, ctx.request);
               // Guests post their password from Grizzly's version (2013-04-04) on.
               auto& v = openstack_versions();
               auto version = ctx.param("version");
               if (version != "latest" &&
                   (std::find(v.begin(), v.end(), version) == v.end() || version < "2013-04-04"))
                 throw NotFound("The resource could not be found.");
               c.set_metadata_password(view.instance.uuid, ctx.request.body);
               return text(200, "", "text/plain; charset=UTF-8");
             }};
  post.authenticated = false;
  spec.routes.push_back(std::move(post));
  return spec;
}

}  // namespace nubo::compute::metadata
