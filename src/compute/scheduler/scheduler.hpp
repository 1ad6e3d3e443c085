// The scheduler: the hosts placement says have room, then Nova's filters and weighers over them,
// then an atomic claim in placement on the best host (the next best when a concurrent claim won
// the race). Room is read from a short-lived snapshot of placement's usage rather than asked per
// request: a decision costs the in-memory ranking and the one claim.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compute/placement/client.hpp"

namespace nubo::compute {

// One compute node as the filters see it.
struct HostState {
  std::string host, node, node_uuid, zone;
  bool usable = true;  // service enabled and up
  std::map<std::string, std::set<std::string>>
      aggregate_metadata;  // key → values over its aggregates
  std::vector<std::string> aggregate_uuids;
  std::map<std::string, int> group_members;  // server group id → its servers on this host
};

// What one server needs.
struct RequestSpec {
  std::string instance_id, project_id, user_id;
  std::int64_t vcpus = 0, memory_mb = 0, disk_gb = 0;
  std::string zone, forced_host;
  // A host the request names but does not force (Nova's requested_destination): the only one
  // considered, and the filters still apply.
  std::string requested_host;
  std::map<std::string, std::string> extra_specs;  // the flavor's
  std::map<std::string, std::string> image_properties;
  std::string group_id, group_policy;  // affinity, anti-affinity, soft-affinity, soft-anti-affinity
  int max_server_per_host = 1;
  std::set<std::string> ignore_hosts;  // hosts already tried (reschedules) or excluded (migrate)
};

struct SchedulerSettings {
  // Nova's [filter_scheduler] enabled_filters, with its defaults; the availability zone and the
  // service state are always checked (Nova does both before the filters too).
  std::set<std::string> enabled_filters{"ComputeFilter", "ComputeCapabilitiesFilter",
                                        "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter",
                                        "ServerGroupAffinityFilter"};
  double ram_weight_multiplier = 1.0, cpu_weight_multiplier = 1.0, disk_weight_multiplier = 1.0;
  double soft_affinity_weight_multiplier = 1.0, soft_anti_affinity_weight_multiplier = 1.0;
  long max_placement_results = 1000;
  // How long the scheduler decides on its snapshot of placement's capacity and usage before asking
  // again. Its own claims update the snapshot; a claim placement refuses (someone else's change)
  // makes it ask again at once. Claims themselves are always checked by placement.
  std::chrono::milliseconds snapshot_ttl{1000};
  // IsolatedHostsFilter: these images run only on these hosts, and these hosts run only them.
  std::set<std::string> isolated_images, isolated_hosts;
  bool restrict_isolated_hosts_to_isolated_images = true;
};

struct Selection {
  std::string host, node, node_uuid, zone;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<placement::PlacementClient> placement, SchedulerSettings settings);
  // How many refused claims one request survives before it is NoValidHost.
  static constexpr int kMaxClaimAttempts = 10;
  // Chooses a host and claims the request's resources there for the instance (replacing what the
  // instance held before); nullopt when no host fits (Nova's NoValidHost). reserve() then claim(),
  // the next host when placement refuses one.
  std::optional<Selection> select_and_claim(const RequestSpec& spec,
                                            const std::vector<HostState>& hosts);
  // The best host with room in the snapshot, leaving out the `refused` providers; its room is held
  // in the snapshot until claim() settles it. Quick: callers may hold a lock across it, and not
  // across claim(), which waits for placement's durable write.
  std::optional<Selection> reserve(const RequestSpec& spec, const std::vector<HostState>& hosts,
                                   const std::set<std::string>& refused);
  // Claims a reservation in placement; false when placement refused it (the room is given back).
  bool claim(const RequestSpec& spec, const Selection& selection);
  // The hosts the filters keep for this request, best first (no claim). Exposed for tests.
  std::vector<const HostState*> rank(
      const RequestSpec& spec, const std::vector<HostState>& hosts,
      const std::vector<const placement::Candidate*>& candidates) const;
  std::vector<const HostState*> rank(const RequestSpec& spec, const std::vector<HostState>& hosts,
                                     const std::vector<placement::Candidate>& candidates) const;

 private:
  // Placement's view of every provider (capacity and usage of VCPU, MEMORY_MB, DISK_GB).
  void refresh_snapshot();
  std::vector<const placement::Candidate*> fitting(
      const std::map<std::string, std::int64_t>& resources) const;

  std::shared_ptr<placement::PlacementClient> placement_;
  SchedulerSettings settings_;
  std::mutex mutex_;
  std::map<std::string, placement::Candidate> snapshot_;  // provider uuid → capacity and usage
  std::chrono::steady_clock::time_point snapshot_time_{};
  bool snapshot_stale_ = true;
  // Reserved but not yet claimed, per provider and class: kept across a snapshot refresh.
  std::map<std::string, std::map<std::string, std::int64_t>> in_flight_;
};

}  // namespace nubo::compute
