// Helpers shared by the image API handlers: Glance's error dialect, the caller, JSON views.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/service.hpp"
#include "image/service/image_service.hpp"

namespace nubo::image::api {

// Glance's (webob's) error page: text/html with "<h1>404 Not Found</h1>" and the message, which
// glanceclient, openstacksdk and Tempest all parse (webob answers flat JSON only to clients that
// ask for JSON first, and glanceclient cannot read that JSON). 413 carries no Retry-After.
http::Response render_glance_error(const ApiError& e);

// The caller for the service layer, bound to this request's policy.
Caller caller(Context& ctx);

// The request body as JSON (BadRequest when it is not JSON or not the expected type).
json::value body_json(const Context& ctx);
json::object body_object(const Context& ctx);

// Image as Glance renders it: base attributes always present (null when unset), custom
// properties as top-level strings, links.
json::object image_view(const ImageService& s, const json::object& row);
json::object member_view(const json::object& row);
// Stored times (microseconds) as Glance shows them: 2025-01-02T03:04:05Z.
std::string glance_time(const json::value& stored);

inline http::Response ok(const json::object& body) { return json_response(200, body); }
inline http::Response no_content() { return empty_response(204); }

// Route groups, one per file.
void add_discovery_routes(std::vector<Route>& routes, ImageService& s);  // versions, schemas, info
void add_image_routes(std::vector<Route>& routes, ImageService& s);      // images, tags, actions
void add_member_routes(std::vector<Route>& routes, ImageService& s);
void add_data_routes(std::vector<Route>& routes, ImageService& s);  // file, stage, import
void add_metadef_routes(std::vector<Route>& routes, ImageService& s);  // /v2/metadefs

}  // namespace nubo::image::api
