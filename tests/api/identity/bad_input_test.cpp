// Hostile request bodies and query strings against every identity route that takes a body: whatever
// the client sends, the answer is Keystone's error body with a 4xx status, never a 500.
// The service runs in-process on port 0 with a temporary state directory, as in identity_api_test.
#include "common/config.hpp"
#include "tests/api/support/identity_cloud.hpp"
#include "common/http/client.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/runtime.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace nubo;
namespace fs = std::filesystem;

namespace {

using apitest::Reply;

// Lockout stays off here: the hostile requests include bad passwords for the admin.
struct Cloud : apitest::IdentityCloud {
  Cloud() : IdentityCloud("[identity]\npassword_hash_rounds = 4\n") {}
};
using apitest::kPassword;

// ------------------------------------------------------------------------------- checking replies

std::string excerpt(const std::string& s, size_t n = 300) {
  std::string out = s.size() > n ? s.substr(0, n) + "...(" + std::to_string(s.size()) + " bytes)" : s;
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

// Any error must be Keystone's {"error": {"code", "title", "message"}} as JSON, code == status.
void expect_error_shape(const Reply& r, const std::string& what) {
  EXPECT_EQ(r.headers.get_or("Content-Type"), "application/json") << what << " -> " << r.status;
  auto* e = find(r.body, "error");
  ASSERT_TRUE(e && e->is_object()) << what << " -> " << r.status << " " << excerpt(r.raw);
  auto* code = find(e->as_object(), "code");
  ASSERT_TRUE(code && code->is_int64()) << what << " -> " << excerpt(r.raw);
  EXPECT_EQ(code->as_int64(), r.status) << what;
  auto* title = find(e->as_object(), "title");
  auto* message = find(e->as_object(), "message");
  EXPECT_TRUE(title && title->is_string()) << what << " -> " << excerpt(r.raw);
  EXPECT_TRUE(message && message->is_string()) << what << " -> " << excerpt(r.raw);
}

// strict: the request is wrong and must be refused with a 4xx. Otherwise (a value some routes accept,
// e.g. null for an optional field) anything but a 5xx will do.
int checked_replies = 0;

void check_reply(const Reply& r, bool strict, const std::string& what) {
  ++checked_replies;
  EXPECT_LT(r.status, 500) << what << " -> " << excerpt(r.raw);
  if (strict) {
    EXPECT_TRUE(r.status >= 400 && r.status < 500) << what << " -> " << r.status << " " << excerpt(r.raw);
  }
  if (r.status >= 400) expect_error_shape(r, what);
}

// ------------------------------------------------------------------------------- hostile values

const std::string kLong(100000, 'x');
// Placeholders replaced in the serialized body by text JSON values cannot hold.
const std::string kDeep = "@@DEEP@@";        // arrays nested past the parser's depth limit
const std::string kBadUtf8 = "@@BADUTF8@@";  // a string with invalid UTF-8
const std::string kSurrogate = "@@SURROGATE@@";  // a string with an unpaired UTF-16 surrogate escape

json::value nested_arrays(int depth) {
  json::value v = json::array{};
  for (int i = 0; i < depth; ++i) v = json::array{v};
  return v;
}

std::string finish(std::string body) {
  auto replace = [&](const std::string& placeholder, const std::string& text) {
    std::string quoted = "\"" + placeholder + "\"";
    for (auto pos = body.find(quoted); pos != std::string::npos; pos = body.find(quoted))
      body.replace(pos, quoted.size(), text);
  };
  replace(kDeep, std::string(300, '[') + std::string(300, ']'));
  replace(kBadUtf8, "\"\xff\xfe\xc3\"");
  replace(kSurrogate, "\"a\\ud800b\"");
  return body;
}

enum class Kind {
  Str,     // a bounded string (names, ids...): a 100k string is refused too
  Text,    // an unbounded string (descriptions, blobs): a 100k string may be accepted
  Bool,
  Obj,
  Arr,     // a list of scalars
  ObjArr,  // a list of objects
  Int,
};

struct Field {
  std::string path;  // dotted, inside the entity; digits index arrays ("roles.0.name")
  Kind kind;
};

struct Variant {
  std::string label;
  std::optional<json::value> value;  // nullopt: the field is removed
  bool strict;
};

std::vector<Variant> wrong_values(Kind k) {
  const json::value huge_uint = std::numeric_limits<std::uint64_t>::max();
  std::vector<Variant> v;
  auto add = [&](std::string label, json::value value, bool strict = true) {
    v.push_back({std::move(label), std::move(value), strict});
  };
  switch (k) {
    case Kind::Str:
    case Kind::Text:
      add("number", 12345);
      add("negative float", -1.5);
      add("huge integer", huge_uint);
      add("boolean", true);
      add("object", json::object{{"a", "b"}});
      add("array", json::array{"x"});
      add("long string", json::string(kLong), k == Kind::Str);
      add("empty string", "", false);
      add("NUL character", json::string(std::string("a\0b", 3)), false);
      // Just past common column widths: a limit or success, never a database error.
      for (size_t n : {65, 129, 226, 256})
        add(std::to_string(n) + " characters", json::string(std::string(n, 'w')), false);
      add("lone surrogate", json::string(kSurrogate), false);
      add("control characters", "\x01\x02\n\t", false);
      break;
    case Kind::Bool:
      add("string 'true'", "true");
      add("string 'maybe'", "maybe");
      add("number 1", 1);
      add("number 0", 0);
      add("object", json::object{});
      add("array", json::array{true});
      add("long string", json::string(kLong));
      break;
    case Kind::Obj:
      add("string", "str");
      add("number", 5);
      add("boolean", true);
      add("empty array", json::array{});
      add("array of object", json::array{json::object{}});
      add("long string", json::string(kLong));
      break;
    case Kind::Arr:
      add("string", "str");
      add("number", 5);
      add("boolean", false);
      add("object", json::object{{"a", 1}});
      add("array of number", json::array{5});
      add("array of object", json::array{json::object{}});
      add("array of null", json::array{nullptr});
      add("array of long string", json::array{json::string(kLong)});
      break;
    case Kind::ObjArr:
      add("string", "str");
      add("number", 5);
      add("object", json::object{{"a", 1}});
      add("array of number", json::array{5});
      add("array of string", json::array{"x"});
      add("array of array", json::array{json::array{}});
      add("array of null", json::array{nullptr});
      add("long string", json::string(kLong));
      break;
    case Kind::Int:
      add("string", "5");
      add("float", 1.5);
      add("boolean", true);
      add("object", json::object{});
      add("array", json::array{1});
      add("huge integer", huge_uint);
      add("huge float", 1e300);
      add("negative", -2);
      add("long string", json::string(kLong));
      break;
  }
  add("nested arrays", nested_arrays(20));
  add("too deeply nested", json::string(kDeep));
  add("invalid utf-8", json::string(kBadUtf8));
  add("null", nullptr, false);
  v.push_back({"absent", std::nullopt, false});
  return v;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    out.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

// A copy of `base` with the value at `path` replaced (or removed when `value` is nullopt).
json::value with_field(json::value base, const std::string& path, const std::optional<json::value>& value) {
  auto parts = split_path(path);
  json::value* cur = &base;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (cur->is_array())
      cur = &cur->as_array().at(std::stoul(parts[i]));
    else
      cur = &cur->as_object()[parts[i]];
  }
  const auto& last = parts.back();
  if (cur->is_array()) {
    auto& a = cur->as_array();
    auto idx = std::stoul(last);
    if (value)
      a.at(idx) = *value;
    else
      a.erase(a.begin() + static_cast<std::ptrdiff_t>(idx));
  } else {
    auto& o = cur->as_object();
    if (value)
      o[last] = *value;
    else
      o.erase(last);
  }
  return base;
}

// ------------------------------------------------------------------------------- route specs

struct RouteSpec {
  std::string method, path;
  std::string key;           // the body's top-level key; empty: the entity is the body itself
  json::object entity;       // a valid entity
  std::vector<Field> fields;
  bool list = false;         // the key holds a list of entities (unified limits)
  bool lenient_empty = false;  // an empty body or a missing key is accepted (OAuth1 consumers)
  bool update = false;       // an empty entity is accepted (a no-op update; a region with a generated id)
  bool token = true;         // send the admin token
  bool check_entity = true;  // finally send the valid entity (expecting success)
};

std::string wrap(const RouteSpec& r, const json::value& entity) {
  if (r.key.empty()) return json::serialize(entity);
  json::value inner = r.list ? json::value(json::array{entity}) : entity;
  return json::serialize(json::object{{r.key, inner}});
}

class Driver {
 public:
  Driver(Cloud& c, std::string token) : c_(c), token_(std::move(token)) {}

  Reply send(const RouteSpec& r, const std::string& body, bool strict, const std::string& label) {
    auto reply = c_.call(r.method, r.path, r.token ? token_ : std::string(), body);
    check_reply(reply, strict, r.method + " " + r.path + " [" + label + "] body=" + excerpt(body, 200));
    return reply;
  }

  // Structural garbage, then every field of the entity with every wrong type.
  void drive(const RouteSpec& r) {
    drive_structure(r);
    if (!r.key.empty()) drive_top_level(r);
    for (auto& f : r.fields) {
      for (auto& v : wrong_values(f.kind)) {
        auto entity = with_field(r.entity, f.path, v.value);
        send(r, finish(wrap(r, entity)), v.strict, f.path + " = " + v.label);
      }
    }
    // An unknown field holding junk: stored as an extra attribute or refused, never a 500.
    auto extra = r.entity;
    extra["zz_extra"] = json::array{nested_arrays(10), json::string(kLong.substr(0, 1000)), json::object{{"k", nullptr}}};
    send(r, wrap(r, extra), false, "unknown field with junk");
    // The entity itself is valid, so each variant above differed from a good request in one place
    // (a conflict with what a lenient variant created is fine).
    if (r.check_entity) {
      auto ok = c_.call(r.method, r.path, r.token ? token_ : std::string(), wrap(r, r.entity));
      EXPECT_TRUE(ok.status < 300 || ok.status == 409) << r.method << " " << r.path << " valid entity -> " << excerpt(ok.raw);
    }
  }

  // Bodies that are not JSON objects, or lack the top-level key.
  void drive_structure(const RouteSpec& r) {
    std::vector<std::pair<std::string, std::string>> raw{
        {"invalid JSON", "{not json"},
        {"truncated JSON", "{\"" + (r.key.empty() ? std::string("a") : r.key) + "\": {"},
        {"trailing garbage", "{} xx"},
        {"JSON array", "[]"},
        {"JSON array of object", "[{}]"},
        {"JSON null", "null"},
        {"JSON string", "\"body\""},
        {"JSON number", "42"},
        {"JSON true", "true"},
        {"too deeply nested body", std::string(300, '[') + std::string(300, ']')},
        {"invalid utf-8 key", "{\"\xff\xfe\": {}}"},
        {"NUL in body", std::string("{\"a\": \"\0\"}", 10)},
    };
    for (auto& [label, body] : raw) send(r, body, true, label);
    send(r, "", !r.lenient_empty, "empty body");
    if (!r.key.empty()) {
      send(r, "{}", !r.lenient_empty, "top-level key missing");
      send(r, json::serialize(json::object{{"wrong_key", r.entity}}), !r.lenient_empty, "only another key");
    }
  }

  // The top-level key holding anything but the entity.
  void drive_top_level(const RouteSpec& r) {
    {
      std::vector<std::pair<std::string, json::value>> top{
          {"string", "str"},          {"number", 7},         {"null", nullptr},
          {"boolean", false},         {"array of string", json::array{"x"}},
          {"long string", json::string(kLong)},     {"nested arrays", nested_arrays(20)},
          {"too deeply nested", json::string(kDeep)},
      };
      if (r.list)
        top.emplace_back("object", r.entity);
      else
        top.emplace_back("array", json::array{r.entity});
      for (auto& [label, v] : top)
        send(r, finish(json::serialize(json::object{{r.key, v}})), true, "top-level key holding " + label);
      if (r.list) {
        send(r, json::serialize(json::object{{r.key, json::array{}}}), true, "empty list");
        send(r, json::serialize(json::object{{r.key, json::array{r.entity, 5}}}), true, "list with a number");
      }
      send(r, wrap(r, json::object{}), !r.update, "empty entity");
    }
  }

  // Routes that ignore the body (grants, memberships...): junk must not matter.
  void drive_ignored_body(const std::string& method, const std::string& path) {
    RouteSpec r{method, path, "", {}, {}};
    for (std::string body : {std::string("{not json"), std::string("[]"), std::string("42"), std::string("{}"),
                             std::string(300, '[') + std::string(300, ']'), std::string("\"\xff\"")})
      send(r, body, false, "ignored body");
    send(r, "", false, "no body");
  }

 private:
  Cloud& c_;
  std::string token_;
};

// ------------------------------------------------------------------------------- the fixture

std::string id_of(const Reply& r, const char* key) {
  auto* e = find(r.body, key);
  if (!e || !e->is_object()) return {};
  return string_or(e->as_object(), "id");
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = c.call("POST", "/v3/auth/tokens", "", Cloud::password_auth("admin", kPassword, "admin"));
    ASSERT_EQ(r.status, 201) << r.raw;
    admin = std::string(*r.headers.get("X-Subject-Token"));
    auto& t = r.body.at("token").as_object();
    admin_id = std::string(t.at("user").as_object().at("id").as_string());
    admin_project = std::string(t.at("project").as_object().at("id").as_string());
    for (auto& role : t.at("roles").as_array())
      if (role.as_object().at("name").as_string() == "admin") admin_role = std::string(role.as_object().at("id").as_string());
  }

  // POSTs (or PUTs) a valid entity and returns its id.
  std::string create(const std::string& path, const char* key, json::object entity, const char* method = "POST") {
    auto r = c.call(method, path, admin, json::object{{key, std::move(entity)}});
    EXPECT_TRUE(r.status == 201 || r.status == 200) << method << " " << path << " -> " << r.raw;
    return id_of(r, key);
  }

  std::string make_domain() { return create("/v3/domains", "domain", {{"name", "bi-domain"}}); }
  std::string make_project() { return create("/v3/projects", "project", {{"name", "bi-project"}}); }
  std::string make_user() {
    return create("/v3/users", "user", {{"name", "bi-user"}, {"password", "bi-user-pw-1"}});
  }
  std::string make_group() { return create("/v3/groups", "group", {{"name", "bi-group"}}); }
  std::string make_role(const std::string& name) { return create("/v3/roles", "role", {{"name", name}}); }
  std::string make_service() {
    return create("/v3/services", "service", {{"type", "compute"}, {"name", "nova"}});
  }

  void TearDown() override {
    RecordProperty("hostile_requests", checked_replies);
    checked_replies = 0;
  }

  Driver driver() { return Driver(c, admin); }

  Cloud c;
  std::string admin, admin_id, admin_project, admin_role;
};

// The entity fields, for specs that share them between create and update.
std::vector<Field> fields(std::initializer_list<Field> f) { return f; }

}  // namespace

