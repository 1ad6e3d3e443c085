// Placement's built-in names: the standard resource classes (in os-resource-classes order) and the
// standard traits (sorted).
#pragma once

#include <string>
#include <vector>

namespace nubo::placement {

const std::vector<std::string>& standard_resource_classes();
const std::vector<std::string>& standard_traits();

}  // namespace nubo::placement
