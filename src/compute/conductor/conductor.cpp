#include "compute/conductor/conductor.hpp"

#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <set>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/server_states.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

// Runs f when the scope ends, however it ends.
template <class F>
struct AtExit {
  F f;
  ~AtExit() { f(); }
};

json::object object(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? v->as_object() : json::object{};
}

// An evacuation shares its task state with rebuild; its arguments tell them apart.
bool evacuating(const json::object& row) {
  return string_or(row, "task_state") == "rebuilding" &&
         bool_or(object(row, "task_args"), "evacuate", false);
}

// The instance action event a finished operation records, as Nova names them.
std::string event_name(const std::string& record) {
  static const std::map<std::string, std::string> names = {
      {"create", "compute__do_build_and_run_instance"},
      {"delete", "compute_terminate_instance"},
      {"resize", "compute_finish_resize"},
      {"migrate", "compute_finish_resize"},
      {"revertResize", "compute_finish_revert_resize"},
      {"confirmResize", "compute_confirm_resize"},
      {"shelve", "compute_shelve_offload_instance"},
      {"shelveOffload", "compute_shelve_offload_instance"},
      {"createImage", "compute_snapshot_instance"},
      {"createBackup", "compute_backup_instance"},
      {"live-migration", "compute_live_migration"}};
  auto it = names.find(record);
  return it != names.end() ? it->second : "compute_" + record + "_instance";
}

// Records an event on the server's latest action.
void add_event(soci::session& s, const std::string& instance_id, const std::string& event, bool ok,
               const std::string& host, const std::string& now, const std::string& traceback = {}) {
  db::Query q;
  q.eq("instance_id", instance_id);
  q.order_by = "seq";
  q.descending = true;
  q.limit = 1;
  auto actions = db::select(s, st::instance_action, q);
  if (actions.empty()) return;
  auto action_id = string_or(actions[0], "id");
  db::insert(
      s, st::instance_action_event,
      json::object{
          {"id", uuid4()},
          {"action_id", action_id},
          {"event", event},
          {"start_time", actions[0].at("start_time")},
          {"finish_time", now},
          {"result", ok ? "Success" : "Error"},
          {"traceback", traceback.empty() ? json::value(nullptr) : json::value(traceback)},
          {"host", host.empty() ? json::value(nullptr) : json::value(host)},
          {"seq",
           db::count(s, st::instance_action_event, db::Query{}.eq("action_id", action_id)) + 1}});
  db::update(s, st::instance_action, action_id, json::object{{"updated_at", now}});
}

// Moves a migration record on (os-migrations shows it).
void set_migration_status(soci::session& s, const std::string& migration, const std::string& status,
                          const std::string& now) {
  if (!migration.empty())
    db::update(s, st::migration, migration, json::object{{"status", status}, {"updated_at", now}});
}

// A flavor's integer id (its `seq`), as os-migrations shows flavors; null once it is deleted.
json::value flavor_number(soci::session& s, const json::object& flavor) {
  auto* id = flavor.if_contains("id");
  if (!id || !id->is_string()) return nullptr;
  auto row = db::get(s, st::flavor, id->as_string());
  return row ? row->at("seq") : json::value(nullptr);
}

// A build still spawning on `host`: the condition its next write is made on.
db::Query spawning_on(const std::string& host) {
  return db::Query{}.eq("task_state", "spawning").eq("host", host);
}

// The flavor fields an instance row copies for quota counting.
json::object flavor_columns(const json::object& flavor) {
  return json::object{{"flavor", flavor},
                      {"flavor_id", flavor.at("id")},
                      {"vcpus", int_or(flavor, "vcpus")},
                      {"memory_mb", int_or(flavor, "memory_mb")}};
}

}  // namespace

Conductor::Conductor(std::shared_ptr<ComputeService> compute, std::shared_ptr<Bus> bus,
                     std::shared_ptr<placement::PlacementClient> placement,
                     ConductorSettings settings)
    : compute_(std::move(compute)),
      bus_(std::move(bus)),
      placement_(std::move(placement)),
      settings_(std::move(settings)),
      scheduler_(placement_, settings_.scheduler) {}

void Conductor::start() {
  bus_->subscribe(
      "conductor", [this](const BusMessage& m) { return handle(m); }, false);
  // Builds that were waiting for a host when the process stopped; work already on a host
  // resumes when that host's agent registers.
  json::array waiting;
  compute_->database().read([&](soci::session& s) {
    for (auto& row : db::query_strings(
             s, "SELECT id FROM instance WHERE deleted = 0 AND task_state = 'scheduling'", {}))
      waiting.push_back(json::value(*row[0]));
  });
  if (!waiting.empty()) {
    spdlog::info("conductor: resuming {} builds waiting for a host", waiting.size());
    bus_->cast("conductor", "build_instances", json::object{{"instance_ids", std::move(waiting)}});
  }
  // Evacuations still waiting for a host: their own host is down, so they cannot wait for it.
  std::vector<std::string> evacuations;
  compute_->database().read([&](soci::session& s) {
    for (auto& row :
         db::select(s, st::instance, db::Query{}.eq("task_state", "rebuilding").eq("deleted", "0")))
      if (evacuating(row) && string_or(row, "move_host").empty())
        evacuations.push_back(string_or(row, "id"));
  });
  for (auto& id : evacuations)
    bus_->cast("conductor", "run_action", json::object{{"instance_id", id}, {"op", "schedule"}});
}

void Conductor::stop() { bus_->unsubscribe("conductor"); }

