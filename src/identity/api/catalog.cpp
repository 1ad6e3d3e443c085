// Catalog administration and related Keystone resources: regions, services, endpoints,
// OS-EP-FILTER endpoint groups, policies, domain-specific configuration, OS-OAUTH1 consumers
// and unified limits (registered limits and project/domain limits).
#include "identity/api/common.hpp"

#include "common/ids.hpp"

#include <soci/soci.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace nubo::identity::api {

namespace {

// ------------------------------------------------------------------ small helpers

std::string str(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

json::value value_or_null(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v ? *v : json::value(nullptr);
}

json::object self_link(const IdentityService& s, const std::string& path) {
  return json::object{{"self", s.link(path)}};
}

std::string field_error(const std::string& field, const std::string& what) {
  return "Invalid input for field '" + field + "': " + what;
}

// A present, non-null value must be a string of 1..max characters.
std::optional<std::string> nullable_id(const json::object& o, const char* field, size_t max_length = 255) {
  auto* v = find(o, field);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw BadRequest(field_error(field, "not a string."));
  std::string out(v->as_string());
  if (out.empty()) throw BadRequest(field_error(field, "must not be empty."));
  if (out.size() > max_length) throw BadRequest(field_error(field, "too long."));
  return out;
}

// Rejects `id` in a body unless it equals the path id.
void require_matching_id(const json::object& o, const std::string& id) {
  auto* v = find(o, "id");
  if (!v) return;
  if (!v->is_string() || v->as_string() != id)
    throw BadRequest("Cannot change the ID of an entity; the 'id' in the body must match the URL.");
}

std::optional<std::string> query(const Context& ctx, const char* name) { return ctx.request.query_param(name); }

// Keystone's conflict message.
ApiError duplicate(const std::string& kind) {
  return Conflict("Conflict occurred attempting to store " + kind + " - Duplicate entry.");
}

// ------------------------------------------------------------------ regions

json::object region_view(const IdentityService& s, const json::object& row) {
  json::object v;
  auto id = str(row, "id");
  for (auto& kv : row)
    if (kv.key() != "links") v[kv.key()] = kv.value();
  auto* d = find(row, "description");
  v["description"] = d && d->is_string() ? *d : json::value("");
  v["parent_region_id"] = value_or_null(row, "parent_region_id");
  v["links"] = self_link(s, "regions/" + id);
  return v;
}

// Checks the parent (404 when missing) and that `region_id` is not among its ancestors (400).
void check_parent_region(soci::session& ss, const std::string& region_id, const std::string& parent_id) {
  if (!db::get(ss, st::region, parent_id)) throw NotFound("Could not find region: " + parent_id + ".");
  std::string cur = parent_id;
  for (int depth = 0; depth < 1000 && !cur.empty(); ++depth) {
    if (cur == region_id)
      throw BadRequest("Circular reference or a repeated entry found in region tree - " + region_id + ".");
    auto r = db::get(ss, st::region, cur);
    if (!r) break;
    cur = str(*r, "parent_region_id");
  }
}

json::object insert_region(soci::session& ss, const std::string& id, const json::object& body) {
  if (id.size() > 255) throw BadRequest(field_error("id", "too long."));
  if (db::get(ss, st::region, id)) throw duplicate("region");
  json::object row;
  for (auto& kv : body)
    if (kv.key() != "links" && kv.key() != "id") row[kv.key()] = kv.value();
  row["id"] = id;
  auto* d = find(body, "description");
  if (!d || d->is_null())
    row["description"] = "";
  else if (!d->is_string())
    throw BadRequest(field_error("description", "not a string."));
  auto parent = nullable_id(body, "parent_region_id");
  if (parent) {
    check_parent_region(ss, id, *parent);
    row["parent_region_id"] = *parent;
  } else {
    row["parent_region_id"] = nullptr;
  }
  db::insert(ss, st::region, row);
  return *db::get(ss, st::region, id);
}

// Creates the region with this id unless it exists (endpoints' legacy `region`).
void ensure_region(soci::session& ss, const std::string& id) {
  if (id.size() > 255) throw BadRequest(field_error("region_id", "too long."));
  if (db::get(ss, st::region, id)) return;
  db::insert(ss, st::region, json::object{{"id", id}, {"description", ""}, {"parent_region_id", nullptr}});
}

void add_region_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{"GET", "/v3/regions", [&s](Context& ctx) -> http::Response {
    db::Query q;
    if (auto p = query(ctx, "parent_region_id")) q.eq("parent_region_id", *p);
    json::array items;
    for (auto& r : s.list(st::region, q)) items.push_back(region_view(s, r));
    return ok(collection(s, "regions", std::move(items), "regions"));
  }, "identity:list_regions"});

  routes.push_back(Route{"POST", "/v3/regions", [&s](Context& ctx) -> http::Response {
    auto body = entity(ctx, "region");
    std::string id;
    if (auto* v = find(body, "id"); v && !v->is_null()) {
      if (!v->is_string()) throw BadRequest(field_error("id", "not a string."));
      id = std::string(v->as_string());
    }
    if (id.empty()) id = uuid4_hex();
    json::object row;
    s.write([&](soci::session& ss) { row = insert_region(ss, id, body); });
    return created(json::object{{"region", region_view(s, row)}});
  }, "identity:create_region"});

  routes.push_back(Route{"GET", "/v3/regions/{region_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{{"region", region_view(s, s.get(st::region, ctx.param("region_id"), "region"))}});
  }, "identity:get_region"});

  routes.push_back(Route{"PUT", "/v3/regions/{region_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("region_id");
    auto body = entity(ctx, "region");
    if (auto* v = find(body, "id"); v && !v->is_null() && !(v->is_string() && v->as_string() == id))
      throw BadRequest("The region id in the body must match the id in the URL.");
    json::object row;
    s.write([&](soci::session& ss) { row = insert_region(ss, id, body); });
    return created(json::object{{"region", region_view(s, row)}});
  }, "identity:create_region"});

  routes.push_back(Route{"PATCH", "/v3/regions/{region_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("region_id");
    auto body = entity(ctx, "region");
    require_matching_id(body, id);
    json::object fields;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links") fields[kv.key()] = kv.value();
    if (auto* d = find(fields, "description")) {
      if (d->is_null())
        fields["description"] = "";
      else if (!d->is_string())
        throw BadRequest(field_error("description", "not a string."));
    }
    auto parent = nullable_id(fields, "parent_region_id");
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::region, id)) throw NotFound("Could not find region: " + id + ".");
      if (parent) check_parent_region(ss, id, *parent);
      db::update(ss, st::region, id, fields);
      row = *db::get(ss, st::region, id);
    });
    return ok(json::object{{"region", region_view(s, row)}});
  }, "identity:update_region"});

  routes.push_back(Route{"DELETE", "/v3/regions/{region_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("region_id");
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::region, id)) throw NotFound("Could not find region: " + id + ".");
      if (db::count(ss, st::region, db::Query{}.eq("parent_region_id", id)) > 0)
        throw Forbidden("Unable to delete region " + id + " because it or its child regions have associated "
                        "child regions.");
      db::remove_id(ss, st::region, id);
    });
    return no_content();
  }, "identity:delete_region"});
}

// ------------------------------------------------------------------ services

json::object service_view(const IdentityService& s, const json::object& row) {
  json::object v;
  for (auto& kv : row)
    if (kv.key() != "links") v[kv.key()] = kv.value();
  if (!find(v, "name") || v["name"].is_null()) v["name"] = "";
  if (!v["enabled"].is_bool()) v["enabled"] = true;
  v["links"] = self_link(s, "services/" + str(row, "id"));
  return v;
}

