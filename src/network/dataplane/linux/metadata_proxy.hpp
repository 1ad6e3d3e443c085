// The metadata proxy inside router and DHCP namespaces (Neutron's ns-metadata-proxy): a listening
// socket made inside each namespace, served by this process. Each connection is matched to its
// guest by the namespace and the source address, then handed to the forwarder, which signs the
// instance's identity for the compute metadata service.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "network/dataplane/dataplane.hpp"

namespace nubo::network::dataplane::kernel {

struct Guest {
  std::string instance_id, project_id;
};

class MetadataProxy {
 public:
  // Who sent a connection: by namespace and source address; nullopt for strangers.
  using Lookup =
      std::function<std::optional<Guest>(const std::string& netns, const std::string& source)>;
  MetadataProxy(MetadataForwarder forward, Lookup lookup);
  ~MetadataProxy();
  // Listens on address:port inside the named namespace, unless already listening there.
  void ensure(const std::string& netns, const std::string& address, int port);
  // Stops listening in namespaces not in `keep`.
  void retain(const std::set<std::string>& keep);
  void stop();

  struct Listener;

 private:
  MetadataForwarder forward_;
  Lookup lookup_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Listener>> listeners_;
  std::shared_ptr<std::atomic<int>> active_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace nubo::network::dataplane::kernel
