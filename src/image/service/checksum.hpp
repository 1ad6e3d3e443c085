// Hashes image data as it streams: md5 (Glance's `checksum`) and sha512 (`os_hash_value`), each on
// its own thread, and optionally feeds the same chunks to the store's writer on a third thread, so
// that receiving, hashing and writing overlap; at most a few MiB are queued.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace nubo::image {

class DataHasher {
 public:
  // `sink`, when set, receives every chunk in order on its own thread; the first exception it
  // throws is rethrown by the next update() or by finish().
  explicit DataHasher(std::function<void(std::string_view)> sink = {});
  ~DataHasher();
  DataHasher(const DataHasher&) = delete;
  DataHasher& operator=(const DataHasher&) = delete;
  // Copies the chunk (the caller may reuse its buffer); blocks while the queues are full.
  void update(std::string_view chunk);
  // Waits for every queued chunk, then gives the hex digests; call once, at the end.
  void finish(std::string& md5_hex, std::string& sha512_hex);
  // Drops what is queued and stops the threads; the sink is not called again afterwards.
  void cancel() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nubo::image
