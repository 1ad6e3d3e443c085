// Who is calling: the validated token's identity and scope, shared by every service.
#pragma once

#include "common/json.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nubo {

struct AuthContext {
  std::string token;
  std::vector<std::string> methods;
  std::string user_id, user_name, user_domain_id, user_domain_name;
  std::string project_id, project_name, project_domain_id, project_domain_name;
  std::string domain_id, domain_name;  // domain scope
  bool system_scope = false;           // system: all
  std::vector<std::string> roles;      // names
  std::vector<std::string> role_ids;
  bool is_admin_project = false;
  std::string application_credential_id;
  std::string trust_id;
  std::string expires_at, issued_at;
  std::vector<std::string> audit_ids;

  bool scoped() const { return system_scope || !project_id.empty() || !domain_id.empty(); }
  bool has_role(std::string_view name) const;
  // The credentials dictionary oslo.policy rules are checked against.
  json::object policy_credentials() const;
};

// Reads a Keystone token body ({"token": {...}}) into a context.
AuthContext auth_context_from_token(const json::object& body, std::string_view token);

// Validates a token and returns its context; throws ApiError (401/404) when it is not valid.
class TokenValidator {
 public:
  virtual ~TokenValidator() = default;
  virtual AuthContext validate(std::string_view token, bool allow_expired = false) = 0;
  // The context when it is known without blocking work (a cache hit); nullopt otherwise.
  virtual std::optional<AuthContext> validate_cached(std::string_view) { return std::nullopt; }
};

}  // namespace nubo
