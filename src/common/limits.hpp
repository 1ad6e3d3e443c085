// Unified limits as services enforce them (oslo.limit's flat model): a project's own limit for a
// resource, else the limit registered for every project. Identity answers in-process in the
// all-in-one, over its API when a service runs apart (RemoteLimitSource in auth_remote.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nubo {

class LimitSource {
 public:
  virtual ~LimitSource() = default;
  // Effective limits of one service type's resources for a project in a region. A resource with
  // neither a project limit nor a registered one is absent: nothing limits it.
  virtual std::map<std::string, std::int64_t> project_limits(const std::string& service_type,
                                                             const std::string& region,
                                                             const std::string& project_id) = 0;
};

struct LimitCheck {
  std::string resource;
  std::int64_t usage = 0, delta = 0;
};

// The oslo.limit verdict for these checks: nullopt when usage + delta stays within every limit,
// else "Project P is over a limit for [Resource R is over limit of L due to current usage U and
// delta D, ...]", which services put in their own over-quota error.
std::optional<std::string> over_limit(const std::map<std::string, std::int64_t>& limits,
                                      const std::string& project_id,
                                      const std::vector<LimitCheck>& checks);

}  // namespace nubo
