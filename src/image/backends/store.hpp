// Where image data lives: an abstract store (file today, Nubo's object store later) that writes a
// new object in chunks, commits it atomically to a location, and reads it back from an offset.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nubo::image {

// The store ran out of space (Glance answers 413 for it).
class StorageFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ImageWriter {
 public:
  virtual ~ImageWriter() = default;
  virtual void write(std::string_view chunk) = 0;
  // Makes the data durable and visible; returns its location. Nothing is visible before.
  virtual std::string commit() = 0;
  // Drops whatever was written; safe to call more than once and after a failed write.
  virtual void abort() noexcept = 0;
};

class ImageReader {
 public:
  virtual ~ImageReader() = default;
  // Up to max_bytes from the current position; empty at the end.
  virtual std::string read(size_t max_bytes) = 0;
  // The open file and current position behind the reader, when there is one (the file store),
  // so that the server can send the rest with sendfile(2).
  struct FilePosition {
    int fd;
    std::uint64_t offset;
  };
  virtual std::optional<FilePosition> file_position() const { return std::nullopt; }
};

class ImageStore {
 public:
  virtual ~ImageStore() = default;
  virtual std::string id() const = 0;
  virtual std::unique_ptr<ImageWriter> open_writer(const std::string& image_id) = 0;
  virtual std::unique_ptr<ImageReader> open_reader(const std::string& location,
                                                   std::uint64_t offset = 0) = 0;
  // Size in bytes of the data at a location; -1 when it is missing.
  virtual std::int64_t size(const std::string& location) = 0;
  // Removes the data at a location; a missing object is not an error.
  virtual void remove(const std::string& location) = 0;
  // After a restart: drops partial writes, and every committed object for which keep() is false.
  virtual void recover(const std::function<bool(const std::string& location)>& keep) = 0;
};

struct StoreOptions {
  std::string id = "file";
  std::string directory;  // file backend: where objects live
};

// The store for a backend name ("file"); throws std::invalid_argument for an unknown one.
std::unique_ptr<ImageStore> make_store(const std::string& backend, const StoreOptions& options);

}  // namespace nubo::image
