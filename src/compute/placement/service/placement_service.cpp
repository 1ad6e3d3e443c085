#include "compute/placement/service/placement_service.hpp"

#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "common/ids.hpp"
#include "compute/placement/service/standard_names.hpp"
#include "compute/placement/store/store.hpp"

namespace nubo::placement {

namespace {

std::string now() { return iso8601(std::chrono::system_clock::now()); }

bool is_standard_class(const std::string& name) {
  auto& all = standard_resource_classes();
  return std::find(all.begin(), all.end(), name) != all.end();
}

bool is_standard_trait(const std::string& name) {
  auto& all = standard_traits();
  return std::binary_search(all.begin(), all.end(), name);
}

std::string join(const std::set<std::string>& names, const char* separator = ", ") {
  std::string out;
  for (auto& n : names) out += (out.empty() ? "" : separator) + n;
  return out;
}

ApiError provider_not_found(const std::string& uuid) {
  return placement_error(404, "No resource provider with uuid " + uuid + " found",
                         code::kProviderNotFound);
}

// Whether a provider (or its root: an aggregate on the root spans the tree) satisfies member_of.
bool aggregates_match(const std::set<std::string>& own, const std::set<std::string>& root,
                      const std::vector<std::set<std::string>>& member_of,
                      const std::set<std::string>& forbidden) {
  auto in = [&](const std::string& a) { return own.count(a) || root.count(a); };
  for (auto& any : member_of)
    if (std::none_of(any.begin(), any.end(), in)) return false;
  return std::none_of(forbidden.begin(), forbidden.end(), in);
}

bool traits_match(const std::set<std::string>& have,
                  const std::vector<std::set<std::string>>& required,
                  const std::set<std::string>& forbidden) {
  for (auto& any : required)
    if (std::none_of(any.begin(), any.end(),
                     [&](const std::string& t) { return have.count(t) > 0; }))
      return false;
  return std::none_of(forbidden.begin(), forbidden.end(),
                      [&](const std::string& t) { return have.count(t) > 0; });
}

std::set<std::string> flatten(const std::vector<std::set<std::string>>& sets) {
  std::set<std::string> out;
  for (auto& s : sets) out.insert(s.begin(), s.end());
  return out;
}

const std::set<std::string>& get_or_empty(const std::map<std::string, std::set<std::string>>& m,
                                          const std::string& k) {
  static const std::set<std::string> empty;
  auto it = m.find(k);
  return it == m.end() ? empty : it->second;
}

// Moves the provider's generation on, or raises 409 concurrent_update saying `message`.
void bump_or_conflict(soci::session& s, const std::string& uuid, std::int64_t generation,
                      const std::string& message) {
  if (!store::bump_generation(s, uuid, generation))
    throw placement_error(409, message, code::kConcurrentUpdate);
}

// The provider, which must be at `generation`: 404 when absent, 409 saying `conflict` when moved
// on.
Provider provider_at(soci::session& s, const std::string& uuid, std::int64_t generation,
                     const std::string& conflict) {
  auto p = store::provider(s, uuid);
  if (!p) throw provider_not_found(uuid);
  if (p->generation != generation) throw placement_error(409, conflict, code::kConcurrentUpdate);
  return *p;
}

void check_capacity(const std::string& uuid, const std::string& resource_class,
                    const Inventory& inv, bool reserved_can_be_total, const std::string& action) {
  double capacity = static_cast<double>(inv.total - inv.reserved) * inv.allocation_ratio;
  if (reserved_can_be_total ? capacity < 0 : capacity <= 0)
    throw placement_error(400, "Unable to " + action + " inventory for resource provider " + uuid +
                                   ": Invalid inventory for '" + resource_class +
                                   "' on resource provider '" + uuid +
                                   "'. The reserved value is greater than " +
                                   (reserved_can_be_total ? "total." : "or equal to total."));
}

}  // namespace

PlacementService::PlacementService(std::unique_ptr<db::Database> database,
                                   PlacementSettings settings)
    : db_(std::move(database)), settings_(std::move(settings)) {}
PlacementService::~PlacementService() = default;

template <class T>
std::pair<std::int64_t, T> PlacementService::of_provider(
    const std::string& uuid, const std::string& missing,
    const std::function<T(soci::session&)>& read) {
  std::pair<std::int64_t, T> out;
  db_->read([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw placement_error(404, missing, code::kProviderNotFound);
    out = {p->generation, read(s)};
  });
  return out;
}

std::set<std::string> PlacementService::custom_class_set() {
  std::vector<std::string> names;
  db_->read([&](soci::session& s) { names = store::custom_classes(s); });
  return {names.begin(), names.end()};
}

void PlacementService::check_classes(const Amounts& resources, const std::string& prefix) {
  std::optional<std::set<std::string>> custom;
  for (auto& [name, amount] : resources) {
    if (is_standard_class(name)) continue;
    if (!custom) custom = custom_class_set();
    if (!custom->count(name))
      throw placement_error(400, prefix + "No such resource class " + name + ".");
  }
}

void PlacementService::check_traits(const std::set<std::string>& traits,
                                    const std::string& prefix) {
  std::set<std::string> missing;
  std::optional<std::set<std::string>> custom;
  for (auto& t : traits) {
    if (is_standard_trait(t)) continue;
    if (!custom) {
      std::vector<std::string> names;
      db_->read([&](soci::session& s) { names = store::custom_traits(s); });
      custom.emplace(names.begin(), names.end());
    }
    if (!custom->count(t)) missing.insert(t);
  }
  if (!missing.empty())
    throw placement_error(400, prefix + "No such trait(s): " + join(missing) + ".");
}

// Providers.

Provider PlacementService::create_provider(const std::string& name,
                                           const std::optional<std::string>& uuid,
                                           const std::optional<std::string>& parent) {
  Provider p;
  p.uuid = uuid ? *uuid : uuid4();
  p.name = name;
  p.parent_uuid = parent;
  p.created_at = p.updated_at = now();
  db_->write([&](soci::session& s) {
    std::vector<std::string> duplicates;
    if (store::provider(s, p.uuid)) duplicates.push_back("uuid: " + p.uuid);
    if (store::provider_by_name(s, name)) duplicates.push_back("name: " + name);
    if (!duplicates.empty()) {
      std::string what;
      for (auto& d : duplicates) what += (what.empty() ? "" : ", ") + d;
      throw placement_error(409, "Conflicting resource provider " + what + " already exists.",
                            code::kDuplicateName);
    }
    p.root_uuid = p.uuid;
    if (parent) {
      auto parent_row = store::provider(s, *parent);
      if (!parent_row)
        throw placement_error(
            400, "Unable to create resource provider \"" + name + "\", " + p.uuid +
                     ": Object action create failed because: parent provider UUID does not exist.");
      p.root_uuid = parent_row->root_uuid;
    }
    store::insert_provider(s, p);
  });
  return p;
}

Provider PlacementService::provider(const std::string& uuid) {
  std::optional<Provider> p;
  db_->read([&](soci::session& s) { p = store::provider(s, uuid); });
  if (!p) throw provider_not_found(uuid);
  return *p;
}

std::vector<Provider> PlacementService::list_providers(const ProviderFilter& f) {
  check_classes(f.resources, "Invalid resource class in resources parameter: ");
  auto traits = flatten(f.required_traits);
  traits.insert(f.forbidden_traits.begin(), f.forbidden_traits.end());
  check_traits(traits, "Invalid trait(s) in \"required\" parameter: ");
  std::vector<Provider> out;
  db_->read([&](soci::session& s) {
    auto all = store::providers(s, f);
    if (all.empty()) return;
    std::map<std::string, store::Capable> capable;
    if (!f.resources.empty())
      capable = store::providers_with_capacity(s, f.resources, std::nullopt);
    std::map<std::string, std::set<std::string>> members, provider_traits;
    auto aggregates = flatten(f.member_of);
    aggregates.insert(f.forbidden_aggregates.begin(), f.forbidden_aggregates.end());
    if (!aggregates.empty()) members = store::members_of(s, aggregates);
    if (!traits.empty()) provider_traits = store::traits_of(s, {}, traits);
    for (auto& p : all) {
      if (!f.resources.empty()) {
        auto it = capable.find(p.uuid);
        if (it == capable.end() || it->second.inventories.size() != f.resources.size()) continue;
      }
      if (!aggregates.empty() &&
          !aggregates_match(get_or_empty(members, p.uuid), get_or_empty(members, p.root_uuid),
                            f.member_of, f.forbidden_aggregates))
        continue;
      if (!traits.empty() && !traits_match(get_or_empty(provider_traits, p.uuid), f.required_traits,
                                           f.forbidden_traits))
        continue;
      out.push_back(std::move(p));
    }
  });
  return out;
}

Provider PlacementService::update_provider(const std::string& uuid, const std::string& name,
                                           const std::optional<std::optional<std::string>>& parent,
                                           bool allow_reparenting) {
  Provider p;
  db_->write([&](soci::session& s) {
    auto row = store::provider(s, uuid);
    if (!row) throw provider_not_found(uuid);
    p = *row;
    if (name != p.name) {
      if (store::provider_by_name(s, name))
        throw placement_error(409, "Conflicting resource provider " + name + " already exists.",
                              code::kDuplicateName);
      p.name = name;
    }
    auto fail = [&](const std::string& why) {
      return placement_error(400, "Unable to save resource provider " + uuid +
                                      ": Object action update failed because: " + why);
    };
    if (parent && *parent != p.parent_uuid) {
      auto& to = *parent;
      if (p.parent_uuid && !allow_reparenting)
        throw fail(to ? "re-parenting a provider is not currently allowed."
                      : "un-parenting a provider is not currently allowed.");
      std::string new_root = p.uuid;
      if (to) {
        auto parent_row = store::provider(s, *to);
        if (!parent_row) throw fail("parent provider UUID does not exist.");
        // The new parent must not be this provider or below it.
        for (auto walk = parent_row; walk;) {
          if (walk->uuid == p.uuid)
            throw fail("creating loop in the provider tree is not allowed.");
          walk = walk->parent_uuid ? store::provider(s, *walk->parent_uuid) : std::nullopt;
        }
        new_root = parent_row->root_uuid;
      }
      p.parent_uuid = to;
      if (new_root != p.root_uuid) {
        store::set_subtree_root(s, p.uuid, new_root);
        p.root_uuid = new_root;
      }
    }
    p.updated_at = now();
    store::update_provider(s, p);
  });
  return p;
}

void PlacementService::delete_provider(const std::string& uuid) {
  db_->write([&](soci::session& s) {
    if (!store::provider(s, uuid))
      throw placement_error(404, "No resource provider with uuid " + uuid + " found for delete");
    if (store::provider_has_allocations(s, uuid))
      throw placement_error(
          409,
          "Unable to delete resource provider " + uuid + ": Resource provider has allocations.",
          code::kProviderInUse);
    if (store::has_children(s, uuid))
      throw placement_error(409,
                            "Unable to delete parent resource provider " + uuid +
                                ": It has child resource providers.",
                            code::kCannotDeleteParent);
    store::delete_provider(s, uuid);
  });
}

// Inventories.

std::pair<std::int64_t, Inventories> PlacementService::inventories(const std::string& uuid) {
  return of_provider<Inventories>(
      uuid, "No resource provider with uuid " + uuid + " found : Resource could not be found.",
      [&](soci::session& s) { return store::inventories(s, uuid); });
}

std::int64_t PlacementService::set_inventories(const std::string& uuid, std::int64_t generation,
                                               const Inventories& wanted,
                                               bool reserved_can_be_total) {
  Amounts classes;
  for (auto& [rc, inv] : wanted) classes[rc] = 1;
  std::int64_t out = 0;
  db_->write([&](soci::session& s) {
    provider_at(s, uuid, generation, "resource provider generation conflict");
    for (auto& [rc, inv] : wanted) check_capacity(uuid, rc, inv, reserved_can_be_total, "update");
    check_classes(classes,
                  "Unknown resource class in inventory for resource provider " + uuid + ": ");
    auto current = store::inventories(s, uuid);
    std::set<std::string> in_use;
    for (auto& [rc, inv] : current)
      if (!wanted.count(rc) && inv.used > 0) in_use.insert(rc);
    if (!in_use.empty())
      throw placement_error(409,
                            "update conflict: Inventory for '" + join(in_use) +
                                "' on resource provider '" + uuid + "' in use.",
                            code::kInventoryInUse);
    bump_or_conflict(
        s, uuid, generation,
        "update conflict: Another thread concurrently updated the data. Please retry your update");
    for (auto& [rc, inv] : current)
      if (!wanted.count(rc)) store::delete_inventory(s, uuid, rc);
    for (auto& [rc, inv] : wanted) {
      auto it = current.find(rc);
      if (it != current.end() && it->second.used > inv.capacity())
        spdlog::warn("placement: inventory of {} on {} set below its usage ({} > {})", rc, uuid,
                     it->second.used, inv.capacity());
      store::upsert_inventory(s, uuid, rc, inv, it != current.end());
    }
    out = generation + 1;
  });
  return out;
}

std::int64_t PlacementService::create_inventory(const std::string& uuid,
                                                const std::string& resource_class,
                                                const Inventory& inv, bool reserved_can_be_total) {
  std::int64_t out = 0;
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    check_capacity(uuid, resource_class, inv, reserved_can_be_total, "create");
    check_classes({{resource_class, 1}},
                  "Unable to create inventory for resource provider " + uuid + ": ");
    auto current = store::inventories(s, uuid);
    if (current.count(resource_class) || !store::bump_generation(s, uuid, p->generation))
      throw placement_error(
          409,
          "Update conflict: Another thread concurrently updated the data. Please retry your update",
          code::kConcurrentUpdate);
    store::upsert_inventory(s, uuid, resource_class, inv, false);
    out = p->generation + 1;
  });
  return out;
}

