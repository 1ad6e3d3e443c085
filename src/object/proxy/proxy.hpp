// The object storage API (Swift v1 on port 8080): accounts, containers and objects placed by the
// rings on storage servers, writes at a majority quorum of replicas, reads from the first replica
// that has the data, Keystone tokens with keystoneauth's rules.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/service.hpp"

namespace nubo::object {

class TempAuth;

struct ProxySettings {
  std::string rings;  // directory with account.ring.json, container.ring.json, object.ring.json
  std::string hash_prefix, hash_suffix;
  std::string reseller_prefix = "AUTH_";
  std::vector<std::string> operator_roles = {"admin", "member", "swiftoperator"};
  std::string reseller_admin_role = "ResellerAdmin";
  std::chrono::milliseconds node_timeout{10000};
  std::uint64_t max_file_size = 5368709122;  // 5 GiB + 2, as Swift
  // Origins allowed on every container besides those its CORS metadata names (Swift's
  // cors_allow_origin).
  std::vector<std::string> cors_allow_origin;
  // Set: tempauth authenticates instead of the identity service (and answers /auth/...).
  std::shared_ptr<TempAuth> tempauth;
};

class Proxy;
std::shared_ptr<Proxy> make_proxy(ProxySettings settings);
ServiceSpec make_proxy_spec(std::shared_ptr<Proxy> proxy,
                            std::shared_ptr<TokenValidator> validator);

}  // namespace nubo::object
