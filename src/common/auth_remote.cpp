#include "common/auth_remote.hpp"

#include "common/error.hpp"
#include "common/http/client.hpp"
#include "common/ids.hpp"

#include <spdlog/spdlog.h>

namespace nubo {

RemoteTokenValidator::RemoteTokenValidator(ServiceCredentials credentials, std::chrono::seconds cache_ttl)
    : credentials_(std::move(credentials)), ttl_(cache_ttl) {}
RemoteTokenValidator::~RemoteTokenValidator() = default;

std::string RemoteTokenValidator::service_token(bool renew) {
  {
    std::lock_guard lock(mu_);
    if (!renew && !service_token_.empty()) return service_token_;
  }
  json::object body{
      {"auth",
       json::object{
           {"identity",
            json::object{{"methods", json::array{"password"}},
                         {"password", json::object{{"user", json::object{{"name", credentials_.username},
                                                                         {"password", credentials_.password},
                                                                         {"domain", json::object{{"name", credentials_.user_domain_name}}}}}}}}},
           {"scope", json::object{{"project", json::object{{"name", credentials_.project_name},
                                                           {"domain", json::object{{"name", credentials_.project_domain_name}}}}}}}}}};
  http::Client client;
  auto r = client.request("POST", credentials_.auth_url + "/auth/tokens?nocatalog",
                          {{"Content-Type", "application/json"}}, json::serialize(body));
  auto token = r.headers.get("X-Subject-Token");
  if (r.status != 201 || !token) {
    spdlog::error("service authentication at {} failed: HTTP {}", credentials_.auth_url, r.status);
    throw ApiError(503, "The identity service refused this service's credentials.");
  }
  std::lock_guard lock(mu_);
  service_token_ = std::string(*token);
  return service_token_;
}

std::optional<AuthContext> RemoteTokenValidator::validate_cached(std::string_view token) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(std::string(token));
  if (it == cache_.end() || std::chrono::steady_clock::now() - it->second.fetched > ttl_) return std::nullopt;
  auto exp = parse_iso8601(it->second.context.expires_at);
  if (!exp || *exp <= std::chrono::system_clock::now()) return std::nullopt;
  return it->second.context;
}

AuthContext RemoteTokenValidator::validate(std::string_view token, bool allow_expired) {
  if (!allow_expired)
    if (auto c = validate_cached(token)) return std::move(*c);
  http::Client client;
  std::string url = credentials_.auth_url + "/auth/tokens?nocatalog" + (allow_expired ? "&allow_expired=1" : "");
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = client.request("GET", url, {{"X-Auth-Token", service_token(attempt > 0)}, {"X-Subject-Token", std::string(token)}});
    if (r.status == 401 && attempt == 0) continue;  // our own token expired: renew once
    if (r.status == 404 || r.status == 401) throw Unauthorized();
    if (r.status != 200) throw ApiError(503, "The identity service could not validate the token.");
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) throw ApiError(503, "The identity service returned an invalid token body.");
    auto c = auth_context_from_token(v.as_object(), token);
    if (!allow_expired) {
      std::lock_guard lock(mu_);
      if (cache_.size() > 10000) cache_.clear();
      cache_[std::string(token)] = Entry{c, std::chrono::steady_clock::now()};
    }
    return c;
  }
  throw Unauthorized();
}

}  // namespace nubo