std::int64_t PlacementService::update_inventory(const std::string& uuid,
                                                const std::string& resource_class,
                                                std::int64_t generation, const Inventory& inv,
                                                bool reserved_can_be_total) {
  std::int64_t out = 0;
  db_->write([&](soci::session& s) {
    provider_at(s, uuid, generation, "resource provider generation conflict");
    check_capacity(uuid, resource_class, inv, reserved_can_be_total, "update");
    check_classes({{resource_class, 1}},
                  "Unable to update inventory for resource provider " + uuid + ": ");
    auto current = store::inventories(s, uuid);
    if (!current.count(resource_class))
      throw placement_error(400, "No inventory record with resource class for resource provider " +
                                     uuid + ": No inventory of class " + resource_class +
                                     " found.");
    bump_or_conflict(
        s, uuid, generation,
        "update conflict: Another thread concurrently updated the data. Please retry your update");
    store::upsert_inventory(s, uuid, resource_class, inv, true);
    out = generation + 1;
  });
  return out;
}

void PlacementService::delete_inventory(const std::string& uuid,
                                        const std::string& resource_class) {
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    auto current = store::inventories(s, uuid);
    auto it = current.find(resource_class);
    if (it == current.end())
      throw placement_error(404, "No inventory of class " + resource_class +
                                     " found for delete: No inventory of class " + resource_class +
                                     " found for delete");
    if (it->second.used > 0)
      throw placement_error(409,
                            "Unable to delete inventory of class " + resource_class +
                                ": Inventory for '" + resource_class + "' on resource provider '" +
                                uuid + "' in use.",
                            code::kConcurrentUpdate);
    bump_or_conflict(
        s, uuid, p->generation,
        "Unable to delete inventory of class " + resource_class +
            ": Another thread concurrently updated the data. Please retry your update");
    store::delete_inventory(s, uuid, resource_class);
  });
}

