// /v2.1/os-services, /v2.1/os-hypervisors and /v2.1/os-availability-zone: the hosts compute
// knows, as each microversion shows them (integer ids before 2.53, uuids from it; hypervisor
// usage fields until 2.88; cpu_info as text before 2.28).
#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

const Microversion k253{2, 53};

json::value shown_id(Context& ctx, const json::object& row) {
  if (ctx.version >= k253) return row.at("id");
  return row.at("number");
}

json::object service_view(ComputeService& s, Context& ctx, const json::object& svc) {
  json::object v{{"id", shown_id(ctx, svc)},
                 {"binary", svc.at("binary_name")},
                 {"host", svc.at("host")},
                 {"zone", svc.at("zone")},
                 {"status", svc.at("disabled").as_bool() ? "disabled" : "enabled"},
                 {"state", s.service_up(svc) ? "up" : "down"},
                 {"updated_at", svc.at("updated_at")},
                 {"disabled_reason", svc.at("disabled_reason")}};
  if (ctx.version >= Microversion{2, 11}) v["forced_down"] = svc.at("forced_down");
  return v;
}

json::object hypervisor_summary(ComputeService& s, Context& ctx, const json::object& h) {
  auto& svc = h.at("service").as_object();
  return json::object{{"id", shown_id(ctx, h)},
                      {"hypervisor_hostname", h.at("hypervisor_hostname")},
                      {"state", s.service_up(svc) ? "up" : "down"},
                      {"status", svc.at("disabled").as_bool() ? "disabled" : "enabled"}};
}

json::object hypervisor_detail(ComputeService& s, Context& ctx, const json::object& h) {
  auto v = hypervisor_summary(s, ctx, h);
  auto& svc = h.at("service").as_object();
  v["hypervisor_type"] = h.at("hypervisor_type");
  v["hypervisor_version"] = h.at("hypervisor_version");
  v["host_ip"] = h.at("host_ip");
  v["service"] = json::object{{"host", svc.at("host")},
                              {"id", shown_id(ctx, svc)},
                              {"disabled_reason", svc.at("disabled_reason")}};
  if (ctx.version >= Microversion{2, 88}) {
    v["uptime"] = nullptr;
    return v;
  }
  std::string cpu(h.at("cpu_info").as_string());
  if (ctx.version >= Microversion{2, 28}) {
    boost::system::error_code ec;
    auto parsed = json::parse(cpu, ec);
    v["cpu_info"] = ec ? json::value(json::object{}) : parsed;
  } else {
    v["cpu_info"] = cpu;
  }
  auto n = [&](const char* k) { return h.at(k).as_int64(); };
  v["vcpus"] = n("vcpus");
  v["memory_mb"] = n("memory_mb");
  v["local_gb"] = n("local_gb");
  v["vcpus_used"] = n("vcpus_used");
  v["memory_mb_used"] = n("memory_mb_used");
  v["local_gb_used"] = n("local_gb_used");
  v["free_ram_mb"] = n("memory_mb") - n("memory_mb_used");
  v["free_disk_gb"] = n("local_gb") - n("local_gb_used");
  v["current_workload"] = 0;
  v["running_vms"] = n("running_vms");
  v["disk_available_least"] = n("local_gb") - n("local_gb_used");
  return v;
}

http::Response empty(int status) {
  http::Response r;
  r.status = status;
  return r;
}

std::string text_field(const json::object& body, const char* key, bool required = true) {
  auto* v = body.if_contains(key);
  if (!v || !v->is_string()) {
    if (!required) return {};
    throw BadRequest("Invalid input for field/attribute " + std::string(key) + ".");
  }
  return std::string(v->as_string());
}

std::optional<bool> bool_field(const json::object& body, const char* key) {
  auto* v = body.if_contains(key);
  if (!v) return std::nullopt;
  auto b = nova_boolean(*v);
  if (!b) throw BadRequest("Invalid input for field/attribute " + std::string(key) + ".");
  return b;
}

}  // namespace

