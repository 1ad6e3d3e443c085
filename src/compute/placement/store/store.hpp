// Placement's SQL: the schema and one set of statements per resource (providers, inventories,
// consumers and allocations, classes, traits, aggregates). Every function runs in the caller's
// transaction; none knows HTTP or policy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/db/database.hpp"
#include "compute/placement/service/model.hpp"

namespace soci {
class session;
}

namespace nubo::placement::store {

std::vector<db::Migration> migrations();

// Providers.
std::optional<Provider> provider(soci::session& s, const std::string& uuid);
std::optional<Provider> provider_by_name(soci::session& s, const std::string& name);
// Filtered on name, uuid and tree in SQL; the caller applies the other filters.
std::vector<Provider> providers(soci::session& s, const ProviderFilter& f);
std::vector<Provider> providers_in(soci::session& s, const std::set<std::string>& uuids);
void insert_provider(soci::session& s, const Provider& p);
void update_provider(soci::session& s, const Provider& p);  // name, parent, root, updated_at
// Every provider whose root is `old_root` and that lies under `uuid` gets `new_root`.
void set_subtree_root(soci::session& s, const std::string& uuid, const std::string& new_root);
bool has_children(soci::session& s, const std::string& uuid);
void delete_provider(soci::session& s, const std::string& uuid);
// Compare-and-swap on the provider's generation; false when another writer moved it.
bool bump_generation(soci::session& s, const std::string& uuid, std::int64_t expected);

// Inventories (with their `used`).
Inventories inventories(soci::session& s, const std::string& provider_uuid);
// All inventories of these providers, by provider.
std::map<std::string, Inventories> inventories_of(soci::session& s,
                                                  const std::set<std::string>& providers);
void upsert_inventory(soci::session& s, const std::string& provider_uuid,
                      const std::string& resource_class, const Inventory& inv, bool exists);
void delete_inventory(soci::session& s, const std::string& provider_uuid,
                      const std::string& resource_class);
void add_used(soci::session& s, const std::string& provider_uuid, const std::string& resource_class,
              std::int64_t delta);
// A provider that can take some of a request now: where it sits and its inventories of the
// requested classes that fit.
struct Capable {
  std::string root_uuid;
  std::optional<std::string> parent_uuid;
  Inventories inventories;
};
// Providers with an inventory of a requested class that can take the amount now (one indexed
// statement per class, no per-provider round trip). `root` restricts to one tree.
std::map<std::string, Capable> providers_with_capacity(soci::session& s, const Amounts& resources,
                                                       const std::optional<std::string>& root);
// provider → root for these providers (or all, when empty).
std::map<std::string, std::pair<std::string, std::optional<std::string>>> tree_of(
    soci::session& s, const std::set<std::string>& roots);

// Consumers and allocations.
std::optional<ConsumerRecord> consumer(soci::session& s, const std::string& uuid);
void insert_consumer(soci::session& s, const ConsumerRecord& c);
void update_consumer(soci::session& s, const ConsumerRecord& c);
bool bump_consumer_generation(soci::session& s, const std::string& uuid, std::int64_t expected);
void delete_consumer(soci::session& s, const std::string& uuid);
ProviderAmounts consumer_allocations(soci::session& s, const std::string& consumer_uuid);
void delete_consumer_allocations(soci::session& s, const std::string& consumer_uuid);
void insert_allocation(soci::session& s, const std::string& consumer_uuid,
                       const std::string& provider_uuid, const std::string& resource_class,
                       std::int64_t used);
// consumer → class → amount, with the consumers' generations.
std::map<std::string, Amounts> provider_allocations(
    soci::session& s, const std::string& provider_uuid,
    std::map<std::string, std::int64_t>& consumer_generations);
bool provider_has_allocations(soci::session& s, const std::string& provider_uuid);
bool class_in_use(soci::session& s, const std::string& resource_class);
// Usage of a project (and user) grouped by consumer type ("" for none).
std::map<std::string, TypedUsage> project_usages(soci::session& s, const std::string& project_id,
                                                 const std::optional<std::string>& user_id);

// Custom resource classes and traits (the standard ones are data, not rows).
std::vector<std::string> custom_classes(soci::session& s);
bool custom_class_exists(soci::session& s, const std::string& name);
void insert_custom_class(soci::session& s, const std::string& name);
void rename_custom_class(soci::session& s, const std::string& from, const std::string& to);
void delete_custom_class(soci::session& s, const std::string& name);
std::vector<std::string> custom_traits(soci::session& s);
bool custom_trait_exists(soci::session& s, const std::string& name);
void insert_custom_trait(soci::session& s, const std::string& name);
void delete_custom_trait(soci::session& s, const std::string& name);
bool trait_in_use(soci::session& s, const std::string& name);
// Traits in use by any provider (for ?associated=).
std::set<std::string> associated_traits(soci::session& s);

// Provider traits and aggregates.
std::vector<std::string> provider_traits(soci::session& s, const std::string& provider_uuid);
void set_provider_traits(soci::session& s, const std::string& provider_uuid,
                         const std::vector<std::string>& traits);
// provider → its traits among `traits` (all of its traits when `traits` is empty), for `providers`
// (every provider when empty).
std::map<std::string, std::set<std::string>> traits_of(soci::session& s,
                                                       const std::set<std::string>& providers,
                                                       const std::set<std::string>& traits);
std::vector<std::string> provider_aggregates(soci::session& s, const std::string& provider_uuid);
void set_provider_aggregates(soci::session& s, const std::string& provider_uuid,
                             const std::vector<std::string>& aggregates);
// provider → its aggregates among `aggregates`.
std::map<std::string, std::set<std::string>> members_of(soci::session& s,
                                                        const std::set<std::string>& aggregates);

}  // namespace nubo::placement::store
