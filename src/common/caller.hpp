// Who is calling a service operation, and what the policy lets them do: the API binds it to the
// request's token and policy, so that service code checks rules without knowing HTTP.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/auth.hpp"
#include "common/error.hpp"

namespace nubo {

using PolicyTarget = std::map<std::string, std::string>;

struct Caller {
  const AuthContext& auth;
  std::function<bool(const std::string& rule, const PolicyTarget& target)> allowed;
  // The service's wording of a refusal; Glance's when unset.
  std::function<std::string(const std::string& rule)> denied = {};
  std::string request_id = {};  // the API request's id, for records that name it (instance actions)

  const std::string& project() const { return auth.project_id; }
  const std::string& user() const { return auth.user_id; }
  // The `context_is_admin` rule, as OpenStack services' context.is_admin.
  bool admin() const { return allowed("context_is_admin", {}); }
  void authorize(const std::string& rule, const PolicyTarget& target) const {
    if (allowed(rule, target)) return;
    throw Forbidden(denied ? denied(rule) : "You are not authorized to complete " + rule + " action.");
  }
};

}  // namespace nubo
