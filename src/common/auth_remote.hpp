// Token validation against a remote identity service over HTTP (services running apart from
// identity), with a bounded cache so that a hot token costs no network round trip.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/auth.hpp"
#include "common/limits.hpp"

namespace nubo {

struct ServiceCredentials {
  std::string auth_url;  // http://host:5000/v3
  std::string username, password, project_name;
  std::string user_domain_name = "Default", project_domain_name = "Default";
};

// A service's own session with the identity API: its token, fetched once and renewed when refused.
class ServiceSession {
 public:
  explicit ServiceSession(ServiceCredentials credentials) : credentials_(std::move(credentials)) {}
  const ServiceCredentials& credentials() const { return credentials_; }
  // GET auth_url + path with the service's token (renewed once on 401); returns status and body.
  std::pair<int, std::string> get(
      const std::string& path,
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // The service's token (fetched now when there is none yet, or when `renew`: it was refused).
  std::string token(bool renew = false);
  // Runs call(token) and returns its response; once more with a renewed token when the first
  // was refused (401: it expired).
  template <class Call>
  auto with_token(Call&& call) {
    auto r = call(token());
    if (r.status == 401) r = call(token(true));
    return r;
  }

 private:
  ServiceCredentials credentials_;
  std::mutex mu_;
  std::string token_;
};

class RemoteTokenValidator : public TokenValidator {
 public:
  explicit RemoteTokenValidator(std::shared_ptr<ServiceSession> session,
                                std::chrono::seconds cache_ttl = std::chrono::seconds(300));
  ~RemoteTokenValidator() override;
  AuthContext validate(std::string_view token, bool allow_expired = false) override;
  std::optional<AuthContext> validate_cached(std::string_view token) override;

 private:
  std::shared_ptr<ServiceSession> session_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  struct Entry {
    AuthContext context;
    std::chrono::steady_clock::time_point fetched;
  };
  std::unordered_map<std::string, Entry> cache_;
};

// Unified limits read from the identity API (service ids by type, then registered and project
// limits), uncached: limits change rarely, but an operator who raises one expects it at once.
class RemoteLimitSource : public LimitSource {
 public:
  explicit RemoteLimitSource(std::shared_ptr<ServiceSession> session)
      : session_(std::move(session)) {}
  std::map<std::string, std::int64_t> project_limits(const std::string& service_type,
                                                     const std::string& region,
                                                     const std::string& project_id) override;

 private:
  std::shared_ptr<ServiceSession> session_;
};

}  // namespace nubo
