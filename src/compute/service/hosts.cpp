// Hosts: compute services and the hypervisors they report, their heartbeats, and the
// availability zones they fall in.
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

void ComputeService::register_service(const std::string& host, const std::string& binary) {
  auto zone =
      binary == "nova-compute" ? settings_.default_availability_zone : settings_.internal_zone;
  write_hosts([&](soci::session& s) {
    auto rows =
        db::select(s, st::compute_service, db::Query{}.eq("host", host).eq("binary_name", binary));
    if (!rows.empty()) {
      db::update(s, st::compute_service, std::string(rows[0].at("id").as_string()),
                 json::object{{"updated_at", now()}});
      return;
    }
    db::insert(s, st::compute_service,
               json::object{{"id", uuid4()},
                            {"number", st::next_number(s, st::compute_service)},
                            {"host", host},
                            {"binary_name", binary},
                            {"zone", zone},
                            {"disabled", false},
                            {"disabled_reason", nullptr},
                            {"forced_down", false},
                            {"updated_at", now()},
                            {"created_at", now()}});
  });
}

bool ComputeService::is_compute_host(soci::session& s, const std::string& host) {
  return db::count(s, st::compute_service,
                   db::Query{}.eq("host", host).eq("binary_name", "nova-compute")) > 0;
}

void ComputeService::register_compute_host(const HostResources& r) {
  register_service(r.host, "nova-compute");
  write_hosts([&](soci::session& s) {
    auto svc = db::select(s, st::compute_service,
                          db::Query{}.eq("host", r.host).eq("binary_name", "nova-compute"));
    json::object fields{{"service_id", svc.at(0).at("id")},
                        {"host", r.host},
                        {"hypervisor_type", r.hypervisor_type},
                        {"hypervisor_version", r.hypervisor_version},
                        {"vcpus", r.vcpus},
                        {"memory_mb", r.memory_mb},
                        {"local_gb", r.local_gb},
                        {"host_ip", r.host_ip},
                        {"cpu_info", r.cpu_info}};
    auto nodes = db::select(s, st::compute_node,
                            db::Query{}.eq("hypervisor_hostname", r.hypervisor_hostname));
    if (!nodes.empty()) {
      db::update(s, st::compute_node, std::string(nodes[0].at("id").as_string()), fields);
      return;
    }
    fields["id"] = uuid4();
    fields["number"] = st::next_number(s, st::compute_node);
    fields["hypervisor_hostname"] = r.hypervisor_hostname;
    fields["created_at"] = now();
    db::insert(s, st::compute_node, fields);
  });
}

void ComputeService::heartbeat() {
  db_->write([&](soci::session& s) {
    db::execute(s, "UPDATE compute_service SET updated_at = :p0", {now()});
  });
}

bool ComputeService::service_up(const json::object& service) const {
  if (service.at("forced_down").as_bool()) return false;
  auto* u = service.if_contains("updated_at");
  if (!u || !u->is_string()) return false;
  auto seen = parse_iso8601(u->as_string());
  return seen && clock_->now() - *seen < std::chrono::seconds(settings_.service_down_time);
}

std::vector<json::object> ComputeService::list_services(const Caller& c, const std::string& host,
                                                        const std::string& binary) {
  c.authorize("os_compute_api:os-services:list", {{"project_id", c.project()}});
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    db::Query q;
    if (!host.empty()) q.eq("host", host);
    if (!binary.empty()) q.eq("binary_name", binary);
    q.order_by = "number";
    out = db::select(s, st::compute_service, q);
  });
  return out;
}

std::string ComputeService::service_id(const std::string& host, const std::string& binary) {
  std::vector<json::object> rows;
  db_->read([&](soci::session& s) {
    rows =
        db::select(s, st::compute_service, db::Query{}.eq("host", host).eq("binary_name", binary));
  });
  if (rows.empty()) throw NotFound("Host '" + host + "' is not mapped to any cell");
  return std::string(rows[0].at("id").as_string());
}

