// Hashes image data as it streams: md5 (Glance's `checksum`) and sha512 (`os_hash_value`), each on
// its own thread so that hashing overlaps the store's writes; at most a few MiB are queued.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace nubo::image {

class DataHasher {
 public:
  DataHasher();
  ~DataHasher();
  DataHasher(const DataHasher&) = delete;
  DataHasher& operator=(const DataHasher&) = delete;
  // Copies the chunk (the caller may reuse its buffer); blocks while the queues are full.
  void update(std::string_view chunk);
  // Hex digests; call once, at the end.
  void finish(std::string& md5_hex, std::string& sha512_hex);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nubo::image
