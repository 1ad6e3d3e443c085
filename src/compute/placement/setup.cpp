#include "compute/placement/setup.hpp"

#include <filesystem>

#include "compute/placement/store/store.hpp"

namespace nubo::placement {

PlacementSettings settings_from_config(const Config& c) {
  PlacementSettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("placement", "port", 8778);
  s.public_url =
      c.get_string("placement", "public_url", "http://" + host + ":" + std::to_string(port));
  s.allocation_conflict_retry_count = static_cast<int>(
      c.get_int("placement", "allocation_conflict_retry_count", s.allocation_conflict_retry_count));
  s.incomplete_consumer_project_id =
      c.get_string("placement", "incomplete_consumer_project_id", s.incomplete_consumer_project_id);
  s.incomplete_consumer_user_id =
      c.get_string("placement", "incomplete_consumer_user_id", s.incomplete_consumer_user_id);
  return s;
}

std::shared_ptr<PlacementService> open_placement_service(const Config& c,
                                                         const std::string& state_dir) {
  auto database = db::Database::open_for(c, "placement", state_dir);
  database->migrate("placement", store::migrations());
  return std::make_shared<PlacementService>(std::move(database), settings_from_config(c));
}

}  // namespace nubo::placement