void validate_service(const json::object& o, bool create) {
  if (create || find(o, "type")) required_string(o, "type", 255);
  if (auto* n = find(o, "name")) {
    if (!n->is_string()) throw BadRequest(field_error("name", "not a string."));
    if (n->as_string().empty()) throw BadRequest(field_error("name", "must not be empty."));
    if (n->as_string().size() > 255) throw BadRequest(field_error("name", "longer than 255 characters."));
  }
  optional_bool(o, "enabled");
}

void add_service_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{"GET", "/v3/services", [&s](Context& ctx) -> http::Response {
    db::Query q;
    if (auto t = query(ctx, "type")) q.eq("type", *t);
    auto name = query(ctx, "name");
    json::array items;
    for (auto& r : s.list(st::service, q)) {
      if (name && str(r, "name") != *name) continue;
      items.push_back(service_view(s, r));
    }
    return ok(collection(s, "services", std::move(items), "services"));
  }, "identity:list_services"});

  routes.push_back(Route{"POST", "/v3/services", [&s](Context& ctx) -> http::Response {
    auto body = entity(ctx, "service");
    validate_service(body, true);
    json::object row;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links") row[kv.key()] = kv.value();
    auto id = uuid4_hex();
    row["id"] = id;
    if (!find(row, "enabled")) row["enabled"] = true;
    if (!find(row, "name")) row["name"] = "";
    s.write([&](soci::session& ss) {
      db::insert(ss, st::service, row);
      row = *db::get(ss, st::service, id);
    });
    return created(json::object{{"service", service_view(s, row)}});
  }, "identity:create_service"});

  routes.push_back(Route{"GET", "/v3/services/{service_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{{"service", service_view(s, s.get(st::service, ctx.param("service_id"), "service"))}});
  }, "identity:get_service"});

  routes.push_back(Route{"PATCH", "/v3/services/{service_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("service_id");
    auto body = entity(ctx, "service");
    require_matching_id(body, id);
    validate_service(body, false);
    json::object fields;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links") fields[kv.key()] = kv.value();
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::service, id)) throw NotFound("Could not find service: " + id + ".");
      db::update(ss, st::service, id, fields);
      row = *db::get(ss, st::service, id);
    });
    return ok(json::object{{"service", service_view(s, row)}});
  }, "identity:update_service"});

  routes.push_back(Route{"DELETE", "/v3/services/{service_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("service_id");
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::service, id)) throw NotFound("Could not find service: " + id + ".");
      db::remove(ss, st::endpoint, db::Query{}.eq("service_id", id));
      db::remove(ss, st::limit, db::Query{}.eq("service_id", id));
      db::remove(ss, st::registered_limit, db::Query{}.eq("service_id", id));
      db::remove_id(ss, st::service, id);
    });
    return no_content();
  }, "identity:delete_service"});
}

// ------------------------------------------------------------------ endpoints

json::object endpoint_view(const IdentityService& s, const json::object& row) {
  json::object v;
  for (auto& kv : row)
    if (kv.key() != "links" && kv.key() != "legacy_endpoint_id") v[kv.key()] = kv.value();
  auto region = value_or_null(row, "region_id");
  v["region_id"] = region;
  v["region"] = region;
  if (!v["enabled"].is_bool()) v["enabled"] = true;
  v["links"] = self_link(s, "endpoints/" + str(row, "id"));
  return v;
}

void validate_interface(const json::object& o) {
  auto i = required_string(o, "interface", 255);
  if (i != "public" && i != "internal" && i != "admin")
    throw BadRequest(field_error("interface", "'" + i + "' is not one of ['public', 'internal', 'admin']."));
}

void validate_enabled_strict(const json::object& o) {
  auto* v = find(o, "enabled");
  if (v && !v->is_bool()) throw BadRequest(field_error("enabled", "'" + json::serialize(*v) + "' is not of type 'boolean'."));
}

// The endpoint's region from `region_id` or the legacy `region`; `given` tells whether either was given.
std::optional<std::string> endpoint_region(const json::object& o, bool& given) {
  given = find(o, "region_id") || find(o, "region");
  if (auto r = nullable_id(o, "region_id")) return r;
  return nullable_id(o, "region");
}

void require_service(soci::session& ss, const std::string& service_id) {
  if (!db::get(ss, st::service, service_id))
    throw BadRequest(field_error("service_id", "could not find service " + service_id + "."));
}

void add_endpoint_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{"GET", "/v3/endpoints", [&s](Context& ctx) -> http::Response {
    db::Query q;
    for (const char* f : {"service_id", "interface", "region_id"})
      if (auto v = query(ctx, f)) q.eq(f, *v);
    json::array items;
    for (auto& r : s.list(st::endpoint, q)) items.push_back(endpoint_view(s, r));
    return ok(collection(s, "endpoints", std::move(items), "endpoints"));
  }, "identity:list_endpoints"});

  routes.push_back(Route{"POST", "/v3/endpoints", [&s](Context& ctx) -> http::Response {
    auto body = entity(ctx, "endpoint");
    auto service_id = required_string(body, "service_id", 64);
    validate_interface(body);
    required_string(body, "url", 65535);
    validate_enabled_strict(body);
    bool region_set = false;
    auto region = endpoint_region(body, region_set);
    json::object row;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links" && kv.key() != "region" && kv.key() != "legacy_endpoint_id")
        row[kv.key()] = kv.value();
    auto id = uuid4_hex();
    row["id"] = id;
    row["region_id"] = region ? json::value(*region) : json::value(nullptr);
    if (!find(row, "enabled")) row["enabled"] = true;
    s.write([&](soci::session& ss) {
      require_service(ss, service_id);
      if (region) ensure_region(ss, *region);
      db::insert(ss, st::endpoint, row);
      row = *db::get(ss, st::endpoint, id);
    });
    return created(json::object{{"endpoint", endpoint_view(s, row)}});
  }, "identity:create_endpoint"});

  routes.push_back(Route{"GET", "/v3/endpoints/{endpoint_id}", [&s](Context& ctx) -> http::Response {
    return ok(
        json::object{{"endpoint", endpoint_view(s, s.get(st::endpoint, ctx.param("endpoint_id"), "endpoint"))}});
  }, "identity:get_endpoint"});

  routes.push_back(Route{"PATCH", "/v3/endpoints/{endpoint_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("endpoint_id");
    auto body = entity(ctx, "endpoint");
    require_matching_id(body, id);
    std::optional<std::string> service_id;
    if (find(body, "service_id")) service_id = required_string(body, "service_id", 64);
    if (find(body, "interface")) validate_interface(body);
    if (find(body, "url")) required_string(body, "url", 65535);
    validate_enabled_strict(body);
    bool region_set = false;
    auto region = endpoint_region(body, region_set);
    json::object fields;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links" && kv.key() != "region" && kv.key() != "legacy_endpoint_id")
        fields[kv.key()] = kv.value();
    if (region_set) fields["region_id"] = region ? json::value(*region) : json::value(nullptr);
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::endpoint, id)) throw NotFound("Could not find endpoint: " + id + ".");
      if (service_id) require_service(ss, *service_id);
      if (region) ensure_region(ss, *region);
      db::update(ss, st::endpoint, id, fields);
      row = *db::get(ss, st::endpoint, id);
    });
    return ok(json::object{{"endpoint", endpoint_view(s, row)}});
  }, "identity:update_endpoint"});

  routes.push_back(Route{"DELETE", "/v3/endpoints/{endpoint_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("endpoint_id");
    s.write([&](soci::session& ss) {
      if (db::remove_id(ss, st::endpoint, id) == 0) throw NotFound("Could not find endpoint: " + id + ".");
    });
    return no_content();
  }, "identity:delete_endpoint"});
}

