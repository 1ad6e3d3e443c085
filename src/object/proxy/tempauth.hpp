// Swift's tempauth, for object storage without the identity service: users named in the
// configuration ([tempauth] user_<account>_<user> = <key> [.admin] [.reseller_admin] [group...]
// [storage url]), tokens from GET /auth/v1.0 (X-Auth-User: account:user, X-Auth-Key) or
// /auth/v1/<account>/auth, and the caller's identity mapped onto the proxy's keystoneauth rules:
// a user's project is its account name, its roles are its groups (<account>, configured ones,
// .admin, .reseller_admin), and the proxy's operator role is .admin, its reseller role
// .reseller_admin. So `<account>:<user>` and `<account>` in ACLs mean what they mean in Swift.
//
// Tokens are signed rather than kept (Swift keeps them in memcache): AUTH_tk, an HMAC-SHA256 of
// the user, its key and the expiry under a secret the proxies share, the expiry and the user, so
// that any proxy with the same configuration accepts them, and changing a user's key or removing
// it revokes its tokens.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/auth.hpp"
#include "common/http/message.hpp"

namespace nubo {
class Config;
}

namespace nubo::object {

struct TempAuthUser {
  std::string account, user, key;
  std::vector<std::string> groups;  // as configured (.admin, .reseller_admin, others)
  std::string storage_url;          // empty: <scheme>://<Host>/v1/<prefix><account>
};

struct TempAuthSettings {
  std::vector<TempAuthUser> users;
  std::string secret;
  std::chrono::seconds token_life{86400};
  std::string reseller_prefix = "AUTH_";
};

// [tempauth] of the configuration; secret_fallback when it sets no `secret`.
TempAuthSettings tempauth_settings_from_config(const Config& c, const std::string& secret_fallback);

class TempAuth : public TokenValidator {
 public:
  explicit TempAuth(TempAuthSettings s);
  AuthContext validate(std::string_view token, bool allow_expired = false) override;
  std::optional<AuthContext> validate_cached(std::string_view token) override {
    return validate(token);  // no I/O: a signature to check
  }
  // GET /auth/...: a token and the user's storage URL, or Swift's 401.
  http::Response get_token(const http::Request& r);
  const TempAuthSettings& settings() const { return settings_; }

 private:
  const TempAuthUser* find(const std::string& account, const std::string& user) const;
  std::string sign(const TempAuthUser& u, std::int64_t expires) const;
  TempAuthSettings settings_;
};

}  // namespace nubo::object
