// Server actions on the API side: policy, lock and state checks, the instance action record and
// the task state, committed together; then the work is handed to the server's agent (or to the
// conductor when a host must be chosen first). Also the instance action history and the console.
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/service/server_states.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

std::string arg(const json::value& args, const char* key) {
  if (!args.is_object()) return {};
  auto* v = args.as_object().if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The policy rule of each action, as Nova names them.
std::string action_rule(const std::string& action) {
  static const std::map<std::string, std::string> rules = {
      {"os-stop", "os_compute_api:servers:stop"},
      {"os-start", "os_compute_api:servers:start"},
      {"reboot", "os_compute_api:servers:reboot"},
      {"pause", "os_compute_api:os-pause-server:pause"},
      {"unpause", "os_compute_api:os-pause-server:unpause"},
      {"suspend", "os_compute_api:os-suspend-server:suspend"},
      {"resume", "os_compute_api:os-suspend-server:resume"},
      {"rescue", "os_compute_api:os-rescue"},
      {"unrescue", "os_compute_api:os-unrescue"},
      {"rebuild", "os_compute_api:servers:rebuild"},
      {"shelve", "os_compute_api:os-shelve:shelve"},
      {"shelveOffload", "os_compute_api:os-shelve:shelve_offload"},
      {"unshelve", "os_compute_api:os-shelve:unshelve"},
      {"resize", "os_compute_api:servers:resize"},
      {"migrate", "os_compute_api:os-migrate-server:migrate"},
      {"os-migrateLive", "os_compute_api:os-migrate-server:migrate_live"},
      {"evacuate", "os_compute_api:os-evacuate"},
      {"confirmResize", "os_compute_api:servers:confirm_resize"},
      {"revertResize", "os_compute_api:servers:revert_resize"},
      {"lock", "os_compute_api:os-lock-server:lock"},
      {"unlock", "os_compute_api:os-lock-server:unlock"},
      {"os-resetState", "os_compute_api:os-admin-actions:reset_state"},
      {"trigger_crash_dump", "os_compute_api:servers:trigger_crash_dump"},
      {"restore", "os_compute_api:os-deferred-delete:restore"},
      {"createImage", "os_compute_api:servers:create_image"},
      {"createBackup", "os_compute_api:os-create-backup"},
  };
  auto it = rules.find(action);
  if (it == rules.end()) throw BadRequest("There is no such action: " + action);
  return it->second;
}

}  // namespace

