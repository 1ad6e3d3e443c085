#include "object/ring/ring_file.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace nubo::object {

std::shared_ptr<const Ring> RingFile::get() {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (ring_ && now - checked_ < check_every_) return ring_;
  checked_ = now;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return ring_;
  auto mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (ring_ && mtime == mtime_ns_ && st.st_size == size_) return ring_;
  try {
    auto ring = std::make_shared<const Ring>(Ring::load(path_));
    if (ring_) spdlog::info("object: reloaded {}", path_);
    ring_ = std::move(ring);
    mtime_ns_ = mtime;
    size_ = st.st_size;
  } catch (const std::exception& e) {
    spdlog::warn("object: {} not (re)loaded: {}", path_, e.what());
  }
  return ring_;
}

}  // namespace nubo::object
