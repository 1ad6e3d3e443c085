// A background loop with explicit start()/stop(): one pass, then a pause, until stopped; passes
// can pause mid-way (rate limits) and notice the stop at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace nubo::object {

class Periodic {
 public:
  Periodic(std::string name, std::chrono::milliseconds interval, std::function<void()> pass);
  ~Periodic();
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;
  void start();
  void stop();
  // Waits, returning false (early) when stop() was called.
  bool sleep(std::chrono::milliseconds d);
  bool stopping() const { return stopping_; }

 private:
  std::string name_;
  std::chrono::milliseconds interval_;
  std::function<void()> pass_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
};

}  // namespace nubo::object
