// POST /v2.1/servers/{id}/action and the server's sub-resources: metadata, tags, ips, instance
// actions, password, console output.
#include <algorithm>
#include <set>

#include "compute/api/servers.hpp"

namespace nubo::compute::api {

namespace {

http::Response empty(int status) {
  http::Response r;
  r.status = status;
  return r;
}

// The action's argument object (null allowed where Nova's schema allows it).
const json::value& action_args(const json::object& body, const std::string& action) {
  return body.at(action);
}

void require_object(const json::value& v, const std::string& action) {
  if (!v.is_object())
    throw BadRequest(invalid(action, v, json::serialize(v) + " is not of type 'object'"));
}

void require_field(const json::value& v, const std::string& action, const char* key) {
  require_object(v, action);
  if (!v.as_object().contains(key))
    throw BadRequest("Invalid input for field/attribute " + action + ". '" + key +
                     "' is a required property");
}

// Nova's additionalProperties: false, with the keys this microversion's schema has (each key
// paired with whether the request's microversion allows it).
void only_keys(const json::object& args, const std::string& action,
               std::initializer_list<std::pair<std::string_view, bool>> allowed) {
  for (auto& kv : args)
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](auto& a) { return a.second && a.first == kv.key(); }))
      throw BadRequest(unexpected(action, kv.key()));
}

json::object action_view(Context& ctx, const json::object& a) {
  json::object v{{"action", a.at("action")},         {"instance_uuid", a.at("instance_id")},
                 {"message", a.at("message")},       {"project_id", a.at("project_id")},
                 {"request_id", a.at("request_id")}, {"start_time", a.at("start_time")},
                 {"user_id", a.at("user_id")}};
  if (at_least(ctx, 58)) v["updated_at"] = a.at("updated_at");
  return v;
}

std::map<std::string, std::string> metadata_body(Context& ctx, const char* key) {
  auto body = ctx.body();
  auto* v = body.if_contains(key);
  if (!v)
    throw BadRequest("Invalid input for field/attribute " + std::string(key) + ". '" + key +
                     "' is a required property");
  return metadata_field(*v, key);
}

