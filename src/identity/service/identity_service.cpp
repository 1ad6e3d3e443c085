#include "identity/service/identity_service.hpp"

#include "common/error.hpp"
#include "identity/store/schema.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace nubo::identity {

namespace st = store;

IdentityService::IdentityService(std::unique_ptr<db::Database> database, IdentitySettings settings,
                                 std::shared_ptr<Clock> clock)
    : db_(std::move(database)),
      settings_(std::move(settings)),
      clock_(std::move(clock)),
      keys_(settings_.key_repository, settings_.max_active_keys),
      formatter_(keys_) {
  db_->migrate("identity", st::migrations());
  keys_.setup();
  load_revocations();
}

void IdentityService::refresh() {
  keys_.load();
  load_revocations();
  changed();
}

IdentityService::~IdentityService() = default;

// ---------------------------------------------------------------- resources

std::optional<json::object> IdentityService::find(const db::Table& table, std::string_view id) {
  std::optional<json::object> out;
  db_->read([&](soci::session& s) { out = db::get(s, table, id); });
  return out;
}

json::object IdentityService::get(const db::Table& table, std::string_view id, std::string_view kind) {
  auto row = find(table, id);
  if (!row) throw NotFound("Could not find " + std::string(kind) + ": " + std::string(id) + ".");
  return std::move(*row);
}

std::vector<json::object> IdentityService::list(const db::Table& table, const db::Query& query) {
  std::vector<json::object> out;
  db_->read([&](soci::session& s) { out = db::select(s, table, query); });
  return out;
}

void IdentityService::write(const std::function<void(soci::session&)>& fn) {
  db_->write(fn);
  changed();
}

void IdentityService::read(const std::function<void(soci::session&)>& fn) { db_->read(fn); }

// ---------------------------------------------------------------- passwords

std::string IdentityService::hash_secret(std::string_view secret) {
  return hashing_.run([&] { return bcrypt_hash(secret, settings_.bcrypt_cost); });
}

bool IdentityService::verify_secret(std::string_view secret, std::string_view hash) {
  return hashing_.run([&] { return crypt_verify(secret, hash); });
}

std::string IdentityService::bcrypt_hash(std::string_view secret, int cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting, sizeof setting))
    throw std::runtime_error("crypt_gensalt failed");
  crypt_data data{};
  std::string pw(secret.substr(0, 72));  // bcrypt reads at most 72 bytes
  char* h = crypt_r(pw.c_str(), setting, &data);
  if (!h || h[0] == '*') throw std::runtime_error("crypt failed");
  return h;
}

bool IdentityService::crypt_verify(std::string_view secret, std::string_view hash) {
  if (hash.empty()) return false;
  crypt_data data{};
  std::string pw(secret.substr(0, 72));
  std::string setting(hash);
  char* h = crypt_r(pw.c_str(), setting.c_str(), &data);
  if (!h || h[0] == '*') return false;
  std::string_view got(h);
  return got.size() == hash.size() && CRYPTO_memcmp(got.data(), hash.data(), got.size()) == 0;
}

void IdentityService::check_password_change(const std::string& user_id, const std::string& new_password) {
  if (auto user = find(st::user, user_id); user && (*user)["options"].is_object() &&
                                            bool_or((*user)["options"].as_object(), "lock_password", false))
    throw Forbidden("You cannot change your password at this time: it is locked by an administrator.");
  std::vector<json::object> history;
  read([&](soci::session& s) {
    db::Query q;
    q.eq("user_id", user_id);
    q.order_by = "created_at_us";
    q.descending = true;
    history = db::select(s, st::password, q);
  });
  if (settings_.minimum_password_age_days > 0 && !history.empty()) {
    auto set_at = history.front()["created_at_us"].as_int64();
    auto age_us = std::chrono::duration_cast<std::chrono::microseconds>(now().time_since_epoch()).count() - set_at;
    if (age_us < static_cast<std::int64_t>(settings_.minimum_password_age_days) * 86400LL * 1000000LL)
      throw BadRequest("You cannot change your password at this time due to the minimum password age. Once you "
                       "change your password, it must be used for " +
                       std::to_string(settings_.minimum_password_age_days) +
                       " day(s) before it can be changed. Please try again in the future or contact your "
                       "administrator to reset your password.");
  }
  int n = std::max(settings_.unique_last_password_count, 1);
  for (int i = 0; i < n && i < static_cast<int>(history.size()); ++i) {
    if (verify_secret(new_password, std::string(history[i]["password_hash"].as_string())))
      throw BadRequest("The new password cannot be identical to a previous password. The total number which "
                       "includes the new password must be unique is " +
                       std::to_string(n) + ".");
  }
}

