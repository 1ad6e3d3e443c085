// Compute's network calls when the network service runs in this process: made directly, under
// the network service's own policy (as LocalImageClient does for images: an HTTP call to ourselves
// would queue for the worker pool the calling request holds).
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/policy.hpp"
#include "compute/service/network_client.hpp"
#include "network/service/network_service.hpp"

namespace nubo {

class LocalNetworkClient : public compute::NetworkClient {
 public:
  LocalNetworkClient(std::shared_ptr<network::NetworkService> network,
                     std::shared_ptr<Policy> policy)
      : network_(std::move(network)), policy_(std::move(policy)) {
    service_.roles = {"admin", "service"};
    service_.is_admin_project = true;
  }

  std::vector<json::object> list(const AuthContext* as, const std::string& collection,
                                 const compute::NetworkFilters& filters) override {
    network::ListParams params;
    params.filters = filters;
    return network_->list(caller(as), kind(collection), params).items;
  }
  std::optional<json::object> show(const AuthContext* as, const std::string& collection,
                                   const std::string& id) override {
    try {
      return network_->show(caller(as), kind(collection), id);
    } catch (const ApiError& e) {
      if (e.status() == 404) return std::nullopt;
      throw;
    }
  }
  json::object create(const std::string& collection, const json::object& body) override {
    return network_->create(caller(nullptr), kind(collection), body);
  }
  json::object update(const std::string& collection, const std::string& id,
                      const json::object& body) override {
    return network_->update(caller(nullptr), kind(collection), id, body);
  }
  json::object action(const std::string& collection, const std::string& id,
                      const std::string& action, const json::object& body) override {
    if (collection == "routers" && action == "add_router_interface")
      return network_->add_router_interface(caller(nullptr), id, body);
    if (collection == "routers" && action == "remove_router_interface")
      return network_->remove_router_interface(caller(nullptr), id, body);
    throw std::invalid_argument("no network action " + collection + "/" + action);
  }
  void remove(const std::string& collection, const std::string& id) override {
    try {
      network_->remove(caller(nullptr), kind(collection), id);
    } catch (const ApiError& e) {
      if (e.status() != 404) throw;
    }
  }

 private:
  static network::Kind kind(const std::string& collection) {
    auto k = network::kind_by_plural(collection);
    if (!k) throw std::invalid_argument("no network collection " + collection);
    return *k;
  }
  // The caller under the network service's policy; null: compute's own rights.
  Caller caller(const AuthContext* as) {
    if (!as) return Caller{service_, [](const std::string&, const PolicyTarget&) { return true; }};
    return Caller{*as, [this, credentials = as->policy_credentials()](const std::string& rule,
                                                                      const PolicyTarget& target) {
                    return !policy_ || policy_->enforce(rule, credentials, target);
                  }};
  }

  std::shared_ptr<network::NetworkService> network_;
  std::shared_ptr<Policy> policy_;
  AuthContext service_;
};

}  // namespace nubo
