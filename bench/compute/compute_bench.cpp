// Compute API load against a running cloud (the fake driver): boot → ACTIVE latency at N
// concurrent requests, sustained boot+delete cycles, and server listing at scale.
// Usage: compute_bench --compute URL --identity URL --password P --image ID
//                      [--concurrency 50] [--boots 500] [--cycle-seconds 60] [--list-servers 10000]
//                      [--poll-ms 10]
// Each client polls its server's status every --poll-ms (Rally, whose published figures
// docs/performance.md quotes, polls every second; the quantisation only ever adds latency).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http/client.hpp"
#include "common/json.hpp"

using namespace nubo;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string compute, identity, password = "password", image, flavor = "1";
  int concurrency = 50, boots = 500, cycle_seconds = 60, list_servers = 10000, poll_ms = 10;
};

struct Api {
  const Options& o;
  std::string token;
  http::Client client{std::chrono::seconds(60)};
  explicit Api(const Options& opts, std::string t) : o(opts), token(std::move(t)) {}
  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"X-Auth-Token", token}};
    if (!body.empty()) h.push_back({"Content-Type", "application/json"});
    return client.request(method, o.compute + path, h, body);
  }
  std::string boot(const std::string& name, int count = 1) {
    auto body = json::serialize(json::object{{"server", json::object{{"name", name},
                                                                     {"flavorRef", o.flavor},
                                                                     {"imageRef", o.image},
                                                                     {"min_count", count},
                                                                     {"max_count", count}}}});
    auto r = call("POST", "/servers", body);
    if (r.status != 202) {
      std::fprintf(stderr, "boot: %d %s\n", r.status, r.body.substr(0, 300).c_str());
      return {};
    }
    return std::string(
        json::parse(r.body).as_object().at("server").as_object().at("id").as_string());
  }
  // Polls until the server shows the status (or is gone, for "GONE"); false on ERROR or after
  // a minute (a server stuck on its way counts as an error, it does not hang the run).
  bool wait(const std::string& id, const std::string& status) {
    auto give_up = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < give_up) {
      auto r = call("GET", "/servers/" + id);
      if (status == "GONE" && r.status == 404) return true;
      if (r.status == 200) {
        auto s = json::parse(r.body).as_object().at("server").as_object().at("status").as_string();
        if (s == status) return true;
        if (s == "ERROR") return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
    }
    std::fprintf(stderr, "server %s did not reach %s within 60 s\n", id.c_str(), status.c_str());
    return false;
  }
};

std::string admin_project;

std::string admin_token(const Options& o) {
  http::Client c;
  auto body =
      R"({"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":")" +
      o.password + R"("}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}})";
  auto r =
      c.request("POST", o.identity + "/auth/tokens", {{"Content-Type", "application/json"}}, body);
  auto t = r.headers.get("X-Subject-Token");
  if (!t)
    throw std::runtime_error("cannot get a token: " + std::to_string(r.status) + " " + r.body);
  admin_project = std::string(json::parse(r.body)
                                  .as_object()
                                  .at("token")
                                  .as_object()
                                  .at("project")
                                  .as_object()
                                  .at("id")
                                  .as_string());
  return std::string(*t);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void boot_latency(const Options& o, const std::string& token) {
  std::atomic<int> next{0};
  std::mutex m;
  std::vector<double> latencies;
  std::vector<std::string> ids;
  int errors = 0;
  std::vector<std::thread> workers;
  auto start = Clock::now();
  for (int w = 0; w < o.concurrency; ++w)
    workers.emplace_back([&] {
      Api api(o, token);
      while (next.fetch_add(1) < o.boots) {
        auto t = Clock::now();
        auto id = api.boot("bench-boot");
        bool ok = !id.empty() && api.wait(id, "ACTIVE");
        std::lock_guard lock(m);
        if (ok)
          latencies.push_back(ms_since(t));
        else
          ++errors;
        if (!id.empty()) ids.push_back(id);
      }
    });
  for (auto& w : workers) w.join();
  auto elapsed = ms_since(start) / 1000.0;
  std::printf(
      "boot->ACTIVE at %d concurrent: %zu servers, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f "
      "ms, "
      "%.0f boots/s, %d errors\n",
      o.concurrency, latencies.size(), percentile(latencies, 50), percentile(latencies, 95),
      percentile(latencies, 99), percentile(latencies, 100),
      static_cast<double>(latencies.size()) / elapsed, errors);
  // Clean up so the next scenario starts from an empty cloud.
  std::atomic<size_t> i{0};
  workers.clear();
  for (int w = 0; w < o.concurrency; ++w)
    workers.emplace_back([&] {
      Api api(o, token);
      for (size_t k; (k = i.fetch_add(1)) < ids.size();) api.call("DELETE", "/servers/" + ids[k]);
    });
  for (auto& w : workers) w.join();
}

