// /v2.1/os-aggregates: create, list, show, update, delete, and the add_host, remove_host and
// set_metadata actions; `uuid` shown from 2.41.
#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

json::object aggregate_view(Context& ctx, const json::object& a, bool with_members = true) {
  json::object v{{"id", a.at("number")},
                 {"name", a.at("name")},
                 {"availability_zone", a.at("availability_zone")},
                 {"created_at", a.at("created_at")},
                 {"updated_at", a.at("updated_at")},
                 {"deleted_at", nullptr},
                 {"deleted", false}};
  if (with_members) {
    v["hosts"] = a.at("hosts");
    v["metadata"] = a.at("metadata");
  }
  if (ctx.version >= Microversion{2, 41}) v["uuid"] = a.at("id");
  return v;
}

http::Response one(Context& ctx, const json::object& a, bool with_members = true) {
  return json_response(200, json::object{{"aggregate", aggregate_view(ctx, a, with_members)}});
}

std::string host_of(const json::value& action) {
  auto* h = action.is_object() ? action.as_object().if_contains("host") : nullptr;
  if (!h) throw BadRequest("Invalid input for field/attribute host. 'host' is a required property");
  return checked_name(*h, "host");
}

}  // namespace

void add_aggregate_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(
      Route{"GET", "/v2.1/os-aggregates", [&s](Context& ctx) {
              json::array items;
              for (auto& a : s.list_aggregates(caller(ctx)))
                items.push_back(aggregate_view(ctx, a));
              return json_response(200, json::object{{"aggregates", std::move(items)}});
            }});
  routes.push_back(Route{
      "POST", "/v2.1/os-aggregates", [&s](Context& ctx) {
        auto body = member(ctx, "aggregate");
        for (auto& kv : body)
          if (kv.key() != "name" && kv.key() != "availability_zone")
            throw BadRequest(
                "Invalid input for field/attribute aggregate. Additional properties are not "
                "allowed ('" +
                std::string(kv.key()) + "' was unexpected)");
        auto* name = body.if_contains("name");
        if (!name)
          throw BadRequest(
              "Invalid input for field/attribute aggregate. 'name' is a required property");
        std::optional<std::string> zone;
        if (auto* z = body.if_contains("availability_zone"); z && !z->is_null())
          zone = checked_name(*z, "availability_zone");
        return one(ctx, s.create_aggregate(caller(ctx), checked_name(*name, "name"), zone), false);
      }});
  routes.push_back(Route{"GET", "/v2.1/os-aggregates/{id}", [&s](Context& ctx) {
                           return one(ctx, s.show_aggregate(caller(ctx), ctx.param("id")));
                         }});
  routes.push_back(Route{
      "PUT", "/v2.1/os-aggregates/{id}", [&s](Context& ctx) {
        auto body = member(ctx, "aggregate");
        if (body.empty())
          throw BadRequest(
              "Invalid input for field/attribute aggregate. {} does not have enough properties");
        std::optional<std::string> name;
        std::optional<std::optional<std::string>> zone;
        for (auto& kv : body) {
          if (kv.key() == "name")
            name = checked_name(kv.value(), "name");
          else if (kv.key() == "availability_zone")
            zone = kv.value().is_null() ? std::optional<std::string>()
                                        : checked_name(kv.value(), "availability_zone");
          else
            throw BadRequest(
                "Invalid input for field/attribute aggregate. Additional properties are not "
                "allowed ('" +
                std::string(kv.key()) + "' was unexpected)");
        }
        return one(ctx, s.update_aggregate(caller(ctx), ctx.param("id"), name, zone));
      }});
  routes.push_back(Route{"DELETE", "/v2.1/os-aggregates/{id}", [&s](Context& ctx) {
                           s.delete_aggregate(caller(ctx), ctx.param("id"));
                           http::Response r;
                           r.status = 200;
                           return r;
                         }});
  routes.push_back(
      Route{"POST", "/v2.1/os-aggregates/{id}/action", [&s](Context& ctx) {
              auto body = ctx.body();
              if (body.size() != 1)
                throw BadRequest("Invalid input for field/attribute aggregate action.");
              auto& [action, arg] = *body.begin();
              auto c = caller(ctx);
              auto id = ctx.param("id");
              if (action == "add_host") return one(ctx, s.aggregate_add_host(c, id, host_of(arg)));
              if (action == "remove_host")
                return one(ctx, s.aggregate_remove_host(c, id, host_of(arg)));
              if (action == "set_metadata") {
                auto* m = arg.is_object() ? arg.as_object().if_contains("metadata") : nullptr;
                if (!m || !m->is_object())
                  throw BadRequest("Invalid input for field/attribute metadata.");
                return one(ctx, s.aggregate_set_metadata(c, id, m->as_object()));
              }
              throw BadRequest("Invalid input for field/attribute aggregate. Unknown action " +
                               std::string(action) + ".");
            }});
}

}  // namespace nubo::compute::api
