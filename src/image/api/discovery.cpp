// What the image API says about itself: version discovery (GET / answers 300), the JSON schemas
// (/v2/schemas/...), and /v2/info/import and /v2/info/stores. All answered from memory.
#include "image/api/common.hpp"

namespace nubo::image::api {

namespace {

const char* kImageProperties = R"JSON({
  "id": {"type": "string", "description": "An identifier for the image",
         "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
  "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
  "status": {"type": "string", "readOnly": true, "description": "Status of the image",
             "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                      "pending_delete", "deactivated"]},
  "visibility": {"type": "string", "description": "Scope of image accessibility",
                 "enum": ["community", "public", "private", "shared"]},
  "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
  "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
  "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.",
               "maxLength": 32},
  "os_hash_algo": {"type": ["null", "string"], "readOnly": true,
                   "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
  "os_hash_value": {"type": ["null", "string"], "readOnly": true,
                    "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
                    "maxLength": 128},
  "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
  "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
  "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
  "container_format": {"type": ["null", "string"], "description": "Format of the container"},
  "disk_format": {"type": ["null", "string"], "description": "Format of the disk"},
  "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
  "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
  "tags": {"type": "array", "description": "List of strings related to the image",
           "items": {"type": "string", "maxLength": 255}},
  "direct_url": {"type": "string", "readOnly": true,
                 "description": "URL to access the image file kept in external store"},
  "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
  "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
  "self": {"type": "string", "readOnly": true, "description": "An image self url"},
  "file": {"type": "string", "readOnly": true, "description": "An image file url"},
  "stores": {"type": "string", "readOnly": true,
             "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."},
  "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
  "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                "items": {"type": "object", "required": ["url", "metadata"],
                          "properties": {"url": {"type": "string", "maxLength": 255},
                                         "metadata": {"type": "object"}}}}
})JSON";

const char* kMemberProperties = R"JSON({
  "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
  "image_id": {"type": "string", "description": "An identifier for the image",
               "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
  "created_at": {"type": "string", "description": "Date and time of image member creation"},
  "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
  "status": {"type": "string", "description": "The status of this image member",
             "enum": ["pending", "accepted", "rejected"]},
  "schema": {"readOnly": true, "type": "string"}
})JSON";

json::object parse_object(const char* text) { return json::parse(text).as_object(); }