// ------------------------------------------------------------------ OS-EP-FILTER endpoint groups

json::object endpoint_group_view(const IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  auto filters = value_or_null(row, "filters");
  if (!filters.is_object()) filters = json::object{};
  return json::object{{"id", id},
                      {"name", value_or_null(row, "name")},
                      {"description", value_or_null(row, "description")},
                      {"filters", std::move(filters)},
                      {"links", self_link(s, "OS-EP-FILTER/endpoint_groups/" + id)}};
}

void validate_filters(const json::object& o, bool required) {
  auto* f = find(o, "filters");
  if (!f) {
    if (required) throw BadRequest("filters field is required and cannot be empty");
    return;
  }
  if (!f->is_object()) throw BadRequest(field_error("filters", "not an object."));
  if (required && f->as_object().empty()) throw BadRequest("filters field is required and cannot be empty");
  for (auto& kv : f->as_object()) {
    if (kv.key() != "service_id" && kv.key() != "region_id" && kv.key() != "interface")
      throw BadRequest("Expecting to find service_id or region_id or interface in endpoint_group. The server could "
                       "not comply with the request since it is either malformed or otherwise incorrect.");
  }
}

json::object endpoint_group_fields(const json::object& body, bool create) {
  json::object fields;
  if (create || find(body, "name")) fields["name"] = required_string(body, "name", 255);
  if (find(body, "description")) {
    auto d = optional_string(body, "description");
    fields["description"] = d ? json::value(*d) : json::value(nullptr);
  }
  validate_filters(body, create);
  if (auto* f = find(body, "filters")) fields["filters"] = *f;
  return fields;
}

json::object load_endpoint_group(IdentityService& s, const std::string& id) {
  return s.get(st::endpoint_group, id, "endpoint group");
}

void add_endpoint_group_routes(std::vector<Route>& routes, IdentityService& s) {
  const std::string base = "/v3/OS-EP-FILTER/endpoint_groups";
  routes.push_back(Route{"GET", base, [&s](Context& ctx) -> http::Response {
    db::Query q;
    if (auto n = query(ctx, "name")) q.eq("name", *n);
    json::array items;
    for (auto& r : s.list(st::endpoint_group, q)) items.push_back(endpoint_group_view(s, r));
    return ok(collection(s, "endpoint_groups", std::move(items), "OS-EP-FILTER/endpoint_groups"));
  }, "identity:list_endpoint_groups"});

  routes.push_back(Route{"POST", base, [&s](Context& ctx) -> http::Response {
    auto body = entity(ctx, "endpoint_group");
    auto row = endpoint_group_fields(body, true);
    auto id = uuid4_hex();
    row["id"] = id;
    if (!find(row, "description")) row["description"] = nullptr;
    s.write([&](soci::session& ss) {
      db::insert(ss, st::endpoint_group, row);
      row = *db::get(ss, st::endpoint_group, id);
    });
    return created(json::object{{"endpoint_group", endpoint_group_view(s, row)}});
  }, "identity:create_endpoint_group"});

  routes.push_back(Route{"GET", base + "/{endpoint_group_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{
        {"endpoint_group", endpoint_group_view(s, load_endpoint_group(s, ctx.param("endpoint_group_id")))}});
  }, "identity:get_endpoint_group"});

  routes.push_back(Route{"HEAD", base + "/{endpoint_group_id}", [&s](Context& ctx) -> http::Response {
    load_endpoint_group(s, ctx.param("endpoint_group_id"));
    return empty_response(200);
  }, "identity:get_endpoint_group"});

  routes.push_back(Route{"PATCH", base + "/{endpoint_group_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("endpoint_group_id");
    auto body = entity(ctx, "endpoint_group");
    require_matching_id(body, id);
    auto fields = endpoint_group_fields(body, false);
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::endpoint_group, id)) throw NotFound("Could not find endpoint group: " + id + ".");
      db::update(ss, st::endpoint_group, id, fields);
      row = *db::get(ss, st::endpoint_group, id);
    });
    return ok(json::object{{"endpoint_group", endpoint_group_view(s, row)}});
  }, "identity:update_endpoint_group"});

  routes.push_back(Route{"DELETE", base + "/{endpoint_group_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("endpoint_group_id");
    s.write([&](soci::session& ss) {
      if (db::remove_id(ss, st::endpoint_group, id) == 0)
        throw NotFound("Could not find endpoint group: " + id + ".");
    });
    return no_content();
  }, "identity:delete_endpoint_group"});

  // The endpoints an endpoint group's filters select.
  routes.push_back(Route{"GET", base + "/{endpoint_group_id}/endpoints", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("endpoint_group_id");
    auto group = load_endpoint_group(s, id);
    auto filters = value_or_null(group, "filters");
    json::array items;
    for (auto& e : s.list(st::endpoint)) {
      bool match = true;
      if (filters.is_object())
        for (auto& kv : filters.as_object())
          if (value_or_null(e, kv.key()) != kv.value()) match = false;
      if (match) items.push_back(endpoint_view(s, e));
    }
    return ok(collection(s, "endpoints", std::move(items), "OS-EP-FILTER/endpoint_groups/" + id + "/endpoints"));
  }, "identity:list_endpoints_associated_with_endpoint_group"});
}

// ------------------------------------------------------------------ policies

json::object policy_view(const IdentityService& s, const json::object& row) {
  json::object v;
  for (auto& kv : row)
    if (kv.key() != "links") v[kv.key()] = kv.value();
  v["links"] = self_link(s, "policies/" + str(row, "id"));
  return v;
}

void validate_policy(const json::object& o, bool create) {
  if (create || find(o, "type")) required_string(o, "type", 255);
  if (create || find(o, "blob")) {
    auto* b = find(o, "blob");
    if (!b) throw BadRequest(field_error("blob", "'blob' is a required property."));
    if (!b->is_string()) throw BadRequest(field_error("blob", "not a string."));
  }
}

void add_policy_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{"GET", "/v3/policies", [&s](Context& ctx) -> http::Response {
    db::Query q;
    if (auto t = query(ctx, "type")) q.eq("type", *t);
    json::array items;
    for (auto& r : s.list(st::policy, q)) items.push_back(policy_view(s, r));
    return ok(collection(s, "policies", std::move(items), "policies"));
  }, "identity:list_policies"});

  routes.push_back(Route{"POST", "/v3/policies", [&s](Context& ctx) -> http::Response {
    auto body = entity(ctx, "policy");
    validate_policy(body, true);
    json::object row;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links") row[kv.key()] = kv.value();
    auto id = uuid4_hex();
    row["id"] = id;
    s.write([&](soci::session& ss) {
      db::insert(ss, st::policy, row);
      row = *db::get(ss, st::policy, id);
    });
    return created(json::object{{"policy", policy_view(s, row)}});
  }, "identity:create_policy"});

  routes.push_back(Route{"GET", "/v3/policies/{policy_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{{"policy", policy_view(s, s.get(st::policy, ctx.param("policy_id"), "policy"))}});
  }, "identity:get_policy"});

  routes.push_back(Route{"PATCH", "/v3/policies/{policy_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("policy_id");
    auto body = entity(ctx, "policy");
    require_matching_id(body, id);
    validate_policy(body, false);
    json::object fields;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links") fields[kv.key()] = kv.value();
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::policy, id)) throw NotFound("Could not find policy: " + id + ".");
      db::update(ss, st::policy, id, fields);
      row = *db::get(ss, st::policy, id);
    });
    return ok(json::object{{"policy", policy_view(s, row)}});
  }, "identity:update_policy"});

  routes.push_back(Route{"DELETE", "/v3/policies/{policy_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("policy_id");
    s.write([&](soci::session& ss) {
      if (db::remove_id(ss, st::policy, id) == 0) throw NotFound("Could not find policy: " + id + ".");
    });
    return no_content();
  }, "identity:delete_policy"});
}

