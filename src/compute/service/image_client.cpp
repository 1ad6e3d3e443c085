#include "compute/service/image_client.hpp"

#include <spdlog/spdlog.h>

#include <functional>

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
  auto r = call(auth, "POST", "/v2/images", json::serialize(body), "application/json");
  if (r.status == 404)
    throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  return json::parse(r.body).as_object();
}

http::ClientResponse RestImageClient::as_service(const std::string& method, const std::string& path,
                                                 const std::string& send,
                                                 const std::string& fetch) {
  if (!session_)
    throw std::runtime_error(
        "the compute service has no credentials of its own for the image service "
        "([keystone_authtoken] in its configuration)");
  http::Client client(std::chrono::seconds(60));
  return session_->with_token([&](const std::string& token) {
    std::vector<std::pair<std::string, std::string>> headers{{"X-Auth-Token", token},
                                                             {"Accept", "application/json"}};
    if (!send.empty()) {
      headers.push_back({"Content-Type", "application/octet-stream"});
      return client.send_file(method, url_ + path, headers, send);
    }
    if (!fetch.empty()) return client.fetch_file(url_ + path, headers, fetch);
    return client.request(method, url_ + path, headers);
  });
}

namespace {
[[noreturn]] void refused(const std::string& what, const http::ClientResponse& r) {
  throw std::runtime_error(what + ": the image service answered " + std::to_string(r.status) + " " +
                           r.body.substr(0, 200));
}
// Every image of a listing, following Glance's `next` links (a 404: none).
std::vector<json::object> all_pages(
    std::string next, const std::function<http::ClientResponse(const std::string&)>& get) {
  std::vector<json::object> out;
  while (!next.empty()) {
    auto r = get(next);
    if (r.status == 404) break;
    auto page = json::parse(r.body).as_object();
    for (auto& i : page.at("images").as_array()) out.push_back(i.as_object());
    next = string_or(page, "next");
  }
  return out;
}
}  // namespace

void RestImageClient::upload(const std::string& image_id, const std::string& path) {
  auto r = as_service("PUT", "/v2/images/" + image_id + "/file", path);
  if (r.status / 100 != 2) refused("uploading image " + image_id, r);
}

json::object RestImageClient::download(const std::string& image_id, const std::string& path) {
  auto info = as_service("GET", "/v2/images/" + image_id);
  if (info.status != 200) refused("reading image " + image_id, info);
  auto image = json::parse(info.body).as_object();
  auto data = as_service("GET", "/v2/images/" + image_id + "/file", {}, path);
  if (data.status == 204) throw std::runtime_error("image " + image_id + " has no data");
  if (data.status != 200) refused("downloading image " + image_id, data);
  return image;
}

std::vector<json::object> RestImageClient::find(
    const std::vector<std::pair<std::string, std::string>>& properties) {
  // Every project's images (the service is an admin), newest first.
  std::string first = "/v2/images?visibility=all&sort_key=created_at&sort_dir=desc";
  for (auto& [k, v] : properties)
    first += "&" + http::percent_encode(k) + "=" + http::percent_encode(v);
  return all_pages(first, [&](const std::string& page) {
    auto r = as_service("GET", page);
    if (r.status != 200) refused("listing images", r);
    return r;
  });
}

void RestImageClient::remove(const std::string& image_id) {
  auto r = as_service("DELETE", "/v2/images/" + image_id);
  if (r.status == 404) throw NotFound("Image not found.");
  if (r.status / 100 != 2) refused("deleting image " + image_id, r);
}

http::ClientResponse RestImageClient::call(const AuthContext& auth, const std::string& method,
                                           const std::string& path, const std::string& body,
                                           const std::string& content_type) {
  http::ClientResponse r;
  try {
    http::Client client(std::chrono::seconds(10));
    std::vector<std::pair<std::string, std::string>> headers{{"X-Auth-Token", auth.token},
                                                             {"Accept", "application/json"}};
    if (!content_type.empty()) headers.push_back({"Content-Type", content_type});
    r = client.request(method, url_ + path, headers, body);
  } catch (const std::exception& e) {
    spdlog::error("compute: image service at {} unreachable: {}", url_, e.what());
    throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  }
  if (r.status >= 400 && r.status != 404) {
    if (r.status == 403 || r.status == 413)  // 413: over the image quota
      throw Forbidden("Not allowed by the image service: " + r.body.substr(0, 200));
    if (r.status == 409) throw Conflict("The image service refused: " + r.body.substr(0, 200));
    throw ApiError(r.status >= 500 ? 503 : 400,
                   "The image service refused: " + r.body.substr(0, 200),
                   r.status >= 500 ? "ServiceUnavailable" : "BadRequest");
  }
  return r;
}

std::optional<json::object> RestImageClient::get(const AuthContext& auth, const std::string& id) {
  auto r = call(auth, "GET", "/v2/images/" + id);
  if (r.status == 404) return std::nullopt;
  return json::parse(r.body).as_object();
}

std::vector<json::object> RestImageClient::list(
    const AuthContext& auth, const std::vector<std::pair<std::string, std::string>>& filters) {
  std::string query;
  for (auto& [k, v] : filters)
    query += (query.empty() ? "?" : "&") + k + "=" + http::percent_encode(v);
  return all_pages("/v2/images" + query,
                   [&](const std::string& page) { return call(auth, "GET", page); });
}

void RestImageClient::remove(const AuthContext& auth, const std::string& id) {
  if (call(auth, "DELETE", "/v2/images/" + id).status == 404) throw NotFound("Image not found.");
}

json::object RestImageClient::set_properties(const AuthContext& auth, const std::string& id,
                                             const json::object& set,
                                             const std::vector<std::string>& unset) {
  auto current = get(auth, id);
  if (!current) throw NotFound("Image not found.");
  json::array patch;
  for (auto& kv : set)
    patch.push_back(json::object{{"op", current->contains(kv.key()) ? "replace" : "add"},
                                 {"path", "/" + std::string(kv.key())},
                                 {"value", kv.value()}});
  for (auto& k : unset)
    if (current->contains(k)) patch.push_back(json::object{{"op", "remove"}, {"path", "/" + k}});
  auto r = call(auth, "PATCH", "/v2/images/" + id, json::serialize(patch),
                "application/openstack-images-v2.1-json-patch");
  if (r.status == 404) throw NotFound("Image not found.");
  return json::parse(r.body).as_object();
}

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
  // os_glance_* are Glance's own (import state): never copied onto another image.
  for (auto it = image.begin(); it != image.end();)
    it = std::string_view(it->key()).starts_with("os_glance") ? image.erase(it) : std::next(it);
  return image;
}

}  // namespace nubo::compute