json::value Conductor::handle(const BusMessage& m) {
  auto& b = m.body;
  auto id = string_or(b, "instance_id");
  if (m.method == "register_host") {
    register_host(b);
  } else if (m.method == "build_instances") {
    for (auto& v : b.at("instance_ids").as_array()) build(std::string(v.as_string()));
  } else if (m.method == "spawned") {
    spawned(b);
  } else if (m.method == "spawn_failed") {
    spawn_failed(b);
  } else if (m.method == "action_done") {
    action_done(b);
  } else if (m.method == "destroyed") {
    destroyed(id, string_or(b, "host"));
  } else if (m.method == "delete_instance") {
    delete_instance(id);
  } else if (m.method == "release_instance") {
    placement_->release(id);
  } else if (m.method == "run_action") {
    run_action(id, string_or(b, "op"));
  } else if (m.method == "power_states") {
    power_states(b);
  } else if (m.method == "vifs_plugged") {
    vifs_plugged(id);
  } else if (m.method == "refresh_network") {
    try {
      compute_->refresh_network_info(id);
    } catch (const std::exception& e) {
      spdlog::warn("conductor: the network info of {} stays as it was: {}", id, e.what());
    }
  } else {
    spdlog::warn("conductor: unknown message {}", m.method);
  }
  return nullptr;
}

void Conductor::register_host(const json::object& b) {
  auto& r = b.at("resources").as_object();
  HostResources res;
  res.host = string_or(r, "host");
  res.hypervisor_hostname = string_or(r, "hypervisor_hostname");
  res.hypervisor_type = string_or(r, "hypervisor_type");
  res.hypervisor_version = int_or(r, "hypervisor_version");
  res.vcpus = int_or(r, "vcpus");
  res.memory_mb = int_or(r, "memory_mb");
  res.local_gb = int_or(r, "local_gb");
  res.host_ip = string_or(r, "host_ip");
  res.cpu_info = string_or(r, "cpu_info");
  compute_->register_compute_host(res);
  std::string node_uuid;
  compute_->database().read([&](soci::session& s) {
    auto nodes = db::select(s, st::compute_node,
                            db::Query{}.eq("hypervisor_hostname", res.hypervisor_hostname));
    node_uuid = string_or(nodes.at(0), "id");
  });
  placement::ProviderInventory inv;
  inv.uuid = node_uuid;
  inv.name = res.hypervisor_hostname;
  inv.vcpus = res.vcpus;
  inv.memory_mb = res.memory_mb;
  inv.disk_gb = res.local_gb;
  inv.cpu_allocation_ratio = settings_.cpu_allocation_ratio;
  inv.ram_allocation_ratio = settings_.ram_allocation_ratio;
  inv.disk_allocation_ratio = settings_.disk_allocation_ratio;
  inv.reserved_memory_mb = settings_.reserved_host_memory_mb;
  inv.reserved_disk_gb = settings_.reserved_host_disk_mb / 1024;
  inv.traits = {"COMPUTE_NODE"};
  placement_->ensure_provider(inv);
  power_states(b);
  finish_evacuations(res.host);
  resume_host(res.host);
}

void Conductor::finish_evacuations(const std::string& host) {
  std::vector<json::object> done;
  compute_->database().read([&](soci::session& s) {
    done = db::select(s, st::migration,
                      db::Query{}
                          .eq("source_compute", host)
                          .eq("migration_type", "evacuation")
                          .eq("status", "done"));
  });
  for (auto& m : done) {
    auto id = string_or(m, "id"), instance = string_or(m, "instance_id");
    // A server that has since come back to this host keeps its disk here.
    std::optional<json::object> row;
    compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, instance); });
    bool lives_here = row && !row->at("deleted").as_bool() && string_or(*row, "host") == host;
    spdlog::info("conductor: {} was evacuated from {}: its copy and its room there go", instance,
                 host);
    if (!lives_here)
      bus_->cast("compute." + host, "cleanup", json::object{{"instance_id", instance}});
    placement_->release(id);  // before the record: a replay finds nothing more to release
    compute_->database().write(
        [&](soci::session& s) { set_migration_status(s, id, "completed", compute_->now()); });
  }
}

RequestSpec Conductor::request_spec(const json::object& row, const json::object& flavor) {
  RequestSpec spec;
  spec.instance_id = string_or(row, "id");
  spec.project_id = string_or(row, "project_id");
  spec.user_id = string_or(row, "user_id");
  spec.vcpus = int_or(flavor, "vcpus");
  spec.memory_mb = int_or(flavor, "memory_mb");
  spec.disk_gb = int_or(flavor, "root_gb") + int_or(flavor, "ephemeral_gb") +
                 (int_or(flavor, "swap") + 1023) / 1024;
  spec.zone = string_or(row, "availability_zone");
  spec.forced_host = string_or(row, "forced_host");
  for (auto& kv : object(flavor, "extra_specs"))
    if (kv.value().is_string())
      spec.extra_specs[std::string(kv.key())] = std::string(kv.value().as_string());
  for (auto& kv : object(row, "image_properties"))
    if (kv.value().is_string())
      spec.image_properties[std::string(kv.key())] = std::string(kv.value().as_string());
  spec.image_properties["id"] = string_or(row, "image_ref");
  if (auto* tried = row.if_contains("tried_hosts"); tried && tried->is_array())
    for (auto& h : tried->as_array()) spec.ignore_hosts.insert(std::string(h.as_string()));
  spec.group_id = string_or(row, "group_id");
  if (!spec.group_id.empty())
    compute_->database().read([&](soci::session& s) {
      if (auto g = db::get(s, st::server_group, spec.group_id)) {
        spec.group_policy = string_or(*g, "policy");
        auto rules = object(*g, "rules");
        if (auto n = int_or(rules, "max_server_per_host"); n > 0)
          spec.max_server_per_host = static_cast<int>(n);
      }
    });
  return spec;
}

