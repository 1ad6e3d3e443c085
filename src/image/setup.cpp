#include "image/setup.hpp"

#include <filesystem>

namespace nubo::image {

ImageSettings settings_from_config(const Config& c, const std::string& state_dir) {
  ImageSettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("image", "port", 9292);
  s.public_url = c.get_string("image", "public_url", "http://" + host + ":" + std::to_string(port));
  s.store_backend = c.get_string("image", "store_backend", "file");
  s.store_id = c.get_string("image", "store_id", s.store_backend);
  s.store_description = c.get_string("image", "store_description", s.store_description);
  s.data_dir = c.get_string("image", "filesystem_store_datadir", state_dir + "/images");
  s.staging_dir = c.get_string("image", "staging_dir", state_dir + "/staging");
  s.limit_param_default = c.get_int("image", "limit_param_default", s.limit_param_default);
  s.api_limit_max = c.get_int("image", "api_limit_max", s.api_limit_max);
  s.image_size_cap = c.get_int("image", "image_size_cap", s.image_size_cap);
  s.image_member_quota = c.get_int("image", "image_member_quota", s.image_member_quota);
  s.image_property_quota = c.get_int("image", "image_property_quota", s.image_property_quota);
  s.image_tag_quota = c.get_int("image", "image_tag_quota", s.image_tag_quota);
  s.import_methods = c.get_list("image", "enabled_import_methods", s.import_methods);
  s.container_formats = c.get_list("image", "container_formats", s.container_formats);
  s.disk_formats = c.get_list("image", "disk_formats", s.disk_formats);
  s.show_image_direct_url = c.get_bool("image", "show_image_direct_url", false);
  s.use_keystone_limits = c.get_bool("image", "use_keystone_limits", s.use_keystone_limits);
  s.region = c.get_string("DEFAULT", "region", s.region);
  return s;
}

std::shared_ptr<ImageService> open_image_service(const Config& c, const std::string& state_dir,
                                                 bool recover) {
  auto database = db::Database::open_for(c, "image", state_dir);
  auto service =
      std::make_shared<ImageService>(std::move(database), settings_from_config(c, state_dir));
  if (recover) service->recover();
  return service;
}

std::vector<std::pair<std::string, std::int64_t>> default_registered_limits() {
  // Generous defaults that an operator lowers per project with `openstack limit create`.
  return {{"image_count_total", 1000},
          {"image_count_uploading", 10},
          {"image_size_total", 1048576},   // MiB: 1 TiB
          {"image_stage_total", 102400}};  // MiB: 100 GiB
}

}  // namespace nubo::image