// ------------------------------------------------------------------ domain configuration

const std::vector<std::string>& ldap_options() {
  static const std::vector<std::string> o{
      "url", "user", "suffix", "query_scope", "page_size", "alias_dereferencing", "debug_level", "chase_referrals",
      "user_tree_dn", "user_filter", "user_objectclass", "user_id_attribute", "user_name_attribute",
      "user_mail_attribute", "user_description_attribute", "user_pass_attribute", "user_enabled_attribute",
      "user_enabled_invert", "user_enabled_mask", "user_enabled_default", "user_attribute_ignore",
      "user_default_project_id_attribute", "user_enabled_emulation", "user_enabled_emulation_dn",
      "user_enabled_emulation_use_group_config", "user_additional_attribute_mapping", "group_tree_dn",
      "group_filter", "group_objectclass", "group_id_attribute", "group_name_attribute", "group_members_are_ids",
      "group_member_attribute", "group_desc_attribute", "group_attribute_ignore",
      "group_additional_attribute_mapping", "tls_cacertfile", "tls_cacertdir", "use_tls", "tls_req_cert", "use_pool",
      "pool_size", "pool_retry_max", "pool_retry_delay", "pool_connection_timeout", "pool_connection_lifetime",
      "use_auth_pool", "auth_pool_size", "auth_pool_connection_lifetime"};
  return o;
}

// Keystone's option defaults (keystone/conf/identity.py and ldap.py).
const json::object& config_defaults() {
  static const json::object d = [] {
    json::object identity{{"driver", "sql"}, {"list_limit", nullptr}};
    json::object ldap{{"url", "ldap://localhost"},
                      {"user", nullptr},
                      {"suffix", "cn=example,cn=com"},
                      {"query_scope", "one"},
                      {"page_size", 0},
                      {"alias_dereferencing", "default"},
                      {"debug_level", nullptr},
                      {"chase_referrals", nullptr},
                      {"user_tree_dn", nullptr},
                      {"user_filter", nullptr},
                      {"user_objectclass", "inetOrgPerson"},
                      {"user_id_attribute", "cn"},
                      {"user_name_attribute", "sn"},
                      {"user_mail_attribute", "mail"},
                      {"user_description_attribute", "description"},
                      {"user_pass_attribute", "userPassword"},
                      {"user_enabled_attribute", "enabled"},
                      {"user_enabled_invert", false},
                      {"user_enabled_mask", 0},
                      {"user_enabled_default", "True"},
                      {"user_attribute_ignore", json::array{"default_project_id"}},
                      {"user_default_project_id_attribute", nullptr},
                      {"user_enabled_emulation", false},
                      {"user_enabled_emulation_dn", nullptr},
                      {"user_enabled_emulation_use_group_config", false},
                      {"user_additional_attribute_mapping", json::array{}},
                      {"group_tree_dn", nullptr},
                      {"group_filter", nullptr},
                      {"group_objectclass", "groupOfNames"},
                      {"group_id_attribute", "cn"},
                      {"group_name_attribute", "ou"},
                      {"group_members_are_ids", false},
                      {"group_member_attribute", "member"},
                      {"group_desc_attribute", "description"},
                      {"group_attribute_ignore", json::array{}},
                      {"group_additional_attribute_mapping", json::array{}},
                      {"tls_cacertfile", nullptr},
                      {"tls_cacertdir", nullptr},
                      {"use_tls", false},
                      {"tls_req_cert", "demand"},
                      {"use_pool", true},
                      {"pool_size", 10},
                      {"pool_retry_max", 3},
                      {"pool_retry_delay", 0.1},
                      {"pool_connection_timeout", -1},
                      {"pool_connection_lifetime", 600},
                      {"use_auth_pool", true},
                      {"auth_pool_size", 100},
                      {"auth_pool_connection_lifetime", 60}};
    return json::object{{"identity", std::move(identity)}, {"ldap", std::move(ldap)}};
  }();
  return d;
}

bool is_sensitive(const std::string& group, const std::string& option) {
  return group == "ldap" && option == "password";
}

bool is_whitelisted(const std::string& group, const std::string& option) {
  if (group == "identity") return option == "driver" || option == "list_limit";
  if (group == "ldap")
    for (auto& o : ldap_options())
      if (o == option) return true;
  return false;
}

ApiError invalid_config(const std::string& reason) {
  return Forbidden("Invalid domain specific configuration: " + reason + ".");
}

void check_group_option(const std::string& group, const std::string& option = {}) {
  if (group != "identity" && group != "ldap")
    throw invalid_config("Group " + group + " is not supported for domain specific configurations");
  if (!option.empty() && !is_whitelisted(group, option) && !is_sensitive(group, option))
    throw invalid_config("Option " + option + " in group " + group +
                         " is not supported for domain specific configurations");
}

void check_config(const json::object& config) {
  if (config.empty()) throw invalid_config("No options specified");
  for (auto& g : config) {
    std::string group(g.key());
    if (!g.value().is_object() || g.value().as_object().empty())
      throw invalid_config("The value of group " + group +
                           " specified in the config should be a dictionary of options");
    check_group_option(group);
    for (auto& o : g.value().as_object()) check_group_option(group, std::string(o.key()));
  }
}

// The "config" object of the request body (absent: empty, which check_config refuses).
json::object request_config(const Context& ctx) {
  if (ctx.request.body.empty()) return {};
  auto body = ctx.body();
  auto* c = find(body, "config");
  if (!c) return {};
  if (!c->is_object()) throw BadRequest(field_error("config", "not an object."));
  return c->as_object();
}

// The stored config with sensitive options (empty when there is none).
json::object stored_config(soci::session& ss, const std::string& domain_id) {
  auto row = db::get(ss, st::domain_config, domain_id);
  if (!row) return {};
  auto* c = find(*row, "config");
  return c && c->is_object() ? c->as_object() : json::object{};
}

void save_config(soci::session& ss, const std::string& domain_id, json::object config) {
  // Drop emptied groups.
  std::vector<std::string> empty_groups;
  for (auto& g : config)
    if (!g.value().is_object() || g.value().as_object().empty()) empty_groups.emplace_back(g.key());
  for (auto& g : empty_groups) config.erase(g);
  bool exists = db::get(ss, st::domain_config, domain_id).has_value();
  if (config.empty()) {
    if (exists) db::remove_id(ss, st::domain_config, domain_id);
  } else if (exists) {
    db::update(ss, st::domain_config, domain_id, json::object{{"config", config}});
  } else {
    db::insert(ss, st::domain_config, json::object{{"domain_id", domain_id}, {"config", config}});
  }
}

