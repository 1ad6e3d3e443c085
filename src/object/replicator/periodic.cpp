#include "object/replicator/periodic.hpp"

#include <spdlog/spdlog.h>

namespace nubo::object {

Periodic::Periodic(std::string name, std::chrono::milliseconds interval, std::function<void()> pass)
    : name_(std::move(name)), interval_(interval), pass_(std::move(pass)) {}

Periodic::~Periodic() { stop(); }

void Periodic::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    while (!stopping_) {
      try {
        pass_();
      } catch (const std::exception& e) {
        spdlog::error("{}: pass failed: {}", name_, e.what());
      }
      sleep(interval_);
    }
  });
}

void Periodic::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Periodic::sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stopping_.load(); });
}

}  // namespace nubo::object
