// The message bus between the compute control plane and its agents (DESIGN.md §7): casts for
// work, calls with timeouts for questions, one topic per host. `InProcessBus` serves the
// all-in-one; an AMQP implementation plugs in behind the same interface for multi-node.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/json.hpp"

namespace nubo {

// Messages are versioned JSON: a method name, a body, and the sender's message version.
struct BusMessage {
  std::string topic, method;
  json::object body;
  int version = 1;
};

// A handler's answer to a call (ignored for casts).
using BusHandler = std::function<json::value(const BusMessage&)>;

class Bus {
 public:
  virtual ~Bus() = default;
  // Delivery order: `ordered` topics (an agent's) get their messages one at a time in the order
  // sent; others (the conductor's) may be handled concurrently.
  virtual void subscribe(const std::string& topic, BusHandler handler, bool ordered) = 0;
  virtual void unsubscribe(const std::string& topic) = 0;
  // Fire and forget. A cast to a topic nobody serves is dropped (and logged), as with AMQP
  // when the queue does not exist.
  virtual void cast(const std::string& topic, const std::string& method, json::object body) = 0;
  // Waits for the handler's answer; throws BusTimeout after `timeout`, or the handler's error.
  virtual json::value call(const std::string& topic, const std::string& method, json::object body,
                           std::chrono::milliseconds timeout) = 0;
  virtual void stop() = 0;
};

struct BusTimeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// In-process queues served by a fixed pool of threads.
std::shared_ptr<Bus> make_in_process_bus(unsigned threads);

}  // namespace nubo
