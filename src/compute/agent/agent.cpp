#include "compute/agent/agent.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "common/ids.hpp"

namespace nubo::compute {

namespace {

json::object resources_json(const HostResources& r) {
  return json::object{{"host", r.host},
                      {"hypervisor_hostname", r.hypervisor_hostname},
                      {"hypervisor_type", r.hypervisor_type},
                      {"hypervisor_version", r.hypervisor_version},
                      {"vcpus", r.vcpus},
                      {"memory_mb", r.memory_mb},
                      {"local_gb", r.local_gb},
                      {"host_ip", r.host_ip},
                      {"cpu_info", r.cpu_info}};
}

}  // namespace

// A strand per server with work queued (Asio's strands keep each one's tasks in order and one at
// a time on the shared pool); a lane goes once it is empty.
class AgentWorkers {
 public:
  explicit AgentWorkers(unsigned threads) : pool_(std::max(threads, 1u)) {}

  void post(const std::string& lane, std::function<void()> task) {
    std::lock_guard lock(mutex_);
    auto it = lanes_.find(lane);
    if (it == lanes_.end())
      it = lanes_.emplace(lane, Lane{boost::asio::make_strand(pool_.get_executor()), 0}).first;
    ++it->second.queued;
    boost::asio::post(it->second.strand, [this, lane, task = std::move(task)] {
      try {
        task();
      } catch (const std::exception& e) {
        spdlog::error("agent: work on {} failed: {}", lane, e.what());
      }
      std::lock_guard lock(mutex_);
      if (auto it = lanes_.find(lane); it != lanes_.end() && --it->second.queued == 0)
        lanes_.erase(it);
    });
  }

  void stop() { pool_.join(); }

