// The scheduler's filters, weighers and claim retry, over an in-memory placement double.
#include "compute/scheduler/scheduler.hpp"

#include <gtest/gtest.h>

#include <mutex>

using namespace nubo;
using namespace nubo::compute;

namespace {

// Placement reduced to capacity arithmetic: enough to see which hosts fit and that claims count.
class MemoryPlacement : public placement::PlacementClient {
 public:
  std::map<std::string, std::map<std::string, std::int64_t>>
      capacity;  // provider → class → capacity
  std::map<std::string, std::map<std::string, std::map<std::string, std::int64_t>>>
      held;                                // consumer → allocations
  std::set<std::string> refuse_claims_on;  // simulates a concurrent claim winning the race

  void ensure_provider(const placement::ProviderInventory&) override {}
  std::map<std::string, std::int64_t> used(const std::string& provider) const {
    std::map<std::string, std::int64_t> out;
    for (auto& [consumer, allocs] : held)
      if (auto it = allocs.find(provider); it != allocs.end())
        for (auto& [rc, n] : it->second) out[rc] += n;
    return out;
  }
  std::vector<placement::Candidate> allocation_candidates(
      const placement::CandidateRequest& r) override {
    std::vector<placement::Candidate> out;
    for (auto& [provider, cap] : capacity) {
      auto u = used(provider);
      bool fits = true;
      for (auto& [rc, n] : r.resources) fits = fits && u[rc] + n <= cap[rc];
      if (fits) out.push_back({provider, r.resources, cap, u});
    }
    return out;
  }
  bool claim(
      const placement::Consumer& c,
      const std::map<std::string, std::map<std::string, std::int64_t>>& allocations) override {
    for (auto& [provider, _] : allocations)
      if (refuse_claims_on.count(provider)) return false;
    held[c.uuid] = allocations;
    return true;
  }
  std::map<std::string, std::map<std::string, std::int64_t>> allocations(
      const std::string& consumer) override {
    return held[consumer];
  }
  void move_allocations(const std::string& from, const std::string& to,
                        const placement::Consumer&) override {
    held[to] = held[from];
    held.erase(from);
  }
  void release(const std::string& consumer) override { held.erase(consumer); }
  void set_provider_aggregates(const std::string&, const std::vector<std::string>&) override {}
};

struct Fixture {
  std::shared_ptr<MemoryPlacement> placement = std::make_shared<MemoryPlacement>();
  std::vector<HostState> hosts;
  Fixture() {
    for (auto name : {"a", "b", "c"}) {
      placement->capacity[std::string("node-") + name] = {
          {"VCPU", 8}, {"MEMORY_MB", 4096}, {"DISK_GB", 100}};
      HostState h;
      h.host = name;
      h.node = name;
      h.node_uuid = std::string("node-") + name;
      h.zone = "nova";
      hosts.push_back(h);
    }
  }
  // Every filter on, beyond Nova's default set.
  static SchedulerSettings all_filters() {
    SchedulerSettings s;
    s.enabled_filters.insert({"AggregateInstanceExtraSpecsFilter", "AggregateMultiTenancyIsolation",
                              "IsolatedHostsFilter"});
    return s;
  }
  RequestSpec spec(const std::string& id, std::int64_t memory = 512) {
    RequestSpec s;
    s.instance_id = id;
    s.project_id = "p";
    s.vcpus = 1;
    s.memory_mb = memory;
    s.disk_gb = 1;
    return s;
  }
};

TEST(Scheduler, SpreadsByFreeRamAndClaims) {
  Fixture f;
  Scheduler scheduler(f.placement, Fixture::all_filters());
  std::map<std::string, int> per_host;
  for (int i = 0; i < 6; ++i) {
    auto sel = scheduler.select_and_claim(f.spec("vm" + std::to_string(i), 1024), f.hosts);
    ASSERT_TRUE(sel);
    per_host[sel->host]++;
  }
  // The RAM weigher spreads: two on each host, and placement holds every claim.
  EXPECT_EQ(per_host["a"], 2);
  EXPECT_EQ(per_host["b"], 2);
  EXPECT_EQ(per_host["c"], 2);
  EXPECT_EQ(f.placement->held.size(), 6u);
  // Now 2048 MB is free everywhere: 4096 MB fits nowhere.
  EXPECT_FALSE(scheduler.select_and_claim(f.spec("big", 4096), f.hosts));
}

TEST(Scheduler, FiltersZoneServiceTenantIsolationAndAntiAffinity) {
  Fixture f;
  Scheduler scheduler(f.placement, Fixture::all_filters());
  f.hosts[0].zone = "az1";
  f.hosts[1].usable = false;  // disabled or down
  auto s = f.spec("x");
  s.zone = "az1";
  EXPECT_EQ(scheduler.select_and_claim(s, f.hosts)->host, "a");
  s.zone = "nova";
  EXPECT_EQ(scheduler.select_and_claim(s, f.hosts)->host, "c");  // b is unusable

  f.hosts[2].aggregate_metadata["filter_tenant_id"] = {"other,another"};
  EXPECT_FALSE(scheduler.select_and_claim(s, f.hosts));
  f.hosts[2].aggregate_metadata["filter_tenant_id"] = {"other,p"};
  EXPECT_TRUE(scheduler.select_and_claim(s, f.hosts));

  Fixture g;
  RequestSpec anti = g.spec("y");
  anti.group_id = "grp";
  anti.group_policy = "anti-affinity";
  g.hosts[0].group_members["grp"] = 1;
  g.hosts[1].group_members["grp"] = 1;
  EXPECT_EQ(
      scheduler.rank(anti, g.hosts, g.placement->allocation_candidates({{{"VCPU", 1}}})).size(),
      1u);
  RequestSpec aff = anti;
  aff.group_policy = "affinity";
  g.hosts[1].group_members.clear();
  auto ranked = scheduler.rank(aff, g.hosts, g.placement->allocation_candidates({{{"VCPU", 1}}}));
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0]->host, "a");
}

TEST(Scheduler, AggregateExtraSpecsAndForcedHost) {
  Fixture f;
  Scheduler scheduler(f.placement, Fixture::all_filters());
  f.hosts[1].aggregate_metadata["ssd"] = {"true"};
  auto s = f.spec("x");
  s.extra_specs = {{"aggregate_instance_extra_specs:ssd", "true"}, {"hw:cpu_policy", "shared"}};
  EXPECT_EQ(scheduler.select_and_claim(s, f.hosts)->host, "b");
  auto forced = f.spec("y");
  forced.forced_host = "c";
  EXPECT_EQ(scheduler.select_and_claim(forced, f.hosts)->host, "c");
}

TEST(Scheduler, LostClaimRaceTriesTheNextHost) {
  Fixture f;
  Scheduler scheduler(f.placement, Fixture::all_filters());
  f.placement->refuse_claims_on = {"node-a", "node-b"};
  auto sel = scheduler.select_and_claim(f.spec("x"), f.hosts);
  ASSERT_TRUE(sel);
  EXPECT_EQ(sel->host, "c");
  f.placement->refuse_claims_on.insert("node-c");
  EXPECT_FALSE(scheduler.select_and_claim(f.spec("y"), f.hosts));
}

}  // namespace
