// What every API test needs to talk to a service over real HTTP: a reply with its JSON body
// parsed, a request helper, and Keystone password-auth bodies.
#pragma once

#include "common/http/client.hpp"
#include "common/json.hpp"

#include <string>
#include <utility>
#include <vector>

namespace nubo::apitest {

struct Reply {
  int status;
  http::Headers headers;
  json::object body;  // empty when the body is not a JSON object
  std::string raw;
};

class ApiClient {
 public:
  Reply request(const std::string& url, const std::string& method, const std::string& token = {},
                const std::string& body = {}, const std::string& content_type = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!token.empty()) headers.emplace_back("X-Auth-Token", token);
    if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
    auto r = client_.request(method, url, headers, body);
    Reply out{r.status, r.headers, {}, r.body};
    if (!r.body.empty()) {
      boost::system::error_code ec;
      auto v = json::parse(r.body, ec);
      if (!ec && v.is_object()) out.body = v.as_object();
    }
    return out;
  }

 private:
  http::Client client_;
};

// {"auth": {"identity": password of user@default, "scope": project@default (optional)}}
inline json::object password_auth(const std::string& user, const std::string& password,
                                  const std::string& project = {}) {
  json::object auth{{"identity", json::object{{"methods", json::array{"password"}},
                                              {"password", json::object{{"user", json::object{
                                                                                     {"name", user},
                                                                                     {"domain", json::object{{"id", "default"}}},
                                                                                     {"password", password}}}}}}}};
  if (!project.empty())
    auth["scope"] = json::object{{"project", json::object{{"name", project}, {"domain", json::object{{"id", "default"}}}}}};
  return json::object{{"auth", auth}};
}

}  // namespace nubo::apitest
