// Smaller compute APIs around servers: diagnostics, os-server-external-events, the deprecated
// os-hosts (before 2.43) and os-instance_usage_audit_log.
#include <ctime>
#include <set>

#include "compute/api/servers.hpp"

namespace nubo::compute::api {

namespace {

json::object diagnostics(Context& ctx, const json::object& row) {
  static const std::map<std::int64_t, std::string> states{{0, "pending"}, {1, "running"},
                                                          {3, "paused"},  {4, "shutdown"},
                                                          {6, "crashed"}, {7, "suspended"}};
  auto power = row.at("power_state").as_int64();
  auto& flavor = row.at("flavor").as_object();
  std::int64_t uptime = 0;
  if (auto launched = row.if_contains("launched_at"); launched && launched->is_string())
    if (auto t = parse_iso8601(launched->as_string()))
      uptime =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t)
              .count();
  auto memory_kb = flavor.at("memory_mb").as_int64() * 1024;
  if (ctx.version < Microversion{2, 48})  // a free-form dict before 2.48, as libvirt's
    return json::object{{"cpu0_time", 0},     {"memory", memory_kb}, {"memory-actual", memory_kb},
                        {"vda_read", 0},      {"vda_write", 0},      {"vda_read_req", 0},
                        {"vda_write_req", 0}, {"vda_errors", -1}};
  json::array cpus;
  for (std::int64_t i = 0; i < flavor.at("vcpus").as_int64(); ++i)
    cpus.push_back(json::object{{"id", i}, {"time", 0}, {"utilisation", nullptr}});
  auto* cd = row.if_contains("config_drive");
  // "libvirt" is the nearest of the drivers the API names: a QEMU guest, however started.
  return json::object{
      {"state", states.count(power) ? states.at(power) : "pending"},
      {"driver", "libvirt"},
      {"hypervisor", "qemu"},
      {"hypervisor_os", "linux"},
      {"uptime", uptime},
      {"config_drive", cd && cd->is_bool() && cd->as_bool()},
      {"num_cpus", flavor.at("vcpus")},
      {"num_nics", 0},
      {"num_disks", 1},
      {"memory_details", json::object{{"maximum", flavor.at("memory_mb")}, {"used", 0}}},
      {"cpu_details", std::move(cpus)},
      {"nic_details", json::array{}},
      {"disk_details", json::array{json::object{{"read_bytes", 0},
                                                {"read_requests", 0},
                                                {"write_bytes", 0},
                                                {"write_requests", 0},
                                                {"errors_count", 0}}}}};
}

// Nova's last completed audit period (monthly): the month before the one `before` falls in.
std::pair<std::string, std::string> audit_period(std::time_t before) {
  std::tm tm{};
  gmtime_r(&before, &tm);
  char end[64], begin[64];
  std::snprintf(end, sizeof end, "%04d-%02d-01 00:00:00", tm.tm_year + 1900, tm.tm_mon + 1);
  int year = tm.tm_year + 1900, month = tm.tm_mon;  // the previous month, 1-based
  if (month == 0) {
    month = 12;
    --year;
  }
  std::snprintf(begin, sizeof begin, "%04d-%02d-01 00:00:00", year, month);
  return {begin, end};
}

}  // namespace

