#include "compute/setup.hpp"

#include <filesystem>

#include "compute/virt/fake/fake_driver.hpp"

namespace nubo::compute {

ComputeSettings settings_from_config(const Config& c, const std::string&) {
  ComputeSettings s;
  auto host = c.get_string("DEFAULT", "public_host", "127.0.0.1");
  auto port = c.get_int("compute", "port", 8774);
  s.public_url = c.get_string("compute", "public_url", "http://" + host + ":" + std::to_string(port));
  s.default_availability_zone = c.get_string("compute", "default_availability_zone", s.default_availability_zone);
  for (auto& [resource, limit] : s.quota_defaults) limit = c.get_int("quota", resource, limit);
  return s;
}

std::shared_ptr<ComputeService> open_compute_service(const Config& c, const std::string& state_dir) {
  std::filesystem::create_directories(state_dir);
  auto url = c.get_string("database", "compute_connection", "sqlite://" + state_dir + "/compute.db");
  auto database = db::Database::open(url, static_cast<unsigned>(c.get_int("database", "readers", 4)));
  auto service = std::make_shared<ComputeService>(std::move(database), settings_from_config(c, state_dir));
  if (c.get_bool("compute", "default_flavors", true)) service->ensure_default_flavors();
  return service;
}

std::vector<std::unique_ptr<ComputeDriver>> make_drivers(const Config& c) {
  std::vector<std::unique_ptr<ComputeDriver>> out;
  auto n = c.get_int("compute", "fake_hosts", 0);
  auto prefix = c.get_string("fake", "host_prefix", "fake-host-");
  for (long i = 1; i <= n; ++i)
    out.push_back(std::make_unique<FakeDriver>(prefix + std::to_string(i), c.get_int("fake", "vcpus", 16),
                                               c.get_int("fake", "memory_mb", 65536), c.get_int("fake", "local_gb", 1000)));
  return out;
}

}  // namespace nubo::compute
