#include "compute/service/server_states.hpp"

#include <algorithm>
#include <map>

namespace nubo::compute {

namespace {

const std::vector<ActionSpec>& actions() {
  static const std::vector<ActionSpec> table = {
      {"os-stop",
       "stop",
       {"active", "rescued", "error"},
       "powering-off",
       "power_off",
       "stopped",
       4},
      {"os-start", "start", {"stopped"}, "powering-on", "power_on", "active", 1},
      {"reboot:SOFT", "reboot", {"active"}, "rebooting", "reboot", "active", 1},
      {"reboot:HARD",
       "reboot",
       {"active", "stopped", "paused", "suspended", "error"},
       "rebooting_hard",
       "reboot_hard",
       "active",
       1},
      {"pause", "pause", {"active", "rescued"}, "pausing", "pause", "paused", 3},
      {"unpause", "unpause", {"paused"}, "unpausing", "unpause", "active", 1},
      {"suspend", "suspend", {"active"}, "suspending", "suspend", "suspended", 7},
      {"resume", "resume", {"suspended"}, "resuming", "resume", "active", 1},
      {"rescue", "rescue", {"active", "stopped", "error"}, "rescuing", "rescue", "rescued", 1},
      {"unrescue", "unrescue", {"rescued"}, "unrescuing", "unrescue", "active", 1},
      // Snapshots leave the server as it was (no done state).
      {"createImage",
       "createImage",
       {"active", "stopped", "paused", "suspended"},
       "image_snapshot",
       "snapshot",
       "",
       0},
      {"createBackup",
       "createBackup",
       {"active", "stopped", "paused", "suspended"},
       "image_backup",
       "backup",
       "",
       0},
      {"rebuild", "rebuild", {"active", "stopped", "error"}, "rebuilding", "rebuild", "active", 1},
      // Shelving offloads at once (Nova's shelved_offload_time = 0): the VM goes, the host is
      // freed.
      {"shelve",
       "shelve",
       {"active", "stopped", "paused", "suspended"},
       "shelving",
       "shelve",
       "shelved_offloaded",
       4},
      {"shelveOffload",
       "shelveOffload",
       {"shelved"},
       "shelving_offloading",
       "destroy",
       "shelved_offloaded",
       4},
      {"unshelve", "unshelve", {"shelved", "shelved_offloaded"}, "unshelving", "", "active", 1},
      {"resize", "resize", {"active", "stopped"}, "resize_prep", "", "resized", 1},
      {"migrate", "migrate", {"active", "stopped"}, "resize_prep", "", "resized", 1},
      // The server keeps running (or paused) while it moves; it ends in the state it had.
      {"os-migrateLive", "live-migration", {"active", "paused"}, "migrating", "", "", 1},
      {"revertResize", "revertResize", {"resized"}, "resize_reverting", "", "active", 1},
      // Recreated on another host from its image; the conductor chooses the host. Listed after
      // rebuild, whose task state it shares (and so its events, as in Nova).
      {"evacuate", "evacuate", {"active", "stopped", "error"}, "rebuilding", "", "active", 1},
  };
  return table;
}

}  // namespace

const ActionSpec* find_action(const std::string& action) {
  for (auto& a : actions())
    if (a.action == action) return &a;
  return nullptr;
}

const ActionSpec* action_for_task(const std::string& task_state) {
  for (auto& a : actions())
    if (a.task_state == task_state) return &a;
  return nullptr;
}

std::string state_conflict(const std::string& record, const std::string& id,
                           const json::object& row) {
  auto task = string_or(row, "task_state");
  return "Cannot '" + record + "' instance " + id + " while it is in " +
         (task.empty() ? "vm_state " + string_or(row, "vm_state") : "task_state " + task);
}

std::string server_status(const std::string& vm, const std::string& task) {
  auto in = [&](std::initializer_list<const char*> l) {
    return std::any_of(l.begin(), l.end(), [&](const char* t) { return task == t; });
  };
  bool resizing = in({"resize_prep", "resize_migrating", "resize_migrated", "resize_finish"});
  if (vm == "active") {
    if (in({"rebooting", "reboot_pending", "reboot_started"})) return "REBOOT";
    if (in({"rebooting_hard", "reboot_pending_hard", "reboot_started_hard"})) return "HARD_REBOOT";
    if (in({"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"})) return "REBUILD";
    if (task == "updating_password") return "PASSWORD";
    if (task == "migrating") return "MIGRATING";
    if (resizing) return "RESIZE";
    return "ACTIVE";
  }
  if (vm == "building") return "BUILD";
  if (vm == "stopped") {
    if (resizing) return "RESIZE";
    if (in({"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"})) return "REBUILD";
    return "SHUTOFF";
  }
  if (vm == "resized") return task == "resize_reverting" ? "REVERT_RESIZE" : "VERIFY_RESIZE";
  if (vm == "paused") return task == "migrating" ? "MIGRATING" : "PAUSED";
  if (vm == "error") return task == "rebuilding" ? "REBUILD" : "ERROR";
  static const std::map<std::string, std::string> plain = {
      {"suspended", "SUSPENDED"}, {"rescued", "RESCUE"},
      {"deleted", "DELETED"},     {"soft-delete", "SOFT_DELETED"},
      {"shelved", "SHELVED"},     {"shelved_offloaded", "SHELVED_OFFLOADED"}};
  auto it = plain.find(vm);
  return it == plain.end() ? "UNKNOWN" : it->second;
}

StatusFilter status_filter(const std::string& status) {
  static const std::map<std::string, StatusFilter> table = {
      {"ACTIVE", {"active", {}}},
      {"BUILD", {"building", {}}},
      {"SHUTOFF", {"stopped", {}}},
      {"ERROR", {"error", {}}},
      {"PAUSED", {"paused", {}}},
      {"SUSPENDED", {"suspended", {}}},
      {"RESCUE", {"rescued", {}}},
      {"VERIFY_RESIZE", {"resized", {}}},
      {"SHELVED", {"shelved", {}}},
      {"SHELVED_OFFLOADED", {"shelved_offloaded", {}}},
      {"DELETED", {"deleted", {}}},
      {"SOFT_DELETED", {"soft-delete", {}}},
      {"REBOOT", {"active", {"rebooting", "reboot_pending", "reboot_started"}}},
      {"HARD_REBOOT", {"active", {"rebooting_hard", "reboot_pending_hard", "reboot_started_hard"}}},
      {"REBUILD", {"active", {"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"}}},
      {"RESIZE",
       {"active", {"resize_prep", "resize_migrating", "resize_migrated", "resize_finish"}}},
      {"MIGRATING", {"active", {"migrating"}}},
      {"REVERT_RESIZE", {"resized", {"resize_reverting"}}},
  };
  std::string upper = status;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char ch) { return std::toupper(ch); });
  auto it = table.find(upper);
  return it == table.end() ? StatusFilter{} : it->second;
}

}  // namespace nubo::compute
