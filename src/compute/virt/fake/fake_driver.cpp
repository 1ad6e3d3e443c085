#include "compute/virt/fake/fake_driver.hpp"

#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/error.hpp"
#include "common/ids.hpp"

namespace nubo::compute {

FakeDriver::FakeDriver(std::string host, std::int64_t vcpus, std::int64_t memory_mb,
                       std::int64_t local_gb, std::filesystem::path state_dir)
    : dir_(std::move(state_dir)) {
  resources_.host = host;
  resources_.hypervisor_hostname = std::move(host);
  resources_.hypervisor_type = "fake";
  resources_.hypervisor_version = 1000;
  resources_.vcpus = vcpus;
  resources_.memory_mb = memory_mb;
  resources_.local_gb = local_gb;
  resources_.cpu_info =
      R"({"arch": "x86_64", "model": "fake", "vendor": "Nubo", "topology": {"sockets": 1, "cores": )" +
      std::to_string(vcpus) + R"(, "threads": 1}, "features": []})";
  if (dir_.empty()) return;
  std::filesystem::create_directories(dir_);
  // The servers that were "running" before a restart are still there, as QEMU processes would be.
  for (auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::ifstream in(entry.path());
    int state = 0;
    if (in >> state) servers_[entry.path().filename().string()] = static_cast<PowerState>(state);
  }
}

void FakeDriver::save(const std::string& uuid, PowerState state) {
  servers_[uuid] = state;
  if (dir_.empty()) return;
  auto tmp = dir_ / (uuid + ".tmp");
  std::ofstream(tmp) << static_cast<int>(state) << "\n";
  std::filesystem::rename(tmp, dir_ / uuid);
}

void FakeDriver::spawn(const InstanceSpec& instance) {
  if (fail_spawns_)
    throw std::runtime_error("fake driver: spawning fails on " + resources_.host +
                             " ([fake] fail_spawn_hosts)");
  std::lock_guard lock(mutex_);
  if (!servers_.count(instance.uuid)) save(instance.uuid, PowerState::Running);
}

void FakeDriver::destroy(const std::string& uuid) {
  std::lock_guard lock(mutex_);
  servers_.erase(uuid);
  if (!dir_.empty()) std::filesystem::remove(dir_ / uuid);
}

void FakeDriver::set(const std::string& uuid, PowerState state) {
  std::lock_guard lock(mutex_);
  if (!servers_.count(uuid))
    throw NotFound("Instance " + uuid + " could not be found on this host.");
  save(uuid, state);
}

std::optional<PowerState> FakeDriver::power_state(const std::string& uuid) const {
  std::lock_guard lock(mutex_);
  auto it = servers_.find(uuid);
  if (it == servers_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> FakeDriver::list_instances() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (auto& [uuid, state] : servers_) out.push_back(uuid);
  return out;
}

std::string FakeDriver::snapshot(const std::string& uuid, const std::string& disk_format) {
  if (!power_state(uuid)) throw NotFound("Instance " + uuid + " could not be found on this host.");
  if (snapshot_delay_.count() > 0) std::this_thread::sleep_for(snapshot_delay_);
  auto dir = dir_.empty() ? std::filesystem::temp_directory_path() : dir_;
  auto path = dir / (uuid + "." + uuid4() + ".snapshot");
  std::ofstream out(path, std::ios::binary);
  out << "fake " << disk_format << " disk of " << uuid << "\n";
  out << std::string(4096, '\0');
  out.close();
  if (!out) throw std::runtime_error("fake driver: cannot write " + path.string());
  return path.string();
}

std::string FakeDriver::console_output(const std::string& uuid) const {
  if (!power_state(uuid)) throw NotFound("Instance " + uuid + " could not be found on this host.");
  return "FAKE CONSOLE OUTPUT\nBooting fake kernel\nStarting fake init\nReached target "
         "fake.target\n"
         "fake login:\nANOTHER\nLAST LINE";
}

}  // namespace nubo::compute
