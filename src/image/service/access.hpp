// Who may see and act on an image, shared by the service's files: Glance's is_image_visible,
// its policy target (ImageTarget), and its rule that an unreadable image does not exist.
#pragma once

#include <string>
#include <string_view>

#include "common/json.hpp"
#include "image/service/image_service.hpp"

namespace soci {
class session;
}

namespace nubo::image::access {

std::string str(const json::object& o, std::string_view key);
// The image row if the caller may see it (404 otherwise); `member` says whether the caller's
// project is a member of it (any status).
json::object visible_image(soci::session& s, const Caller& c, const std::string& id, bool& member);
PolicyTarget image_target(const Caller& c, const json::object& image, bool member);
// Forbidden when the rule fails but the caller may read the image, NotFound when it may not.
void enforce(const Caller& c, const std::string& rule, const PolicyTarget& target);

}  // namespace nubo::image::access
