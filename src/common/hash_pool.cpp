#include "common/hash_pool.hpp"

#include <sys/resource.h>
#include <unistd.h>

namespace nubo {

HashPool::HashPool(unsigned threads, int nice) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i)
    threads_.emplace_back([this, nice] {
      // Per-thread niceness on Linux; raising it needs no privilege.
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
          if (queue_.empty()) return;
          job = std::move(queue_.front());
          queue_.pop_front();
        }
        job();
      }
    });
}

HashPool::~HashPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

}  // namespace nubo