std::vector<HostState> Conductor::load_hosts() {
  std::vector<HostState> out;
  compute_->database().read([&](soci::session& s) {
    std::map<std::string, json::object> services;
    for (auto& svc :
         db::select(s, st::compute_service, db::Query{}.eq("binary_name", "nova-compute")))
      services[string_or(svc, "host")] = svc;
    auto zones = compute_->host_zones(s);
    std::map<std::string, std::vector<std::string>> aggregates_of;  // host → aggregate ids
    for (auto& h : db::select(s, st::aggregate_host))
      aggregates_of[string_or(h, "host")].push_back(string_or(h, "aggregate_id"));
    std::map<std::string, std::vector<std::pair<std::string, std::string>>>
        metadata;  // aggregate → key/values
    for (auto& m : db::select(s, st::aggregate_metadata))
      metadata[string_or(m, "aggregate_id")].emplace_back(string_or(m, "key"),
                                                          string_or(m, "value"));
    for (auto& node : db::select(s, st::compute_node)) {
      HostState h;
      h.host = string_or(node, "host");
      h.node = string_or(node, "hypervisor_hostname");
      h.node_uuid = string_or(node, "id");
      auto z = zones.find(h.host);
      h.zone = z == zones.end() ? compute_->settings().default_availability_zone : z->second;
      auto svc = services.find(h.host);
      h.usable = svc != services.end() && !svc->second.at("disabled").as_bool() &&
                 compute_->service_up(svc->second);
      for (auto& agg : aggregates_of[h.host]) {
        h.aggregate_uuids.push_back(agg);
        for (auto& [k, v] : metadata[agg]) h.aggregate_metadata[k].insert(v);
      }
      out.push_back(std::move(h));
    }
  });
  return out;
}

std::vector<HostState> Conductor::host_states(const RequestSpec& spec) {
  auto generation = compute_->hosts_generation();
  auto now = std::chrono::steady_clock::now();
  if (!view_.valid || view_.generation != generation ||
      now - view_.loaded > std::chrono::seconds(1)) {
    view_.hosts = load_hosts();
    view_.generation = generation;
    view_.loaded = now;
    view_.valid = true;
  }
  auto out = view_.hosts;
  if (spec.group_id.empty()) return out;
  std::map<std::string, int> on_host;
  std::set<std::string> known;
  compute_->database().read([&](soci::session& s) {
    for (auto& row : db::query_strings(
             s,
             "SELECT m.instance_id, i.host FROM server_group_member m JOIN instance i ON i.id = "
             "m.instance_id WHERE m.group_id = :p0 AND i.deleted = 0 AND i.host IS NOT NULL",
             {spec.group_id})) {
      known.insert(row[0].value_or(""));
      ++on_host[row[1].value_or("")];
    }
  });
  for (auto& [instance, choice] : pending_)
    if (choice.first == spec.group_id && !known.count(instance)) ++on_host[choice.second];
  for (auto& h : out)
    if (auto it = on_host.find(h.host); it != on_host.end())
      h.group_members[spec.group_id] = it->second;
  return out;
}

std::optional<Selection> Conductor::choose(const RequestSpec& spec) {
  // Decisions are taken one at a time (a group's members chosen but not yet recorded count), the
  // claims in placement, which wait for a durable write, side by side.
  std::unique_lock lock(scheduling_);
  std::set<std::string> refused;
  for (int attempt = 0; attempt < Scheduler::kMaxClaimAttempts; ++attempt) {
    auto selection = scheduler_.reserve(spec, host_states(spec), refused);
    if (!selection) return std::nullopt;
    if (!spec.group_id.empty()) pending_[spec.instance_id] = {spec.group_id, selection->host};
    lock.unlock();
    bool claimed = scheduler_.claim(spec, *selection);
    lock.lock();
    if (claimed) return selection;
    pending_.erase(spec.instance_id);
    refused.insert(selection->node_uuid);
  }
  return std::nullopt;
}

void Conductor::recorded(const std::string& instance_id) {
  std::lock_guard lock(scheduling_);
  pending_.erase(instance_id);
}

void Conductor::give_back_ports(const json::object& row, const char* why) {
  try {
    compute_->deallocate_network(row);
  } catch (const std::exception& e) {
    spdlog::warn("conductor: ports of {} ({}) stay: {}", string_or(row, "id"), why, e.what());
  }
}

bool Conductor::send_to_host(json::object row, const std::string& op) {
  std::map<std::string, std::string> metadata;
  auto id = string_or(row, "id"), host = string_or(row, "host");
  auto* requested = row.if_contains("requested_networks");
  bool networked = requested && !requested->is_null() &&
                   !(requested->is_array() && requested->as_array().empty());
  if (networked && (op == "spawn" || string_or(row, "network_host") != host)) {
    try {
      row["network_info"] = compute_->allocate_network(row, host);
    } catch (const std::exception& e) {
      spdlog::error("conductor: ports of {} on {}: {}", id, host, e.what());
      if (op == "spawn") {
        placement_->release(id);
        give_back_ports(row, "failed build");  // what was made or bound before the failure
        fail(id,
             "Build of instance " + id +
                 " aborted: Failed to allocate the network(s), not rescheduling. " + e.what(),
             500);
        return false;
      }
      // Any other work goes on with the NICs the server had (its ports keep their old binding).
    }
    if (op == "spawn") {
      // Deleted (or moved on) while its ports were made: nothing spawns, and they go unless the
      // delete in flight removes them.
      std::optional<json::object> now;
      compute_->database().read([&](soci::session& s) { now = db::get(s, st::instance, id); });
      bool current = now && !now->at("deleted").as_bool() &&
                     string_or(*now, "task_state") == "spawning" && string_or(*now, "host") == host;
      if (!current) {
        bool deleting =
            now && !now->at("deleted").as_bool() && string_or(*now, "task_state") == "deleting";
        if (!deleting) give_back_ports(row, "server gone while they were made");
        return false;
      }
    }
  }
  compute_->database().read([&](soci::session& s) {
    for (auto& m : db::select(s, st::instance_metadata, db::Query{}.eq("instance_id", id)))
      metadata[string_or(m, "key")] = string_or(m, "value");
  });
  auto spec = instance_spec(row, metadata).to_json();
  spec["admin_password"] = string_or(row, "admin_pass");
  if (op == "spawn")
    bus_->cast("compute." + host, "spawn", json::object{{"instance_id", id}, {"instance", spec}});
  else
    bus_->cast("compute." + host, "run",
               json::object{{"instance_id", id},
                            {"op", op},
                            {"task_state", row.at("task_state")},
                            {"instance", spec}});
  return true;
}

