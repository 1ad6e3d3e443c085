// Domains, projects (and project tags), users and groups: /v3/domains, /v3/projects, /v3/users, /v3/groups.
#include "identity/api/common.hpp"

#include "common/ids.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

namespace nubo::identity::api {

namespace {

using Strings = std::vector<std::string>;

// ---------------------------------------------------------------- small helpers

std::string str_of(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool is_domain_row(const json::object& row) {
  auto* v = find(row, "is_domain");
  return v && v->is_bool() && v->as_bool();
}

bool enabled_of(const json::object& row) {
  auto* v = find(row, "enabled");
  return !v || !v->is_bool() || v->as_bool();
}

Strings ids_of(const std::vector<json::object>& rows, const char* column = "id") {
  Strings out;
  for (auto& r : rows) out.push_back(str_of(r, column));
  return out;
}

// The domain new users, groups and projects land in when none is given: the caller's token project's domain,
// else the caller's domain scope, else the configured default domain.
std::string caller_domain(const Context& ctx, const IdentityService& s) {
  if (ctx.auth) {
    if (!ctx.auth->project_domain_id.empty()) return ctx.auth->project_domain_id;
    if (!ctx.auth->domain_id.empty()) return ctx.auth->domain_id;
  }
  return s.settings().default_domain_id;
}

// An optional string-or-null field; BadRequest for any other type.
std::optional<std::string> nullable_string(const json::object& o, const char* field, size_t max_length = 255) {
  return optional_string(o, field, max_length);
}

// Fields of a request body that are not in `reserved`: Keystone keeps them as extra attributes.
json::object extras(const json::object& body, const std::vector<std::string_view>& reserved) {
  json::object out;
  for (auto& kv : body) {
    std::string_view k = kv.key();
    if (std::find(reserved.begin(), reserved.end(), k) != reserved.end()) continue;
    out[k] = kv.value();
  }
  return out;
}

const std::vector<std::string_view> kProjectFields = {
    "id", "name", "description", "enabled", "is_domain", "domain_id", "parent_id", "tags", "options", "links", "extra"};
const std::vector<std::string_view> kUserFields = {
    "id",           "name",           "domain_id",         "enabled",          "default_project_id",
    "password",     "options",        "links",             "password_expires_at", "created_at",
    "last_active_at", "failed_auth_count", "failed_auth_at", "extra",            "original_password"};
const std::vector<std::string_view> kGroupFields = {"id",    "name",  "domain_id", "description",
                                                              "links", "extra", "membership_expires_at"};

std::string conflict_message(const std::string& kind) {
  return "Conflict occurred attempting to store " + kind + " - Duplicate entry.";
}

// A domain row read inside a transaction (404 when missing or not a domain).
json::object domain_in(soci::session& ss, const std::string& id) {
  auto row = db::get(ss, st::project, id);
  if (!row || !is_domain_row(*row)) throw NotFound("Could not find domain: " + id + ".");
  return std::move(*row);
}

// True when another row of `table` in `domain_id` has this name (excluding `self`).
bool name_taken(soci::session& ss, const db::Table& table, const std::string& domain_id, const std::string& name,
                const std::string& self = {}) {
  for (auto& r : db::select(ss, table, db::Query{}.eq("domain_id", domain_id).eq("name", name)))
    if (str_of(r, "id") != self) return true;
  return false;
}

// ---------------------------------------------------------------- tags

void check_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 255)
    throw BadRequest("Invalid input for field 'tags': a tag must be between 1 and 255 characters long.");
  if (tag.find('/') != std::string::npos || tag.find(',') != std::string::npos)
    throw BadRequest("Invalid input for field 'tags': a tag cannot contain the characters '/' or ','.");
}

Strings parse_tags(const json::value& v) {
  if (!v.is_array()) throw BadRequest("Invalid input for field 'tags': must be a list of strings.");
  Strings out;
  std::set<std::string> seen;
  for (auto& t : v.as_array()) {
    if (!t.is_string()) throw BadRequest("Invalid input for field 'tags': each tag must be a string.");
    std::string tag(t.as_string());
    check_tag(tag);
    if (!seen.insert(tag).second) throw BadRequest("Invalid input for field 'tags': duplicate tag '" + tag + "'.");
    out.push_back(std::move(tag));
  }
  if (out.size() > 80) throw BadRequest("Invalid input for field 'tags': a project may have at most 80 tags.");
  return out;
}

Strings tags_in(soci::session& ss, const std::string& project_id) {
  db::Query q;
  q.eq("project_id", project_id);
  q.order_by = "name";
  return ids_of(db::select(ss, st::project_tag, q), "name");
}

void replace_tags(soci::session& ss, const std::string& project_id, const Strings& tags) {
  db::remove(ss, st::project_tag, db::Query{}.eq("project_id", project_id));
  for (auto& t : tags) db::insert(ss, st::project_tag, json::object{{"project_id", project_id}, {"name", t}});
}

// Comma-separated query values (tags=a,b).
Strings split_commas(const std::string& s) {
  Strings out;
  size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// ---------------------------------------------------------------- cascades (inside a write transaction)

void purge_projects(soci::session& ss, const Strings& ids) {
  if (ids.empty()) return;
  db::remove(ss, st::project_tag, db::Query{}.in("project_id", ids));
  db::remove(ss, st::assignment, db::Query{}.in("target_id", ids));
  db::remove(ss, st::credential, db::Query{}.in("project_id", ids));
  db::remove(ss, st::trust, db::Query{}.in("project_id", ids));
  db::remove(ss, st::application_credential, db::Query{}.in("project_id", ids));
  db::remove(ss, st::limit, db::Query{}.in("project_id", ids));
  db::remove(ss, st::project, db::Query{}.in("id", ids));
}

void purge_users(soci::session& ss, const Strings& ids) {
  if (ids.empty()) return;
  db::remove(ss, st::password, db::Query{}.in("user_id", ids));
  db::remove(ss, st::user_group, db::Query{}.in("user_id", ids));
  db::remove(ss, st::assignment, db::Query{}.in("actor_id", ids));
  db::remove(ss, st::application_credential, db::Query{}.in("user_id", ids));
  db::remove(ss, st::access_rule, db::Query{}.in("user_id", ids));
  db::remove(ss, st::credential, db::Query{}.in("user_id", ids));
  db::remove(ss, st::trust, db::Query{}.in("trustor_user_id", ids));
  db::remove(ss, st::trust, db::Query{}.in("trustee_user_id", ids));
  db::remove(ss, st::user, db::Query{}.in("id", ids));
}

void purge_groups(soci::session& ss, const Strings& ids) {
  if (ids.empty()) return;
  db::remove(ss, st::user_group, db::Query{}.in("group_id", ids));
  db::remove(ss, st::assignment, db::Query{}.in("actor_id", ids));
  db::remove(ss, st::group, db::Query{}.in("id", ids));
}

// Deletes a domain and everything in it; returns the ids of the users and projects removed.
std::pair<Strings, Strings> purge_domain(soci::session& ss, const std::string& domain_id) {
  auto projects = ids_of(db::select(ss, st::project, db::Query{}.eq("domain_id", domain_id).eq("is_domain", "0")));
  purge_projects(ss, projects);
  auto users = ids_of(db::select(ss, st::user, db::Query{}.eq("domain_id", domain_id)));
  purge_users(ss, users);
  purge_groups(ss, ids_of(db::select(ss, st::group, db::Query{}.eq("domain_id", domain_id))));
  auto roles = ids_of(db::select(ss, st::role, db::Query{}.eq("domain_id", domain_id)));
  if (!roles.empty()) {
    db::remove(ss, st::implied_role, db::Query{}.in("prior_role_id", roles));
    db::remove(ss, st::implied_role, db::Query{}.in("implied_role_id", roles));
    db::remove(ss, st::assignment, db::Query{}.in("role_id", roles));
    db::remove(ss, st::role, db::Query{}.in("id", roles));
  }
  db::remove_id(ss, st::domain_config, domain_id);
  db::remove(ss, st::assignment, db::Query{}.eq("target_id", domain_id));
  db::remove(ss, st::limit, db::Query{}.eq("domain_id", domain_id));
  db::remove_id(ss, st::project, domain_id);
  return {std::move(users), std::move(projects)};
}

void revoke_purged(IdentityService& s, const std::string& domain_id, const std::pair<Strings, Strings>& purged) {
  s.revoke("", "", domain_id);
  for (auto& u : purged.first) s.revoke(u);
  for (auto& p : purged.second) s.revoke("", p);
}

// ---------------------------------------------------------------- views

json::object group_view(const IdentityService& s, const json::object& row) {
  json::object g;
  for (auto& kv : row) g[kv.key()] = kv.value();
  if (!g["description"].is_string()) g["description"] = "";
  g["links"] = json::object{{"self", s.link("groups/" + str_of(row, "id"))}};
  return g;
}

// ---------------------------------------------------------------- domains

void add_domain_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/domains",
      [&s](Context& ctx) -> http::Response {
        auto d = entity(ctx, "domain");
        auto name = required_string(d, "name", 64);
        auto description = optional_string(d, "description").value_or("");
        bool enabled = optional_bool(d, "enabled").value_or(true);
        auto explicit_id = optional_string(d, "id", 64);
        std::string id = explicit_id && !explicit_id->empty() ? *explicit_id : uuid4_hex();
        json::object row;
        s.write([&](soci::session& ss) {
          if (db::get(ss, st::project, id) || name_taken(ss, st::project, st::kRootDomain, name))
            throw Conflict(conflict_message("domain"));
          db::insert(ss, st::project,
                     json::object{{"id", id},
                                  {"name", name},
                                  {"domain_id", st::kRootDomain},
                                  {"parent_id", nullptr},
                                  {"is_domain", true},
                                  {"enabled", enabled},
                                  {"description", description}});
          row = *db::get(ss, st::project, id);
        });
        return created(json::object{{"domain", domain_view(s, row)}});
      },
      "identity:create_domain"});

  routes.push_back(Route{
      "GET", "/v3/domains",
      [&s](Context& ctx) -> http::Response {
        db::Query q;
        q.eq("domain_id", st::kRootDomain).eq("is_domain", "1");
        if (auto name = ctx.request.query_param("name")) q.eq("name", *name);
        if (auto e = query_bool(ctx, "enabled")) q.eq("enabled", *e ? "1" : "0");
        json::array out;
        for (auto& r : s.list(st::project, q)) out.push_back(domain_view(s, r));
        return ok(collection(s, "domains", std::move(out), "domains"));
      },
      "identity:list_domains"});

  routes.push_back(Route{
      "GET", "/v3/domains/{domain_id}",
      [&s](Context& ctx) -> http::Response {
        return ok(json::object{{"domain", domain_view(s, load_domain(s, ctx.param("domain_id")))}});
      },
      "identity:get_domain"});

  routes.push_back(Route{
      "PATCH", "/v3/domains/{domain_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("domain_id");
        auto d = entity(ctx, "domain");
        reject_readonly(d, {"id"}, id);
        json::object fields;
        std::optional<std::string> name;
        if (find(d, "name")) fields["name"] = *(name = required_string(d, "name", 64));
        if (find(d, "description")) fields["description"] = optional_string(d, "description").value_or("");
        auto enabled = optional_bool(d, "enabled");
        if (enabled) fields["enabled"] = *enabled;
        json::object row;
        bool was_enabled = true;
        s.write([&](soci::session& ss) {
          auto cur = domain_in(ss, id);
          was_enabled = enabled_of(cur);
          if (name && name_taken(ss, st::project, st::kRootDomain, *name, id))
            throw Conflict(conflict_message("domain"));
          db::update(ss, st::project, id, fields);
          row = *db::get(ss, st::project, id);
        });
        if (was_enabled && enabled && !*enabled) s.revoke("", "", id);
        return ok(json::object{{"domain", domain_view(s, row)}});
      },
      "identity:update_domain"});

  routes.push_back(Route{
      "DELETE", "/v3/domains/{domain_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("domain_id");
        std::pair<Strings, Strings> purged;
        s.write([&](soci::session& ss) {
          auto cur = domain_in(ss, id);
          if (enabled_of(cur)) throw Forbidden("Cannot delete a domain that is enabled, please disable it first.");
          purged = purge_domain(ss, id);
        });
        revoke_purged(s, id, purged);
        return no_content();
      },
      "identity:delete_domain"});
}

