// Roles, implied roles (role inference rules), grants on projects/domains/system (plus OS-INHERIT)
// and the role assignment listing, direct or effective.
#include "identity/api/common.hpp"

#include "common/ids.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace nubo::identity::api {

namespace {

using Row = json::object;

std::string str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }
std::string field(const Row& r, std::string_view key) {
  auto* v = find(r, key);
  return v ? str(*v) : std::string();
}

bool is_global(const Row& role) { return field(role, "domain_id") == st::kNullDomain; }

const char* kDuplicateRole = "Conflict occurred attempting to store role - Duplicate entry.";

// ------------------------------------------------------------------------------------------ roles

json::object options_field(const json::value& v) {
  if (!v.is_object()) throw BadRequest("Invalid input for field 'options': not an object.");
  return v.as_object();
}

http::Response create_role(IdentityService& s, Context& ctx) {
  auto body = entity(ctx, "role");
  auto name = required_string(body, "name", 255);
  std::string domain_id = st::kNullDomain;
  if (auto d = optional_string(body, "domain_id", 64)) {
    load_domain(s, *d);
    domain_id = *d;
  }
  json::value description = nullptr;
  if (auto d = optional_string(body, "description")) description = *d;
  json::object options;
  if (auto* o = find(body, "options"); o && !o->is_null()) options = options_field(*o);
  std::string id = uuid4_hex();
  Row stored;
  s.write([&](soci::session& ss) {
    if (db::count(ss, st::role, db::Query{}.eq("name", name).eq("domain_id", domain_id)) > 0)
      throw Conflict(kDuplicateRole);
    db::insert(ss, st::role,
               Row{{"id", id}, {"name", name}, {"domain_id", domain_id}, {"description", description},
                   {"options", options}});
    stored = *db::get(ss, st::role, id);
  });
  return created(json::object{{"role", role_view(s, stored)}});
}

http::Response list_roles(IdentityService& s, Context& ctx) {
  db::Query q;
  auto domain_id = ctx.request.query_param("domain_id");
  q.eq("domain_id", domain_id && !domain_id->empty() ? *domain_id : std::string(st::kNullDomain));
  if (auto name = ctx.request.query_param("name")) q.eq("name", *name);
  json::array items;
  for (auto& r : s.list(st::role, q)) items.push_back(role_view(s, r));
  return ok(collection(s, "roles", std::move(items), "roles"));
}

http::Response update_role(IdentityService& s, Context& ctx) {
  const auto& id = ctx.param("role_id");
  auto role = load_role(s, id);
  auto body = entity(ctx, "role");
  if (body.empty()) throw BadRequest("Invalid input for field 'role': at least one property is required.");
  reject_readonly(body, {"id"}, id);
  json::object fields;
  std::optional<std::string> new_name;
  if (find(body, "name")) {
    new_name = required_string(body, "name", 255);
    fields["name"] = *new_name;
  }
  if (auto* v = find(body, "description")) {
    if (v->is_null())
      fields["description"] = nullptr;
    else
      fields["description"] = *optional_string(body, "description");
  }
  if (auto* v = find(body, "domain_id")) {
    std::string requested;
    if (v->is_null())
      requested = st::kNullDomain;
    else if (v->is_string())
      requested = std::string(v->as_string());
    else
      throw BadRequest("Invalid input for field 'domain_id': not a string.");
    if (requested != field(role, "domain_id")) throw BadRequest("Update of `domain_id` is not allowed.");
  }
  if (auto* v = find(body, "options")) {
    json::object merged = role["options"].is_object() ? role["options"].as_object() : json::object{};
    if (!v->is_null()) {
      for (auto& [k, val] : options_field(*v)) {
        if (val.is_null())
          merged.erase(k);
        else
          merged[k] = val;
      }
    }
    fields["options"] = std::move(merged);
  }
  Row stored;
  s.write([&](soci::session& ss) {
    if (new_name && *new_name != field(role, "name")) {
      for (auto& r : db::select(ss, st::role, db::Query{}.eq("name", *new_name).eq("domain_id", field(role, "domain_id"))))
        if (field(r, "id") != id) throw Conflict(kDuplicateRole);
    }
    if (!fields.empty()) db::update(ss, st::role, id, fields);
    auto row = db::get(ss, st::role, id);
    if (!row) throw NotFound("Could not find role: " + id + ".");
    stored = std::move(*row);
  });
  return ok(json::object{{"role", role_view(s, stored)}});
}

