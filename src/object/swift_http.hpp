// Swift's HTTP dialect shared by the proxy and the storage servers: error bodies as swob renders
// them, the headers an object keeps, and header-name normalisation.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/http/message.hpp"

namespace nubo::object {

// "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>" (text/html), or the
// error's own message when it carries one (ApiError with type "explicit").
http::Response render_swift_error(const ApiError& e);
// An error whose message is the response body as given.
ApiError swift_error(int status, std::string body = {});
const char* status_title(int status);

// "x-object-meta-foo_bar" → "X-Object-Meta-Foo-Bar" (Swift title-cases stored metadata names).
std::string title_case(std::string_view name);
// Headers an object stores besides its user metadata (Swift's allowed_headers and the
// large-object markers).
bool is_object_system_header(std::string_view name);

}  // namespace nubo::object
