// The placement service's operations: resource providers and their inventories, traits and
// aggregates; resource classes and traits; consumers' allocations and usages; allocation
// candidates. Policy is the API's concern: these are the operations an authorized caller runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/db/database.hpp"
#include "common/error.hpp"
#include "compute/placement/service/model.hpp"
#include "compute/placement/store/store.hpp"

namespace nubo::placement {

struct PlacementSettings {
  std::string public_url =
      "http://127.0.0.1:8778";  // the endpoint (Placement's has no version suffix)
  int allocation_conflict_retry_count =
      10;  // allocation writes retried on provider generation races
  // Consumers written before 1.8 (no project or user given) are recorded under these.
  std::string incomplete_consumer_project_id = "00000000-0000-0000-0000-000000000000";
  std::string incomplete_consumer_user_id = "00000000-0000-0000-0000-000000000000";
};

// Placement's error codes (the `code` of an error body from 1.23); an ApiError's type carries one.
namespace code {
inline constexpr const char* kDefault = "placement.undefined_code";
inline constexpr const char* kInventoryInUse = "placement.inventory.inuse";
inline constexpr const char* kConcurrentUpdate = "placement.concurrent_update";
inline constexpr const char* kDuplicateName = "placement.duplicate_name";
inline constexpr const char* kProviderInUse = "placement.resource_provider.inuse";
inline constexpr const char* kCannotDeleteParent =
    "placement.resource_provider.cannot_delete_parent";
inline constexpr const char* kProviderNotFound = "placement.resource_provider.not_found";
inline constexpr const char* kDuplicateQuery = "placement.query.duplicate_key";
inline constexpr const char* kBadQueryValue = "placement.query.bad_value";
inline constexpr const char* kMissingQueryValue = "placement.query.missing_value";
}  // namespace code

inline ApiError placement_error(int status, std::string message,
                                const char* error_code = code::kDefault) {
  return ApiError(status, std::move(message), error_code);
}

class PlacementService {
 public:
  PlacementService(std::unique_ptr<db::Database> database, PlacementSettings settings);
  ~PlacementService();
  const PlacementSettings& settings() const { return settings_; }
  db::Database& database() { return *db_; }

  // Providers. `parent` absent: unchanged (update) or none (create).
  Provider create_provider(const std::string& name, const std::optional<std::string>& uuid,
                           const std::optional<std::string>& parent);
  Provider provider(const std::string& uuid);  // 404 when absent
  std::vector<Provider> list_providers(const ProviderFilter& filter);
  Provider update_provider(const std::string& uuid, const std::string& name,
                           const std::optional<std::optional<std::string>>& parent,
                           bool allow_reparenting);
  void delete_provider(const std::string& uuid);

  // Inventories; writes check the provider generation and return the new one.
  std::pair<std::int64_t, Inventories> inventories(const std::string& uuid);
  std::int64_t set_inventories(const std::string& uuid, std::int64_t generation,
                               const Inventories& inventories, bool reserved_can_be_total);
  std::int64_t create_inventory(const std::string& uuid, const std::string& resource_class,
                                const Inventory& inventory, bool reserved_can_be_total);
  std::int64_t update_inventory(const std::string& uuid, const std::string& resource_class,
                                std::int64_t generation, const Inventory& inventory,
                                bool reserved_can_be_total);
  void delete_inventory(const std::string& uuid, const std::string& resource_class);
  void delete_inventories(const std::string& uuid);

  // Usages: a provider's per class (every class it has inventory of), a project's per consumer
  // type.
  std::pair<std::int64_t, Amounts> provider_usages(const std::string& uuid);
  std::map<std::string, TypedUsage> project_usages(const std::string& project_id,
                                                   const std::optional<std::string>& user_id);

