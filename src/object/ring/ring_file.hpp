// A ring file that follows its changes on disk: operators push new rings after a rebalance and
// every storage server and proxy picks them up without a restart.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "object/ring/ring.hpp"

namespace nubo::object {

class RingFile {
 public:
  explicit RingFile(std::string path,
                    std::chrono::milliseconds check_every = std::chrono::milliseconds(1000))
      : path_(std::move(path)), check_every_(check_every) {}
  // The ring as of the file's last change (re-read when its mtime or size changed, checked at most
  // once per check_every); nullptr while no valid file exists. A file that fails to load keeps the
  // previous ring in use.
  std::shared_ptr<const Ring> get();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds check_every_;
  std::mutex mutex_;
  std::shared_ptr<const Ring> ring_;
  std::chrono::steady_clock::time_point checked_{};
  std::int64_t mtime_ns_ = -1, size_ = -1;
};

}  // namespace nubo::object
