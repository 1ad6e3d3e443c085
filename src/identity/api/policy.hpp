// Identity's built-in policy rules (overridable with policy.yaml).
#pragma once

#include <map>
#include <string>

namespace nubo::identity::api {
std::map<std::string, std::string> default_policy();
}