// ---------------------------------------------------------------- projects

void add_project_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/projects",
      [&s](Context& ctx) -> http::Response {
        auto p = entity(ctx, "project");
        auto name = required_string(p, "name", 64);
        auto description = optional_string(p, "description").value_or("");
        bool enabled = optional_bool(p, "enabled").value_or(true);
        bool is_domain = optional_bool(p, "is_domain").value_or(false);
        auto domain_id = nullable_string(p, "domain_id", 64);
        auto parent_id = nullable_string(p, "parent_id", 64);
        Strings tags;
        if (auto* t = find(p, "tags"); t && !t->is_null()) tags = parse_tags(*t);
        auto extra = extras(p, kProjectFields);
        std::string id = uuid4_hex();
        std::string fallback_domain = caller_domain(ctx, s);
        json::object row;
        s.write([&](soci::session& ss) {
          json::object r = extra;
          r["id"] = id;
          r["name"] = name;
          r["description"] = description;
          r["enabled"] = enabled;
          if (is_domain) {
            if (parent_id) throw BadRequest("only root projects are allowed to act as domains.");
            if (name_taken(ss, st::project, st::kRootDomain, name)) throw Conflict(conflict_message("project"));
            r["domain_id"] = st::kRootDomain;
            r["parent_id"] = nullptr;
            r["is_domain"] = true;
          } else {
            std::string d, parent;
            if (parent_id) {
              auto pr = db::get(ss, st::project, *parent_id);
              if (!pr) throw NotFound("Could not find project: " + *parent_id + ".");
              d = is_domain_row(*pr) ? *parent_id : str_of(*pr, "domain_id");
              if (domain_id && *domain_id != d)
                throw BadRequest("Cannot create project, since it specifies its domain_id " + *domain_id +
                                 ", but specifies a parent in a different domain (" + d + ").");
              parent = *parent_id;
            } else {
              d = domain_id ? *domain_id : fallback_domain;
              parent = d;
            }
            domain_in(ss, d);
            if (name_taken(ss, st::project, d, name)) throw Conflict(conflict_message("project"));
            r["domain_id"] = d;
            r["parent_id"] = parent;
            r["is_domain"] = false;
          }
          db::insert(ss, st::project, r);
          replace_tags(ss, id, tags);
          row = *db::get(ss, st::project, id);
          tags = tags_in(ss, id);
        });
        return created(json::object{{"project", project_view(s, row, tags)}});
      },
      "identity:create_project"});

  routes.push_back(Route{
      "GET", "/v3/projects",
      [&s](Context& ctx) -> http::Response {
        db::Query q;
        q.eq("is_domain", query_bool(ctx, "is_domain").value_or(false) ? "1" : "0");
        for (const char* k : {"name", "domain_id", "parent_id"})
          if (auto v = ctx.request.query_param(k)) q.eq(k, *v);
        if (auto e = query_bool(ctx, "enabled")) q.eq("enabled", *e ? "1" : "0");
        std::vector<json::object> rows;
        std::map<std::string, Strings> tags;
        s.read([&](soci::session& ss) {
          rows = db::select(ss, st::project, q);
          db::Query tq;
          tq.order_by = "name";
          for (auto& t : db::select(ss, st::project_tag, tq))
            tags[str_of(t, "project_id")].push_back(str_of(t, "name"));
        });
        // Tag filters: tags (all of), tags-any (any of), not-tags (not all of), not-tags-any (none of).
        auto tag_filter = [&](const char* param) -> std::optional<Strings> {
          auto v = ctx.request.query_param(param);
          if (!v) return std::nullopt;
          return split_commas(*v);
        };
        auto all_tags = tag_filter("tags"), any_tags = tag_filter("tags-any"), not_tags = tag_filter("not-tags"),
             not_any_tags = tag_filter("not-tags-any");
        json::array out;
        for (auto& r : rows) {
          auto id = str_of(r, "id");
          auto& have = tags[id];
          auto has = [&](const std::string& t) { return std::find(have.begin(), have.end(), t) != have.end(); };
          auto count_has = [&](const Strings& want) {
            return static_cast<size_t>(std::count_if(want.begin(), want.end(), has));
          };
          if (all_tags && count_has(*all_tags) != all_tags->size()) continue;
          if (any_tags && count_has(*any_tags) == 0) continue;
          if (not_tags && !not_tags->empty() && count_has(*not_tags) == not_tags->size()) continue;
          if (not_any_tags && count_has(*not_any_tags) > 0) continue;
          out.push_back(project_view(s, r, have));
        }
        return ok(collection(s, "projects", std::move(out), "projects"));
      },
      "identity:list_projects"});

  routes.push_back(Route{
      "GET", "/v3/projects/{project_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto row = load_project(s, id);
        return ok(json::object{{"project", project_view(s, row, project_tags(s, id))}});
      },
      "identity:get_project"});

  routes.push_back(Route{
      "PATCH", "/v3/projects/{project_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto p = entity(ctx, "project");
        reject_readonly(p, {"id"}, id);
        json::object fields = extras(p, kProjectFields);
        std::optional<std::string> name;
        if (find(p, "name")) fields["name"] = *(name = required_string(p, "name", 64));
        if (find(p, "description")) fields["description"] = optional_string(p, "description").value_or("");
        auto enabled = optional_bool(p, "enabled");
        if (enabled) fields["enabled"] = *enabled;
        std::optional<Strings> tags;
        if (auto* t = find(p, "tags")) tags = t->is_null() ? Strings{} : parse_tags(*t);
        json::object row;
        Strings current_tags;
        bool was_enabled = true, dom = false;
        s.write([&](soci::session& ss) {
          auto cur = db::get(ss, st::project, id);
          if (!cur) throw NotFound("Could not find project: " + id + ".");
          dom = is_domain_row(*cur);
          was_enabled = enabled_of(*cur);
          auto shown = [&](const char* k) {  // domain_id and parent_id as rendered
            return dom ? json::value(nullptr) : (*cur)[k];
          };
          if (auto* v = find(p, "domain_id"); v && *v != shown("domain_id") && *v != (*cur)["domain_id"])
            throw BadRequest("Cannot update the domain_id of a project.");
          if (auto* v = find(p, "parent_id"); v && *v != shown("parent_id") && *v != (*cur)["parent_id"])
            throw Forbidden("Update of `parent_id` is not allowed.");
          if (auto* v = find(p, "is_domain"); v && (!v->is_bool() || v->as_bool() != dom))
            throw BadRequest("Update of `is_domain` is not allowed.");
          if (name && name_taken(ss, st::project, str_of(*cur, "domain_id"), *name, id))
            throw Conflict(conflict_message("project"));
          db::update(ss, st::project, id, fields);
          if (tags) replace_tags(ss, id, *tags);
          row = *db::get(ss, st::project, id);
          current_tags = tags_in(ss, id);
        });
        if (was_enabled && enabled && !*enabled) {
          if (dom)
            s.revoke("", "", id);
          else
            s.revoke("", id);
        }
        return ok(json::object{{"project", project_view(s, row, current_tags)}});
      },
      "identity:update_project"});

  routes.push_back(Route{
      "DELETE", "/v3/projects/{project_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        bool dom = false;
        std::pair<Strings, Strings> purged;
        s.write([&](soci::session& ss) {
          auto cur = db::get(ss, st::project, id);
          if (!cur) throw NotFound("Could not find project: " + id + ".");
          dom = is_domain_row(*cur);
          if (dom) {
            if (enabled_of(*cur))
              throw BadRequest("cannot delete an enabled project acting as a domain. Please disable the project " +
                               id + " first.");
            purged = purge_domain(ss, id);
            return;
          }
          if (db::count(ss, st::project, db::Query{}.eq("parent_id", id)) > 0)
            throw Forbidden("Cannot delete the project " + id +
                            " since it is not a leaf in the hierarchy. Use the cascade option if you want to delete "
                            "a whole subtree.");
          purge_projects(ss, {id});
        });
        if (dom)
          revoke_purged(s, id, purged);
        else
          s.revoke("", id);
        return no_content();
      },
      "identity:delete_project"});

  // Project tags
  auto tags_body = [&s](const std::string& id, const Strings& tags) {
    json::array a;
    for (auto& t : tags) a.emplace_back(t);
    return json::object{{"tags", std::move(a)}, {"links", json::object{{"self", s.link("projects/" + id + "/tags")}}}};
  };

  routes.push_back(Route{
      "GET", "/v3/projects/{project_id}/tags",
      [&s, tags_body](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        load_project(s, id);
        return ok(tags_body(id, project_tags(s, id)));
      },
      "identity:list_project_tags"});

  routes.push_back(Route{
      "PUT", "/v3/projects/{project_id}/tags",
      [&s, tags_body](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto body = ctx.body();
        auto* t = find(body, "tags");
        if (!t) throw BadRequest("Invalid input for field 'tags': 'tags' is a required property.");
        auto tags = parse_tags(*t);
        Strings out;
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::project, id)) throw NotFound("Could not find project: " + id + ".");
          replace_tags(ss, id, tags);
          out = tags_in(ss, id);
        });
        return ok(tags_body(id, out));
      },
      "identity:update_project_tags"});

  routes.push_back(Route{
      "DELETE", "/v3/projects/{project_id}/tags",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::project, id)) throw NotFound("Could not find project: " + id + ".");
          replace_tags(ss, id, {});
        });
        return no_content();
      },
      "identity:delete_project_tags"});

  routes.push_back(Route{
      "GET", "/v3/projects/{project_id}/tags/{tag}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto tag = ctx.param("tag");
        load_project(s, id);
        auto tags = project_tags(s, id);
        if (std::find(tags.begin(), tags.end(), tag) == tags.end())
          throw NotFound("Could not find project tag: " + tag + ".");
        return no_content();
      },
      "identity:get_project_tag"});

  routes.push_back(Route{
      "PUT", "/v3/projects/{project_id}/tags/{tag}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto tag = ctx.param("tag");
        check_tag(tag);
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::project, id)) throw NotFound("Could not find project: " + id + ".");
          auto tags = tags_in(ss, id);
          if (std::find(tags.begin(), tags.end(), tag) != tags.end()) return;
          if (tags.size() >= 80) throw BadRequest("Invalid input for field 'tags': a project may have at most 80 tags.");
          db::insert(ss, st::project_tag, json::object{{"project_id", id}, {"name", tag}});
        });
        auto r = empty_response(201);
        r.headers.set("Location", s.link("projects/" + id + "/tags/" + http::percent_encode(tag)));
        return r;
      },
      "identity:create_project_tag"});

  routes.push_back(Route{
      "DELETE", "/v3/projects/{project_id}/tags/{tag}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("project_id");
        auto tag = ctx.param("tag");
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::project, id)) throw NotFound("Could not find project: " + id + ".");
          if (db::remove(ss, st::project_tag, db::Query{}.eq("project_id", id).eq("name", tag)) == 0)
            throw NotFound("Could not find project tag: " + tag + ".");
        });
        return no_content();
      },
      "identity:delete_project_tag"});
}

