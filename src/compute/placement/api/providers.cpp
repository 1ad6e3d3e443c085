// /resource_providers: providers, their inventories, usages, traits, aggregates and allocations.
#include "compute/placement/api/common.hpp"

namespace nubo::placement::api {

namespace {

constexpr const char* kRule = "placement:resource_providers:";

std::string rule(const char* what) { return std::string(kRule) + what; }

// A provider uuid from the path: an unknown or malformed one is simply not found.
const std::string& path_uuid(const Context& ctx) { return ctx.param("uuid"); }

// One inventory's fields from a body object; `total` required, the rest defaulted as Placement
// does.
Inventory inventory_from(const json::object& o) {
  Inventory inv;
  require_keys(o, {"total"});
  for (auto& kv : o) {
    auto& v = kv.value();
    if (kv.key() == "total")
      inv.total = integer_of(v, 1, kMaxInt);
    else if (kv.key() == "reserved")
      inv.reserved = integer_of(v, 0, kMaxInt);
    else if (kv.key() == "min_unit")
      inv.min_unit = integer_of(v, 1, kMaxInt);
    else if (kv.key() == "max_unit")
      inv.max_unit = integer_of(v, 1, kMaxInt);
    else if (kv.key() == "step_size")
      inv.step_size = integer_of(v, 1, kMaxInt);
    else if (kv.key() == "allocation_ratio") {
      if (!v.is_number()) invalid(repr(v) + " is not of type 'number'");
      inv.allocation_ratio = v.to_number<double>();
      if (inv.allocation_ratio > 3.40282e38)
        invalid(repr(v) + " is greater than the maximum of 3.40282e+38");
    }
  }
  return inv;
}

http::Response inventories_response(std::int64_t generation, const Inventories& all) {
  json::object inventories;
  for (auto& [rc, inv] : all) inventories[rc] = inventory_view(inv);
  return json_ok(json::object{{"resource_provider_generation", generation},
                              {"inventories", std::move(inventories)}});
}

http::Response inventory_response(std::int64_t generation, const Inventory& inv, int status = 200) {
  auto v = inventory_view(inv);
  v["resource_provider_generation"] = generation;
  return json_ok(v, status);
}

std::int64_t generation_of(const json::object& o) {
  require_keys(o, {"resource_provider_generation"});
  return integer_of(o.at("resource_provider_generation"), std::numeric_limits<std::int64_t>::min(),
                    std::numeric_limits<std::int64_t>::max());
}

std::vector<std::string> string_list(const json::value& v, bool uuids) {
  if (!v.is_array()) invalid(repr(v) + " is not of type 'array'");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& x : v.as_array()) {
    auto s = uuids ? uuid_of(x) : string_of(x);
    if (!seen.insert(s).second) invalid(repr(v) + " has non-unique elements");
    out.push_back(s);
  }
  return out;
}

}  // namespace