void Conductor::build(const std::string& id, const std::string& last_error) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || row->at("deleted").as_bool() || string_or(*row, "task_state") != "scheduling") return;
  auto spec = request_spec(*row, row->at("flavor").as_object());
  auto selection = choose(spec);
  if (!selection) {
    placement_->release(id);  // a reschedule may still hold the failed host's claim
    // A reschedule with no host left ends with why the last host failed (Nova's
    // MaxRetriesExceeded names it too).
    fail(id,
         last_error.empty()
             ? "No valid host was found. There are not enough hosts available."
             : "Exceeded maximum number of retries. Exhausted all hosts available for retrying "
               "build failures for instance " +
                   id + ". Last error: " + last_error,
         500);
    return;
  }
  AtExit done{[&] { recorded(id); }};
  bool placed = false;
  // The hosts tried come from the row read above: while the server waits for a host nothing else
  // changes them, and the write below happens only if it still waits (compare-and-set, no read in
  // the writer's transaction).
  json::array tried;
  if (auto* t = row->if_contains("tried_hosts"); t && t->is_array()) tried = t->as_array();
  tried.push_back(json::value(selection->host));
  compute_->database().write([&](soci::session& s) {
    json::object changes{
        {"host", selection->host},
        {"node", selection->node},
        {"availability_zone", selection->zone},  // as Nova records the zone it chose
        {"task_state", "spawning"},
        {"tried_hosts", tried},
        {"updated_at", compute_->now()},
        // A previous attempt's NIC reports do not count on this host.
        {"vif_events", nullptr},
        {"vif_failures", nullptr},
        {"spawned_at", nullptr}};
    placed = db::update(s, st::instance, id, changes,
                        db::Query{}.eq("deleted", "0").eq("task_state", "scheduling")) == 1;
    if (placed)
      for (auto& kv : changes) (*row)[kv.key()] = kv.value();
  });
  if (!placed) {  // deleted while we chose: give the room back
    placement_->release(id);
    return;
  }
  send_to_host(*row, "spawn");
}

void Conductor::spawned(const json::object& b) {
  auto id = string_or(b, "instance_id"), host = string_or(b, "host");
  std::optional<json::object> r;
  compute_->database().read([&](soci::session& s) { r = db::get(s, st::instance, id); });
  if (!r || string_or(*r, "task_state") != "spawning" || string_or(*r, "host") != host) return;
  // The VM runs; it is ACTIVE once its NICs are plugged too (Nova waits for
  // network-vif-plugged). NIC reports only ever add up, so the row read before the write can
  // decide; the write itself happens only while the build is still at this step on this host.
  bool wait = compute_->network() && compute_->settings().vif_plugging_timeout > 0 &&
              bool_or(b, "plugs_vifs", true) && !ComputeService::vifs_plugged(*r);
  compute_->database().write([&](soci::session& s) {
    if (wait)
      db::update(s, st::instance, id,
                 json::object{{"spawned_at", compute_->now()},
                              {"spawned_power_state", int_or(b, "power_state")}},
                 spawning_on(host));
    else  // nothing to wait for: ACTIVE now
      make_active(s, id, host, int_or(b, "power_state"));
  });
  if (wait) vifs_plugged(id);  // the reports (or a failure) may have come first
}

void Conductor::vifs_plugged(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || string_or(*row, "task_state") != "spawning" || string_or(*row, "spawned_at").empty())
    return;
  auto host = string_or(*row, "host");
  if (auto* failed = row->if_contains("vif_failures");
      failed && failed->is_array() && !failed->as_array().empty()) {
    spawn_failed(json::object{{"instance_id", id},
                              {"host", host},
                              {"reason", "Virtual Interface creation failed"},
                              {"abort", true}});
    return;
  }
  if (ComputeService::vifs_plugged(*row))
    finish_build(id, host, int_or(*row, "spawned_power_state", 1));
}

void Conductor::check_vif_timeouts() {
  auto timeout = compute_->settings().vif_plugging_timeout;
  if (timeout <= 0 || !compute_->network()) return;
  auto cutoff =
      iso8601(std::chrono::system_clock::now() - std::chrono::seconds(timeout), true, false);
  std::vector<std::pair<std::string, std::string>> late;
  compute_->database().read([&](soci::session& s) {
    for (auto& r : db::select(s, st::instance, db::Query{}.eq("task_state", "spawning")))
      if (auto at = string_or(r, "spawned_at"); !at.empty() && at < cutoff)
        late.emplace_back(string_or(r, "id"), string_or(r, "host"));
  });
  for (auto& [id, host] : late) {
    spdlog::warn("conductor: {} on {}: no network-vif-plugged within {} s", id, host, timeout);
    spawn_failed(json::object{{"instance_id", id},
                              {"host", host},
                              {"reason", "Virtual Interface creation failed"},
                              {"abort", true}});
  }
}

void Conductor::finish_build(const std::string& id, const std::string& host,
                             std::int64_t power_state) {
  compute_->database().write([&](soci::session& s) { make_active(s, id, host, power_state); });
}

void Conductor::make_active(soci::session& s, const std::string& id, const std::string& host,
                            std::int64_t power_state) {
  auto t = compute_->now();
  if (db::update(s, st::instance, id,
                 json::object{{"vm_state", "active"},
                              {"task_state", nullptr},
                              {"power_state", power_state},
                              {"launched_at", t},
                              {"updated_at", t},
                              {"spawned_at", nullptr},
                              {"spawned_power_state", nullptr}},
                 spawning_on(host)) == 1)
    add_event(s, id, event_name("create"), true, host, t);
}

