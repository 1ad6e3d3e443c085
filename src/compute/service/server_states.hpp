// Server lifecycle as Nova defines it: the actions a server accepts in each vm_state, the task
// state each one moves through, the agent operation that does the work, and where it ends. The API
// side (ComputeService) and the conductor both read this one table.
#pragma once

#include <string>
#include <vector>

#include "common/json.hpp"

namespace nubo::compute {

struct ActionSpec {
  std::string action;             // API name: os-stop, reboot:HARD, ...
  std::string record;             // instance action name: stop, reboot, ...
  std::vector<std::string> from;  // vm_states allowed (task_state must be null)
  std::string task_state;         // set while the work runs
  std::string agent_op;           // what the agent does; empty: the conductor schedules first
  std::string done_vm_state;      // when the agent reports success; empty: unchanged
  int done_power_state = 1;
};

// The action by API name (reboot is "reboot:SOFT" / "reboot:HARD"); nullptr when unknown.
const ActionSpec* find_action(const std::string& action);
// The action that set this task state; nullptr for none (deleting, scheduling, spawning).
const ActionSpec* action_for_task(const std::string& task_state);

// Nova's refusal of an action (its instance action name) in the server's current state:
// "Cannot 'stop' instance ID while it is in vm_state stopped" (or task_state when one runs).
std::string state_conflict(const std::string& record, const std::string& id,
                           const json::object& row);

// Nova's server status from vm_state and task_state (ACTIVE, SHUTOFF, REBOOT, ...).
std::string server_status(const std::string& vm_state, const std::string& task_state);
// The vm_state (and task_states, empty: any) a status filter selects; empty vm_state: unknown.
struct StatusFilter {
  std::string vm_state;
  std::vector<std::string> task_states;
};
StatusFilter status_filter(const std::string& status);

}  // namespace nubo::compute
