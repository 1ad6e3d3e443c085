#include "object/proxy/tempauth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "object/swift_http.hpp"

namespace nubo::object {

namespace {

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    auto start = s.find_first_not_of(" \t", at);
    if (start == std::string::npos) break;
    auto end = s.find_first_of(" \t", start);
    out.push_back(s.substr(start, end - start));
    at = end == std::string::npos ? s.size() : end;
  }
  return out;
}

// Swift's 401 from tempauth, with the realm it names.
ApiError unauthorized(const std::string& realm) {
  auto e = swift_error(401);
  e.headers.emplace_back("Www-Authenticate", "Swift realm=\"" + realm + "\"");
  return e;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || ptr != hex.data() + i + 2) return std::nullopt;
    out += static_cast<char>(v);
  }
  return out;
}

}  // namespace

TempAuthSettings tempauth_settings_from_config(const Config& c,
                                               const std::string& secret_fallback) {
  TempAuthSettings s;
  s.reseller_prefix = c.get_string("object", "reseller_prefix", "AUTH") + "_";
  s.token_life = std::chrono::seconds(c.get_int("tempauth", "token_life", 86400));
  s.secret = c.get_string("tempauth", "secret", secret_fallback);
  for (auto& key : c.keys("tempauth")) {
    // user_<account>_<user>; user64_<base64 account>_<base64 user> is not read.
    if (!key.starts_with("user_")) continue;
    auto rest = key.substr(5);
    auto underscore = rest.find('_');
    if (underscore == std::string::npos || underscore == 0 || underscore + 1 == rest.size())
      throw std::runtime_error("[tempauth] " + key + ": expected user_<account>_<user>");
    TempAuthUser u;
    u.account = rest.substr(0, underscore);
    u.user = rest.substr(underscore + 1);
    auto values = words(c.get_string("tempauth", key, ""));
    if (values.empty()) throw std::runtime_error("[tempauth] " + key + ": no key");
    u.key = values[0];
    for (size_t i = 1; i < values.size(); ++i) {
      if (i + 1 == values.size() && values[i].find("://") != std::string::npos)
        u.storage_url = values[i];
      else
        u.groups.push_back(values[i]);
    }
    s.users.push_back(std::move(u));
  }
  return s;
}

TempAuth::TempAuth(TempAuthSettings s) : settings_(std::move(s)) {}

const TempAuthUser* TempAuth::find(const std::string& account, const std::string& user) const {
  for (auto& u : settings_.users)
    if (u.account == account && u.user == user) return &u;
  return nullptr;
}

std::string TempAuth::sign(const TempAuthUser& u, std::int64_t expires) const {
  auto message = u.account + ":" + u.user + "\n" + u.key + "\n" + std::to_string(expires);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), settings_.secret.data(), static_cast<int>(settings_.secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &n);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(mac), 16));
}

// AUTH_tk<32 hex: signature><16 hex: expiry><hex: account:user>
AuthContext TempAuth::validate(std::string_view token, bool) {
  auto prefix = settings_.reseller_prefix + "tk";
  if (!token.starts_with(prefix) || token.size() < prefix.size() + 48) throw Unauthorized();
  auto body = token.substr(prefix.size());
  auto signature = body.substr(0, 32);
  std::uint64_t expires = 0;
  auto [ptr, ec] = std::from_chars(body.data() + 32, body.data() + 48, expires, 16);
  auto name = hex_decode(body.substr(48));
  if (ec != std::errc() || ptr != body.data() + 48 || !name) throw Unauthorized();
  auto colon = name->find(':');
  if (colon == std::string::npos) throw Unauthorized();
  auto* u = find(name->substr(0, colon), name->substr(colon + 1));
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (!u || static_cast<std::int64_t>(expires) <= now) throw Unauthorized();
  auto expected = sign(*u, static_cast<std::int64_t>(expires));
  if (CRYPTO_memcmp(expected.data(), signature.data(), 32) != 0) throw Unauthorized();
  AuthContext a;
  a.token = std::string(token);
  a.methods = {"tempauth"};
  a.user_id = u->account + ":" + u->user;
  a.user_name = u->user;
  a.project_id = a.project_name = u->account;
  a.roles = {u->account};
  for (auto& g : u->groups) a.roles.push_back(g);
  return a;
}

http::Response TempAuth::get_token(const http::Request& r) {
  // /auth/v1.0, /auth/auth: X-Auth-User "account:user"; /auth/v1/<account>/auth: X-Storage-User
  // (the bare user) or X-Auth-User naming that account.
  std::vector<std::string> parts;
  for (size_t at = 1; at <= r.path.size();) {
    auto slash = r.path.find('/', at);
    parts.push_back(r.path.substr(at, slash == std::string::npos ? std::string::npos : slash - at));
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  // parts[0] is "auth"
  std::string account, user, key, realm = "unknown";
  auto header = [&](const char* a, const char* b) {
    auto v = r.headers.get(a);
    if (!v || v->empty()) v = r.headers.get(b);
    return v ? std::string(*v) : std::string();
  };
  if (parts.size() == 4 && parts[1] == "v1" && parts[3] == "auth") {
    account = realm = parts[2];
    if (auto bare = r.headers.get("X-Storage-User"); bare && !bare->empty()) {
      user = std::string(*bare);
    } else {
      auto full = header("X-Auth-User", "X-Storage-User");
      auto colon = full.find(':');
      if (colon == std::string::npos || full.substr(0, colon) != account) throw unauthorized(realm);
      user = full.substr(colon + 1);
    }
    key = header("X-Storage-Pass", "X-Auth-Key");
  } else if (parts.size() == 2 && (parts[1] == "v1.0" || parts[1] == "auth")) {
    auto full = header("X-Auth-User", "X-Storage-User");
    auto colon = full.find(':');
    if (colon == std::string::npos) throw unauthorized(realm);
    account = full.substr(0, colon);
    user = full.substr(colon + 1);
    key = header("X-Auth-Key", "X-Storage-Pass");
  } else {
    throw swift_error(400);
  }
  auto* u = find(account, user);
  if (!u) throw unauthorized(realm == "unknown" ? realm : account);
  if (key.size() != u->key.size() || CRYPTO_memcmp(key.data(), u->key.data(), key.size()) != 0)
    throw unauthorized("unknown");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto expires = now + settings_.token_life.count();
  char expiry[17];
  std::snprintf(expiry, sizeof expiry, "%016llx", static_cast<unsigned long long>(expires));
  auto token = settings_.reseller_prefix + "tk" + sign(*u, expires) + expiry +
               hex_encode(u->account + ":" + u->user);
  auto url = u->storage_url;
  if (url.empty()) {
    auto host = std::string(r.headers.get_or("Host", "127.0.0.1"));
    url = "http://" + host + "/v1/" + settings_.reseller_prefix + u->account;
  }
  http::Response out;
  out.status = 200;
  out.headers.set("Content-Type", "text/html; charset=UTF-8");
  out.headers.set("X-Auth-Token", token);
  out.headers.set("X-Storage-Token", token);
  out.headers.set("X-Auth-Token-Expires", std::to_string(settings_.token_life.count()));
  out.headers.set("X-Storage-Url", url);
  return out;
}

}  // namespace nubo::object
