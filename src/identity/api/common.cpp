#include "identity/api/common.hpp"

#include <soci/soci.h>

namespace nubo::identity::api {

std::optional<bool> query_bool(const Context& ctx, const std::string& name) {
  auto v = ctx.request.query_param(name);
  if (!v) return std::nullopt;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.empty() || s == "true" || s == "1" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return false;
  return true;
}

json::object entity(const Context& ctx, const char* key) {
  auto body = ctx.body();
  auto* v = find(body, key);
  if (!v || !v->is_object())
    throw BadRequest("Invalid input for field '" + std::string(key) + "': '" + key + "' is a required property.");
  return v->as_object();
}

std::string required_string(const json::object& o, const char* field, size_t max_length) {
  auto* v = find(o, field);
  if (!v) throw BadRequest("Invalid input for field '" + std::string(field) + "': '" + field + "' is a required property.");
  if (!v->is_string()) throw BadRequest("Invalid input for field '" + std::string(field) + "': not a string.");
  std::string s(v->as_string());
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    throw BadRequest("Invalid input for field '" + std::string(field) + "': must not be empty.");
  if (s.size() > max_length)
    throw BadRequest("Invalid input for field '" + std::string(field) + "': longer than " +
                     std::to_string(max_length) + " characters.");
  return s;
}

std::optional<std::string> optional_string(const json::object& o, const char* field, size_t max_length) {
  auto* v = find(o, field);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw BadRequest("Invalid input for field '" + std::string(field) + "': not a string.");
  if (v->as_string().size() > max_length)
    throw BadRequest("Invalid input for field '" + std::string(field) + "': too long.");
  return std::string(v->as_string());
}

std::optional<bool> optional_bool(const json::object& o, const char* field) {
  auto* v = find(o, field);
  if (!v) return std::nullopt;
  if (!v->is_bool()) throw BadRequest("Invalid input for field '" + std::string(field) + "': not a boolean.");
  return v->as_bool();
}

void reject_readonly(const json::object& o, std::initializer_list<const char*> fields, const std::string& allowed_id) {
  for (auto* f : fields) {
    auto* v = find(o, f);
    if (!v) continue;
    if (std::string(f) == "id" && v->is_string() && !allowed_id.empty() && v->as_string() == allowed_id) continue;
    throw BadRequest("Invalid input for field '" + std::string(f) + "': the field is read-only.");
  }
}

json::object collection(const IdentityService& s, const char* key, json::array items, const std::string& path) {
  return json::object{{key, std::move(items)},
                      {"links", json::object{{"self", s.link(path)}, {"previous", nullptr}, {"next", nullptr}}}};
}

json::object load_domain(IdentityService& s, const std::string& id) {
  auto row = s.find(st::project, id);
  if (!row || !(*row)["is_domain"].as_bool()) throw NotFound("Could not find domain: " + id + ".");
  return std::move(*row);
}

json::object load_project(IdentityService& s, const std::string& id) {
  auto row = s.find(st::project, id);
  if (!row) throw NotFound("Could not find project: " + id + ".");
  return std::move(*row);
}

json::object load_user(IdentityService& s, const std::string& id) { return s.get(st::user, id, "user"); }
json::object load_group(IdentityService& s, const std::string& id) { return s.get(st::group, id, "group"); }
json::object load_role(IdentityService& s, const std::string& id) { return s.get(st::role, id, "role"); }

std::vector<std::string> project_tags(IdentityService& s, const std::string& project_id) {
  std::vector<std::string> out;
  db::Query q;
  q.eq("project_id", project_id);
  q.order_by = "name";
  for (auto& r : s.list(st::project_tag, q)) out.emplace_back(r["name"].as_string());
  return out;
}

}  // namespace nubo::identity::api