void PlacementService::delete_inventories(const std::string& uuid) {
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    auto current = store::inventories(s, uuid);
    std::set<std::string> in_use;
    for (auto& [rc, inv] : current)
      if (inv.used > 0) in_use.insert(rc);
    if (!in_use.empty())
      throw placement_error(
          409, "Inventory for '" + join(in_use) + "' on resource provider '" + uuid + "' in use.",
          code::kInventoryInUse);
    bump_or_conflict(
        s, uuid, p->generation,
        "Unable to delete inventory for resource provider " + uuid +
            " because the inventory was updated by another process. Please retry your request.");
    for (auto& [rc, inv] : current) store::delete_inventory(s, uuid, rc);
  });
}

// Usages.

std::pair<std::int64_t, Amounts> PlacementService::provider_usages(const std::string& uuid) {
  return of_provider<Amounts>(
      uuid, "No resource provider with uuid " + uuid + " found: Resource could not be found.",
      [&](soci::session& s) {
        Amounts usages;
        for (auto& [rc, inv] : store::inventories(s, uuid)) usages[rc] = inv.used;
        return usages;
      });
}

std::map<std::string, TypedUsage> PlacementService::project_usages(
    const std::string& project_id, const std::optional<std::string>& user_id) {
  std::map<std::string, TypedUsage> out;
  db_->read([&](soci::session& s) { out = store::project_usages(s, project_id, user_id); });
  return out;
}