// Without sensitive options (and groups left empty by their removal).
json::object public_config(const json::object& config) {
  json::object out;
  for (auto& g : config) {
    if (!g.value().is_object()) continue;
    json::object opts;
    for (auto& o : g.value().as_object())
      if (!is_sensitive(std::string(g.key()), std::string(o.key()))) opts[o.key()] = o.value();
    if (!opts.empty()) out[g.key()] = std::move(opts);
  }
  return out;
}

ApiError config_not_found(const std::string& domain_id, const std::string& what) {
  return NotFound("Could not find " + what + " in the configuration for domain " + domain_id + ".");
}

json::object whole_public_config(soci::session& ss, const std::string& domain_id) {
  auto cfg = public_config(stored_config(ss, domain_id));
  if (cfg.empty()) throw config_not_found(domain_id, "any options");
  return cfg;
}

// GET domains/{d}/config/security_compliance[/{option}] for the default domain (keystone: readable by anyone).
json::object security_compliance_config(const IdentityService& s, const std::string& domain_id,
                                        const std::string& option) {
  if (domain_id != s.settings().default_domain_id)
    throw invalid_config("Reading security compliance information for any domain other than the default domain "
                         "is not allowed or supported");
  if (!option.empty() && option != "password_regex" && option != "password_regex_description")
    throw invalid_config("Reading security compliance values other than password_regex and "
                         "password_regex_description is not allowed");
  if (!option.empty()) return json::object{{option, nullptr}};
  return json::object{
      {"security_compliance", json::object{{"password_regex", nullptr}, {"password_regex_description", nullptr}}}};
}

void add_domain_config_routes(std::vector<Route>& routes, IdentityService& s) {
  // Defaults
  routes.push_back(Route{"GET", "/v3/domains/config/default", [](Context&) -> http::Response {
    return ok(json::object{{"config", config_defaults()}});
  }, "identity:get_domain_config_default"});

  routes.push_back(Route{"GET", "/v3/domains/config/{group}/default", [](Context& ctx) -> http::Response {
    auto group = ctx.param("group");
    check_group_option(group);
    return ok(json::object{{"config", json::object{{group, config_defaults().at(group)}}}});
  }, "identity:get_domain_config_default"});

  routes.push_back(Route{"GET", "/v3/domains/config/{group}/{option}/default", [](Context& ctx) -> http::Response {
    auto group = ctx.param("group");
    auto option = ctx.param("option");
    check_group_option(group, option);
    if (!is_whitelisted(group, option))
      throw invalid_config("Reading the default for option " + option + " in group " + group + " is not supported");
    return ok(json::object{{"config", json::object{{option, config_defaults().at(group).as_object().at(option)}}}});
  }, "identity:get_domain_config_default"});

  // Whole config
  routes.push_back(Route{"PUT", "/v3/domains/{domain_id}/config", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    load_domain(s, domain_id);
    auto config = request_config(ctx);
    check_config(config);
    bool existed = false;
    json::object out;
    s.write([&](soci::session& ss) {
      existed = !stored_config(ss, domain_id).empty();
      save_config(ss, domain_id, config);
      out = public_config(stored_config(ss, domain_id));
    });
    return json_response(existed ? 200 : 201, json::object{{"config", out}});
  }, "identity:create_domain_config"});

  routes.push_back(Route{"GET", "/v3/domains/{domain_id}/config", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    load_domain(s, domain_id);
    json::object out;
    s.read([&](soci::session& ss) { out = whole_public_config(ss, domain_id); });
    return ok(json::object{{"config", out}});
  }, "identity:get_domain_config"});

  routes.push_back(Route{"PATCH", "/v3/domains/{domain_id}/config", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    load_domain(s, domain_id);
    auto update = request_config(ctx);
    check_config(update);
    json::object out;
    s.write([&](soci::session& ss) {
      auto config = stored_config(ss, domain_id);
      for (auto& g : update) {
        auto& target = config[g.key()];
        if (!target.is_object()) target = json::object{};
        for (auto& o : g.value().as_object()) target.as_object()[o.key()] = o.value();
      }
      save_config(ss, domain_id, config);
      out = whole_public_config(ss, domain_id);
    });
    return ok(json::object{{"config", out}});
  }, "identity:update_domain_config"});

  routes.push_back(Route{"DELETE", "/v3/domains/{domain_id}/config", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    load_domain(s, domain_id);
    s.write([&](soci::session& ss) { db::remove_id(ss, st::domain_config, domain_id); });
    return no_content();
  }, "identity:delete_domain_config"});

  // One group. GET checks its policy in the handler: the security_compliance group is readable by anyone.
  routes.push_back(Route{"GET", "/v3/domains/{domain_id}/config/{group}", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    if (group == "security_compliance") {
      load_domain(s, domain_id);
      return ok(json::object{{"config", security_compliance_config(s, domain_id, {})}});
    }
    ctx.authorize("identity:get_domain_config", Target{{"domain_id", domain_id}, {"group", group}});
    load_domain(s, domain_id);
    check_group_option(group);
    json::object out;
    s.read([&](soci::session& ss) {
      auto cfg = public_config(stored_config(ss, domain_id));
      auto* g = find(cfg, group);
      if (!g) throw config_not_found(domain_id, "group " + group);
      out = json::object{{group, *g}};
    });
    return ok(json::object{{"config", out}});
  }, ""});

  routes.push_back(Route{"PATCH", "/v3/domains/{domain_id}/config/{group}", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    load_domain(s, domain_id);
    auto update = request_config(ctx);
    check_config(update);
    check_group_option(group);
    if (update.size() != 1)
      throw invalid_config("Trying to update group " + group +
                           ", so that, and only that, group must be specified in the config");
    if (!find(update, group))
      throw invalid_config("request to update group " + group + ", but config provided contains group " +
                           std::string(update.begin()->key()) + " instead");
    json::object out;
    s.write([&](soci::session& ss) {
      auto config = stored_config(ss, domain_id);
      auto* current = find(config, group);
      if (!current || !current->is_object() || current->as_object().empty())
        throw config_not_found(domain_id, "group " + group);
      auto& target = config[group].as_object();
      for (auto& o : update[group].as_object()) target[o.key()] = o.value();
      save_config(ss, domain_id, config);
      out = whole_public_config(ss, domain_id);
    });
    return ok(json::object{{"config", out}});
  }, "identity:update_domain_config"});

  routes.push_back(Route{"DELETE", "/v3/domains/{domain_id}/config/{group}", [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    load_domain(s, domain_id);
    check_group_option(group);
    s.write([&](soci::session& ss) {
      auto config = stored_config(ss, domain_id);
      auto* current = find(config, group);
      if (!current || !current->is_object() || current->as_object().empty())
        throw config_not_found(domain_id, "group " + group);
      config.erase(group);
      save_config(ss, domain_id, config);
    });
    return no_content();
  }, "identity:delete_domain_config"});

  // One option.
  const std::string opt_path = "/v3/domains/{domain_id}/config/{group}/{option}";
  routes.push_back(Route{"GET", opt_path, [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    auto option = ctx.param("option");
    if (group == "security_compliance") {
      load_domain(s, domain_id);
      return ok(json::object{{"config", security_compliance_config(s, domain_id, option)}});
    }
    ctx.authorize("identity:get_domain_config",
                  Target{{"domain_id", domain_id}, {"group", group}, {"option", option}});
    load_domain(s, domain_id);
    check_group_option(group, option);
    json::object out;
    s.read([&](soci::session& ss) {
      auto cfg = public_config(stored_config(ss, domain_id));
      const json::value* v = nullptr;
      if (auto* g = find(cfg, group)) v = find(g->as_object(), option);
      if (!v) throw config_not_found(domain_id, "option " + option + " in group " + group);
      out = json::object{{option, *v}};
    });
    return ok(json::object{{"config", out}});
  }, ""});

  routes.push_back(Route{"PATCH", opt_path, [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    auto option = ctx.param("option");
    load_domain(s, domain_id);
    auto update = request_config(ctx);
    check_group_option(group, option);
    if (update.empty()) throw invalid_config("No options specified");
    if (update.size() != 1)
      throw invalid_config("Trying to update option " + option + " in group " + group +
                           ", so that, and only that, option must be specified  in the config");
    if (!find(update, option))
      throw invalid_config("Trying to update option " + option + " in group " + group +
                           ", but config provided contains option " + std::string(update.begin()->key()) +
                           " instead");
    json::object out;
    s.write([&](soci::session& ss) {
      auto config = stored_config(ss, domain_id);
      auto* g = find(config, group);
      if (!g || !g->is_object() || !find(g->as_object(), option))
        throw config_not_found(domain_id, "option " + option + " in group " + group);
      config[group].as_object()[option] = update[option];
      save_config(ss, domain_id, config);
      out = whole_public_config(ss, domain_id);
    });
    return ok(json::object{{"config", out}});
  }, "identity:update_domain_config"});

  routes.push_back(Route{"DELETE", opt_path, [&s](Context& ctx) -> http::Response {
    auto domain_id = ctx.param("domain_id");
    auto group = ctx.param("group");
    auto option = ctx.param("option");
    load_domain(s, domain_id);
    check_group_option(group, option);
    s.write([&](soci::session& ss) {
      auto config = stored_config(ss, domain_id);
      auto* g = find(config, group);
      if (!g || !g->is_object() || g->as_object().empty()) throw config_not_found(domain_id, "group " + group);
      if (!find(g->as_object(), option))
        throw config_not_found(domain_id, "option " + option + " in group " + group);
      config[group].as_object().erase(option);
      save_config(ss, domain_id, config);
    });
    return no_content();
  }, "identity:delete_domain_config"});
}