json::object collection_schema(const std::string& name, const json::object& item) {
  return json::object{
      {"name", name},
      {"properties", json::object{{name, json::object{{"type", "array"}, {"items", item}}},
                                  {"first", json::object{{"type", "string"}}},
                                  {"next", json::object{{"type", "string"}}},
                                  {"schema", json::object{{"type", "string"}}}}},
      {"links", json::array{json::object{{"rel", "first"}, {"href", "{first}"}},
                            json::object{{"rel", "next"}, {"href", "{next}"}},
                            json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}};
}

json::object image_schema(const ImageSettings& settings) {
  auto props = parse_object(kImageProperties);
  for (auto [key, formats] : {std::pair{"container_format", &settings.container_formats},
                              std::pair{"disk_format", &settings.disk_formats}}) {
    json::array e{nullptr};
    for (auto& f : *formats) e.emplace_back(f);
    props[key].as_object()["enum"] = std::move(e);
  }
  return json::object{
      {"name", "image"},
      {"properties", std::move(props)},
      {"additionalProperties", json::object{{"type", "string"}}},
      {"links", json::array{json::object{{"rel", "self"}, {"href", "{self}"}},
                            json::object{{"rel", "enclosure"}, {"href", "{file}"}},
                            json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}};
}

// Metadata definition schemas: served for clients and Tempest, which read their names; the
// metadefs API itself is not implemented yet.
json::object metadef_schema(const std::string& name, json::object properties) {
  return json::object{
      {"name", name}, {"properties", std::move(properties)}, {"additionalProperties", false}};
}

json::object string_props(std::initializer_list<const char*> names) {
  json::object o;
  for (auto* n : names) o[n] = json::object{{"type", "string"}};
  return o;
}

json::object versions_body(const ImageSettings& settings) {
  // Glance without an image cache or several stores: 2.0-2.7, 2.9, 2.15 and 2.17 (CURRENT).
  auto href = settings.public_url + "/v2/";
  json::array versions;
  auto add = [&](const char* id, const char* status) {
    versions.push_back(
        json::object{{"id", std::string("v") + id},
                     {"status", status},
                     {"links", json::array{json::object{{"rel", "self"}, {"href", href}}}}});
  };
  add("2.15", "SUPPORTED");
  add("2.9", "SUPPORTED");
  add("2.17", "CURRENT");
  for (const char* v : {"2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"})
    add(v, "SUPPORTED");
  return json::object{{"versions", std::move(versions)}};
}

// A route answered from memory: on the I/O thread when the token is cached, else on the pool.
void add_static(std::vector<Route>& routes, const std::string& path, int status, json::object body,
                bool authenticated = true) {
  auto text = std::make_shared<const std::string>(json::serialize(body));
  auto respond = [text, status](Context&) {
    http::Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = *text;
    return r;
  };
  Route r;
  r.method = "GET";
  r.path = path;
  r.handler = respond;
  r.fast = [respond](Context& ctx) -> std::optional<http::Response> { return respond(ctx); };
  r.authenticated = authenticated;
  routes.push_back(std::move(r));
}

}  // namespace

void add_discovery_routes(std::vector<Route>& routes, ImageService& s) {
  const auto& settings = s.settings();
  add_static(routes, "/", 300, versions_body(settings), false);
  add_static(routes, "/versions", 200, versions_body(settings), false);

  auto image = image_schema(settings);
  add_static(routes, "/v2/schemas/image", 200, image);
  add_static(routes, "/v2/schemas/images", 200, collection_schema("images", image));
  json::object member{{"name", "member"}, {"properties", parse_object(kMemberProperties)}};
  add_static(routes, "/v2/schemas/member", 200, member);
  add_static(
      routes, "/v2/schemas/members", 200,
      json::object{
          {"name", "members"},
          {"properties",
           json::object{{"members", json::object{{"type", "array"}, {"items", member}}},
                        {"schema", json::object{{"type", "string"}}}}},
          {"links", json::array{json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}});

  auto ns = metadef_schema(
      "namespace", string_props({"namespace", "display_name", "description", "visibility", "owner",
                                 "created_at", "updated_at", "schema", "self"}));
  add_static(routes, "/v2/schemas/metadefs/namespace", 200, ns);
  add_static(routes, "/v2/schemas/metadefs/namespaces", 200, collection_schema("namespaces", ns));
  auto rt = metadef_schema(
      "resource_type_association",
      string_props({"name", "prefix", "properties_target", "created_at", "updated_at"}));
  add_static(routes, "/v2/schemas/metadefs/resource_type", 200, rt);
  add_static(routes, "/v2/schemas/metadefs/resource_types", 200,
             collection_schema("resource_type_associations", rt));
  auto object = metadef_schema("object", string_props({"name", "description", "created_at",
                                                       "updated_at", "schema", "self"}));
  add_static(routes, "/v2/schemas/metadefs/object", 200, object);
  add_static(routes, "/v2/schemas/metadefs/objects", 200, collection_schema("objects", object));
  auto property =
      metadef_schema("property", string_props({"name", "title", "description", "type"}));
  add_static(routes, "/v2/schemas/metadefs/property", 200, property);
  add_static(
      routes, "/v2/schemas/metadefs/properties", 200,
      json::object{
          {"name", "properties"},
          {"properties",
           json::object{{"properties",
                         json::object{{"type", "object"}, {"additionalProperties", property}}}}},
          {"links", json::array{json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}});
  auto tag = metadef_schema("tag", string_props({"name", "created_at", "updated_at"}));
  add_static(routes, "/v2/schemas/metadefs/tag", 200, tag);
  add_static(routes, "/v2/schemas/metadefs/tags", 200, collection_schema("tags", tag));

  json::array methods;
  for (auto& m : settings.import_methods) methods.emplace_back(m);
  add_static(
      routes, "/v2/info/import", 200,
      json::object{{"import-methods", json::object{{"description", "Import methods available."},
                                                   {"type", "array"},
                                                   {"value", std::move(methods)}}}});
  add_static(
      routes, "/v2/info/stores", 200,
      json::object{{"stores", json::array{json::object{{"id", settings.store_id},
                                                       {"description", settings.store_description},
                                                       {"default", "true"}}}}});
}

}  // namespace nubo::image::api