// Allocations.

ConsumerAllocations PlacementService::consumer_allocations(const std::string& consumer_uuid) {
  ConsumerAllocations out;
  db_->read([&](soci::session& s) {
    out.allocations = store::consumer_allocations(s, consumer_uuid);
    if (out.allocations.empty()) return;
    out.consumer = store::consumer(s, consumer_uuid);
    std::set<std::string> uuids;
    for (auto& [p, amounts] : out.allocations) uuids.insert(p);
    for (auto& p : store::providers_in(s, uuids)) out.provider_generations[p.uuid] = p.generation;
  });
  return out;
}

std::map<std::string, Amounts> PlacementService::provider_allocations(
    const std::string& uuid, std::int64_t& generation,
    std::map<std::string, std::int64_t>& consumer_generations) {
  std::map<std::string, Amounts> out;
  db_->read([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p)
      throw placement_error(404, "Resource provider '" + uuid +
                                     "' not found: No resource provider with uuid " + uuid +
                                     " found");
    generation = p->generation;
    out = store::provider_allocations(s, uuid, consumer_generations);
  });
  return out;
}

void PlacementService::write_allocations(const std::vector<AllocationWrite>& writes, bool put) {
  // Classes are checked before the transaction: an unknown one is the caller's error, not a race.
  for (auto& w : writes)
    for (auto& [provider_uuid, amounts] : w.allocations)
      check_classes(amounts,
                    put ? "Unable to allocate inventory for consumer " + w.consumer_uuid + ": "
                        : "Unable to allocate inventory ");
  if (write_retrying([&](soci::session& s) { write_allocations_once(s, writes, put); },
                     "an allocations write"))
    return;
  throw placement_error(409,
                        "Inventory and/or allocations changed while attempting to allocate: "
                        "Another thread concurrently "
                        "updated the resource provider data. Please retry your update",
                        code::kConcurrentUpdate);
}

bool PlacementService::write_retrying(const std::function<void(soci::session&)>& write,
                                      const char* what) {
  for (int attempt = 0; attempt < std::max(1, settings_.allocation_conflict_retry_count);
       ++attempt) {
    try {
      db_->write(write);
      return true;
    } catch (const Retry&) {
      spdlog::debug("placement: retrying {} on resource provider generation conflict", what);
    } catch (const soci::soci_error& e) {
      // Another process on the same PostgreSQL database won a race (deadlock victim,
      // serialization failure, a consumer inserted meanwhile): the next attempt reads its rows.
      // Any other database error is not a conflict and is not retried.
      if (!db::lost_race(e)) throw;
      spdlog::warn("placement: retrying {} after losing a race: {}", what, e.what());
    }
  }
  return false;
}