json::object string_object(const std::map<std::string, std::string>& m) {
  json::object o;
  for (auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

void add_server_action_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{
      "POST", "/v2.1/servers/{id}/action", [&s](Context& ctx) {
        auto body = ctx.body();
        if (body.size() != 1) throw BadRequest("Malformed request body");
        std::string action(body.begin()->key());
        auto& args = action_args(body, action);
        auto id = ctx.param("id");
        auto c = caller(ctx);
        if (action == "addSecurityGroup" || action == "removeSecurityGroup") {
          require_object(args, action);
          auto name = string_or(args.as_object(), "name");
          if (name.empty()) throw BadRequest("Security group name cannot be empty");
          s.change_security_group(c, id, name, action == "addSecurityGroup");
          return empty(202);
        }
        if (action == "os-getConsoleOutput") {
          std::optional<long> length;
          if (args.is_object()) {
            if (auto* l = args.as_object().if_contains("length"); l && !l->is_null()) {
              if (l->is_int64()) {
                length = static_cast<long>(l->as_int64());
              } else if (l->is_string() && !l->as_string().empty() &&
                         std::all_of(l->as_string().begin(), l->as_string().end(), [](char ch) {
                           return std::isdigit(static_cast<unsigned char>(ch)) || ch == '-';
                         })) {
                length = std::stol(std::string(l->as_string()));
              } else {
                throw BadRequest(
                    invalid("length", *l,
                            json::serialize(*l) + " is not of type 'integer', 'string', 'null'"));
              }
              if (*length < -1)
                throw BadRequest(
                    invalid("length", *l, json::serialize(*l) + " is less than the minimum of -1"));
              if (*length == -1) length.reset();
            }
          } else if (!args.is_null()) {
            require_object(args, action);
          }
          return json_response(200, json::object{{"output", s.console_output(c, id, length)}});
        }
        // The console actions before remote-consoles (2.1 to 2.5).
        static const std::map<std::string, std::string> console_actions{
            {"os-getVNCConsole", "vnc"},
            {"os-getSPICEConsole", "spice"},
            {"os-getRDPConsole", "rdp"},
            {"os-getSerialConsole", "serial"}};
        if (auto console = console_actions.find(action);
            console != console_actions.end() && !at_least(ctx, 6)) {
          if (!args.is_object()) require_object(args, action);
          auto& o = args.as_object();
          auto* type = o.if_contains("type");
          if (!type)
            throw BadRequest("Invalid input for field/attribute " + action +
                             ". 'type' is a required property");
          for (auto& kv : o)
            if (kv.key() != "type") throw BadRequest(unexpected(action, kv.key()));
          if (!type->is_string())
            throw BadRequest(
                invalid("type", *type, json::serialize(*type) + " is not of type 'string'"));
          auto made =
              s.create_remote_console(c, id, console->second, std::string(type->as_string()));
          return json_response(200,
                               json::object{{"console", json::object{{"type", made.at("type")},
                                                                     {"url", made.at("url")}}}});
        }
        static const std::set<std::string> no_args{"os-stop",       "unshelve",
                                                   "os-start",      "pause",
                                                   "unpause",       "suspend",
                                                   "resume",        "unrescue",
                                                   "shelve",        "shelveOffload",
                                                   "confirmResize", "revertResize",
                                                   "migrate",       "trigger_crash_dump",
                                                   "restore",       "forceDelete",
                                                   "unlock"};
        if (action == "reboot") {
          require_field(args, action, "type");
          auto& t = args.as_object().at("type");
          static const std::set<std::string> types{"HARD", "Hard", "hard", "SOFT", "Soft", "soft"};
          if (!t.is_string() || !types.count(std::string(t.as_string())))
            throw BadRequest(
                invalid("type", t,
                        json::serialize(t) +
                            " is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"));
          std::string upper(t.as_string());
          for (auto& ch : upper)
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          s.server_action(c, id, "reboot", json::object{{"type", upper}});
          return empty(202);
        }
        if (action == "resize") {
          require_field(args, action, "flavorRef");
          auto& f = args.as_object().at("flavorRef");
          std::string ref = f.is_int64()    ? std::to_string(f.as_int64())
                            : f.is_string() ? std::string(f.as_string())
                                            : "";
          if (ref.empty())
            throw BadRequest(invalid("flavorRef", f,
                                     json::serialize(f) + " is not of type 'string', 'integer'"));
          json::object resize{{"flavorRef", ref}};
          if (auto* dc = args.as_object().if_contains("OS-DCF:diskConfig")) {
            if (!dc->is_string() || (dc->as_string() != "AUTO" && dc->as_string() != "MANUAL"))
              throw BadRequest(invalid("OS-DCF:diskConfig", *dc,
                                       json::serialize(*dc) + " is not one of ['AUTO', 'MANUAL']"));
            resize["OS-DCF:diskConfig"] = *dc;
          }
          s.server_action(c, id, "resize", resize);
          return empty(202);
        }
        if (action == "rebuild") {
          require_field(args, action, "imageRef");
          auto& image = args.as_object().at("imageRef");
          if (!image.is_string() || image.as_string().empty())
            throw BadRequest(
                invalid("imageRef", image, json::serialize(image) + " is not of type 'string'"));
          if (auto* name = args.as_object().if_contains("name")) checked_name(*name, "name");
          auto result = s.server_action(c, id, "rebuild", args);
          auto row = s.show_server(c, id);
          auto view = server_view(s, ctx, row, ServerView::Rebuild);
          view["adminPass"] = result.at("adminPass");
          return json_response(202, json::object{{"server", std::move(view)}});
        }
        if (action == "rescue") {
          if (!args.is_null()) require_object(args, action);
          auto result = s.server_action(c, id, "rescue", args);
          return json_response(200, result);
        }
        if (action == "lock") {
          if (!args.is_null()) require_object(args, action);
          if (args.is_object()) {
            if (auto* reason = args.as_object().if_contains("locked_reason")) {
              if (!at_least(ctx, 73)) throw BadRequest(unexpected("lock", "locked_reason"));
              if (!reason->is_string() || reason->as_string().size() > 255)
                throw BadRequest(invalid("locked_reason", *reason,
                                         json::serialize(*reason) + " is not of type 'string'"));
            }
          }
          s.server_action(c, id, "lock", args);
          return empty(202);
        }
        if (action == "os-migrateLive") {
          // Nova's schema: host and block_migration required; disk_over_commit before 2.25,
          // block_migration "auto" from 2.25, force from 2.30 to 2.67.
          require_object(args, action);
          auto& a = args.as_object();
          bool v225 = at_least(ctx, 25), v230 = at_least(ctx, 30), v268 = at_least(ctx, 68);
          only_keys(a, action,
                    {{"host", true},
                     {"block_migration", true},
                     {"disk_over_commit", !v225},
                     {"force", v230 && !v268}});
          require_field(args, action, "host");
          require_field(args, action, "block_migration");
          if (!v225) require_field(args, action, "disk_over_commit");
          auto& host = a.at("host");
          if (!host.is_null() && (!host.is_string() || host.as_string().empty()))
            throw BadRequest(
                invalid("host", host, json::serialize(host) + " is not of type 'string', 'null'"));
          auto& block = a.at("block_migration");
          if (!block.is_bool() && !(v225 && block.is_string() && block.as_string() == "auto"))
            throw BadRequest(invalid("block_migration", block,
                                     json::serialize(block) + " is not of type 'boolean'"));
          for (auto* key : {"disk_over_commit", "force"})
            if (auto* v = a.if_contains(key); v && !v->is_bool())
              throw BadRequest(invalid(key, *v, json::serialize(*v) + " is not of type 'boolean'"));
          // A named host is taken as it is before 2.30 and with force, else the filters check it.
          auto* force = a.if_contains("force");
          bool forced = !v230 || (force && force->as_bool());
          s.server_action(
              c, id, action,
              json::object{{"host", host.is_string() ? host : json::value("")}, {"force", forced}});
          return empty(202);
        }
        if (action == "evacuate") {
          // Nova's schema: onSharedStorage required before 2.14 and gone from it; force from 2.29
          // to 2.67; from 2.95 the server arrives stopped.
          require_object(args, action);
          auto& a = args.as_object();
          bool v214 = at_least(ctx, 14), v229 = at_least(ctx, 29), v268 = at_least(ctx, 68);
          only_keys(a, action,
                    {{"host", true},
                     {"adminPass", true},
                     {"onSharedStorage", !v214},
                     {"force", v229 && !v268}});
          if (!v214) require_field(args, action, "onSharedStorage");
          json::object evacuate{{"stop", at_least(ctx, 95)}};
          if (auto* host = a.if_contains("host")) {
            if (!host->is_string() || host->as_string().empty() || host->as_string().size() > 255)
              throw BadRequest(
                  invalid("host", *host, json::serialize(*host) + " is not of type 'string'"));
            evacuate["host"] = *host;
          }
          std::optional<bool> shared, force;
          if (auto* v = a.if_contains("onSharedStorage"); v && !(shared = nova_boolean(*v)))
            throw BadRequest(invalid("onSharedStorage", *v,
                                     json::serialize(*v) + " is not of type 'boolean', 'string'"));
          if (auto* v = a.if_contains("force"); v && !(force = nova_boolean(*v)))
            throw BadRequest(
                invalid("force", *v, json::serialize(*v) + " is not of type 'boolean', 'string'"));
          if (auto* pass = a.if_contains("adminPass")) {
            if (!pass->is_string())
              throw BadRequest(
                  invalid("adminPass", *pass, json::serialize(*pass) + " is not of type 'string'"));
            if (shared.value_or(false))
              throw BadRequest("admin password can't be changed on existing disk");
            evacuate["adminPass"] = *pass;
          }
          if (force.value_or(false) && !evacuate.contains("host"))
            throw BadRequest("Can't force to a non-provided destination");
          // Before 2.29 a named host is taken as it is; from 2.29 only with force.
          evacuate["force"] = !v229 || force.value_or(false);
          auto result = s.server_action(c, id, action, evacuate);
          if (v214) return empty(200);
          // Before 2.14 the new password is returned (none when the disk is kept on shared
          // storage).
          return json_response(
              200, json::object{{"adminPass", shared.value_or(false) ? json::value(nullptr)
                                                                     : result.at("adminPass")}});
        }
        if (action == "os-resetState") {
          require_field(args, action, "state");
          auto& st = args.as_object().at("state");
          if (!st.is_string() || (st.as_string() != "active" && st.as_string() != "error"))
            throw BadRequest(
                invalid("state", st, json::serialize(st) + " is not one of ['active', 'error']"));
          s.server_action(c, id, action, args);
          return empty(202);
        }
        if (action == "createImage" || action == "createBackup") {
          require_field(args, action, "name");
          auto& a = args.as_object();
          auto name = checked_name(a.at("name"), "name");
          std::map<std::string, std::string> metadata;
          if (auto* m = a.if_contains("metadata")) metadata = metadata_field(*m, "metadata");
          std::optional<std::pair<std::string, std::int64_t>> backup;
          if (action == "createBackup") {
            require_field(args, action, "backup_type");
            require_field(args, action, "rotation");
            auto& type = a.at("backup_type");
            if (!type.is_string())
              throw BadRequest(
                  invalid("backup_type", type, json::serialize(type) + " is not of type 'string'"));
            auto& r = a.at("rotation");
            std::int64_t rotation = -1;
            if (r.is_int64())
              rotation = r.as_int64();
            else if (r.is_string() && !r.as_string().empty() && r.as_string().size() < 10 &&
                     std::all_of(r.as_string().begin(), r.as_string().end(), [](char ch) {
                       return std::isdigit(static_cast<unsigned char>(ch));
                     }))
              rotation = std::stoll(std::string(r.as_string()));
            else
              throw BadRequest(invalid("rotation", r,
                                       json::serialize(r) + " is not of type 'integer', 'string'"));
            if (rotation < 0)
              throw BadRequest(
                  invalid("rotation", r, json::serialize(r) + " is less than the minimum of 0"));
            backup = std::pair{std::string(type.as_string()), rotation};
          }
          auto image_id = s.snapshot_server(c, id, name, metadata, backup);
          // From 2.45 the image id is in the body; before, in a Location header.
          if (at_least(ctx, 45)) return json_response(202, json::object{{"image_id", image_id}});
          auto r = empty(202);
          r.headers.set("Location", s.images()->location(image_id));
          return r;
        }
        if (action == "shelve") {
          if (!args.is_null() && !args.is_object()) require_object(args, action);
          s.shelve_server(c, id);
          return empty(202);
        }
        if (action == "forceDelete") {
          s.delete_server(c, id, true);
          return empty(202);
        }
        if (!no_args.count(action)) {
          s.show_server(c, id);  // an unknown server is a 404 whatever the action
          throw BadRequest("There is no such action: " + action);
        }
        if (!args.is_null() && !args.is_object()) require_object(args, action);
        s.server_action(c, id, action, args);
        return empty(action == "confirmResize" ? 204 : 202);
      }});
}

