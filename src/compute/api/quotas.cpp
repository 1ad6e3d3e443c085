// /v2.1/os-quota-sets, /v2.1/os-quota-class-sets and /v2.1/limits, with the resource sets each
// microversion shows (2.36 drops the network-era resources from quota sets, 2.50 from classes,
// 2.57 drops the injected-file ones).
#include <charconv>
#include <set>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

bool shown(const std::string& r, Microversion v, bool class_set) {
  static const std::set<std::string> network_era = {"floating_ips", "fixed_ips", "security_groups",
                                                    "security_group_rules"};
  static const std::set<std::string> files = {"injected_files", "injected_file_content_bytes",
                                              "injected_file_path_bytes"};
  if (network_era.count(r) && v >= (class_set ? Microversion{2, 50} : Microversion{2, 36}))
    return false;
  if (files.count(r) && v >= Microversion{2, 57}) return false;
  if (class_set && (r == "server_groups" || r == "server_group_members") && v < Microversion{2, 50})
    return false;
  return true;
}

template <class Value>
json::object view(const std::map<std::string, Value>& values, Microversion v, bool class_set,
                  const std::function<json::value(const Value&)>& render) {
  json::object out;
  for (auto& r : kQuotaResources)
    if (shown(r, v, class_set))
      if (auto it = values.find(r); it != values.end()) out[r] = render(it->second);
  return out;
}

json::object limits_view(const std::map<std::string, std::int64_t>& values, Microversion v,
                         bool class_set) {
  return view<std::int64_t>(values, v, class_set,
                            [](const std::int64_t& n) { return json::value(n); });
}

// The body's limits, each an integer (or a string of digits) of at least -1; `force` apart.
std::map<std::string, std::int64_t> parse_limits(const json::object& body, Microversion v,
                                                 bool class_set, bool& force) {
  std::map<std::string, std::int64_t> out;
  std::string bad;
  for (auto& kv : body) {
    std::string key(kv.key());
    auto& val = kv.value();
    if (key == "force" && !class_set) {
      auto b = nova_boolean(val);
      if (!b) throw BadRequest("Invalid input for field/attribute force.");
      force = *b;
      continue;
    }
    if (std::find(kQuotaResources.begin(), kQuotaResources.end(), key) == kQuotaResources.end() ||
        !shown(key, v, class_set)) {
      bad += (bad.empty() ? "" : ", ") + key;
      continue;
    }
    std::int64_t n = 0;
    bool ok = false;
    if (val.is_int64()) {
      n = val.as_int64();
      ok = true;
    } else if (val.is_string()) {
      std::string_view s(val.as_string());
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      ok = !s.empty() && ec == std::errc() && p == s.data() + s.size();
    }
    if (!ok || n < -1 || n > 2147483647)
      throw BadRequest("Invalid input for field/attribute " + key + ". Value: " +
                       json::serialize(val) + ". must be an integer between -1 and 2147483647");
    out[key] = n;
  }
  if (!bad.empty())
    throw BadRequest("Invalid input for field/attribute " +
                     std::string(class_set ? "quota_class_set" : "quota_set") +
                     ". Additional properties are not allowed (" + bad + " was unexpected)");
  return out;
}

std::string user_query(const Context& ctx) {
  return ctx.request.query_param("user_id").value_or("");
}

}  // namespace

