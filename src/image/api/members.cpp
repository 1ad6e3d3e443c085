// /v2/images/{image_id}/members: sharing an image with other projects, who accept or reject it.
#include "image/api/common.hpp"

namespace nubo::image::api {

void add_member_routes(std::vector<Route>& routes, ImageService& s) {
  routes.push_back({"GET", "/v2/images/{image_id}/members", [&s](Context& ctx) {
                      json::array members;
                      for (auto& m : s.list_members(caller(ctx), ctx.param("image_id")))
                        members.push_back(member_view(m));
                      return ok(json::object{{"members", std::move(members)},
                                             {"schema", "/v2/schemas/members"}});
                    }});
  // Glance answers 200 (not 201) with the new member.
  routes.push_back(
      {"POST", "/v2/images/{image_id}/members", [&s](Context& ctx) {
         return ok(member_view(s.add_member(caller(ctx), ctx.param("image_id"), body_object(ctx))));
       }});
  routes.push_back({"GET", "/v2/images/{image_id}/members/{member_id}", [&s](Context& ctx) {
                      return ok(member_view(s.show_member(caller(ctx), ctx.param("image_id"),
                                                          ctx.param("member_id"))));
                    }});
  routes.push_back({"PUT", "/v2/images/{image_id}/members/{member_id}", [&s](Context& ctx) {
                      return ok(
                          member_view(s.update_member(caller(ctx), ctx.param("image_id"),
                                                      ctx.param("member_id"), body_object(ctx))));
                    }});
  routes.push_back({"DELETE", "/v2/images/{image_id}/members/{member_id}", [&s](Context& ctx) {
                      s.remove_member(caller(ctx), ctx.param("image_id"), ctx.param("member_id"));
                      return no_content();
                    }});
}

}  // namespace nubo::image::api
