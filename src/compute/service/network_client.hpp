// What compute asks of the network service (Nova's neutron API module): the networks and
// security groups a server may use, the ports made for it at boot (bound to its host, removed
// with it), and what its addresses are. A call is made as the caller (what they may see) or with
// the compute service's own rights (the ports it makes for servers: binding is an admin's
// attribute). Collections are Neutron's plural names: networks, subnets, ports, floatingips,
// security-groups.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/auth.hpp"
#include "common/json.hpp"

namespace nubo::compute {

// Neutron's list filters; a repeated key matches any of its values.
using NetworkFilters = std::vector<std::pair<std::string, std::string>>;

class NetworkClient {
 public:
  virtual ~NetworkClient() = default;
  // `as` null: the compute service's own rights. Errors are the network service's (ApiError with
  // its status and message).
  virtual std::vector<json::object> list(const AuthContext* as, const std::string& collection,
                                         const NetworkFilters& filters) = 0;
  virtual std::optional<json::object> show(const AuthContext* as, const std::string& collection,
                                           const std::string& id) = 0;
  virtual json::object create(const std::string& collection, const json::object& body) = 0;
  virtual json::object update(const std::string& collection, const std::string& id,
                              const json::object& body) = 0;
  // A resource's action (PUT <collection>/<id>/<action>: a router's add_router_interface).
  virtual json::object action(const std::string& collection, const std::string& id,
                              const std::string& action, const json::object& body) = 0;
  // Removing what is already gone succeeds.
  virtual void remove(const std::string& collection, const std::string& id) = 0;
};

}  // namespace nubo::compute
