// The network agent of one host (DESIGN §1, §7): asks the network service for the host's desired
// state over the bus when told it changed, has its dataplane apply it, resyncs with the kernel on
// start and periodically, and reports which VM ports are plugged. It holds no database.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/bus.hpp"
#include "network/dataplane/dataplane.hpp"

namespace nubo::network {

struct AgentSettings {
  std::string host = "localhost";
  bool network_node = true;                 // serves DHCP and routers (one host: yes)
  std::chrono::milliseconds tick{1000};     // looks for VM devices that appeared
  std::chrono::milliseconds resync{30000};  // full comparison with the kernel
};

struct AgentStats {
  std::uint64_t applies = 0, full_applies = 0, repairs = 0;
  std::chrono::microseconds last_apply{0}, last_full_apply{0};
};

class NetworkAgent {
 public:
  NetworkAgent(std::shared_ptr<dataplane::Dataplane> dataplane, std::shared_ptr<Bus> bus,
               AgentSettings settings);
  ~NetworkAgent();
  // Subscribes to `network-agent.<host>`, registers with the service, and starts the loop (whose
  // first turn is a full resync).
  void start();
  void stop();
  AgentStats stats() const;
  // Asks for a full resync at the next turn.
  void resync();

 private:
  void loop();
  void turn(bool fetch, bool full);

  std::shared_ptr<dataplane::Dataplane> dataplane_;
  std::shared_ptr<Bus> bus_;
  AgentSettings settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool dirty_ = true, full_ = true, stopping_ = false;
  AgentStats stats_;
  std::optional<dataplane::HostState> state_;
  std::set<std::string> reported_up_, reported_down_;
  std::thread thread_;
};

// The service's side: answers agents on the `network` topic (get_host_state, update_port_status,
// register_agent) and tells registered agents when anything changed.
class NetworkService;
void serve_agents(const std::shared_ptr<NetworkService>& service, const std::shared_ptr<Bus>& bus);

}  // namespace nubo::network