void Conductor::spawn_failed(const json::object& b) {
  auto id = string_or(b, "instance_id"), host = string_or(b, "host"),
       reason = string_or(b, "reason");
  bool retry = false, failed = false;
  compute_->database().write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    if (!r || string_or(*r, "task_state") != "spawning" || string_or(*r, "host") != host) return;
    auto* tried = r->if_contains("tried_hosts");
    auto attempts = tried && tried->is_array() ? static_cast<int>(tried->as_array().size()) : 1;
    add_event(s, id, event_name("create"), false, host, compute_->now(), reason);
    if (attempts < settings_.max_attempts && !bool_or(b, "abort", false)) {
      db::update(s, st::instance, id,
                 json::object{{"task_state", "scheduling"},
                              {"host", nullptr},
                              {"node", nullptr},
                              {"updated_at", compute_->now()}});
      retry = true;
    } else {
      failed = true;
    }
  });
  spdlog::warn("conductor: build of {} failed on {}: {}{}", id, host, reason,
               retry ? "; rescheduling" : "");
  bus_->cast("compute." + host, "cleanup", json::object{{"instance_id", id}});
  if (retry) build(id, reason);
  if (failed) {
    placement_->release(id);
    std::optional<json::object> row;
    compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
    if (row) give_back_ports(*row, "failed build");  // as Nova's _cleanup_allocated_networks
    fail(id,
         bool_or(b, "abort", false)
             ? "Build of instance " + id + " aborted: " + reason
             : "Exceeded maximum number of retries. Exhausted all hosts available for retrying "
               "build failures for instance " +
                   id + ". Last error: " + reason,
         500);
  }
}

void Conductor::action_done(const json::object& b) {
  auto id = string_or(b, "instance_id"), task = string_or(b, "task_state");
  bool ok = b.at("ok").as_bool();
  // Placement before the record (see destroyed), so that a replay moves nothing twice: a shelved
  // server leaves its host, so its claim goes; a live migration gives back the source's room when
  // it ends, and the destination's when it fails (the server stays on its source).
  std::string left_host;
  if (task == "shelving" || task == "shelving_offloading" || task == "migrating" ||
      task == "rebuilding") {
    std::optional<json::object> row;
    compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
    if (row && string_or(*row, "task_state") == task) {
      auto migration = string_or(*row, "migration_id");
      if (task == "rebuilding") {
        // A failed evacuation gives the new host's room back and puts the server back on its
        // (dead) host, from where it can be evacuated again; a finished one keeps the dead
        // host's room until that host is back.
        if (evacuating(*row) && !ok && !placement_->allocations(migration).empty()) {
          placement_->release(id);
          placement_->move_allocations(
              migration, id, {id, string_or(*row, "project_id"), string_or(*row, "user_id")});
          left_host = string_or(*row, "host");
        }
      } else if (task != "migrating") {
        if (ok) placement_->release(id);
      } else if (ok) {
        placement_->release(migration);
        left_host = string_or(*row, "source_host");
      } else if (!migration.empty() && !placement_->allocations(migration).empty()) {
        placement_->release(id);
        placement_->move_allocations(
            migration, id, {id, string_or(*row, "project_id"), string_or(*row, "user_id")});
        left_host = string_or(*row, "host");
      }
    }
  }
  std::string power_off_host, drop_image;
  compute_->database().write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    if (!r || r->at("deleted").as_bool() || string_or(*r, "task_state") != task) return;
    auto* spec = action_for_task(task);
    auto t = compute_->now();
    auto host = string_or(*r, "host");
    bool evacuation = evacuating(*r);
    if (!ok) {
      json::object changes{{"task_state", nullptr}, {"updated_at", t}};
      if (task == "migrating" || evacuation) {  // back on its source
        for (auto* key : {"host", "node"}) changes[key] = r->at(std::string("source_") + key);
        for (auto* key : {"source_host", "source_node", "migration_id", "move_host", "task_args"})
          changes[key] = nullptr;
        set_migration_status(s, string_or(*r, "migration_id"), evacuation ? "failed" : "error", t);
        if (evacuation) changes["vm_state"] = "error";  // as Nova leaves a failed rebuild
      }
      db::update(s, st::instance, id, changes);
      db::insert(s, st::instance_fault,
                 json::object{{"id", uuid4()},
                              {"instance_id", id},
                              {"code", 500},
                              {"message", string_or(b, "error")},
                              {"details", ""},
                              {"host", host},
                              {"created_at", t}});
      if (spec) add_event(s, id, event_name(spec->record), false, host, t, string_or(b, "error"));
      return;
    }
    json::object changes{{"task_state", nullptr}, {"updated_at", t}, {"task_args", nullptr}};
    if (spec && !spec->done_vm_state.empty()) {
      changes["vm_state"] = spec->done_vm_state;
      changes["power_state"] = spec->done_power_state;
    }
    changes["move_host"] = nullptr;
    if (task == "shelving" || task == "shelving_offloading") {
      changes["host"] = nullptr;
      changes["node"] = nullptr;
      if (auto image = string_or(object(*r, "task_args"), "image_id"); !image.empty())
        changes["shelved_image_id"] = image;
    } else if (task == "resize_prep") {
      auto flavor = r->at("flavor").as_object();
      auto next = object(*r, "new_flavor");
      if (next.empty()) next = flavor;  // a migration keeps its flavor
      for (auto& kv : flavor_columns(next)) changes[kv.key()] = kv.value();
      changes["old_flavor"] = flavor;
      changes["new_flavor"] = nullptr;
      set_migration_status(s, string_or(*r, "migration_id"), "finished", t);
      changes["power_state"] = int_or(b, "power_state");
    } else if (task == "migrating") {
      for (auto* key : {"source_host", "source_node", "migration_id"}) changes[key] = nullptr;
      set_migration_status(s, string_or(*r, "migration_id"), "completed", t);
    } else if (evacuation) {
      // "done" until the dead host is back and has dropped its copy (then "completed").
      for (auto* key : {"source_host", "source_node", "migration_id"}) changes[key] = nullptr;
      set_migration_status(s, string_or(*r, "migration_id"), "done", t);
      changes["launched_at"] = t;
      changes["task_args"] = nullptr;
      changes["power_state"] = int_or(b, "power_state");
    } else if (task == "unshelving") {
      changes["launched_at"] = t;
      changes["shelved_image_id"] = nullptr;
      drop_image = string_or(*r, "shelved_image_id");
    }
    if (spec && spec->done_vm_state == "active" && int_or(b, "power_state") == 4)
      changes["vm_state"] = "stopped";
    // A stopped server stays stopped through a rebuild or a resize, as in Nova.
    if (string_or(*r, "previous_vm_state") == "stopped" && !evacuation &&
        (task == "rebuilding" || task == "resize_prep" || task == "resize_reverting")) {
      changes["power_state"] = 4;
      if (task != "resize_prep") changes["vm_state"] = "stopped";
      power_off_host = host;
    }
    db::update(s, st::instance, id, changes);
    if (spec) add_event(s, id, event_name(spec->record), true, host, t);
  });
  if (!power_off_host.empty())
    bus_->cast("compute." + power_off_host, "power_off", json::object{{"instance_id", id}});
  if (!drop_image.empty()) remove_image(drop_image);
  if (!left_host.empty())  // the copy the server no longer runs from
    bus_->cast("compute." + left_host, "cleanup", json::object{{"instance_id", id}});
}

