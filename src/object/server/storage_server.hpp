// `nubo object-server`: one storage host's account, container and object servers behind one
// port, speaking Swift's backend protocol under a prefix per kind:
//   /object/<device>/<partition>/<account>/<container>/<object>
//   /container/<device>/<partition>/<account>/<container>[/<object>]   (rows from object servers)
//   /account/<device>/<partition>/<account>[/<container>]              (rows from containers)
// Writes carry the proxy's X-Timestamp; the newest timestamp wins everywhere.
#pragma once

#include <memory>
#include <string>

#include "common/service.hpp"

namespace nubo::object {

struct StorageSettings {
  std::string devices;                             // the directory holding one directory per device
  std::string hash_prefix, hash_suffix;            // the cluster's secret for hash_path()
  std::chrono::milliseconds update_timeout{1000};  // container and account updates
};

class StorageServer;
std::shared_ptr<StorageServer> make_storage_server(StorageSettings settings);
ServiceSpec make_storage_spec(std::shared_ptr<StorageServer> server);

}  // namespace nubo::object
