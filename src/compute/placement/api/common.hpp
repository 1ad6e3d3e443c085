// Shared pieces of the placement API's handlers (internal to placement/api): routes with policy
// and content checks, Placement's body and query validation wording, and views.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/service.hpp"
#include "compute/placement/service/placement_service.hpp"

namespace nubo::placement::api {

inline constexpr Microversion kMinVersion{1, 0};
inline constexpr Microversion kMaxVersion{1, 39};

inline bool at_least(const Context& ctx, int minor) {
  return ctx.version >= Microversion{1, minor};
}

// A route whose handler runs after the policy rule allowed the caller (Placement's wording of a
// refusal) and, for bodies, after the content type was checked; versions outside [min, max] are
// 404.
Route route(std::string method, std::string path, std::string rule, RouteHandler handler,
            int min_minor = 0, int max_minor = 0);

// The request body as JSON ("Malformed JSON: ..." otherwise).
json::value body(const Context& ctx);
// 400 "JSON does not validate: <why>", jsonschema's words for why.
[[noreturn]] void invalid(const std::string& why);
// Python's repr of a JSON value, as jsonschema's messages quote instances.
std::string repr(const json::value& v);
// Validation steps on a body object, in jsonschema's words.
const json::object& object_of(const json::value& v);
void only_keys(const json::object& o, std::initializer_list<std::string_view> keys);
void require_keys(const json::object& o, std::initializer_list<std::string_view> keys);
std::string string_of(const json::value& v, std::size_t max_length = 0, std::size_t min_length = 0);
std::int64_t integer_of(const json::value& v, std::int64_t minimum, std::int64_t maximum);
// A uuid in any form oslo accepts, returned in its canonical form; nullopt when it is not one.
std::optional<std::string> canonical_uuid(std::string_view v);
std::string uuid_of(const json::value& v);
// Resource class and trait names: ^[A-Z0-9_]+$ (custom ones with CUSTOM_).
bool valid_class_name(std::string_view name);
bool valid_custom_name(std::string_view name);

// Query strings: 400 "Invalid query string parameters: ..." for keys outside `allowed`.
void only_query(const Context& ctx, const std::set<std::string>& allowed);
std::optional<std::string> query(const Context& ctx, const std::string& key);  // the last value
std::vector<std::string> query_all(const Context& ctx, const std::string& key);
// Parsers of Placement's query values.
Amounts parse_resources(const std::string& value);
void parse_required(const Context& ctx, const std::string& key,
                    std::vector<std::set<std::string>>& required, std::set<std::string>& forbidden);
void parse_member_of(const Context& ctx, const std::string& key,
                     std::vector<std::set<std::string>>& required,
                     std::set<std::string>& forbidden);
std::string parse_in_tree(const std::string& value);

// Views.
json::object provider_view(const Context& ctx, const Provider& p);
json::object inventory_view(const Inventory& inv);
http::Response json_ok(const json::value& body, int status = 200);

// Placement's error body: {"errors": [{"status", "title", "detail", "code" (1.23+),
// "request_id"}]}.
http::Response render_error(const ApiError& e, const Context& ctx);

void add_provider_routes(std::vector<Route>& routes, PlacementService& s);
void add_allocation_routes(std::vector<Route>& routes, PlacementService& s);
void add_class_and_trait_routes(std::vector<Route>& routes, PlacementService& s);

}  // namespace nubo::placement::api