// ------------------------------------------------------------------------------- /v3/auth/tokens

TEST_F(BadInput, AuthTokens) {
  // Domain and system scopes need roles there.
  ASSERT_EQ(c.call("PUT", "/v3/domains/default/users/" + admin_id + "/roles/" + admin_role, admin).status, 204);
  ASSERT_EQ(c.call("PUT", "/v3/system/users/" + admin_id + "/roles/" + admin_role, admin).status, 204);
  auto d = driver();
  auto password = Cloud::password_auth("admin", kPassword, "admin").at("auth").as_object();
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", password,
                    fields({{"identity", Kind::Obj},
                            {"identity.methods", Kind::Arr},
                            {"identity.methods.0", Kind::Str},
                            {"identity.password", Kind::Obj},
                            {"identity.password.user", Kind::Obj},
                            {"identity.password.user.name", Kind::Str},
                            {"identity.password.user.password", Kind::Str},
                            {"identity.password.user.domain", Kind::Obj},
                            {"identity.password.user.domain.id", Kind::Str},
                            {"scope", Kind::Obj},
                            {"scope.project", Kind::Obj},
                            {"scope.project.name", Kind::Str},
                            {"scope.project.domain", Kind::Obj},
                            {"scope.project.domain.id", Kind::Str}}),
                    false, false, false, false});

  json::object by_id{{"identity", json::object{{"methods", json::array{"password"}},
                                               {"password", json::object{{"user", json::object{
                                                                                      {"id", admin_id},
                                                                                      {"password", kPassword}}}}}}},
                     {"scope", json::object{{"project", json::object{{"id", admin_project}}}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", by_id,
                    fields({{"identity.password.user.id", Kind::Str}, {"scope.project.id", Kind::Str}}), false, false,
                    false, false});

  // An id of the wrong type is refused, not skipped in favour of the name next to it.
  json::object both{{"identity", json::object{{"methods", json::array{"password"}},
                                             {"password", json::object{{"user", json::object{
                                                                                    {"id", admin_id},
                                                                                    {"name", "admin"},
                                                                                    {"domain", json::object{
                                                                                                   {"id", "default"},
                                                                                                   {"name", "Default"}}},
                                                                                    {"password", kPassword}}}}}}},
                    {"scope", json::object{{"project", json::object{{"id", admin_project},
                                                                    {"name", "admin"},
                                                                    {"domain", json::object{{"id", "default"}}}}}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", both,
                    fields({{"identity.password.user.id", Kind::Str}, {"scope.project.id", Kind::Str}}), false, false,
                    false, false});
  both = with_field(both, "identity.password.user", json::object{{"name", "admin"},
                                                                  {"domain", json::object{{"id", "default"},
                                                                                          {"name", "Default"}}},
                                                                  {"password", kPassword}})
             .as_object();
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", both, fields({{"identity.password.user.domain.id", Kind::Str}}),
                    false, false, false, false});

  json::object by_domain_name = Cloud::password_auth("admin", kPassword).at("auth").as_object();
  by_domain_name = with_field(by_domain_name, "identity.password.user.domain", json::object{{"name", "Default"}})
                       .as_object();
  by_domain_name["scope"] = json::object{{"domain", json::object{{"name", "Default"}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", by_domain_name,
                    fields({{"identity.password.user.domain.name", Kind::Str},
                            {"scope.domain", Kind::Obj},
                            {"scope.domain.name", Kind::Str}}),
                    false, false, false, false});

  json::object system = Cloud::password_auth("admin", kPassword).at("auth").as_object();
  system["scope"] = json::object{{"system", json::object{{"all", true}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", system,
                    fields({{"scope.system", Kind::Obj}, {"scope.system.all", Kind::Bool}}), false, false, false,
                    false});

  json::object rescope{{"identity", json::object{{"methods", json::array{"token"}},
                                                 {"token", json::object{{"id", admin}}}}},
                       {"scope", json::object{{"domain", json::object{{"id", "default"}}}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", rescope,
                    fields({{"identity.token", Kind::Obj}, {"identity.token.id", Kind::Str},
                            {"scope.domain.id", Kind::Str}}),
                    false, false, false, false});

  auto ac = c.call("POST", "/v3/users/" + admin_id + "/application_credentials", admin,
                   json::object{{"application_credential", json::object{{"name", "bi-ac"}}}});
  ASSERT_EQ(ac.status, 201) << ac.raw;
  auto& acb = ac.body.at("application_credential").as_object();
  json::object app_cred{
      {"identity", json::object{{"methods", json::array{"application_credential"}},
                                {"application_credential",
                                 json::object{{"id", acb.at("id")}, {"secret", acb.at("secret")}}}}},
      {"scope", json::object{{"project", json::object{{"id", admin_project}}}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", app_cred,
                    fields({{"identity.application_credential", Kind::Obj},
                            {"identity.application_credential.id", Kind::Str},
                            {"identity.application_credential.secret", Kind::Str}}),
                    false, false, false, false});
  json::object app_cred_name{
      {"identity",
       json::object{{"methods", json::array{"application_credential"}},
                    {"application_credential",
                     json::object{{"name", "bi-ac"},
                                  {"secret", acb.at("secret")},
                                  {"user", json::object{{"name", "admin"},
                                                        {"domain", json::object{{"id", "default"}}}}}}}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", app_cred_name,
                    fields({{"identity.application_credential.name", Kind::Str},
                            {"identity.application_credential.user", Kind::Obj},
                            {"identity.application_credential.user.name", Kind::Str},
                            {"identity.application_credential.user.domain", Kind::Obj},
                            {"identity.application_credential.user.domain.id", Kind::Str}}),
                    false, false, false, false});
  app_cred_name = with_field(app_cred_name, "identity.application_credential.user.id", json::value(admin_id)).as_object();
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", app_cred_name,
                    fields({{"identity.application_credential.user.id", Kind::Str}}), false, false, false, false});

  auto trustee = create("/v3/users", "user", {{"name", "bi-trustee"}, {"password", "bi-trustee-pw"}});
  auto created_trust = c.call("POST", "/v3/OS-TRUST/trusts", admin,
                              json::object{{"trust", json::object{{"trustor_user_id", admin_id},
                                                                  {"trustee_user_id", trustee},
                                                                  {"project_id", admin_project},
                                                                  {"impersonation", false},
                                                                  {"roles", json::array{json::object{
                                                                                {"name", "member"}}}}}}});
  ASSERT_EQ(created_trust.status, 201) << created_trust.raw;
  json::object trust = Cloud::password_auth("bi-trustee", "bi-trustee-pw").at("auth").as_object();
  trust["scope"] = json::object{{"OS-TRUST:trust", json::object{{"id", id_of(created_trust, "trust")}}}};
  d.drive(RouteSpec{"POST", "/v3/auth/tokens", "auth", trust,
                    fields({{"scope.OS-TRUST:trust", Kind::Obj}, {"scope.OS-TRUST:trust.id", Kind::Str}}), false,
                    false, false, false});

  // The server is still healthy and the admin token still works.
  EXPECT_EQ(c.call("GET", "/v3/projects", admin).status, 200);
}

// ------------------------------------------------------------------------------- resources

TEST_F(BadInput, Domains) {
  auto domain = make_domain();
  auto d = driver();
  auto f = fields({{"name", Kind::Str}, {"description", Kind::Str}, {"enabled", Kind::Bool}, {"id", Kind::Str}});
  d.drive(RouteSpec{"POST", "/v3/domains", "domain",
                    {{"name", "bi-new-domain"}, {"description", "d"}, {"enabled", true}, {"id", uuid4_hex()}}, f});
  d.drive(RouteSpec{"PATCH", "/v3/domains/" + domain, "domain",
                    {{"name", "bi-domain-2"}, {"description", "d"}, {"enabled", true}, {"id", domain}}, f, false,
                    false, true});
}

TEST_F(BadInput, Projects) {
  auto project = make_project();
  auto d = driver();
  d.drive(RouteSpec{"POST", "/v3/projects", "project",
                    {{"name", "bi-new-project"},
                     {"description", "d"},
                     {"enabled", true},
                     {"is_domain", false},
                     {"domain_id", "default"},
                     {"parent_id", "default"},
                     {"tags", json::array{"a", "b"}}},
                    fields({{"name", Kind::Str},
                            {"description", Kind::Str},
                            {"enabled", Kind::Bool},
                            {"is_domain", Kind::Bool},
                            {"domain_id", Kind::Str},
                            {"parent_id", Kind::Str},
                            {"tags", Kind::Arr},
                            {"tags.0", Kind::Str}})});
  d.drive(RouteSpec{"POST", "/v3/projects", "project", {{"name", "bi-project-domain"}, {"is_domain", true}},
                    fields({{"is_domain", Kind::Bool}})});
  d.drive(RouteSpec{"PATCH", "/v3/projects/" + project, "project",
                    {{"name", "bi-project-2"},
                     {"description", "d"},
                     {"enabled", true},
                     {"tags", json::array{"a"}},
                     {"domain_id", "default"},
                     {"parent_id", "default"},
                     {"is_domain", false}},
                    fields({{"name", Kind::Str},
                            {"description", Kind::Str},
                            {"enabled", Kind::Bool},
                            {"tags", Kind::Arr},
                            {"tags.0", Kind::Str},
                            {"domain_id", Kind::Str},
                            {"parent_id", Kind::Str},
                            {"is_domain", Kind::Bool}}),
                    false, false, true});
  // PUT tags is {"tags": [...]}: the list itself is the entity.
  d.drive_structure(RouteSpec{"PUT", "/v3/projects/" + project + "/tags", "tags", {}, {}});
  auto put_tags = [&](const json::value& tags, bool strict, const std::string& label) {
    RouteSpec r{"PUT", "/v3/projects/" + project + "/tags", "", {}, {}};
    d.send(r, finish(json::serialize(json::object{{"tags", tags}})), strict, label);
  };
  for (auto& v : wrong_values(Kind::Arr))
    if (v.value) put_tags(*v.value, v.strict, "tags = " + v.label);
  for (auto& v : wrong_values(Kind::Str))
    if (v.value) put_tags(json::array{*v.value}, v.strict, "tags.0 = " + v.label);
  json::array many;
  for (int i = 0; i < 81; ++i) many.emplace_back("t" + std::to_string(i));
  put_tags(many, true, "81 tags");
  put_tags(json::array{"a/b"}, true, "tag with slash");
  put_tags(json::array{"a", "a"}, true, "duplicate tags");

  // PUT /tags/{tag}: no body; hostile tags in the path.
  d.drive_ignored_body("PUT", "/v3/projects/" + project + "/tags/bi-tag");
  RouteSpec tag{"PUT", "", "", {}, {}};
  for (std::string t : {std::string(300, 't'), std::string("a%2Cb"), std::string("a%2Fb"), std::string("%00"),
                        std::string("%ZZ"), std::string("%C3%28")}) {
    tag.path = "/v3/projects/" + project + "/tags/" + t;
    d.send(tag, "", false, "hostile tag");
  }
}

TEST_F(BadInput, Users) {
  auto user = make_user();
  auto d = driver();
  d.drive(RouteSpec{"POST", "/v3/users", "user",
                    {{"name", "bi-new-user"},
                     {"domain_id", "default"},
                     {"enabled", true},
                     {"password", "pw-new-1"},
                     {"default_project_id", admin_project},
                     {"options", json::object{{"ignore_lockout_failure_attempts", true}}}},
                    fields({{"name", Kind::Str},
                            {"domain_id", Kind::Str},
                            {"enabled", Kind::Bool},
                            {"password", Kind::Str},
                            {"default_project_id", Kind::Str},
                            {"options", Kind::Obj}})});
  d.drive(RouteSpec{"PATCH", "/v3/users/" + user, "user",
                    {{"name", "bi-user-2"},
                     {"enabled", true},
                     {"default_project_id", admin_project},
                     {"options", json::object{{"ignore_lockout_failure_attempts", true}}},
                     {"domain_id", "default"},
                     {"id", user}},
                    fields({{"name", Kind::Str},
                            {"enabled", Kind::Bool},
                            {"default_project_id", Kind::Str},
                            {"options", Kind::Obj},
                            {"domain_id", Kind::Str},
                            {"password", Kind::Str},
                            {"id", Kind::Str}}),
                    false, false, true});
  // The password change checks the body before the original password (on a user of its own: the
  // lenient PATCH variants above may have set another password).
  user = create("/v3/users", "user", {{"name", "bi-user-pw"}, {"password", "bi-user-pw-1"}});
  // Some lenient variants ("password" with a NUL character...) do change the password, so the original one
  // no longer holds at the end.
  d.drive(RouteSpec{"POST", "/v3/users/" + user + "/password", "user",
                    {{"original_password", "bi-user-pw-1"}, {"password", "bi-user-pw-2"}},
                    fields({{"original_password", Kind::Str}, {"password", Kind::Str}}), false, false, false, true,
                    false});
}

TEST_F(BadInput, Groups) {
  auto group = make_group();
  auto user = make_user();
  auto d = driver();
  auto f = fields({{"name", Kind::Str}, {"domain_id", Kind::Str}, {"description", Kind::Str}});
  d.drive(RouteSpec{"POST", "/v3/groups", "group",
                    {{"name", "bi-new-group"}, {"domain_id", "default"}, {"description", "d"}}, f});
  d.drive(RouteSpec{"PATCH", "/v3/groups/" + group, "group",
                    {{"name", "bi-group-2"}, {"domain_id", "default"}, {"description", "d"}, {"id", group}}, f,
                    false, false, true});
  d.drive_ignored_body("PUT", "/v3/groups/" + group + "/users/" + user);
}

// ------------------------------------------------------------------------------- roles and grants

TEST_F(BadInput, Roles) {
  auto role = make_role("bi-role");
  auto implied = make_role("bi-implied");
  auto domain = make_domain();
  auto d = driver();
  auto f = fields({{"name", Kind::Str}, {"domain_id", Kind::Str}, {"description", Kind::Str}, {"options", Kind::Obj}});
  d.drive(RouteSpec{"POST", "/v3/roles", "role",
                    {{"name", "bi-new-role"}, {"domain_id", domain}, {"description", "d"},
                     {"options", json::object{}}},
                    f});
  d.drive(RouteSpec{"PATCH", "/v3/roles/" + role, "role",
                    {{"name", "bi-role-2"}, {"description", "d"}, {"options", json::object{{"immutable", false}}}},
                    fields({{"name", Kind::Str}, {"domain_id", Kind::Str}, {"description", Kind::Str},
                            {"options", Kind::Obj}, {"id", Kind::Str}}),
                    false, false, true});
  d.drive_ignored_body("PUT", "/v3/roles/" + role + "/implies/" + implied);
}

TEST_F(BadInput, Grants) {
  auto role = make_role("bi-role");
  auto domain = make_domain();
  auto project = make_project();
  auto user = make_user();
  auto group = make_group();
  auto d = driver();
  for (std::string path :
       {"/v3/projects/" + project + "/users/" + user + "/roles/" + role,
        "/v3/projects/" + project + "/groups/" + group + "/roles/" + role,
        "/v3/domains/" + domain + "/users/" + user + "/roles/" + role,
        "/v3/domains/" + domain + "/groups/" + group + "/roles/" + role,
        "/v3/system/users/" + user + "/roles/" + role, "/v3/system/groups/" + group + "/roles/" + role,
        "/v3/OS-INHERIT/domains/" + domain + "/users/" + user + "/roles/" + role + "/inherited_to_projects",
        "/v3/OS-INHERIT/domains/" + domain + "/groups/" + group + "/roles/" + role + "/inherited_to_projects",
        "/v3/OS-INHERIT/projects/" + project + "/users/" + user + "/roles/" + role + "/inherited_to_projects",
        "/v3/OS-INHERIT/projects/" + project + "/groups/" + group + "/roles/" + role + "/inherited_to_projects"})
    d.drive_ignored_body("PUT", path);
}

// ------------------------------------------------------------------------------- catalog

TEST_F(BadInput, Regions) {
  auto region = create("/v3/regions", "region", {{"id", "bi-region"}});
  auto d = driver();
  d.drive(RouteSpec{"POST", "/v3/regions", "region",
                    {{"id", "bi-new-region"}, {"description", "d"}, {"parent_region_id", region}},
                    fields({{"id", Kind::Str}, {"description", Kind::Text}, {"parent_region_id", Kind::Str}}),
                    false, false, true});  // {"region": {}} creates a region with a generated id
  d.drive(RouteSpec{"PUT", "/v3/regions/bi-put-region", "region",
                    {{"id", "bi-put-region"}, {"description", "d"}, {"parent_region_id", region}},
                    fields({{"id", Kind::Str}, {"description", Kind::Text}, {"parent_region_id", Kind::Str}}),
                    false, false, true});
  auto child = create("/v3/regions", "region", {{"id", "bi-child"}});
  d.drive(RouteSpec{"PATCH", "/v3/regions/" + child, "region",
                    {{"id", child}, {"description", "d"}, {"parent_region_id", region}},
                    fields({{"id", Kind::Str}, {"description", Kind::Text}, {"parent_region_id", Kind::Str}}),
                    false, false, true});
}

TEST_F(BadInput, Services) {
  auto service = make_service();
  auto d = driver();
  auto f = fields({{"type", Kind::Str}, {"name", Kind::Str}, {"enabled", Kind::Bool}});
  d.drive(RouteSpec{"POST", "/v3/services", "service", {{"type", "volume"}, {"name", "cinder"}, {"enabled", true}}, f});
  d.drive(RouteSpec{"PATCH", "/v3/services/" + service, "service",
                    {{"type", "volume"}, {"name", "cinder"}, {"enabled", true}, {"id", service}},
                    fields({{"type", Kind::Str}, {"name", Kind::Str}, {"enabled", Kind::Bool}, {"id", Kind::Str}}),
                    false, false, true});
}

TEST_F(BadInput, Endpoints) {
  auto service = make_service();
  auto endpoint = create("/v3/endpoints", "endpoint",
                         {{"service_id", service}, {"interface", "public"}, {"url", "http://x/"}});
  auto d = driver();
  json::object e{{"service_id", service},
                 {"interface", "internal"},
                 {"url", "http://y/"},
                 {"enabled", true},
                 {"region_id", "bi-region"}};
  auto f = fields({{"service_id", Kind::Str},
                   {"interface", Kind::Str},
                   {"url", Kind::Str},
                   {"enabled", Kind::Bool},
                   {"region_id", Kind::Str}});
  d.drive(RouteSpec{"POST", "/v3/endpoints", "endpoint", e, f});
  // The legacy `region` (used when there is no region_id).
  auto legacy = e;
  legacy.erase("region_id");
  legacy["region"] = "bi-region";
  d.drive(RouteSpec{"POST", "/v3/endpoints", "endpoint", legacy, fields({{"region", Kind::Str}})});
  e["id"] = endpoint;
  f.push_back({"id", Kind::Str});
  d.drive(RouteSpec{"PATCH", "/v3/endpoints/" + endpoint, "endpoint", e, f, false, false, true});
  legacy["id"] = endpoint;
  d.drive(RouteSpec{"PATCH", "/v3/endpoints/" + endpoint, "endpoint", legacy, fields({{"region", Kind::Str}}), false,
                    false, true});
}

TEST_F(BadInput, EndpointGroups) {
  auto service = make_service();
  json::object e{{"name", "bi-eg"},
                 {"description", "d"},
                 {"filters", json::object{{"service_id", service}, {"interface", "public"}}}};
  auto group = create("/v3/OS-EP-FILTER/endpoint_groups", "endpoint_group", e);
  auto d = driver();
  auto f = fields({{"name", Kind::Str}, {"description", Kind::Str}, {"filters", Kind::Obj}});
  d.drive(RouteSpec{"POST", "/v3/OS-EP-FILTER/endpoint_groups", "endpoint_group", e, f});
  e["id"] = group;
  f.push_back({"id", Kind::Str});
  d.drive(RouteSpec{"PATCH", "/v3/OS-EP-FILTER/endpoint_groups/" + group, "endpoint_group", e, f, false, false, true});
}

TEST_F(BadInput, Policies) {
  json::object p{{"type", "application/json"}, {"blob", "{}"}};
  auto policy = create("/v3/policies", "policy", p);
  auto d = driver();
  auto f = fields({{"type", Kind::Str}, {"blob", Kind::Text}});
  d.drive(RouteSpec{"POST", "/v3/policies", "policy", p, f});
  p["id"] = policy;
  f.push_back({"id", Kind::Str});
  d.drive(RouteSpec{"PATCH", "/v3/policies/" + policy, "policy", p, f, false, false, true});
}

TEST_F(BadInput, DomainConfig) {
  auto domain = make_domain();
  json::object config{{"identity", json::object{{"driver", "sql"}}}, {"ldap", json::object{{"url", "ldap://x"}}}};
  auto r = c.call("PUT", "/v3/domains/" + domain + "/config", admin, json::object{{"config", config}});
  ASSERT_EQ(r.status, 201) << r.raw;
  auto d = driver();
  auto f = fields({{"identity", Kind::Obj}, {"ldap", Kind::Obj}});
  d.drive(RouteSpec{"PUT", "/v3/domains/" + domain + "/config", "config", config, f});
  d.drive(RouteSpec{"PATCH", "/v3/domains/" + domain + "/config", "config", config, f});
  d.drive(RouteSpec{"PATCH", "/v3/domains/" + domain + "/config/ldap", "config",
                    {{"ldap", json::object{{"url", "ldap://y"}}}}, fields({{"ldap", Kind::Obj}})});
  // An option's value may be any JSON; only the body's structure is checked.
  d.drive(RouteSpec{"PATCH", "/v3/domains/" + domain + "/config/ldap/url", "config", {{"url", "ldap://z"}}, {}});
}

TEST_F(BadInput, Consumers) {
  auto consumer = create("/v3/OS-OAUTH1/consumers", "consumer", {{"description", "d"}});
  auto d = driver();
  // Keystone creates a consumer from an empty body.
  d.drive(RouteSpec{"POST", "/v3/OS-OAUTH1/consumers", "consumer", {{"description", "d"}},
                    fields({{"description", Kind::Str}}), false, true, true});
  d.drive(RouteSpec{"PATCH", "/v3/OS-OAUTH1/consumers/" + consumer, "consumer",
                    {{"description", "d2"}, {"id", consumer}},
                    fields({{"description", Kind::Str}, {"id", Kind::Str}}), false, true, true});
}

TEST_F(BadInput, UnifiedLimits) {
  auto service = make_service();
  auto project = make_project();
  auto domain = make_domain();
  auto region = create("/v3/regions", "region", {{"id", "bi-region"}});
  auto rl = c.call("POST", "/v3/registered_limits", admin,
                   json::object{{"registered_limits",
                                 json::array{json::object{{"service_id", service},
                                                          {"region_id", region},
                                                          {"resource_name", "cores"},
                                                          {"default_limit", 10}}}}});
  ASSERT_EQ(rl.status, 201) << rl.raw;
  std::string rl_id(rl.body.at("registered_limits").as_array()[0].as_object().at("id").as_string());
  auto lim = c.call("POST", "/v3/limits", admin,
                    json::object{{"limits", json::array{json::object{{"project_id", project},
                                                                     {"service_id", service},
                                                                     {"region_id", region},
                                                                     {"resource_name", "cores"},
                                                                     {"resource_limit", 5}}}}});
  ASSERT_EQ(lim.status, 201) << lim.raw;
  std::string limit_id(lim.body.at("limits").as_array()[0].as_object().at("id").as_string());

  auto d = driver();
  json::object registered{{"service_id", service},
                          {"region_id", region},
                          {"resource_name", "ram"},
                          {"default_limit", 1024},
                          {"description", "d"}};
  auto rf = fields({{"service_id", Kind::Str},
                    {"region_id", Kind::Str},
                    {"resource_name", Kind::Str},
                    {"default_limit", Kind::Int},
                    {"description", Kind::Str}});
  d.drive(RouteSpec{"POST", "/v3/registered_limits", "registered_limits", registered, rf, true});
  registered["resource_name"] = "cores";
  d.drive(RouteSpec{"PATCH", "/v3/registered_limits/" + rl_id, "registered_limit", registered, rf, false, false,
                    true});

  json::object limit{{"domain_id", domain},
                     {"service_id", service},
                     {"region_id", region},
                     {"resource_name", "cores"},
                     {"resource_limit", 7},
                     {"description", "d"}};
  d.drive(RouteSpec{"POST", "/v3/limits", "limits", limit,
                    fields({{"domain_id", Kind::Str},
                            {"service_id", Kind::Str},
                            {"region_id", Kind::Str},
                            {"resource_name", Kind::Str},
                            {"resource_limit", Kind::Int},
                            {"description", Kind::Str}}),
                    true});
  limit.erase("domain_id");
  limit["project_id"] = project;
  d.drive(RouteSpec{"POST", "/v3/limits", "limits", limit, fields({{"project_id", Kind::Str}}), true});
  d.drive(RouteSpec{"PATCH", "/v3/limits/" + limit_id, "limit", {{"resource_limit", 8}, {"description", "d"}},
                    fields({{"resource_limit", Kind::Int}, {"description", Kind::Str}}), false, false, true});
}

// ------------------------------------------------------------------------------- credentials

TEST_F(BadInput, Credentials) {
  auto user = make_user();
  auto project = make_project();
  auto cred = create("/v3/credentials", "credential", {{"user_id", user}, {"type", "cert"}, {"blob", "x"}});
  auto d = driver();
  json::object c1{{"user_id", user}, {"type", "cert"}, {"blob", "b"}, {"project_id", project}};
  auto f = fields({{"user_id", Kind::Str}, {"type", Kind::Str}, {"blob", Kind::Text}, {"project_id", Kind::Str}});
  d.drive(RouteSpec{"POST", "/v3/credentials", "credential", c1, f});
  // ec2 blobs are JSON text with an access key.
  json::object ec2{{"user_id", user},
                   {"type", "ec2"},
                   {"blob", json::serialize(json::object{{"access", "a1"}, {"secret", "s1"}})},
                   {"project_id", project}};
  d.drive(RouteSpec{"POST", "/v3/credentials", "credential", ec2, f});
  RouteSpec blobs{"POST", "/v3/credentials", "", {}, {}};
  for (std::string blob : {std::string("not json"), std::string("[]"), std::string("{\"access\": 5}"),
                           std::string("{\"access\": {}}"), std::string("{\"access\": \"\"}"), std::string("{}"),
                           std::string("null"), std::string(300, '[') + std::string(300, ']')}) {
    auto e = ec2;
    e["blob"] = blob;
    d.send(blobs, json::serialize(json::object{{"credential", e}}), true, "ec2 blob " + excerpt(blob, 40));
  }
  c1["id"] = cred;
  f.push_back({"id", Kind::Str});
  d.drive(RouteSpec{"PATCH", "/v3/credentials/" + cred, "credential", c1, f, false, false, true});

  auto ec2_cred = c.call("POST", "/v3/credentials", admin,
                         json::object{{"credential", json::object{{"user_id", user},
                                                                  {"type", "ec2"},
                                                                  {"project_id", project},
                                                                  {"blob", "{\"access\": \"a2\"}"}}}});
  ASSERT_EQ(ec2_cred.status, 201) << ec2_cred.raw;
  std::string ec2_id = id_of(ec2_cred, "credential");
  d.drive(RouteSpec{"PATCH", "/v3/credentials/" + ec2_id, "credential",
                    {{"blob", "{\"access\": \"a2\", \"secret\": \"s\"}"}, {"project_id", project}},
                    fields({{"blob", Kind::Text}, {"project_id", Kind::Str}}), false, false, true});
  RouteSpec patch_blob{"PATCH", "/v3/credentials/" + ec2_id, "", {}, {}};
  for (std::string blob : {std::string("not json"), std::string("[]"), std::string("{\"access\": 5}"),
                           std::string("{\"access\": \"a2\", \"trust_id\": 5}"), std::string("{}")})
    d.send(patch_blob, json::serialize(json::object{{"credential", json::object{{"blob", blob}}}}), true,
           "ec2 blob " + blob);
}

TEST_F(BadInput, Ec2Credentials) {
  auto user = make_user();
  auto project = make_project();
  auto d = driver();
  // Not wrapped: the body is {"tenant_id": ...}.
  d.drive(RouteSpec{"POST", "/v3/users/" + user + "/credentials/OS-EC2", "", {{"tenant_id", project}},
                    fields({{"tenant_id", Kind::Str}})});
  RouteSpec r{"POST", "/v3/users/" + user + "/credentials/OS-EC2", "", {}, {}};
  d.send(r, "{}", true, "no tenant_id");
  d.send(r, "", true, "empty body");
}

TEST_F(BadInput, ApplicationCredentials) {
  auto d = driver();
  json::object ac{{"name", "bi-ac"},
                  {"description", "d"},
                  {"secret", "s3cr3t"},
                  {"unrestricted", false},
                  {"expires_at", "2099-01-01T00:00:00Z"},
                  {"roles", json::array{json::object{{"name", "admin"}}}},
                  {"access_rules", json::array{json::object{
                                       {"service", "compute"}, {"path", "/v2.1/servers"}, {"method", "GET"}}}}};
  d.drive(RouteSpec{"POST", "/v3/users/" + admin_id + "/application_credentials", "application_credential", ac,
                    fields({{"name", Kind::Str},
                            {"description", Kind::Str},
                            {"secret", Kind::Str},
                            {"unrestricted", Kind::Bool},
                            {"expires_at", Kind::Str},
                            {"roles", Kind::ObjArr},
                            {"roles.0.name", Kind::Str},
                            {"access_rules", Kind::ObjArr},
                            {"access_rules.0.service", Kind::Str},
                            {"access_rules.0.path", Kind::Str},
                            {"access_rules.0.method", Kind::Str}})});
  ac["name"] = "bi-ac-2";
  ac["roles"] = json::array{json::object{{"id", admin_role}}};
  d.drive(RouteSpec{"POST", "/v3/users/" + admin_id + "/application_credentials", "application_credential", ac,
                    fields({{"roles.0.id", Kind::Str}})});
  ac["name"] = "bi-ac-3";
  ac["access_rules"] = json::array{json::object{{"id", uuid4_hex()}}};  // refers to no rule: 404 at the end
  d.drive(RouteSpec{"POST", "/v3/users/" + admin_id + "/application_credentials", "application_credential", ac,
                    fields({{"access_rules.0.id", Kind::Str}}), false, false, false, true, false});
  RouteSpec r{"POST", "/v3/users/" + admin_id + "/application_credentials", "", {}, {}};
  int n = 0;
  // Access rule paths: up to the column's 128 characters, longer are refused.
  for (size_t len : {128, 129, 225, 226}) {
    json::object rule{{"service", "compute"}, {"path", "/" + std::string(len - 1, 'p')}, {"method", "GET"}};
    d.send(r,
           json::serialize(json::object{{"application_credential",
                                         json::object{{"name", "bi-ac-path-" + std::to_string(++n)},
                                                      {"access_rules", json::array{rule}}}}}),
           len > 128, "access rule path of " + std::to_string(len) + " characters");
  }
  // The column holds 128 characters: that much is stored.
  auto rules = c.call("GET", "/v3/users/" + admin_id + "/access_rules", admin);
  ASSERT_EQ(rules.status, 200) << rules.raw;
  bool stored = false;
  for (auto& rule : rules.body.at("access_rules").as_array())
    stored |= rule.as_object().at("path").as_string().size() == 128;
  EXPECT_TRUE(stored) << rules.raw;
  for (std::string e : {"yesterday", "2000-01-01T00:00:00Z", "2999-13-45T99:99:99Z", "2999-01-01T00:00:00+99:99", "",
                        "9999999999-01-01T00:00:00Z", "2099-01-01T00:00:00.0000000000000000000000000000000000000001Z",
                        "2099-01-01T00:00:00+05:30", "2099-01-01", "2099-01-01T00:00:00Zjunk"}) {
    d.send(r,
           json::serialize(json::object{
               {"application_credential",
                json::object{{"name", "bi-ac-exp-" + std::to_string(++n)}, {"expires_at", e}}}}),
           false, "expires_at " + e);
  }
  // A timestamp too long for the column is kept in canonical form.
  auto long_expiry = d.send(r, json::serialize(json::object{{"application_credential",
                                                             json::object{{"name", "bi-ac-long-expiry"},
                                                                          {"expires_at",
                                                                           "2099-01-01T00:00:00.000000000000000000000"
                                                                           "00000000000000000001Z"}}}}),
                            false, "long expires_at");
  EXPECT_EQ(long_expiry.status, 201) << long_expiry.raw;
  if (auto* e = find(long_expiry.body, "application_credential"); e && e->is_object()) {
    EXPECT_EQ(string_or(e->as_object(), "expires_at"), "2099-01-01T00:00:00.000000Z");
  }
}

TEST_F(BadInput, Trusts) {
  auto trustee = make_user();
  auto d = driver();
  json::object t{{"trustor_user_id", admin_id},
                 {"trustee_user_id", trustee},
                 {"project_id", admin_project},
                 {"impersonation", false},
                 {"roles", json::array{json::object{{"name", "member"}}}},
                 {"remaining_uses", 3},
                 {"expires_at", "2099-01-01T00:00:00Z"}};
  d.drive(RouteSpec{"POST", "/v3/OS-TRUST/trusts", "trust", t,
                    fields({{"trustor_user_id", Kind::Str},
                            {"trustee_user_id", Kind::Str},
                            {"project_id", Kind::Str},
                            {"impersonation", Kind::Bool},
                            {"roles", Kind::ObjArr},
                            {"roles.0.name", Kind::Str},
                            {"remaining_uses", Kind::Int},
                            {"expires_at", Kind::Str}})});
  t.erase("remaining_uses");
  t["allow_redelegation"] = true;
  t["redelegation_count"] = 2;
  t["roles"] = json::array{json::object{{"id", admin_role}}};
  d.drive(RouteSpec{"POST", "/v3/OS-TRUST/trusts", "trust", t,
                    fields({{"allow_redelegation", Kind::Bool},
                            {"redelegation_count", Kind::Int},
                            {"roles.0.id", Kind::Str}})});
}

// ------------------------------------------------------------------------------- query strings

TEST_F(BadInput, QueryStrings) {
  auto user = make_user();
  auto group = make_group();
  auto project = make_project();
  std::vector<std::string> paths{
      "/v3/domains?enabled=maybe",
      "/v3/domains?enabled=&enabled=1&limit=abc",
      "/v3/projects?enabled=maybe&is_domain=xyz",
      "/v3/projects?is_domain",
      "/v3/projects?tags=,,,&tags-any=&not-tags=%2C&not-tags-any=,a,",
      "/v3/projects?limit=abc&marker=nope&sort_key=%00",
      "/v3/projects?name=%ZZ",
      "/v3/projects?name=%C3%28",
      "/v3/projects?parent_id=" + std::string(5000, 'p'),
      "/v3/users?enabled=maybe&limit=-1",
      "/v3/users?name=%00&domain_id=%FF",
      "/v3/groups?limit=abc&marker=zz",
      "/v3/roles?domain_id=&limit=99999999999999999999999",
      "/v3/roles?name=" + std::string(5000, 'r'),
      "/v3/role_assignments?effective=xyz",
      "/v3/role_assignments?effective=maybe&include_names=abc",
      "/v3/role_assignments?include_subtree=maybe",
      "/v3/role_assignments?include_subtree=1&scope.project.id=nope",
      "/v3/role_assignments?scope.project.id=nope&effective",
      "/v3/role_assignments?scope.project.id=" + project + "&include_subtree=yes&effective=1&include_names=1",
      "/v3/role_assignments?scope.OS-INHERIT:inherited_to=xyz&effective",
      "/v3/role_assignments?scope.system=maybe&user.id=" + user,
      "/v3/role_assignments?user.id=&group.id=&role.id=",
      "/v3/role_assignments?group.id=" + group + "&effective",
      "/v3/role_assignments?scope.domain.id=default&scope.project.id=" + project,
      "/v3/users/" + user + "/projects?enabled=maybe",
      "/v3/users/" + user + "/groups?limit=abc",
      "/v3/groups/" + group + "/users?enabled=maybe",
      "/v3/regions?parent_region_id=%00",
      "/v3/services?type=&name=&enabled=maybe",
      "/v3/endpoints?interface=bogus&service_id=&region_id=%FF",
      "/v3/credentials?user_id=&type=%00",
      "/v3/registered_limits?service_id=zz&limit=abc",
      "/v3/limits?project_id=x&domain_id=y",
      "/v3/OS-EP-FILTER/endpoint_groups?name=%00",
      "/v3/policies?type=&limit=abc",
      "/v3/OS-OAUTH1/consumers?limit=abc",
      "/v3/OS-TRUST/trusts?trustor_user_id=&trustee_user_id=" + user,
      "/v3/OS-TRUST/trusts?trustor_user_id=nope",
      "/v3/users/" + admin_id + "/application_credentials?name=%00",
      "/v3/users/" + admin_id + "/access_rules?method=XYZ&service=&path=%FF",
      "/v3/auth/projects?limit=abc",
      "/v3/auth/domains?enabled=maybe",
      "/v3/auth/catalog?nocatalog=xyz",
      "/v3/roles?limit=abc",
      "/v3/role_inferences?limit=abc",
  };
  for (auto& p : paths) {
    auto r = c.call("GET", p, admin);
    check_reply(r, false, "GET " + excerpt(p, 200));
  }
  // Text that is not UTF-8 in a path parameter or query value is refused (PostgreSQL would fail on it);
  // well-formed multi-byte characters are not.
  for (std::string p : {"/v3/projects?name=%C3%28", "/v3/users?domain_id=%FF", "/v3/endpoints?region_id=%C0%AF",
                        "/v3/roles?name=%ED%A0%80", "/v3/groups?%FF=1", "/v3/users/%FF", "/v3/projects/%F4%90%80%80",
                        "/v3/credentials/%E2%82", "/v3/limits/%80abc"}) {
    auto r = c.call("GET", p, admin);
    EXPECT_EQ(r.status, 400) << p << " -> " << r.raw;
    check_reply(r, true, "GET " + p);
  }
  for (std::string p : {"/v3/projects?name=caf%C3%A9", "/v3/users?name=%F0%9F%98%80", "/v3/roles?name=%E2%82%AC"})
    EXPECT_EQ(c.call("GET", p, admin).status, 200) << p;
  EXPECT_EQ(c.call("GET", "/v3/users/%E2%82%AC", admin).status, 404);
  check_reply(c.call("PUT", "/v3/projects/" + project + "/tags/%C3%28", admin), true, "PUT tag %C3%28");
  EXPECT_EQ(c.call("PUT", "/v3/projects/" + project + "/tags/caf%C3%A9", admin).status, 201);

  // Token validation with junk flags and subject tokens.
  for (std::string q : {"?nocatalog=xyz", "?allow_expired=abc", "?allow_expired=1&nocatalog", "?nocatalog=%00"}) {
    for (auto& subject : {admin, std::string("junk"), std::string(5000, 'g'), std::string("gAAAAA%%%")}) {
      for (std::string method : {"GET", "HEAD"}) {
        auto r = c.call(method, "/v3/auth/tokens" + q, admin, "", {{"X-Subject-Token", subject}});
        EXPECT_LT(r.status, 500) << method << " /v3/auth/tokens" << q << " subject=" << excerpt(subject, 40);
        if (method == "GET" && r.status >= 400) expect_error_shape(r, "GET /v3/auth/tokens" + q);
      }
    }
  }
  auto r = c.call("POST", "/v3/auth/tokens?nocatalog=maybe", "", Cloud::password_auth("admin", kPassword, "admin"));
  EXPECT_EQ(r.status, 201) << r.raw;
  // Still healthy.
  EXPECT_EQ(c.call("GET", "/v3/users", admin).status, 200);
}