http::Response delete_role(IdentityService& s, Context& ctx) {
  const auto& id = ctx.param("role_id");
  load_role(s, id);
  s.write([&](soci::session& ss) {
    db::remove(ss, st::implied_role, db::Query{}.eq("prior_role_id", id));
    db::remove(ss, st::implied_role, db::Query{}.eq("implied_role_id", id));
    db::remove(ss, st::assignment, db::Query{}.eq("role_id", id));
    db::remove_id(ss, st::role, id);
  });
  return no_content();
}

// ---------------------------------------------------------------------------------- implied roles

json::object role_ref(const IdentityService& s, const Row& r) {
  return json::object{{"id", r.at("id")},
                      {"name", r.at("name")},
                      {"links", json::object{{"self", s.link("roles/" + field(r, "id"))}}}};
}

db::Query rule_query(const std::string& prior, const std::string& implied) {
  return db::Query{}.eq("prior_role_id", prior).eq("implied_role_id", implied);
}

// Loads both roles (404) and requires the rule to exist (404).
std::pair<Row, Row> load_rule(IdentityService& s, const Context& ctx) {
  const auto& prior_id = ctx.param("prior_role_id");
  const auto& implied_id = ctx.param("implied_role_id");
  auto prior = load_role(s, prior_id);
  auto implied = load_role(s, implied_id);
  if (s.list(st::implied_role, rule_query(prior_id, implied_id)).empty())
    throw NotFound(prior_id + " does not imply " + implied_id + ".");
  return {std::move(prior), std::move(implied)};
}

json::object rule_body(const IdentityService& s, const Row& prior, const Row& implied) {
  return json::object{
      {"role_inference", json::object{{"prior_role", role_ref(s, prior)}, {"implies", role_ref(s, implied)}}},
      {"links",
       json::object{{"self", s.link("roles/" + field(prior, "id") + "/implies/" + field(implied, "id"))}}}};
}

http::Response create_rule(IdentityService& s, Context& ctx) {
  const auto& prior_id = ctx.param("prior_role_id");
  const auto& implied_id = ctx.param("implied_role_id");
  auto prior = load_role(s, prior_id);
  auto implied = load_role(s, implied_id);
  if (field(implied, "name") == "admin") throw Forbidden(implied_id + " cannot be an implied roles.");
  if (is_global(prior) && !is_global(implied)) throw Forbidden("Global role cannot imply a domain-specific role");
  s.write([&](soci::session& ss) {
    if (db::count(ss, st::implied_role, rule_query(prior_id, implied_id)) == 0)
      db::insert(ss, st::implied_role, Row{{"prior_role_id", prior_id}, {"implied_role_id", implied_id}});
  });
  return created(rule_body(s, prior, implied));
}

http::Response get_rule(IdentityService& s, Context& ctx) {
  auto [prior, implied] = load_rule(s, ctx);
  return ok(rule_body(s, prior, implied));
}

http::Response check_rule(IdentityService& s, Context& ctx) {
  load_rule(s, ctx);
  return no_content();
}

http::Response delete_rule(IdentityService& s, Context& ctx) {
  load_rule(s, ctx);
  s.write([&](soci::session& ss) {
    db::remove(ss, st::implied_role, rule_query(ctx.param("prior_role_id"), ctx.param("implied_role_id")));
  });
  return no_content();
}

std::map<std::string, Row> roles_by_id(IdentityService& s, const std::vector<std::string>& ids) {
  std::map<std::string, Row> out;
  if (ids.empty()) return out;
  for (auto& r : s.list(st::role, db::Query{}.in("id", ids))) out.emplace(field(r, "id"), r);
  return out;
}

http::Response list_rules_for_prior(IdentityService& s, Context& ctx) {
  const auto& prior_id = ctx.param("prior_role_id");
  auto prior = load_role(s, prior_id);
  std::vector<std::string> ids;
  for (auto& r : s.list(st::implied_role, db::Query{}.eq("prior_role_id", prior_id)))
    ids.push_back(field(r, "implied_role_id"));
  auto roles = roles_by_id(s, ids);
  json::array implies;
  for (auto& id : ids)
    if (auto it = roles.find(id); it != roles.end()) implies.push_back(role_ref(s, it->second));
  return ok(json::object{
      {"role_inference", json::object{{"prior_role", role_ref(s, prior)}, {"implies", std::move(implies)}}},
      {"links", json::object{{"self", s.link("roles/" + prior_id + "/implies")}}}});
}

