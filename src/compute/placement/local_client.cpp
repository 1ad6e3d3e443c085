#include "compute/placement/local_client.hpp"

#include "compute/placement/service/placement_service.hpp"

namespace nubo::placement {

LocalPlacementClient::LocalPlacementClient(std::shared_ptr<PlacementService> service)
    : service_(std::move(service)) {}

void LocalPlacementClient::ensure_provider(const ProviderInventory& p) {
  // A lost race with another writer of the same provider is retried on fresh data.
  for (int attempt = 0;; ++attempt) {
    try {
      std::optional<Provider> current;
      try {
        current = service_->provider(p.uuid);
      } catch (const ApiError& e) {
        if (e.status() != 404) throw;
      }
      if (!current) current = service_->create_provider(p.name, p.uuid, std::nullopt);
      if (current->name != p.name)
        current = service_->update_provider(p.uuid, p.name, std::nullopt, false);
      Inventories wanted;
      auto add = [&](const char* rc, std::int64_t total, std::int64_t reserved, double ratio) {
        if (total <= 0) return;
        Inventory inv;
        inv.total = total;
        inv.reserved = std::min(reserved, total);
        inv.max_unit = total;
        inv.allocation_ratio = ratio;
        wanted[rc] = inv;
      };
      add("VCPU", p.vcpus, 0, p.cpu_allocation_ratio);
      add("MEMORY_MB", p.memory_mb, p.reserved_memory_mb, p.ram_allocation_ratio);
      add("DISK_GB", p.disk_gb, p.reserved_disk_gb, p.disk_allocation_ratio);
      auto [generation, inventories] = service_->inventories(p.uuid);
      bool same = inventories.size() == wanted.size();
      for (auto& [rc, inv] : wanted) {
        auto it = inventories.find(rc);
        same = same && it != inventories.end() && it->second.total == inv.total &&
               it->second.reserved == inv.reserved && it->second.max_unit == inv.max_unit &&
               it->second.allocation_ratio == inv.allocation_ratio &&
               it->second.min_unit == inv.min_unit && it->second.step_size == inv.step_size;
      }
      if (!same) generation = service_->set_inventories(p.uuid, generation, wanted, true);
      for (auto& t : p.traits)
        if (t.rfind("CUSTOM_", 0) == 0) service_->ensure_trait(t);
      auto [trait_generation, traits] = service_->provider_traits(p.uuid);
      std::set<std::string> have(traits.begin(), traits.end()),
          want(p.traits.begin(), p.traits.end());
      if (have != want) service_->set_provider_traits(p.uuid, trait_generation, p.traits);
      return;
    } catch (const ApiError& e) {
      if (e.type() != code::kConcurrentUpdate || attempt >= 5) throw;
    }
  }
}

std::vector<Candidate> LocalPlacementClient::allocation_candidates(const CandidateRequest& r) {
  CandidateQuery q;
  q.resources = r.resources;
  for (auto& t : r.required_traits) q.required_traits.push_back({t});
  q.forbidden_traits.insert(r.forbidden_traits.begin(), r.forbidden_traits.end());
  for (auto& any : r.member_of) q.member_of.emplace_back(any.begin(), any.end());
  q.in_tree = r.in_tree;
  q.limit = r.limit;
  q.nested = false;  // one compute node serves the whole request
  q.summaries = false;
  auto result = service_->allocation_candidates(q);
  std::vector<Candidate> out;
  out.reserve(result.allocation_requests.size());
  for (auto& request : result.allocation_requests) {
    auto& [uuid, amounts] = *request.begin();
    Candidate c{uuid, amounts, {}, {}};
    for (auto& [rc, inv] : result.capable[uuid]) {
      c.capacity[rc] = inv.capacity();
      c.used[rc] = inv.used;
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool LocalPlacementClient::claim(
    const Consumer& c,
    const std::map<std::string, std::map<std::string, std::int64_t>>& allocations) {
  AllocationWrite w{c.uuid, c.project_id, c.user_id,  std::nullopt,
                    false,  std::nullopt, allocations};
  try {
    service_->write_allocations({w}, true);
    return true;
  } catch (const ApiError& e) {
    // Capacity and unit refusals are the answer "no room"; anything else is an error.
    if (e.status() == 409 && std::string(e.what()).rfind("Unable to allocate inventory", 0) == 0)
      return false;
    throw;
  }
}

std::map<std::string, std::map<std::string, std::int64_t>> LocalPlacementClient::allocations(
    const std::string& consumer_uuid) {
  return service_->consumer_allocations(consumer_uuid).allocations;
}

void LocalPlacementClient::move_allocations(const std::string& from, const std::string& to,
                                            const Consumer& to_consumer) {
  AllocationWrite w{
      to, to_consumer.project_id, to_consumer.user_id, std::nullopt, false, std::nullopt, {}};
  service_->move_allocations(from, w);
}

void LocalPlacementClient::release(const std::string& consumer_uuid) {
  service_->write_allocations(
      {AllocationWrite{consumer_uuid, {}, {}, std::nullopt, false, std::nullopt, {}}}, true);
}

void LocalPlacementClient::set_provider_aggregates(
    const std::string& provider_uuid, const std::vector<std::string>& aggregate_uuids) {
  service_->set_provider_aggregates(provider_uuid, std::nullopt, aggregate_uuids);
}

}  // namespace nubo::placement