void IdentityService::set_password(const std::string& user_id, const std::string& new_password, bool self_service) {
  auto hash = hash_secret(new_password);
  auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now().time_since_epoch()).count();
  json::value expires = nullptr;
  if (settings_.password_expires_days > 0)
    expires = iso8601(now() + std::chrono::hours(24 * settings_.password_expires_days));
  write([&](soci::session& s) {
    db::insert(s, st::password,
               json::object{{"id", uuid4_hex()}, {"user_id", user_id}, {"password_hash", hash},
                            {"created_at_us", now_us}, {"self_service", self_service}, {"expires_at", expires}});
    // Keep only what the history check needs.
    db::Query q;
    q.eq("user_id", user_id);
    q.order_by = "created_at_us";
    q.descending = true;
    auto rows = db::select(s, st::password, q);
    size_t keep = static_cast<size_t>(std::max(settings_.unique_last_password_count, 1));
    for (size_t i = keep; i < rows.size(); ++i) db::remove_id(s, st::password, rows[i]["id"].as_string());
  });
}

// ---------------------------------------------------------------- roles

std::vector<std::string> IdentityService::user_group_ids(const std::string& user_id) {
  std::vector<std::string> out;
  read([&](soci::session& s) {
    for (auto& r : db::select(s, st::user_group, db::Query{}.eq("user_id", user_id)))
      out.emplace_back(r["group_id"].as_string());
  });
  return out;
}

std::vector<std::string> IdentityService::project_ancestors(const std::string& project_id) {
  std::vector<std::string> out;
  read([&](soci::session& s) {
    std::string id = project_id;
    for (int depth = 0; depth < 64; ++depth) {
      auto p = db::get(s, st::project, id);
      if (!p || !(*p)["parent_id"].is_string()) break;
      std::string parent(p->at("parent_id").as_string());
      auto pp = db::get(s, st::project, parent);
      if (!pp || (*pp)["is_domain"].as_bool()) break;
      out.push_back(parent);
      id = parent;
    }
  });
  return out;
}

std::vector<std::string> IdentityService::project_descendants(const std::string& project_id) {
  std::vector<std::string> out;
  read([&](soci::session& s) {
    std::vector<std::string> frontier{project_id};
    while (!frontier.empty() && out.size() < 100000) {
      auto rows = db::select(s, st::project, db::Query{}.in("parent_id", frontier));
      frontier.clear();
      for (auto& r : rows) {
        if (r["is_domain"].as_bool()) continue;
        out.emplace_back(r["id"].as_string());
        frontier.emplace_back(r["id"].as_string());
      }
    }
  });
  return out;
}

std::vector<std::string> IdentityService::expand_implied(const std::vector<std::string>& role_ids) {
  std::vector<json::object> rules;
  read([&](soci::session& s) { rules = db::select(s, st::implied_role); });
  std::set<std::string> seen(role_ids.begin(), role_ids.end());
  std::vector<std::string> out(seen.begin(), seen.end()), frontier = out;
  while (!frontier.empty()) {
    std::vector<std::string> next;
    for (auto& r : rules) {
      std::string prior(r["prior_role_id"].as_string()), implied(r["implied_role_id"].as_string());
      if (std::find(frontier.begin(), frontier.end(), prior) != frontier.end() && seen.insert(implied).second) {
        out.push_back(implied);
        next.push_back(implied);
      }
    }
    frontier = std::move(next);
  }
  return out;
}

std::vector<json::object> IdentityService::effective_roles(const std::string& user_id, const Scope& scope) {
  std::vector<std::string> actors = user_group_ids(user_id);
  actors.push_back(user_id);
  std::vector<std::string> role_ids;
  read([&](soci::session& s) {
    auto collect = [&](std::vector<std::string> types, std::vector<std::string> targets, bool inherited) {
      db::Query q;
      q.in("actor_id", actors).in("target_id", std::move(targets)).in("type", std::move(types));
      q.eq("inherited", inherited ? "1" : "0");
      for (auto& r : db::select(s, st::assignment, q)) role_ids.emplace_back(r["role_id"].as_string());
    };
    if (!scope.project_id.empty()) {
      auto p = db::get(s, st::project, scope.project_id);
      if (!p) return;
      collect({"UserProject", "GroupProject"}, {scope.project_id}, false);
      collect({"UserDomain", "GroupDomain"}, {std::string((*p)["domain_id"].as_string())}, true);
    } else if (!scope.domain_id.empty()) {
      collect({"UserDomain", "GroupDomain"}, {scope.domain_id}, false);
    } else if (scope.system) {
      collect({"UserSystem", "GroupSystem"}, {"system"}, false);
    }
  });
  if (!scope.project_id.empty()) {
    auto ancestors = project_ancestors(scope.project_id);
    if (!ancestors.empty()) {
      read([&](soci::session& s) {
        db::Query q;
        q.in("actor_id", actors).in("target_id", ancestors).in("type", {"UserProject", "GroupProject"});
        q.eq("inherited", "1");
        for (auto& r : db::select(s, st::assignment, q)) role_ids.emplace_back(r["role_id"].as_string());
      });
    }
  }
  if (role_ids.empty()) return {};
  auto all = expand_implied(role_ids);
  std::vector<json::object> out;
  read([&](soci::session& s) {
    db::Query q;
    q.in("id", all).eq("domain_id", st::kNullDomain);
    q.order_by = "name";
    out = db::select(s, st::role, q);
  });
  return out;
}