void PlacementService::write_allocations_once(soci::session& s,
                                              const std::vector<AllocationWrite>& writes,
                                              bool put) {
  // The consumers, their generations checked.
  std::map<std::string, std::optional<ConsumerRecord>> existing;
  for (auto& w : writes) {
    auto c = store::consumer(s, w.consumer_uuid);
    if (w.check_generation) {
      if (c && (!w.generation || *w.generation != c->generation))
        throw placement_error(409,
                              "consumer generation conflict - expected " +
                                  std::to_string(c->generation) + " but got " +
                                  (w.generation ? std::to_string(*w.generation) : "None"),
                              code::kConcurrentUpdate);
      if (!c && w.generation)
        throw placement_error(
            409,
            "consumer generation conflict - expected null but got " + std::to_string(*w.generation),
            code::kConcurrentUpdate);
    }
    existing[w.consumer_uuid] = c;
  }
  // The providers asked for, read before usage so that their generations guard what we read.
  std::set<std::string> wanted_providers;
  for (auto& w : writes)
    for (auto& [p, amounts] : w.allocations) wanted_providers.insert(p);
  std::map<std::string, Provider> providers;
  for (auto& p : store::providers_in(s, wanted_providers)) providers[p.uuid] = p;
  for (auto& p : wanted_providers)
    if (!providers.count(p))
      throw placement_error(400,
                            "Allocation for resource provider '" + p + "' that does not exist.");
  // Old and new amounts per provider and class.
  std::map<std::pair<std::string, std::string>, std::int64_t> old_total, new_total;
  std::map<std::string, ProviderAmounts> old_allocations;
  for (auto& w : writes) {
    auto& old = old_allocations[w.consumer_uuid] = store::consumer_allocations(s, w.consumer_uuid);
    for (auto& [p, amounts] : old)
      for (auto& [rc, n] : amounts) old_total[{p, rc}] += n;
    for (auto& [p, amounts] : w.allocations)
      for (auto& [rc, n] : amounts) new_total[{p, rc}] += n;
  }
  auto conflict = [](const std::string& why) {
    return placement_error(409, "Unable to allocate inventory: " + why);
  };
  auto inventories = store::inventories_of(s, wanted_providers);
  for (auto& w : writes) {
    for (auto& [p, amounts] : w.allocations) {
      for (auto& [rc, n] : amounts) {
        auto pit = inventories.find(p);
        if (pit == inventories.end() || !pit->second.count(rc))
          throw conflict("Inventory for '" + rc + "' on resource provider '" + p + "' invalid.");
        auto& inv = pit->second.at(rc);
        if (n < inv.min_unit || n > inv.max_unit || n % inv.step_size != 0)
          throw conflict("Unable to create allocation for '" + rc + "' on resource provider '" + p +
                         "'. The requested amount would violate inventory constraints.");
        std::int64_t before = inv.used;
        std::int64_t others = before - old_total[{p, rc}];
        std::int64_t after = others + new_total[{p, rc}];
        double capacity = static_cast<double>(inv.total - inv.reserved) * inv.allocation_ratio;
        // An allocation that only shrinks an existing overage is let through, as Placement does.
        if (static_cast<double>(after) > capacity && after > before)
          throw conflict("Unable to create allocation for '" + rc + "' on resource provider '" + p +
                         "'. The requested amount would exceed the capacity.");
      }
    }
  }
  // Claim the providers: compare-and-swap on each generation, in a fixed order.
  for (auto& [uuid, p] : providers)
    if (!store::bump_generation(s, uuid, p.generation)) throw Retry{};
  // Replace the allocations and move the usage kept beside each inventory.
  std::map<std::pair<std::string, std::string>, std::int64_t> delta;
  for (auto& [key, n] : old_total) delta[key] -= n;
  for (auto& [key, n] : new_total) delta[key] += n;
  for (auto& w : writes) {
    store::delete_consumer_allocations(s, w.consumer_uuid);
    for (auto& [p, amounts] : w.allocations)
      for (auto& [rc, n] : amounts) store::insert_allocation(s, w.consumer_uuid, p, rc, n);
  }
  for (auto& [key, d] : delta)
    if (d != 0) store::add_used(s, key.first, key.second, d);
  // The consumers: created, updated to what was asked, their generations moved; gone when empty.
  for (auto& w : writes) {
    auto& c = existing[w.consumer_uuid];
    ConsumerRecord wanted{
        w.consumer_uuid,
        w.project_id.empty() ? settings_.incomplete_consumer_project_id : w.project_id,
        w.user_id.empty() ? settings_.incomplete_consumer_user_id : w.user_id, 0, w.consumer_type};
    if (w.allocations.empty()) {
      if (c) store::delete_consumer(s, w.consumer_uuid);
      continue;
    }
    if (!c) {
      store::insert_consumer(s, wanted);
      c = wanted;
    } else {
      if (!wanted.consumer_type) wanted.consumer_type = c->consumer_type;
      if (wanted.project_id != c->project_id || wanted.user_id != c->user_id ||
          wanted.consumer_type != c->consumer_type)
        store::update_consumer(s, wanted);
    }
    if (!store::bump_consumer_generation(s, w.consumer_uuid, c->generation))
      throw placement_error(
          409,
          "Inventory and/or allocations changed while attempting to allocate: Another thread "
          "concurrently updated the data. Please retry your update",
          code::kConcurrentUpdate);
  }
  (void)put;
}

void PlacementService::delete_allocations(const std::string& consumer_uuid) {
  db_->write([&](soci::session& s) {
    auto old = store::consumer_allocations(s, consumer_uuid);
    if (old.empty())
      throw placement_error(404, "No allocations for consumer '" + consumer_uuid + "'");
    store::delete_consumer_allocations(s, consumer_uuid);
    for (auto& [p, amounts] : old)
      for (auto& [rc, n] : amounts) store::add_used(s, p, rc, -n);
    store::delete_consumer(s, consumer_uuid);
  });
}

void PlacementService::move_allocations(const std::string& from, const AllocationWrite& to) {
  if (from == to.consumer_uuid) return;  // one consumer written twice would count its usage twice
  bool moved = write_retrying(
      [&](soci::session& s) {
        auto moving = store::consumer_allocations(s, from);
        if (moving.empty()) return;
        AllocationWrite target = to;
        target.allocations = moving;
        AllocationWrite source;
        source.consumer_uuid = from;
        // Both in one write: the source's usage is freed as the target takes it.
        write_allocations_once(s, {source, target}, true);
      },
      "an allocation move");
  if (moved) return;
  throw placement_error(409, "Inventory and/or allocations changed while attempting to allocate.",
                        code::kConcurrentUpdate);
}

// Resource classes.

std::vector<std::string> PlacementService::resource_classes() {
  auto out = standard_resource_classes();
  db_->read([&](soci::session& s) {
    for (auto& c : store::custom_classes(s)) out.push_back(c);
  });
  return out;
}

bool PlacementService::name_exists(const NameKind& kind, const std::string& name) {
  if (kind.standard(name)) return true;
  bool found = false;
  db_->read([&](soci::session& s) { found = kind.exists(s, name); });
  return found;
}

bool PlacementService::ensure_name(const NameKind& kind, const std::string& name) {
  bool created = false;
  db_->write([&](soci::session& s) {
    if (kind.standard(name) || kind.exists(s, name)) return;
    kind.insert(s, name);
    created = true;
  });
  return created;
}

