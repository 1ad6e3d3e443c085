// Compute API load against a running cloud (the fake driver): boot → ACTIVE latency at N
// concurrent requests, sustained boot+delete cycles, and server listing at scale.
// Usage: compute_bench --compute URL --identity URL --password P --image ID
//                      [--concurrency 50] [--boots 500] [--cycle-seconds 60] [--list-servers 10000]
//                      [--poll-ms 10]
// Each client polls its server's status every --poll-ms (Rally, whose published figures
// docs/performance.md quotes, polls every second; the quantisation only ever adds latency).
// The boot and cycle clients are coroutines on one event loop, each with its own keep-alive
// connection: the load generator shares this machine's two cores with the cloud, and a thread per
// client with libcurl cost as much CPU per poll as the cloud's answer to it.
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Options {
  std::string compute, identity, password = "password", image, flavor = "1";
  int concurrency = 50, boots = 500, cycle_seconds = 60, list_servers = 10000, poll_ms = 10;
};

// The create request both clients send.
std::string boot_request(const Options& o, const std::string& name, int count) {
  return json::serialize(json::object{{"server", json::object{{"name", name},
                                                              {"flavorRef", o.flavor},
                                                              {"imageRef", o.image},
                                                              {"min_count", count},
                                                              {"max_count", count}}}});
}

// The new server's id from the create's answer; empty (and said) when it failed.
std::string created_id(int status, const std::string& body) {
  if (status != 202) {
    std::fprintf(stderr, "boot: %d %s\n", status, body.substr(0, 300).c_str());
    return {};
  }
  return std::string(json::parse(body).as_object().at("server").as_object().at("id").as_string());
}

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
  std::string boot(const std::string& name, int count) {
    auto r = call("POST", "/servers", boot_request(o, name, count));
    return created_id(r.status, r.body);
  }
};

// One client of the event-loop load: a keep-alive connection to the compute API.
struct AsyncApi {
  const Options& o;
  const std::string& token;
  tcp::endpoint endpoint;
  std::string host, prefix;  // Host header; the URL's path (".../v2.1")
  tcp::socket socket;
  beast::flat_buffer buffer;
  asio::steady_timer timer;

  AsyncApi(asio::io_context& io, const Options& opts, const std::string& t)
      : o(opts), token(t), socket(io), timer(io) {
    // http://HOST:PORT/PREFIX
    auto rest = o.compute.substr(o.compute.find("//") + 2);
    auto slash = rest.find('/');
    host = rest.substr(0, slash);
    prefix = slash == std::string::npos ? "" : rest.substr(slash);
    auto colon = host.rfind(':');
    endpoint = tcp::endpoint(asio::ip::make_address(host.substr(0, colon)),
                             static_cast<unsigned short>(std::stoi(host.substr(colon + 1))));
  }

  struct Answer {
    int status = 0;
    std::string body;
  };

  // One request; a transport failure answers status 0 (and the next request reconnects).
  asio::awaitable<Answer> call(bhttp::verb method, const std::string& path, std::string body = {}) {
    try {
      if (!socket.is_open()) {
        buffer.clear();
        co_await socket.async_connect(endpoint, asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
      }
      bhttp::request<bhttp::string_body> req{method, prefix + path, 11};
      req.set(bhttp::field::host, host);
      req.set("X-Auth-Token", token);
      if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
      req.body() = std::move(body);
      req.keep_alive(true);
      req.prepare_payload();
      co_await bhttp::async_write(socket, req, asio::use_awaitable);
      bhttp::response<bhttp::string_body> res;
      co_await bhttp::async_read(socket, buffer, res, asio::use_awaitable);
      if (!res.keep_alive()) socket.close();
      co_return Answer{static_cast<int>(res.result_int()), std::move(res.body())};
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s %s: %s\n", std::string(bhttp::to_string(method)).c_str(),
                   path.c_str(), e.what());
      boost::system::error_code ignored;
      socket.close(ignored);
      co_return Answer{};
    }
  }

  asio::awaitable<std::string> boot(const std::string& name) {
    auto r = co_await call(bhttp::verb::post, "/servers", boot_request(o, name, 1));
    co_return created_id(r.status, r.body);
  }

