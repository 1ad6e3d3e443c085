#include "common/auth_remote.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/http/client.hpp"
#include "common/http/message.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace nubo {

std::string ServiceSession::token(bool renew) {
  {
    std::lock_guard lock(mu_);
    if (!renew && !token_.empty()) return token_;
  }
  json::object body{
      {"auth",
       json::object{
           {"identity",
            json::object{
                {"methods", json::array{"password"}},
                {"password",
                 json::object{
                     {"user",
                      json::object{
                          {"name", credentials_.username},
                          {"password", credentials_.password},
                          {"domain", json::object{{"name", credentials_.user_domain_name}}}}}}}}},
           {"scope",
            json::object{
                {"project",
                 json::object{
                     {"name", credentials_.project_name},
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
  token_ = std::string(*token);
  return token_;
}

std::pair<int, std::string> ServiceSession::get(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers) {
  http::Client client;
  auto r = with_token([&](const std::string& token) {
    std::vector<std::pair<std::string, std::string>> all{{"X-Auth-Token", token}};
    all.insert(all.end(), headers.begin(), headers.end());
    return client.request("GET", credentials_.auth_url + path, all);
  });
  return {r.status, std::move(r.body)};
}

RemoteTokenValidator::RemoteTokenValidator(std::shared_ptr<ServiceSession> session,
                                           std::chrono::seconds cache_ttl)
    : session_(std::move(session)), ttl_(cache_ttl) {}
RemoteTokenValidator::~RemoteTokenValidator() = default;

std::optional<AuthContext> RemoteTokenValidator::validate_cached(std::string_view token) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(std::string(token));
  if (it == cache_.end() || std::chrono::steady_clock::now() - it->second.fetched > ttl_)
    return std::nullopt;
  auto exp = parse_iso8601(it->second.context.expires_at);
  if (!exp || *exp <= std::chrono::system_clock::now()) return std::nullopt;
  return it->second.context;
}

AuthContext RemoteTokenValidator::validate(std::string_view token, bool allow_expired) {
  if (!allow_expired)
    if (auto c = validate_cached(token)) return std::move(*c);
  auto [status, body] = session_->get(
      std::string("/auth/tokens?nocatalog") + (allow_expired ? "&allow_expired=1" : ""),
      {{"X-Subject-Token", std::string(token)}});
  if (status == 404 || status == 401) throw Unauthorized();
  if (status != 200) throw ApiError(503, "The identity service could not validate the token.");
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    throw ApiError(503, "The identity service returned an invalid token body.");
  auto c = auth_context_from_token(v.as_object(), token);
  if (!allow_expired) {
    std::lock_guard lock(mu_);
    if (cache_.size() > 10000) cache_.clear();
    cache_[std::string(token)] = Entry{c, std::chrono::steady_clock::now()};
  }
  return c;
}

namespace {

// The named collection of a successful identity answer; a failure is the identity service's
// problem, reported as 503 so that the caller's request is not mistaken for over quota.
json::array collection(const std::pair<int, std::string>& r, const char* name) {
  boost::system::error_code ec;
  auto v = json::parse(r.second, ec);
  if (r.first != 200 || ec || !v.is_object() || !v.as_object().contains(name) ||
      !v.as_object().at(name).is_array()) {
    spdlog::error("reading {} from the identity service failed: HTTP {}", name, r.first);
    throw ApiError(503, "The identity service could not give this project's limits.");
  }
  return v.as_object().at(name).as_array();
}

}  // namespace

std::map<std::string, std::int64_t> RemoteLimitSource::project_limits(
    const std::string& service_type, const std::string& region, const std::string& project_id) {
  std::map<std::string, std::int64_t> out;
  auto services =
      collection(session_->get("/services?type=" + http::percent_encode(service_type)), "services");
  for (auto& svc : services) {
    if (!svc.is_object() || !svc.as_object().contains("id")) continue;
    std::string sid(svc.as_object().at("id").as_string());
    auto applies = [&](const json::object& o) {
      auto* r = o.if_contains("region_id");
      return !r || r->is_null() || (r->is_string() && r->as_string() == region);
    };
    for (auto& l :
         collection(session_->get("/registered_limits?service_id=" + sid), "registered_limits"))
      if (l.is_object() && applies(l.as_object()) &&
          !out.count(std::string(l.as_object().at("resource_name").as_string())))
        out[std::string(l.as_object().at("resource_name").as_string())] =
            l.as_object().at("default_limit").to_number<std::int64_t>();
    for (auto& l : collection(session_->get("/limits?service_id=" + sid +
                                            "&project_id=" + http::percent_encode(project_id)),
                              "limits"))
      if (l.is_object() && applies(l.as_object()))
        out[std::string(l.as_object().at("resource_name").as_string())] =
            l.as_object().at("resource_limit").to_number<std::int64_t>();
  }
  return out;
}

}  // namespace nubo
