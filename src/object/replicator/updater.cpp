// The object updater: container updates that failed when the object was written wait in
// <device>/async_pending/<suffix>/<hash>-<timestamp>; each is replayed to every replica of its
// container (by the container ring, so a moved or rebuilt replica gets it too) and removed once
// all took it. Only the newest record per object matters: the container keeps the newest row.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <map>

#include "object/replicator/replicator.hpp"
#include "object/server/disk.hpp"
#include "object/server/partition.hpp"

namespace nubo::object {

namespace {

std::optional<json::object> read_record(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    auto n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

void write_record(const std::string& path, const json::object& record) {
  disk::write_file_durably(path, json::serialize(record));
}

struct Target {
  std::string ip;
  int port = 0;
  std::string device, partition;
  std::string key() const { return ip + ":" + std::to_string(port) + "/" + device; }
};

}  // namespace

Updater::Updater(std::shared_ptr<StorageServer> server)
    : server_(std::move(server)),
      loop_("object-updater", server_->settings.updater_interval, [this] { run_once(); }) {}

UpdaterStats Updater::run_once() {
  UpdaterStats stats;
  auto& s = *server_;
  for (auto& device : partition::entries(s.settings.devices)) {
    auto root = s.settings.devices + "/" + device + "/async_pending";
    for (auto& suffix : partition::entries(root)) {
      if (loop_.stopping()) return stats;
      auto dir = root + "/" + suffix;
      // hash → (timestamp, file name), the newest record only.
      std::map<std::string, std::pair<std::string, std::string>> newest;
      for (auto& name : partition::entries(dir)) {
        auto dash = name.find('-');
        if (dash == std::string::npos || name.ends_with(".tmp")) continue;
        auto hash = name.substr(0, dash), t = name.substr(dash + 1);
        auto& slot = newest[hash];
        if (slot.second.empty() || t > slot.first) {
          if (!slot.second.empty()) {
            ::unlink((dir + "/" + slot.second).c_str());
            ++stats.superseded;
          }
          slot = {t, name};
        } else {
          ::unlink((dir + "/" + name).c_str());
          ++stats.superseded;
        }
      }
      for (auto& [hash, entry] : newest) {
        auto path = dir + "/" + entry.second;
        auto record = read_record(path);
        if (!record) continue;
        ++stats.records;
        auto str = [&](const char* key) {
          auto* v = record->if_contains(key);
          return v && v->is_string() ? std::string(v->as_string()) : std::string();
        };
        // /container/<device>/<partition>/<account>/<container>/<object>
        auto original = str("path");
        std::vector<std::string> parts;
        size_t at = 1;
        for (int i = 0; i < 5 && at <= original.size(); ++i) {
          auto slash = original.find('/', at);
          if (slash == std::string::npos) break;
          parts.push_back(original.substr(at, slash - at));
          at = slash + 1;
        }
        if (parts.size() != 5 || at >= original.size()) {
          spdlog::warn("object-updater: {}: unreadable record, removed", path);
          ::unlink(path.c_str());
          continue;
        }
        auto account = parts[3], container = parts[4], object = original.substr(at);
        std::vector<Target> targets;
        if (auto ring = s.container_ring.get()) {
          auto part = ring->partition_of_hash(
              hash_path(s.settings.hash_prefix, s.settings.hash_suffix, account, container));
          for (auto* d : ring->primary_devices(part))
            targets.push_back({d->ip, d->port, d->device, std::to_string(part)});
        } else {
          auto host = str("host");
          auto colon = host.rfind(':');
          if (colon == std::string::npos) continue;
          targets.push_back(
              {host.substr(0, colon), std::atoi(host.c_str() + colon + 1), parts[1], parts[2]});
        }
        json::array successes;
        if (auto* v = record->if_contains("successes"); v && v->is_array())
          successes = v->as_array();
        auto done = [&](const std::string& key) {
          for (auto& v : successes)
            if (v.is_string() && v.as_string() == key) return true;
          return false;
        };
        http::Headers headers;
        if (auto* h = record->if_contains("headers"); h && h->is_object())
          for (auto& kv : h->as_object())
            if (kv.value().is_string())
              headers.set(std::string(kv.key()), std::string(kv.value().as_string()));
        bool all = true, progress = false;
        for (auto& t : targets) {
          if (done(t.key())) continue;
          auto target = "/container/" + t.device + "/" + t.partition + "/" + account + "/" +
                        container + "/" + object;
          bool ok = false;
          try {
            BackendRequest r(s.pool, t.ip, t.port, s.settings.update_timeout);
            int status = r.call(str("method"), encode_path(target), headers);
            r.read_all();
            ok = status >= 200 && status < 300;
          } catch (const std::exception& e) {
            spdlog::debug("object-updater: {} {}: {}", t.key(), target, e.what());
          }
          if (ok) {
            successes.push_back(json::string(t.key()));
            progress = true;
          } else {
            all = false;
          }
        }
        if (all) {
          ::unlink(path.c_str());
          ++stats.delivered;
        } else {
          ++stats.failures;
          if (progress) {
            (*record)["successes"] = successes;
            write_record(path, *record);
          }
        }
      }
      partition::remove_if_empty(dir);
    }
  }
  if (stats.records)
    spdlog::info("object-updater: {} pending updates: {} delivered, {} still failing",
                 stats.records, stats.delivered, stats.failures);
  return stats;
}

}  // namespace nubo::object