  // Polls until the server shows the status (or is gone, for "GONE"); false on ERROR or after
  // a minute (a server stuck on its way counts as an error, it does not hang the run).
  asio::awaitable<bool> wait(const std::string& id, const std::string& status) {
    auto give_up = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < give_up) {
      auto r = co_await call(bhttp::verb::get, "/servers/" + id);
      if (status == "GONE" && r.status == 404) co_return true;
      if (r.status == 200) {
        auto s = json::parse(r.body).as_object().at("server").as_object().at("status").as_string();
        if (s == status) co_return true;
        if (s == "ERROR") co_return false;
      }
      timer.expires_after(std::chrono::milliseconds(o.poll_ms));
      co_await timer.async_wait(asio::use_awaitable);
    }
    std::fprintf(stderr, "server %s did not reach %s within 60 s\n", id.c_str(), status.c_str());
    co_return false;
  }
};

// Runs `concurrency` clients, each the coroutine user(api), on one thread until all return.
template <class User>
void run_clients(const Options& o, const std::string& token, User user) {
  asio::io_context io(1);
  std::vector<std::unique_ptr<AsyncApi>> apis;
  for (int w = 0; w < o.concurrency; ++w) {
    apis.push_back(std::make_unique<AsyncApi>(io, o, token));
    asio::co_spawn(io, user(*apis.back()), asio::detached);
  }
  io.run();
}

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
  int next = 0, errors = 0;
  std::vector<double> latencies;
  std::vector<std::string> ids;
  auto start = Clock::now();
  run_clients(o, token, [&](AsyncApi& api) -> asio::awaitable<void> {
    while (next++ < o.boots) {
      auto t = Clock::now();
      auto id = co_await api.boot("bench-boot");
      bool ok = !id.empty() && co_await api.wait(id, "ACTIVE");
      if (ok)
        latencies.push_back(ms_since(t));
      else
        ++errors;
      if (!id.empty()) ids.push_back(id);
    }
  });
  auto elapsed = ms_since(start) / 1000.0;
  std::printf(
      "boot->ACTIVE at %d concurrent: %zu servers, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f "
      "ms, %.0f boots/s, %d errors\n",
      o.concurrency, latencies.size(), percentile(latencies, 50), percentile(latencies, 95),
      percentile(latencies, 99), percentile(latencies, 100),
      static_cast<double>(latencies.size()) / elapsed, errors);
  // Clean up so the next scenario starts from an empty cloud.
  size_t i = 0;
  run_clients(o, token, [&](AsyncApi& api) -> asio::awaitable<void> {
    while (i < ids.size()) co_await api.call(bhttp::verb::delete_, "/servers/" + ids[i++]);
  });
}

void cycles(const Options& o, const std::string& token) {
  long done = 0, errors = 0, last = 0;
  bool stop = false;
  std::vector<double> per_second;
  auto start = Clock::now();
  asio::io_context* loop = nullptr;
  run_clients(o, token, [&](AsyncApi& api) -> asio::awaitable<void> {
    if (!loop) {  // the first client also keeps the clock: one tick per second
      loop = &static_cast<asio::io_context&>(api.socket.get_executor().context());
      asio::co_spawn(
          *loop,
          [&]() -> asio::awaitable<void> {
            asio::steady_timer tick(*loop);
            for (int s = 0; s < o.cycle_seconds; ++s) {
              tick.expires_at(start + std::chrono::seconds(s + 1));
              co_await tick.async_wait(asio::use_awaitable);
              per_second.push_back(static_cast<double>(done - last));
              last = done;
            }
            stop = true;
          },
          asio::detached);
    }
    while (!stop) {
      auto id = co_await api.boot("bench-cycle");
      if (id.empty() || !co_await api.wait(id, "ACTIVE")) {
        ++errors;
        if (!id.empty()) co_await api.call(bhttp::verb::delete_, "/servers/" + id);
        continue;
      }
      if ((co_await api.call(bhttp::verb::delete_, "/servers/" + id)).status != 204 ||
          !co_await api.wait(id, "GONE")) {
        ++errors;
        continue;
      }
      ++done;
    }
  });
  auto elapsed = ms_since(start) / 1000.0;
  std::printf(
      "boot+delete cycles (%d workers, %d s): %.0f cycles/s sustained (min second %.0f, median "
      "%.0f), %ld errors\n",
      o.concurrency, o.cycle_seconds, static_cast<double>(done) / elapsed,
      *std::min_element(per_second.begin(), per_second.end()), percentile(per_second, 50), errors);
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