json::object ComputeService::server_action(const Caller& c, const std::string& id,
                                           const std::string& action, const json::value& args) {
  auto rule = action_rule(action);
  json::object result, row;
  std::string op;  // the agent operation to cast after commit; "schedule" for the conductor
  std::map<std::string, std::string> metadata;
  db_->write([&](soci::session& s) {
    row = server_row(s, c, id, rule);
    auto t = now();
    bool locked = row.at("locked").as_bool();
    if (action == "lock") {
      json::object changes{
          {"locked", true},
          {"locked_by", string_or(row, "project_id") == c.project() ? "owner" : "admin"},
          {"updated_at", t}};
      if (auto reason = arg(args, "locked_reason"); !reason.empty())
        changes["locked_reason"] = reason;
      db::update(s, st::instance, id, changes);
      record_action(s, c, id, "lock");
      return;
    }
    if (action == "unlock") {
      if (locked && string_or(row, "locked_by") == "admin" &&
          string_or(row, "project_id") == c.project())
        c.authorize("os_compute_api:os-lock-server:unlock:unlock_override",
                    {{"project_id", string_or(row, "project_id")}});
      db::update(s, st::instance, id,
                 json::object{{"locked", false},
                              {"locked_by", nullptr},
                              {"locked_reason", nullptr},
                              {"updated_at", t}});
      record_action(s, c, id, "unlock");
      return;
    }
    if (action == "os-resetState") {
      auto state = arg(args, "state");
      db::update(s, st::instance, id,
                 json::object{{"vm_state", state}, {"task_state", nullptr}, {"updated_at", t}});
      return;
    }
    if (locked && !c.admin()) throw Conflict("Instance " + id + " is locked");
    if (action == "restore") throw Conflict(state_conflict("restore", id, row));
    if (action == "trigger_crash_dump") {
      if (string_or(row, "vm_state") != "active" || !string_or(row, "task_state").empty())
        throw Conflict(state_conflict("trigger_crash_dump", id, row));
      record_action(s, c, id, "trigger_crash_dump");
      return;
    }
    if (action == "confirmResize") {
      if (string_or(row, "vm_state") != "resized") throw Conflict("Instance has not been resized.");
      record_action(s, c, id, "confirmResize");
      op = "confirm_resize";
      return;
    }
    std::string key = action == "reboot" ? "reboot:" + arg(args, "type") : action;
    auto* spec = find_action(key);
    if (!spec) throw BadRequest("Invalid reboot type " + arg(args, "type"));
    auto vm = string_or(row, "vm_state");
    if (!string_or(row, "task_state").empty() ||
        std::find(spec->from.begin(), spec->from.end(), vm) == spec->from.end()) {
      if (action == "revertResize" && vm != "resized")
        throw Conflict("Instance has not been resized.");
      throw Conflict(state_conflict(spec->record, id, row));
    }
    json::object changes{
        {"task_state", spec->task_state}, {"updated_at", t}, {"previous_vm_state", vm}};
    if (action == "resize") {
      auto flavor_ref = arg(args, "flavorRef");
      json::object flavor;
      try {
        flavor = flavor_row(s, c, flavor_ref);
      } catch (const ApiError& e) {
        if (e.status() != 404) throw;
        throw BadRequest("Unable to find flavor " + flavor_ref);
      }
      if (string_or(flavor, "id") == string_or(row, "flavor_id"))
        throw BadRequest("When resizing, instances must change flavor!");
      // A bigger flavor must fit the project's cores and ram quotas (Nova checks the increase).
      auto quotas = effective_quotas(s, string_or(row, "project_id"), "");
      for (auto [resource, column] :
           {std::pair<const char*, const char*>{"cores", "vcpus"}, {"ram", "memory_mb"}}) {
        auto delta = flavor.at(column).as_int64() - row.at(column).as_int64();
        auto& q = quotas[resource];
        if (delta > 0 && q.limit >= 0 && q.in_use + delta > q.limit)
          throw Forbidden("Quota exceeded for " + std::string(resource) + ": Requested " +
                          std::to_string(delta) + ", but already used " + std::to_string(q.in_use) +
                          " of " + std::to_string(q.limit) + " " + resource);
      }
      changes["new_flavor"] = json::object{
          {"id", flavor.at("id")},           {"name", flavor.at("name")},
          {"vcpus", flavor.at("vcpus")},     {"memory_mb", flavor.at("memory_mb")},
          {"root_gb", flavor.at("root_gb")}, {"ephemeral_gb", flavor.at("ephemeral_gb")},
          {"swap", flavor.at("swap")},       {"extra_specs", flavor.at("extra_specs")}};
    }
    if (auto disk = arg(args, "OS-DCF:diskConfig"); !disk.empty()) changes["disk_config"] = disk;
    if (action == "createImage" || action == "createBackup" || action == "shelve")
      changes["task_args"] = args;
    if (action == "os-migrateLive") {
      // A named destination must be another compute host (Nova's checks, answered at once).
      auto dest = arg(args, "host");
      if (!dest.empty()) {
        if (!is_compute_host(s, dest))
          throw BadRequest("Compute host " + dest + " could not be found.");
        if (dest == string_or(row, "host"))
          throw BadRequest("Unable to migrate instance (" + id + ") to current host (" + dest +
                           ").");
      }
      changes["task_args"] =
          json::object{{"host", dest}, {"paused", vm == "paused"}, {"force", args.at("force")}};
    }
    if (action == "evacuate") {
      // Nova's checks, in its order: the named host, then the server's own host, which must be
      // down (an evacuation recreates the server elsewhere; its host must not still run it).
      auto dest = arg(args, "host"), source = string_or(row, "host");
      if (!dest.empty() && !is_compute_host(s, dest))
        throw NotFound("Compute host " + dest + " not found.");
      if (dest == source) throw BadRequest("The target host can't be the same one.");
      auto services = db::select(s, st::compute_service,
                                 db::Query{}.eq("host", source).eq("binary_name", "nova-compute"));
      if (!services.empty() && service_up(services.front()))
        throw BadRequest("Compute service of " + source + " is still in use.");
      auto pass = arg(args, "adminPass");
      if (pass.empty()) pass = uuid4_hex().substr(0, 12);
      result["adminPass"] = pass;
      changes["admin_pass"] = pass;
      // The migration record exists from the request on, as Nova's does ("accepted").
      auto migration = uuid4();
      st::insert_migration(
          s, migration, row, t,
          json::object{{"dest_compute", dest.empty() ? json::value(nullptr) : json::value(dest)},
                       {"status", "accepted"},
                       {"migration_type", "evacuation"}});
      changes["migration_id"] = migration;
      changes["task_args"] = json::object{{"evacuate", true},
                                          {"host", dest},
                                          {"force", args.at("force")},
                                          {"stop", args.at("stop").as_bool() || vm == "stopped"}};
    }
    if (action == "rebuild") {
      auto image_ref = arg(args, "imageRef");
      std::optional<ImageInfo> image;
      if (images_) image = images_->show(c.auth, image_ref);
      if (!image) throw BadRequest("Image " + image_ref + " could not be found.");
      if (image->status != "active") throw BadRequest("Image " + image_ref + " is not active.");
      changes["image_ref"] = image_ref;
      auto& obj = args.as_object();
      if (auto* name = obj.if_contains("name")) changes["name"] = *name;
      for (auto* key : {"description", "user_data", "key_name", "hostname"})
        if (auto* v = obj.if_contains(key)) changes[key] = *v;
      if (auto* ip = obj.if_contains("accessIPv4")) changes["access_ip_v4"] = *ip;
      if (auto* ip = obj.if_contains("accessIPv6")) changes["access_ip_v6"] = *ip;
      if (auto* meta = obj.if_contains("metadata"); meta && meta->is_object()) {
        db::remove(s, st::instance_metadata, db::Query{}.eq("instance_id", id));
        for (auto& kv : meta->as_object())
          db::insert(
              s, st::instance_metadata,
              json::object{
                  {"id", uuid4()}, {"instance_id", id}, {"key", kv.key()}, {"value", kv.value()}});
      }
    }
    if (action == "rebuild" || action == "rescue") {
      auto pass = arg(args, "adminPass");
      if (pass.empty()) pass = uuid4_hex().substr(0, 12);
      result["adminPass"] = pass;
    }
    db::update(s, st::instance, id, changes);
    record_action(s, c, id, spec->record);
    op = spec->agent_op.empty() ? "schedule" : spec->agent_op;
    row = *db::get(s, st::instance, id);
    for (auto& m : db::select(s, st::instance_metadata, db::Query{}.eq("instance_id", id)))
      metadata[string_or(m, "key")] = string_or(m, "value");
  });
  if (op.empty()) return result;  // done in the database alone (lock, unlock, reset state)
  if (op == "schedule" || op == "confirm_resize" || string_or(row, "host").empty())
    cast_to_conductor("run_action", json::object{{"instance_id", id}, {"op", op}});
  else
    cast_to_host(row, "run",
                 json::object{{"instance_id", id},
                              {"op", op},
                              {"task_state", row.at("task_state")},
                              {"instance", instance_spec(row, metadata).to_json()}});
  return result;
}