const PlacementService::NameKind PlacementService::kClasses{
    is_standard_class, store::custom_class_exists, store::insert_custom_class};
const PlacementService::NameKind PlacementService::kTraits{
    is_standard_trait, store::custom_trait_exists, store::insert_custom_trait};

bool PlacementService::resource_class_exists(const std::string& name) {
  return name_exists(kClasses, name);
}

void PlacementService::create_resource_class(const std::string& name) {
  db_->write([&](soci::session& s) {
    if (is_standard_class(name) || store::custom_class_exists(s, name))
      throw placement_error(409, "Conflicting resource class already exists: " + name,
                            code::kDuplicateName);
    store::insert_custom_class(s, name);
  });
}

bool PlacementService::ensure_resource_class(const std::string& name) {
  return ensure_name(kClasses, name);
}

void PlacementService::rename_resource_class(const std::string& from, const std::string& to) {
  db_->write([&](soci::session& s) {
    if (is_standard_class(from))
      throw placement_error(400, "Cannot update standard resource class " + from);
    if (!store::custom_class_exists(s, from))
      throw placement_error(404, "No such resource class " + from + ".");
    if (is_standard_class(to) || store::custom_class_exists(s, to))
      throw placement_error(409, "Resource class already exists: " + to, code::kDuplicateName);
    store::rename_custom_class(s, from, to);
  });
}

void PlacementService::delete_resource_class(const std::string& name) {
  db_->write([&](soci::session& s) {
    if (is_standard_class(name))
      throw placement_error(
          400,
          "Error in delete resource class: Cannot delete standard resource class " + name + ".");
    if (!store::custom_class_exists(s, name))
      throw placement_error(404, "No such resource class " + name + ".");
    if (store::class_in_use(s, name))
      throw placement_error(409, "Error in delete resource class: Cannot delete resource class " +
                                     name + ". Class is in use in inventory.");
    store::delete_custom_class(s, name);
  });
}

// Traits.

std::vector<std::string> PlacementService::traits(const std::optional<std::set<std::string>>& names,
                                                  const std::optional<std::string>& prefix,
                                                  std::optional<bool> associated) {
  std::vector<std::string> all = standard_traits(), custom;
  std::set<std::string> used;
  db_->read([&](soci::session& s) {
    custom = store::custom_traits(s);
    if (associated) used = store::associated_traits(s);
  });
  all.insert(all.end(), custom.begin(), custom.end());
  std::sort(all.begin(), all.end());
  std::vector<std::string> out;
  for (auto& t : all) {
    if (names && !names->count(t)) continue;
    if (prefix && t.rfind(*prefix, 0) != 0) continue;
    if (associated && used.count(t) != static_cast<std::size_t>(*associated)) continue;
    out.push_back(t);
  }
  return out;
}

bool PlacementService::trait_exists(const std::string& name) { return name_exists(kTraits, name); }

bool PlacementService::ensure_trait(const std::string& name) { return ensure_name(kTraits, name); }

void PlacementService::delete_trait(const std::string& name) {
  db_->write([&](soci::session& s) {
    if (is_standard_trait(name))
      throw placement_error(400, "Cannot delete standard trait " + name + ".");
    if (!store::custom_trait_exists(s, name))
      throw placement_error(404, "No such trait(s): " + name + ".");
    if (store::trait_in_use(s, name))
      throw placement_error(409, "The trait " + name + " is in use by a resource provider.");
    store::delete_custom_trait(s, name);
  });
}

std::pair<std::int64_t, std::vector<std::string>> PlacementService::provider_traits(
    const std::string& uuid) {
  return of_provider<std::vector<std::string>>(
      uuid,
      "No resource provider with uuid " + uuid + " found: No resource provider with uuid " + uuid +
          " found",
      [&](soci::session& s) { return store::provider_traits(s, uuid); });
}

std::int64_t PlacementService::set_provider_traits(const std::string& uuid, std::int64_t generation,
                                                   const std::vector<std::string>& traits) {
  std::int64_t out = 0;
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    if (p->generation != generation)
      throw placement_error(
          409,
          "Resource provider's generation already changed. Please update the generation and "
          "try again.",
          code::kConcurrentUpdate);
    std::set<std::string> missing;
    for (auto& t : traits)
      if (!is_standard_trait(t) && !store::custom_trait_exists(s, t)) missing.insert(t);
    if (!missing.empty()) throw placement_error(400, "No such trait " + join(missing));
    bump_or_conflict(
        s, uuid, generation,
        "Resource provider's generation already changed. Please update the generation and "
        "try again.");
    store::set_provider_traits(s, uuid, traits);
    out = generation + 1;
  });
  return out;
}

void PlacementService::delete_provider_traits(const std::string& uuid) {
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    bump_or_conflict(s, uuid, p->generation,
                     "Another thread concurrently updated the resource provider data. "
                     "Please retry your update");
    store::set_provider_traits(s, uuid, {});
  });
}

// Aggregates.

std::pair<std::int64_t, std::vector<std::string>> PlacementService::provider_aggregates(
    const std::string& uuid) {
  return of_provider<std::vector<std::string>>(
      uuid, "No resource provider with uuid " + uuid + " found",
      [&](soci::session& s) { return store::provider_aggregates(s, uuid); });
}

