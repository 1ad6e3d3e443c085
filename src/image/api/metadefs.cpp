// /v2/metadefs: metadata definition namespaces (public or private to their owner, protected ones
// cannot be deleted), the objects, properties and tags each defines, the resource types and the
// namespaces' associations with them. Deleting a namespace deletes everything it defines.
#include <soci/soci.h>

#include <algorithm>

#include "common/ids.hpp"
#include "image/api/common.hpp"
#include "image/store/schema.hpp"

namespace nubo::image::api {

namespace {

namespace st = store;

const std::string kNamespaces = "/v2/metadefs/namespaces";

std::string str_of(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A required, non-empty string of at most `max` characters.
std::string required_name(const json::object& body, std::string_view key, size_t max) {
  auto* v = find(body, key);
  if (!v || !v->is_string() || v->as_string().empty())
    throw BadRequest("Invalid value for '" + std::string(key) +
                     "': a non-empty string is required.");
  if (v->as_string().size() > max)
    throw BadRequest("Invalid value for '" + std::string(key) + "': is too long (maximum " +
                     std::to_string(max) + " characters).");
  return std::string(v->as_string());
}

std::optional<std::string> optional_string(const json::object& body, std::string_view key) {
  auto* v = find(body, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string())
    throw BadRequest("Invalid value for '" + std::string(key) + "': " + json::serialize(*v) +
                     " is not of type 'string'.");
  return std::string(v->as_string());
}

bool as_bool(const json::value* v) {
  if (!v || v->is_null()) return false;
  if (v->is_bool()) return v->as_bool();
  if (v->is_int64()) return v->as_int64() != 0;
  return false;
}

// The namespace if the caller may see it: public ones, their owner's, or any for an admin.
json::object visible_namespace(soci::session& s, const Caller& c, const std::string& ns) {
  auto row = db::get(s, st::metadef_namespace, ns);
  if (!row || !(c.admin() || str_of(*row, "visibility") == "public" ||
                (!c.project().empty() && str_of(*row, "owner") == c.project())))
    throw NotFound("Metadata definition namespace=" + ns + " was not found.");
  return *row;
}

// The namespace if the caller may change it (admins, or its owner).
json::object owned_namespace(soci::session& s, const Caller& c, const std::string& ns) {
  auto row = visible_namespace(s, c, ns);
  if (!c.admin() && str_of(row, "owner") != c.project())
    throw Forbidden("You are not permitted to modify namespace " + ns + ".");
  return row;
}

std::vector<json::object> children(soci::session& s, const db::Table& t, const std::string& ns) {
  db::Query q;
  q.eq("namespace", ns);
  q.order_by = "name";
  return db::select(s, t, q);
}

std::optional<json::object> child(soci::session& s, const db::Table& t, const std::string& ns,
                                  const std::string& name) {
  auto rows = db::select(s, t, db::Query{}.eq("namespace", ns).eq("name", name));
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

// ---------------------------------------------------------------- views

json::object association_view(const json::object& row) {
  json::object out{{"name", row.at("name")},
                   {"created_at", glance_time(row.at("created_at"))},
                   {"updated_at", glance_time(row.at("updated_at"))}};
  for (auto* k : {"prefix", "properties_target"})
    if (auto* v = find(row, k); v && !v->is_null()) out[k] = *v;
  return out;
}

// Objects and properties: their stored definition with name and times (and links for objects).
json::object definition_view(const json::object& row) {
  json::object out;
  if (auto* b = find(row, "body"); b && b->is_object()) out = b->as_object();
  out["name"] = row.at("name");
  return out;
}

json::object object_view(const json::object& row) {
  auto out = definition_view(row);
  std::string ns(row.at("namespace").as_string()), name(row.at("name").as_string());
  if (!out.contains("required")) out["required"] = json::array{};
  if (!out.contains("properties")) out["properties"] = json::object{};
  out["created_at"] = glance_time(row.at("created_at"));
  out["updated_at"] = glance_time(row.at("updated_at"));
  out["schema"] = "/v2/schemas/metadefs/object";
  out["self"] = kNamespaces + "/" + ns + "/objects/" + name;
  return out;
}

json::object tag_view(const json::object& row) {
  return json::object{{"name", row.at("name")},
                      {"created_at", glance_time(row.at("created_at"))},
                      {"updated_at", glance_time(row.at("updated_at"))}};
}

json::object properties_map(soci::session& s, const std::string& ns) {
  json::object out;
  for (auto& p : children(s, st::metadef_property, ns)) {
    auto def = definition_view(p);
    def.erase("name");
    out[std::string(p.at("name").as_string())] = std::move(def);
  }
  return out;
}

// A namespace as Glance shows it; `full` adds what it defines (show, not list).
json::object namespace_view(soci::session& s, const json::object& row, bool full) {
  std::string ns(row.at("namespace").as_string());
  json::object out{{"namespace", ns},
                   {"visibility", row.at("visibility")},
                   {"protected", as_bool(find(row, "protected"))},
                   {"owner", row.at("owner")},
                   {"created_at", glance_time(row.at("created_at"))},
                   {"updated_at", glance_time(row.at("updated_at"))},
                   {"schema", "/v2/schemas/metadefs/namespace"},
                   {"self", kNamespaces + "/" + ns}};
  for (auto* k : {"display_name", "description"})
    if (auto* v = find(row, k); v && !v->is_null()) out[k] = *v;
  json::array assoc;
  for (auto& a : children(s, st::metadef_association, ns)) assoc.push_back(association_view(a));
  if (!assoc.empty()) out["resource_type_associations"] = std::move(assoc);
  if (full) {
    auto props = properties_map(s, ns);
    if (!props.empty()) out["properties"] = std::move(props);
    json::array objects, tags;
    for (auto& o : children(s, st::metadef_object, ns)) {
      auto v = definition_view(o);
      objects.push_back(std::move(v));
    }
    for (auto& t : children(s, st::metadef_tag, ns))
      tags.push_back(json::object{{"name", t.at("name")}});
    if (!objects.empty()) out["objects"] = std::move(objects);
    if (!tags.empty()) out["tags"] = std::move(tags);
  }
  return out;
}

// ---------------------------------------------------------------- writes

// The stored definition of an object or property: the body without server-managed fields.
json::object definition_body(json::object body) {
  for (auto* k : {"name", "created_at", "updated_at", "schema", "self"}) body.erase(k);
  return body;
}

json::object insert_definition(soci::session& s, const db::Table& t, const std::string& ns,
                               const std::string& name, const json::object& body,
                               const std::string& ts, const char* what) {
  if (child(s, t, ns, name))
    throw Conflict(std::string("A metadata definition ") + what + " with name=" + name +
                   " already exists in namespace=" + ns + ".");
  json::object row{{"id", uuid4()},    {"namespace", ns},
                   {"name", name},     {"body", definition_body(body)},
                   {"created_at", ts}, {"updated_at", ts}};
  db::insert(s, t, row);
  return row;
}

void validate_property(const json::object& body) {
  required_name(body, "title", 255);
  auto* type = find(body, "type");
  static const std::vector<std::string> kTypes = {"array",  "boolean", "integer", "number",
                                                  "object", "string",  "null"};
  if (!type || !type->is_string() ||
      std::find(kTypes.begin(), kTypes.end(), type->as_string()) == kTypes.end())
    throw BadRequest(
        "Invalid value for 'type': must be one of array, boolean, integer, number, "
        "object, string, null.");
}

json::object insert_tag(soci::session& s, const std::string& ns, const std::string& name,
                        const std::string& ts) {
  if (name.empty() || name.size() > 255) throw BadRequest("Invalid tag name: " + name + ".");
  if (child(s, st::metadef_tag, ns, name))
    throw Conflict("A metadata tag with name=" + name + " already exists in namespace=" + ns + ".");
  json::object row{
      {"id", uuid4()}, {"namespace", ns}, {"name", name}, {"created_at", ts}, {"updated_at", ts}};
  db::insert(s, st::metadef_tag, row);
  return row;
}

json::object associate(soci::session& s, const std::string& ns, const json::object& body,
                       const std::string& ts) {
  auto name = required_name(body, "name", 80);
  // Glance registers a resource type the first time a namespace names it.
  if (!db::get(s, st::metadef_resource_type, name))
    db::insert(
        s, st::metadef_resource_type,
        json::object{{"name", name}, {"protected", false}, {"created_at", ts}, {"updated_at", ts}});
  if (child(s, st::metadef_association, ns, name))
    throw Conflict("The metadata definition resource-type association of resource-type=" + name +
                   " to namespace=" + ns + ", already exists.");
  json::object row{{"id", uuid4()},
                   {"namespace", ns},
                   {"name", name},
                   {"prefix", json::value(nullptr)},
                   {"properties_target", json::value(nullptr)},
                   {"created_at", ts},
                   {"updated_at", ts}};
  if (auto p = optional_string(body, "prefix")) row["prefix"] = *p;
  if (auto p = optional_string(body, "properties_target")) row["properties_target"] = *p;
  db::insert(s, st::metadef_association, row);
  return row;
}

void check_visibility(const json::value* v) {
  if (v && !(v->is_string() && (v->as_string() == "public" || v->as_string() == "private")))
    throw BadRequest("Invalid value for 'visibility': must be 'public' or 'private'.");
}

void check_protected(const json::value* v) {
  if (v && !v->is_bool()) throw BadRequest("Invalid value for 'protected': must be a boolean.");
}

json::object create_namespace(ImageService& svc, const Caller& c, const json::object& body) {
  auto ns = required_name(body, "namespace", 80);
  check_visibility(find(body, "visibility"));
  check_protected(find(body, "protected"));
  auto display = optional_string(body, "display_name");
  auto description = optional_string(body, "description");
  auto owner = optional_string(body, "owner");
  if (owner && *owner != c.project() && !c.admin())
    throw Forbidden("You are not permitted to create namespaces owned by '" + *owner + "'.");
  auto* assoc = find(body, "resource_type_associations");
  auto* objects = find(body, "objects");
  auto* props = find(body, "properties");
  auto* tags = find(body, "tags");
  if ((assoc && !assoc->is_array()) || (objects && !objects->is_array()) ||
      (props && !props->is_object()) || (tags && !tags->is_array()))
    throw BadRequest("Invalid namespace definitions.");
  json::object out;
  auto ts = svc.now();
  svc.database().write([&](soci::session& s) {
    if (db::get(s, st::metadef_namespace, ns))
      throw Conflict("Namespace " + ns + " already exists.");
    json::object row{
        {"namespace", ns},
        {"display_name", display ? json::value(*display) : json::value(nullptr)},
        {"description", description ? json::value(*description) : json::value(nullptr)},
        {"visibility",
         body.contains("visibility") ? body.at("visibility") : json::value("private")},
        {"protected", as_bool(find(body, "protected"))},
        {"owner", owner ? *owner : c.project()},
        {"created_at", ts},
        {"updated_at", ts}};
    db::insert(s, st::metadef_namespace, row);
    if (assoc)
      for (auto& a : assoc->as_array()) {
        if (!a.is_object()) throw BadRequest("Invalid resource type association.");
        associate(s, ns, a.as_object(), ts);
      }
    if (objects)
      for (auto& o : objects->as_array()) {
        if (!o.is_object()) throw BadRequest("Invalid object definition.");
        insert_definition(s, st::metadef_object, ns, required_name(o.as_object(), "name", 80),
                          o.as_object(), ts, "object");
      }
    if (props)
      for (auto& kv : props->as_object()) {
        if (!kv.value().is_object()) throw BadRequest("Invalid property definition.");
        validate_property(kv.value().as_object());
        insert_definition(s, st::metadef_property, ns, std::string(kv.key()),
                          kv.value().as_object(), ts, "property");
      }
    if (tags)
      for (auto& t : tags->as_array()) {
        if (!t.is_object()) throw BadRequest("Invalid tag definition.");
        insert_tag(s, ns, required_name(t.as_object(), "name", 255), ts);
      }
    out = namespace_view(s, row, true);
  });
  return out;
}

json::object update_namespace(ImageService& svc, const Caller& c, const std::string& ns,
                              const json::object& body) {
  auto new_name = required_name(body, "namespace", 80);
  check_visibility(find(body, "visibility"));
  check_protected(find(body, "protected"));
  json::object out;
  svc.database().write([&](soci::session& s) {
    auto row = owned_namespace(s, c, ns);
    json::object fields{{"updated_at", svc.now()}};
    for (auto* k : {"display_name", "description"})
      if (body.contains(k))
        fields[k] = optional_string(body, k) ? body.at(k) : json::value(nullptr);
    if (body.contains("visibility")) fields["visibility"] = body.at("visibility");
    if (body.contains("protected")) fields["protected"] = body.at("protected").as_bool();
    if (auto owner = optional_string(body, "owner"); owner && *owner != str_of(row, "owner")) {
      if (!c.admin()) throw Forbidden("You are not permitted to change the namespace owner.");
      fields["owner"] = *owner;
    }
    if (new_name != ns) {
      if (db::get(s, st::metadef_namespace, new_name))
        throw Conflict("Namespace " + new_name + " already exists.");
      fields["namespace"] = new_name;
      for (auto* t :
           {&st::metadef_association, &st::metadef_object, &st::metadef_property, &st::metadef_tag})
        db::execute(s, "UPDATE " + t->name + " SET namespace = :p0 WHERE namespace = :p1",
                    {new_name, ns});
    }
    db::update(s, st::metadef_namespace, ns, fields);
    out = namespace_view(s, *db::get(s, st::metadef_namespace, new_name), true);
  });
  return out;
}

void remove_children(soci::session& s, const std::string& ns) {
  for (auto* t :
       {&st::metadef_association, &st::metadef_object, &st::metadef_property, &st::metadef_tag})
    db::remove(s, *t, db::Query{}.eq("namespace", ns));
}

// Reads a child collection of a visible namespace.
template <typename Fn>
json::object read_in(ImageService& svc, const Caller& c, const std::string& ns, Fn fn) {
  json::object out;
  svc.database().read([&](soci::session& s) {
    visible_namespace(s, c, ns);
    out = fn(s);
  });
  return out;
}

// Changes a child collection of a namespace the caller may modify.
template <typename Fn>
json::object write_in(ImageService& svc, const Caller& c, const std::string& ns, Fn fn) {
  json::object out;
  svc.database().write([&](soci::session& s) {
    owned_namespace(s, c, ns);
    out = fn(s);
    db::update(s, st::metadef_namespace, ns, json::object{{"updated_at", svc.now()}});
  });
  return out;
}

http::Response created(const json::object& body) { return json_response(201, body); }

}  // namespace

void add_metadef_routes(std::vector<Route>& routes, ImageService& svc) {
  // ------------------------------------------------------------ resource types
  routes.push_back({"GET", "/v2/metadefs/resource_types",
                    [&svc](Context&) {
                      json::array types;
                      svc.database().read([&](soci::session& s) {
                        for (auto& r : db::select(s, st::metadef_resource_type))
                          types.push_back(
                              json::object{{"name", r.at("name")},
                                           {"created_at", glance_time(r.at("created_at"))},
                                           {"updated_at", glance_time(r.at("updated_at"))}});
                      });
                      return ok(json::object{{"resource_types", std::move(types)}});
                    },
                    "list_metadef_resource_types"});
  routes.push_back({"GET", kNamespaces + "/{ns}/resource_types",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return ok(read_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        json::array out;
                        for (auto& a : children(s, st::metadef_association, ctx.param("ns")))
                          out.push_back(association_view(a));
                        return json::object{{"resource_type_associations", std::move(out)}};
                      }));
                    },
                    "get_metadef_resource_type"});
  routes.push_back({"POST", kNamespaces + "/{ns}/resource_types",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto body = body_object(ctx);
                      auto ts = svc.now();
                      return created(write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        return association_view(associate(s, ctx.param("ns"), body, ts));
                      }));
                    },
                    "add_metadef_resource_type_association"});
  routes.push_back({"DELETE", kNamespaces + "/{ns}/resource_types/{name}",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto& ns = ctx.param("ns");
                      auto& name = ctx.param("name");
                      write_in(svc, c, ns, [&](soci::session& s) {
                        if (db::remove(s, st::metadef_association,
                                       db::Query{}.eq("namespace", ns).eq("name", name)) == 0)
                          throw NotFound("Failed to find resource type association " + name +
                                         " in namespace " + ns + ".");
                        return json::object{};
                      });
                      return no_content();
                    },
                    "remove_metadef_resource_type_association"});

  // ------------------------------------------------------------ namespaces
  routes.push_back({"GET", kNamespaces,
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto& q = ctx.request;
                      auto visibility = q.query_param("visibility");
                      auto resource_types = q.query_param("resource_types");
                      auto marker = q.query_param("marker");
                      long limit = svc.settings().limit_param_default;
                      if (auto l = q.query_param("limit")) {
                        try {
                          limit = std::stol(std::string(*l));
                        } catch (const std::exception&) {
                          throw BadRequest("limit param must be an integer");
                        }
                        if (limit < 0) throw BadRequest("limit param must be positive");
                      }
                      limit = std::min(limit, svc.settings().api_limit_max);
                      std::vector<std::string> wanted_types;
                      if (resource_types) {
                        std::string all(*resource_types);
                        size_t i = 0;
                        while (i <= all.size()) {
                          auto j = all.find(',', i);
                          if (j == std::string::npos) j = all.size();
                          if (j > i) wanted_types.push_back(all.substr(i, j - i));
                          i = j + 1;
                        }
                      }
                      json::array out;
                      std::optional<std::string> next;
                      svc.database().read([&](soci::session& s) {
                        db::Query query;
                        query.order_by = "namespace";
                        bool past_marker = !marker;
                        for (auto& row : db::select(s, st::metadef_namespace, query)) {
                          std::string ns(row.at("namespace").as_string());
                          if (!past_marker) {
                            past_marker = ns == *marker;
                            continue;
                          }
                          bool visible = c.admin() || str_of(row, "visibility") == "public" ||
                                         str_of(row, "owner") == c.project();
                          if (!visible) continue;
                          if (visibility && str_of(row, "visibility") != *visibility) continue;
                          if (!wanted_types.empty()) {
                            bool any = false;
                            for (auto& a : children(s, st::metadef_association, ns))
                              any = any || std::find(wanted_types.begin(), wanted_types.end(),
                                                     str_of(a, "name")) != wanted_types.end();
                            if (!any) continue;
                          }
                          if (static_cast<long>(out.size()) >= limit) {
                            next = std::string(out.back().as_object().at("namespace").as_string());
                            break;
                          }
                          out.push_back(namespace_view(s, row, false));
                        }
                        if (marker && !past_marker)
                          throw NotFound("Namespace " + *marker + " not found.");
                      });
                      json::object body{{"namespaces", std::move(out)},
                                        {"first", kNamespaces},
                                        {"schema", "/v2/schemas/metadefs/namespaces"}};
                      if (next) body["next"] = kNamespaces + "?marker=" + *next;
                      return ok(body);
                    },
                    "get_metadef_namespaces"});
  routes.push_back({"POST", kNamespaces,
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return created(create_namespace(svc, c, body_object(ctx)));
                    },
                    "add_metadef_namespace"});
  routes.push_back({"GET", kNamespaces + "/{ns}",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      json::object out;
                      svc.database().read([&](soci::session& s) {
                        out = namespace_view(s, visible_namespace(s, c, ctx.param("ns")), true);
                      });
                      return ok(out);
                    },
                    "get_metadef_namespace"});
  routes.push_back({"PUT", kNamespaces + "/{ns}",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return ok(update_namespace(svc, c, ctx.param("ns"), body_object(ctx)));
                    },
                    "modify_metadef_namespace"});
  routes.push_back({"DELETE", kNamespaces + "/{ns}",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto& ns = ctx.param("ns");
                      svc.database().write([&](soci::session& s) {
                        auto row = owned_namespace(s, c, ns);
                        if (as_bool(find(row, "protected")))
                          throw Forbidden("Namespace " + ns +
                                          " is protected and cannot be deleted.");
                        remove_children(s, ns);
                        db::remove_id(s, st::metadef_namespace, ns);
                      });
                      return no_content();
                    },
                    "delete_metadef_namespace"});

  // ------------------------------------------------------------ objects
  routes.push_back({"GET", kNamespaces + "/{ns}/objects",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return ok(read_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        json::array out;
                        for (auto& o : children(s, st::metadef_object, ctx.param("ns")))
                          out.push_back(object_view(o));
                        return json::object{{"objects", std::move(out)},
                                            {"schema", "v2/schemas/metadefs/objects"}};
                      }));
                    },
                    "get_metadef_objects"});
  routes.push_back({"POST", kNamespaces + "/{ns}/objects",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto body = body_object(ctx);
                      auto name = required_name(body, "name", 80);
                      auto ts = svc.now();
                      return created(write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        return object_view(insert_definition(s, st::metadef_object, ctx.param("ns"),
                                                             name, body, ts, "object"));
                      }));
                    },
                    "add_metadef_object"});
  routes.push_back({"DELETE", kNamespaces + "/{ns}/objects",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        db::remove(s, st::metadef_object,
                                   db::Query{}.eq("namespace", ctx.param("ns")));
                        return json::object{};
                      });
                      return no_content();
                    },
                    "delete_metadef_namespace"});

  // ------------------------------------------------------------ properties
  routes.push_back({"GET", kNamespaces + "/{ns}/properties",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return ok(read_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        return json::object{{"properties", properties_map(s, ctx.param("ns"))}};
                      }));
                    },
                    "get_metadef_properties"});
  routes.push_back({"POST", kNamespaces + "/{ns}/properties",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto body = body_object(ctx);
                      auto name = required_name(body, "name", 255);
                      validate_property(body);
                      auto ts = svc.now();
                      return created(write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        return definition_view(insert_definition(
                            s, st::metadef_property, ctx.param("ns"), name, body, ts, "property"));
                      }));
                    },
                    "add_metadef_property"});
  routes.push_back({"DELETE", kNamespaces + "/{ns}/properties",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        db::remove(s, st::metadef_property,
                                   db::Query{}.eq("namespace", ctx.param("ns")));
                        return json::object{};
                      });
                      return no_content();
                    },
                    "delete_metadef_namespace"});

  // ------------------------------------------------------------ tags
  routes.push_back({"GET", kNamespaces + "/{ns}/tags",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      return ok(read_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        json::array out;
                        for (auto& t : children(s, st::metadef_tag, ctx.param("ns")))
                          out.push_back(tag_view(t));
                        return json::object{{"tags", std::move(out)}};
                      }));
                    },
                    "get_metadef_tags"});
  // Replaces the namespace's tags, or adds to them with X-Openstack-Append: true.
  routes.push_back(
      {"POST", kNamespaces + "/{ns}/tags",
       [&svc](Context& ctx) {
         auto c = caller(ctx);
         auto body = body_object(ctx);
         auto* tags = find(body, "tags");
         if (!tags || !tags->is_array()) throw BadRequest("Invalid value for 'tags'.");
         std::vector<std::string> names;
         for (auto& t : tags->as_array()) {
           if (!t.is_object()) throw BadRequest("Invalid tag definition.");
           auto name = required_name(t.as_object(), "name", 255);
           if (std::find(names.begin(), names.end(), name) != names.end())
             throw Conflict("Duplicate tag " + name + " in the request.");
           names.push_back(name);
         }
         auto append = ctx.request.headers.get_or("X-Openstack-Append");
         bool add = append == "true" || append == "True" || append == "1";
         auto ts = svc.now();
         return created(write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
           if (!add) db::remove(s, st::metadef_tag, db::Query{}.eq("namespace", ctx.param("ns")));
           json::array out;
           for (auto& n : names)
             out.push_back(
                 json::object{{"name", insert_tag(s, ctx.param("ns"), n, ts).at("name")}});
           return json::object{{"tags", std::move(out)}};
         }));
       },
       "add_metadef_tags"});
  routes.push_back({"DELETE", kNamespaces + "/{ns}/tags",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        db::remove(s, st::metadef_tag,
                                   db::Query{}.eq("namespace", ctx.param("ns")));
                        return json::object{};
                      });
                      return no_content();
                    },
                    "delete_metadef_tags"});

  // ------------------------------------------------------------ single definitions
  // Objects, properties and tags by name: show, rename/replace, delete; tags are also created by
  // name (POST with no body).
  struct Kind {
    std::string path;
    const db::Table* table;
    const char* what;
    std::string get_rule, modify_rule, delete_rule;
  };
  for (const Kind& k :
       {Kind{"objects", &st::metadef_object, "object", "get_metadef_object",
             "modify_metadef_object", "delete_metadef_object"},
        Kind{"properties", &st::metadef_property, "property", "get_metadef_property",
             "modify_metadef_property", "remove_metadef_property"},
        Kind{"tags", &st::metadef_tag, "tag", "get_metadef_tag", "modify_metadef_tag",
             "delete_metadef_tag"}}) {
    auto path = kNamespaces + "/{ns}/" + k.path + "/{name}";
    auto view = [k](const json::object& row) {
      if (k.table == &st::metadef_object) return object_view(row);
      if (k.table == &st::metadef_tag) return tag_view(row);
      return definition_view(row);
    };
    auto missing = [k](const std::string& ns, const std::string& name) {
      return NotFound(std::string("Metadata definition ") + k.what +
                      " not found for namespace=" + ns + " and name=" + name + ".");
    };
    routes.push_back({"GET", path,
                      [&svc, k, view, missing](Context& ctx) {
                        auto c = caller(ctx);
                        auto& ns = ctx.param("ns");
                        auto& name = ctx.param("name");
                        return ok(read_in(svc, c, ns, [&](soci::session& s) {
                          auto row = child(s, *k.table, ns, name);
                          if (!row) throw missing(ns, name);
                          return view(*row);
                        }));
                      },
                      k.get_rule});
    routes.push_back({"PUT", path,
                      [&svc, k, view, missing](Context& ctx) {
                        auto c = caller(ctx);
                        auto& ns = ctx.param("ns");
                        auto& name = ctx.param("name");
                        auto body = body_object(ctx);
                        auto new_name =
                            required_name(body, "name", k.table == &st::metadef_object ? 80 : 255);
                        if (k.table == &st::metadef_property) validate_property(body);
                        auto ts = svc.now();
                        return ok(write_in(svc, c, ns, [&](soci::session& s) {
                          auto row = child(s, *k.table, ns, name);
                          if (!row) throw missing(ns, name);
                          if (new_name != name && child(s, *k.table, ns, new_name))
                            throw Conflict(std::string("A metadata definition ") + k.what +
                                           " with name=" + new_name +
                                           " already exists in namespace=" + ns + ".");
                          json::object fields{{"name", new_name}, {"updated_at", ts}};
                          if (k.table != &st::metadef_tag) fields["body"] = definition_body(body);
                          auto id = std::string(row->at("id").as_string());
                          db::update(s, *k.table, id, fields);
                          return view(*db::get(s, *k.table, id));
                        }));
                      },
                      k.modify_rule});
    routes.push_back(
        {"DELETE", path,
         [&svc, k, missing](Context& ctx) {
           auto c = caller(ctx);
           auto& ns = ctx.param("ns");
           auto& name = ctx.param("name");
           write_in(svc, c, ns, [&](soci::session& s) {
             if (db::remove(s, *k.table, db::Query{}.eq("namespace", ns).eq("name", name)) == 0)
               throw missing(ns, name);
             return json::object{};
           });
           return no_content();
         },
         k.delete_rule});
  }
  routes.push_back({"POST", kNamespaces + "/{ns}/tags/{name}",
                    [&svc](Context& ctx) {
                      auto c = caller(ctx);
                      auto ts = svc.now();
                      return created(write_in(svc, c, ctx.param("ns"), [&](soci::session& s) {
                        return tag_view(insert_tag(s, ctx.param("ns"), ctx.param("name"), ts));
                      }));
                    },
                    "add_metadef_tag"});
}

}  // namespace nubo::image::api
