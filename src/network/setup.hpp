// Wiring the network service from configuration: settings, database, and the external network
// an all-in-one cloud starts with.
#pragma once

#include <memory>
#include <string>

#include "common/bus.hpp"
#include "common/config.hpp"
#include "network/agent/agent.hpp"
#include "network/dataplane/dataplane.hpp"
#include "network/service/network_service.hpp"

namespace nubo::network {

NetworkSettings settings_from_config(const Config& config);
std::shared_ptr<NetworkService> open_network_service(const Config& config,
                                                     const std::string& state_dir);
// Creates the shared external network ([network] public_network_name, public_network_cidr) owned
// by the admin project, unless an external network exists. DevStack's "public" in spirit.
void ensure_public_network(NetworkService& service, const Config& config,
                           const std::string& admin_project_id);

// The dataplane named by [network] dataplane (linux, the default; fake for API-only tests).
std::shared_ptr<dataplane::Dataplane> make_dataplane(const Config& config,
                                                     const std::string& state_dir,
                                                     dataplane::MetadataForwarder metadata);
// This host's network agent on `bus`, started ([network] agent = false: none).
std::unique_ptr<NetworkAgent> start_network_agent(const Config& config,
                                                  const std::string& state_dir,
                                                  const std::shared_ptr<Bus>& bus,
                                                  dataplane::MetadataForwarder metadata);

}  // namespace nubo::network
