#include "compute/scheduler/scheduler.hpp"

#include <algorithm>
#include <sstream>
#include <unordered_map>

namespace nubo::compute {

namespace {

bool contains_value(const std::set<std::string>& values, const std::string& wanted) {
  for (auto& v : values) {
    // Aggregate metadata may hold comma-separated lists (filter_tenant_id = a,b).
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ','))
      if (item == wanted) return true;
  }
  return false;
}

// AggregateInstanceExtraSpecsFilter: unscoped or `aggregate_instance_extra_specs:` flavor extra
// specs must equal a value of the host's aggregates' metadata.
bool aggregate_extra_specs_pass(const RequestSpec& spec, const HostState& h) {
  for (auto& [key, value] : spec.extra_specs) {
    std::string k = key;
    if (auto colon = key.find(':'); colon != std::string::npos) {
      if (key.substr(0, colon) != "aggregate_instance_extra_specs") continue;
      k = key.substr(colon + 1);
    }
    auto it = h.aggregate_metadata.find(k);
    if (it == h.aggregate_metadata.end() || !contains_value(it->second, value)) return false;
  }
  return true;
}

// AggregateMultiTenancyIsolation: a host in an aggregate with `filter_tenant_id` takes only
// those projects.
bool tenant_isolation_pass(const RequestSpec& spec, const HostState& h) {
  auto it = h.aggregate_metadata.find("filter_tenant_id");
  return it == h.aggregate_metadata.end() || contains_value(it->second, spec.project_id);
}

bool image_properties_pass(const RequestSpec& spec) {
  for (auto* key : {"hw_architecture", "architecture"})
    if (auto it = spec.image_properties.find(key); it != spec.image_properties.end())
      if (it->second != "x86_64" && it->second != "i686") return false;
  return true;
}

void normalize_into(std::vector<double>& out, const std::vector<double>& raw, double multiplier) {
  if (raw.empty() || multiplier == 0) return;
  auto [lo, hi] = std::minmax_element(raw.begin(), raw.end());
  for (size_t i = 0; i < raw.size(); ++i)
    out[i] += multiplier * (*hi == *lo ? 0.0 : (raw[i] - *lo) / (*hi - *lo));
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<placement::PlacementClient> placement,
                     SchedulerSettings settings)
    : placement_(std::move(placement)), settings_(std::move(settings)) {}

std::vector<const HostState*> Scheduler::rank(
    const RequestSpec& spec, const std::vector<HostState>& hosts,
    const std::vector<placement::Candidate>& candidates) const {
  std::vector<const placement::Candidate*> pointers;
  pointers.reserve(candidates.size());
  for (auto& c : candidates) pointers.push_back(&c);
  return rank(spec, hosts, pointers);
}

std::vector<const HostState*> Scheduler::rank(
    const RequestSpec& spec, const std::vector<HostState>& hosts,
    const std::vector<const placement::Candidate*>& candidates) const {
  std::unordered_map<std::string_view, const placement::Candidate*> by_node;
  by_node.reserve(candidates.size());
  for (auto* c : candidates) by_node.emplace(c->provider_uuid, c);
  auto on = [&](const char* name) { return settings_.enabled_filters.count(name) > 0; };
  bool extra_specs_filter = on("AggregateInstanceExtraSpecsFilter"),
       tenant_filter = on("AggregateMultiTenancyIsolation"),
       image_filter = on("ImagePropertiesFilter") && !image_properties_pass(spec),
       isolated_filter = on("IsolatedHostsFilter"),
       anti_affinity_filter = on("ServerGroupAntiAffinityFilter"),
       affinity_filter = on("ServerGroupAffinityFilter");
  std::vector<const HostState*> kept;
  std::vector<const placement::Candidate*> kept_candidates;
  std::string image = spec.image_properties.count("id") ? spec.image_properties.at("id") : "";
  bool isolated_image = settings_.isolated_images.count(image) > 0;
  for (auto& h : hosts) {
    auto c = by_node.find(h.node_uuid);
    if (c == by_node.end() || !h.usable || spec.ignore_hosts.count(h.host)) continue;
    if (!spec.requested_host.empty() && h.host != spec.requested_host) continue;
    if (!spec.forced_host.empty()) {
      if (h.host != spec.forced_host) continue;
    } else {
      if (!spec.zone.empty() && h.zone != spec.zone) continue;
      if (extra_specs_filter && !aggregate_extra_specs_pass(spec, h)) continue;
      if (tenant_filter && !tenant_isolation_pass(spec, h)) continue;
      if (image_filter) continue;  // the image asks for what no host here is
      bool isolated_host = settings_.isolated_hosts.count(h.host) > 0;
      if (isolated_filter && isolated_image != isolated_host &&
          (isolated_image || settings_.restrict_isolated_hosts_to_isolated_images))
        continue;
      auto members = spec.group_id.empty() || !h.group_members.count(spec.group_id)
                         ? 0
                         : h.group_members.at(spec.group_id);
      if (anti_affinity_filter && spec.group_policy == "anti-affinity" &&
          members >= spec.max_server_per_host)
        continue;
      if (affinity_filter && spec.group_policy == "affinity" && members == 0) {
        bool placed_elsewhere =
            std::any_of(hosts.begin(), hosts.end(), [&](const HostState& other) {
              auto it = other.group_members.find(spec.group_id);
              return it != other.group_members.end() && it->second > 0;
            });
        if (placed_elsewhere) continue;
      }
    }
    kept.push_back(&h);
    kept_candidates.push_back(c->second);
  }
  // Weighers: free RAM, CPU and disk spread servers; soft (anti-)affinity pulls or pushes group
  // members. Each is normalized to [0, 1] over the hosts kept, then multiplied (Nova's rule).
  auto free_of = [](const placement::Candidate& c, const char* rc) {
    auto cap = c.capacity.count(rc) ? c.capacity.at(rc) : 0;
    auto used = c.used.count(rc) ? c.used.at(rc) : 0;
    return static_cast<double>(cap - used);
  };
  std::vector<double> weights(kept.size(), 0.0), ram, cpu, disk, group;
  for (size_t i = 0; i < kept.size(); ++i) {
    ram.push_back(free_of(*kept_candidates[i], "MEMORY_MB"));
    cpu.push_back(free_of(*kept_candidates[i], "VCPU"));
    disk.push_back(free_of(*kept_candidates[i], "DISK_GB"));
    auto it = kept[i]->group_members.find(spec.group_id);
    group.push_back(it == kept[i]->group_members.end() ? 0.0 : it->second);
  }
  normalize_into(weights, ram, settings_.ram_weight_multiplier);
  normalize_into(weights, cpu, settings_.cpu_weight_multiplier);
  normalize_into(weights, disk, settings_.disk_weight_multiplier);
  if (spec.group_policy == "soft-affinity")
    normalize_into(weights, group, settings_.soft_affinity_weight_multiplier);
  if (spec.group_policy == "soft-anti-affinity")
    normalize_into(weights, group, -settings_.soft_anti_affinity_weight_multiplier);
  std::vector<size_t> order(kept.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return weights[a] > weights[b]; });
  std::vector<const HostState*> out;
  for (auto i : order) out.push_back(kept[i]);
  return out;
}

