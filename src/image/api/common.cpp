#include "image/api/common.hpp"

namespace nubo::image::api {

namespace {}  // namespace

http::Response render_glance_error(const ApiError& e) {
  std::string status = std::to_string(e.status()) + " " + status_reason(e.status());
  http::Response r;
  r.status = e.status();
  r.headers.set("Content-Type", "text/html; charset=UTF-8");
  r.body = "<html>\n <head>\n  <title>" + status + "</title>\n </head>\n <body>\n  <h1>" + status +
           "</h1>\n  " + http::escape_markup(e.what(), true, true) +
           "<br /><br />\n\n\n\n </body>\n</html>";
  if (e.status() == 401) r.headers.set("WWW-Authenticate", "Keystone uri=\"\"");
  return r;
}

Caller caller(Context& ctx) {
  static const AuthContext anonymous;
  return Caller{ctx.auth ? *ctx.auth : anonymous,
                [&ctx](const std::string& rule, const PolicyTarget& target) {
                  return ctx.allowed(rule, target);
                }};
}

json::value body_json(const Context& ctx) {
  if (ctx.request.body.empty()) throw BadRequest("Body expected in request.");
  boost::system::error_code ec;
  auto v = json::parse(ctx.request.body, ec);
  if (ec) throw BadRequest("Malformed JSON in request body.");
  return v;
}

json::object body_object(const Context& ctx) {
  auto v = body_json(ctx);
  if (!v.is_object()) throw BadRequest("The request body must be a JSON object.");
  return std::move(v.as_object());
}

std::string glance_time(const json::value& stored) {
  if (!stored.is_string()) return {};
  std::string s(stored.as_string());
  return s.size() >= 19 ? s.substr(0, 19) + "Z" : s;
}

json::object image_view(const ImageService& s, const json::object& row) {
  static const char* kAttributes[] = {"name",      "disk_format",  "container_format", "visibility",
                                      "size",      "virtual_size", "status",           "checksum",
                                      "protected", "min_ram",      "min_disk",         "owner",
                                      "os_hidden", "os_hash_algo", "os_hash_value"};
  json::object out;
  // Custom properties first (the base attributes below win over any clash).
  for (auto& kv : row) {
    std::string_view k = kv.key();
    if (k == "location" || k == "tags" || k == "id" || k == "created_at" || k == "updated_at" ||
        k == "os_glance_stage_host" || k == "os_glance_hash_op_host")
      continue;
    out[k] = kv.value();
  }
  for (auto* k : kAttributes) {
    auto* v = find(row, k);
    out[k] = v ? *v : json::value(nullptr);
  }
  auto id = std::string(row.at("id").as_string());
  out["id"] = id;
  out["created_at"] = glance_time(row.at("created_at"));
  out["updated_at"] = glance_time(row.at("updated_at"));
  auto* tags = find(row, "tags");
  out["tags"] = tags && tags->is_array() ? *tags : json::value(json::array{});
  out["self"] = "/v2/images/" + id;
  out["file"] = "/v2/images/" + id + "/file";
  out["schema"] = "/v2/schemas/image";
  auto* location = find(row, "location");
  bool has_data = location && location->is_string();
  // /v2/info/stores lists the store, so clients wait for `stores` to name it.
  if (has_data) out["stores"] = s.settings().store_id;
  if (has_data && s.settings().show_image_direct_url) out["direct_url"] = *location;
  return out;
}

json::object member_view(const json::object& row) {
  return json::object{{"created_at", glance_time(row.at("created_at"))},
                      {"image_id", row.at("image_id")},
                      {"member_id", row.at("member_id")},
                      {"schema", "/v2/schemas/member"},
                      {"status", row.at("status")},
                      {"updated_at", glance_time(row.at("updated_at"))}};
}

}  // namespace nubo::image::api
