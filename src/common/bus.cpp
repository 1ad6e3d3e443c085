#include "common/bus.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace nubo {

namespace {

class InProcessBus : public Bus, public std::enable_shared_from_this<InProcessBus> {
 public:
  explicit InProcessBus(unsigned threads) {
    for (unsigned i = 0; i < std::max(threads, 1u); ++i) workers_.emplace_back([this] { work(); });
  }
  ~InProcessBus() override { stop(); }

  void subscribe(const std::string& topic, BusHandler handler, bool ordered) override {
    std::lock_guard lock(mutex_);
    auto& t = topics_[topic];
    if (!t) t = std::make_shared<Topic>();
    t->handler = std::move(handler);
    t->ordered = ordered;
  }

  void unsubscribe(const std::string& topic) override {
    std::lock_guard lock(mutex_);
    topics_.erase(topic);
  }

  void cast(const std::string& topic, const std::string& method, json::object body) override {
    deliver(BusMessage{topic, method, std::move(body)}, nullptr);
  }

  json::value call(const std::string& topic, const std::string& method, json::object body,
                   std::chrono::milliseconds timeout) override {
    auto promise = std::make_shared<std::promise<json::value>>();
    auto future = promise->get_future();
    if (!deliver(BusMessage{topic, method, std::move(body)}, promise))
      throw BusTimeout("no service listens on topic " + topic);
    if (future.wait_for(timeout) != std::future_status::ready)
      throw BusTimeout("no answer to " + method + " on " + topic + " within " +
                       std::to_string(timeout.count()) + " ms");
    return future.get();
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& w : workers_)
      if (w.joinable()) w.join();
  }

 private:
  using Reply = std::shared_ptr<std::promise<json::value>>;
  struct Pending {
    BusMessage message;
    Reply reply;
  };
  struct Topic {
    BusHandler handler;
    bool ordered = false;
    std::deque<Pending> queue;  // ordered topics only
    bool draining = false;
  };

  bool deliver(BusMessage message, Reply reply) {
    std::unique_lock lock(mutex_);
    auto it = topics_.find(message.topic);
    if (stopping_ || it == topics_.end()) {
      lock.unlock();
      spdlog::warn("bus: dropped {} to {}: nobody listens", message.method, message.topic);
      return false;
    }
    auto topic = it->second;
    if (!topic->ordered) {
      ready_tasks_.push_back(
          [topic, p = Pending{std::move(message), std::move(reply)}]() mutable { run(*topic, p); });
    } else {
      topic->queue.push_back(Pending{std::move(message), std::move(reply)});
      if (!topic->draining) {
        topic->draining = true;
        ready_tasks_.push_back([this, topic] { drain_one(topic); });
      }
    }
    lock.unlock();
    ready_.notify_one();
    return true;
  }

  void drain_one(const std::shared_ptr<Topic>& topic) {
    Pending p;
    {
      std::lock_guard lock(mutex_);
      p = std::move(topic->queue.front());
      topic->queue.pop_front();
    }
    run(*topic, p);
    std::lock_guard lock(mutex_);
    if (topic->queue.empty())
      topic->draining = false;
    else
      ready_tasks_.push_back([this, topic] { drain_one(topic); });
    ready_.notify_one();
  }

  static void run(Topic& topic, Pending& p) {
    try {
      auto answer = topic.handler(p.message);
      if (p.reply) p.reply->set_value(std::move(answer));
    } catch (const std::exception& e) {
      if (p.reply)
        p.reply->set_exception(std::current_exception());
      else
        spdlog::error("bus: {} on {} failed: {}", p.message.method, p.message.topic, e.what());
    }
  }

  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !ready_tasks_.empty(); });
        if (ready_tasks_.empty()) return;  // stopping, and nothing left to hand over
        task = std::move(ready_tasks_.front());
        ready_tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> ready_tasks_;
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

}  // namespace

std::shared_ptr<Bus> make_in_process_bus(unsigned threads) {
  return std::make_shared<InProcessBus>(threads);
}

}  // namespace nubo
