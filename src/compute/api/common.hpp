// Shared pieces of the compute API's handlers (internal to compute/api).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/caller.hpp"
#include "common/service.hpp"
#include "compute/service/compute_service.hpp"

namespace nubo::compute::api {

// The highest microversion this API speaks (Debian's clients ask for up to 2.96).
inline constexpr Microversion kMaxVersion{2, 96};

Caller caller(Context& ctx);
// The body's single top-level object named `key` ({"flavor": {...}}); 400 otherwise.
json::object member(const Context& ctx, const char* key);
// A non-negative integer query parameter (limit), or nullopt when absent; 400 when malformed.
std::optional<long> count_param(const Context& ctx, const char* name);
// A name (or zone, host): a string of 1-255 characters without leading or trailing whitespace;
// 400 naming `field` otherwise.
std::string checked_name(const json::value& v, const char* field);
// Nova's wording of a schema error on one field.
std::string invalid(const std::string& field, const json::value& v, const std::string& why);
// Nova's wording of a property the schema of `field` does not allow.
std::string unexpected(const std::string& field, std::string_view key);
// Links as Nova renders them: self under /v2.1, bookmark without the version.
json::array links(const ComputeService& s, const std::string& collection, const std::string& id);
// The `<collection>_links` next link for a full page.
json::array next_links(const ComputeService& s, const Context& ctx, const std::string& path,
                       const std::string& marker);

void add_flavor_routes(std::vector<Route>& routes, ComputeService& s);
void add_console_routes(std::vector<Route>& routes, ComputeService& s);
void add_keypair_routes(std::vector<Route>& routes, ComputeService& s);
void add_quota_routes(std::vector<Route>& routes, ComputeService& s);
void add_server_group_routes(std::vector<Route>& routes, ComputeService& s);
void add_host_routes(std::vector<Route>& routes, ComputeService& s);
void add_aggregate_routes(std::vector<Route>& routes, ComputeService& s);
void add_server_routes(std::vector<Route>& routes, ComputeService& s);
void add_usage_routes(std::vector<Route>& routes, ComputeService& s);
void add_migration_routes(std::vector<Route>& routes, ComputeService& s);
void add_network_proxy_routes(std::vector<Route>& routes, ComputeService& s);
void add_image_routes(std::vector<Route>& routes, ComputeService& s);

}  // namespace nubo::compute::api
