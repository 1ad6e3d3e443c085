#include "network/agent/agent.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "network/service/network_service.hpp"

namespace nubo::network {

namespace {
constexpr auto kCallTimeout = std::chrono::seconds(30);

json::array to_array(const std::vector<std::string>& items) {
  json::array out;
  for (auto& i : items) out.emplace_back(i);
  return out;
}
std::vector<std::string> strings_of(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (auto* v = find(o, key); v && v->is_array())
    for (auto& i : v->as_array())
      if (i.is_string()) out.emplace_back(i.as_string());
  return out;
}
}  // namespace

NetworkAgent::NetworkAgent(std::shared_ptr<dataplane::Dataplane> dataplane,
                           std::shared_ptr<Bus> bus, AgentSettings settings)
    : dataplane_(std::move(dataplane)), bus_(std::move(bus)), settings_(std::move(settings)) {}

NetworkAgent::~NetworkAgent() { stop(); }

void NetworkAgent::start() {
  bus_->subscribe(
      "network-agent." + settings_.host,
      [this](const BusMessage& m) -> json::value {
        if (m.method == "sync") {
          std::lock_guard lock(mutex_);
          dirty_ = true;
          wake_.notify_one();
        } else if (m.method == "resync") {
          resync();
        }
        return nullptr;
      },
      true);
  bus_->call("network", "register_agent",
             json::object{{"host", settings_.host}, {"network_node", settings_.network_node}},
             kCallTimeout);
  thread_ = std::thread([this] { loop(); });
}

void NetworkAgent::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  bus_->unsubscribe("network-agent." + settings_.host);
  dataplane_->stop();
}

AgentStats NetworkAgent::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void NetworkAgent::resync() {
  std::lock_guard lock(mutex_);
  full_ = true;
  wake_.notify_one();
}

void NetworkAgent::loop() {
  auto next_full = std::chrono::steady_clock::now();
  int failures = 0;  // in a row: waits grow to a minute (a host without root fails every turn)
  for (;;) {
    bool fetch, full;
    {
      std::unique_lock lock(mutex_);
      if (failures == 0)
        wake_.wait_for(lock, settings_.tick, [&] { return stopping_ || dirty_ || full_; });
      else
        wake_.wait_for(lock, std::chrono::seconds(1 << std::min(failures - 1, 6)),
                       [&] { return stopping_; });
      if (stopping_) return;
      if (std::chrono::steady_clock::now() >= next_full) full_ = true;
      fetch = dirty_ || full_ || !state_;
      full = full_;
      dirty_ = full_ = false;
    }
    try {
      turn(fetch, full);
      failures = 0;
    } catch (const std::exception& e) {
      ++failures;
      spdlog::error("network agent {}: {} (next attempt in {} s)", settings_.host, e.what(),
                    1 << std::min(failures - 1, 6));
      std::lock_guard lock(mutex_);
      dirty_ = full_ = true;  // fetch again and compare everything at the next turn
    }
    if (full) next_full = std::chrono::steady_clock::now() + settings_.resync;
  }
}

void NetworkAgent::turn(bool fetch, bool full) {
  if (fetch) {
    auto reply =
        bus_->call("network", "get_host_state",
                   json::object{{"host", settings_.host}, {"network_node", settings_.network_node}},
                   kCallTimeout);
    state_ = dataplane::parse_host_state(reply.as_object());
    spdlog::debug("network agent {}: state fetched", settings_.host);
  }
  auto started = std::chrono::steady_clock::now();
  auto result = dataplane_->apply(*state_, full);
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  {
    std::lock_guard lock(mutex_);
    ++stats_.applies;
    stats_.last_apply = took;
    stats_.repairs += static_cast<std::uint64_t>(result.repairs);
    if (full) {
      ++stats_.full_applies;
      stats_.last_full_apply = took;
    }
  }
  if (full)
    spdlog::info("network agent {}: resync of {} ports took {} ms, {} repairs", settings_.host,
                 state_->ports.size(), took.count() / 1000, result.repairs);
  // Report VM ports whose state changed: plugged → ACTIVE, not (yet, or any more) → DOWN.
  std::set<std::string> plugged(result.plugged.begin(), result.plugged.end());
  std::vector<std::string> up, down;
  for (auto& p : state_->ports) {
    if (!p.is_vm()) continue;
    if (plugged.count(p.id)) {
      if (!reported_up_.count(p.id)) up.push_back(p.id);
    } else if (!reported_down_.count(p.id)) {
      down.push_back(p.id);
    }
  }
  // Ports gone from the state are forgotten (a port made again is reported again).
  std::set<std::string> present;
  for (auto& p : state_->ports) present.insert(p.id);
  for (auto* reported : {&reported_up_, &reported_down_})
    std::erase_if(*reported, [&](const std::string& id) { return !present.count(id); });
  if (up.empty() && down.empty()) return;
  bus_->call("network", "update_port_status",
             json::object{{"host", settings_.host}, {"up", to_array(up)}, {"down", to_array(down)}},
             kCallTimeout);
  for (auto& id : up) {
    reported_up_.insert(id);
    reported_down_.erase(id);
  }
  for (auto& id : down) {
    reported_down_.insert(id);
    reported_up_.erase(id);
  }
}

void serve_agents(const std::shared_ptr<NetworkService>& service, const std::shared_ptr<Bus>& bus) {
  struct Registry {
    std::mutex mutex;
    std::set<std::string> hosts;
  };
  auto registry = std::make_shared<Registry>();
  std::weak_ptr<Bus> weak_bus = bus;
  service->set_change_listener([registry, weak_bus] {
    auto b = weak_bus.lock();
    if (!b) return;
    std::lock_guard lock(registry->mutex);
    for (auto& h : registry->hosts) b->cast("network-agent." + h, "sync", {});
  });
  std::weak_ptr<NetworkService> weak_service = service;
  bus->subscribe(
      "network",
      [registry, weak_service](const BusMessage& m) -> json::value {
        auto s = weak_service.lock();
        if (!s) throw std::runtime_error("the network service has stopped");
        auto host = string_or(m.body, "host");
        if (m.method == "register_agent") {
          std::lock_guard lock(registry->mutex);
          registry->hosts.insert(host);
          s->agent_heartbeat(host, bool_or(m.body, "network_node", true));
          spdlog::info("network: agent on host {} registered", host);
          return nullptr;
        }
        if (m.method == "get_host_state") {
          s->agent_heartbeat(host, bool_or(m.body, "network_node", true));
          return s->host_state(host, bool_or(m.body, "network_node", true));
        }
        if (m.method == "update_port_status") {
          s->set_port_status(strings_of(m.body, "up"), strings_of(m.body, "down"));
          return nullptr;
        }
        throw std::runtime_error("network: unknown method " + m.method);
      },
      false);
}

}  // namespace nubo::network