void Conductor::delete_instance(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || string_or(*row, "task_state") != "deleting") return;
  // A resize in flight leaves a copy on its source host.
  if (auto source = string_or(*row, "source_host");
      !source.empty() && source != string_or(*row, "host"))
    bus_->cast("compute." + source, "cleanup", json::object{{"instance_id", id}});
  if (string_or(*row, "host").empty())
    destroyed(id, "");
  else
    bus_->cast("compute." + string_or(*row, "host"), "destroy", json::object{{"instance_id", id}});
}

void Conductor::destroyed(const std::string& id, const std::string& host) {
  // Placement first, then the record: a crash in between leaves the server `deleting`, and the
  // replay releases nothing more and deletes it, so no allocation outlives its server.
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || row->at("deleted").as_bool() || string_or(*row, "task_state") != "deleting") return;
  try {
    compute_->deallocate_network(*row);
  } catch (const std::exception& e) {
    // The server stays `deleting`: the next replay removes its ports and then the server.
    spdlog::error("conductor: ports of {} could not be removed: {}", id, e.what());
    return;
  }
  placement_->release(id);
  if (auto migration = string_or(*row, "migration_id"); !migration.empty())
    placement_->release(migration);
  compute_->database().write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    if (!r || r->at("deleted").as_bool() || string_or(*r, "task_state") != "deleting") return;
    auto t = compute_->now();
    db::update(s, st::instance, id,
               json::object{{"vm_state", "deleted"},
                            {"task_state", nullptr},
                            {"power_state", 0},
                            {"deleted", true},
                            {"deleted_at", t},
                            {"terminated_at", t},
                            {"updated_at", t}});
    db::remove(s, st::server_group_member, db::Query{}.eq("instance_id", id));
    add_event(s, id, event_name("delete"), true, host, t);
  });
  // A shelved server's image goes with it.
  if (auto kept = string_or(*row, "shelved_image_id"); !kept.empty()) remove_image(kept);
}

void Conductor::remove_image(const std::string& image_id) {
  try {
    if (compute_->images()) compute_->images()->remove(image_id);
  } catch (const std::exception& e) {
    spdlog::warn("conductor: image {} kept for a shelved server stays: {}", image_id, e.what());
  }
}

void Conductor::run_action(const std::string& id, const std::string& op) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || row->at("deleted").as_bool()) return;
  auto task = string_or(*row, "task_state");
  if (op == "confirm_resize") return confirm_resize(id);
  if (evacuating(*row)) return evacuate(id);
  if (task == "resize_prep" || task == "unshelving" || task == "migrating")
    return schedule_move(id);
  if (task == "resize_reverting") return revert_resize(id);
  // An action on a server that is on no host (an ERROR before placement) has nothing to drive.
  if (string_or(*row, "host").empty() && !task.empty()) {
    auto* spec = action_for_task(task);
    action_done(json::object{{"instance_id", id},
                             {"task_state", task},
                             {"ok", true},
                             {"power_state", spec ? spec->done_power_state : 0}});
    return;
  }
  if (!task.empty()) send_to_host(*row, op);
}

