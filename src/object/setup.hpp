// Wiring object storage from configuration: the proxy's and the storage server's settings, and
// the rings an all-in-one cloud starts with.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"
#include "common/runtime.hpp"
#include "common/service.hpp"
#include "object/proxy/proxy.hpp"
#include "object/server/storage_server.hpp"

namespace nubo::object {

// [object] port (8080), public_url, rings, hash_path_prefix/suffix, operator_roles...
// hash_suffix: the cluster's secret when [object] hash_path_suffix is not set.
ProxySettings proxy_settings_from_config(const Config& config, const std::string& state_dir,
                                         const std::string& hash_suffix);
// [object_server] port (6200), bind_host, devices, device_names, and the self-repair loops:
// replicator_interval, updater_interval, auditor_interval (seconds, 30), auditor_files_per_second
// (20), reclaim_age (seconds, 7 days), replication_timeout (10), account_update_interval (1: how
// soon containers' changed totals reach their accounts); the rings from [object] rings.
StorageSettings storage_settings_from_config(const Config& config, const std::string& state_dir,
                                             const std::string& hash_suffix);
// The catalog's object-store URL: http://host:8080/v1/AUTH_%(project_id)s.
std::string public_url(const Config& config);
// Rings for this one host when none exist: every device named in [object_server] device_names
// (d1), [object] replicas copies (1, at most one per device), [object] part_power (10). The
// devices' directories are made too. Operators with several hosts build rings with `nubo ring`.
void ensure_local_rings(const Config& config, const std::string& state_dir);
// This process's storage server reached in-process by this process's proxy and daemons: requests
// to its ring address skip the socket (the same pipeline answers). Serves while the handle lives.
std::shared_ptr<void> serve_storage_locally(const StorageSettings& settings,
                                            std::shared_ptr<Pipeline> pipeline, Runtime& runtime,
                                            const ServerOptions& options);

}  // namespace nubo::object