  // Allocations.
  ConsumerAllocations consumer_allocations(const std::string& consumer_uuid);
  // consumer → class → amount on one provider, with its generation and the consumers' generations.
  std::map<std::string, Amounts> provider_allocations(
      const std::string& uuid, std::int64_t& generation,
      std::map<std::string, std::int64_t>& consumer_generations);
  // Replaces the allocations of every consumer named, all or nothing. `put` selects PUT's wording
  // of errors.
  void write_allocations(const std::vector<AllocationWrite>& writes, bool put);
  void delete_allocations(const std::string& consumer_uuid);  // 404 when it has none
  // Moves every allocation of `from` to `to` (created or replaced) in one transaction.
  void move_allocations(const std::string& from, const AllocationWrite& to);

  // Resource classes: the standard ones, then custom ones by name.
  std::vector<std::string> resource_classes();
  bool resource_class_exists(const std::string& name);
  void create_resource_class(const std::string& name);  // 409 when it exists
  bool ensure_resource_class(const std::string& name);  // true when created
  void rename_resource_class(const std::string& from, const std::string& to);
  void delete_resource_class(const std::string& name);

  // Traits.
  std::vector<std::string> traits(const std::optional<std::set<std::string>>& names,
                                  const std::optional<std::string>& prefix,
                                  std::optional<bool> associated);
  bool trait_exists(const std::string& name);
  bool ensure_trait(const std::string& name);  // true when created
  void delete_trait(const std::string& name);
  std::pair<std::int64_t, std::vector<std::string>> provider_traits(const std::string& uuid);
  std::int64_t set_provider_traits(const std::string& uuid, std::int64_t generation,
                                   const std::vector<std::string>& traits);
  void delete_provider_traits(const std::string& uuid);

  // Aggregates; `generation` absent: unchecked (before 1.19), and the generation is not moved.
  std::pair<std::int64_t, std::vector<std::string>> provider_aggregates(const std::string& uuid);
  std::int64_t set_provider_aggregates(const std::string& uuid,
                                       std::optional<std::int64_t> generation,
                                       const std::vector<std::string>& aggregates);

  // Allocation candidates for the unsuffixed request group.
  CandidateResult allocation_candidates(const CandidateQuery& q);

  // Raise 400 naming the first unknown class or trait.
  void check_classes(const Amounts& resources, const std::string& prefix);
  void check_traits(const std::set<std::string>& traits, const std::string& prefix);

 private:
  struct Retry {};
  // Resource classes and traits alike: standard names as data, custom ones as rows.
  struct NameKind {
    bool (*standard)(const std::string&);
    bool (*exists)(soci::session&, const std::string&);
    void (*insert)(soci::session&, const std::string&);
  };
  static const NameKind kClasses, kTraits;
  bool name_exists(const NameKind& kind, const std::string& name);
  bool ensure_name(const NameKind& kind, const std::string& name);
  // Something of one provider read with its generation; 404 saying `missing` when it is absent.
  template <class T>
  std::pair<std::int64_t, T> of_provider(const std::string& uuid, const std::string& missing,
                                         const std::function<T(soci::session&)>& read);
  void write_allocations_once(soci::session& s, const std::vector<AllocationWrite>& writes,
                              bool put);
  // Runs an allocation write, again while it conflicts (a provider generation moved: Retry) or
  // loses a race with another process on the same PostgreSQL database, up to
  // allocation_conflict_retry_count times; false when every attempt conflicted.
  bool write_retrying(const std::function<void(soci::session&)>& write, const char* what);
  // The requests of a nested query or one with suffixed groups: per tree, every combination of
  // one option per slot (a class of the unsuffixed group, or a whole suffixed group).
  void assemble_candidates(soci::session& s, const CandidateQuery& q,
                           const std::map<std::string, store::Capable>& capable,
                           const std::map<std::string, std::set<std::string>>& provider_traits,
                           const std::function<bool(const std::string&, const store::Capable&,
                                                    const std::vector<std::set<std::string>>&,
                                                    const std::set<std::string>&)>& in_aggregates,
                           CandidateResult& out);
  std::set<std::string> custom_class_set();

  std::unique_ptr<db::Database> db_;
  PlacementSettings settings_;
};

}  // namespace nubo::placement