void Conductor::schedule_move(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  auto task = string_or(*row, "task_state");
  bool live = task == "migrating";
  // A resize and a migration, cold or live, hold the source's room under a migration record.
  bool resizing = task == "resize_prep" || live;
  auto flavor = object(*row, "new_flavor");
  if (flavor.empty()) flavor = row->at("flavor").as_object();
  // The agent builds the server on its new flavor (the spec carries it).
  auto send = [&] {
    auto spec_row = *row;
    for (auto& kv : flavor_columns(flavor)) spec_row[kv.key()] = kv.value();
    // An unshelved server boots from the image its disk was kept in.
    if (auto kept = string_or(*row, "shelved_image_id"); !resizing && !kept.empty())
      spec_row["image_ref"] = kept;
    send_to_host(spec_row, live ? "live_migrate" : resizing ? "resize" : "spawn_unshelve");
  };
  // Replayed after a restart once a host was chosen: send the work there again.
  if (!string_or(*row, "move_host").empty()) return send();
  auto spec = request_spec(*row, flavor);
  spec.ignore_hosts.clear();
  auto source = string_or(*row, "host");
  std::string migration;
  if (resizing) {
    migration = uuid4();
    bool migrate = object(*row, "new_flavor").empty();
    if (migrate || !settings_.allow_resize_to_same_host) spec.ignore_hosts.insert(source);
    // A live migration to a named host goes there if it has room (the filters are not asked).
    // A live migration's named host: taken as it is when forced, else checked by the filters.
    if (live) {
      auto args = object(*row, "task_args");
      (bool_or(args, "force", true) ? spec.forced_host : spec.requested_host) =
          string_or(args, "host");
    }
    placement_->move_allocations(
        id, migration, {migration, string_or(*row, "project_id"), string_or(*row, "user_id")});
  }
  auto selection = choose(spec);
  if (!selection) {
    if (resizing)
      placement_->move_allocations(migration, id,
                                   {id, string_or(*row, "project_id"), string_or(*row, "user_id")});
    if (live) {  // the server stays where it is, running: Nova's failed pre-check
      compute_->database().write([&](soci::session& s) {
        db::update(
            s, st::instance, id,
            json::object{
                {"task_state", nullptr}, {"task_args", nullptr}, {"updated_at", compute_->now()}});
        add_event(s, id, event_name("live-migration"), false, source, compute_->now(),
                  "No valid host was found.");
      });
      return;
    }
    fail(id, "No valid host was found. ", 500, string_or(*row, "vm_state"));
    return;
  }
  AtExit done{[&] { recorded(id); }};
  compute_->database().write([&](soci::session& s) {
    json::object changes{{"host", selection->host},
                         {"node", selection->node},
                         {"availability_zone", selection->zone},
                         {"move_host", selection->host},
                         {"updated_at", compute_->now()}};
    if (resizing) {
      changes["source_host"] = source;
      changes["source_node"] = string_or(*row, "node");
      changes["migration_id"] = migration;
      st::insert_migration(
          s, migration, *row, compute_->now(),
          json::object{{"dest_compute", selection->host},
                       {"dest_node", selection->node},
                       {"old_instance_type_id", flavor_number(s, row->at("flavor").as_object())},
                       {"new_instance_type_id", flavor_number(s, flavor)},
                       {"status", live ? "running" : "migrating"},
                       {"migration_type", live                                 ? "live-migration"
                                          : object(*row, "new_flavor").empty() ? "migration"
                                                                               : "resize"}});
    }
    db::update(s, st::instance, id, changes);
    row = *db::get(s, st::instance, id);
  });
  send();
}

void Conductor::evacuate(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || !evacuating(*row)) return;
  // Replayed after a restart once a host was chosen: send the work there again.
  if (!string_or(*row, "move_host").empty()) {
    send_to_host(*row, "evacuate");
    return;
  }
  auto args = object(*row, "task_args");
  auto source = string_or(*row, "host"), migration = string_or(*row, "migration_id");
  placement::Consumer as_instance{id, string_or(*row, "project_id"), string_or(*row, "user_id")};
  // The dead host's room stays held, under the migration, until that host is back and has
  // dropped its copy (finish_evacuations), as Nova keeps it; the new host is claimed for the
  // server. A replay finds the room already moved.
  if (placement_->allocations(migration).empty())
    placement_->move_allocations(
        id, migration, {migration, string_or(*row, "project_id"), string_or(*row, "user_id")});
  auto spec = request_spec(*row, row->at("flavor").as_object());
  spec.ignore_hosts = {source};
  spec.forced_host.clear();
  if (auto dest = string_or(args, "host"); !dest.empty())
    (bool_or(args, "force", false) ? spec.forced_host : spec.requested_host) = dest;
  auto selection = choose(spec);
  if (!selection) {  // Nova's conductor: the migration errs and the server goes to ERROR
    placement_->move_allocations(migration, id, as_instance);
    // One transaction: a crash between clearing the evacuation and the ERROR would leave a
    // "rebuilding" server that a host's return would rebuild from its image.
    fail(id, "No valid host was found. ", 500, "error", [&](soci::session& s) {
      set_migration_status(s, migration, "error", compute_->now());
      db::update(s, st::instance, id,
                 json::object{{"migration_id", nullptr}, {"task_args", nullptr}});
    });
    return;
  }
  AtExit done{[&] { recorded(id); }};
  compute_->database().write([&](soci::session& s) {
    auto t = compute_->now();
    db::update(s, st::instance, id,
               json::object{{"host", selection->host},
                            {"node", selection->node},
                            {"availability_zone", selection->zone},
                            {"move_host", selection->host},
                            {"source_host", source},
                            {"source_node", row->at("node")},
                            {"updated_at", t}});
    db::update(s, st::migration, migration,
               json::object{{"dest_compute", selection->host},
                            {"dest_node", selection->node},
                            {"status", "pre-migrating"},
                            {"updated_at", t}});
    row = *db::get(s, st::instance, id);
  });
  send_to_host(*row, "evacuate");
}

void Conductor::confirm_resize(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  if (!row || string_or(*row, "vm_state") != "resized") return;
  // The source's room goes first (see destroyed): a replay finds nothing more to release.
  if (auto m = string_or(*row, "migration_id"); !m.empty()) placement_->release(m);
  row.reset();
  compute_->database().write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    if (!r || string_or(*r, "vm_state") != "resized") return;
    auto t = compute_->now();
    db::update(s, st::instance, id,
               json::object{{"vm_state", int_or(*r, "power_state") == 4 ? "stopped" : "active"},
                            {"task_state", nullptr},
                            {"old_flavor", nullptr},
                            {"migration_id", nullptr},
                            {"source_host", nullptr},
                            {"source_node", nullptr},
                            {"updated_at", t}});
    add_event(s, id, event_name("confirmResize"), true, string_or(*r, "host"), t);
    set_migration_status(s, string_or(*r, "migration_id"), "confirmed", t);
    row = r;
  });
  if (!row) return;
  if (auto source = string_or(*row, "source_host");
      !source.empty() && source != string_or(*row, "host"))
    bus_->cast("compute." + source, "cleanup", json::object{{"instance_id", id}});
}

