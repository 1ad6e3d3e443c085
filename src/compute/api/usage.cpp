// /v2.1/os-simple-tenant-usage: usage per project over a period (start/end; now when absent),
// with per-server detail on request; paged from 2.40.
#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

TimePoint period_bound(const Context& ctx, const char* name) {
  auto v = ctx.request.query_param(name);
  if (!v || v->empty()) return std::chrono::system_clock::now();
  auto t = parse_iso8601(*v);
  if (!t) {
    // Nova also takes "2026-11-21 10:00:00.000000".
    auto with_t = *v;
    if (auto space = with_t.find(' '); space != std::string::npos) with_t[space] = 'T';
    t = parse_iso8601(with_t);
  }
  if (!t)
    throw BadRequest("Invalid input for query parameters " + std::string(name) + ". Value: " + *v +
                     ".");
  return *t;
}

json::object usage_view(json::object u, TimePoint start, TimePoint end, bool detailed) {
  u["start"] = iso8601(start, true, false);
  u["stop"] = iso8601(end, true, false);
  if (!detailed) u.erase("server_usages");
  return u;
}

}  // namespace

void add_usage_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{
      "GET", "/v2.1/os-simple-tenant-usage", [&s](Context& ctx) {
        // ".../os-simple-tenant-usage/" names an empty tenant: none, as in Nova.
        if (!ctx.request.path.empty() && ctx.request.path.back() == '/')
          throw NotFound("Tenant usage could not be found.");
        auto start = period_bound(ctx, "start"), end = period_bound(ctx, "end");
        if (!(start < end))
          throw BadRequest("Invalid start time. The start time cannot occur after the end time.");
        auto detailed = ctx.request.query_param("detailed").value_or("0");
        bool detail = detailed == "1" || nova_boolean(json::value(detailed)).value_or(false);
        auto rows = s.tenant_usage(caller(ctx), "", start, end);
        auto marker = ctx.version >= Microversion{2, 40}
                          ? ctx.request.query_param("marker").value_or("")
                          : "";
        std::optional<long> limit;
        if (ctx.version >= Microversion{2, 40}) limit = count_param(ctx, "limit");
        json::array items;
        bool past = marker.empty();
        for (auto& u : rows) {
          if (!past) {
            past = u.at("tenant_id").as_string() == marker;
            continue;
          }
          items.push_back(usage_view(u, start, end, detail));
          if (limit && static_cast<long>(items.size()) >= *limit) break;
        }
        if (!past) throw BadRequest("marker [" + marker + "] not found");
        json::object out{{"tenant_usages", items}};
        if (limit && static_cast<long>(items.size()) >= *limit && !items.empty())
          out["tenant_usages_links"] =
              next_links(s, ctx, "os-simple-tenant-usage",
                         std::string(items.back().as_object().at("tenant_id").as_string()));
        return json_response(200, out);
      }});
  routes.push_back(Route{
      "GET", "/v2.1/os-simple-tenant-usage/{tenant_id}", [&s](Context& ctx) {
        auto start = period_bound(ctx, "start"), end = period_bound(ctx, "end");
        if (!(start < end))
          throw BadRequest("Invalid start time. The start time cannot occur after the end time.");
        auto rows = s.tenant_usage(caller(ctx), ctx.param("tenant_id"), start, end);
        json::object u = rows.empty() ? json::object{} : usage_view(rows.front(), start, end, true);
        return json_response(200, json::object{{"tenant_usage", u}});
      }});
}

}  // namespace nubo::compute::api
