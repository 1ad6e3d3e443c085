// Swift's CORS: a container's X-Container-Meta-Access-Control-Allow-Origin (space-separated
// origins, or *), -Expose-Headers and -Max-Age apply to it and its objects. OPTIONS answers a
// preflight (401 when the origin or method is not allowed); a request carrying Origin gets
// Access-Control-Allow-Origin and -Expose-Headers on its answer, errors included, when the
// origin is allowed (strict mode: otherwise the answer goes out without them).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "object/proxy/core.hpp"

namespace nubo::object::proxy::cors {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// OPTIONS on an account, container or object (no token needed).
http::Response options(Proxy& proxy, const http::Request& r);
// The CORS headers for the answer `response` to a request from `origin` on `path` (a container
// or an object); none when the container does not allow that origin.
HeaderList response_headers(Proxy& proxy, const std::string& origin, const SwiftPath& path,
                            const HeaderList& response);

}  // namespace nubo::object::proxy::cors
