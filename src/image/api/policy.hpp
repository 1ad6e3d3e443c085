// The image service's built-in policy rules (Glance's defaults; overridable with policy.yaml).
#pragma once

#include <map>
#include <string>

namespace nubo::image::api {
std::map<std::string, std::string> default_policy();
}
