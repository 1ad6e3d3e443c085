#include "common/limits.hpp"

namespace nubo {

std::optional<std::string> over_limit(const std::map<std::string, std::int64_t>& limits,
                                      const std::string& project_id,
                                      const std::vector<LimitCheck>& checks) {
  std::string over;
  for (auto& c : checks) {
    auto it = limits.find(c.resource);
    if (it == limits.end() || c.usage + c.delta <= it->second) continue;
    if (!over.empty()) over += ", ";
    over += "Resource " + c.resource + " is over limit of " + std::to_string(it->second) +
            " due to current usage " + std::to_string(c.usage) + " and delta " +
            std::to_string(c.delta);
  }
  if (over.empty()) return std::nullopt;
  return "Project " + project_id + " is over a limit for [" + over + "]";
}

}  // namespace nubo
