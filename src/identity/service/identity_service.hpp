// The identity service's operations: resources over the store, password hashing and lockout,
// effective role computation, the catalog, and Fernet token issue/validation/revocation.
#pragma once

#include "common/auth.hpp"
#include "common/db/database.hpp"
#include "common/db/table.hpp"
#include "common/hash_pool.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/limits.hpp"
#include "identity/token/fernet.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nubo::identity {

struct IdentitySettings {
  std::string public_url = "http://127.0.0.1:5000";  // base for links and the identity endpoint
  std::string region = "RegionOne";
  std::string default_domain_id = "default";
  int token_expiration = 3600;
  bool allow_expired_window = true;
  int expired_token_window = 172800;
  int bcrypt_cost = 12;
  int lockout_failure_attempts = 0;  // 0: off
  int lockout_duration = 1800;
  int unique_last_password_count = 0;
  int minimum_password_age_days = 0;
  int password_expires_days = 0;
  int max_active_keys = 3;
  std::string key_repository;
};

struct Scope {
  std::string project_id, domain_id;
  bool system = false;
};

class IdentityService : public TokenValidator, public LimitSource {
 public:
  IdentityService(std::unique_ptr<db::Database> database, IdentitySettings settings,
                  std::shared_ptr<Clock> clock = std::make_shared<Clock>());
  ~IdentityService() override;

  db::Database& database() { return *db_; }
  // Unified limits for the services in this process (service/limits.cpp).
  std::map<std::string, std::int64_t> project_limits(const std::string& service_type,
                                                     const std::string& region,
                                                     const std::string& project_id) override;
  const IdentitySettings& settings() const { return settings_; }
  FernetKeyRepository& keys() { return keys_; }
  TimePoint now() const { return clock_->now(); }

  // Generic resource access (the store layer is the generic table code).
  std::optional<json::object> find(const db::Table& table, std::string_view id);
  json::object get(const db::Table& table, std::string_view id, std::string_view kind);
  std::vector<json::object> list(const db::Table& table, const db::Query& query = {});
  void write(const std::function<void(soci::session&)>& fn);
  void read(const std::function<void(soci::session&)>& fn);

  // Passwords (bcrypt $2b$ through libxcrypt, as Keystone stores them).
  // Both run on the low-priority hashing threads.
  std::string hash_secret(std::string_view secret);
  bool verify_secret(std::string_view secret, std::string_view hash);
  static std::string bcrypt_hash(std::string_view secret, int cost);
  static bool crypt_verify(std::string_view secret, std::string_view hash);
  // Checks history and minimum age for self-service changes; throws BadRequest.
  void check_password_change(const std::string& user_id, const std::string& new_password);
  void set_password(const std::string& user_id, const std::string& new_password, bool self_service);

  // Roles
  std::vector<json::object> effective_roles(const std::string& user_id, const Scope& scope);
  // Roles reached from these role ids through implication (including themselves).
  std::vector<std::string> expand_implied(const std::vector<std::string>& role_ids);
  std::vector<std::string> project_ancestors(const std::string& project_id);
  std::vector<std::string> project_descendants(const std::string& project_id);
  std::vector<std::string> user_group_ids(const std::string& user_id);
  json::array catalog();
  // The catalog for a token: %(project_id)s, $(project_id)s, %(tenant_id)s and %(user_id)s in
  // endpoint URLs filled in (Swift's AUTH_%(project_id)s); endpoints that need a project are left
  // out of tokens without one, as Keystone does.
  json::array catalog(const std::string& project_id, const std::string& user_id);

  // Tokens
  struct Issued {
    std::string token;
    json::object body;
  };
  Issued authenticate(const json::object& request_body);
  // Validates (404 when invalid, expired or revoked) and renders the token body.
  json::object validate_body(std::string_view token, bool with_catalog, bool allow_expired);
  // The same body serialized, cached per token until anything it depends on changes.
  std::string validate_text(std::string_view token, bool with_catalog, bool allow_expired);
  // The user a valid token belongs to (404 when it is not valid), without rendering it.
  std::string token_user(std::string_view token, bool allow_expired);
  AuthContext validate(std::string_view token, bool allow_expired = false) override;
  std::optional<AuthContext> validate_cached(std::string_view token) override;
  // The serialized body when cached and still valid; nullopt when it must be rendered.
  std::optional<std::string> cached_text(std::string_view token, bool with_catalog);
  void revoke_token(std::string_view token);
  // Records a revocation event; empty fields match anything.
  void revoke(const std::string& user_id, const std::string& project_id = {}, const std::string& domain_id = {},
              const std::string& audit_id = {}, const std::string& trust_id = {});
  // Call after any write that changes what tokens render (names, roles, catalog).
  void changed() { generation_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }
  // Re-reads what other processes may change: Fernet keys (after `nubo token rotate`) and
  // revocation events (from other API processes on a shared database); drops caches.
  void refresh();

  // Links
  std::string link(std::string_view path) const { return settings_.public_url + "/v3/" + std::string(path); }

 private:
  TokenPayload parse(std::string_view token, bool allow_expired);
  bool revoked(const TokenPayload& payload);
  void load_revocations();
  json::object render(const TokenPayload& payload, bool with_catalog);
  struct Resolved;
  Resolved resolve_scope(const std::string& user_id, const json::object* scope, const std::string& default_project);
  json::object check_password_auth(const json::object& password);

  std::unique_ptr<db::Database> db_;
  IdentitySettings settings_;
  std::shared_ptr<Clock> clock_;
  FernetKeyRepository keys_;
  TokenFormatter formatter_;
  std::atomic<std::uint64_t> generation_{1};
  HashPool hashing_{std::max(2u, std::thread::hardware_concurrency())};

  struct RevocationEvent {
    std::string user_id, project_id, domain_id, audit_id, trust_id;
    double issued_before = 0;
  };
  std::shared_mutex revocation_mu_;
  std::vector<RevocationEvent> revocations_;

  struct CacheEntry {
    std::uint64_t generation;
    AuthContext context;
    double expires_at;  // unix seconds, so the hot path need not parse the ISO string
  };
  std::mutex cache_mu_;
  std::unordered_map<std::string, CacheEntry> cache_;
  struct BodyEntry {
    std::uint64_t generation;
    std::string text;
  };
  std::unordered_map<std::string, BodyEntry> body_cache_;
  std::unordered_map<std::string, TokenPayload> payload_cache_;
  std::mutex catalog_mu_;
  std::uint64_t catalog_generation_ = 0;
  json::array catalog_;
};

// Renderers shared by the API and the token body.
json::object user_view(const IdentityService& s, const json::object& row);
json::object project_view(const IdentityService& s, const json::object& row, const std::vector<std::string>& tags);
json::object domain_view(const IdentityService& s, const json::object& row);
json::object role_view(const IdentityService& s, const json::object& row);

}  // namespace nubo::identity
