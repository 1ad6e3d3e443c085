#include "common/service.hpp"

#include <gtest/gtest.h>

using namespace nubo;

TEST(ErrorDialects, KeystoneNovaNeutron) {
  auto k = json::parse(render_keystone_error(NotFound("Could not find user: x.")).body).as_object();
  EXPECT_EQ(k.at("error").as_object().at("code").as_int64(), 404);
  EXPECT_EQ(k.at("error").as_object().at("title").as_string(), "Not Found");
  auto n = render_nova_error(Conflict("busy"));
  EXPECT_EQ(n.status, 409);
  EXPECT_EQ(json::parse(n.body).as_object().at("conflictingRequest").as_object().at("message").as_string(), "busy");
  auto q = json::parse(render_neutron_error(ApiError(404, "Network x could not be found.", "NetworkNotFound")).body);
  EXPECT_EQ(q.as_object().at("NeutronError").as_object().at("type").as_string(), "NetworkNotFound");
  EXPECT_EQ(render_keystone_error(Unauthorized()).headers.get_or("WWW-Authenticate"), "Keystone uri=\"\"");
}