 private:
  struct Lane {
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand;
    int queued;
  };
  boost::asio::thread_pool pool_;
  std::mutex mutex_;
  std::map<std::string, Lane> lanes_;
};

std::shared_ptr<AgentWorkers> make_agent_workers(unsigned threads) {
  return std::make_shared<AgentWorkers>(threads);
}

void stop_agent_workers(AgentWorkers& workers) { workers.stop(); }

ComputeAgent::ComputeAgent(std::shared_ptr<ComputeDriver> driver, std::shared_ptr<Bus> bus,
                           std::shared_ptr<ImageClient> images,
                           std::shared_ptr<AgentWorkers> workers)
    : driver_(std::move(driver)),
      bus_(std::move(bus)),
      images_(std::move(images)),
      workers_(std::move(workers)),
      host_(driver_->resources().host) {}

void ComputeAgent::snapshot(const InstanceSpec& spec, bool backup) {
  auto image_id = string_or(spec.task_args, "image_id");
  try {
    if (!images_) throw std::runtime_error("this host has no image service to upload to");
    struct RemoveFile {  // the driver's file goes whether the upload worked or not
      std::string path;
      ~RemoveFile() {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
      }
    } file{driver_->snapshot(spec.uuid, string_or(spec.task_args, "disk_format", "raw"))};
    images_->upload(image_id, file.path);
  } catch (...) {
    // Nova deletes the image of a failed snapshot.
    try {
      if (images_) images_->remove(image_id);
    } catch (const std::exception& e) {
      spdlog::warn("agent {}: image {} of a failed snapshot stays: {}", host_, image_id, e.what());
    }
    throw;
  }
  if (!backup) return;
  // Keep the newest `rotation` backups of this type, as Nova's _rotate_backups.
  auto rotation = int_or(spec.task_args, "rotation");
  auto backups = images_->find({{"instance_uuid", spec.uuid},
                                {"image_type", "backup"},
                                {"backup_type", string_or(spec.task_args, "backup_type")}});
  for (size_t i = static_cast<size_t>(std::max<std::int64_t>(rotation, 0)); i < backups.size(); ++i)
    images_->remove(string_or(backups[i], "id"));
}

json::object ComputeAgent::power_report() const {
  json::object states;
  // When the report was taken: the conductor ignores servers that changed since.
  states["@"] = iso8601(std::chrono::system_clock::now(), true, false);
  for (auto& uuid : driver_->list_instances())
    if (auto p = driver_->power_state(uuid)) states[uuid] = static_cast<int>(*p);
  return states;
}

void ComputeAgent::start() {
  bus_->subscribe(
      "compute." + host_, [this](const BusMessage& m) { return dispatch(m); }, true);
  bus_->call("conductor", "register_host",
             json::object{{"host", host_},
                          {"resources", resources_json(driver_->resources())},
                          {"instances", power_report()}},
             std::chrono::seconds(60));
}

void ComputeAgent::stop() { bus_->unsubscribe("compute." + host_); }

void ComputeAgent::sync_power_states(int full_every) {
  try {
    driver_->periodic_tasks();
  } catch (const std::exception& e) {
    spdlog::warn("agent {}: periodic tasks failed: {}", host_, e.what());
  }
  auto report = power_report();
  auto states = report;
  states.erase("@");
  // A VM that stopped by itself shows at the next tick; an unchanged host costs the conductor
  // nothing most of the time.
  if (states == last_states_ && ++unchanged_ < full_every) return;
  unchanged_ = 0;
  last_states_ = std::move(states);
  bus_->cast("conductor", "power_states", json::object{{"host", host_}, {"instances", report}});
}

json::value ComputeAgent::dispatch(const BusMessage& m) {
  // The calls (someone waits for the answer) are quick questions or act on a running server;
  // everything else is work with its outcome cast to the conductor.
  static const std::set<std::string> calls{"console_output", "console", "attach_interface",
                                           "detach_interface"};
  if (!workers_ || calls.count(m.method)) return handle(m);
  // The bus hands them over in the order sent; the lane keeps that order per server.
  workers_->post(host_ + "/" + string_or(m.body, "instance_id"), [this, m] { handle(m); });
  return nullptr;
}

json::value ComputeAgent::handle(const BusMessage& m) {
  auto& b = m.body;
  auto id = string_or(b, "instance_id");
  if (m.method == "console_output") return json::value(driver_->console_output(id));
  if (m.method == "attach_interface" || m.method == "detach_interface") {
    auto spec = InstanceSpec::from_json(b.at("instance").as_object());
    auto& vif = b.at("vif").as_object();
    if (m.method == "attach_interface")
      driver_->attach_interface(spec, vif);
    else
      driver_->detach_interface(spec, vif);
    return true;
  }
  if (m.method == "console") {
    auto e = driver_->console(id, string_or(b, "protocol"));
    return json::object{{"host", e.host}, {"port", e.port}, {"path", e.path}};
  }
  if (m.method == "unplug_vif") {  // its port is gone: nobody waits, a failure is only logged
    try {
      driver_->detach_interface(InstanceSpec::from_json(b.at("instance").as_object()),
                                b.at("vif").as_object());
    } catch (const std::exception& e) {
      spdlog::warn("agent {}: unplugging a deleted port from {}: {}", host_, id, e.what());
    }
    return nullptr;
  }
  if (m.method ==
      "power_off") {  // settles a stopped server after a rebuild or resize; nobody waits
    driver_->power_off(id);
    return nullptr;
  }
  if (m.method == "cleanup") {  // a copy left behind (failed build, resize source): nobody waits
    driver_->destroy(id);
    return nullptr;
  }
  if (m.method == "destroy") {
    driver_->destroy(id);
    bus_->cast("conductor", "destroyed", json::object{{"instance_id", id}, {"host", host_}});
    return nullptr;
  }
  auto spec = InstanceSpec::from_json(b.at("instance").as_object());
  if (m.method == "spawn") {
    try {
      driver_->spawn(spec);
      auto power = driver_->power_state(id).value_or(PowerState::NoState);
      bus_->cast("conductor", "spawned",
                 json::object{{"instance_id", id},
                              {"host", host_},
                              {"power_state", static_cast<int>(power)},
                              {"plugs_vifs", driver_->plugs_vifs()}});
    } catch (const BuildAbort& e) {
      bus_->cast("conductor", "spawn_failed",
                 json::object{
                     {"instance_id", id}, {"host", host_}, {"reason", e.what()}, {"abort", true}});
    } catch (const std::exception& e) {
      bus_->cast("conductor", "spawn_failed",
                 json::object{{"instance_id", id}, {"host", host_}, {"reason", e.what()}});
    }
    return nullptr;
  }
  if (m.method != "run") {
    spdlog::warn("agent {}: unknown message {}", host_, m.method);
    return nullptr;
  }
  auto op = string_or(b, "op");
  json::object report{{"instance_id", id},
                      {"host", host_},
                      {"op", op},
                      {"task_state", b.at("task_state")},
                      {"ok", true}};
  try {
    if (op == "power_off")
      driver_->power_off(id);
    else if (op == "power_on")
      driver_->power_on(spec);
    else if (op == "reboot")
      driver_->reboot(spec, false);
    else if (op == "reboot_hard")
      driver_->reboot(spec, true);
    else if (op == "pause")
      driver_->pause(id);
    else if (op == "unpause")
      driver_->unpause(id);
    else if (op == "suspend")
      driver_->suspend(id);
    else if (op == "resume")
      driver_->resume(spec);
    else if (op == "rescue")
      driver_->rescue(spec, spec.image_ref);
    else if (op == "unrescue")
      driver_->unrescue(spec);
    else if (op == "rebuild")
      driver_->rebuild(spec);
    else if (op == "destroy")
      driver_->destroy(id);
    else if (op == "snapshot" || op == "backup")
      snapshot(spec, op == "backup");
    else if (op == "shelve") {
      // Servers shelved before shelving kept an image have no image to fill.
      if (!string_or(spec.task_args, "image_id").empty()) snapshot(spec, false);
      driver_->destroy(id);
    } else if (op == "spawn_unshelve")
      driver_->spawn(spec);
    else if (op == "live_migrate") {
      // The destination takes the server over in the state it ran in (its source is cleaned up
      // by the conductor once this reports).
      if (!driver_->power_state(id)) driver_->spawn(spec);
      if (bool_or(spec.task_args, "paused", false)) driver_->pause(id);
    } else if (op == "evacuate") {
      // Recreated here from its image (its host is down); stopped when it was stopped, or when
      // asked (2.95).
      if (!driver_->power_state(id)) driver_->spawn(spec);
      if (bool_or(spec.task_args, "stop", false)) driver_->power_off(id);
    } else if (op == "resize") {
      // On a new host the server is built there; on its own host it changes in place.
      if (driver_->power_state(id))
        driver_->resize(spec);
      else
        driver_->spawn(spec);
    } else
      throw std::runtime_error("unknown operation " + op);
  } catch (const std::exception& e) {
    report["ok"] = false;
    report["error"] = e.what();
    spdlog::warn("agent {}: {} of {} failed: {}", host_, op, id, e.what());
  }
  report["power_state"] = static_cast<int>(driver_->power_state(id).value_or(PowerState::Shutdown));
  bus_->cast("conductor", "action_done", std::move(report));
  return nullptr;
}

}  // namespace nubo::compute
