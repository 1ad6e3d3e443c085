// The identity service started in-process on port 0 with a temporary state directory (SQLite, or
// PostgreSQL with a fresh schema when NUBO_TEST_DATABASE names one), driven over real HTTP.
#pragma once

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"
#include "tests/api/support/api_client.hpp"

namespace nubo::apitest {

namespace fs = std::filesystem;

inline const char* kPassword = "s3cret-Passw0rd";
// Fast hashing, and the lockout and history settings Tempest's security-compliance tests assume.
inline const char* kDefaultConfig =
    "[identity]\npassword_hash_rounds = 4\n"
    "[security_compliance]\nlockout_failure_attempts = 2\nlockout_duration = 2\n"
    "unique_last_password_count = 2\n";

class IdentityCloud {
 public:
  explicit IdentityCloud(const std::string& config_text = kDefaultConfig) {
    static bool logging = (setup_logging("warn"), true);
    (void)logging;
    dir_ = fs::temp_directory_path() / ("nubo-api-" + uuid4_hex());
    fs::create_directories(dir_);
    auto config = Config::parse(config_text);
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url) {
      // A fresh schema per test keeps PostgreSQL runs independent.
      auto db = db::Database::open(url, 1);
      db->write([](soci::session& s) {
        s << "DROP SCHEMA public CASCADE";
        s << "CREATE SCHEMA public";
      });
      config.set("database", "identity_connection", url);
    }
    service_ = identity::open_identity_service(config, dir_.string());
    identity::BootstrapOptions boot;
    boot.admin_password = kPassword;
    runtime_ = std::make_unique<Runtime>(1, 4);
    pipeline_ = std::make_shared<Pipeline>(identity::api::make_service_spec(service_));
    ServerOptions opts;
    opts.render_error = [](int status, const std::string& m) {
      return render_keystone_error(ApiError(status, m));
    };
    port_ = listen_pipeline(*runtime_, opts, pipeline_);
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    boot.catalog.push_back({"identity", "keystone", url_ + "/v3"});
    identity::bootstrap(*service_, boot);
    runtime_->start();
  }
  ~IdentityCloud() {
    runtime_->stop(std::chrono::seconds(2));
    fs::remove_all(dir_);
  }

  Reply call(const std::string& method, const std::string& path, const std::string& token = {},
             const std::string& body = {},
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    return client_.request(url_ + path, method, token, body, body.empty() ? "" : "application/json",
                           std::move(headers));
  }
  Reply call(const std::string& method, const std::string& path, const std::string& token,
             const json::object& body) {
    return call(method, path, token, json::serialize(body));
  }

  static json::object password_auth(const std::string& user, const std::string& password,
                                    const std::string& project = {}) {
    return apitest::password_auth(user, password, project);
  }

  std::string token(const std::string& user = "admin", const std::string& password = kPassword,
                    const std::string& project = "admin") {
    auto r = call("POST", "/v3/auth/tokens", "", password_auth(user, password, project));
    EXPECT_EQ(r.status, 201) << r.raw;
    auto t = r.headers.get("X-Subject-Token");
    return t ? std::string(*t) : std::string();
  }

  // A member (not admin) of a fresh project named `name`: its token and the project's id.
  std::pair<std::string, std::string> member_of_new_project(const std::string& admin_token,
                                                            const std::string& name) {
    auto p = call("POST", "/v3/projects", admin_token,
                  json::object{{"project", json::object{{"name", name}}}});
    std::string project(p.body.at("project").as_object().at("id").as_string());
    auto u = call("POST", "/v3/users", admin_token,
                  json::object{{"user", json::object{{"name", name}, {"password", "pw-" + name}}}});
    std::string user(u.body.at("user").as_object().at("id").as_string());
    auto roles = call("GET", "/v3/roles?name=member", admin_token);
    std::string role(roles.body.at("roles").as_array()[0].as_object().at("id").as_string());
    call("PUT", "/v3/projects/" + project + "/users/" + user + "/roles/" + role, admin_token);
    return {token(name, "pw-" + name, name), project};
  }

  identity::IdentityService& service() { return *service_; }
  std::shared_ptr<identity::IdentityService> service_ptr() const { return service_; }
  const std::string& url() const { return url_; }

 private:
  fs::path dir_;
  std::shared_ptr<identity::IdentityService> service_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Pipeline> pipeline_;
  uint16_t port_ = 0;
  std::string url_;
  apitest::ApiClient client_;
};

}  // namespace nubo::apitest
