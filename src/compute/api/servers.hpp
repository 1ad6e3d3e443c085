// The server views and the server routes' parts (internal to compute/api).
#pragma once

#include "compute/api/common.hpp"
#include "compute/service/server_states.hpp"

namespace nubo::compute::api {

// Which answer a server view is for: create/update/rebuild answered with a shorter view
// before 2.75.
enum class ServerView { Show, Detail, Update, Rebuild };

inline bool at_least(const Context& ctx, int minor) {
  return ctx.version >= Microversion{2, minor};
}
// Server metadata as Nova's schema takes it: keys of 1-255 characters, string values of at most
// 255.
std::map<std::string, std::string> metadata_field(const json::value& v, const char* key);

// The server's addresses by network name (Nova's `addresses`), from its network info cache.
json::object addresses_view(const json::object& row);

json::object server_view(const ComputeService& s, Context& ctx, const json::object& row,
                         ServerView kind);

void add_server_action_routes(std::vector<Route>& routes, ComputeService& s);
// Metadata, tags, ips, instance actions, password, diagnostics.
void add_server_detail_routes(std::vector<Route>& routes, ComputeService& s);
// Diagnostics, external events, os-hosts, instance usage audit log.
void add_server_extra_routes(std::vector<Route>& routes, ComputeService& s);

}  // namespace nubo::compute::api
