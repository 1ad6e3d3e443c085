#include "common/policy.hpp"

#include <gtest/gtest.h>

using namespace nubo;

namespace {
json::object creds(std::vector<std::string> roles, std::string user = "u1", std::string project = "p1") {
  json::array r;
  for (auto& x : roles) r.emplace_back(x);
  return json::object{{"roles", r}, {"user_id", user}, {"project_id", project}, {"system_scope", nullptr},
                      {"token", json::object{{"project", json::object{{"domain", json::object{{"id", "d1"}}}}}}}};
}
}  // namespace

TEST(Policy, RoleAndGenericChecks) {
  EXPECT_TRUE(Policy::check_expression("role:admin", creds({"Admin"}), {}));
  EXPECT_FALSE(Policy::check_expression("role:admin", creds({"member"}), {}));
  EXPECT_TRUE(Policy::check_expression("user_id:%(user_id)s", creds({}), {{"user_id", "u1"}}));
  EXPECT_FALSE(Policy::check_expression("user_id:%(user_id)s", creds({}), {{"user_id", "u2"}}));
  EXPECT_FALSE(Policy::check_expression("user_id:%(user_id)s", creds({}), {}));
  EXPECT_TRUE(Policy::check_expression("token.project.domain.id:%(domain_id)s", creds({}), {{"domain_id", "d1"}}));
  EXPECT_TRUE(Policy::check_expression("", creds({}), {}));
  EXPECT_TRUE(Policy::check_expression("@", creds({}), {}));
  EXPECT_FALSE(Policy::check_expression("!", creds({}), {}));
}

TEST(Policy, OperatorsAndPrecedence) {
  auto c = creds({"reader"});
  EXPECT_TRUE(Policy::check_expression("role:admin or role:reader", c, {}));
  EXPECT_FALSE(Policy::check_expression("role:admin or role:reader and system_scope:all", c, {}));
  EXPECT_TRUE(Policy::check_expression("not role:admin", c, {}));
  EXPECT_TRUE(Policy::check_expression("(role:admin or role:reader) and project_id:%(project_id)s", c,
                                       {{"project_id", "p1"}}));
  EXPECT_THROW(Policy::check_expression("(role:admin", c, {}), std::runtime_error);
  EXPECT_THROW(Policy::check_expression("role", c, {}), std::runtime_error);
}

TEST(Policy, NamedRulesAndOverrides) {
  Policy p({{"admin_required", "role:admin"}, {"x:get", "rule:admin_required or user_id:%(user_id)s"}});
  EXPECT_TRUE(p.enforce("x:get", creds({"admin"}, "other"), {{"user_id", "u1"}}));
  EXPECT_TRUE(p.enforce("x:get", creds({}), {{"user_id", "u1"}}));
  EXPECT_FALSE(p.enforce("x:get", creds({}, "other"), {{"user_id", "u1"}}));
  EXPECT_FALSE(p.enforce("unknown:rule", creds({"admin"}), {}));  // no "default": deny
  p.set_rule("x:get", "!");
  EXPECT_FALSE(p.enforce("x:get", creds({"admin"}), {}));
}

TEST(Policy, LiteralOnTheLeft) {
  // Glance's defaults compare constants with the target: "'public':%(visibility)s".
  auto c = creds({"reader"});
  EXPECT_TRUE(Policy::check_expression("'public':%(visibility)s", c, {{"visibility", "public"}}));
  EXPECT_FALSE(Policy::check_expression("'public':%(visibility)s", c, {{"visibility", "shared"}}));
  EXPECT_FALSE(Policy::check_expression("'public':%(visibility)s", c, {}));
  EXPECT_TRUE(Policy::check_expression("\"shared\":%(visibility)s", c, {{"visibility", "shared"}}));
  EXPECT_TRUE(Policy::check_expression("True:%(enabled)s", c, {{"enabled", "true"}}));
  EXPECT_FALSE(Policy::check_expression("True:%(enabled)s", c, {{"enabled", "False"}}));
  EXPECT_TRUE(Policy::check_expression("role:reader and ('community':%(visibility)s or project_id:%(project_id)s)", c,
                                       {{"visibility", "private"}, {"project_id", "p1"}}));
}
