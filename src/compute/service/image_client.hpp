// What compute asks of the image service: an image as the calling user sees it. RestImageClient
// asks Glance's API with the caller's token, in the all-in-one as when the services run apart.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/auth.hpp"
#include "common/auth_remote.hpp"
#include "common/http/client.hpp"
#include "common/json.hpp"

namespace nubo::compute {

struct ImageInfo {
  std::string id, name, status;
  std::int64_t min_ram = 0, min_disk = 0, size = 0;
  json::object properties;  // the image's other properties (kernel_id, hw_*, ...)
};

// An image as Glance shows it, read into ImageInfo. `properties` keeps what a server needs of its
// image (formats, minimums and the free-form properties), not Glance's bookkeeping (checksums,
// locations, owner, times): Nova's image_* system metadata likewise.
ImageInfo image_info(json::object image);
// The same trimming alone: an image's properties without Glance's bookkeeping.
json::object image_properties(json::object image);

class ImageClient {
 public:
  virtual ~ImageClient() = default;
  // The image if the caller may see it; nullopt when it does not exist for them.
  virtual std::optional<ImageInfo> show(const AuthContext& auth, const std::string& id) = 0;
  // Creates an image record (queued) as the caller, as POST /v2/images; returns it.
  virtual json::object create(const AuthContext& auth, const json::object& body) = 0;
  // The compute service's own work on images, with its own rights rather than a user's (the
  // user's token may have expired by then): a snapshot's data, a server's backups, removal.
  virtual void upload(const std::string& image_id, const std::string& path) = 0;
  // Writes the image's data to `path` (a compute host filling its image cache); returns the image
  // (disk_format, checksum and os_hash_* to check the data against).
  virtual json::object download(const std::string& image_id, const std::string& path) = 0;
  // Images whose properties have these values, newest first.
  virtual std::vector<json::object> find(
      const std::vector<std::pair<std::string, std::string>>& properties) = 0;
  virtual void remove(const std::string& image_id) = 0;
  // For the image proxy API (/v2.1/images, before 2.36), as the caller: an image as Glance
  // shows it (nullopt: not there for them), every image matching Glance filters (all pages),
  // deletion, and property changes (set these, remove those).
  virtual std::optional<json::object> get(const AuthContext& auth, const std::string& id) = 0;
  virtual std::vector<json::object> list(
      const AuthContext& auth, const std::vector<std::pair<std::string, std::string>>& filters) = 0;
  virtual void remove(const AuthContext& auth, const std::string& id) = 0;
  virtual json::object set_properties(const AuthContext& auth, const std::string& id,
                                      const json::object& set,
                                      const std::vector<std::string>& unset) = 0;
  // Where the image is, as Nova's Location headers name it: <image endpoint>/images/<id>.
  virtual std::string location(const std::string& image_id) const = 0;
};

class RestImageClient : public ImageClient {
 public:
  // `session`: the compute service's own credentials, for its own image work (none: that work
  // fails, saying so).
  explicit RestImageClient(std::string image_url, std::shared_ptr<ServiceSession> session = nullptr)
      : url_(std::move(image_url)), session_(std::move(session)) {}
  std::optional<ImageInfo> show(const AuthContext& auth, const std::string& id) override;
  json::object create(const AuthContext& auth, const json::object& body) override;
  // Compute's own image work, with the service's credentials.
  void upload(const std::string& image_id, const std::string& path) override;
  json::object download(const std::string& image_id, const std::string& path) override;
  std::vector<json::object> find(
      const std::vector<std::pair<std::string, std::string>>& properties) override;
  void remove(const std::string& image_id) override;
  std::string location(const std::string& image_id) const override {
    return url_ + "/images/" + image_id;
  }
  std::optional<json::object> get(const AuthContext& auth, const std::string& id) override;
  std::vector<json::object> list(
      const AuthContext& auth,
      const std::vector<std::pair<std::string, std::string>>& filters) override;
  void remove(const AuthContext& auth, const std::string& id) override;
  json::object set_properties(const AuthContext& auth, const std::string& id,
                              const json::object& set,
                              const std::vector<std::string>& unset) override;

 private:
  // A call as the caller; the image service's error status passes through as Nova's fault.
  http::ClientResponse call(const AuthContext& auth, const std::string& method,
                            const std::string& path, const std::string& body = {},
                            const std::string& content_type = {});
  // A call with the service's own token (renewed once when refused); `send`/`fetch`: a file
  // streamed as the body, or the body streamed into a file.
  http::ClientResponse as_service(const std::string& method, const std::string& path,
                                  const std::string& send = {}, const std::string& fetch = {});

  std::string url_;
  std::shared_ptr<ServiceSession> session_;
};

}  // namespace nubo::compute