// ------------------------------------------------------------------ OS-OAUTH1 consumers

json::object consumer_view(const IdentityService& s, const json::object& row) {
  json::object v;
  for (auto& kv : row)
    if (kv.key() != "links" && kv.key() != "secret") v[kv.key()] = kv.value();
  if (!find(v, "description")) v["description"] = nullptr;
  v["links"] = self_link(s, "OS-OAUTH1/consumers/" + str(row, "id"));
  return v;
}

json::object consumer_body(const Context& ctx) {
  if (ctx.request.body.empty()) return {};
  auto body = ctx.body();
  auto* c = find(body, "consumer");
  if (!c) return {};
  if (!c->is_object()) throw BadRequest(field_error("consumer", "not an object."));
  return c->as_object();
}

void add_consumer_routes(std::vector<Route>& routes, IdentityService& s) {
  const std::string base = "/v3/OS-OAUTH1/consumers";
  routes.push_back(Route{"GET", base, [&s](Context&) -> http::Response {
    json::array items;
    for (auto& r : s.list(st::consumer)) items.push_back(consumer_view(s, r));
    return ok(collection(s, "consumers", std::move(items), "OS-OAUTH1/consumers"));
  }, "identity:list_consumers"});

  routes.push_back(Route{"POST", base, [&s](Context& ctx) -> http::Response {
    auto body = consumer_body(ctx);
    optional_string(body, "description");
    json::object row;
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "links" && kv.key() != "secret") row[kv.key()] = kv.value();
    auto id = uuid4_hex();
    auto secret = uuid4_hex();
    row["id"] = id;
    row["secret"] = secret;
    if (!find(row, "description")) row["description"] = nullptr;
    s.write([&](soci::session& ss) {
      db::insert(ss, st::consumer, row);
      row = *db::get(ss, st::consumer, id);
    });
    auto view = consumer_view(s, row);
    view["secret"] = secret;
    return created(json::object{{"consumer", std::move(view)}});
  }, "identity:create_consumer"});

  routes.push_back(Route{"GET", base + "/{consumer_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{{"consumer", consumer_view(s, s.get(st::consumer, ctx.param("consumer_id"), "consumer"))}});
  }, "identity:get_consumer"});

  routes.push_back(Route{"PATCH", base + "/{consumer_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("consumer_id");
    auto body = consumer_body(ctx);
    require_matching_id(body, id);
    for (auto& kv : body)
      if (kv.key() != "id" && kv.key() != "description")
        throw BadRequest(field_error(std::string(kv.key()), "only 'description' can be updated."));
    json::object fields;
    if (find(body, "description")) {
      auto d = optional_string(body, "description");
      fields["description"] = d ? json::value(*d) : json::value(nullptr);
    }
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::consumer, id)) throw NotFound("Could not find consumer: " + id + ".");
      db::update(ss, st::consumer, id, fields);
      row = *db::get(ss, st::consumer, id);
    });
    return ok(json::object{{"consumer", consumer_view(s, row)}});
  }, "identity:update_consumer"});

  routes.push_back(Route{"DELETE", base + "/{consumer_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("consumer_id");
    s.write([&](soci::session& ss) {
      if (db::remove_id(ss, st::consumer, id) == 0) throw NotFound("Could not find consumer: " + id + ".");
    });
    return no_content();
  }, "identity:delete_consumer"});
}

// ------------------------------------------------------------------ unified limits

const char* kFlatDescription =
    "Limit enforcement and validation does not take project hierarchy into consideration.";

json::object registered_limit_view(const IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  return json::object{{"id", id},
                      {"service_id", value_or_null(row, "service_id")},
                      {"region_id", value_or_null(row, "region_id")},
                      {"resource_name", value_or_null(row, "resource_name")},
                      {"default_limit", value_or_null(row, "default_limit")},
                      {"description", value_or_null(row, "description")},
                      {"links", self_link(s, "registered_limits/" + id)}};
}

json::object limit_view(const IdentityService& s, const json::object& row) {
  auto id = str(row, "id");
  return json::object{{"id", id},
                      {"project_id", value_or_null(row, "project_id")},
                      {"domain_id", value_or_null(row, "domain_id")},
                      {"service_id", value_or_null(row, "service_id")},
                      {"region_id", value_or_null(row, "region_id")},
                      {"resource_name", value_or_null(row, "resource_name")},
                      {"resource_limit", value_or_null(row, "resource_limit")},
                      {"description", value_or_null(row, "description")},
                      {"links", self_link(s, "limits/" + id)}};
}

std::int64_t limit_value(const json::object& o, const char* field) {
  auto* v = find(o, field);
  if (!v) throw BadRequest(field_error(field, "'" + std::string(field) + "' is a required property."));
  if (!v->is_int64()) throw BadRequest(field_error(field, "not an integer."));
  auto x = v->as_int64();
  if (x < -1 || x > 0x7FFFFFFF) throw BadRequest(field_error(field, "must be between -1 and 2147483647."));
  return x;
}

void only_fields(const json::object& o, std::initializer_list<const char*> allowed) {
  for (auto& kv : o) {
    bool ok_field = false;
    for (auto* a : allowed)
      if (kv.key() == a) ok_field = true;
    if (!ok_field)
      throw BadRequest("Additional properties are not allowed ('" + std::string(kv.key()) + "' was unexpected).");
  }
}