std::int64_t PlacementService::set_provider_aggregates(const std::string& uuid,
                                                       std::optional<std::int64_t> generation,
                                                       const std::vector<std::string>& aggregates) {
  std::int64_t out = 0;
  db_->write([&](soci::session& s) {
    auto p = store::provider(s, uuid);
    if (!p) throw provider_not_found(uuid);
    out = p->generation;
    if (generation) {
      if (p->generation != *generation || !store::bump_generation(s, uuid, *generation))
        throw placement_error(
            409,
            "Resource provider's generation already changed. Please update the generation and "
            "try again.",
            code::kConcurrentUpdate);
      out = *generation + 1;
    }
    store::set_provider_aggregates(s, uuid, aggregates);
  });
  return out;
}

// Allocation candidates.

CandidateResult PlacementService::allocation_candidates(const CandidateQuery& q) {
  check_classes(q.resources, "Invalid resource class in resources parameter: ");
  auto traits = flatten(q.required_traits);
  traits.insert(q.forbidden_traits.begin(), q.forbidden_traits.end());
  auto root_traits = flatten(q.root_required);
  root_traits.insert(q.root_forbidden.begin(), q.root_forbidden.end());
  traits.insert(root_traits.begin(), root_traits.end());
  auto aggregates = flatten(q.member_of);
  aggregates.insert(q.forbidden_aggregates.begin(), q.forbidden_aggregates.end());
  for (auto& g : q.groups) {
    check_classes(g.resources, "Invalid resource class in resources parameter: ");
    auto t = flatten(g.required_traits);
    traits.insert(t.begin(), t.end());
    traits.insert(g.forbidden_traits.begin(), g.forbidden_traits.end());
    auto a = flatten(g.member_of);
    aggregates.insert(a.begin(), a.end());
    aggregates.insert(g.forbidden_aggregates.begin(), g.forbidden_aggregates.end());
  }
  check_traits(traits, "");
  CandidateResult out;
  if (q.resources.empty() && q.groups.empty()) return out;
  db_->read([&](soci::session& s) {
    // A group's tree restriction: the root of its in_tree provider (none: no answer at all).
    bool unknown_tree = false;
    auto tree_root = [&](const std::optional<std::string>& in_tree) -> std::optional<std::string> {
      if (!in_tree) return std::nullopt;
      auto p = store::provider(s, *in_tree);
      if (!p) unknown_tree = true;
      return p ? std::optional<std::string>(p->root_uuid) : std::nullopt;
    };
    auto root = tree_root(q.in_tree);
    std::map<std::string, std::set<std::string>> members, provider_traits;
    if (!aggregates.empty()) members = store::members_of(s, aggregates);
    if (!traits.empty()) provider_traits = store::traits_of(s, {}, traits);
    auto in_aggregates = [&](const std::string& uuid, const store::Capable& p,
                             const std::vector<std::set<std::string>>& member_of,
                             const std::set<std::string>& forbidden) {
      return (member_of.empty() && forbidden.empty()) ||
             aggregates_match(get_or_empty(members, uuid), get_or_empty(members, p.root_uuid),
                              member_of, forbidden);
    };
    auto capable = q.resources.empty() ? std::map<std::string, store::Capable>()
                                       : store::providers_with_capacity(s, q.resources, root);
    if (unknown_tree || (!q.resources.empty() && capable.empty())) return;
    auto limit = q.limit.value_or(std::numeric_limits<long>::max());
    auto full = [&] { return static_cast<long>(out.allocation_requests.size()) >= limit; };
    if (!q.nested && q.groups.empty()) {
      // Each root provider that serves every class alone is one request (the scheduler's case:
      // no tree to assemble).
      for (auto& [uuid, p] : capable) {
        if (full()) break;
        if (p.inventories.size() != q.resources.size() || p.parent_uuid) continue;
        if (!in_aggregates(uuid, p, q.member_of, q.forbidden_aggregates)) continue;
        if (!traits.empty()) {
          auto& have = get_or_empty(provider_traits, uuid);
          if (!traits_match(have, q.required_traits, q.forbidden_traits) ||
              !traits_match(have, q.root_required, q.root_forbidden))
            continue;
        }
        ProviderAmounts request;
        request.emplace(uuid, q.resources);
        out.allocation_requests.push_back(std::move(request));
        out.capable.emplace_hint(out.capable.end(), uuid, std::move(p.inventories));
      }
    } else {
      assemble_candidates(s, q, capable, provider_traits, in_aggregates, out);
    }
    if (!q.summaries || out.allocation_requests.empty()) return;
    // Summaries: every provider of the trees in the answer (nested), else those in the requests.
    std::set<std::string> summarized, used_roots;
    for (auto& r : out.allocation_requests)
      for (auto& [uuid, amounts] : r) summarized.insert(uuid);
    for (auto& p : store::providers_in(s, summarized)) used_roots.insert(p.root_uuid);
    if (q.nested)
      for (auto& [uuid, tree] : store::tree_of(s, used_roots)) summarized.insert(uuid);
    auto all_inventories = store::inventories_of(s, summarized);
    auto all_traits = store::traits_of(s, summarized, {});
    for (auto& p : store::providers_in(s, summarized)) {
      ProviderSummary sum{p.uuid, p.root_uuid, p.parent_uuid, all_inventories[p.uuid], {}};
      auto& t = all_traits[p.uuid];
      sum.traits.assign(t.begin(), t.end());
      out.summaries[p.uuid] = std::move(sum);
    }
  });
  return out;
}

