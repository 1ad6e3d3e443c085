// What compute asks of the image service: an image as the calling user sees it. RestImageClient
// asks Glance's API with the caller's token, in the all-in-one as when the services run apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/auth.hpp"
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

class ImageClient {
 public:
  virtual ~ImageClient() = default;
  // The image if the caller may see it; nullopt when it does not exist for them.
  virtual std::optional<ImageInfo> show(const AuthContext& auth, const std::string& id) = 0;
};

class RestImageClient : public ImageClient {
 public:
  explicit RestImageClient(std::string image_url) : url_(std::move(image_url)) {}
  std::optional<ImageInfo> show(const AuthContext& auth, const std::string& id) override;

 private:
  std::string url_;
};

}  // namespace nubo::compute
