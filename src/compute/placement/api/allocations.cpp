// /allocations (per consumer, and several at once from 1.13), /usages (1.9) and
// /allocation_candidates (1.10) in each microversion's shape.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <sstream>

#include "compute/placement/api/common.hpp"

namespace nubo::placement::api {

namespace {

Amounts resources_of(const json::value& v) {
  auto& o = object_of(v);
  if (o.empty()) invalid("{} does not have enough properties");
  Amounts out;
  for (auto& kv : o) {
    std::string rc(kv.key());
    if (!valid_class_name(rc))
      invalid("'" + rc + "' does not match any of the regexes: '^[A-Z0-9_]+$'");
    out[rc] = integer_of(kv.value(), 1, std::numeric_limits<std::int64_t>::max());
  }
  return out;
}

// The dict form (1.12+): {rp_uuid: {"resources": {...}, "generation": n}}.
ProviderAmounts dict_allocations(const json::value& v, bool allow_empty) {
  auto& o = object_of(v);
  if (o.empty() && !allow_empty) invalid("{} does not have enough properties");
  ProviderAmounts out;
  for (auto& kv : o) {
    auto uuid = canonical_uuid(kv.key());
    if (!uuid || kv.key().size() != 36)
      invalid("'" + std::string(kv.key()) +
              "' does not match any of the regexes: '^[0-9a-fA-F-]{36}$'");
    auto& one = object_of(kv.value());
    only_keys(one, {"resources", "generation"});
    require_keys(one, {"resources"});
    if (auto* g = one.if_contains("generation"); g && !g->is_int64())
      invalid(repr(*g) + " is not of type 'integer'");
    out[*uuid] = resources_of(one.at("resources"));
  }
  return out;
}

// The list form (before 1.12): [{"resource_provider": {"uuid": u}, "resources": {...}}].
ProviderAmounts list_allocations(const json::value& v) {
  if (!v.is_array()) invalid(repr(v) + " is not of type 'array'");
  if (v.as_array().empty()) invalid("[] is too short");
  ProviderAmounts out;
  for (auto& item : v.as_array()) {
    auto& o = object_of(item);
    only_keys(o, {"resource_provider", "resources"});
    require_keys(o, {"resource_provider", "resources"});
    auto& rp = object_of(o.at("resource_provider"));
    only_keys(rp, {"uuid"});
    require_keys(rp, {"uuid"});
    out[uuid_of(rp.at("uuid"))] = resources_of(o.at("resources"));
  }
  return out;
}

std::string id_of(const json::object& o, const char* key) { return string_of(o.at(key), 255, 1); }

// One consumer's write from a body object, as the microversion shapes it.
AllocationWrite write_of(const Context& ctx, const std::string& consumer, const json::object& o,
                         bool post) {
  AllocationWrite w;
  w.consumer_uuid = consumer;
  bool dict = at_least(ctx, 12), generations = at_least(ctx, 28), types = at_least(ctx, 38);
  if (types)
    only_keys(o, {"allocations", "project_id", "user_id", "consumer_generation", "mappings",
                  "consumer_type"});
  else if (at_least(ctx, 34))
    only_keys(o, {"allocations", "project_id", "user_id", "consumer_generation", "mappings"});
  else if (generations)
    only_keys(o, {"allocations", "project_id", "user_id", "consumer_generation"});
  else if (at_least(ctx, 8))
    only_keys(o, {"allocations", "project_id", "user_id"});
  else
    only_keys(o, {"allocations"});
  require_keys(o, {"allocations"});
  if (at_least(ctx, 8)) require_keys(o, {"project_id", "user_id"});
  if (generations) require_keys(o, {"consumer_generation"});
  if (types) require_keys(o, {"consumer_type"});
  w.allocations = dict ? dict_allocations(o.at("allocations"), post || generations)
                       : list_allocations(o.at("allocations"));
  if (o.contains("project_id")) w.project_id = id_of(o, "project_id");
  if (o.contains("user_id")) w.user_id = id_of(o, "user_id");
  if (generations) {
    w.check_generation = true;
    auto& g = o.at("consumer_generation");
    if (!g.is_null()) {
      if (!g.is_int64()) invalid(repr(g) + " is not of type 'integer', 'null'");
      w.generation = g.as_int64();
    }
  }
  if (types) {
    auto t = string_of(o.at("consumer_type"), 255, 1);
    if (!valid_class_name(t))
      invalid(repr(o.at("consumer_type")) + " does not match '^[A-Z0-9_]+$'");
    w.consumer_type = t;
  }
  return w;
}

json::object resources_view(const Amounts& amounts) {
  json::object r;
  for (auto& [rc, n] : amounts) r[rc] = n;
  return r;
}

}  // namespace

void add_allocation_routes(std::vector<Route>& routes, PlacementService& s) {
  routes.push_back(route(
      "GET", "/allocations/{consumer_uuid}", "placement:allocations:list", [&s](Context& ctx) {
        auto a = s.consumer_allocations(ctx.param("consumer_uuid"));
        json::object allocations;
        for (auto& [p, amounts] : a.allocations)
          allocations[p] = json::object{{"generation", a.provider_generations[p]},
                                        {"resources", resources_view(amounts)}};
        json::object out{{"allocations", std::move(allocations)}};
        if (a.consumer && at_least(ctx, 12)) {
          out["project_id"] = a.consumer->project_id;
          out["user_id"] = a.consumer->user_id;
          if (at_least(ctx, 28)) out["consumer_generation"] = a.consumer->generation;
          if (at_least(ctx, 38))
            out["consumer_type"] = a.consumer->consumer_type.value_or("unknown");
        }
        return json_ok(out);
      }));
  routes.push_back(route(
      "PUT", "/allocations/{consumer_uuid}", "placement:allocations:update", [&s](Context& ctx) {
        auto consumer = canonical_uuid(ctx.param("consumer_uuid"));
        if (!consumer)
          throw placement_error(400, "Malformed consumer_uuid: " + ctx.param("consumer_uuid"));
        auto v = body(ctx);
        s.write_allocations({write_of(ctx, *consumer, object_of(v), false)}, true);
        return empty_response(204);
      }));
  routes.push_back(route("DELETE", "/allocations/{consumer_uuid}", "placement:allocations:delete",
                         [&s](Context& ctx) {
                           s.delete_allocations(ctx.param("consumer_uuid"));
                           return empty_response(204);
                         }));
  routes.push_back(route(
      "POST", "/allocations", "placement:allocations:manage",
      [&s](Context& ctx) {
        auto v = body(ctx);
        auto& o = object_of(v);
        if (o.empty()) invalid("{} does not have enough properties");
        std::vector<AllocationWrite> writes;
        std::set<std::string> seen;
        for (auto& kv : o) {
          auto consumer = canonical_uuid(kv.key());
          if (!consumer || kv.key().size() != 36)
            invalid("'" + std::string(kv.key()) +
                    "' does not match any of the regexes: '^[0-9a-fA-F-]{36}$'");
          if (!seen.insert(*consumer).second) invalid("consumer " + *consumer + " is named twice");
          auto& one = object_of(kv.value());
          // Every consumer of a POST names its project and user, whatever the microversion.
          require_keys(one, {"allocations", "project_id", "user_id"});
          writes.push_back(write_of(ctx, *consumer, one, true));
        }
        s.write_allocations(writes, false);
        return empty_response(204);
      },
      13));

  routes.push_back(route(
      "GET", "/usages", "placement:usages",
      [&s](Context& ctx) {
        bool types = at_least(ctx, 38);
        if (types)
          only_query(ctx, {"project_id", "user_id", "consumer_type"});
        else
          only_query(ctx, {"project_id", "user_id"});
        auto project = query(ctx, "project_id");
        if (!project)
          throw placement_error(
              400, "Invalid query string parameters: 'project_id' is a required property");
        auto user = query(ctx, "user_id");
        for (auto* v : {&*project, user ? &*user : nullptr})
          if (v && (v->empty() || v->size() > 255))
            throw placement_error(400, "Invalid query string parameters: '" + *v + "' is " +
                                           (v->empty() ? "too short" : "too long"));
        auto usages = s.project_usages(*project, user);
        json::object out;
        if (!types) {
          for (auto& [type, u] : usages)
            for (auto& [rc, n] : u.usages)
              out[rc] = (out.contains(rc) ? out[rc].as_int64() : 0) + n;
          return json_ok(json::object{{"usages", std::move(out)}});
        }
        auto wanted = query(ctx, "consumer_type");
        if (wanted && *wanted != "all" && *wanted != "unknown" && !valid_class_name(*wanted))
          throw placement_error(400, "Invalid query string parameters: '" + *wanted +
                                         "' does not match '^[A-Z0-9_]+$|^all|^unknown$'");
        for (auto& [type, u] : usages) {
          std::string name = type.empty() ? "unknown" : type;
          if (wanted && *wanted != "all" && *wanted != name) continue;
          auto v = resources_view(u.usages);
          v["consumer_count"] = u.consumer_count;
          out[name] = std::move(v);
        }
        if (wanted && *wanted == "all" && !usages.empty()) {
          // "all" sums every type into one entry.
          json::object all;
          std::int64_t count = 0;
          for (auto& [type, u] : usages) {
            for (auto& [rc, n] : u.usages)
              all[rc] = (all.contains(rc) ? all[rc].as_int64() : 0) + n;
            count += u.consumer_count;
          }
          all["consumer_count"] = count;
          out = json::object{{"all", std::move(all)}};
        }
        return json_ok(json::object{{"usages", std::move(out)}});
      },
      9));

  routes.push_back(route(
      "GET", "/allocation_candidates", "placement:allocation_candidates:list",
      [&s](Context& ctx) {
        std::set<std::string> allowed{"resources"};
        if (at_least(ctx, 16)) allowed.insert("limit");
        if (at_least(ctx, 17)) allowed.insert("required");
        if (at_least(ctx, 21)) allowed.insert("member_of");
        if (at_least(ctx, 25)) allowed.insert("group_policy");
        if (at_least(ctx, 31)) allowed.insert("in_tree");
        if (at_least(ctx, 35)) allowed.insert("root_required");
        if (at_least(ctx, 36)) allowed.insert("same_subtree");
        // Suffixed groups (1.25): resources<S>, required<S>, member_of<S>, in_tree<S> (1.31), with
        // numeric suffixes until 1.33 and names of [A-Za-z0-9_-]{1,64} from it.
        std::map<std::string, RequestGroup> groups;
        std::map<std::string, std::set<std::string>> keys_of;  // suffix → parameters given
        for (auto& [k, v] : ctx.request.query) {
          if (allowed.count(k)) continue;
          std::string suffix;
          if (at_least(ctx, 25))
            for (const char* prefix : {"resources", "required", "member_of", "in_tree"}) {
              std::string_view key(k);
              if (key.rfind(prefix, 0) != 0 || key.size() == std::strlen(prefix)) continue;
              if (std::string_view(prefix) == "in_tree" && !at_least(ctx, 31)) continue;
              auto rest = key.substr(std::strlen(prefix));
              bool named =
                  at_least(ctx, 33)
                      ? rest.size() <= 64 &&
                            std::all_of(rest.begin(), rest.end(),
                                        [](char c) {
                                          return std::isalnum(static_cast<unsigned char>(c)) ||
                                                 c == '_' || c == '-';
                                        })
                      : rest[0] != '0' && std::all_of(rest.begin(), rest.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c));
                        });
              if (named) {
                suffix = std::string(rest);
                keys_of[suffix].insert(prefix);
              }
            }
          if (suffix.empty())
            throw placement_error(
                400, "Invalid query string parameters: Additional properties are not allowed ('" +
                         k + "' was unexpected)");
        }
        if (ctx.request.query.count("same_subtree"))
          throw placement_error(
              400, "same_subtree names request groups, which this Placement does not support.");
        CandidateQuery q;
        for (auto& [suffix, given] : keys_of) {
          auto& g = groups[suffix];
          g.suffix = suffix;
          if (auto r = query(ctx, "resources" + suffix)) g.resources = parse_resources(*r);
          if (given.count("required"))
            parse_required(ctx, "required" + suffix, g.required_traits, g.forbidden_traits);
          if (given.count("member_of"))
            parse_member_of(ctx, "member_of" + suffix, g.member_of, g.forbidden_aggregates);
          if (auto t = query(ctx, "in_tree" + suffix)) g.in_tree = parse_in_tree(*t);
        }
        auto resources = query(ctx, "resources");
        if (!resources && groups.empty()) {
          if (at_least(ctx, 25))
            throw placement_error(
                400, "At least one request group (`resources` or `resources{$S}`) is required.");
          throw placement_error(
              400, "Invalid query string parameters: 'resources' is a required property");
        }
        if (resources) q.resources = parse_resources(*resources);
        // Every group with traits or aggregates has resources, as Placement requires.
        std::string orphans;
        auto orphan = [&](bool has, const std::string& key) {
          if (has) orphans += (orphans.empty() ? "" : ", ") + key;
        };
        orphan(!resources && query(ctx, "required").has_value(), "required");
        for (auto& [suffix, g] : groups)
          orphan(g.resources.empty() && keys_of[suffix].count("required"), "required" + suffix);
        if (!orphans.empty())
          throw placement_error(400,
                                "All traits parameters must be associated with resources.  "
                                "Found the following orphaned traits keys: " +
                                    orphans);
        orphan(!resources && query(ctx, "member_of").has_value(), "member_of");
        for (auto& [suffix, g] : groups)
          orphan(g.resources.empty() && keys_of[suffix].count("member_of"), "member_of" + suffix);
        if (!orphans.empty())
          throw placement_error(400,
                                "All member_of parameters must be associated with resources. "
                                "Found the following orphaned member_of keys: " +
                                    orphans);
        for (auto& [suffix, g] : groups)
          if (g.resources.empty())
            throw placement_error(400, "All request groups must specify resources.");
        auto policy = query(ctx, "group_policy");
        if (policy && *policy != "none" && *policy != "isolate")
          throw placement_error(400, "Invalid query string parameters: '" + *policy +
                                         "' is not one of ['none', 'isolate']");
        if (groups.size() > 1 && !policy)
          throw placement_error(
              400,
              "The \"group_policy\" parameter is required when specifying more than "
              "one \"resources{N}\" parameter.");
        q.isolate = policy && *policy == "isolate";
        for (auto& [suffix, g] : groups) q.groups.push_back(std::move(g));
        if (auto l = query(ctx, "limit")) {
          long n = 0;
          auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), n);
          if (l->empty() || ec != std::errc() || p != l->data() + l->size() || n < 1 ||
              (*l)[0] == '0')
            throw placement_error(400, "Invalid query string parameters: '" + *l +
                                           "' does not match '^[1-9][0-9]*$'");
          q.limit = n;
        }
        if (query(ctx, "required"))
          parse_required(ctx, "required", q.required_traits, q.forbidden_traits);
        if (query(ctx, "member_of"))
          parse_member_of(ctx, "member_of", q.member_of, q.forbidden_aggregates);
        if (auto t = query(ctx, "in_tree")) q.in_tree = parse_in_tree(*t);
        if (query(ctx, "root_required")) {
          // Each value: comma-separated traits, "!" forbidding (no "in:" form).
          for (auto& value : query_all(ctx, "root_required")) {
            std::stringstream ss(value);
            std::string t;
            while (std::getline(ss, t, ',')) {
              if (t.empty() || t == "!" || t.rfind("in:", 0) == 0)
                throw placement_error(
                    400,
                    "Invalid query string parameters: Expected 'root_required' parameter value "
                    "of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got: " +
                        value);
              if (t[0] == '!')
                q.root_forbidden.insert(t.substr(1));
              else
                q.root_required.push_back({t});
            }
          }
        }
        q.nested = at_least(ctx, 29);
        auto result = s.allocation_candidates(q);
        json::array requests;
        for (std::size_t n = 0; n < result.allocation_requests.size(); ++n) {
          auto& r = result.allocation_requests[n];
          if (at_least(ctx, 12)) {
            json::object allocations;
            json::array providers;
            for (auto& [p, amounts] : r) {
              allocations[p] = json::object{{"resources", resources_view(amounts)}};
              providers.push_back(json::value(p));
            }
            json::object one{{"allocations", std::move(allocations)}};
            if (at_least(ctx, 34)) {
              json::object mappings;
              if (n < result.mappings.size()) {
                for (auto& [suffix, uuids] : result.mappings[n])
                  mappings[suffix] = json::array(uuids.begin(), uuids.end());
              } else {
                mappings[""] = std::move(providers);
              }
              one["mappings"] = std::move(mappings);
            }
            requests.push_back(std::move(one));
          } else {
            json::array allocations;
            for (auto& [p, amounts] : r)
              allocations.push_back(json::object{{"resource_provider", json::object{{"uuid", p}}},
                                                 {"resources", resources_view(amounts)}});
            requests.push_back(json::object{{"allocations", std::move(allocations)}});
          }
        }
        json::object summaries;
        for (auto& [uuid, sum] : result.summaries) {
          json::object resources;
          for (auto& [rc, inv] : sum.resources) {
            if (!at_least(ctx, 27) && !q.resources.count(rc)) continue;
            resources[rc] = json::object{{"capacity", inv.capacity()}, {"used", inv.used}};
          }
          json::object one{{"resources", std::move(resources)}};
          if (at_least(ctx, 17)) one["traits"] = json::array(sum.traits.begin(), sum.traits.end());
          if (at_least(ctx, 29)) {
            one["parent_provider_uuid"] =
                sum.parent_uuid ? json::value(*sum.parent_uuid) : json::value(nullptr);
            one["root_provider_uuid"] = sum.root_uuid;
          }
          summaries[uuid] = std::move(one);
        }
        return json_ok(json::object{{"allocation_requests", std::move(requests)},
                                    {"provider_summaries", std::move(summaries)}});
      },
      10));
}

}  // namespace nubo::placement::api