void add_quota_routes(std::vector<Route>& routes, ComputeService& s) {
  const std::string base = "/v2.1/os-quota-sets/{tenant_id}";
  routes.push_back(Route{"GET", base, [&s](Context& ctx) {
                           auto q = s.quotas(caller(ctx), ctx.param("tenant_id"), user_query(ctx));
                           auto body = view<QuotaEntry>(
                               q, ctx.version, false,
                               [](const QuotaEntry& e) { return json::value(e.limit); });
                           body["id"] = ctx.param("tenant_id");
                           return json_response(200, json::object{{"quota_set", std::move(body)}});
                         }});
  routes.push_back(Route{"GET", base + "/detail", [&s](Context& ctx) {
                           auto c = caller(ctx);
                           c.authorize("os_compute_api:os-quota-sets:detail",
                                       {{"project_id", ctx.param("tenant_id")}});
                           auto q = s.quotas(c, ctx.param("tenant_id"), user_query(ctx));
                           auto body =
                               view<QuotaEntry>(q, ctx.version, false, [](const QuotaEntry& e) {
                                 return json::value(json::object{
                                     {"in_use", e.in_use}, {"limit", e.limit}, {"reserved", 0}});
                               });
                           body["id"] = ctx.param("tenant_id");
                           return json_response(200, json::object{{"quota_set", std::move(body)}});
                         }});
  routes.push_back(Route{"GET", base + "/defaults", [&s](Context& ctx) {
                           auto body =
                               limits_view(s.default_quotas(caller(ctx), ctx.param("tenant_id")),
                                           ctx.version, false);
                           body["id"] = ctx.param("tenant_id");
                           return json_response(200, json::object{{"quota_set", std::move(body)}});
                         }});
  routes.push_back(
      Route{"PUT", base, [&s](Context& ctx) {
              bool force = false;
              auto limits = parse_limits(member(ctx, "quota_set"), ctx.version, false, force);
              auto c = caller(ctx);
              s.update_quotas(c, ctx.param("tenant_id"), user_query(ctx), limits, force);
              auto q = s.quotas(c, ctx.param("tenant_id"), user_query(ctx));
              auto body = view<QuotaEntry>(
                  q, ctx.version, false, [](const QuotaEntry& e) { return json::value(e.limit); });
              return json_response(200, json::object{{"quota_set", std::move(body)}});
            }});
  routes.push_back(Route{"DELETE", base, [&s](Context& ctx) {
                           s.delete_quotas(caller(ctx), ctx.param("tenant_id"), user_query(ctx));
                           http::Response r;
                           r.status = 202;
                           return r;
                         }});

  routes.push_back(Route{
      "GET", "/v2.1/os-quota-class-sets/{id}", [&s](Context& ctx) {
        auto body = limits_view(s.quota_class(caller(ctx), ctx.param("id")), ctx.version, true);
        body["id"] = ctx.param("id");
        return json_response(200, json::object{{"quota_class_set", std::move(body)}});
      }});
  routes.push_back(
      Route{"PUT", "/v2.1/os-quota-class-sets/{id}", [&s](Context& ctx) {
              bool force = false;
              auto limits = parse_limits(member(ctx, "quota_class_set"), ctx.version, true, force);
              auto c = caller(ctx);
              s.update_quota_class(c, ctx.param("id"), limits);
              auto body = limits_view(s.quota_class(c, ctx.param("id")), ctx.version, true);
              return json_response(200, json::object{{"quota_class_set", std::move(body)}});
            }});

  routes.push_back(Route{
      "GET", "/v2.1/limits", [&s](Context& ctx) {
        auto c = caller(ctx);
        std::string project = c.project();
        if (auto other = ctx.request.query_param("tenant_id"); other && *other != project) {
          c.authorize("os_compute_api:limits:other_project", {{"project_id", *other}});
          project = *other;
        }
        auto q = s.quotas(c, project, c.user());
        auto v = ctx.version;
        auto lim = [&](const char* r) { return q[r].limit; };
        auto used = [&](const char* r) { return q[r].in_use; };
        json::object a{{"maxServerMeta", lim("metadata_items")},
                       {"maxTotalCores", lim("cores")},
                       {"maxTotalInstances", lim("instances")},
                       {"maxTotalKeypairs", lim("key_pairs")},
                       {"maxTotalRAMSize", lim("ram")},
                       {"maxServerGroups", lim("server_groups")},
                       {"maxServerGroupMembers", lim("server_group_members")},
                       {"totalCoresUsed", used("cores")},
                       {"totalInstancesUsed", used("instances")},
                       {"totalRAMUsed", used("ram")},
                       {"totalServerGroupsUsed", used("server_groups")}};
        if (v < Microversion{2, 39}) a["maxImageMeta"] = lim("metadata_items");
        if (v < Microversion{2, 36}) {
          a["maxSecurityGroupRules"] = lim("security_group_rules");
          a["maxSecurityGroups"] = lim("security_groups");
          a["maxTotalFloatingIps"] = lim("floating_ips");
          a["totalFloatingIpsUsed"] = 0;
          a["totalSecurityGroupsUsed"] = 0;
        }
        if (v < Microversion{2, 57}) {
          a["maxPersonality"] = lim("injected_files");
          a["maxPersonalitySize"] = lim("injected_file_content_bytes");
        }
        return json_response(
            200, json::object{{"limits",
                               json::object{{"rate", json::array{}}, {"absolute", std::move(a)}}}});
      }});
}

}  // namespace nubo::compute::api
