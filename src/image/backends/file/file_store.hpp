// The `file` image store: one file per image under a directory, written to <id>.part, fsynced and
// renamed to <id> on commit, so that a crash never leaves a partial object under the final name.
#pragma once

#include <string>

#include "image/backends/store.hpp"

namespace nubo::image {

class FileStore : public ImageStore {
 public:
  FileStore(std::string id, std::string directory);
  std::string id() const override { return id_; }
  std::unique_ptr<ImageWriter> open_writer(const std::string& image_id) override;
  std::unique_ptr<ImageReader> open_reader(const std::string& location,
                                           std::uint64_t offset) override;
  std::int64_t size(const std::string& location) override;
  void remove(const std::string& location) override;
  void recover(const std::function<bool(const std::string& location)>& keep) override;
  const std::string& directory() const { return directory_; }

 private:
  // The file behind a location of this store; throws for any other location.
  std::string path_of(const std::string& location) const;
  std::string id_;
  std::string directory_;
};

}  // namespace nubo::image
