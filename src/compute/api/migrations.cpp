// /v2.1/os-migrations (admins): each microversion's fields; paged with uuid markers from 2.59.
// /servers/{id}/migrations lists live migrations in progress: none, as servers do not live-migrate
// here yet.
#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

json::object migration_view(Context& ctx, const json::object& m) {
  json::object v{{"id", m.at("number")},
                 {"status", m.at("status")},
                 {"instance_uuid", m.at("instance_id")},
                 {"source_node", m.at("source_node")},
                 {"source_compute", m.at("source_compute")},
                 {"dest_node", m.at("dest_node")},
                 {"dest_compute", m.at("dest_compute")},
                 {"dest_host", nullptr},
                 {"old_instance_type_id", m.at("old_instance_type_id")},
                 {"new_instance_type_id", m.at("new_instance_type_id")},
                 {"created_at", m.at("created_at")},
                 {"updated_at", m.at("updated_at")}};
  if (ctx.version >= Microversion{2, 23}) v["migration_type"] = m.at("migration_type");
  if (ctx.version >= Microversion{2, 59}) v["uuid"] = m.at("id");
  if (ctx.version >= Microversion{2, 80}) {
    v["user_id"] = m.at("user_id");
    v["project_id"] = m.at("project_id");
  }
  return v;
}

}  // namespace

void add_migration_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{
      "GET", "/v2.1/os-migrations", [&s](Context& ctx) {
        std::map<std::string, std::string> filters;
        for (auto* key : {"status", "migration_type", "instance_uuid", "host"})
          if (auto v = ctx.request.query_param(key)) filters[key] = *v;
        bool v259 = ctx.version >= Microversion{2, 59};
        if (v259)
          for (auto* key : {"changes-since", "changes-before"})
            if (auto v = ctx.request.query_param(key)) {
              auto t = parse_iso8601(*v);
              if (!t)
                throw BadRequest("Invalid input for query parameters " + std::string(key) +
                                 ". Value: " + *v + ". '" + *v + "' is not a 'date-time'");
              filters[key] = iso8601(*t, true, false);
            }
        if (ctx.version >= Microversion{2, 80})
          for (auto* key : {"user_id", "project_id"})
            if (auto v = ctx.request.query_param(key)) filters[key] = *v;
        std::optional<long> limit;
        std::string marker;
        if (v259) {
          limit = count_param(ctx, "limit");
          marker = ctx.request.query_param("marker").value_or("");
        }
        auto rows = s.list_migrations(caller(ctx), filters, marker, limit);
        json::array items;
        for (auto& m : rows) items.push_back(migration_view(ctx, m));
        json::object out{{"migrations", std::move(items)}};
        if (limit && !rows.empty() && static_cast<long>(rows.size()) >= *limit)
          out["migrations_links"] =
              next_links(s, ctx, "os-migrations", std::string(rows.back().at("id").as_string()));
        return json_response(200, out);
      }});
  Route server_migrations{
      "GET", "/v2.1/servers/{id}/migrations", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:servers:migrations:index", {{"project_id", c.project()}});
        s.show_server(c, ctx.param("id"));
        return json_response(200, json::object{{"migrations", json::array{}}});
      }};
  server_migrations.min_version = {2, 23};
  routes.push_back(server_migrations);
}

}  // namespace nubo::compute::api
