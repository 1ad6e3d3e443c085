// Password expiry and token expiry with a fake clock, on an in-memory identity service.
#include "common/error.hpp"
#include "common/ids.hpp"
#include "identity/bootstrap.hpp"
#include "identity/service/identity_service.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace nubo;
using namespace nubo::identity;

namespace {
struct FakeClock : Clock {
  TimePoint t = std::chrono::system_clock::now();
  TimePoint now() const override { return t; }
};

json::object password_auth(const std::string& password) {
  return json::object{{"auth", json::object{{"identity", json::object{{"methods", json::array{"password"}},
                                                                     {"password", json::object{{"user", json::object{
                                                                                                   {"name", "admin"},
                                                                                                   {"domain", json::object{{"id", "default"}}},
                                                                                                   {"password", password}}}}}}}}}};
}

struct Fixture {
  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::filesystem::path keys = std::filesystem::temp_directory_path() / ("nubo-keys-" + uuid4_hex());
  std::unique_ptr<IdentityService> svc;
  explicit Fixture(int expires_days) {
    IdentitySettings s;
    s.bcrypt_cost = 4;
    s.password_expires_days = expires_days;
    s.token_expiration = 600;
    s.key_repository = keys.string();
    svc = std::make_unique<IdentityService>(db::Database::open("sqlite://:memory:"), s, clock);
    BootstrapOptions o;
    o.admin_password = "pw";
    bootstrap(*svc, o);
  }
  ~Fixture() { std::filesystem::remove_all(keys); }
};
}  // namespace

TEST(PasswordPolicy, ExpiredPasswordIsRefused) {
  Fixture f(1);
  EXPECT_NO_THROW(f.svc->authenticate(password_auth("pw")));
  f.clock->t += std::chrono::hours(25);
  try {
    f.svc->authenticate(password_auth("pw"));
    FAIL() << "an expired password authenticated";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 401);
  }
}

TEST(PasswordPolicy, TokensExpire) {
  Fixture f(0);
  auto issued = f.svc->authenticate(password_auth("pw"));
  EXPECT_NO_THROW(f.svc->validate(issued.token));
  f.clock->t += std::chrono::seconds(601);
  EXPECT_THROW(f.svc->validate(issued.token), ApiError);
  // allow_expired still reads it inside the window.
  EXPECT_NO_THROW(f.svc->validate_body(issued.token, false, true));
}
