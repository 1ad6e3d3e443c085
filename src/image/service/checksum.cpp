#include "image/service/checksum.hpp"

#include <openssl/evp.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace nubo::image {

namespace {

// Bytes a lane may have queued: bounds memory whatever the upload size.
constexpr size_t kLaneBytes = 4 * 1024 * 1024;

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

// Each digest runs on its own thread (a lane) fed with shared copies of the chunks, so that md5,
// sha512 and the store's write proceed in parallel: hashing both in the writer's thread would cap
// an upload near 160 MB/s on this class of machine.
struct DataHasher::Impl {
  struct Lane {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::deque<std::shared_ptr<const std::string>> queue;
    size_t bytes = 0;
    bool failed = false;
    std::thread thread;
  };
  std::mutex mu;
  std::condition_variable work, space;
  bool closing = false, cancelled = false;
  Lane lanes[2];

  Impl() {
    const EVP_MD* mds[2] = {EVP_md5(), EVP_sha512()};
    for (int i = 0; i < 2; ++i)
      if (!lanes[i].ctx || EVP_DigestInit_ex(lanes[i].ctx, mds[i], nullptr) != 1)
        throw std::runtime_error("cannot initialise md5/sha512 digests");
    for (auto& lane : lanes) lane.thread = std::thread([this, &lane] { run(lane); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      closing = cancelled = true;
    }
    work.notify_all();
    space.notify_all();
    for (auto& lane : lanes) {
      if (lane.thread.joinable()) lane.thread.join();
      EVP_MD_CTX_free(lane.ctx);
    }
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
      bool ok = EVP_DigestUpdate(lane.ctx, chunk->data(), chunk->size()) == 1;
      {
        std::lock_guard lock(mu);
        lane.queue.pop_front();
        lane.bytes -= chunk->size();
        lane.failed = lane.failed || !ok;
      }
      space.notify_all();
    }
  }

  void push(std::string_view data) {
    auto chunk = std::make_shared<const std::string>(data);
    std::unique_lock lock(mu);
    space.wait(lock, [&] {
      for (auto& lane : lanes)
        if (lane.bytes > 0 && lane.bytes + chunk->size() > kLaneBytes) return false;
      return true;
    });
    for (auto& lane : lanes) {
      lane.queue.push_back(chunk);
      lane.bytes += chunk->size();
    }
    lock.unlock();
    work.notify_all();
  }

  void drain() {
    {
      std::lock_guard lock(mu);
      closing = true;
    }
    work.notify_all();
    for (auto& lane : lanes) lane.thread.join();
    for (auto& lane : lanes)
      if (lane.failed) throw std::runtime_error("digest update failed");
  }
};

DataHasher::DataHasher() : impl_(std::make_unique<Impl>()) {}

DataHasher::~DataHasher() = default;

void DataHasher::update(std::string_view chunk) {
  if (!chunk.empty()) impl_->push(chunk);
}

void DataHasher::finish(std::string& md5_hex, std::string& sha512_hex) {
  impl_->drain();
  md5_hex = final_hex(impl_->lanes[0].ctx);
  sha512_hex = final_hex(impl_->lanes[1].ctx);
}

}  // namespace nubo::image
