#include "common/auth.hpp"

#include "common/error.hpp"
#include "common/http/client.hpp"
#include "common/ids.hpp"

namespace nubo {

namespace {
std::string str(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
const json::object& obj(const json::object& o, std::string_view key) {
  static const json::object empty;
  auto* v = find(o, key);
  return v && v->is_object() ? v->as_object() : empty;
}
}  // namespace

AuthContext auth_context_from_token(const json::object& body, std::string_view token) {
  auto& t = obj(body, "token");
  AuthContext c;
  c.token = std::string(token);
  if (auto* m = find(t, "methods"); m && m->is_array())
    for (auto& x : m->as_array())
      if (x.is_string()) c.methods.emplace_back(x.as_string());
  auto& user = obj(t, "user");
  c.user_id = str(user, "id");
  c.user_name = str(user, "name");
  c.user_domain_id = str(obj(user, "domain"), "id");
  c.user_domain_name = str(obj(user, "domain"), "name");
  if (t.contains("project")) {
    auto& pr = obj(t, "project");
    c.project_id = str(pr, "id");
    c.project_name = str(pr, "name");
    c.project_domain_id = str(obj(pr, "domain"), "id");
    c.project_domain_name = str(obj(pr, "domain"), "name");
  }
  if (t.contains("domain")) {
    c.domain_id = str(obj(t, "domain"), "id");
    c.domain_name = str(obj(t, "domain"), "name");
  }
  c.system_scope = t.contains("system");
  if (auto* roles = find(t, "roles"); roles && roles->is_array())
    for (auto& r : roles->as_array()) {
      if (!r.is_object()) continue;
      c.roles.push_back(str(r.as_object(), "name"));
      c.role_ids.push_back(str(r.as_object(), "id"));
    }
  c.is_admin_project = true;
  c.application_credential_id = str(obj(t, "application_credential"), "id");
  c.trust_id = str(obj(t, "OS-TRUST:trust"), "id");
  c.expires_at = str(t, "expires_at");
  c.issued_at = str(t, "issued_at");
  if (auto* a = find(t, "audit_ids"); a && a->is_array())
    for (auto& x : a->as_array())
      if (x.is_string()) c.audit_ids.emplace_back(x.as_string());
  return c;
}

}  // namespace nubo
