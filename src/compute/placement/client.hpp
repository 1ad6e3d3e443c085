// The placement client the compute scheduler uses: providers, candidates and claims, in-process or
// remote.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nubo::placement {

struct ProviderInventory {  // one compute node
  std::string uuid, name;   // provider uuid = compute node uuid, name = hypervisor_hostname
  std::int64_t vcpus = 0, memory_mb = 0, disk_gb = 0;
  double cpu_allocation_ratio = 16.0, ram_allocation_ratio = 1.5, disk_allocation_ratio = 1.0;
  std::int64_t reserved_memory_mb = 512, reserved_disk_gb = 0;
  std::vector<std::string> traits;  // e.g. COMPUTE_NODE
};

struct CandidateRequest {
  std::map<std::string, std::int64_t> resources;  // VCPU, MEMORY_MB, DISK_GB, ...
  std::vector<std::string> required_traits, forbidden_traits;
  std::vector<std::vector<std::string>> member_of;  // each inner list: any-of aggregate uuids
  std::optional<std::string> in_tree;               // provider uuid
  long limit = 1000;
};

struct Candidate {
  std::string provider_uuid;
  std::map<std::string, std::int64_t> requested;  // what a claim for it would allocate
  std::map<std::string, std::int64_t> capacity,
      used;  // per class, (total-reserved)*ratio and current usage
};

struct Consumer {
  std::string uuid, project_id, user_id;
};

class PlacementClient {
 public:
  virtual ~PlacementClient() = default;
  // Creates or updates the provider and its inventory/traits (idempotent; called at every compute
  // start).
  virtual void ensure_provider(const ProviderInventory& p) = 0;
  virtual std::vector<Candidate> allocation_candidates(const CandidateRequest& r) = 0;
  // Atomically replaces the consumer's allocations with these (provider uuid → class → amount).
  // Returns false (and changes nothing) when any provider lacks capacity.
  virtual bool claim(
      const Consumer& c,
      const std::map<std::string, std::map<std::string, std::int64_t>>& allocations) = 0;
  // The consumer's current allocations (provider uuid → class → amount); empty when none.
  virtual std::map<std::string, std::map<std::string, std::int64_t>> allocations(
      const std::string& consumer_uuid) = 0;
  // Moves all of `from`'s allocations to `to` (used for a migration record during resize); atomic.
  virtual void move_allocations(const std::string& from, const std::string& to,
                                const Consumer& to_consumer) = 0;
  virtual void release(const std::string& consumer_uuid) = 0;
  virtual void set_provider_aggregates(const std::string& provider_uuid,
                                       const std::vector<std::string>& aggregate_uuids) = 0;
};

}  // namespace nubo::placement
