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
  return image_info(json::parse(r.body).as_object());
}

json::object RestImageClient::create(const AuthContext& auth, const json::object& body) {
  http::ClientResponse r;
  try {
    http::Client client(std::chrono::seconds(10));
    r = client.request("POST", url_ + "/v2/images",
                       {{"X-Auth-Token", auth.token}, {"Content-Type", "application/json"}},
                       json::serialize(body));
  } catch (const std::exception& e) {
    spdlog::error("compute: image service at {} unreachable: {}", url_, e.what());
    throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  }
  if (r.status == 201) return json::parse(r.body).as_object();
  if (r.status == 413 || r.status == 403)
    throw Forbidden("Quota exceeded for image snapshots or not allowed: " + r.body.substr(0, 200));
  throw ApiError(r.status >= 500 ? 503 : 400,
                 "The image service refused the snapshot image: " + r.body.substr(0, 200),
                 r.status >= 500 ? "ServiceUnavailable" : "BadRequest");
}

namespace {
[[noreturn]] void no_service_credentials() {
  throw std::runtime_error(
      "the compute agent has no image service credentials of its own in this deployment");
}
}  // namespace

void RestImageClient::upload(const std::string&, const std::string&) { no_service_credentials(); }
std::vector<json::object> RestImageClient::find(
    const std::vector<std::pair<std::string, std::string>>&) {
  no_service_credentials();
}
void RestImageClient::remove(const std::string&) { no_service_credentials(); }

ImageInfo image_info(json::object image) {
  ImageInfo info;
  info.id = string_or(image, "id");
  info.name = string_or(image, "name");
  info.status = string_or(image, "status");
  info.min_ram = int_or(image, "min_ram");
  info.min_disk = int_or(image, "min_disk");
  info.size = int_or(image, "size");
  info.properties = image_properties(std::move(image));
  return info;
}

json::object image_properties(json::object image) {
  static const char* const bookkeeping[] = {
      "id",         "name",       "status",       "visibility", "protected",    "os_hidden",
      "owner",      "size",       "virtual_size", "checksum",   "os_hash_algo", "os_hash_value",
      "created_at", "updated_at", "location",     "locations",  "tags",         "self",
      "file",       "schema",     "direct_url",   "stores"};
  for (auto* key : bookkeeping) image.erase(key);
  return image;
}

}  // namespace nubo::compute
