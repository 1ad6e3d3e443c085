// Placement's scheduler path in-process: 1000 providers, then allocation_candidates and claim
// latencies (p50/p99) one at a time and from several threads. Prints Markdown rows.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/config.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "compute/placement/local_client.hpp"
#include "compute/placement/setup.hpp"

using namespace nubo;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

namespace {

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  if (v.empty()) return s;
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

long env(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atol(v) : fallback;
}

}  // namespace

int main() {
  setup_logging("warn");
  long providers = env("PROVIDERS", 1000), rounds = env("ROUNDS", 1000),
       threads = env("THREADS", 4);
  long seconds = env("DURATION", 5);
  auto dir = fs::temp_directory_path() / ("nubo-placement-bench-" + uuid4_hex());
  auto config = Config::parse("");
  if (const char* url = std::getenv("NUBO_BENCH_DATABASE"); url && *url)
    config.set("database", "placement_connection", url);
  auto service = placement::open_placement_service(config, dir.string());
  placement::LocalPlacementClient client(service);

  // The cloud: hosts of 64 vCPUs, 256 GiB and 2 TB, half of them with an SSD trait, in 10
  // aggregates; each already runs 5 servers.
  auto start = Steady::now();
  std::vector<std::string> uuids;
  std::vector<std::string> aggregates;
  for (int a = 0; a < 10; ++a) aggregates.push_back(uuid4());
  for (long i = 0; i < providers; ++i) {
    placement::ProviderInventory p{uuid4(),
                                   "bench-host-" + std::to_string(i),
                                   64,
                                   262144,
                                   2000,
                                   16.0,
                                   1.5,
                                   1.0,
                                   512,
                                   0,
                                   {"COMPUTE_NODE"}};
    if (i % 2) p.traits.push_back("COMPUTE_VOLUME_MULTI_ATTACH");
    client.ensure_provider(p);
    client.set_provider_aggregates(p.uuid,
                                   {aggregates[static_cast<std::size_t>(i) % aggregates.size()]});
    for (int k = 0; k < 5; ++k)
      client.claim({uuid4(), "bench", "bench"},
                   {{p.uuid, {{"VCPU", 2}, {"MEMORY_MB", 4096}, {"DISK_GB", 20}}}});
    uuids.push_back(p.uuid);
  }
  std::printf("setup: %ld providers with 5 allocations each in %.1f s\n\n", providers,
              std::chrono::duration<double>(Steady::now() - start).count());

  placement::CandidateRequest request;
  request.resources = {{"VCPU", 2}, {"MEMORY_MB", 4096}, {"DISK_GB", 20}};
  request.limit = 1000;
  std::mt19937 rng(42);

  // One caller at a time: candidates, then a claim on one of them (released afterwards, so that
  // every round sees the same cloud).
  std::vector<double> candidate_ms, claim_ms, filtered_ms;
  std::size_t answers = 0;
  for (long r = 0; r < rounds; ++r) {
    auto t0 = Steady::now();
    auto cands = client.allocation_candidates(request);
    auto t1 = Steady::now();
    candidate_ms.push_back(ms(t1 - t0));
    answers = cands.size();
    auto& pick = cands[rng() % cands.size()];
    placement::Consumer consumer{uuid4(), "bench", "bench"};
    auto t2 = Steady::now();
    bool ok = client.claim(consumer, {{pick.provider_uuid, pick.requested}});
    claim_ms.push_back(ms(Steady::now() - t2));
    if (!ok) std::fprintf(stderr, "claim refused\n");
    client.release(consumer.uuid);
  }
  placement::CandidateRequest narrow = request;
  narrow.required_traits = {"COMPUTE_VOLUME_MULTI_ATTACH"};
  narrow.member_of = {{aggregates[0], aggregates[1]}};
  std::size_t narrow_answers = 0;
  for (long r = 0; r < rounds; ++r) {
    auto t0 = Steady::now();
    narrow_answers = client.allocation_candidates(narrow).size();
    filtered_ms.push_back(ms(Steady::now() - t0));
  }
  auto c = stats(candidate_ms), k = stats(claim_ms), f = stats(filtered_ms);
  std::printf(
      "| operation (1 caller, %ld rounds) | p50 ms | p99 ms | mean ms |\n|---|---|---|---|\n",
      rounds);
  std::printf(
      "| allocation_candidates VCPU:2,MEMORY_MB:4096,DISK_GB:20 (%zu candidates) | %.2f | %.2f | "
      "%.2f |\n",
      answers, c.p50, c.p99, c.mean);
  std::printf(
      "| ... with a required trait and member_of 2 of 10 aggregates (%zu candidates) | %.2f | %.2f "
      "| %.2f |\n",
      narrow_answers, f.p50, f.p99, f.mean);
  std::printf("| claim (one provider, three classes) | %.2f | %.2f | %.2f |\n\n", k.p50, k.p99,
              k.mean);

  // Several schedulers at once for a fixed time: each loop is candidates + claim (kept).
  std::atomic<bool> stop{false};
  std::atomic<long> cycles{0}, refused{0};
  std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (long t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      std::mt19937 local(static_cast<unsigned>(t));
      while (!stop) {
        auto t0 = Steady::now();
        auto cands = client.allocation_candidates(request);
        if (cands.empty()) break;
        auto& pick = cands[local() % cands.size()];
        if (!client.claim({uuid4(), "bench", "bench"}, {{pick.provider_uuid, pick.requested}}))
          ++refused;
        per_thread[static_cast<std::size_t>(t)].push_back(ms(Steady::now() - t0));
        ++cycles;
      }
    });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  std::vector<double> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  auto m = stats(all);
  std::printf(
      "| %ld threads for %ld s: candidates + claim | cycles/s | p50 ms | p99 ms | refused "
      "|\n|---|---|---|---|---|\n",
      threads, seconds);
  std::printf("| | %.0f | %.2f | %.2f | %ld |\n",
              static_cast<double>(cycles) / static_cast<double>(seconds), m.p50, m.p99,
              refused.load());
  fs::remove_all(dir);
  return 0;
}
