// /resource_classes (1.2) and /traits (1.6): the standard names and the custom ones.
#include <sstream>

#include "compute/placement/api/common.hpp"

namespace nubo::placement::api {

namespace {

json::object class_view(const std::string& name) {
  return json::object{
      {"name", name},
      {"links", json::array{json::object{{"rel", "self"}, {"href", "/resource_classes/" + name}}}}};
}

const std::string kBadCustomClass = "' does not match '^CUSTOM_[A-Z0-9_]+$'";

void check_custom_class(const json::value& v) {
  auto name = string_of(v, 255);
  if (!valid_custom_name(name)) invalid(repr(v) + kBadCustomClass);
}

}  // namespace

void add_class_and_trait_routes(std::vector<Route>& routes, PlacementService& s) {
  routes.push_back(route(
      "GET", "/resource_classes", "placement:resource_classes:list",
      [&s](Context&) {
        json::array out;
        for (auto& name : s.resource_classes()) out.push_back(class_view(name));
        return json_ok(json::object{{"resource_classes", std::move(out)}});
      },
      2));
  routes.push_back(route(
      "POST", "/resource_classes", "placement:resource_classes:create",
      [&s](Context& ctx) {
        auto v = body(ctx);
        auto& o = object_of(v);
        only_keys(o, {"name"});
        require_keys(o, {"name"});
        check_custom_class(o.at("name"));
        std::string name(o.at("name").as_string());
        s.create_resource_class(name);
        auto r = empty_response(201);
        r.headers.set("Location", "/resource_classes/" + name);
        return r;
      },
      2));
  routes.push_back(route(
      "GET", "/resource_classes/{name}", "placement:resource_classes:show",
      [&s](Context& ctx) {
        auto& name = ctx.param("name");
        if (!s.resource_class_exists(name))
          throw placement_error(404, "No such resource class " + name + ".");
        return json_ok(class_view(name));
      },
      2));
  routes.push_back(route(
      "PUT", "/resource_classes/{name}", "placement:resource_classes:update",
      [&s](Context& ctx) {
        auto& name = ctx.param("name");
        if (at_least(ctx, 7)) {
          // Create or verify, without a body.
          if (!valid_custom_name(name) || name.size() > 255)
            invalid(repr(json::value(name)) + kBadCustomClass);
          auto r = empty_response(s.ensure_resource_class(name) ? 201 : 204);
          r.headers.set("Location", "/resource_classes/" + name);
          return r;
        }
        auto v = body(ctx);
        auto& o = object_of(v);
        only_keys(o, {"name"});
        require_keys(o, {"name"});
        check_custom_class(o.at("name"));
        std::string to(o.at("name").as_string());
        s.rename_resource_class(name, to);
        return json_ok(class_view(to));
      },
      2));
  routes.push_back(route(
      "DELETE", "/resource_classes/{name}", "placement:resource_classes:delete",
      [&s](Context& ctx) {
        s.delete_resource_class(ctx.param("name"));
        return empty_response(204);
      },
      2));

  routes.push_back(route(
      "GET", "/traits", "placement:traits:list",
      [&s](Context& ctx) {
        only_query(ctx, {"name", "associated"});
        std::optional<std::set<std::string>> names;
        std::optional<std::string> prefix;
        std::optional<bool> associated;
        if (auto n = query(ctx, "name")) {
          auto colon = n->find(':');
          if (colon == std::string::npos)
            throw placement_error(
                400,
                "Badly formatted name parameter. Expected name query string parameter in form: "
                "?name=[in|startswith]:[name1,name2|prefix]. Got: \"" +
                    *n + "\"");
          auto op = n->substr(0, colon), value = n->substr(colon + 1);
          if (op == "in") {
            names.emplace();
            std::stringstream ss(value);
            std::string t;
            while (std::getline(ss, t, ',')) names->insert(t);
          } else if (op == "startswith") {
            prefix = value;
          }
        }
        if (auto a = query(ctx, "associated")) {
          std::string lower = *a;
          for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (lower != "true" && lower != "false")
            throw placement_error(
                400, "The query parameter \"associated\" only accepts \"true\" or \"false\"");
          associated = lower == "true";
        }
        auto traits = s.traits(names, prefix, associated);
        return json_ok(json::object{{"traits", json::array(traits.begin(), traits.end())}});
      },
      6));
  routes.push_back(route(
      "GET", "/traits/{name}", "placement:traits:show",
      [&s](Context& ctx) {
        auto& name = ctx.param("name");
        if (!s.trait_exists(name)) throw placement_error(404, "No such trait(s): " + name + ".");
        return empty_response(204);
      },
      6));
  routes.push_back(route(
      "PUT", "/traits/{name}", "placement:traits:update",
      [&s](Context& ctx) {
        auto& name = ctx.param("name");
        if (!valid_custom_name(name) || name.size() > 255)
          throw placement_error(
              400,
              "The trait is invalid. A valid trait must be no longer than 255 characters, start "
              "with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" "
              "and \"_\"");
        auto r = empty_response(s.ensure_trait(name) ? 201 : 204);
        r.headers.set("Location", "/traits/" + name);
        return r;
      },
      6));
  routes.push_back(route(
      "DELETE", "/traits/{name}", "placement:traits:delete",
      [&s](Context& ctx) {
        s.delete_trait(ctx.param("name"));
        return empty_response(204);
      },
      6));
}

}  // namespace nubo::placement::api