http::Response list_all_rules(IdentityService& s, Context&) {
  db::Query q;
  q.order_by = "prior_role_id";
  auto rules = s.list(st::implied_role, q);
  std::vector<std::string> ids;
  for (auto& r : rules) {
    ids.push_back(field(r, "prior_role_id"));
    ids.push_back(field(r, "implied_role_id"));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto roles = roles_by_id(s, ids);
  std::vector<std::string> order;
  std::map<std::string, json::array> grouped;
  for (auto& r : rules) {
    auto p = roles.find(field(r, "prior_role_id"));
    auto i = roles.find(field(r, "implied_role_id"));
    if (p == roles.end() || i == roles.end()) continue;
    auto [it, inserted] = grouped.try_emplace(p->first);
    if (inserted) order.push_back(p->first);
    it->second.push_back(role_ref(s, i->second));
  }
  json::array items;
  for (auto& id : order)
    items.push_back(json::object{{"prior_role", role_ref(s, roles.at(id))}, {"implies", std::move(grouped[id])}});
  return ok(json::object{{"role_inferences", std::move(items)},
                         {"links", json::object{{"self", s.link("role_inferences")}, {"previous", nullptr},
                                                {"next", nullptr}}}});
}

// ----------------------------------------------------------------------------------------- grants

enum class TargetKind { Project, Domain, System };
enum class ActorKind { User, Group };

struct GrantKind {
  TargetKind target;
  ActorKind actor;
  bool inherited = false;
};

std::string assignment_type(const GrantKind& k) {
  std::string t = k.actor == ActorKind::User ? "User" : "Group";
  switch (k.target) {
    case TargetKind::Project: return t + "Project";
    case TargetKind::Domain: return t + "Domain";
    case TargetKind::System: return t + "System";
  }
  return t;
}

std::string target_id_of(const Context& ctx, const GrantKind& k) {
  switch (k.target) {
    case TargetKind::Project: return ctx.param("project_id");
    case TargetKind::Domain: return ctx.param("domain_id");
    case TargetKind::System: return "system";
  }
  return {};
}

std::string actor_id_of(const Context& ctx, const GrantKind& k) {
  return k.actor == ActorKind::User ? ctx.param("user_id") : ctx.param("group_id");
}

// "projects/P/users/U/roles" (the grant collection), OS-INHERIT variants included.
std::string grants_path(const GrantKind& k, const std::string& target, const std::string& actor) {
  std::string p;
  switch (k.target) {
    case TargetKind::Project: p = "projects/" + target; break;
    case TargetKind::Domain: p = "domains/" + target; break;
    case TargetKind::System: p = "system"; break;
  }
  p += (k.actor == ActorKind::User ? "/users/" : "/groups/") + actor + "/roles";
  if (k.inherited) p = "OS-INHERIT/" + p;
  return p;
}

// Validates the actor and the target (404); returns the target row (empty for system).
Row load_actor_and_target(IdentityService& s, const GrantKind& k, const std::string& actor, const std::string& target) {
  if (k.actor == ActorKind::User)
    load_user(s, actor);
  else
    load_group(s, actor);
  switch (k.target) {
    case TargetKind::Project: return load_project(s, target);
    case TargetKind::Domain: return load_domain(s, target);
    case TargetKind::System: break;
  }
  return {};
}

db::Query grant_query(const GrantKind& k, const std::string& actor, const std::string& target) {
  return db::Query{}
      .eq("type", assignment_type(k))
      .eq("actor_id", actor)
      .eq("target_id", target)
      .eq("inherited", k.inherited ? "1" : "0");
}

void require_grant(IdentityService& s, const GrantKind& k, const std::string& actor, const std::string& target,
                   const std::string& role_id) {
  if (s.list(st::assignment, grant_query(k, actor, target).eq("role_id", role_id)).empty())
    throw NotFound("Could not find role assignment with role: " + role_id + ", user or group: " + actor +
                   ", project, domain, or system: " + target + ".");
}

RouteHandler put_grant(IdentityService& s, GrantKind k) {
  return [&s, k](Context& ctx) -> http::Response {
    auto actor = actor_id_of(ctx, k), target = target_id_of(ctx, k);
    const auto& role_id = ctx.param("role_id");
    auto role = load_role(s, role_id);
    auto target_row = load_actor_and_target(s, k, actor, target);
    if (k.target == TargetKind::Project && !is_global(role) &&
        field(target_row, "domain_id") != field(role, "domain_id"))
      throw Forbidden("Project " + target + " must be in the same domain as the role " + role_id +
                      " being assigned.");
    if (k.target == TargetKind::System && !is_global(role))
      throw BadRequest("Role " + role_id +
                       " is a domain-specific role. Unable to use a domain-specific role in a system assignment.");
    s.write([&](soci::session& ss) {
      if (db::count(ss, st::assignment, grant_query(k, actor, target).eq("role_id", role_id)) == 0)
        db::insert(ss, st::assignment,
                   Row{{"type", assignment_type(k)},
                       {"actor_id", actor},
                       {"target_id", target},
                       {"role_id", role_id},
                       {"inherited", k.inherited}});
    });
    return no_content();
  };
}

RouteHandler check_grant(IdentityService& s, GrantKind k) {
  return [&s, k](Context& ctx) -> http::Response {
    auto actor = actor_id_of(ctx, k), target = target_id_of(ctx, k);
    const auto& role_id = ctx.param("role_id");
    load_role(s, role_id);
    load_actor_and_target(s, k, actor, target);
    require_grant(s, k, actor, target, role_id);
    return no_content();
  };
}

RouteHandler delete_grant(IdentityService& s, GrantKind k) {
  return [&s, k](Context& ctx) -> http::Response {
    auto actor = actor_id_of(ctx, k), target = target_id_of(ctx, k);
    const auto& role_id = ctx.param("role_id");
    load_role(s, role_id);
    load_actor_and_target(s, k, actor, target);
    require_grant(s, k, actor, target, role_id);
    s.write([&](soci::session& ss) {
      db::remove(ss, st::assignment, grant_query(k, actor, target).eq("role_id", role_id));
    });
    // No revocation event: tokens re-render their roles on every validation, so the removed
    // role disappears from them at once, and tokens with other roles on the scope stay valid.
    return no_content();
  };
}

RouteHandler list_grants(IdentityService& s, GrantKind k) {
  return [&s, k](Context& ctx) -> http::Response {
    auto actor = actor_id_of(ctx, k), target = target_id_of(ctx, k);
    load_actor_and_target(s, k, actor, target);
    std::vector<std::string> ids;
    for (auto& r : s.list(st::assignment, grant_query(k, actor, target))) ids.push_back(field(r, "role_id"));
    json::array items;
    for (auto& [id, row] : roles_by_id(s, ids)) items.push_back(role_view(s, row));
    std::string path = grants_path(k, target, actor);
    if (k.inherited) path += "/inherited_to_projects";
    return ok(collection(s, "roles", std::move(items), path));
  };
}

// ------------------------------------------------------------------------------- role assignments

struct Assignment {
  // The stored grant this entry comes from.
  std::string type, actor, target, granted_role;
  bool inherited = false;
  // The entry itself.
  std::string user, group;  // one of them
  std::string project, domain;
  bool system = false;
  std::string role;
  std::string prior_role;  // the role this one was implied by
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

class Names {
 public:
  explicit Names(IdentityService& s) : s_(s) {}
  const Row* get(const db::Table& t, const std::string& id) {
    auto key = t.name + "/" + id;
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, s_.find(t, id)).first;
    return it->second ? &*it->second : nullptr;
  }
  // {id, name[, domain:{id, name}]}
  json::object ref(const db::Table& t, const std::string& id, bool with_domain) {
    json::object o{{"id", id}};
    auto* row = get(t, id);
    if (!row) return o;
    o["name"] = row->at("name");
    if (with_domain) {
      auto did = field(*row, "domain_id");
      json::object d{{"id", did}};
      if (auto* dom = get(st::project, did)) d["name"] = dom->at("name");
      o["domain"] = std::move(d);
    }
    return o;
  }

 private:
  IdentityService& s_;
  std::map<std::string, std::optional<Row>> cache_;
};

json::object render_assignment(IdentityService& s, const Assignment& a, Names* names) {
  json::object out;
  json::object links;
  // Scope
  json::object scope;
  if (!a.project.empty())
    scope["project"] = names ? names->ref(st::project, a.project, true) : json::object{{"id", a.project}};
  else if (!a.domain.empty())
    scope["domain"] = names ? names->ref(st::project, a.domain, false) : json::object{{"id", a.domain}};
  else
    scope["system"] = json::object{{"all", true}};
  if (a.inherited) scope["OS-INHERIT:inherited_to"] = "projects";
  // Actor
  if (!a.user.empty())
    out["user"] = names ? names->ref(st::user, a.user, true) : json::object{{"id", a.user}};
  else
    out["group"] = names ? names->ref(st::group, a.group, true) : json::object{{"id", a.group}};
  // Role
  if (names) {
    json::object r{{"id", a.role}};
    if (auto* row = names->get(st::role, a.role)) {
      r["name"] = row->at("name");
      if (!is_global(*row)) {
        auto did = field(*row, "domain_id");
        json::object d{{"id", did}};
        if (auto* dom = names->get(st::project, did)) d["name"] = dom->at("name");
        r["domain"] = std::move(d);
      }
    }
    out["role"] = std::move(r);
  } else {
    out["role"] = json::object{{"id", a.role}};
  }
  out["scope"] = std::move(scope);
  // Links: the grant this entry comes from.
  std::string path;
  if (ends_with(a.type, "Project"))
    path = "projects/" + a.target;
  else if (ends_with(a.type, "Domain"))
    path = "domains/" + a.target;
  else
    path = "system";
  path += (starts_with(a.type, "User") ? "/users/" : "/groups/") + a.actor + "/roles/" + a.granted_role;
  if (a.inherited) path = "OS-INHERIT/" + path + "/inherited_to_projects";
  links["assignment"] = s.link(path);
  if (starts_with(a.type, "Group") && !a.user.empty())
    links["membership"] = s.link("groups/" + a.actor + "/users/" + a.user);
  if (!a.prior_role.empty()) links["prior_role"] = s.link("roles/" + a.prior_role + "/implies/" + a.role);
  out["links"] = std::move(links);
  return out;
}

Assignment from_row(const Row& r) {
  Assignment a;
  a.type = field(r, "type");
  a.actor = field(r, "actor_id");
  a.target = field(r, "target_id");
  a.granted_role = a.role = field(r, "role_id");
  a.inherited = r.at("inherited").is_bool() && r.at("inherited").as_bool();
  if (starts_with(a.type, "User"))
    a.user = a.actor;
  else
    a.group = a.actor;
  if (ends_with(a.type, "Project"))
    a.project = a.target;
  else if (ends_with(a.type, "Domain"))
    a.domain = a.target;
  else
    a.system = true;
  return a;
}

struct AssignmentFilters {
  std::optional<std::string> user, group, role, project, domain;
  bool system = false;
  std::optional<bool> inherited;
  bool effective = false, include_names = false, include_subtree = false;
};

std::optional<std::string> nonempty_param(const Context& ctx, std::string_view name) {
  auto v = ctx.request.query_param(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

AssignmentFilters parse_filters(const Context& ctx) {
  AssignmentFilters f;
  f.user = nonempty_param(ctx, "user.id");
  f.group = nonempty_param(ctx, "group.id");
  f.role = nonempty_param(ctx, "role.id");
  f.project = nonempty_param(ctx, "scope.project.id");
  f.domain = nonempty_param(ctx, "scope.domain.id");
  auto system = nonempty_param(ctx, "scope.system");
  if (auto inh = ctx.request.query_param("scope.OS-INHERIT:inherited_to")) f.inherited = *inh == "projects";
  f.effective = query_bool(ctx, "effective").value_or(false);
  f.include_names = query_bool(ctx, "include_names").value_or(false);
  f.include_subtree = query_bool(ctx, "include_subtree").value_or(false);
  if (f.domain && f.project) throw BadRequest("Specify a domain or project, not both");
  if (f.domain && system) throw BadRequest("Specify system or domain, not both");
  if (f.project && system) throw BadRequest("Specify system or project, not both");
  if (f.user && f.group) throw BadRequest("Specify a user or group, not both");
  if (f.include_subtree && !f.project)
    throw BadRequest("scope.project.id must be specified if include_subtree is also specified");
  if (f.effective) {
    if (f.group) throw BadRequest("Combining effective and group filter will always result in an empty list.");
    if (f.inherited.value_or(false) && f.domain)
      throw BadRequest("Combining effective, domain and inherited filters will always result in an empty list.");
  }
  f.system = system && *system == "all";
  return f;
}

std::vector<Assignment> direct_assignments(IdentityService& s, const AssignmentFilters& f,
                                           const std::vector<std::string>& projects) {
  std::vector<std::string> types{"UserProject", "GroupProject", "UserDomain", "GroupDomain", "UserSystem", "GroupSystem"};
  auto keep = [&](auto pred) { std::erase_if(types, [&](const std::string& t) { return !pred(t); }); };
  db::Query q;
  if (f.user) {
    keep([](const std::string& t) { return starts_with(t, "User"); });
    q.eq("actor_id", *f.user);
  }
  if (f.group) {
    keep([](const std::string& t) { return starts_with(t, "Group"); });
    q.eq("actor_id", *f.group);
  }
  if (f.project) {
    keep([](const std::string& t) { return ends_with(t, "Project"); });
    q.in("target_id", projects);
  } else if (f.domain) {
    keep([](const std::string& t) { return ends_with(t, "Domain"); });
    q.eq("target_id", *f.domain);
  } else if (f.system) {
    keep([](const std::string& t) { return ends_with(t, "System"); });
  }
  if (f.role) q.eq("role_id", *f.role);
  if (f.inherited) q.eq("inherited", *f.inherited ? "1" : "0");
  q.in("type", types);
  std::vector<Assignment> out;
  for (auto& r : s.list(st::assignment, q)) out.push_back(from_row(r));
  return out;
}

std::vector<Assignment> effective_assignments(IdentityService& s, const AssignmentFilters& f,
                                              const std::vector<std::string>& projects) {
  // Grants that can contribute to the result.
  std::vector<std::string> types;
  if (f.project)
    types = {"UserProject", "GroupProject", "UserDomain", "GroupDomain"};
  else if (f.domain)
    types = {"UserDomain", "GroupDomain"};
  else if (f.system)
    types = {"UserSystem", "GroupSystem"};
  else
    types = {"UserProject", "GroupProject", "UserDomain", "GroupDomain", "UserSystem", "GroupSystem"};
  db::Query q;
  q.in("type", types);
  if (f.user) {
    auto actors = s.user_group_ids(*f.user);
    actors.push_back(*f.user);
    q.in("actor_id", std::move(actors));
  }
  // Domains do not inherit: a domain filter only sees direct domain grants.
  std::optional<bool> inherited = f.domain ? std::optional<bool>(false) : f.inherited;
  if (inherited) q.eq("inherited", *inherited ? "1" : "0");
  if (f.domain) q.eq("target_id", *f.domain);

  // Projects of interest (with a project filter) and their domains.
  std::set<std::string> interest(projects.begin(), projects.end());
  std::map<std::string, std::string> interest_domain;
  if (f.project && !projects.empty()) {
    for (auto& p : s.list(st::project, db::Query{}.in("id", projects)))
      interest_domain[field(p, "id")] = field(p, "domain_id");
    // Only grants on these projects, their ancestors or their domains can reach them.
    std::set<std::string> targets(projects.begin(), projects.end());
    for (auto& a : s.project_ancestors(*f.project)) targets.insert(a);
    for (auto& [p, d] : interest_domain) targets.insert(d);
    q.in("target_id", std::vector<std::string>(targets.begin(), targets.end()));
  }
  std::vector<Row> sources = s.list(st::assignment, q);

  std::map<std::string, std::vector<std::string>> domain_projects, descendants, members;
  auto projects_in_domain = [&](const std::string& d) -> const std::vector<std::string>& {
    auto it = domain_projects.find(d);
    if (it != domain_projects.end()) return it->second;
    std::vector<std::string> ids;
    for (auto& p : s.list(st::project, db::Query{}.eq("domain_id", d).eq("is_domain", "0")))
      ids.push_back(field(p, "id"));
    return domain_projects.emplace(d, std::move(ids)).first->second;
  };
  auto subtree = [&](const std::string& p) -> const std::vector<std::string>& {
    auto it = descendants.find(p);
    if (it != descendants.end()) return it->second;
    return descendants.emplace(p, s.project_descendants(p)).first->second;
  };
  auto group_members = [&](const std::string& g) -> const std::vector<std::string>& {
    auto it = members.find(g);
    if (it != members.end()) return it->second;
    std::vector<std::string> ids;
    for (auto& r : s.list(st::user_group, db::Query{}.eq("group_id", g))) ids.push_back(field(r, "user_id"));
    return members.emplace(g, std::move(ids)).first->second;
  };

  // Implication rules, expanded transitively per granted role: (role, immediate prior).
  auto rules = s.list(st::implied_role);
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> chains;
  auto chain = [&](const std::string& role) -> const std::vector<std::pair<std::string, std::string>>& {
    auto it = chains.find(role);
    if (it != chains.end()) return it->second;
    std::vector<std::pair<std::string, std::string>> out{{role, ""}};
    std::set<std::string> seen{role};
    for (size_t i = 0; i < out.size(); ++i) {
      auto current = out[i].first;
      for (auto& r : rules) {
        if (field(r, "prior_role_id") != current) continue;
        auto implied = field(r, "implied_role_id");
        if (seen.insert(implied).second) out.emplace_back(implied, current);
      }
    }
    return chains.emplace(role, std::move(out)).first->second;
  };

  std::vector<Assignment> expanded;
  for (auto& row : sources) {
    auto base = from_row(row);
    // Targets
    std::vector<std::string> target_projects;
    bool on_project = false;
    if (ends_with(base.type, "Project") || (ends_with(base.type, "Domain") && base.inherited)) on_project = true;
    if (on_project) {
      if (!base.inherited) {
        target_projects.push_back(base.target);
      } else if (ends_with(base.type, "Domain")) {
        if (f.project) {
          for (auto& p : projects)
            if (auto it = interest_domain.find(p); it != interest_domain.end() && it->second == base.target)
              target_projects.push_back(p);
        } else {
          target_projects = projects_in_domain(base.target);
        }
      } else {
        for (auto& p : subtree(base.target))
          if (!f.project || interest.count(p)) target_projects.push_back(p);
      }
    }
    // Actors
    std::vector<std::string> users;
    if (!base.user.empty())
      users.push_back(base.user);
    else if (f.user)
      users.push_back(*f.user);
    else
      users = group_members(base.group);
    for (auto& user : users) {
      for (auto& [role, prior] : chain(base.granted_role)) {
        Assignment a = base;
        a.user = user;
        a.group.clear();
        a.role = role;
        a.prior_role = prior;
        if (on_project) {
          a.domain.clear();
          a.system = false;
          for (auto& p : target_projects) {
            a.project = p;
            expanded.push_back(a);
          }
        } else {
          expanded.push_back(std::move(a));
        }
      }
    }
  }

  // Filters on the expanded entries, then drop domain-specific roles and duplicates.
  std::vector<std::string> role_ids;
  for (auto& a : expanded) role_ids.push_back(a.role);
  std::sort(role_ids.begin(), role_ids.end());
  role_ids.erase(std::unique(role_ids.begin(), role_ids.end()), role_ids.end());
  auto roles = roles_by_id(s, role_ids);
  std::set<std::string> seen;
  std::vector<Assignment> out;
  for (auto& a : expanded) {
    if (f.project && (a.project.empty() || !interest.count(a.project))) continue;
    if (f.domain && a.domain != *f.domain) continue;
    if (f.system && !a.system) continue;
    if (f.user && a.user != *f.user) continue;
    if (f.role && a.role != *f.role) continue;
    auto r = roles.find(a.role);
    if (r == roles.end() || !is_global(r->second)) continue;
    std::string key = a.user + "|" + (a.system ? std::string("system") : a.project.empty() ? "d:" + a.domain : "p:" + a.project) +
                      "|" + a.role;
    if (!seen.insert(key).second) continue;
    out.push_back(std::move(a));
  }
  return out;
}

http::Response list_role_assignments(IdentityService& s, Context& ctx) {
  auto f = parse_filters(ctx);
  std::vector<std::string> projects;
  if (f.project) {
    if (f.effective || f.include_subtree) load_project(s, *f.project);
    projects.push_back(*f.project);
    if (f.include_subtree)
      for (auto& p : s.project_descendants(*f.project)) projects.push_back(p);
  }
  auto entries = f.effective ? effective_assignments(s, f, projects) : direct_assignments(s, f, projects);
  std::optional<Names> names;
  if (f.include_names) names.emplace(s);
  json::array items;
  for (auto& a : entries) items.push_back(render_assignment(s, a, names ? &*names : nullptr));
  return ok(collection(s, "role_assignments", std::move(items), "role_assignments"));
}

}  // namespace

void add_role_routes(std::vector<Route>& routes, IdentityService& s) {
  auto add = [&](const char* method, std::string path, http::Response (*fn)(IdentityService&, Context&),
                 const char* policy) {
    routes.push_back(Route{method, std::move(path), [&s, fn](Context& ctx) { return fn(s, ctx); }, policy});
  };
  // Roles
  add("POST", "/v3/roles", create_role, "identity:create_role");
  add("GET", "/v3/roles", list_roles, "identity:list_roles");
  add("GET", "/v3/roles/{role_id}",
      [](IdentityService& s, Context& ctx) {
        return ok(json::object{{"role", role_view(s, load_role(s, ctx.param("role_id")))}});
      },
      "identity:get_role");
  add("PATCH", "/v3/roles/{role_id}", update_role, "identity:update_role");
  add("DELETE", "/v3/roles/{role_id}", delete_role, "identity:delete_role");

  // Implied roles
  add("PUT", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", create_rule, "identity:create_implied_role");
  add("GET", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", get_rule, "identity:get_implied_role");
  add("HEAD", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", check_rule, "identity:check_implied_role");
  add("DELETE", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", delete_rule, "identity:delete_implied_role");
  add("GET", "/v3/roles/{prior_role_id}/implies", list_rules_for_prior, "identity:list_implied_roles");
  add("GET", "/v3/role_inferences", list_all_rules, "identity:list_role_inference_rules");

  // Grants
  auto grants = [&](const std::string& base, GrantKind k, const char* create, const char* check, const char* list,
                    const char* revoke) {
    routes.push_back(Route{"GET", base, list_grants(s, k), list});
    routes.push_back(Route{"PUT", base + "/{role_id}", put_grant(s, k), create});
    routes.push_back(Route{"GET", base + "/{role_id}", check_grant(s, k), check});
    routes.push_back(Route{"DELETE", base + "/{role_id}", delete_grant(s, k), revoke});
  };
  const char* c = "identity:create_grant";
  const char* h = "identity:check_grant";
  const char* l = "identity:list_grants";
  const char* r = "identity:revoke_grant";
  grants("/v3/projects/{project_id}/users/{user_id}/roles", {TargetKind::Project, ActorKind::User}, c, h, l, r);
  grants("/v3/projects/{project_id}/groups/{group_id}/roles", {TargetKind::Project, ActorKind::Group}, c, h, l, r);
  grants("/v3/domains/{domain_id}/users/{user_id}/roles", {TargetKind::Domain, ActorKind::User}, c, h, l, r);
  grants("/v3/domains/{domain_id}/groups/{group_id}/roles", {TargetKind::Domain, ActorKind::Group}, c, h, l, r);
  grants("/v3/system/users/{user_id}/roles", {TargetKind::System, ActorKind::User}, "identity:create_system_grant",
         "identity:check_system_grant", "identity:list_system_grants", "identity:revoke_system_grant");
  grants("/v3/system/groups/{group_id}/roles", {TargetKind::System, ActorKind::Group}, "identity:create_system_grant",
         "identity:check_system_grant", "identity:list_system_grants", "identity:revoke_system_grant");

  // OS-INHERIT
  auto inherited = [&](const std::string& base, GrantKind k, bool with_list) {
    k.inherited = true;
    if (with_list) routes.push_back(Route{"GET", base + "/inherited_to_projects", list_grants(s, k), l});
    routes.push_back(Route{"PUT", base + "/{role_id}/inherited_to_projects", put_grant(s, k), c});
    routes.push_back(Route{"GET", base + "/{role_id}/inherited_to_projects", check_grant(s, k), h});
    routes.push_back(Route{"DELETE", base + "/{role_id}/inherited_to_projects", delete_grant(s, k), r});
  };
  inherited("/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles", {TargetKind::Domain, ActorKind::User}, true);
  inherited("/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles", {TargetKind::Domain, ActorKind::Group}, true);
  inherited("/v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles", {TargetKind::Project, ActorKind::User},
            false);
  inherited("/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles", {TargetKind::Project, ActorKind::Group},
            false);

  // Role assignments
  add("GET", "/v3/role_assignments", list_role_assignments, "identity:list_role_assignments");
}

}  // namespace nubo::identity::api