void add_host_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(Route{"GET", "/v2.1/os-services", [&s](Context& ctx) {
                           auto rows = s.list_services(
                               caller(ctx), ctx.request.query_param("host").value_or(""),
                               ctx.request.query_param("binary").value_or(""));
                           json::array items;
                           for (auto& svc : rows) items.push_back(service_view(s, ctx, svc));
                           return json_response(200, json::object{{"services", std::move(items)}});
                         }});
  // Before 2.53: PUT /os-services/{enable|disable|disable-log-reason|force-down} naming host and
  // binary.
  Route action{
      "PUT", "/v2.1/os-services/{action}", [&s](Context& ctx) {
        auto body = ctx.body();
        auto act = ctx.param("action");
        auto host = text_field(body, "host");
        auto binary = text_field(body, "binary");
        auto c = caller(ctx);
        json::object out{{"host", host}, {"binary", binary}};
        if (act == "enable" || act == "disable" || act == "disable-log-reason") {
          std::optional<std::string> reason;
          if (act == "disable-log-reason") {
            reason = text_field(body, "disabled_reason");
            if (reason->empty() || reason->size() > 255)
              throw BadRequest("Invalid input for field/attribute disabled_reason.");
            out["disabled_reason"] = *reason;
          }
          c.authorize("os_compute_api:os-services:update", {{"project_id", c.project()}});
          s.update_service(c, s.service_id(host, binary), act != "enable", reason, std::nullopt);
          out["status"] = act == "enable" ? "enabled" : "disabled";
        } else if (act == "force-down" && ctx.version >= Microversion{2, 11}) {
          auto down = bool_field(body, "forced_down");
          if (!down) throw BadRequest("Invalid input for field/attribute forced_down.");
          c.authorize("os_compute_api:os-services:update", {{"project_id", c.project()}});
          s.update_service(c, s.service_id(host, binary), std::nullopt, std::nullopt, down);
          out["forced_down"] = *down;
        } else {
          throw NotFound("Unknown action");
        }
        return json_response(200, json::object{{"service", std::move(out)}});
      }};
  action.max_version = {2, 52};
  routes.push_back(action);
  Route update{
      "PUT", "/v2.1/os-services/{service_id}", [&s](Context& ctx) {
        auto body = ctx.body();
        std::optional<bool> disabled;
        std::optional<std::string> reason;
        if (auto* st = body.if_contains("status")) {
          if (!st->is_string() || (st->as_string() != "enabled" && st->as_string() != "disabled"))
            throw BadRequest("Invalid input for field/attribute status.");
          disabled = st->as_string() == "disabled";
        }
        if (body.contains("disabled_reason")) {
          if (!disabled || !*disabled)
            throw BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.");
          reason = text_field(body, "disabled_reason");
        }
        auto down = bool_field(body, "forced_down");
        if (!disabled && !down)
          throw BadRequest(
              "No updates were requested. Fields 'status' or 'forced_down' should be specified.");
        auto svc = s.update_service(caller(ctx), ctx.param("service_id"), disabled, reason, down);
        return json_response(200, json::object{{"service", service_view(s, ctx, svc)}});
      }};
  update.min_version = k253;
  routes.push_back(update);
  routes.push_back(Route{"DELETE", "/v2.1/os-services/{service_id}", [&s](Context& ctx) {
                           s.delete_service(caller(ctx), ctx.param("service_id"));
                           return empty(204);
                         }});

  auto list = [&s](bool detail) {
    return [&s, detail](Context& ctx) {
      auto c = caller(ctx);
      if (detail)
        c.authorize("os_compute_api:os-hypervisors:detail", {{"project_id", c.project()}});
      std::string pattern;
      if (ctx.version >= k253)
        pattern = ctx.request.query_param("hypervisor_hostname_pattern").value_or("");
      auto rows = s.list_hypervisors(c, pattern);
      if (!pattern.empty() && rows.empty())
        throw NotFound("No hypervisor matching '" + pattern + "' could be found.");
      std::optional<long> limit;
      if (ctx.version >= Microversion{2, 33}) {
        limit = count_param(ctx, "limit");
        if (auto marker = ctx.request.query_param("marker")) {
          auto it = std::find_if(rows.begin(), rows.end(), [&](const json::object& h) {
            return json::serialize(shown_id(ctx, h)) == *marker ||
                   (shown_id(ctx, h).is_string() && shown_id(ctx, h).as_string() == *marker);
          });
          if (it == rows.end()) throw BadRequest("marker [" + *marker + "] not found");
          rows.erase(rows.begin(), it + 1);
        }
        if (limit && static_cast<long>(rows.size()) > *limit)
          rows.resize(static_cast<size_t>(*limit));
      }
      bool with_servers =
          ctx.version >= k253 && ctx.request.query_param("with_servers").value_or("") == "true";
      json::array items;
      for (auto& h : rows) {
        auto v = detail ? hypervisor_detail(s, ctx, h) : hypervisor_summary(s, ctx, h);
        if (with_servers) v["servers"] = h.at("servers");
        items.push_back(std::move(v));
      }
      json::object body{{"hypervisors", std::move(items)}};
      if (limit && !rows.empty() && static_cast<long>(rows.size()) == *limit) {
        auto last = shown_id(ctx, rows.back());
        body["hypervisors_links"] =
            next_links(s, ctx, detail ? "os-hypervisors/detail" : "os-hypervisors",
                       last.is_string() ? std::string(last.as_string()) : json::serialize(last));
      }
      return json_response(200, body);
    };
  };
  routes.push_back(Route{"GET", "/v2.1/os-hypervisors", list(false)});
  routes.push_back(Route{"GET", "/v2.1/os-hypervisors/detail", list(true)});
  Route stats{
      "GET", "/v2.1/os-hypervisors/statistics", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-hypervisors:statistics", {{"project_id", c.project()}});
        std::int64_t count = 0, vcpus = 0, vcpus_used = 0, ram = 0, ram_used = 0, disk = 0,
                     disk_used = 0, vms = 0;
        for (auto& h : s.list_hypervisors(c, "")) {
          ++count;
          vcpus += h.at("vcpus").as_int64();
          vcpus_used += h.at("vcpus_used").as_int64();
          ram += h.at("memory_mb").as_int64();
          ram_used += h.at("memory_mb_used").as_int64();
          disk += h.at("local_gb").as_int64();
          disk_used += h.at("local_gb_used").as_int64();
          vms += h.at("running_vms").as_int64();
        }
        return json_response(200,
                             json::object{{"hypervisor_statistics",
                                           json::object{{"count", count},
                                                        {"vcpus", vcpus},
                                                        {"vcpus_used", vcpus_used},
                                                        {"memory_mb", ram},
                                                        {"memory_mb_used", ram_used},
                                                        {"free_ram_mb", ram - ram_used},
                                                        {"local_gb", disk},
                                                        {"local_gb_used", disk_used},
                                                        {"free_disk_gb", disk - disk_used},
                                                        {"disk_available_least", disk - disk_used},
                                                        {"current_workload", 0},
                                                        {"running_vms", vms}}}});
      }};
  stats.max_version = {2, 87};
  routes.push_back(stats);
  routes.push_back(Route{
      "GET", "/v2.1/os-hypervisors/{id}", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-hypervisors:show", {{"project_id", c.project()}});
        auto h = s.show_hypervisor(c, ctx.param("id"));
        auto v = hypervisor_detail(s, ctx, h);
        if (ctx.version >= k253 && ctx.request.query_param("with_servers").value_or("") == "true")
          v["servers"] = h.at("servers");
        return json_response(200, json::object{{"hypervisor", std::move(v)}});
      }});
  Route uptime{"GET", "/v2.1/os-hypervisors/{id}/uptime", [&s](Context& ctx) {
                 auto c = caller(ctx);
                 c.authorize("os_compute_api:os-hypervisors:uptime", {{"project_id", c.project()}});
                 auto v = hypervisor_summary(s, ctx, s.show_hypervisor(c, ctx.param("id")));
                 v["uptime"] = " 00:00:00 up 0 min,  0 users,  load average: 0.00, 0.00, 0.00";
                 return json_response(200, json::object{{"hypervisor", std::move(v)}});
               }};
  uptime.max_version = {2, 87};
  routes.push_back(uptime);
  for (const char* what : {"search", "servers"}) {
    Route r{
        "GET", std::string("/v2.1/os-hypervisors/{pattern}/") + what, [&s, what](Context& ctx) {
          auto c = caller(ctx);
          c.authorize(std::string("os_compute_api:os-hypervisors:") + what,
                      {{"project_id", c.project()}});
          auto rows = s.list_hypervisors(c, ctx.param("pattern"));
          if (rows.empty())
            throw NotFound("No hypervisor matching '" + ctx.param("pattern") + "' could be found.");
          json::array items;
          for (auto& h : rows) {
            auto v = hypervisor_summary(s, ctx, h);
            if (std::string(what) == "servers") v["servers"] = h.at("servers");
            items.push_back(std::move(v));
          }
          return json_response(200, json::object{{"hypervisors", std::move(items)}});
        }};
    r.max_version = {2, 52};
    routes.push_back(r);
  }

  auto zones = [&s](bool detail) {
    return [&s, detail](Context& ctx) {
      json::array items;
      for (auto& [zone, hosts] : s.availability_zones(caller(ctx), detail)) {
        bool available = false;
        json::object host_view;
        for (auto& [host, services] : hosts) {
          json::object per;
          for (auto& [binary, svc] : services) {
            bool up = s.service_up(svc), active = !svc.at("disabled").as_bool();
            available = available || (up && active);
            per[binary] = json::object{
                {"available", up}, {"active", active}, {"updated_at", svc.at("updated_at")}};
          }
          host_view[host] = std::move(per);
        }
        items.push_back(json::object{
            {"zoneName", zone},
            {"zoneState", json::object{{"available", available}}},
            {"hosts", detail ? json::value(std::move(host_view)) : json::value(nullptr)}});
      }
      return json_response(200, json::object{{"availabilityZoneInfo", std::move(items)}});
    };
  };
  routes.push_back(Route{"GET", "/v2.1/os-availability-zone", zones(false)});
  routes.push_back(Route{"GET", "/v2.1/os-availability-zone/detail", zones(true)});
}

}  // namespace nubo::compute::api
