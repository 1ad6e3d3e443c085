#include "identity/setup.hpp"

#include <filesystem>

namespace nubo::identity {

IdentitySettings settings_from_config(const Config& c, const std::string& state_dir) {
  IdentitySettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("identity", "port", 5000);
  s.public_url =
      c.get_string("identity", "public_url", "http://" + host + ":" + std::to_string(port));
  s.region = c.get_string("DEFAULT", "region", "RegionOne");
  s.token_expiration = static_cast<int>(c.get_int("token", "expiration", 3600));
  s.expired_token_window = static_cast<int>(c.get_int("token", "allow_expired_window", 172800));
  s.bcrypt_cost = static_cast<int>(c.get_int("identity", "password_hash_rounds", 12));
  s.lockout_failure_attempts =
      static_cast<int>(c.get_int("security_compliance", "lockout_failure_attempts", 0));
  s.lockout_duration = static_cast<int>(c.get_int("security_compliance", "lockout_duration", 1800));
  s.unique_last_password_count =
      static_cast<int>(c.get_int("security_compliance", "unique_last_password_count", 0));
  s.minimum_password_age_days =
      static_cast<int>(c.get_int("security_compliance", "minimum_password_age", 0));
  s.password_expires_days =
      static_cast<int>(c.get_int("security_compliance", "password_expires_days", 0));
  s.max_active_keys = static_cast<int>(c.get_int("fernet_tokens", "max_active_keys", 3));
  s.key_repository = c.get_string("fernet_tokens", "key_repository", state_dir + "/fernet-keys");
  return s;
}

std::shared_ptr<IdentityService> open_identity_service(const Config& c,
                                                       const std::string& state_dir) {
  auto database = db::Database::open_for(c, "identity", state_dir);
  return std::make_shared<IdentityService>(std::move(database), settings_from_config(c, state_dir));
}

}  // namespace nubo::identity