void add_provider_routes(std::vector<Route>& routes, PlacementService& s) {
  routes.push_back(route("GET", "/resource_providers", rule("list"), [&s](Context& ctx) {
    std::set<std::string> allowed{"name", "uuid"};
    if (at_least(ctx, 3)) allowed.insert("member_of");
    if (at_least(ctx, 4)) allowed.insert("resources");
    if (at_least(ctx, 14)) allowed.insert("in_tree");
    if (at_least(ctx, 18)) allowed.insert("required");
    only_query(ctx, allowed);
    ProviderFilter f;
    f.name = query(ctx, "name");
    if (auto u = query(ctx, "uuid")) {
      auto canonical = canonical_uuid(*u);
      if (!canonical)
        throw placement_error(400, "Invalid query string parameters: '" + *u + "' is not a 'uuid'");
      f.uuid = *canonical;
    }
    if (auto t = query(ctx, "in_tree")) {
      auto canonical = canonical_uuid(*t);
      if (!canonical)
        throw placement_error(400, "Invalid query string parameters: '" + *t + "' is not a 'uuid'");
      f.in_tree = *canonical;
    }
    if (auto r = query(ctx, "resources")) f.resources = parse_resources(*r);
    if (query(ctx, "member_of"))
      parse_member_of(ctx, "member_of", f.member_of, f.forbidden_aggregates);
    if (query(ctx, "required"))
      parse_required(ctx, "required", f.required_traits, f.forbidden_traits);
    json::array out;
    for (auto& p : s.list_providers(f)) out.push_back(provider_view(ctx, p));
    return json_ok(json::object{{"resource_providers", std::move(out)}});
  }));
  routes.push_back(route("POST", "/resource_providers", rule("create"), [&s](Context& ctx) {
    auto v = body(ctx);
    auto& o = object_of(v);
    if (at_least(ctx, 14))
      only_keys(o, {"name", "uuid", "parent_provider_uuid"});
    else
      only_keys(o, {"name", "uuid"});
    require_keys(o, {"name"});
    auto name = string_of(o.at("name"), 200);
    std::optional<std::string> uuid, parent;
    if (auto* u = o.if_contains("uuid")) uuid = uuid_of(*u);
    if (auto* p = o.if_contains("parent_provider_uuid"); p && !p->is_null()) parent = uuid_of(*p);
    auto p = s.create_provider(name, uuid, parent);
    http::Response r;
    if (at_least(ctx, 20)) {
      r = json_ok(provider_view(ctx, p));
    } else {
      r.status = 201;
    }
    r.headers.set("Location", "/resource_providers/" + p.uuid);
    return r;
  }));
  routes.push_back(route("GET", "/resource_providers/{uuid}", rule("show"), [&s](Context& ctx) {
    return json_ok(provider_view(ctx, s.provider(path_uuid(ctx))));
  }));
  routes.push_back(route("PUT", "/resource_providers/{uuid}", rule("update"), [&s](Context& ctx) {
    s.provider(path_uuid(ctx));  // 404 before the body, as Placement
    auto v = body(ctx);
    auto& o = object_of(v);
    if (at_least(ctx, 14))
      only_keys(o, {"name", "parent_provider_uuid"});
    else
      only_keys(o, {"name"});
    require_keys(o, {"name"});
    auto name = string_of(o.at("name"), 200);
    std::optional<std::optional<std::string>> parent;
    if (auto* p = o.if_contains("parent_provider_uuid"))
      parent =
          p->is_null() ? std::optional<std::string>() : std::optional<std::string>(uuid_of(*p));
    return json_ok(
        provider_view(ctx, s.update_provider(path_uuid(ctx), name, parent, at_least(ctx, 37))));
  }));
  routes.push_back(
      route("DELETE", "/resource_providers/{uuid}", rule("delete"), [&s](Context& ctx) {
        s.delete_provider(path_uuid(ctx));
        return empty_response(204);
      }));

  // Inventories.
  routes.push_back(route("GET", "/resource_providers/{uuid}/inventories", rule("inventories:list"),
                         [&s](Context& ctx) {
                           auto [generation, all] = s.inventories(path_uuid(ctx));
                           return inventories_response(generation, all);
                         }));
  routes.push_back(
      route("PUT", "/resource_providers/{uuid}/inventories", rule("inventories:update"),
            [&s](Context& ctx) {
              s.provider(path_uuid(ctx));
              auto v = body(ctx);
              auto& o = object_of(v);
              only_keys(o, {"resource_provider_generation", "inventories"});
              require_keys(o, {"resource_provider_generation", "inventories"});
              auto generation = generation_of(o);
              auto& inventories = object_of(o.at("inventories"));
              Inventories wanted;
              for (auto& kv : inventories) {
                std::string rc(kv.key());
                if (!valid_class_name(rc))
                  invalid("'" + rc + "' does not match any of the regexes: '^[A-Z0-9_]+$'");
                auto& one = object_of(kv.value());
                only_keys(one, {"resource_provider_generation", "total", "reserved", "min_unit",
                                "max_unit", "step_size", "allocation_ratio"});
                wanted[rc] = inventory_from(one);
              }
              auto new_generation =
                  s.set_inventories(path_uuid(ctx), generation, wanted, at_least(ctx, 26));
              return inventories_response(new_generation, wanted);
            }));
  routes.push_back(route(
      "POST", "/resource_providers/{uuid}/inventories", rule("inventories:create"),
      [&s](Context& ctx) {
        s.provider(path_uuid(ctx));
        auto v = body(ctx);
        auto& o = object_of(v);
        only_keys(o, {"resource_class", "resource_provider_generation", "total", "reserved",
                      "min_unit", "max_unit", "step_size", "allocation_ratio"});
        require_keys(o, {"total", "resource_class"});
        auto rc = string_of(o.at("resource_class"));
        if (!valid_class_name(rc))
          invalid(repr(o.at("resource_class")) + " does not match '^[A-Z0-9_]+$'");
        auto inv = inventory_from(o);
        auto generation = s.create_inventory(path_uuid(ctx), rc, inv, at_least(ctx, 26));
        auto r = inventory_response(generation, inv, 201);
        r.headers.set("Location", "/resource_providers/" + path_uuid(ctx) + "/inventories/" + rc);
        return r;
      }));
  routes.push_back(route("DELETE", "/resource_providers/{uuid}/inventories",
                         rule("inventories:delete"), [&s](Context& ctx) {
                           if (!at_least(ctx, 5)) throw MethodNotAllowed();
                           s.delete_inventories(path_uuid(ctx));
                           return empty_response(204);
                         }));
  routes.push_back(route("GET", "/resource_providers/{uuid}/inventories/{resource_class}",
                         rule("inventories:show"), [&s](Context& ctx) {
                           auto [generation, all] = s.inventories(path_uuid(ctx));
                           auto& rc = ctx.param("resource_class");
                           auto it = all.find(rc);
                           if (it == all.end())
                             throw placement_error(
                                 404, "No inventory of class " + rc + " for " + path_uuid(ctx));
                           return inventory_response(generation, it->second);
                         }));
  routes.push_back(route("PUT", "/resource_providers/{uuid}/inventories/{resource_class}",
                         rule("inventories:update"), [&s](Context& ctx) {
                           s.provider(path_uuid(ctx));
                           auto v = body(ctx);
                           auto& o = object_of(v);
                           only_keys(o, {"resource_provider_generation", "total", "reserved",
                                         "min_unit", "max_unit", "step_size", "allocation_ratio"});
                           require_keys(o, {"total", "resource_provider_generation"});
                           auto inv = inventory_from(o);
                           auto generation =
                               s.update_inventory(path_uuid(ctx), ctx.param("resource_class"),
                                                  generation_of(o), inv, at_least(ctx, 26));
                           return inventory_response(generation, inv);
                         }));
  routes.push_back(route("DELETE", "/resource_providers/{uuid}/inventories/{resource_class}",
                         rule("inventories:delete"), [&s](Context& ctx) {
                           s.delete_inventory(path_uuid(ctx), ctx.param("resource_class"));
                           return empty_response(204);
                         }));

  // Usages and allocations of one provider.
  routes.push_back(
      route("GET", "/resource_providers/{uuid}/usages", rule("usages"), [&s](Context& ctx) {
        auto [generation, usages] = s.provider_usages(path_uuid(ctx));
        json::object u;
        for (auto& [rc, n] : usages) u[rc] = n;
        return json_ok(
            json::object{{"resource_provider_generation", generation}, {"usages", std::move(u)}});
      }));
  routes.push_back(route("GET", "/resource_providers/{uuid}/allocations", rule("allocations:list"),
                         [&s](Context& ctx) {
                           std::int64_t generation = 0;
                           std::map<std::string, std::int64_t> consumer_generations;
                           auto all = s.provider_allocations(path_uuid(ctx), generation,
                                                             consumer_generations);
                           json::object allocations;
                           for (auto& [consumer, amounts] : all) {
                             json::object resources;
                             for (auto& [rc, n] : amounts) resources[rc] = n;
                             json::object one{{"resources", std::move(resources)}};
                             if (at_least(ctx, 28))
                               one["consumer_generation"] = consumer_generations[consumer];
                             allocations[consumer] = std::move(one);
                           }
                           return json_ok(json::object{{"resource_provider_generation", generation},
                                                       {"allocations", std::move(allocations)}});
                         }));

  // Traits of one provider (1.6).
  routes.push_back(route(
      "GET", "/resource_providers/{uuid}/traits", rule("traits:list"),
      [&s](Context& ctx) {
        auto [generation, traits] = s.provider_traits(path_uuid(ctx));
        json::array t(traits.begin(), traits.end());
        return json_ok(
            json::object{{"traits", std::move(t)}, {"resource_provider_generation", generation}});
      },
      6));
  routes.push_back(route(
      "PUT", "/resource_providers/{uuid}/traits", rule("traits:update"),
      [&s](Context& ctx) {
        auto v = body(ctx);
        auto& o = object_of(v);
        only_keys(o, {"traits", "resource_provider_generation"});
        require_keys(o, {"traits", "resource_provider_generation"});
        auto generation = generation_of(o);
        auto traits = string_list(o.at("traits"), false);
        for (auto& t : traits)
          if (!valid_class_name(t))
            invalid(repr(json::value(t)) + " does not match '^[A-Z0-9_]+$'");
        auto new_generation = s.set_provider_traits(path_uuid(ctx), generation, traits);
        json::array t(traits.begin(), traits.end());
        return json_ok(json::object{{"traits", std::move(t)},
                                    {"resource_provider_generation", new_generation}});
      },
      6));
  routes.push_back(route(
      "DELETE", "/resource_providers/{uuid}/traits", rule("traits:delete"),
      [&s](Context& ctx) {
        s.delete_provider_traits(path_uuid(ctx));
        return empty_response(204);
      },
      6));

  // Aggregates of one provider (1.1; with the generation from 1.19).
  routes.push_back(route(
      "GET", "/resource_providers/{uuid}/aggregates", rule("aggregates:list"),
      [&s](Context& ctx) {
        auto [generation, aggregates] = s.provider_aggregates(path_uuid(ctx));
        json::object out{{"aggregates", json::array(aggregates.begin(), aggregates.end())}};
        if (at_least(ctx, 19)) out["resource_provider_generation"] = generation;
        return json_ok(out);
      },
      1));
  routes.push_back(route(
      "PUT", "/resource_providers/{uuid}/aggregates", rule("aggregates:update"),
      [&s](Context& ctx) {
        s.provider(path_uuid(ctx));
        auto v = body(ctx);
        std::vector<std::string> aggregates;
        std::optional<std::int64_t> generation;
        if (at_least(ctx, 19)) {
          auto& o = object_of(v);
          only_keys(o, {"aggregates", "resource_provider_generation"});
          require_keys(o, {"aggregates", "resource_provider_generation"});
          generation = generation_of(o);
          aggregates = string_list(o.at("aggregates"), true);
        } else {
          aggregates = string_list(v, true);
        }
        auto new_generation = s.set_provider_aggregates(path_uuid(ctx), generation, aggregates);
        json::object out{{"aggregates", json::array(aggregates.begin(), aggregates.end())}};
        if (at_least(ctx, 19)) out["resource_provider_generation"] = new_generation;
        return json_ok(out);
      },
      1));
}

}  // namespace nubo::placement::api