void add_server_extra_routes(std::vector<Route>& routes, ComputeService& s) {
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/diagnostics", [&s](Context& ctx) {
              auto row = s.show_server(caller(ctx), ctx.param("id"));
              ctx.authorize("os_compute_api:os-server-diagnostics",
                            {{"project_id", string_or(row, "project_id")}});
              if (string_or(row, "vm_state") == "building" || string_or(row, "host").empty())
                throw Conflict("Cannot 'get_diagnostics' instance " + ctx.param("id") +
                               " while it is in vm_state " + string_or(row, "vm_state"));
              return json_response(200, diagnostics(ctx, row));
            }});

  routes.push_back(Route{
      "POST", "/v2.1/os-server-external-events", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-server-external-events:create",
                    {{"project_id", c.project()}});
        auto body = ctx.body();
        auto* events = body.if_contains("events");
        if (!events || !events->is_array() || events->as_array().empty())
          throw BadRequest("Invalid input for field/attribute events.");
        std::set<std::string> names{"network-changed", "network-vif-plugged",
                                    "network-vif-unplugged", "network-vif-deleted",
                                    "volume-extended"};
        if (ctx.version >= Microversion{2, 76}) names.insert("power-update");
        if (ctx.version >= Microversion{2, 82}) names.insert("accelerator-request-bound");
        if (ctx.version >= Microversion{2, 93}) names.insert("volume-reimaged");
        json::array wanted;
        for (auto& e : events->as_array()) {
          if (!e.is_object()) throw BadRequest("Invalid input for field/attribute events.");
          auto& o = e.as_object();
          auto name = string_or(o, "name"), uuid = string_or(o, "server_uuid"),
               status = string_or(o, "status");
          if (!names.count(name))
            throw BadRequest("Invalid input for field/attribute name. Value: " + name + ".");
          if (uuid.empty()) throw BadRequest("Invalid input for field/attribute server_uuid.");
          if (status.empty()) status = "completed";
          if (status != "completed" && status != "failed" && status != "in-progress")
            throw BadRequest("Invalid input for field/attribute status. Value: " + status + ".");
          json::object r{{"name", name}, {"server_uuid", uuid}, {"status", status}};
          if (auto* tag = o.if_contains("tag")) r["tag"] = *tag;
          wanted.push_back(std::move(r));
        }
        auto out = s.external_events(wanted);
        int found = 0;
        for (auto& r : out)
          if (int_or(r.as_object(), "code") != 404) ++found;
        if (found == 0) throw NotFound("No instances found for any event");
        int status = found == static_cast<int>(out.size()) ? 200 : 207;
        return json_response(status, json::object{{"events", std::move(out)}});
      }});

  // os-interface: the server's ports, NICs hot-plugged and taken out.
  auto interface_view = [](Context& ctx, const json::object& port) {
    json::array fixed;
    if (auto* f = port.if_contains("fixed_ips"); f && f->is_array())
      for (auto& ip : f->as_array())
        fixed.push_back(json::object{{"subnet_id", string_or(ip.as_object(), "subnet_id")},
                                     {"ip_address", string_or(ip.as_object(), "ip_address")}});
    json::object v{{"port_state", string_or(port, "status")},
                   {"fixed_ips", std::move(fixed)},
                   {"port_id", string_or(port, "id")},
                   {"net_id", string_or(port, "network_id")},
                   {"mac_addr", string_or(port, "mac_address")}};
    if (ctx.version >= Microversion{2, 70}) {
      auto* tag = port.if_contains("__tag");  // the device tag, from the server's cache
      v["tag"] = tag ? *tag : json::value(nullptr);
    }
    return v;
  };
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/os-interface", [&s, interface_view](Context& ctx) {
              json::array out;
              for (auto& p : s.interfaces(caller(ctx), ctx.param("id")))
                out.push_back(interface_view(ctx, p));
              return json_response(200, json::object{{"interfaceAttachments", std::move(out)}});
            }});
  routes.push_back(
      Route{"GET", "/v2.1/servers/{id}/os-interface/{port_id}", [&s, interface_view](Context& ctx) {
              for (auto& p : s.interfaces(caller(ctx), ctx.param("id")))
                if (string_or(p, "id") == ctx.param("port_id"))
                  return json_response(
                      200, json::object{{"interfaceAttachment", interface_view(ctx, p)}});
              throw NotFound("Instance " + ctx.param("id") + " does not have a port with id " +
                             ctx.param("port_id"));
            }});
  routes.push_back(
      Route{"POST", "/v2.1/servers/{id}/os-interface", [&s, interface_view](Context& ctx) {
              auto body = ctx.body();
              auto* a = body.if_contains("interfaceAttachment");
              if (!a || !a->is_object())
                throw BadRequest("Invalid input for field/attribute interfaceAttachment.");
              auto& o = a->as_object();
              auto net = string_or(o, "net_id"), port = string_or(o, "port_id");
              if (!net.empty() && !port.empty())
                throw BadRequest("Must not input both network_id and port_id");
              std::string fixed_ip;
              if (auto* f = o.if_contains("fixed_ips")) {
                if (!f->is_array() || f->as_array().size() > 1 ||
                    (f->as_array().size() == 1 && !f->as_array().front().is_object()))
                  throw BadRequest("Invalid input for field/attribute fixed_ips.");
                if (port.size() && !f->as_array().empty())
                  throw BadRequest("Must input network_id when request IP address");
                if (!f->as_array().empty())
                  fixed_ip = string_or(f->as_array().front().as_object(), "ip_address");
              }
              json::value tag = nullptr;
              if (ctx.version >= Microversion{2, 49})
                if (auto* t = o.if_contains("tag")) tag = *t;
              auto p = s.attach_interface(caller(ctx), ctx.param("id"), net, port, fixed_ip, tag);
              auto v = interface_view(ctx, p);
              if (ctx.version >= Microversion{2, 70}) v["tag"] = tag;
              return json_response(200, json::object{{"interfaceAttachment", std::move(v)}});
            }});
  routes.push_back(Route{"DELETE", "/v2.1/servers/{id}/os-interface/{port_id}", [&s](Context& ctx) {
                           s.detach_interface(caller(ctx), ctx.param("id"), ctx.param("port_id"));
                           return empty_response(202);
                         }});

  // os-hosts (removed in 2.43): the services' hosts, and a compute host's resources.
  Route hosts{"GET", "/v2.1/os-hosts", [&s](Context& ctx) {
                auto c = caller(ctx);
                c.authorize("os_compute_api:os-hosts:list", {{"project_id", c.project()}});
                auto zone = ctx.request.query_param("zone");
                json::array out;
                for (auto& [az, by_host] : s.availability_zones(c, true))
                  for (auto& [host, binaries] : by_host)
                    for (auto& [binary, svc] : binaries) {
                      if (zone && !zone->empty() && *zone != az)
                        continue;  // a blank zone filters nothing
                      out.push_back(json::object{
                          {"host_name", host},
                          {"service", binary.rfind("nova-", 0) == 0 ? binary.substr(5) : binary},
                          {"zone", az}});
                    }
                return json_response(200, json::object{{"hosts", std::move(out)}});
              }};
  hosts.max_version = {2, 42};
  routes.push_back(hosts);
  Route host{
      "GET", "/v2.1/os-hosts/{host}", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-hosts:show", {{"project_id", c.project()}});
        auto name = ctx.param("host");
        for (auto& h : s.list_hypervisors(c, "")) {
          if (string_or(h, "host") != name) continue;
          auto resource = [&](const char* project, const char* cpu, const char* memory,
                              const char* disk) {
            return json::object{{"resource", json::object{{"host", name},
                                                          {"project", project},
                                                          {"cpu", h.at(cpu)},
                                                          {"memory_mb", h.at(memory)},
                                                          {"disk_gb", h.at(disk)}}}};
          };
          return json_response(
              200,
              json::object{
                  {"host",
                   json::array{
                       resource("(total)", "vcpus", "memory_mb", "local_gb"),
                       resource("(used_now)", "vcpus_used", "memory_mb_used", "local_gb_used"),
                       resource("(used_max)", "vcpus_used", "memory_mb_used", "local_gb_used")}}});
        }
        throw NotFound("Compute host " + name + " could not be found.");
      }};
  host.max_version = {2, 42};
  routes.push_back(host);
  Route update{
      "PUT", "/v2.1/os-hosts/{host}", [&s](Context& ctx) {
        auto c = caller(ctx);
        c.authorize("os_compute_api:os-hosts:update", {{"project_id", c.project()}});
        auto body = ctx.body();
        for (auto& kv : body)
          if (kv.key() != "status" && kv.key() != "maintenance_mode")
            throw BadRequest(unexpected("host", kv.key()));
        auto status = string_or(body, "status");
        if (body.empty() ||
            (body.contains("status") && status != "enable" && status != "disable") ||
            (body.contains("maintenance_mode") && string_or(body, "maintenance_mode") != "enable" &&
             string_or(body, "maintenance_mode") != "disable"))
          throw BadRequest("Invalid input for field/attribute host.");
        auto id = s.service_id(ctx.param("host"), "nova-compute");
        if (body.contains("maintenance_mode"))
          throw NotImplemented("Virt driver does not implement host maintenance mode.");
        s.update_service(c, id, status == "disable", std::nullopt, std::nullopt);
        return json_response(200,
                             json::object{{"host", ctx.param("host")}, {"status", status + "d"}});
      }};
  update.max_version = {2, 42};
  routes.push_back(update);
  for (const char* action : {"startup", "shutdown", "reboot"}) {
    Route power{"GET", std::string("/v2.1/os-hosts/{host}/") + action, [&s, action](Context& ctx) {
                  auto c = caller(ctx);
                  c.authorize(std::string("os_compute_api:os-hosts:") + action,
                              {{"project_id", c.project()}});
                  s.service_id(ctx.param("host"), "nova-compute");  // 404 for an unknown host
                  throw NotImplemented("Virt driver does not implement host power management.");
                  return http::Response{};
                }};
    power.max_version = {2, 42};
    routes.push_back(power);
  }

  // Usage audits run on compute hosts as a periodic task that Nubo does not schedule (Nova's
  // instance_usage_audit is off by default too): every host is listed as not run.
  auto audit = [&s](Context& ctx, std::time_t before) {
    auto c = caller(ctx);
    c.authorize("os_compute_api:os-instance-usage-audit-log:list", {{"project_id", c.project()}});
    json::array not_run;
    for (auto& svc : s.list_services(c, "", "nova-compute")) not_run.push_back(svc.at("host"));
    auto [begin, end] = audit_period(before);
    auto n = static_cast<std::int64_t>(not_run.size());
    return json::object{{"hosts_not_run", not_run},
                        {"log", json::object{}},
                        {"num_hosts", n},
                        {"num_hosts_done", 0},
                        {"num_hosts_not_run", n},
                        {"num_hosts_running", 0},
                        {"overall_status", "0 of " + std::to_string(n) + " hosts done. 0 errors."},
                        {"period_beginning", begin},
                        {"period_ending", end},
                        {"total_errors", 0},
                        {"total_instances", 0}};
  };
  routes.push_back(
      Route{"GET", "/v2.1/os-instance_usage_audit_log", [audit](Context& ctx) {
              return json_response(
                  200, json::object{{"instance_usage_audit_logs", audit(ctx, std::time(nullptr))}});
            }});
  routes.push_back(
      Route{"GET", "/v2.1/os-instance_usage_audit_log/{before}", [audit](Context& ctx) {
              auto before = ctx.param("before");
              auto iso = before;
              if (auto space = iso.find(' '); space != std::string::npos) iso[space] = 'T';
              auto t = parse_iso8601(iso);
              if (!t) throw BadRequest("Invalid timestamp for date " + before);
              return json_response(
                  200, json::object{{"instance_usage_audit_log",
                                     audit(ctx, std::chrono::system_clock::to_time_t(*t))}});
            }});
}

}  // namespace nubo::compute::api