// ---------------------------------------------------------------- users

void add_user_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/users",
      [&s](Context& ctx) -> http::Response {
        auto u = entity(ctx, "user");
        auto name = required_string(u, "name", 255);
        auto domain_id = nullable_string(u, "domain_id", 64).value_or(caller_domain(ctx, s));
        bool enabled = optional_bool(u, "enabled").value_or(true);
        auto password = optional_string(u, "password", 4096);
        auto default_project = nullable_string(u, "default_project_id", 64);
        json::value options = json::object{};
        if (auto* o = find(u, "options"); o && !o->is_null()) {
          if (!o->is_object()) throw BadRequest("Invalid input for field 'options': must be an object.");
          options = *o;
        }
        json::object r = extras(u, kUserFields);
        std::string id = uuid4_hex();
        r["id"] = id;
        r["name"] = name;
        r["domain_id"] = domain_id;
        r["enabled"] = enabled;
        r["default_project_id"] = default_project ? json::value(*default_project) : json::value(nullptr);
        r["created_at"] = iso8601(s.now());
        r["last_active_at"] = nullptr;
        r["failed_auth_count"] = 0;
        r["failed_auth_at"] = nullptr;
        r["options"] = options;
        s.write([&](soci::session& ss) {
          domain_in(ss, domain_id);
          if (name_taken(ss, st::user, domain_id, name)) throw Conflict(conflict_message("user"));
          db::insert(ss, st::user, r);
        });
        if (password) s.set_password(id, *password, false);
        return created(json::object{{"user", user_view(s, load_user(s, id))}});
      },
      "identity:create_user"});

  routes.push_back(Route{
      "GET", "/v3/users",
      [&s](Context& ctx) -> http::Response {
        db::Query q;
        for (const char* k : {"name", "domain_id"})
          if (auto v = ctx.request.query_param(k)) q.eq(k, *v);
        if (auto e = query_bool(ctx, "enabled")) q.eq("enabled", *e ? "1" : "0");
        json::array out;
        for (auto& r : s.list(st::user, q)) out.push_back(user_view(s, r));
        return ok(collection(s, "users", std::move(out), "users"));
      },
      "identity:list_users"});

  routes.push_back(Route{
      "GET", "/v3/users/{user_id}",
      [&s](Context& ctx) -> http::Response {
        return ok(json::object{{"user", user_view(s, load_user(s, ctx.param("user_id")))}});
      },
      "identity:get_user"});

  routes.push_back(Route{
      "PATCH", "/v3/users/{user_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("user_id");
        auto u = entity(ctx, "user");
        reject_readonly(u, {"id"}, id);
        json::object fields = extras(u, kUserFields);
        std::optional<std::string> name;
        if (find(u, "name")) fields["name"] = *(name = required_string(u, "name", 255));
        auto enabled = optional_bool(u, "enabled");
        if (enabled) fields["enabled"] = *enabled;
        if (find(u, "default_project_id")) {
          auto dp = nullable_string(u, "default_project_id", 64);
          fields["default_project_id"] = dp ? json::value(*dp) : json::value(nullptr);
        }
        std::optional<json::object> options;
        if (auto* o = find(u, "options"); o && !o->is_null()) {
          if (!o->is_object()) throw BadRequest("Invalid input for field 'options': must be an object.");
          options = o->as_object();
        }
        auto password = optional_string(u, "password", 4096);
        bool was_enabled = true;
        s.write([&](soci::session& ss) {
          auto cur = db::get(ss, st::user, id);
          if (!cur) throw NotFound("Could not find user: " + id + ".");
          was_enabled = enabled_of(*cur);
          auto domain_id = str_of(*cur, "domain_id");
          if (auto* v = find(u, "domain_id"); v && !(v->is_string() && v->as_string() == domain_id))
            throw BadRequest("Cannot change the domain_id of a user.");
          if (name && name_taken(ss, st::user, domain_id, *name, id)) throw Conflict(conflict_message("user"));
          if (options) {
            json::object merged = (*cur)["options"].is_object() ? (*cur)["options"].as_object() : json::object{};
            for (auto& kv : *options) {
              if (kv.value().is_null())
                merged.erase(kv.key());
              else
                merged[kv.key()] = kv.value();
            }
            fields["options"] = std::move(merged);
          }
          db::update(ss, st::user, id, fields);
        });
        if (password) s.set_password(id, *password, false);
        if (password || (was_enabled && enabled && !*enabled)) s.revoke(id);
        return ok(json::object{{"user", user_view(s, load_user(s, id))}});
      },
      "identity:update_user"});

  routes.push_back(Route{
      "DELETE", "/v3/users/{user_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("user_id");
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::user, id)) throw NotFound("Could not find user: " + id + ".");
          purge_users(ss, {id});
        });
        s.revoke(id);
        return no_content();
      },
      "identity:delete_user"});

  routes.push_back(Route{
      "POST", "/v3/users/{user_id}/password",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("user_id");
        auto u = entity(ctx, "user");
        auto original = optional_string(u, "original_password", 4096);
        if (!original)
          throw BadRequest("Invalid input for field 'original_password': 'original_password' is a required property.");
        auto password = required_string(u, "password", 4096);
        auto user = load_user(s, id);
        std::optional<json::object> current;
        s.read([&](soci::session& ss) {
          db::Query q;
          q.eq("user_id", id);
          q.order_by = "created_at_us";
          q.descending = true;
          q.limit = 1;
          auto rows = db::select(ss, st::password, q);
          if (!rows.empty()) current = std::move(rows.front());
        });
        if (!enabled_of(user) || !current ||
            !s.verify_secret(*original, str_of(*current, "password_hash")))
          throw Unauthorized("The request you have made requires authentication.");
        s.check_password_change(id, password);
        s.set_password(id, password, true);
        s.revoke(id);
        return no_content();
      },
      "identity:change_password"});

  routes.push_back(Route{
      "GET", "/v3/users/{user_id}/groups",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("user_id");
        load_user(s, id);
        std::vector<json::object> rows;
        s.read([&](soci::session& ss) {
          auto gids = ids_of(db::select(ss, st::user_group, db::Query{}.eq("user_id", id)), "group_id");
          db::Query q;
          q.in("id", gids);
          for (const char* k : {"name", "domain_id"})
            if (auto v = ctx.request.query_param(k)) q.eq(k, *v);
          rows = db::select(ss, st::group, q);
        });
        json::array out;
        for (auto& r : rows) {
          auto g = group_view(s, r);
          g["membership_expires_at"] = nullptr;
          out.push_back(std::move(g));
        }
        return ok(collection(s, "groups", std::move(out), "users/" + id + "/groups"));
      },
      "identity:list_groups_for_user"});

  routes.push_back(Route{
      "GET", "/v3/users/{user_id}/projects",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("user_id");
        load_user(s, id);
        Strings actors = s.user_group_ids(id);
        actors.push_back(id);
        std::set<std::string> project_ids;
        Strings inherited_from;  // projects whose subtree the user reaches through inherited grants
        s.read([&](soci::session& ss) {
          for (auto& a : db::select(ss, st::assignment, db::Query{}.in("actor_id", actors))) {
            auto type = str_of(a, "type"), target = str_of(a, "target_id");
            bool inherited = a["inherited"].is_bool() && a["inherited"].as_bool();
            if (type == "UserProject" || type == "GroupProject") {
              if (inherited)
                inherited_from.push_back(target);
              else
                project_ids.insert(target);
            } else if ((type == "UserDomain" || type == "GroupDomain") && inherited) {
              for (auto& p : db::select(ss, st::project, db::Query{}.eq("domain_id", target).eq("is_domain", "0")))
                project_ids.insert(str_of(p, "id"));
            }
          }
        });
        for (auto& p : inherited_from)
          for (auto& d : s.project_descendants(p)) project_ids.insert(d);
        auto name = ctx.request.query_param("name");
        auto domain_id = ctx.request.query_param("domain_id");
        auto enabled = query_bool(ctx, "enabled");
        std::vector<std::pair<json::object, Strings>> found;
        s.read([&](soci::session& ss) {
          for (auto& pid : project_ids) {
            auto row = db::get(ss, st::project, pid);
            if (!row || is_domain_row(*row)) continue;
            if (name && str_of(*row, "name") != *name) continue;
            if (domain_id && str_of(*row, "domain_id") != *domain_id) continue;
            if (enabled && enabled_of(*row) != *enabled) continue;
            found.emplace_back(std::move(*row), tags_in(ss, pid));
          }
        });
        json::array out;
        for (auto& [row, tags] : found) out.push_back(project_view(s, row, tags));
        return ok(collection(s, "projects", std::move(out), "users/" + id + "/projects"));
      },
      "identity:list_user_projects"});
}

