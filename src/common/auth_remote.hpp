// Token validation against a remote identity service over HTTP (services running apart from
// identity), with a bounded cache so that a hot token costs no network round trip.
#pragma once

#include "common/auth.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nubo {

struct ServiceCredentials {
  std::string auth_url;  // http://host:5000/v3
  std::string username, password, project_name;
  std::string user_domain_name = "Default", project_domain_name = "Default";
};

class RemoteTokenValidator : public TokenValidator {
 public:
  explicit RemoteTokenValidator(ServiceCredentials credentials,
                                std::chrono::seconds cache_ttl = std::chrono::seconds(300));
  ~RemoteTokenValidator() override;
  AuthContext validate(std::string_view token, bool allow_expired = false) override;
  std::optional<AuthContext> validate_cached(std::string_view token) override;

 private:
  std::string service_token(bool renew);
  ServiceCredentials credentials_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::string service_token_;
  struct Entry {
    AuthContext context;
    std::chrono::steady_clock::time_point fetched;
  };
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace nubo
