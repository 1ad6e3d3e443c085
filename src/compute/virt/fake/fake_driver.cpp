#include "compute/virt/fake/fake_driver.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
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
  // The log holds one "<uuid> <state>" line per change ("<uuid> -" once destroyed); the last line
  // for a uuid wins and a torn last line is ignored. It is compacted to the live set on start.
  // A log rather than a file per server: creating and removing a file per boot cost more of the
  // CPU (ext4 inode allocation) than the rest of the fake driver together.
  auto log = dir_ / "servers.log";
  {
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string uuid, state;
      if (!(fields >> uuid >> state)) continue;
      if (state == "-")
        servers_.erase(uuid);
      else if (state.find_first_not_of("0123456789") == std::string::npos)
        servers_[uuid] = static_cast<PowerState>(std::stoi(state));
    }
  }
  auto tmp = dir_ / "servers.log.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (auto& [uuid, state] : servers_) out << uuid << ' ' << static_cast<int>(state) << '\n';
    if (!out.flush()) throw std::runtime_error("fake driver: cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, log);
  log_ = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log_ < 0) throw std::runtime_error("fake driver: cannot open " + log.string());
}

FakeDriver::~FakeDriver() {
  if (log_ >= 0) ::close(log_);
}

void FakeDriver::save(const std::string& uuid, std::optional<PowerState> state) {
  if (log_ >= 0) {
    // Written before memory changes: a failed write leaves both as they were. One write per
    // line (O_APPEND); a short one is cut back, so the next line starts clean.
    auto line = uuid + ' ' + (state ? std::to_string(static_cast<int>(*state)) : "-") + '\n';
    auto end = ::lseek(log_, 0, SEEK_END);
    auto n = ::write(log_, line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) {
      if (n > 0 && end >= 0 && ::ftruncate(log_, end) != 0) {
      }
      throw std::runtime_error("fake driver: cannot append to " + (dir_ / "servers.log").string());
    }
  }
  if (state)
    servers_[uuid] = *state;
  else
    servers_.erase(uuid);
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
  if (servers_.count(uuid)) save(uuid, std::nullopt);
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

ConsoleEndpoint FakeDriver::console(const std::string& uuid, const std::string& protocol) const {
  auto state = power_state(uuid);
  if (!state) throw NotFound("Instance " + uuid + " could not be found on this host.");
  if (protocol != "serial") return ComputeDriver::console(uuid, protocol);
  if (*state != PowerState::Running) throw Conflict("Instance " + uuid + " is not ready");
  return ConsoleEndpoint{"127.0.0.1", 6999, ""};  // nothing listens: no VM behind it
}

}  // namespace nubo::compute
