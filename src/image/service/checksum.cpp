#include "image/service/checksum.hpp"

#include <openssl/evp.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace nubo::image {

namespace {

// Bytes a lane may have queued: bounds memory whatever the upload size.
constexpr size_t kLaneBytes = 8 * 1024 * 1024;

std::string final_hex(EVP_MD_CTX* ctx) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, out, &n) != 1) throw std::runtime_error("digest final failed");
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    hex += digits[out[i] >> 4];
    hex += digits[out[i] & 15];
  }
  return hex;
}

}  // namespace

// Each consumer runs on its own thread (a lane) fed with shared copies of the chunks, so that md5,
// sha512 and the store's write proceed in parallel with each other and with the socket: doing all
// three in the receiving thread would cap an upload near 160 MB/s on this class of machine.
struct DataHasher::Impl {
  struct Lane {
    std::function<void(std::string_view)> consume;
    std::deque<std::shared_ptr<const std::string>> queue;
    size_t bytes = 0;
    std::exception_ptr error;
    std::thread thread;
  };
  // Chunk buffers are recycled: large allocations are mmap'd (main() lowers the threshold), and
  // faulting in and clearing fresh pages for every chunk cost more CPU than the copy itself.
  std::mutex pool_mu;
  std::vector<std::unique_ptr<std::string>> pool;
  std::mutex mu;
  std::condition_variable work, space;
  bool closing = false, cancelled = false, joined = false;
  EVP_MD_CTX* ctx[2] = {EVP_MD_CTX_new(), EVP_MD_CTX_new()};
  std::vector<Lane> lanes;

  explicit Impl(std::function<void(std::string_view)> sink) {
    const EVP_MD* mds[2] = {EVP_md5(), EVP_sha512()};
    for (int i = 0; i < 2; ++i)
      if (!ctx[i] || EVP_DigestInit_ex(ctx[i], mds[i], nullptr) != 1)
        throw std::runtime_error("cannot initialise md5/sha512 digests");
    lanes.resize(sink ? 3 : 2);
    for (int i = 0; i < 2; ++i)
      lanes[i].consume = [c = ctx[i]](std::string_view d) {
        if (EVP_DigestUpdate(c, d.data(), d.size()) != 1)
          throw std::runtime_error("digest update failed");
      };
    if (sink) lanes[2].consume = std::move(sink);
    for (auto& lane : lanes) lane.thread = std::thread([this, &lane] { run(lane); });
  }

  ~Impl() {
    stop(true);
    for (auto* c : ctx) EVP_MD_CTX_free(c);
  }

  void run(Lane& lane) {
    for (;;) {
      std::shared_ptr<const std::string> chunk;
      {
        std::unique_lock lock(mu);
        work.wait(lock, [&] { return !lane.queue.empty() || closing; });
        if (cancelled || lane.queue.empty()) return;
        chunk = lane.queue.front();
      }
      std::exception_ptr error;
      try {
        lane.consume(*chunk);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(mu);
        lane.queue.pop_front();
        lane.bytes -= chunk->size();
        if (error && !lane.error) lane.error = error;
        if (error) {
          // A failed lane consumes nothing more: drop its queue so the producer never waits on it.
          for (auto& c : lane.queue) lane.bytes -= c->size();
          lane.queue.clear();
        }
      }
      space.notify_all();
      if (error) return;
    }
  }

  void rethrow_locked() {
    for (auto& lane : lanes)
      if (lane.error) std::rethrow_exception(lane.error);
  }

  std::shared_ptr<const std::string> make_chunk(std::string_view data) {
    std::unique_ptr<std::string> buf;
    {
      std::lock_guard lock(pool_mu);
      if (!pool.empty()) {
        buf = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (!buf) buf = std::make_unique<std::string>();
    buf->assign(data);
    return std::shared_ptr<const std::string>(buf.release(), [this](const std::string* p) {
      std::unique_ptr<std::string> back(const_cast<std::string*>(p));
      std::lock_guard lock(pool_mu);
      if (pool.size() < 16) pool.push_back(std::move(back));
    });
  }

  void push(std::string_view data) {
    auto chunk = make_chunk(data);
    std::unique_lock lock(mu);
    space.wait(lock, [&] {
      for (auto& lane : lanes) {
        if (lane.error) return true;
        if (lane.bytes > 0 && lane.bytes + chunk->size() > kLaneBytes) return false;
      }
      return true;
    });
    rethrow_locked();
    for (auto& lane : lanes) {
      lane.queue.push_back(chunk);
      lane.bytes += chunk->size();
    }
    lock.unlock();
    work.notify_all();
  }

  void stop(bool cancel) noexcept {
    {
      std::lock_guard lock(mu);
      if (joined) return;
      closing = true;
      cancelled = cancelled || cancel;
    }
    work.notify_all();
    space.notify_all();
    for (auto& lane : lanes)
      if (lane.thread.joinable()) lane.thread.join();
    joined = true;
  }
};

DataHasher::DataHasher(std::function<void(std::string_view)> sink)
    : impl_(std::make_unique<Impl>(std::move(sink))) {}

DataHasher::~DataHasher() = default;

void DataHasher::update(std::string_view chunk) {
  if (!chunk.empty()) impl_->push(chunk);
}

void DataHasher::finish(std::string& md5_hex, std::string& sha512_hex) {
  impl_->stop(false);
  impl_->rethrow_locked();
  md5_hex = final_hex(impl_->ctx[0]);
  sha512_hex = final_hex(impl_->ctx[1]);
}

void DataHasher::cancel() noexcept { impl_->stop(true); }

}  // namespace nubo::image
