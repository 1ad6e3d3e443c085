// Network API load against a running cloud: port create latency with many ports already on the
// network, and listing them all (issue 6's targets: create p50 <= 5 ms at 10,000 ports, listing
// 10,000 ports p95 <= 100 ms).
// Usage: network_bench --network URL --identity URL --password P [--ports 10000] [--samples 200]
//                      [--lists 20] [--threads 8]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/http/client.hpp"
#include "common/json.hpp"

using namespace nubo;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string network, identity, password = "password";
  int ports = 10000, samples = 200, lists = 20, threads = 8;
};

std::string token_for(const Options& o) {
  http::Client c;
  auto body =
      R"({"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":")" +
      o.password + R"("}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}})";
  auto r =
      c.request("POST", o.identity + "/auth/tokens", {{"Content-Type", "application/json"}}, body);
  auto t = r.headers.get("X-Subject-Token");
  if (!t) {
    std::fprintf(stderr, "no token: %d %s\n", r.status, r.body.c_str());
    std::exit(1);
  }
  return std::string(*t);
}

struct Api {
  const Options& o;
  std::string token;
  http::Client client{std::chrono::seconds(120)};
  http::ClientResponse call(const std::string& method, const std::string& path,
                            const json::value& body = nullptr) {
    std::vector<std::pair<std::string, std::string>> h{{"X-Auth-Token", token}};
    std::string text;
    if (!body.is_null()) {
      h.push_back({"Content-Type", "application/json"});
      text = json::serialize(body);
    }
    return client.request(method, o.network + path, h, text);
  }
  std::string create(const std::string& plural, const std::string& singular, json::object body) {
    auto r = call("POST", "/v2.0/" + plural, json::object{{singular, body}});
    if (r.status != 201) {
      std::fprintf(stderr, "create %s: %d %s\n", singular.c_str(), r.status,
                   r.body.substr(0, 300).c_str());
      std::exit(1);
    }
    return std::string(
        json::parse(r.body).as_object().at(singular).as_object().at("id").as_string());
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--network")
      o.network = v;
    else if (k == "--identity")
      o.identity = v;
    else if (k == "--password")
      o.password = v;
    else if (k == "--ports")
      o.ports = std::stoi(v);
    else if (k == "--samples")
      o.samples = std::stoi(v);
    else if (k == "--lists")
      o.lists = std::stoi(v);
    else if (k == "--threads")
      o.threads = std::stoi(v);
  }
  auto token = token_for(o);
  Api api{o, token};
  auto network = api.create("networks", "network", {{"name", "bench"}});
  api.create("subnets", "subnet",
             {{"network_id", network},
              {"cidr", "10.0.0.0/16"},
              {"ip_version", 4},
              {"enable_dhcp", false}});
  // Fill the network, several clients at once.
  auto start = Clock::now();
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t)
    threads.emplace_back([&] {
      Api mine{o, token};
      while (next.fetch_add(1) < o.ports) mine.create("ports", "port", {{"network_id", network}});
    });
  for (auto& t : threads) t.join();
  double fill = ms_since(start);
  std::printf("filled %d ports in %.1f s (%.0f creates/s with %d clients)\n", o.ports, fill / 1000,
              o.ports / (fill / 1000), o.threads);
  // One client: the latency of each further create.
  std::vector<double> creates;
  for (int i = 0; i < o.samples; ++i) {
    auto t = Clock::now();
    api.create("ports", "port", {{"network_id", network}});
    creates.push_back(ms_since(t));
  }
  std::printf("port create with %d ports on the network: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms\n",
              o.ports, percentile(creates, 0.5), percentile(creates, 0.95),
              percentile(creates, 0.99));
  std::vector<double> lists;
  size_t count = 0;
  for (int i = 0; i < o.lists; ++i) {
    auto t = Clock::now();
    auto r = api.call("GET", "/v2.0/ports?network_id=" + network);
    lists.push_back(ms_since(t));
    count = json::parse(r.body).as_object().at("ports").as_array().size();
  }
  std::printf("list %zu ports: p50 %.1f ms, p95 %.1f ms\n", count, percentile(lists, 0.5),
              percentile(lists, 0.95));
  // The same listing while ports change: 10 renamed before each one (their renderings redone).
  std::vector<double> churned;
  std::vector<std::string> some;
  // Parsed into a local first: a range-for over a member of a temporary dangles.
  auto first = json::parse(api.call("GET", "/v2.0/ports?network_id=" + network + "&limit=10").body);
  for (auto& p : first.as_object().at("ports").as_array())
    some.emplace_back(p.as_object().at("id").as_string());
  for (int i = 0; i < o.lists; ++i) {
    for (auto& id : some)
      api.call("PUT", "/v2.0/ports/" + id,
               json::object{{"port", json::object{{"name", "n" + std::to_string(i)}}}});
    auto t = Clock::now();
    api.call("GET", "/v2.0/ports?network_id=" + network);
    churned.push_back(ms_since(t));
  }
  std::printf("list %zu ports, 10 changed before each: p50 %.1f ms, p95 %.1f ms\n", count,
              percentile(churned, 0.5), percentile(churned, 0.95));
  return 0;
}
