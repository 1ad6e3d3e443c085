#include "compute/service/image_client.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/http/client.hpp"

namespace nubo::compute {

std::optional<ImageInfo> RestImageClient::show(const AuthContext& auth, const std::string& id) {
  http::ClientResponse r;
  try {
    // One connection per lookup: a libcurl handle is not shared between threads, and a loopback
    // connect costs far less than the boot it serves.
    http::Client client(std::chrono::seconds(10));
    r = client.request("GET", url_ + "/v2/images/" + id,
                       {{"X-Auth-Token", auth.token}, {"Accept", "application/json"}});
  } catch (const std::exception& e) {
    spdlog::error("compute: image service at {} unreachable: {}", url_, e.what());
    throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  }
  if (r.status == 404 || r.status == 403) return std::nullopt;
  if (r.status != 200) {
    spdlog::error("compute: image service answered {} for image {}: {}", r.status, id,
                  r.body.substr(0, 200));
    throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  }
  auto body = json::parse(r.body).as_object();
  ImageInfo info;
  auto str = [&](const char* k) {
    auto* v = body.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  auto num = [&](const char* k) {
    auto* v = body.if_contains(k);
    return v && v->is_int64() ? v->as_int64() : std::int64_t{0};
  };
  info.id = str("id");
  info.name = str("name");
  info.status = str("status");
  info.min_ram = num("min_ram");
  info.min_disk = num("min_disk");
  info.size = num("size");
  info.properties = std::move(body);
  return info;
}

}  // namespace nubo::compute
