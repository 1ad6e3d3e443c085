// The scheduler's decision at 1,000 hosts, in-process: placement's candidates, the filters and
// weighers, and the claim, on a real placement database (SQLite in a temporary directory).
// Usage: scheduler_bench [hosts] [decisions]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/ids.hpp"
#include "compute/placement/local_client.hpp"
#include "compute/placement/setup.hpp"
#include "compute/scheduler/scheduler.hpp"

using namespace nubo;
using Steady = std::chrono::steady_clock;

namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = argc > 1 ? std::stoi(argv[1]) : 1000;
  int decisions = argc > 2 ? std::stoi(argv[2]) : 2000;
  auto dir = std::filesystem::temp_directory_path() / ("nubo-scheduler-bench-" + uuid4_hex());
  auto config = Config::parse("");
  auto placement = std::make_shared<placement::LocalPlacementClient>(
      placement::open_placement_service(config, dir.string()));
  std::vector<compute::HostState> states;
  for (int i = 0; i < hosts; ++i) {
    placement::ProviderInventory inv;
    inv.uuid = uuid4();
    inv.name = "host-" + std::to_string(i);
    inv.vcpus = 64;
    inv.memory_mb = 262144;
    inv.disk_gb = 4000;
    inv.traits = {"COMPUTE_NODE"};
    placement->ensure_provider(inv);
    compute::HostState h;
    h.host = h.node = inv.name;
    h.node_uuid = inv.uuid;
    h.zone = "nova";
    states.push_back(std::move(h));
  }
  compute::Scheduler scheduler(placement, {});
  std::vector<double> total, ranking;
  for (int i = 0; i < decisions; ++i) {
    compute::RequestSpec spec;
    spec.instance_id = uuid4();
    spec.project_id = "bench";
    spec.vcpus = 1;
    spec.memory_mb = 512;
    spec.disk_gb = 1;
    auto t = Steady::now();
    auto selection = scheduler.select_and_claim(spec, states);
    total.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t).count());
    if (!selection) {
      std::fprintf(stderr, "no host for decision %d\n", i);
      return 1;
    }
  }
  // The filters and weighers alone, on the candidates placement returned.
  placement::CandidateRequest request;
  request.resources = {{"VCPU", 1}, {"MEMORY_MB", 512}, {"DISK_GB", 1}};
  auto candidates = placement->allocation_candidates(request);
  compute::RequestSpec spec;
  spec.vcpus = 1;
  spec.memory_mb = 512;
  for (int i = 0; i < 200; ++i) {
    auto t = Steady::now();
    auto ranked = scheduler.rank(spec, states, candidates);
    ranking.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t).count());
  }
  std::printf(
      "scheduler decision at %d hosts (candidates + filters/weighers + claim, SQLite): p50 %.2f "
      "ms, p99 %.2f ms "
      "over %d decisions; filters and weighers alone p50 %.2f ms\n",
      hosts, percentile(total, 50), percentile(total, 99), decisions, percentile(ranking, 50));
  std::filesystem::remove_all(dir);
  return 0;
}