json::object ComputeService::update_service(const Caller& c, const std::string& id,
                                            std::optional<bool> disabled,
                                            std::optional<std::string> reason,
                                            std::optional<bool> forced_down) {
  c.authorize("os_compute_api:os-services:update", {{"project_id", c.project()}});
  json::object out;
  write_hosts([&](soci::session& s) {
    auto row = st::by_id_or_number(s, st::compute_service, id);
    if (!row) throw NotFound("Service " + id + " could not be found.");
    json::object fields;
    if (disabled) {
      fields["disabled"] = *disabled;
      fields["disabled_reason"] = *disabled && reason ? json::value(*reason) : json::value(nullptr);
    }
    if (forced_down) fields["forced_down"] = *forced_down;
    std::string uuid(row->at("id").as_string());
    if (!fields.empty()) db::update(s, st::compute_service, uuid, fields);
    out = *db::get(s, st::compute_service, uuid);
  });
  return out;
}

void ComputeService::delete_service(const Caller& c, const std::string& id) {
  c.authorize("os_compute_api:os-services:delete", {{"project_id", c.project()}});
  write_hosts([&](soci::session& s) {
    auto row = st::by_id_or_number(s, st::compute_service, id);
    if (!row) throw NotFound("Service " + id + " could not be found.");
    std::string uuid(row->at("id").as_string());
    db::remove(s, st::compute_node, db::Query{}.eq("service_id", uuid));
    db::remove_id(s, st::compute_service, uuid);
  });
}

std::vector<json::object> ComputeService::list_hypervisors(const Caller& c,
                                                           const std::string& pattern) {
  c.authorize("os_compute_api:os-hypervisors:list", {{"project_id", c.project()}});
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    // Usage comes from the servers placed on each node.
    struct Usage {
      std::int64_t vcpus = 0, memory_mb = 0, local_gb = 0;
      json::array servers;
    };
    std::map<std::string, Usage> usage;
    for (auto& row : db::query_strings(
             s,
             "SELECT node, id, number, flavor FROM instance WHERE deleted = 0 AND node IS NOT NULL",
             {})) {
      auto& u = usage[row[0].value_or("")];
      auto flavor = json::parse(row[3].value_or("{}")).as_object();
      auto num = [&](const char* k) { return flavor.contains(k) ? flavor.at(k).as_int64() : 0; };
      u.vcpus += num("vcpus");
      u.memory_mb += num("memory_mb");
      u.local_gb += num("root_gb") + num("ephemeral_gb");
      char name[32];
      std::snprintf(name, sizeof name, "instance-%08llx", std::stoull(row[2].value_or("0")));
      u.servers.push_back(json::object{{"name", name}, {"uuid", row[1].value_or("")}});
    }
    db::Query q;
    q.order_by = "number";
    for (auto& node : db::select(s, st::compute_node, q)) {
      std::string name(node.at("hypervisor_hostname").as_string());
      if (!pattern.empty() && name.find(pattern) == std::string::npos) continue;
      auto svc = db::get(s, st::compute_service, std::string(node.at("service_id").as_string()));
      if (!svc) continue;
      node["service"] = std::move(*svc);
      auto& u = usage[name];
      node["vcpus_used"] = u.vcpus;
      node["memory_mb_used"] = u.memory_mb;
      node["local_gb_used"] = u.local_gb;
      node["running_vms"] = static_cast<std::int64_t>(u.servers.size());
      node["servers"] = u.servers;
      out.push_back(std::move(node));
    }
  });
  return out;
}

json::object ComputeService::show_hypervisor(const Caller& c, const std::string& id) {
  for (auto& h : list_hypervisors(c, ""))
    if (h.at("id").as_string() == id || std::to_string(h.at("number").as_int64()) == id) return h;
  throw NotFound("Hypervisor " + id + " could not be found.");
}

std::map<std::string, std::map<std::string, std::map<std::string, json::object>>>
ComputeService::availability_zones(const Caller& c, bool detail) {
  c.authorize(detail ? "os_compute_api:os-availability-zone:detail"
                     : "os_compute_api:os-availability-zone:list",
              {{"project_id", c.project()}});
  std::map<std::string, std::map<std::string, std::map<std::string, json::object>>> out;
  db_->read([&](soci::session& s) {
    auto zones = host_zones(s);
    for (auto& svc : db::select(s, st::compute_service)) {
      std::string zone(svc.at("zone").as_string());
      if (zone != settings_.internal_zone)
        if (auto it = zones.find(std::string(svc.at("host").as_string())); it != zones.end())
          zone = it->second;
      if (!detail && zone == settings_.internal_zone) continue;
      out[zone][std::string(svc.at("host").as_string())]
         [std::string(svc.at("binary_name").as_string())] = svc;
    }
  });
  return out;
}

}  // namespace nubo::compute
