// Placement's records as the service and its store exchange them: providers, inventories,
// allocations, consumers and the filters that select providers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace nubo::placement {

inline constexpr std::int64_t kMaxInt = 2147483647;  // Placement's database integers

struct Provider {
  std::string uuid, name;
  std::int64_t generation = 0;
  std::optional<std::string> parent_uuid;
  std::string root_uuid;
  std::string created_at, updated_at;
};

struct Inventory {
  std::int64_t total = 0, reserved = 0, min_unit = 1, max_unit = kMaxInt, step_size = 1;
  double allocation_ratio = 1.0;
  std::int64_t used = 0;  // kept with the inventory, changed with every allocation write
  // What may be allocated in all, as Placement computes it: (total - reserved) * ratio, truncated.
  std::int64_t capacity() const {
    return static_cast<std::int64_t>(static_cast<double>(total - reserved) * allocation_ratio);
  }
  // Whether `amount` more fits: the unit constraints and the capacity.
  bool fits(std::int64_t amount) const {
    return amount >= min_unit && amount <= max_unit && amount % step_size == 0 &&
           static_cast<double>(used + amount) <=
               static_cast<double>(total - reserved) * allocation_ratio;
  }
};
using Inventories = std::map<std::string, Inventory>;  // by resource class

using Amounts = std::map<std::string, std::int64_t>;     // resource class → amount
using ProviderAmounts = std::map<std::string, Amounts>;  // provider uuid → class → amount

struct ConsumerRecord {
  std::string uuid, project_id, user_id;
  std::int64_t generation = 0;
  std::optional<std::string> consumer_type;
};

// A consumer's allocations with the generations of the providers they are on.
struct ConsumerAllocations {
  std::optional<ConsumerRecord> consumer;  // none: no allocations
  ProviderAmounts allocations;
  std::map<std::string, std::int64_t> provider_generations;
};

// One consumer's part of an allocation write (PUT /allocations/{c} or one entry of POST
// /allocations).
struct AllocationWrite {
  std::string consumer_uuid, project_id, user_id;
  std::optional<std::string> consumer_type;
  bool check_generation = false;  // from 1.28: the consumer's generation must be `generation`
  std::optional<std::int64_t> generation;  // nullopt: the consumer must not exist yet
  ProviderAmounts allocations;             // empty: remove the consumer's allocations
};

// What a provider (or, for the unsuffixed group of candidates, a tree) must offer: capacity for
// the resources, the traits, the aggregates (its own or its root's), a tree. `any-of` sets are
// ANDed together.
struct Requirements {
  Amounts resources;
  std::vector<std::set<std::string>> required_traits;
  std::set<std::string> forbidden_traits;
  std::vector<std::set<std::string>> member_of;
  std::set<std::string> forbidden_aggregates;
  std::optional<std::string> in_tree;
};

// Filters of GET /resource_providers.
struct ProviderFilter : Requirements {
  std::optional<std::string> name, uuid;
};

// A suffixed (granular, 1.25) request group of GET /allocation_candidates: all of its resources
// from one provider.
struct RequestGroup : Requirements {
  std::string suffix;
};

// GET /allocation_candidates: the unsuffixed request group (its resources may come from several
// providers of one tree) and the suffixed ones.
struct CandidateQuery : Requirements {
  std::vector<std::set<std::string>> root_required;  // any-of sets of traits the root must have
  std::set<std::string> root_forbidden;
  std::optional<long> limit;
  bool nested = true;     // from 1.29: resources may come from several providers of one tree
  bool summaries = true;  // provider summaries (the API); the scheduler needs only the requests
  std::vector<RequestGroup> groups;  // suffixed groups
  bool isolate = false;              // group_policy=isolate: suffixed groups on distinct providers
};

struct ProviderSummary {
  std::string uuid, root_uuid;
  std::optional<std::string> parent_uuid;
  Inventories resources;
  std::vector<std::string> traits;
};

struct CandidateResult {
  std::vector<ProviderAmounts> allocation_requests;
  std::map<std::string, ProviderSummary> summaries;  // every provider of the trees in the requests
  std::map<std::string, Inventories> capable;  // providers in the requests: the requested classes
  // Per request (when suffixed groups were asked for): group suffix ("" unsuffixed) → providers.
  std::vector<std::map<std::string, std::vector<std::string>>> mappings;
};

// Usage per resource class, with the consumers counted per consumer type (1.38).
struct TypedUsage {
  Amounts usages;
  std::int64_t consumer_count = 0;
};

}  // namespace nubo::placement