json::array IdentityService::catalog() {
  auto gen = generation_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(catalog_mu_);
    if (catalog_generation_ == gen) return catalog_;
  }
  json::array out;
  read([&](soci::session& s) {
    auto services = db::select(s, st::service, db::Query{}.eq("enabled", "1"));
    auto endpoints = db::select(s, st::endpoint, db::Query{}.eq("enabled", "1"));
    for (auto& svc : services) {
      json::array eps;
      for (auto& e : endpoints) {
        if (e["service_id"] != svc["id"]) continue;
        eps.push_back(json::object{{"id", e["id"]},
                                   {"interface", e["interface"]},
                                   {"region_id", e["region_id"]},
                                   {"url", e["url"]},
                                   {"region", e["region_id"]}});
      }
      json::object entry{{"endpoints", std::move(eps)}, {"id", svc["id"]}, {"type", svc["type"]}};
      entry["name"] = svc.contains("name") ? svc["name"] : json::value("");
      out.push_back(std::move(entry));
    }
  });
  std::lock_guard lock(catalog_mu_);
  catalog_ = out;
  catalog_generation_ = gen;
  return out;
}

json::array IdentityService::catalog(const std::string& project_id, const std::string& user_id) {
  auto all = catalog();
  // %(name)s or $(name)s filled in; nullopt when the token lacks the value.
  auto fill = [&](std::string url) -> std::optional<std::string> {
    for (auto* open : {"%(", "$("}) {
      for (auto [name, value] : {std::pair{"project_id", &project_id}, std::pair{"tenant_id", &project_id},
                                 std::pair{"user_id", &user_id}}) {
        auto key = std::string(open) + name + ")s";
        for (auto at = url.find(key); at != std::string::npos; at = url.find(key, at)) {
          if (value->empty()) return std::nullopt;
          url.replace(at, key.size(), *value);
          at += value->size();
        }
      }
    }
    return url;
  };
  for (auto& entry : all) {
    auto& eps = entry.as_object()["endpoints"].as_array();
    json::array kept;
    for (auto& e : eps) {
      auto& url = e.as_object()["url"];
      if (!url.is_string() || url.as_string().find(")s") == json::string::npos) {
        kept.push_back(e);
        continue;
      }
      if (auto filled = fill(std::string(url.as_string()))) {
        auto copy = e.as_object();
        copy["url"] = *filled;
        kept.push_back(std::move(copy));
      }
    }
    eps = std::move(kept);
  }
  return all;
}

// ---------------------------------------------------------------- views

json::object user_view(const IdentityService& s, const json::object& row) {
  json::object u;
  for (auto& kv : row) {
    auto k = kv.key();
    if (k == "failed_auth_count" || k == "failed_auth_at" || k == "created_at" || k == "last_active_at" ||
        k == "password")
      continue;
    if (k == "default_project_id" && kv.value().is_null()) continue;
    u[k] = kv.value();
  }
  if (!u["options"].is_object()) u["options"] = json::object{};
  u["password_expires_at"] = nullptr;
  u["links"] = json::object{{"self", s.link("users/" + std::string(row.at("id").as_string()))}};
  return u;
}

json::object project_view(const IdentityService& s, const json::object& row, const std::vector<std::string>& tags) {
  json::object p;
  for (auto& kv : row) p[kv.key()] = kv.value();
  if (p["is_domain"].as_bool()) {
    p["domain_id"] = nullptr;
    p["parent_id"] = nullptr;
  }
  if (p["description"].is_null()) p["description"] = "";
  json::array t;
  for (auto& x : tags) t.emplace_back(x);
  p["tags"] = std::move(t);
  if (!p.contains("options")) p["options"] = json::object{};
  p["links"] = json::object{{"self", s.link("projects/" + std::string(row.at("id").as_string()))}};
  return p;
}

json::object domain_view(const IdentityService& s, const json::object& row) {
  json::object d{{"id", row.at("id")},
                 {"name", row.at("name")},
                 {"description", row.at("description").is_null() ? json::value("") : row.at("description")},
                 {"enabled", row.at("enabled")},
                 {"tags", json::array{}},
                 {"options", json::object{}}};
  d["links"] = json::object{{"self", s.link("domains/" + std::string(row.at("id").as_string()))}};
  return d;
}

json::object role_view(const IdentityService& s, const json::object& row) {
  json::object r{{"id", row.at("id")}, {"name", row.at("name")}};
  auto d = row.at("domain_id");
  r["domain_id"] = (d.is_string() && d.as_string() == st::kNullDomain) ? json::value(nullptr) : d;
  if (row.contains("description") && !row.at("description").is_null()) r["description"] = row.at("description");
  r["options"] = row.at("options").is_object() ? row.at("options") : json::value(json::object{});
  r["links"] = json::object{{"self", s.link("roles/" + std::string(row.at("id").as_string()))}};
  return r;
}

}  // namespace nubo::identity
