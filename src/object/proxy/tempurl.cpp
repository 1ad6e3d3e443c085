// TempURL signatures: keys, digests, the checks and the response Swift gives a signed request.
#include "object/proxy/tempurl.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <cstring>
#include <ctime>
#include <set>

#include "common/ids.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy::tempurl {

namespace {

[[noreturn]] void invalid(const Request& q) {
  auto e = swift_error(401, q.ctx.request.method == "HEAD"
                                ? std::string()
                                : std::string("401 Unauthorized: Temp URL invalid\n"));
  e.headers.emplace_back("WWW-Authenticate", "Swift realm=\"" + q.path.account + "\"");
  throw e;
}

// Python's int() of the query value, else the ISO 8601 form; 0 when neither or already past.
std::int64_t normalise_expires(const std::string& value) {
  std::int64_t n = 0;
  std::string_view v = value;
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
    std::tm tm{};
    auto* end = strptime(value.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = end && *end == '\0' ? static_cast<std::int64_t>(timegm(&tm)) : 0;
  }
  if (n < std::time(nullptr)) n = 0;
  return n;
}

// Whether address lies in a network ("10.0.0.0/8", "::1", ...), as Python's ip_network
// (strict: host bits set in the network is an error).
std::optional<bool> in_network(const std::string& range, const std::string& address) {
  auto slash = range.find('/');
  auto net = range.substr(0, slash);
  unsigned char a[16]{}, n[16]{};
  int family = net.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, net.c_str(), n) != 1) return std::nullopt;
  size_t bytes = family == AF_INET6 ? 16 : 4;
  int bits = static_cast<int>(bytes * 8);
  if (slash != std::string::npos) {
    auto text = range.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), bits);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || bits < 0 ||
        bits > static_cast<int>(bytes * 8))
      return std::nullopt;
  }
  auto mask = [&](size_t i) {
    int left = bits - static_cast<int>(i * 8);
    return static_cast<unsigned char>(left >= 8   ? 0xff
                                      : left <= 0 ? 0
                                                  : (0xff << (8 - left)) & 0xff);
  };
  for (size_t i = 0; i < bytes; ++i)
    if (n[i] & ~mask(i)) return std::nullopt;
  int address_family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (address_family != family || inet_pton(family, address.c_str(), a) != 1) return false;
  for (size_t i = 0; i < bytes; ++i)
    if ((a[i] & mask(i)) != n[i]) return false;
  return true;
}

// urllib's quote.
std::string quote(std::string_view s, std::string_view safe) {
  return http::percent_encode(s, safe);
}

std::string disposition(const std::string& type, const std::string& filename) {
  return type + "; filename=\"" + quote(filename, " /") + "\"; filename*=UTF-8''" +
         quote(filename, "/");
}

}  // namespace

bool present(const http::Request& r) {
  return r.has_query("temp_url_sig") || r.has_query("temp_url_expires");
}