std::optional<std::string> nullable_description(const json::object& o) {
  return optional_string(o, "description", 255);
}

// Service and region must exist (400 otherwise, as Keystone's ValidationError).
void check_limit_refs(soci::session& ss, const std::string& service_id, const std::optional<std::string>& region_id,
                      const char* target) {
  if (!db::get(ss, st::service, service_id))
    throw BadRequest("Invalid input for field 'service_id' of " + std::string(target) + ": could not find service " +
                     service_id + ".");
  if (region_id && !db::get(ss, st::region, *region_id))
    throw BadRequest("Invalid input for field 'region_id' of " + std::string(target) + ": could not find region " +
                     *region_id + ".");
}

db::Query limit_key_query(const std::string& service_id, const std::optional<std::string>& region_id,
                          const std::string& resource_name) {
  db::Query q;
  q.eq("service_id", service_id).eq("resource_name", resource_name);
  if (region_id)
    q.eq("region_id", *region_id);
  else
    q.is_null("region_id");
  return q;
}

json::array body_array(const Context& ctx, const char* key) {
  auto body = ctx.body();
  auto* v = find(body, key);
  if (!v || !v->is_array())
    throw BadRequest(field_error(key, "'" + std::string(key) + "' is a required property and must be a list."));
  if (v->as_array().empty()) throw BadRequest(field_error(key, "must not be empty."));
  return v->as_array();
}

void add_registered_limit_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{"GET", "/v3/registered_limits", [&s](Context& ctx) -> http::Response {
    db::Query q;
    for (const char* f : {"service_id", "region_id", "resource_name"})
      if (auto v = query(ctx, f)) q.eq(f, *v);
    json::array items;
    for (auto& r : s.list(st::registered_limit, q)) items.push_back(registered_limit_view(s, r));
    return ok(collection(s, "registered_limits", std::move(items), "registered_limits"));
  }, "identity:list_registered_limits"});

  routes.push_back(Route{"POST", "/v3/registered_limits", [&s](Context& ctx) -> http::Response {
    auto items = body_array(ctx, "registered_limits");
    std::vector<json::object> rows;
    for (auto& item : items) {
      if (!item.is_object()) throw BadRequest(field_error("registered_limits", "items must be objects."));
      auto& o = item.as_object();
      only_fields(o, {"service_id", "region_id", "resource_name", "default_limit", "description"});
      json::object row;
      row["id"] = uuid4_hex();
      row["service_id"] = required_string(o, "service_id", 64);
      auto region = nullable_id(o, "region_id");
      row["region_id"] = region ? json::value(*region) : json::value(nullptr);
      row["resource_name"] = required_string(o, "resource_name", 255);
      row["default_limit"] = limit_value(o, "default_limit");
      auto d = nullable_description(o);
      row["description"] = d ? json::value(*d) : json::value(nullptr);
      rows.push_back(std::move(row));
    }
    json::array out;
    s.write([&](soci::session& ss) {
      for (auto& row : rows) {
        auto service_id = str(row, "service_id");
        std::optional<std::string> region;
        if (row["region_id"].is_string()) region = str(row, "region_id");
        check_limit_refs(ss, service_id, region, "registered_limit");
        if (db::count(ss, st::registered_limit, limit_key_query(service_id, region, str(row, "resource_name"))) > 0)
          throw duplicate("registered_limit");
        db::insert(ss, st::registered_limit, row);
        out.push_back(registered_limit_view(s, *db::get(ss, st::registered_limit, str(row, "id"))));
      }
    });
    return created(json::object{{"registered_limits", std::move(out)}});
  }, "identity:create_registered_limits"});

  routes.push_back(Route{"GET", "/v3/registered_limits/{registered_limit_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{
        {"registered_limit", registered_limit_view(s, s.get(st::registered_limit, ctx.param("registered_limit_id"),
                                                            "registered limit"))}});
  }, "identity:get_registered_limit"});

  routes.push_back(Route{"PATCH", "/v3/registered_limits/{registered_limit_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("registered_limit_id");
    auto body = entity(ctx, "registered_limit");
    only_fields(body, {"service_id", "region_id", "resource_name", "default_limit", "description"});
    json::object fields;
    if (find(body, "service_id")) fields["service_id"] = required_string(body, "service_id", 64);
    if (find(body, "region_id")) {
      auto r = nullable_id(body, "region_id");
      fields["region_id"] = r ? json::value(*r) : json::value(nullptr);
    }
    if (find(body, "resource_name")) fields["resource_name"] = required_string(body, "resource_name", 255);
    if (find(body, "default_limit")) fields["default_limit"] = limit_value(body, "default_limit");
    if (find(body, "description")) {
      auto d = nullable_description(body);
      fields["description"] = d ? json::value(*d) : json::value(nullptr);
    }
    json::object row;
    s.write([&](soci::session& ss) {
      auto current = db::get(ss, st::registered_limit, id);
      if (!current) throw NotFound("Could not find registered limit: " + id + ".");
      json::object merged = *current;
      for (auto& kv : fields) merged[kv.key()] = kv.value();
      auto old_service = str(*current, "service_id");
      std::optional<std::string> old_region;
      if ((*current)["region_id"].is_string()) old_region = str(*current, "region_id");
      auto old_resource = str(*current, "resource_name");
      auto service_id = str(merged, "service_id");
      std::optional<std::string> region;
      if (merged["region_id"].is_string()) region = str(merged, "region_id");
      auto resource = str(merged, "resource_name");
      bool key_changed = service_id != old_service || region != old_region || resource != old_resource;
      if (key_changed) {
        // Project limits refer to their registered limit by (service, region, resource).
        if (db::count(ss, st::limit, limit_key_query(old_service, old_region, old_resource)) > 0)
          throw Forbidden("Unable to update or delete registered limit " + id +
                          " because there are project limits associated with it.");
        check_limit_refs(ss, service_id, region, "registered_limit");
        if (db::count(ss, st::registered_limit, limit_key_query(service_id, region, resource)) > 0)
          throw duplicate("registered_limit");
      }
      db::update(ss, st::registered_limit, id, fields);
      row = *db::get(ss, st::registered_limit, id);
    });
    return ok(json::object{{"registered_limit", registered_limit_view(s, row)}});
  }, "identity:update_registered_limit"});

  routes.push_back(Route{"DELETE", "/v3/registered_limits/{registered_limit_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("registered_limit_id");
    s.write([&](soci::session& ss) {
      auto current = db::get(ss, st::registered_limit, id);
      if (!current) throw NotFound("Could not find registered limit: " + id + ".");
      std::optional<std::string> region;
      if ((*current)["region_id"].is_string()) region = str(*current, "region_id");
      if (db::count(ss, st::limit,
                    limit_key_query(str(*current, "service_id"), region, str(*current, "resource_name"))) > 0)
        throw Forbidden("Unable to update or delete registered limit " + id +
                        " because there are project limits associated with it.");
      db::remove_id(ss, st::registered_limit, id);
    });
    return no_content();
  }, "identity:delete_registered_limit"});
}

