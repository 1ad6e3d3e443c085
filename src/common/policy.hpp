// oslo.policy's rule language ("role:admin or (role:reader and system_scope:all)", "rule:x",
// "%(target.x)s" substitutions) with built-in defaults per service and policy.yaml overrides.
#pragma once

#include "common/json.hpp"

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace nubo {

struct PolicyNode;

class Policy {
 public:
  // defaults: rule name -> rule text (a service's built-in policy)
  explicit Policy(std::map<std::string, std::string> defaults);
  ~Policy();
  Policy(Policy&&) noexcept;
  // Loads a policy.yaml (or JSON) file of overrides; throws on parse errors.
  void load_overrides(const std::string& path);
  // A service's policy: its defaults, overridden by the operator's file when that exists.
  static std::shared_ptr<Policy> with_overrides(std::map<std::string, std::string> defaults, const std::string& path);
  void set_rule(const std::string& name, const std::string& text);
  bool has_rule(const std::string& name) const;

  // credentials: {"roles": [...], "user_id", "project_id", "domain_id", "system_scope", ...}
  // target: flat keys such as "target.user.domain_id" or "project_id".
  bool enforce(std::string_view rule, const json::object& credentials,
               const std::map<std::string, std::string>& target) const;
  // Evaluates a rule expression directly (for tests).
  static bool check_expression(std::string_view expression, const json::object& credentials,
                               const std::map<std::string, std::string>& target);

 private:
  std::map<std::string, std::shared_ptr<PolicyNode>, std::less<>> rules_;
};

}  // namespace nubo