void add_console_routes(std::vector<Route>& routes, ComputeService& s) {
  Route create{
      "POST", "/v2.1/servers/{id}/remote-consoles", [&s](Context& ctx) {
        auto body = ctx.body();
        auto* rc = body.if_contains("remote_console");
        if (!rc)
          throw BadRequest(
              "Invalid input for field/attribute remote_console. 'remote_console' is a "
              "required property");
        for (auto& kv : body)
          if (kv.key() != "remote_console") throw BadRequest(unexpected("body", kv.key()));
        if (!rc->is_object())
          throw BadRequest(
              invalid("remote_console", *rc, json::serialize(*rc) + " is not of type 'object'"));
        auto& o = rc->as_object();
        // The schema's enums per microversion (mks and webmks from 2.8).
        std::vector<std::string> protocols{"vnc", "spice", "rdp", "serial"};
        std::vector<std::string> types{"novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"};
        if (at_least(ctx, 8)) {
          protocols.push_back("mks");
          types.push_back("webmks");
        }
        std::map<std::string, std::string> values;
        for (auto [field, allowed] : {std::pair{"protocol", &protocols}, {"type", &types}}) {
          auto* v = o.if_contains(field);
          if (!v)
            throw BadRequest("Invalid input for field/attribute remote_console. '" +
                             std::string(field) + "' is a required property");
          if (!v->is_string() || std::find(allowed->begin(), allowed->end(),
                                           std::string(v->as_string())) == allowed->end()) {
            std::string list;
            for (auto& a : *allowed) list += (list.empty() ? "'" : ", '") + a + "'";
            throw BadRequest(
                invalid(field, *v, json::serialize(*v) + " is not one of [" + list + "]"));
          }
          values[field] = std::string(v->as_string());
        }
        for (auto& kv : o)
          if (kv.key() != "protocol" && kv.key() != "type")
            throw BadRequest(unexpected("remote_console", kv.key()));
        return json_response(
            200, json::object{{"remote_console",
                               s.create_remote_console(caller(ctx), ctx.param("id"),
                                                       values["protocol"], values["type"])}});
      }};
  create.min_version = {2, 6};
  routes.push_back(std::move(create));
  routes.push_back(Route{
      "GET", "/v2.1/os-console-auth-tokens/{token}", [&s](Context& ctx) {
        return json_response(
            200, json::object{{"console", s.console_auth_token(caller(ctx), ctx.param("token"),
                                                               at_least(ctx, 31))}});
      }});
}