void add_limit_routes(std::vector<Route>& routes, IdentityService& s) {
  // Before /v3/limits/{limit_id} so that "model" is not taken for an id.
  routes.push_back(Route{"GET", "/v3/limits/model", [](Context&) -> http::Response {
    return ok(json::object{{"model", json::object{{"name", "flat"}, {"description", kFlatDescription}}}});
  }, "identity:get_limit_model"});
  // HEAD falls back to the last matching GET route, which would be /v3/limits/{limit_id}.
  routes.push_back(Route{"HEAD", "/v3/limits/model", [](Context&) -> http::Response { return empty_response(200); },
                         "identity:get_limit_model"});

  routes.push_back(Route{"GET", "/v3/limits", [&s](Context& ctx) -> http::Response {
    db::Query q;
    for (const char* f : {"service_id", "region_id", "resource_name", "project_id", "domain_id"})
      if (auto v = query(ctx, f)) q.eq(f, *v);
    std::vector<json::object> rows;
    const auto& auth = ctx.auth;
    bool superuser = auth && (auth->system_scope || auth->has_role("admin") || auth->has_role("service"));
    if (superuser) {
      rows = s.list(st::limit, q);
    } else if (auth && !auth->domain_id.empty()) {
      std::set<std::string> projects;
      for (auto& p : s.list(st::project, db::Query{}.eq("domain_id", auth->domain_id))) projects.insert(str(p, "id"));
      for (auto& r : s.list(st::limit, q)) {
        auto pid = str(r, "project_id");
        if (!pid.empty() ? projects.count(pid) > 0 : str(r, "domain_id") == auth->domain_id) rows.push_back(r);
      }
    } else if (auth && !auth->project_id.empty()) {
      q.eq("project_id", auth->project_id);
      rows = s.list(st::limit, q);
    }
    json::array items;
    for (auto& r : rows) items.push_back(limit_view(s, r));
    return ok(collection(s, "limits", std::move(items), "limits"));
  }, "identity:list_limits"});

  routes.push_back(Route{"POST", "/v3/limits", [&s](Context& ctx) -> http::Response {
    auto items = body_array(ctx, "limits");
    std::vector<json::object> rows;
    for (auto& item : items) {
      if (!item.is_object()) throw BadRequest(field_error("limits", "items must be objects."));
      auto& o = item.as_object();
      only_fields(o, {"project_id", "domain_id", "service_id", "region_id", "resource_name", "resource_limit",
                      "description"});
      auto project = nullable_id(o, "project_id", 64);
      auto domain = nullable_id(o, "domain_id", 64);
      if (project.has_value() == domain.has_value())
        throw BadRequest("Invalid input for limits: exactly one of 'project_id' and 'domain_id' is required.");
      json::object row;
      row["id"] = uuid4_hex();
      row["project_id"] = project ? json::value(*project) : json::value(nullptr);
      row["domain_id"] = domain ? json::value(*domain) : json::value(nullptr);
      row["service_id"] = required_string(o, "service_id", 64);
      auto region = nullable_id(o, "region_id");
      row["region_id"] = region ? json::value(*region) : json::value(nullptr);
      row["resource_name"] = required_string(o, "resource_name", 255);
      row["resource_limit"] = limit_value(o, "resource_limit");
      auto d = nullable_description(o);
      row["description"] = d ? json::value(*d) : json::value(nullptr);
      rows.push_back(std::move(row));
    }
    json::array out;
    s.write([&](soci::session& ss) {
      for (auto& row : rows) {
        auto service_id = str(row, "service_id");
        std::optional<std::string> region;
        if (row["region_id"].is_string()) region = str(row, "region_id");
        auto resource = str(row, "resource_name");
        check_limit_refs(ss, service_id, region, "limit");
        if (row["project_id"].is_string()) {
          auto pid = str(row, "project_id");
          auto p = db::get(ss, st::project, pid);
          if (!p) throw BadRequest("Invalid input for field 'project_id' of limit: could not find project " + pid + ".");
          if ((*p)["is_domain"].is_bool() && (*p)["is_domain"].as_bool()) {
            // A domain given as a project: a domain-level limit, as Keystone treats it.
            row["domain_id"] = pid;
            row["project_id"] = nullptr;
          }
        } else {
          auto did = str(row, "domain_id");
          auto d = db::get(ss, st::project, did);
          if (!d || !(*d)["is_domain"].is_bool() || !(*d)["is_domain"].as_bool())
            throw BadRequest("Invalid input for field 'domain_id' of limit: could not find domain " + did + ".");
        }
        if (db::count(ss, st::registered_limit, limit_key_query(service_id, region, resource)) == 0)
          throw Forbidden("Unable to create a limit that has no corresponding registered limit.");
        auto dup = limit_key_query(service_id, region, resource);
        if (row["project_id"].is_string())
          dup.eq("project_id", str(row, "project_id"));
        else
          dup.eq("domain_id", str(row, "domain_id"));
        if (db::count(ss, st::limit, dup) > 0) throw duplicate("limit");
        db::insert(ss, st::limit, row);
        out.push_back(limit_view(s, *db::get(ss, st::limit, str(row, "id"))));
      }
    });
    return created(json::object{{"limits", std::move(out)}});
  }, "identity:create_limits"});

  Route show{"GET", "/v3/limits/{limit_id}", [&s](Context& ctx) -> http::Response {
    return ok(json::object{{"limit", limit_view(s, s.get(st::limit, ctx.param("limit_id"), "limit"))}});
  }, "identity:get_limit"};
  // The rule reads target.limit.project_id; a missing limit is reported by the handler.
  show.target = [&s](Context& ctx) -> Target {
    Target t;
    if (auto row = s.find(st::limit, ctx.param("limit_id"))) {
      if (auto pid = str(*row, "project_id"); !pid.empty()) t["target.limit.project_id"] = pid;
      if (auto did = str(*row, "domain_id"); !did.empty()) t["target.limit.domain_id"] = did;
    }
    return t;
  };
  routes.push_back(std::move(show));

  routes.push_back(Route{"PATCH", "/v3/limits/{limit_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("limit_id");
    auto body = entity(ctx, "limit");
    only_fields(body, {"resource_limit", "description"});
    json::object fields;
    if (find(body, "resource_limit")) fields["resource_limit"] = limit_value(body, "resource_limit");
    if (find(body, "description")) {
      auto d = nullable_description(body);
      fields["description"] = d ? json::value(*d) : json::value(nullptr);
    }
    json::object row;
    s.write([&](soci::session& ss) {
      if (!db::get(ss, st::limit, id)) throw NotFound("Could not find limit: " + id + ".");
      db::update(ss, st::limit, id, fields);
      row = *db::get(ss, st::limit, id);
    });
    return ok(json::object{{"limit", limit_view(s, row)}});
  }, "identity:update_limit"});

  routes.push_back(Route{"DELETE", "/v3/limits/{limit_id}", [&s](Context& ctx) -> http::Response {
    auto id = ctx.param("limit_id");
    s.write([&](soci::session& ss) {
      if (db::remove_id(ss, st::limit, id) == 0) throw NotFound("Could not find limit: " + id + ".");
    });
    return no_content();
  }, "identity:delete_limit"});
}

}  // namespace

void add_catalog_routes(std::vector<Route>& routes, IdentityService& s) {
  add_region_routes(routes, s);
  add_service_routes(routes, s);
  add_endpoint_routes(routes, s);
  add_endpoint_group_routes(routes, s);
  add_policy_routes(routes, s);
  add_domain_config_routes(routes, s);
  add_consumer_routes(routes, s);
  add_registered_limit_routes(routes, s);
  add_limit_routes(routes, s);
}

}  // namespace nubo::identity::api