std::vector<std::pair<std::string, bool>> keys(Proxy& proxy, const SwiftPath& path) {
  std::vector<std::pair<std::string, bool>> out;
  auto account = account_info(proxy, path.account);
  for (auto* name : {"X-Account-Meta-Temp-Url-Key", "X-Account-Meta-Temp-Url-Key-2"})
    if (auto v = account.headers.get(name)) out.emplace_back(std::string(*v), true);
  if (path.has_container) {
    auto container = container_info(proxy, path);
    if (container.status == 204)
      for (auto* name : {"X-Container-Meta-Temp-Url-Key", "X-Container-Meta-Temp-Url-Key-2"})
        if (auto v = container.headers.get(name)) out.emplace_back(std::string(*v), false);
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> parse_signature(std::string_view signature) {
  std::string digest, value;
  auto colon = signature.find(':');
  if (colon != std::string_view::npos) {
    digest = std::string(signature.substr(0, colon));
    std::string b64(signature.substr(colon + 1));
    // Standard or URL-safe base64, padding optional.
    if (b64.find_first_of("-_") != std::string::npos &&
        b64.find_first_of("+/") == std::string::npos)
      for (auto& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    if (b64.size() % 4 == 1) return std::nullopt;
    while (b64.size() % 4) b64 += '=';
    auto raw = base64_decode(b64);
    if (!raw) return std::nullopt;
    value = hex_encode(*raw);
  } else {
    if (signature.size() % 2 ||
        signature.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos)
      return std::nullopt;
    value = std::string(signature);
    if (value.size() == 40)
      digest = "sha1";
    else if (value.size() == 64)
      digest = "sha256";
    else if (value.size() == 128)
      digest = "sha512";
    else
      return std::nullopt;
  }
  if (digest != "sha1" && digest != "sha256" && digest != "sha512") return std::nullopt;
  return std::pair(digest, value);
}

std::string hmac_hex(const std::string& digest, std::string_view key, std::string_view message) {
  const EVP_MD* md = digest == "sha1"     ? EVP_sha1()
                     : digest == "sha256" ? EVP_sha256()
                                          : EVP_sha512();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &n);
  std::string text = hex_encode(std::string_view(reinterpret_cast<const char*>(out), n));
  return text;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Accepted authorize(Request& q) {
  auto& r = q.r();
  if (r.method == "OPTIONS") return {};
  auto sig = r.query_param("temp_url_sig");
  auto client_expires = r.query_param("temp_url_expires");
  auto prefix = r.query_param("temp_url_prefix");
  auto ip_range = r.query_param("temp_url_ip_range");
  Accepted accepted;
  accepted.filename = r.query_param("filename");
  accepted.inline_disposition = r.has_query("inline");
  accepted.expires = client_expires ? normalise_expires(*client_expires) : 0;
  if (!sig || sig->empty() || accepted.expires == 0) invalid(q);
  auto parsed = parse_signature(*sig);
  if (!parsed) invalid(q);
  auto& [digest, signature] = *parsed;
  static const std::set<std::string> methods = {"GET", "HEAD", "PUT", "POST", "DELETE"};
  auto stripped = q.path.object;
  while (!stripped.empty() && stripped.back() == '/') stripped.pop_back();
  while (!stripped.empty() && stripped.front() == '/') stripped.erase(0, 1);
  if (!methods.count(r.method) || !r.path.starts_with("/v1/") || !q.path.has_object ||
      stripped.empty())
    invalid(q);
  if (ip_range && !ip_range->empty()) {
    auto inside = in_network(*ip_range, r.remote_address);
    if (!inside || !*inside) invalid(q);
  }
  auto scoped = keys(q.proxy, q.path);
  if (scoped.empty()) invalid(q);
  std::string path;
  if (!prefix) {
    path = "/v1/" + q.path.account + "/" + q.path.container + "/" + q.path.object;
  } else {
    if (!q.path.object.starts_with(*prefix)) invalid(q);
    path = "prefix:/v1/" + q.path.account + "/" + q.path.container + "/" + *prefix;
  }
  std::vector<std::string> signed_methods = {r.method};
  // A HEAD may use a URL made for any method that reads or writes the object.
  if (r.method == "HEAD") signed_methods = {"HEAD", "GET", "POST", "PUT"};
  std::optional<bool> account_scope;
  for (auto& method : signed_methods) {
    for (auto& [key, account_key] : scoped) {
      std::string message = (ip_range && !ip_range->empty() ? "ip=" + *ip_range + "\n" : "") +
                            method + "\n" + std::to_string(accepted.expires) + "\n" + path;
      if (equal_constant_time(signature, hmac_hex(digest, key, message))) {
        account_scope = account_key;
        break;
      }
    }
    if (account_scope) break;
  }
  if (!account_scope) invalid(q);
  if (r.method != "GET" && r.method != "HEAD")
    for (auto* header : {"X-Object-Manifest", "X-Symlink-Target"})
      if (r.headers.get(header))
        throw swift_error(
            400, std::string("The header '") + header + "' is not allowed in this tempurl");
  r.headers.remove("X-Timestamp");
  r.headers.remove("X-Open-Expired");
  q.owner = false;
  q.grant = Grant{q.path.account, *account_scope ? std::string() : q.path.container};
  // Only the TempURL's own parameters reach the object (Swift rewrites the query string).
  std::multimap<std::string, std::string> query{{"temp_url_sig", signature},
                                                {"temp_url_expires", *client_expires}};
  if (prefix) query.emplace("temp_url_prefix", *prefix);
  if (accepted.filename && !accepted.filename->empty())
    query.emplace("filename", *accepted.filename);
  else
    accepted.filename.reset();
  if (accepted.inline_disposition) query.emplace("inline", "");
  r.query = std::move(query);
  return accepted;
}

void filter_response(const Request& q, const Accepted& accepted, http::Response& out) {
  std::vector<std::string> drop;
  for (auto& [k, v] : out.headers.all()) {
    std::string_view key = k;
    if (key.size() > 14 && http::iequals(key.substr(0, 14), "X-Object-Meta-") &&
        !(key.size() > 21 && http::iequals(key.substr(0, 21), "X-Object-Meta-Public-")))
      drop.push_back(k);
  }
  for (auto& k : drop) out.headers.remove(k);
  auto& method = q.ctx.request.method;
  if ((method != "GET" && method != "HEAD") || out.status / 100 != 2) return;
  std::string value;
  if (accepted.inline_disposition) {
    value = accepted.filename ? disposition("inline", *accepted.filename) : "inline";
  } else if (accepted.filename) {
    value = disposition("attachment", *accepted.filename);
  } else if (auto existing = out.headers.get("Content-Disposition")) {
    value = std::string(*existing);
  } else {
    auto path = q.ctx.request.path;
    while (!path.empty() && path.back() == '/') path.pop_back();
    value = disposition("attachment", path.substr(path.rfind('/') + 1));
  }
  for (size_t at = value.find('\n'); at != std::string::npos; at = value.find('\n', at))
    value.replace(at, 1, "%0A");
  out.headers.set("Content-Disposition", value);
  out.headers.set("Expires", http_date(accepted.expires));
}

}  // namespace nubo::object::proxy::tempurl