// ---------------------------------------------------------------- groups

void add_group_routes(std::vector<Route>& routes, IdentityService& s) {
  routes.push_back(Route{
      "POST", "/v3/groups",
      [&s](Context& ctx) -> http::Response {
        auto g = entity(ctx, "group");
        auto name = required_string(g, "name", 255);
        auto domain_id = nullable_string(g, "domain_id", 64).value_or(caller_domain(ctx, s));
        auto description = optional_string(g, "description").value_or("");
        json::object r = extras(g, kGroupFields);
        std::string id = uuid4_hex();
        r["id"] = id;
        r["name"] = name;
        r["domain_id"] = domain_id;
        r["description"] = description;
        json::object row;
        s.write([&](soci::session& ss) {
          domain_in(ss, domain_id);
          if (name_taken(ss, st::group, domain_id, name)) throw Conflict(conflict_message("group"));
          db::insert(ss, st::group, r);
          row = *db::get(ss, st::group, id);
        });
        return created(json::object{{"group", group_view(s, row)}});
      },
      "identity:create_group"});

  routes.push_back(Route{
      "GET", "/v3/groups",
      [&s](Context& ctx) -> http::Response {
        db::Query q;
        for (const char* k : {"name", "domain_id"})
          if (auto v = ctx.request.query_param(k)) q.eq(k, *v);
        json::array out;
        for (auto& r : s.list(st::group, q)) out.push_back(group_view(s, r));
        return ok(collection(s, "groups", std::move(out), "groups"));
      },
      "identity:list_groups"});

  routes.push_back(Route{
      "GET", "/v3/groups/{group_id}",
      [&s](Context& ctx) -> http::Response {
        return ok(json::object{{"group", group_view(s, load_group(s, ctx.param("group_id")))}});
      },
      "identity:get_group"});

  routes.push_back(Route{
      "PATCH", "/v3/groups/{group_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("group_id");
        auto g = entity(ctx, "group");
        reject_readonly(g, {"id"}, id);
        json::object fields = extras(g, kGroupFields);
        std::optional<std::string> name;
        if (find(g, "name")) fields["name"] = *(name = required_string(g, "name", 255));
        if (find(g, "description")) fields["description"] = optional_string(g, "description").value_or("");
        json::object row;
        s.write([&](soci::session& ss) {
          auto cur = db::get(ss, st::group, id);
          if (!cur) throw NotFound("Could not find group: " + id + ".");
          auto domain_id = str_of(*cur, "domain_id");
          if (auto* v = find(g, "domain_id"); v && !(v->is_string() && v->as_string() == domain_id))
            throw BadRequest("Cannot change the domain_id of a group.");
          if (name && name_taken(ss, st::group, domain_id, *name, id)) throw Conflict(conflict_message("group"));
          db::update(ss, st::group, id, fields);
          row = *db::get(ss, st::group, id);
        });
        return ok(json::object{{"group", group_view(s, row)}});
      },
      "identity:update_group"});

  routes.push_back(Route{
      "DELETE", "/v3/groups/{group_id}",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("group_id");
        s.write([&](soci::session& ss) {
          if (!db::get(ss, st::group, id)) throw NotFound("Could not find group: " + id + ".");
          purge_groups(ss, {id});
        });
        return no_content();
      },
      "identity:delete_group"});

  routes.push_back(Route{
      "GET", "/v3/groups/{group_id}/users",
      [&s](Context& ctx) -> http::Response {
        auto id = ctx.param("group_id");
        load_group(s, id);
        std::vector<json::object> rows;
        s.read([&](soci::session& ss) {
          auto uids = ids_of(db::select(ss, st::user_group, db::Query{}.eq("group_id", id)), "user_id");
          db::Query q;
          q.in("id", uids);
          for (const char* k : {"name", "domain_id"})
            if (auto v = ctx.request.query_param(k)) q.eq(k, *v);
          if (auto e = query_bool(ctx, "enabled")) q.eq("enabled", *e ? "1" : "0");
          rows = db::select(ss, st::user, q);
        });
        json::array out;
        for (auto& r : rows) out.push_back(user_view(s, r));
        return ok(collection(s, "users", std::move(out), "groups/" + id + "/users"));
      },
      "identity:list_users_in_group"});

  // Membership: both must exist (404), then the check/add/remove.
  auto require_both = [](soci::session& ss, const std::string& group_id, const std::string& user_id) {
    if (!db::get(ss, st::group, group_id)) throw NotFound("Could not find group: " + group_id + ".");
    if (!db::get(ss, st::user, user_id)) throw NotFound("Could not find user: " + user_id + ".");
  };
  auto membership = [](const std::string& group_id, const std::string& user_id) {
    return db::Query{}.eq("user_id", user_id).eq("group_id", group_id);
  };

  routes.push_back(Route{
      "GET", "/v3/groups/{group_id}/users/{user_id}",
      [&s, require_both, membership](Context& ctx) -> http::Response {
        auto gid = ctx.param("group_id"), uid = ctx.param("user_id");
        s.read([&](soci::session& ss) {
          require_both(ss, gid, uid);
          if (db::count(ss, st::user_group, membership(gid, uid)) == 0)
            throw NotFound("User '" + uid + "' not found in group '" + gid + "'.");
        });
        return no_content();
      },
      "identity:check_user_in_group"});

  routes.push_back(Route{
      "PUT", "/v3/groups/{group_id}/users/{user_id}",
      [&s, require_both, membership](Context& ctx) -> http::Response {
        auto gid = ctx.param("group_id"), uid = ctx.param("user_id");
        s.write([&](soci::session& ss) {
          require_both(ss, gid, uid);
          if (db::count(ss, st::user_group, membership(gid, uid)) == 0)
            db::insert(ss, st::user_group, json::object{{"user_id", uid}, {"group_id", gid}});
        });
        return no_content();
      },
      "identity:add_user_to_group"});

  routes.push_back(Route{
      "DELETE", "/v3/groups/{group_id}/users/{user_id}",
      [&s, require_both, membership](Context& ctx) -> http::Response {
        auto gid = ctx.param("group_id"), uid = ctx.param("user_id");
        s.write([&](soci::session& ss) {
          require_both(ss, gid, uid);
          if (db::remove(ss, st::user_group, membership(gid, uid)) == 0)
            throw NotFound("User '" + uid + "' not found in group '" + gid + "'.");
        });
        return no_content();
      },
      "identity:remove_user_from_group"});
}

}  // namespace

void add_resource_routes(std::vector<Route>& routes, IdentityService& s) {
  add_domain_routes(routes, s);
  add_project_routes(routes, s);
  add_user_routes(routes, s);
  add_group_routes(routes, s);
}

}  // namespace nubo::identity::api