std::string ComputeService::snapshot_server(
    const Caller& c, const std::string& id, const std::string& name,
    const std::map<std::string, std::string>& metadata,
    const std::optional<std::pair<std::string, std::int64_t>>& backup) {
  return image_action(c, id, backup ? "createBackup" : "createImage", name, metadata, backup);
}

void ComputeService::shelve_server(const Caller& c, const std::string& id) {
  image_action(c, id, "shelve", {}, {}, std::nullopt);
}

std::string ComputeService::image_action(
    const Caller& c, const std::string& id, const std::string& action, std::string name,
    const std::map<std::string, std::string>& metadata,
    const std::optional<std::pair<std::string, std::int64_t>>& backup) {
  auto* spec = find_action(action);
  // The state is checked before the image exists, and again when the task is recorded.
  json::object row;
  db_->read([&](soci::session& s) { row = server_row(s, c, id, action_rule(action)); });
  if (row.at("locked").as_bool() && !c.admin()) throw Conflict("Instance " + id + " is locked");
  auto vm = string_or(row, "vm_state");
  if (!string_or(row, "task_state").empty() ||
      std::find(spec->from.begin(), spec->from.end(), vm) == spec->from.end())
    throw Conflict(state_conflict(spec->record, id, row));
  if (!images_) throw ApiError(503, "The image service is unavailable.", "ServiceUnavailable");
  // As Nova makes a snapshot's image: the base image's properties, the request's metadata, who
  // and what it came from, and minimums the server's disk meets.
  json::object body;
  if (auto* base = row.if_contains("image_properties"); base && base->is_object())
    body = image_properties(base->as_object());
  auto& flavor = row.at("flavor").as_object();
  // A shelved server keeps its disk as an image named after it, as Nova's shelve does.
  if (action == "shelve") name = string_or(row, "name") + "-shelved";
  body["name"] = name;
  body["visibility"] = "private";
  body["disk_format"] = string_or(body, "disk_format", "qcow2");
  body["container_format"] = string_or(body, "container_format", "bare");
  body["min_disk"] = std::max(int_or(body, "min_disk"), int_or(flavor, "root_gb"));
  body["min_ram"] = int_or(body, "min_ram");
  body["instance_uuid"] = id;
  body["user_id"] = c.user();
  body["image_type"] = backup ? "backup" : "snapshot";
  auto base_ref = string_or(row, "image_ref");
  if (!base_ref.empty()) body["base_image_ref"] = base_ref;
  if (backup) body["backup_type"] = backup->first;
  for (auto& [k, v] : metadata) body[k] = v;  // the request's metadata wins, as in Nova
  auto image = images_->create(c.auth, body);
  auto image_id = string_or(image, "id");
  json::object args{{"image_id", image_id}, {"disk_format", body["disk_format"]}};
  if (backup) {
    args["backup_type"] = backup->first;
    args["rotation"] = backup->second;
  }
  try {
    server_action(c, id, action, args);
  } catch (...) {
    try {
      images_->remove(image_id);
    } catch (...) {
    }
    throw;
  }
  return image_id;
}

