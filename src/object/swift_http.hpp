// Swift's HTTP dialect shared by the proxy and the storage servers: error bodies as swob renders
// them, the headers an object keeps, and header-name normalisation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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

// "bytes=a-b" on an object of `size` bytes (spaces ignored): the first and last byte; nullopt
// when absent, malformed or several ranges (the whole object); unsatisfiable set when no byte
// matches (a suffix range on an empty object is the whole, as swob answers).
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(std::string_view header,
                                                                   std::uint64_t size,
                                                                   bool& unsatisfiable);

}  // namespace nubo::object