void add_server_detail_routes(std::vector<Route>& routes, ComputeService& s) {
  auto meta = "/v2.1/servers/{id}/metadata";
  routes.push_back(Route{"GET", meta, [&s](Context& ctx) {
                           return json_response(
                               200, json::object{{"metadata", string_object(s.server_metadata(
                                                                  caller(ctx), ctx.param("id")))}});
                         }});
  routes.push_back(
      Route{"PUT", meta, [&s](Context& ctx) {
              auto items = metadata_body(ctx, "metadata");
              return json_response(
                  200, json::object{{"metadata", string_object(s.set_server_metadata(
                                                     caller(ctx), ctx.param("id"), items, true))}});
            }});
  routes.push_back(Route{
      "POST", meta, [&s](Context& ctx) {
        auto items = metadata_body(ctx, "metadata");
        return json_response(
            200, json::object{{"metadata", string_object(s.set_server_metadata(
                                               caller(ctx), ctx.param("id"), items, false))}});
      }});
  auto item = "/v2.1/servers/{id}/metadata/{key}";
  routes.push_back(Route{
      "GET", item, [&s](Context& ctx) {
        auto all = s.server_metadata(caller(ctx), ctx.param("id"));
        auto it = all.find(ctx.param("key"));
        if (it == all.end()) throw NotFound("Metadata item was not found");
        return json_response(200, json::object{{"meta", json::object{{it->first, it->second}}}});
      }});
  routes.push_back(Route{"PUT", item, [&s](Context& ctx) {
                           auto items = metadata_body(ctx, "meta");
                           if (items.size() != 1)
                             throw BadRequest("Request body contains too many items");
                           if (items.begin()->first != ctx.param("key"))
                             throw BadRequest("Request body and URI mismatch");
                           s.set_server_metadata(caller(ctx), ctx.param("id"), items, false);
                           return json_response(200, json::object{{"meta", string_object(items)}});
                         }});
  routes.push_back(Route{"DELETE", item, [&s](Context& ctx) {
                           s.delete_server_metadata(caller(ctx), ctx.param("id"), ctx.param("key"));
                           return empty(204);
                         }});

  Route tags{"GET", "/v2.1/servers/{id}/tags", [&s](Context& ctx) {
               json::array out;
               for (auto& t : s.server_tags(caller(ctx), ctx.param("id")))
                 out.push_back(json::value(t));
               return json_response(200, json::object{{"tags", std::move(out)}});
             }};
  tags.min_version = {2, 26};
  routes.push_back(tags);
  tags.method = "PUT";
  tags.handler = [&s](Context& ctx) {
    auto body = ctx.body();
    auto* v = body.if_contains("tags");
    if (!v)
      throw BadRequest("Invalid input for field/attribute tags. 'tags' is a required property");
    if (!v->is_array() || v->as_array().size() > 50)
      throw BadRequest(invalid("tags", *v, json::serialize(*v) + " is not a valid list of tags"));
    std::vector<std::string> list;
    for (auto& t : v->as_array()) {
      if (!t.is_string() || t.as_string().empty() || t.as_string().size() > 60 ||
          std::string_view(t.as_string()).find_first_of("/,") != std::string_view::npos)
        throw BadRequest(invalid("tags", t, json::serialize(t) + " does not match '^[^,/]*$'"));
      list.emplace_back(t.as_string());
    }
    json::array out;
    for (auto& t : s.set_server_tags(caller(ctx), ctx.param("id"), list))
      out.push_back(json::value(t));
    return json_response(200, json::object{{"tags", std::move(out)}});
  };
  routes.push_back(tags);
  tags.method = "DELETE";
  tags.handler = [&s](Context& ctx) {
    s.set_server_tags(caller(ctx), ctx.param("id"), {});
    return empty(204);
  };
  routes.push_back(tags);
  Route tag{"GET", "/v2.1/servers/{id}/tags/{tag}", [&s](Context& ctx) {
              auto all = s.server_tags(caller(ctx), ctx.param("id"));
              if (std::find(all.begin(), all.end(), ctx.param("tag")) == all.end())
                throw NotFound("Tag " + ctx.param("tag") + " could not be found.");
              return empty(204);
            }};
  tag.min_version = {2, 26};
  routes.push_back(tag);
  tag.method = "PUT";
  tag.handler = [&s](Context& ctx) {
    auto t = ctx.param("tag");
    if (t.empty() || t.size() > 60 || t.find_first_of("/,") != std::string::npos)
      throw BadRequest("Tag '" + t +
                       "' is invalid. It must be a non-empty string of at most 60 characters "
                       "without ',' or '/'.");
    bool added = s.add_server_tag(caller(ctx), ctx.param("id"), t);
    auto r = empty(added ? 201 : 204);
    r.headers.set("Location",
                  s.settings().public_url + "/v2.1/servers/" + ctx.param("id") + "/tags/" + t);
    return r;
  };
  routes.push_back(tag);
  tag.method = "DELETE";
  tag.handler = [&s](Context& ctx) {
    s.delete_server_tag(caller(ctx), ctx.param("id"), ctx.param("tag"));
    return empty(204);
  };
  routes.push_back(tag);

  // Addresses, from the server's network info cache.
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/ips", [&s](Context& ctx) {
              ctx.authorize("os_compute_api:ips:index", {{"project_id", ctx.auth->project_id}});
              auto row = s.show_server(caller(ctx), ctx.param("id"));
              return json_response(200, json::object{{"addresses", addresses_view(row)}});
            }});
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/ips/{network}", [&s](Context& ctx) {
              ctx.authorize("os_compute_api:ips:show", {{"project_id", ctx.auth->project_id}});
              auto row = s.show_server(caller(ctx), ctx.param("id"));
              auto all = addresses_view(row);
              auto* one = all.if_contains(ctx.param("network"));
              if (!one) throw NotFound("Instance is not a member of specified network");
              return json_response(200, json::object{{ctx.param("network"), *one}});
            }});

  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/os-instance-actions", [&s](Context& ctx) {
              json::array out;
              for (auto& a : s.instance_actions(caller(ctx), ctx.param("id")))
                out.push_back(action_view(ctx, a));
              return json_response(200, json::object{{"instanceActions", std::move(out)}});
            }});
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/os-instance-actions/{request_id}", [&s](Context& ctx) {
              auto a = s.instance_action(caller(ctx), ctx.param("id"), ctx.param("request_id"));
              auto v = action_view(ctx, a);
              Target target{{"project_id", string_or(a, "project_id")}};
              bool admin_events = ctx.allowed("os_compute_api:os-instance-actions:events", target);
              if (admin_events || at_least(ctx, 51)) {
                json::array events;
                for (auto& e : a.at("events").as_array()) {
                  auto& o = e.as_object();
                  json::object ev{{"event", o.at("event")},
                                  {"start_time", o.at("start_time")},
                                  {"finish_time", o.at("finish_time")},
                                  {"result", o.at("result")}};
                  if (admin_events) ev["traceback"] = o.at("traceback");
                  if (at_least(ctx, 62)) {
                    if (admin_events)
                      ev["host"] = o.at("host").is_string() ? o.at("host") : json::value("");
                    ev["hostId"] = "";
                  }
                  if (at_least(ctx, 84) &&
                      ctx.allowed("os_compute_api:os-instance-actions:events:details", target))
                    ev["details"] = nullptr;
                  events.push_back(std::move(ev));
                }
                v["events"] = std::move(events);
              }
              return json_response(200, json::object{{"instanceAction", std::move(v)}});
            }});

  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/os-server-password", [&s](Context& ctx) {
              return json_response(
                  200, json::object{{"password", s.server_password(caller(ctx), ctx.param("id"))}});
            }});
  routes.push_back(Route{"DELETE", "/v2.1/servers/{id}/os-server-password", [&s](Context& ctx) {
                           s.clear_server_password(caller(ctx), ctx.param("id"));
                           return empty(204);
                         }});
}

}  // namespace nubo::compute::api
