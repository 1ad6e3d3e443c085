// The store factory: backends registered by name.
#include "image/backends/store.hpp"

#include <stdexcept>

#include "image/backends/file/file_store.hpp"

namespace nubo::image {

std::unique_ptr<ImageStore> make_store(const std::string& backend, const StoreOptions& options) {
  if (backend == "file") return std::make_unique<FileStore>(options.id, options.directory);
  throw std::invalid_argument("unknown image store backend: " + backend);
}

}  // namespace nubo::image
