// /v2/images: create, list (filters, sorting, pages), show, JSON Patch update, delete, tags and
// the deactivate/reactivate actions.
#include <algorithm>
#include <regex>

#include "image/api/common.hpp"

namespace nubo::image::api {

namespace {

const char* kPatchV20 = "application/openstack-images-v2.0-json-patch";
const char* kPatchV21 = "application/openstack-images-v2.1-json-patch";

std::string media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string t(content_type.substr(0, semi));
  auto b = t.find_first_not_of(" \t"), e = t.find_last_not_of(" \t");
  t = b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
  for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return t;
}

// Glance's limited JSON pointers: "/a", with ~0 and ~1 escapes.
std::vector<std::string> decode_pointer(const std::string& pointer) {
  if (pointer.empty() || pointer[0] != '/')
    throw BadRequest("Pointer `" + pointer + "` does not start with \"/\".");
  static const std::regex adjacent(R"(/\s*?/)");
  if (std::regex_search(pointer.begin() + 1, pointer.end(), adjacent))
    throw BadRequest("Pointer `" + pointer + "` contains adjacent \"/\".");
  if (pointer.size() > 1 && pointer.back() == '/')
    throw BadRequest("Pointer `" + pointer + "` end with \"/\".");
  static const std::regex bad_escape("~[^01]");
  if (std::regex_search(pointer, bad_escape) || pointer.back() == '~')
    throw BadRequest("Pointer `" + pointer +
                     "` contains \"~\" not part of a recognized escape sequence.");
  std::vector<std::string> out;
  size_t start = 1;
  for (;;) {
    auto slash = pointer.find('/', start);
    std::string part =
        pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string decoded;
    for (size_t i = 0; i < part.size(); ++i) {
      if (part[i] == '~' && i + 1 < part.size()) {
        decoded += part[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        decoded += part[i];
      }
    }
    auto b = decoded.find_first_not_of(" \t\r\n"), e = decoded.find_last_not_of(" \t\r\n");
    out.push_back(b == std::string::npos ? std::string() : decoded.substr(b, e - b + 1));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

std::vector<PatchOp> parse_patch(const Context& ctx) {
  auto type = media_type(ctx.request.headers.get_or("Content-Type"));
  int draft = type == kPatchV20 ? 4 : type == kPatchV21 ? 10 : 0;
  if (!draft) {
    auto e = UnsupportedMediaType(std::string("Image PATCH expects Content-Type one of: ") +
                                  kPatchV20 + ", " + kPatchV21);
    e.headers.emplace_back("Accept-Patch", std::string(kPatchV20) + ", " + kPatchV21);
    throw e;
  }
  auto body = body_json(ctx);
  if (!body.is_array()) throw BadRequest("Request body must be a JSON array of operation objects.");
  std::vector<PatchOp> ops;
  for (auto& raw : body.as_array()) {
    if (!raw.is_object()) throw BadRequest("Operations must be JSON objects.");
    auto& o = raw.as_object();
    PatchOp op;
    op.draft = draft;
    const json::value* path = nullptr;
    if (draft == 10) {
      auto* name = find(o, "op");
      if (!name)
        throw BadRequest(
            "Unable to find `op` in JSON Schema change. It must be one of the following: add, "
            "remove, "
            "replace.");
      op.op = name->is_string() ? std::string(name->as_string()) : json::serialize(*name);
      if (op.op != "add" && op.op != "remove" && op.op != "replace")
        throw BadRequest("Invalid operation: `" + op.op +
                         "`. It must be one of the following: add, remove, replace.");
      path = find(o, "path");
      if (!path) throw BadRequest("Unable to find 'path' in JSON Schema change");
    } else {
      for (const char* name : {"add", "remove", "replace"}) {
        if (!o.contains(name)) continue;
        if (!op.op.empty())
          throw BadRequest(
              "Operation objects must contain only one member named \"add\", \"remove\", or "
              "\"replace\".");
        op.op = name;
        path = &o.at(name);
      }
      if (op.op.empty())
        throw BadRequest(
            "Operation objects must contain exactly one member named \"add\", \"remove\", or "
            "\"replace\".");
    }
    if (!path->is_string()) throw BadRequest("The path of a change must be a string.");
    op.path = decode_pointer(std::string(path->as_string()));
    if (op.op != "remove") {
      auto* value = find(o, "value");
      if (!value)
        throw BadRequest("Operation \"" + op.op + "\" requires a member named \"value\".");
      op.value = *value;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

const std::vector<std::string> kSortKeys = {"name", "status", "container_format", "disk_format",
                                            "size", "id",     "created_at",       "updated_at"};

std::string validate_sort_key(const std::string& key) {
  if (std::find(kSortKeys.begin(), kSortKeys.end(), key) == kSortKeys.end())
    throw BadRequest(
        "Invalid sort key: " + key +
        ". It must be one of the following: name, status, container_format, disk_format, size, id, "
        "created_at, updated_at.");
  return key;
}

bool validate_sort_dir(const std::string& dir) {
  if (dir != "asc" && dir != "desc") throw BadRequest("Invalid sort direction: " + dir);
  return dir == "desc";
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

ListRequest parse_list(const Context& ctx) {
  ListRequest r;
  std::vector<std::string> sort_keys, sort_dirs;
  std::optional<std::string> sort;
  for (auto& [key, value] : ctx.request.query) {
    if (key == "limit") {
      long n = 0;
      try {
        size_t used = 0;
        n = std::stol(value, &used);
        if (used != value.size()) throw std::invalid_argument(value);
      } catch (const std::exception&) {
        throw BadRequest("limit param must be an integer");
      }
      if (n < 0) throw BadRequest("limit param must be positive");
      r.limit = n;
    } else if (key == "marker") {
      r.marker = value;
    } else if (key == "member_status") {
      if (value != "pending" && value != "accepted" && value != "rejected" && value != "all")
        throw BadRequest("Invalid status: " + value);
      r.member_status = value;
    } else if (key == "tag") {
      r.tags.push_back(trim(value));
    } else if (key == "sort") {
      sort = value;
    } else if (key == "sort_key") {
      sort_keys.push_back(validate_sort_key(trim(value)));
    } else if (key == "sort_dir") {
      sort_dirs.push_back(trim(value));
    } else if (key == "changes-since") {
      throw BadRequest("The \"changes-since\" filter is no longer available on v2.");
    } else {
      if (key == "visibility" && value != "community" && value != "public" && value != "private" &&
          value != "shared" && value != "all")
        throw BadRequest("Invalid visibility value: " + value);
      r.filters.emplace_back(key, value);
    }
  }
  if (sort) {
    if (!sort_keys.empty() || !sort_dirs.empty())
      throw BadRequest("Old and new sorting syntax cannot be combined");
    auto text = trim(*sort);
    size_t start = 0;
    size_t dirs = 0;
    for (;;) {
      auto comma = text.find(',', start);
      auto item =
          text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      auto colon = item.find(':');
      auto key = trim(item.substr(0, colon));
      auto dir = colon == std::string::npos ? std::string("desc") : trim(item.substr(colon + 1));
      if (dir.empty()) dir = "desc";
      r.sort.emplace_back(validate_sort_key(key), validate_sort_dir(dir));
      ++dirs;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    r.default_descending = dirs == 1 ? r.sort.front().second : true;
  } else {
    std::vector<bool> desc;
    for (auto& d : sort_dirs) desc.push_back(validate_sort_dir(d));
    if (desc.size() > 1 && desc.size() != sort_keys.size())
      throw BadRequest("Number of sort dirs does not match the number of sort keys");
    for (size_t i = 0; i < sort_keys.size(); ++i)
      r.sort.emplace_back(sort_keys[i], desc.empty() ? true : desc.size() == 1 ? desc[0] : desc[i]);
    r.default_descending = desc.size() == 1 ? desc[0] : true;
    if (r.sort.empty() && desc.size() == 1) r.sort.emplace_back("created_at", desc[0]);
  }
  return r;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (auto& [k, v] : params)
    q += (q.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
  return q;
}

}  // namespace

void add_image_routes(std::vector<Route>& routes, ImageService& s) {
  routes.push_back({"POST", "/v2/images", [&s](Context& ctx) {
                      auto image = s.create(caller(ctx), body_object(ctx));
                      auto r = json_response(201, image_view(s, image));
                      r.headers.set("Location", s.settings().public_url + "/v2/images/" +
                                                    std::string(image.at("id").as_string()));
                      std::string methods;
                      for (auto& m : s.settings().import_methods)
                        methods += (methods.empty() ? "" : ",") + m;
                      if (!methods.empty())
                        r.headers.set("OpenStack-image-import-methods", methods);
                      r.headers.set("OpenStack-image-store-ids", s.settings().store_id);
                      return r;
                    }});
  routes.push_back({"GET", "/v2/images", [&s](Context& ctx) {
                      // The router ignores a trailing slash; /v2/images/ names an image with an
                      // empty id.
                      if (ctx.request.path.ends_with('/'))
                        throw NotFound("No image found with ID ");
                      auto result = s.list(caller(ctx), parse_list(ctx));
                      json::array images;
                      for (auto& i : result.images) images.push_back(image_view(s, i));
                      std::vector<std::pair<std::string, std::string>> params;
                      for (auto& [k, v] : ctx.request.query)
                        if (k != "marker") params.emplace_back(k, v);
                      auto q = query_string(params);
                      json::object body{
                          {"images", std::move(images)},
                          {"first", q.empty() ? std::string("/v2/images") : "/v2/images?" + q},
                          {"schema", "/v2/schemas/images"}};
                      if (result.next_marker) {
                        params.emplace_back("marker", *result.next_marker);
                        body["next"] = "/v2/images?" + query_string(params);
                      }
                      return ok(body);
                    }});
  // DELETE /v2/images/ (no id) is a missing image, not a method the collection lacks.
  routes.push_back({"DELETE", "/v2/images",
                    [](Context&) -> http::Response { throw NotFound("No image found with ID "); }});
  routes.push_back({"GET", "/v2/images/{image_id}", [&s](Context& ctx) {
                      return ok(image_view(s, s.show(caller(ctx), ctx.param("image_id"))));
                    }});
  routes.push_back({"PATCH", "/v2/images/{image_id}", [&s](Context& ctx) {
                      auto ops = parse_patch(ctx);
                      return ok(image_view(s, s.update(caller(ctx), ctx.param("image_id"), ops)));
                    }});
  routes.push_back({"DELETE", "/v2/images/{image_id}", [&s](Context& ctx) {
                      s.remove(caller(ctx), ctx.param("image_id"));
                      return no_content();
                    }});
  routes.push_back({"POST", "/v2/images/{image_id}/actions/deactivate", [&s](Context& ctx) {
                      s.deactivate(caller(ctx), ctx.param("image_id"));
                      return no_content();
                    }});
  routes.push_back({"POST", "/v2/images/{image_id}/actions/reactivate", [&s](Context& ctx) {
                      s.reactivate(caller(ctx), ctx.param("image_id"));
                      return no_content();
                    }});
  routes.push_back({"PUT", "/v2/images/{image_id}/tags/{tag}", [&s](Context& ctx) {
                      s.add_tag(caller(ctx), ctx.param("image_id"), ctx.param("tag"));
                      return no_content();
                    }});
  routes.push_back({"DELETE", "/v2/images/{image_id}/tags/{tag}", [&s](Context& ctx) {
                      s.remove_tag(caller(ctx), ctx.param("image_id"), ctx.param("tag"));
                      return no_content();
                    }});
}

}  // namespace nubo::image::api
