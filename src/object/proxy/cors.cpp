#include "object/proxy/cors.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy::cors {

namespace {

struct Rules {
  std::string allow_origin, expose_headers;
  std::optional<std::string> max_age;
};

Rules rules_of(Proxy& proxy, const SwiftPath& path) {
  Rules out;
  auto container = object_path(path.account, path.container, "");
  Proxy::ContainerInfo info;
  try {
    info = container_info(proxy, container);
  } catch (const ApiError&) {
    return out;  // no container, no rules
  }
  if (info.status / 100 != 2) return out;
  out.allow_origin = info.headers.get_or("X-Container-Meta-Access-Control-Allow-Origin");
  out.expose_headers = info.headers.get_or("X-Container-Meta-Access-Control-Expose-Headers");
  if (auto v = info.headers.get("X-Container-Meta-Access-Control-Max-Age"))
    out.max_age = std::string(*v);
  return out;
}

std::vector<std::string> words(const std::string& s, char separator) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string w;
  while (std::getline(ss, w, separator)) {
    w.erase(0, w.find_first_not_of(" \t"));
    w.erase(w.find_last_not_of(" \t") + 1);
    if (!w.empty()) out.push_back(w);
  }
  return out;
}

bool allowed(const Proxy& proxy, const Rules& rules, const std::string& origin) {
  auto origins = words(rules.allow_origin, ' ');
  origins.insert(origins.end(), proxy.settings.cors_allow_origin.begin(),
                 proxy.settings.cors_allow_origin.end());
  return std::any_of(origins.begin(), origins.end(),
                     [&](const std::string& o) { return o == origin || o == "*"; });
}

bool is_wildcard(const Rules& rules) {
  auto o = rules.allow_origin;
  o.erase(0, o.find_first_not_of(" \t"));
  o.erase(o.find_last_not_of(" \t") + 1);
  return o == "*";
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

http::Response options(Proxy& proxy, const http::Request& r) {
  auto path = parse_swift_path(r.path);
  const char* methods = path.has_object      ? "GET, HEAD, PUT, POST, DELETE, COPY, OPTIONS"
                        : path.has_container ? "GET, HEAD, PUT, POST, DELETE, OPTIONS"
                                             : "GET, HEAD, POST, OPTIONS";
  auto out = empty(200);
  out.body.clear();
  out.headers.set("Allow", methods);
  auto origin = r.headers.get("Origin");
  // Not a preflight, or one on an account (Swift has no account-level CORS).
  if (!origin || !path.has_container) return out;
  auto rules = rules_of(proxy, path);
  auto method = std::string(r.headers.get_or("Access-Control-Request-Method"));
  auto allowed_methods = words(methods, ',');
  if (!allowed(proxy, rules, std::string(*origin)) ||
      std::find(allowed_methods.begin(), allowed_methods.end(), method) == allowed_methods.end()) {
    out.status = 401;
    return out;
  }
  std::vector<std::string> vary;
  if (is_wildcard(rules)) {
    out.headers.set("Access-Control-Allow-Origin", "*");
  } else {
    out.headers.set("Access-Control-Allow-Origin", std::string(*origin));
    vary.push_back("Origin");
  }
  if (rules.max_age) out.headers.set("Access-Control-Max-Age", *rules.max_age);
  out.headers.set("Access-Control-Allow-Methods", methods);
  // Every header the browser asks to send is allowed (the specification leaves it open).
  auto asked = words(std::string(r.headers.get_or("Access-Control-Request-Headers")), ',');
  if (!asked.empty()) {
    std::set<std::string> unique(asked.begin(), asked.end());
    out.headers.set("Access-Control-Allow-Headers", join(unique));
    vary.push_back("Access-Control-Request-Headers");
  }
  if (!vary.empty()) {
    std::string v;
    for (auto& x : vary) v += (v.empty() ? "" : ", ") + x;
    out.headers.set("Vary", v);
  }
  return out;
}

HeaderList response_headers(Proxy& proxy, const std::string& origin, const SwiftPath& path,
                            const HeaderList& response) {
  if (!path.has_container) return {};
  auto rules = rules_of(proxy, path);
  if (!allowed(proxy, rules, origin)) return {};
  HeaderList out;
  auto has = [&](const char* name) {
    return std::any_of(response.begin(), response.end(),
                       [&](auto& h) { return http::iequals(h.first, name); });
  };
  if (!has("Access-Control-Expose-Headers")) {
    // The simple response headers, Swift's own, user metadata, and the container's list.
    std::set<std::string> expose{"cache-control", "content-language",
                                 "content-type",  "expires",
                                 "last-modified", "pragma",
                                 "etag",          "x-timestamp",
                                 "x-trans-id",    "x-openstack-request-id"};
    for (auto& [k, v] : response) {
      auto name = lower(k);
      if (name.starts_with("x-container-meta") || name.starts_with("x-object-meta"))
        expose.insert(name);
    }
    for (auto& h : words(rules.expose_headers, ' ')) expose.insert(lower(h));
    out.emplace_back("Access-Control-Expose-Headers", join(expose));
  }
  if (!has("Access-Control-Allow-Origin")) {
    if (is_wildcard(rules)) {
      out.emplace_back("Access-Control-Allow-Origin", "*");
    } else {
      out.emplace_back("Access-Control-Allow-Origin", origin);
      std::string vary = "Origin";
      for (auto& [k, v] : response)
        if (http::iequals(k, "Vary")) vary = v + ", Origin";
      out.emplace_back("Vary", vary);
    }
  }
  return out;
}

}  // namespace nubo::object::proxy::cors