void Conductor::revert_resize(const std::string& id) {
  std::optional<json::object> row;
  compute_->database().read([&](soci::session& s) { row = db::get(s, st::instance, id); });
  auto dest = string_or(*row, "host"), source = string_or(*row, "source_host");
  auto old_flavor = object(*row, "old_flavor");
  // Replayed after a crash, the migration may already have handed its room back: move only once.
  if (!string_or(*row, "migration_id").empty() &&
      !placement_->allocations(string_or(*row, "migration_id")).empty()) {
    placement_->release(id);
    placement_->move_allocations(string_or(*row, "migration_id"), id,
                                 {id, string_or(*row, "project_id"), string_or(*row, "user_id")});
  }
  compute_->database().write([&](soci::session& s) {
    json::object changes{{"old_flavor", nullptr},
                         {"migration_id", nullptr},
                         {"source_host", nullptr},
                         {"source_node", nullptr},
                         {"updated_at", compute_->now()}};
    if (!source.empty()) {
      changes["host"] = source;
      changes["node"] = row->at("source_node");
    }
    if (!old_flavor.empty())
      for (auto& kv : flavor_columns(old_flavor)) changes[kv.key()] = kv.value();
    set_migration_status(s, string_or(*row, "migration_id"), "reverted", compute_->now());
    db::update(s, st::instance, id, changes);
    row = *db::get(s, st::instance, id);
  });
  if (!source.empty() && source != dest)
    bus_->cast("compute." + dest, "cleanup", json::object{{"instance_id", id}});
  send_to_host(*row, "resize");
}

void Conductor::fail(const std::string& id, const std::string& message, int code,
                     const std::string& vm_state, const std::function<void(soci::session&)>& also) {
  compute_->database().write([&](soci::session& s) {
    auto r = db::get(s, st::instance, id);
    if (!r || r->at("deleted").as_bool()) return;
    if (also) also(s);
    auto t = compute_->now();
    db::update(s, st::instance, id,
               json::object{{"vm_state", vm_state}, {"task_state", nullptr}, {"updated_at", t}});
    db::insert(s, st::instance_fault,
               json::object{{"id", uuid4()},
                            {"instance_id", id},
                            {"code", code},
                            {"message", message},
                            {"details", ""},
                            {"host", r->at("host")},
                            {"created_at", t}});
    add_event(s, id, "conductor_schedule_and_build_instances", false, "", t, message);
  });
  spdlog::warn("conductor: {}: {}", id, message);
}

void Conductor::power_states(const json::object& b) {
  auto host = string_or(b, "host");
  auto states = object(b, "instances");
  auto taken = string_or(states, "@");
  // The power state the report gives a server whose record it may change, if any.
  auto reported = [&](const std::string& id, const std::string& task_state,
                      const std::string& updated_at,
                      std::int64_t recorded) -> std::optional<std::int64_t> {
    if (!task_state.empty()) return std::nullopt;  // an operation in flight owns the state
    if (updated_at >= taken) return std::nullopt;  // changed after the report was taken
    auto* seen = states.if_contains(id);
    std::int64_t power = seen && seen->is_int64() ? seen->as_int64() : 4;  // gone: shut down
    if (power == recorded) return std::nullopt;
    return power;
  };
  // Most reports change nothing: they are checked on a reader, from the few columns that count,
  // and only a report with news takes the writer.
  bool news = false;
  compute_->database().read([&](soci::session& s) {
    for (auto& r :
         db::select_columns(s, st::instance, {"id", "task_state", "updated_at", "power_state"},
                            db::Query{}.eq("host", host).eq("deleted", "0")))
      if (reported(r[0].value_or(""), r[1].value_or(""), r[2].value_or(""),
                   r[3] ? std::stoll(*r[3]) : 0)) {
        news = true;
        break;
      }
  });
  if (!news) return;
  compute_->database().write([&](soci::session& s) {
    for (auto& r : db::select(s, st::instance, db::Query{}.eq("host", host).eq("deleted", "0"))) {
      auto power = reported(string_or(r, "id"), string_or(r, "task_state"),
                            string_or(r, "updated_at"), int_or(r, "power_state"));
      if (!power) continue;
      json::object changes{{"power_state", *power}, {"updated_at", compute_->now()}};
      // A guest that stopped by itself (or died while Nubo was down) shows SHUTOFF, as Nova's sync
      // does.
      if (string_or(r, "vm_state") == "active" && (*power == 4 || *power == 6))
        changes["vm_state"] = "stopped";
      db::update(s, st::instance, string_or(r, "id"), changes);
    }
  });
}

void Conductor::resume_host(const std::string& host) {
  std::vector<json::object> rows;
  compute_->database().read([&](soci::session& s) {
    for (auto& r : db::select(s, st::instance, db::Query{}.eq("host", host).eq("deleted", "0")))
      if (!string_or(r, "task_state").empty()) rows.push_back(std::move(r));
  });
  for (auto& r : rows) {
    auto id = string_or(r, "id"), task = string_or(r, "task_state");
    // An evacuation still choosing its host is the conductor's own (resumed by start()), not
    // the dead host's.
    if (evacuating(r) && string_or(r, "move_host").empty()) continue;
    spdlog::info("conductor: resuming {} of {} on {}", task, id, host);
    if (task == "spawning")
      send_to_host(r, "spawn");
    else if (task == "deleting")
      delete_instance(id);
    else if (task == "resize_prep" || task == "unshelving" || task == "resize_reverting" ||
             task == "migrating" || evacuating(r))
      run_action(id, "schedule");
    else if (auto* spec = action_for_task(task); spec && !spec->agent_op.empty())
      send_to_host(r, spec->agent_op);
  }
}

void Conductor::confirm_old_resizes() {
  if (settings_.resize_confirm_window <= 0) return;
  std::vector<std::string> due;
  auto cutoff = iso8601(
      std::chrono::system_clock::now() - std::chrono::seconds(settings_.resize_confirm_window),
      true, false);
  compute_->database().read([&](soci::session& s) {
    for (auto& row : db::query_strings(s,
                                       "SELECT id FROM instance WHERE deleted = 0 AND vm_state = "
                                       "'resized' AND updated_at < :p0",
                                       {cutoff}))
      due.push_back(*row[0]);
  });
  for (auto& id : due) confirm_resize(id);
}

}  // namespace nubo::compute