std::vector<json::object> ComputeService::instance_actions(const Caller& c, const std::string& id) {
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    // Actions stay readable after the server is deleted (Nova reads them with read_deleted=yes).
    auto row = db::get(s, st::instance, id);
    if (!row || (!c.admin() && string_or(*row, "project_id") != c.project()))
      throw NotFound("Instance " + id + " could not be found.");
    c.authorize("os_compute_api:os-instance-actions:list",
                {{"project_id", string_or(*row, "project_id")}});
    db::Query q;
    q.eq("instance_id", id);
    q.order_by = "seq";
    q.descending = true;
    out = db::select(s, st::instance_action, q);
  });
  return out;
}

json::object ComputeService::instance_action(const Caller& c, const std::string& id,
                                             const std::string& request_id) {
  json::object out;
  db_->read([&](soci::session& s) {
    auto row = db::get(s, st::instance, id);
    if (!row || (!c.admin() && string_or(*row, "project_id") != c.project()))
      throw NotFound("Instance " + id + " could not be found.");
    c.authorize("os_compute_api:os-instance-actions:show",
                {{"project_id", string_or(*row, "project_id")}});
    auto actions = db::select(s, st::instance_action,
                              db::Query{}.eq("instance_id", id).eq("request_id", request_id));
    if (actions.empty())
      throw NotFound("Action for request_id " + request_id + " on instance " + id + " not found");
    out = std::move(actions.front());
    db::Query q;
    q.eq("action_id", string_or(out, "id"));
    q.order_by = "seq";
    json::array events;
    for (auto& e : db::select(s, st::instance_action_event, q)) events.push_back(std::move(e));
    out["events"] = std::move(events);
  });
  return out;
}

json::value ComputeService::ask_host(const json::object& row, const std::string& method,
                                     const json::object& body, const std::string& unavailable,
                                     std::chrono::seconds timeout) {
  auto id = string_or(row, "id");
  if (string_or(row, "host").empty() || string_or(row, "vm_state") == "building")
    throw Conflict("Instance " + id + " is not ready");
  try {
    return bus_->call("compute." + string_or(row, "host"), method, body, timeout);
  } catch (const BusTimeout& e) {
    throw ApiError(503, unavailable + e.what(), "ServiceUnavailable");
  } catch (const ApiError& e) {
    if (e.status() != 404) throw;  // the host does not have it (yet): not ready, as Nova says
    throw Conflict("Instance " + id + " is not ready");
  }
}

std::string ComputeService::console_output(const Caller& c, const std::string& id,
                                           std::optional<long> length) {
  json::object row;
  db_->read(
      [&](soci::session& s) { row = server_row(s, c, id, "os_compute_api:os-console-output"); });
  auto answer = ask_host(row, "console_output", json::object{{"instance_id", id}},
                         "Console output is not available: ");
  std::string output = answer.is_string() ? std::string(answer.as_string()) : std::string();
  if (length) {
    // Nova's tail: the last `length` pieces between newlines (a trailing newline ends an empty
    // one).
    std::vector<std::string> lines;
    size_t from = 0;
    for (;;) {
      auto nl = output.find('\n', from);
      lines.push_back(output.substr(from, nl == std::string::npos ? std::string::npos : nl - from));
      if (nl == std::string::npos) break;
      from = nl + 1;
    }
    auto n = static_cast<size_t>(std::max<long>(*length, 0));
    size_t first = lines.size() > n ? lines.size() - n : 0;
    std::string tail;
    for (size_t i = first; i < lines.size(); ++i) tail += (i > first ? "\n" : "") + lines[i];
    output = tail;
  }
  return output;
}

}  // namespace nubo::compute