void PlacementService::assemble_candidates(
    soci::session& s, const CandidateQuery& q, const std::map<std::string, store::Capable>& capable,
    const std::map<std::string, std::set<std::string>>& provider_traits,
    const std::function<bool(const std::string&, const store::Capable&,
                             const std::vector<std::set<std::string>>&,
                             const std::set<std::string>&)>& in_aggregates,
    CandidateResult& out) {
  // What each choice can be: for the unsuffixed group one provider per class, for a suffixed group
  // one provider for all of its resources; per tree, in a stable order.
  struct Slot {
    std::string suffix, resource_class;  // resource_class empty: a suffixed group's whole request
    const Amounts* amounts;
    std::map<std::string, std::vector<std::string>> by_tree;  // root → providers
  };
  std::vector<Slot> slots;
  std::map<std::string, Inventories> inventories;  // every option's inventories of its classes
  auto usable = [&](const store::Capable& p) { return q.nested || !p.parent_uuid; };
  for (auto& [rc, amount] : q.resources) slots.push_back(Slot{"", rc, &q.resources, {}});
  for (auto& [uuid, p] : capable) {
    if (!usable(p) || !in_aggregates(uuid, p, q.member_of, q.forbidden_aggregates)) continue;
    for (auto& [rc, inv] : p.inventories) {
      inventories[uuid][rc] = inv;
      for (auto& slot : slots)
        if (slot.resource_class == rc) slot.by_tree[p.root_uuid].push_back(uuid);
    }
  }
  for (auto& g : q.groups) {
    Slot slot{g.suffix, "", &g.resources, {}};
    std::optional<std::string> root;
    if (g.in_tree) {
      auto p = store::provider(s, *g.in_tree);
      if (!p) return;
      root = p->root_uuid;
    }
    for (auto& [uuid, p] : store::providers_with_capacity(s, g.resources, root)) {
      if (p.inventories.size() != g.resources.size() || !usable(p)) continue;
      if (!in_aggregates(uuid, p, g.member_of, g.forbidden_aggregates)) continue;
      if (!traits_match(get_or_empty(provider_traits, uuid), g.required_traits, g.forbidden_traits))
        continue;
      for (auto& [rc, inv] : p.inventories) inventories[uuid][rc] = inv;
      slot.by_tree[p.root_uuid].push_back(uuid);
    }
    slots.push_back(std::move(slot));
  }
  // Trees where every slot has an option.
  std::set<std::string> roots;
  for (auto& [root, list] : slots.front().by_tree) roots.insert(root);
  for (auto& slot : slots)
    std::erase_if(roots, [&](const std::string& r) { return !slot.by_tree.count(r); });
  auto limit = q.limit.value_or(std::numeric_limits<long>::max());
  // A bound on the combinations tried, so that a request matching nothing cannot spin.
  long budget = 200000;
  for (auto& root_uuid : roots) {
    if (static_cast<long>(out.allocation_requests.size()) >= limit || budget <= 0) break;
    if ((!q.root_required.empty() || !q.root_forbidden.empty()) &&
        !traits_match(get_or_empty(provider_traits, root_uuid), q.root_required, q.root_forbidden))
      continue;
    std::vector<const std::vector<std::string>*> lists;
    for (auto& slot : slots) lists.push_back(&slot.by_tree.at(root_uuid));
    std::vector<std::size_t> pick(slots.size(), 0);
    while (static_cast<long>(out.allocation_requests.size()) < limit && budget-- > 0) {
      ProviderAmounts request;
      std::map<std::string, std::vector<std::string>> mapping;
      std::set<std::string> unsuffixed, suffixed_seen;
      bool ok = true;
      for (std::size_t i = 0; i < slots.size() && ok; ++i) {
        auto& uuid = (*lists[i])[pick[i]];
        auto& slot = slots[i];
        if (slot.resource_class.empty()) {
          for (auto& [rc, n] : *slot.amounts) request[uuid][rc] += n;
          if (q.isolate && !suffixed_seen.insert(uuid).second) ok = false;
        } else {
          request[uuid][slot.resource_class] += slot.amounts->at(slot.resource_class);
          unsuffixed.insert(uuid);
        }
        auto& m = mapping[slot.suffix];
        if (std::find(m.begin(), m.end(), uuid) == m.end()) m.push_back(uuid);
      }
      // Where groups share a provider, their sum must fit too.
      for (auto pit = request.begin(); ok && pit != request.end(); ++pit)
        for (auto& [rc, n] : pit->second) {
          auto& inv = inventories[pit->first][rc];
          if (static_cast<double>(inv.used + n) >
              static_cast<double>(inv.total - inv.reserved) * inv.allocation_ratio)
            ok = false;
        }
      if (ok && !unsuffixed.empty()) {
        // The unsuffixed group's traits: all of its providers together have the required ones and
        // none has a forbidden one.
        std::set<std::string> have;
        for (auto& uuid : unsuffixed) {
          auto& t = get_or_empty(provider_traits, uuid);
          have.insert(t.begin(), t.end());
          ok = ok && traits_match(t, {}, q.forbidden_traits);
        }
        ok = ok && traits_match(have, q.required_traits, {});
      }
      if (ok) {
        for (auto& [uuid, amounts] : request) out.capable[uuid] = inventories[uuid];
        out.allocation_requests.push_back(std::move(request));
        if (!q.groups.empty()) out.mappings.push_back(std::move(mapping));
      }
      std::size_t i = 0;
      while (i < pick.size() && ++pick[i] == lists[i]->size()) pick[i++] = 0;
      if (i == pick.size()) break;
    }
  }
}

}  // namespace nubo::placement