void cycles(const Options& o, const std::string& token) {
  std::atomic<long> done{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  std::mutex m;
  std::vector<double> per_second;
  auto start = Clock::now();
  for (int w = 0; w < o.concurrency; ++w)
    workers.emplace_back([&] {
      Api api(o, token);
      while (!stop) {
        auto id = api.boot("bench-cycle");
        if (id.empty() || !api.wait(id, "ACTIVE")) {
          ++errors;
          if (!id.empty()) api.call("DELETE", "/servers/" + id);
          continue;
        }
        if (api.call("DELETE", "/servers/" + id).status != 204 || !api.wait(id, "GONE")) {
          ++errors;
          continue;
        }
        ++done;
      }
    });
  long last = 0;
  for (int s = 0; s < o.cycle_seconds; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long now = done.load();
    per_second.push_back(static_cast<double>(now - last));
    last = now;
  }
  stop = true;
  for (auto& w : workers) w.join();
  auto elapsed = ms_since(start) / 1000.0;
  std::printf(
      "boot+delete cycles (%d workers, %d s): %.0f cycles/s sustained (min second %.0f, median "
      "%.0f), "
      "%ld errors\n",
      o.concurrency, o.cycle_seconds, static_cast<double>(done.load()) / elapsed,
      *std::min_element(per_second.begin(), per_second.end()), percentile(per_second, 50),
      errors.load());
}

void listing(const Options& o, const std::string& token) {
  Api api(o, token);
  std::vector<std::thread> workers;
  std::atomic<int> made{0};
  const int batch = 100;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&] {
      Api a(o, token);
      while (made.fetch_add(batch) < o.list_servers) a.boot("bench-list", batch);
    });
  for (auto& w : workers) w.join();
  // Wait until every one is ACTIVE.
  for (;;) {
    auto r = api.call("GET", "/servers?status=BUILD&limit=1");
    if (json::parse(r.body).as_object().at("servers").as_array().empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::vector<double> latencies;
  size_t listed = 0;
  for (int i = 0; i < 50; ++i) {
    auto t = Clock::now();
    auto r = api.call("GET", "/servers/detail?limit=1000");
    latencies.push_back(ms_since(t));
    listed = json::parse(r.body).as_object().at("servers").as_array().size();
  }
  std::printf(
      "GET /servers/detail?limit=1000 with %d servers: p50 %.1f ms, p95 %.1f ms (%zu per page)\n",
      o.list_servers, percentile(latencies, 50), percentile(latencies, 95), listed);
  latencies.clear();
  for (int i = 0; i < 50; ++i) {
    auto t = Clock::now();
    api.call("GET", "/servers?limit=1000");
    latencies.push_back(ms_since(t));
  }
  std::printf("GET /servers?limit=1000 with %d servers: p50 %.1f ms, p95 %.1f ms\n", o.list_servers,
              percentile(latencies, 50), percentile(latencies, 95));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> scenarios;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--compute")
      o.compute = next();
    else if (a == "--identity")
      o.identity = next();
    else if (a == "--password")
      o.password = next();
    else if (a == "--image")
      o.image = next();
    else if (a == "--flavor")
      o.flavor = next();
    else if (a == "--concurrency")
      o.concurrency = std::stoi(next());
    else if (a == "--boots")
      o.boots = std::stoi(next());
    else if (a == "--cycle-seconds")
      o.cycle_seconds = std::stoi(next());
    else if (a == "--list-servers")
      o.list_servers = std::stoi(next());
    else if (a == "--poll-ms")
      o.poll_ms = std::stoi(next());
    else
      scenarios.push_back(a);
  }
  if (scenarios.empty()) scenarios = {"boot", "cycle", "list"};
  auto token = admin_token(o);
  {
    // Room for the servers: the admin project's quotas lifted.
    Api api(o, token);
    auto r = api.call("PUT", "/os-quota-sets/" + admin_project,
                      R"({"quota_set": {"instances": -1, "cores": -1, "ram": -1}})");
    if (r.status != 200) std::fprintf(stderr, "quota: %d %s\n", r.status, r.body.c_str());
  }
  for (auto& s : scenarios) {
    if (s == "boot")
      boot_latency(o, token);
    else if (s == "cycle")
      cycles(o, token);
    else if (s == "list")
      listing(o, token);
  }
  return 0;
}