void Scheduler::refresh_snapshot() {
  placement::CandidateRequest everything;
  everything.resources = {{"VCPU", 1}, {"MEMORY_MB", 1}, {"DISK_GB", 1}};
  everything.limit = 1000000;
  snapshot_.clear();
  for (auto& c : placement_->allocation_candidates(everything))
    snapshot_[c.provider_uuid] = std::move(c);
  // Claims on their way to placement are not in what it said yet.
  for (auto& [uuid, held] : in_flight_)
    for (auto& [rc, n] : held) snapshot_[uuid].used[rc] += n;
  snapshot_time_ = std::chrono::steady_clock::now();
  snapshot_stale_ = false;
}

std::vector<const placement::Candidate*> Scheduler::fitting(
    const std::map<std::string, std::int64_t>& resources) const {
  std::vector<const placement::Candidate*> out;
  out.reserve(snapshot_.size());
  for (auto& [uuid, c] : snapshot_) {
    bool fits = true;
    for (auto& [rc, n] : resources) {
      auto cap = c.capacity.find(rc), used = c.used.find(rc);
      fits = fits && cap != c.capacity.end() &&
             cap->second - (used == c.used.end() ? 0 : used->second) >= n;
    }
    if (fits) out.push_back(&c);
    if (static_cast<long>(out.size()) >= settings_.max_placement_results) break;
  }
  return out;
}

namespace {

std::map<std::string, std::int64_t> requested(const RequestSpec& spec) {
  std::map<std::string, std::int64_t> resources{{"VCPU", spec.vcpus},
                                                {"MEMORY_MB", spec.memory_mb}};
  if (spec.disk_gb > 0) resources["DISK_GB"] = spec.disk_gb;
  return resources;
}

}  // namespace

std::optional<Selection> Scheduler::reserve(const RequestSpec& spec,
                                            const std::vector<HostState>& hosts,
                                            const std::set<std::string>& refused) {
  auto resources = requested(spec);
  std::lock_guard lock(mutex_);
  // Two passes at most: on the snapshot, then (if it was old or a claim was refused) on a fresh
  // one.
  for (int pass = 0; pass < 2; ++pass) {
    bool fresh = false;
    if (snapshot_stale_ ||
        std::chrono::steady_clock::now() - snapshot_time_ > settings_.snapshot_ttl) {
      refresh_snapshot();
      fresh = true;
    }
    auto candidates = fitting(resources);
    std::erase_if(candidates, [&](auto* c) { return refused.count(c->provider_uuid) > 0; });
    auto ranked = rank(spec, hosts, candidates);
    if (!ranked.empty()) {
      auto* h = ranked.front();
      for (auto& [rc, n] : resources) {
        snapshot_[h->node_uuid].used[rc] += n;
        in_flight_[h->node_uuid][rc] += n;
      }
      return Selection{h->host, h->node, h->node_uuid, h->zone};
    }
    if (fresh) break;
    snapshot_stale_ = true;
  }
  return std::nullopt;
}

bool Scheduler::claim(const RequestSpec& spec, const Selection& selection) {
  auto resources = requested(spec);
  bool ok = placement_->claim({spec.instance_id, spec.project_id, spec.user_id},
                              {{selection.node_uuid, resources}});
  std::lock_guard lock(mutex_);
  auto& held = in_flight_[selection.node_uuid];
  for (auto& [rc, n] : resources) {
    held[rc] -= n;
    // A refused claim gives its room back, and the next decision reads placement again: someone
    // else's change (another scheduler, usage the snapshot missed) took it.
    if (!ok) snapshot_[selection.node_uuid].used[rc] -= n;
  }
  std::erase_if(held, [](auto& kv) { return kv.second == 0; });
  if (held.empty()) in_flight_.erase(selection.node_uuid);
  if (!ok) snapshot_stale_ = true;
  return ok;
}

std::optional<Selection> Scheduler::select_and_claim(const RequestSpec& spec,
                                                     const std::vector<HostState>& hosts) {
  std::set<std::string> refused;
  for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
    auto selection = reserve(spec, hosts, refused);
    if (!selection) return std::nullopt;
    if (claim(spec, *selection)) return selection;
    refused.insert(selection->node_uuid);
  }
  return std::nullopt;
}

}  // namespace nubo::compute
