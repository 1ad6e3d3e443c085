// The compute service's operations. This first part: flavors (extra specs, access lists) and
// keypairs; servers, placement and the scheduler build on the same store and settings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/caller.hpp"
#include "common/db/database.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace nubo::compute {

struct ComputeSettings {
  std::string public_url = "http://127.0.0.1:8774";  // base of links; the endpoint is <url>/v2.1
  std::string default_availability_zone = "nova";
};

// Flavors as rows (the store's columns: id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap,
// rxtx_factor, is_public, disabled, description) with `extra_specs` (an object) added.
struct FlavorQuery {
  std::optional<std::int64_t> min_ram, min_disk;
  std::optional<bool> is_public;  // nullopt: admins see all, others public + their own access
  std::string sort_key = "flavorid", sort_dir = "asc", marker;
  std::optional<long> limit;
};

struct KeypairRequest {
  std::string name, type = "ssh", user_id;  // user_id: admins may create for another user
  std::optional<std::string> public_key;    // absent: generate one
};

class ComputeService {
 public:
  ComputeService(std::unique_ptr<db::Database> database, ComputeSettings settings,
                 std::shared_ptr<Clock> clock = std::make_shared<Clock>());
  ~ComputeService();
  const ComputeSettings& settings() const { return settings_; }
  db::Database& database() { return *db_; }

  // The default flavors (m1.tiny ... m1.xlarge, ids 1-5, as devstack creates) when none exist.
  void ensure_default_flavors();

  std::vector<json::object> list_flavors(const Caller& c, const FlavorQuery& q);
  json::object show_flavor(const Caller& c, const std::string& id);
  json::object create_flavor(const Caller& c, const json::object& body);
  json::object update_flavor(const Caller& c, const std::string& id, const json::object& body);
  void delete_flavor(const Caller& c, const std::string& id);

  json::object extra_specs(const Caller& c, const std::string& flavor_id);
  json::object set_extra_specs(const Caller& c, const std::string& flavor_id, const json::object& specs);
  void delete_extra_spec(const Caller& c, const std::string& flavor_id, const std::string& key);

  std::vector<std::string> flavor_access(const Caller& c, const std::string& flavor_id);
  std::vector<std::string> add_flavor_access(const Caller& c, const std::string& flavor_id, const std::string& project);
  std::vector<std::string> remove_flavor_access(const Caller& c, const std::string& flavor_id,
                                                const std::string& project);

  // Keypairs: rows with `private_key` added when one was generated.
  json::object create_keypair(const Caller& c, const KeypairRequest& r, bool extended_names);
  std::vector<json::object> list_keypairs(const Caller& c, const std::string& user_id, const std::string& marker,
                                          std::optional<long> limit);
  json::object show_keypair(const Caller& c, const std::string& user_id, const std::string& name);
  void delete_keypair(const Caller& c, const std::string& user_id, const std::string& name);

 private:
  json::object flavor_row(soci::session& s, const Caller& c, const std::string& id);
  std::string now() const;

  std::unique_ptr<db::Database> db_;
  ComputeSettings settings_;
  std::shared_ptr<Clock> clock_;
};

// Nova's wording for a policy refusal.
std::string nova_denied(const std::string& rule);

}  // namespace nubo::compute
