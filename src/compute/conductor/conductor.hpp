// The conductor: the only writer of server state after the API. It drives each build and action
// as a durable state machine (the instance's task state is the record), talks to agents over the
// bus, claims through the scheduler and placement, and on start resumes whatever was half done.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/bus.hpp"
#include "compute/placement/client.hpp"
#include "compute/scheduler/scheduler.hpp"
#include "compute/service/compute_service.hpp"

namespace nubo::compute {

struct ConductorSettings {
  int max_attempts = 3;  // Nova's [scheduler] max_attempts: builds tried on this many hosts
  bool allow_resize_to_same_host = true;  // one-machine clouds resize in place (devstack's choice)
  double cpu_allocation_ratio = 16.0, ram_allocation_ratio = 1.5, disk_allocation_ratio = 1.0;
  std::int64_t reserved_host_memory_mb = 512, reserved_host_disk_mb = 0;
  int resize_confirm_window = 0;  // seconds before a resize confirms itself; 0: never
  SchedulerSettings scheduler;
};

class Conductor {
 public:
  Conductor(std::shared_ptr<ComputeService> compute, std::shared_ptr<Bus> bus,
            std::shared_ptr<placement::PlacementClient> placement, ConductorSettings settings);
  // Subscribes to the bus and resumes the builds that were waiting for a host.
  void start();
  void stop();
  // Confirms resizes older than resize_confirm_window (run periodically).
  void confirm_old_resizes();
  // Builds whose VM runs but whose NICs were not reported plugged within vif_plugging_timeout
  // fail (run periodically).
  void check_vif_timeouts();

 private:
  json::value handle(const BusMessage& m);
  void register_host(const json::object& body);
  // `last_error`: why the previous host failed, when this is a reschedule.
  void build(const std::string& id, const std::string& last_error = {});
  void spawned(const json::object& body);
  // A build whose VM runs turns ACTIVE once all its NICs are plugged (network-vif-plugged).
  void vifs_plugged(const std::string& id);
  void finish_build(const std::string& id, const std::string& host, std::int64_t power_state);
  // A build's server ACTIVE on `host`, in the caller's write, if it is still spawning there.
  void make_active(soci::session& s, const std::string& id, const std::string& host,
                   std::int64_t power_state);
  void spawn_failed(const json::object& body);
  void action_done(const json::object& body);
  void destroyed(const std::string& id, const std::string& host);
  void delete_instance(const std::string& id);
  void run_action(const std::string& id, const std::string& op);
  void schedule_move(const std::string& id);
  // Recreates a server whose host is down on another host (os-evacuate).
  void evacuate(const std::string& id);
  // The evacuations away from this host that ended while it was down: its copies and the room
  // they held go now that it is back (Nova's compute does this when it starts).
  void finish_evacuations(const std::string& host);
  void confirm_resize(const std::string& id);
  void revert_resize(const std::string& id);
  void power_states(const json::object& body);
  // Re-sends the work in flight on this host (after its agent (re)starts).
  void resume_host(const std::string& host);
  // Ends an operation in ERROR (or back in `vm_state` when given) with a fault.
  // `also` runs in the same transaction.
  void fail(const std::string& id, const std::string& message, int code,
            const std::string& vm_state = "error",
            const std::function<void(soci::session&)>& also = {});
  // The hosts as the scheduler sees them for this request (call with scheduling_ held).
  std::vector<HostState> host_states(const RequestSpec& spec);
  std::vector<HostState> load_hosts();
  // Picks and claims a host; a group member's choice counts for the group until recorded.
  std::optional<Selection> choose(const RequestSpec& spec);
  void recorded(const std::string& instance_id);
  RequestSpec request_spec(const json::object& row, const json::object& flavor);
  // Sends work to the server's host; a build (and any work on a host the server's ports are not
  // bound to) first gets its ports there. False when they could not be had (the build failed).
  bool send_to_host(json::object row, const std::string& op);
  // The server's ports back (deallocate_network); a failure is only logged, naming `why`.
  void give_back_ports(const json::object& row, const char* why);
  // Removes an image compute made for itself (a shelved server's); failures are only logged.
  void remove_image(const std::string& image_id);

  std::shared_ptr<ComputeService> compute_;
  std::shared_ptr<Bus> bus_;
  std::shared_ptr<placement::PlacementClient> placement_;
  ConductorSettings settings_;
  Scheduler scheduler_;
  std::mutex scheduling_;  // one placement decision at a time keeps weighers' view current
  // Guarded by scheduling_: the hosts' services, zones and aggregates, kept while the compute
  // service's hosts generation is unchanged and for at most a second (heartbeats age).
  struct HostView {
    bool valid = false;
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point loaded;
    std::vector<HostState> hosts;
  } view_;
  // Guarded by scheduling_: group members chosen a host whose record does not say so yet
  // (instance → group, host), so concurrent builds of one group see each other.
  std::map<std::string, std::pair<std::string, std::string>> pending_;
};

}  // namespace nubo::compute
