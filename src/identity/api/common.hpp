// Helpers shared by the identity API handlers: responses, query flags, body validation.
#pragma once

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/service.hpp"
#include "identity/service/identity_service.hpp"
#include "identity/store/schema.hpp"

#include <optional>
#include <string>
#include <vector>

namespace nubo::identity::api {

namespace st = store;

inline http::Response ok(const json::object& body) { return json_response(200, body); }
inline http::Response created(const json::object& body) { return json_response(201, body); }
inline http::Response no_content() { return empty_response(204); }

// Keystone's query booleans: "True"/"true"/"1"/"yes" are true, "False"/"0"/"no" false;
// a flag with no value (`&effective`) is true.
std::optional<bool> query_bool(const Context& ctx, const std::string& name);

// The JSON object under `key` in the request body (BadRequest when missing or not an object).
json::object entity(const Context& ctx, const char* key);

// Validation helpers raising BadRequest with Keystone-like messages.
std::string required_string(const json::object& o, const char* field, size_t max_length = 255);
std::optional<std::string> optional_string(const json::object& o, const char* field, size_t max_length = 65535);
std::optional<bool> optional_bool(const json::object& o, const char* field);
// Rejects fields the client may not set (id, links...), except `id` equal to allowed_id.
void reject_readonly(const json::object& o, std::initializer_list<const char*> fields, const std::string& allowed_id = {});

// Collection body: {"<key>": [...], "links": {"self", "previous": null, "next": null}}.
json::object collection(const IdentityService& s, const char* key, json::array items, const std::string& path);

// Common loaders.
json::object load_domain(IdentityService& s, const std::string& id);  // 404 if not a domain
json::object load_project(IdentityService& s, const std::string& id);  // 404 if missing or a domain
json::object load_user(IdentityService& s, const std::string& id);
json::object load_group(IdentityService& s, const std::string& id);
json::object load_role(IdentityService& s, const std::string& id);
std::vector<std::string> project_tags(IdentityService& s, const std::string& project_id);

// Route groups, one per file.
void add_auth_routes(std::vector<Route>& routes, IdentityService& s);
void add_resource_routes(std::vector<Route>& routes, IdentityService& s);     // domains, projects, users, groups
void add_role_routes(std::vector<Route>& routes, IdentityService& s);         // roles, grants, inherit, assignments
void add_catalog_routes(std::vector<Route>& routes, IdentityService& s);      // regions, services, endpoints...
void add_credential_routes(std::vector<Route>& routes, IdentityService& s);   // credentials, ec2, app creds, trusts

}  // namespace nubo::identity::api
