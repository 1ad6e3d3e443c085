// Replication by pushing, as Swift's replicator does: each replica sends what its peers lack, so
// every copy converges on the union, and the newest file (or row) wins everywhere. Object files
// move whole over HTTP (no rsync): suffix hashes say which suffix directories differ, a listing
// of those says which files, and each file goes once under its own name (a name is a timestamp:
// the same name is the same content).
#include "object/replicator/replicator.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <set>

#include "common/ids.hpp"
#include "object/server/disk.hpp"
#include "object/server/partition.hpp"

namespace nubo::object {

namespace {

std::string ip_of(const Device& d) { return d.replication_ip.empty() ? d.ip : d.replication_ip; }
int port_of(const Device& d) { return d.replication_port ? d.replication_port : d.port; }
std::string name_of(const Device& d) {
  return ip_of(d) + ":" + std::to_string(port_of(d)) + "/" + d.device;
}

std::optional<std::uint32_t> number(std::string_view s) {
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A request whose answer is JSON; nullopt (logged) on any failure.
std::optional<json::value> call_json(StorageServer& s, const Device& d, const std::string& method,
                                     const std::string& target, const std::string& body,
                                     int* status_out = nullptr) {
  try {
    BackendRequest r(s.pool, ip_of(d), port_of(d), s.settings.replication_timeout);
    http::Headers h;
    if (!body.empty()) h.set("Content-Type", "application/json");
    int status = r.call(method, target, h, body);
    auto text = r.read_all();
    if (status_out) *status_out = status;
    if (status != 200) {
      spdlog::debug("object-replicator: {} {}{}: {}", method, name_of(d), target, status);
      return std::nullopt;
    }
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return std::nullopt;
    return v;
  } catch (const std::exception& e) {
    spdlog::debug("object-replicator: {} {}{}: {}", method, name_of(d), target, e.what());
    return std::nullopt;
  }
}

struct Job {
  std::string device;  // local
  std::uint32_t partition = 0;
  std::string dir;
  std::vector<const Device*> peers;  // where to push
  bool handoff = false;              // not ours: delete once every primary has it
};

class Pass {
 public:
  Pass(StorageServer& s, bool first)
      : s_(s), reclaim_before_(s.reclaim_before()), first_pass_(first) {}

  void objects(const std::string& device) {
    auto ring = s_.object_ring.get();
    if (!ring) return;
    auto root = s_.settings.devices + "/" + device + "/objects";
    for (auto& name : partition::entries(root)) {
      auto part = number(name);
      if (!part || *part >= ring->partitions()) continue;
      auto job = make_job(*ring, device, *part, root + "/" + name);
      ++stats.partitions;
      job.handoff ? object_handoff(job) : object_primary(job);
    }
  }

  void dbs(const std::string& device, bool containers) {
    auto& file = containers ? s_.container_ring : s_.account_ring;
    auto ring = file.get();
    if (!ring) return;
    auto kind_dir = containers ? "containers" : "accounts";
    auto root = s_.settings.devices + "/" + device + "/" + kind_dir;
    for (auto& name : partition::entries(root)) {
      auto part = number(name);
      if (!part || *part >= ring->partitions()) continue;
      auto job = make_job(*ring, device, *part, root + "/" + name);
      for (auto& suffix : partition::entries(job.dir)) {
        if (!partition::valid_suffix(suffix)) continue;
        for (auto& hash : partition::entries(job.dir + "/" + suffix)) {
          if (!partition::valid_hash(hash)) continue;
          replicate_db(job, kind_dir, containers, suffix, hash);
        }
        partition::remove_if_empty(job.dir + "/" + suffix);
      }
      partition::remove_if_empty(job.dir);
    }
  }

  // In-flight uploads abandoned by a crash.
  void tmp(const std::string& device) {
    auto dir = s_.settings.devices + "/" + device + "/tmp";
    auto limit = std::time(nullptr) - static_cast<std::time_t>(s_.settings.reclaim_age.count());
    for (auto& name : partition::entries(dir)) {
      struct stat st {};
      auto path = dir + "/" + name;
      if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < limit)
        ::unlink(path.c_str());
    }
  }

  ReplicationStats stats;

 private:
  Job make_job(const Ring& ring, const std::string& device, std::uint32_t part, std::string dir) {
    Job job{device, part, std::move(dir), {}, true};
    for (auto* d : ring.primary_devices(part)) {
      if (s_.is_local(*d) && d->device == device)
        job.handoff = false;
      else
        job.peers.push_back(d);
    }
    return job;
  }

  std::string target(const Device& d, std::uint32_t part, const char* kind) {
    return "/replicate/" + std::string(kind) + "/" + encode_path(d.device) + "/" +
           std::to_string(part);
  }

  // A primary's partition: to each peer, the suffixes whose hashes differ.
  void object_primary(const Job& job) {
    auto local = s_.hashes.get(job.dir, reclaim_before_);
    if (local.empty()) {
      partition::remove_if_empty(job.dir);
      return;
    }
    for (auto* peer : job.peers) {
      auto remote = call_json(s_, *peer, "GET", target(*peer, job.partition, "objects"), "");
      if (!remote || !remote->is_object()) {
        ++stats.failures;
        continue;
      }
      std::vector<std::string> differing;
      for (auto& [suffix, hash] : local) {
        auto* theirs = remote->as_object().if_contains(suffix);
        if (!theirs || !theirs->is_string() || theirs->as_string() != hash)
          differing.push_back(suffix);
      }
      if (differing.empty()) continue;
      auto listing = partition::list(job.dir, differing);
      std::set<std::string> confirmed;
      if (!push_to(job, *peer, differing, listing, confirmed)) ++stats.failures;
    }
  }

  // Not ours: every file to every primary; each file removed once all of them confirmed it.
  void object_handoff(const Job& job) {
    auto local = partition::suffix_hashes(job.dir, reclaim_before_);
    if (local.empty()) {
      partition::remove_if_empty(job.dir, 0);
      return;
    }
    std::vector<std::string> suffixes;
    for (auto& [suffix, hash] : local) suffixes.push_back(suffix);
    auto listing = partition::list(job.dir, suffixes);
    std::map<std::string, size_t> confirmations;
    bool all = !job.peers.empty();
    for (auto* peer : job.peers) {
      std::set<std::string> confirmed;
      if (!push_to(job, *peer, suffixes, listing, confirmed)) {
        ++stats.failures;
        all = false;
      }
      for (auto& path : confirmed) ++confirmations[path];
    }
    if (!all) return;
    for (auto& [path, count] : confirmations) {
      if (count != job.peers.size()) continue;
      if (::unlink(path.c_str()) == 0) ++stats.handoff_files_removed;
      s_.changed(path.substr(0, path.rfind('/')));
    }
    for (auto& [suffix, objects] : listing) {
      for (auto& [hash, names] : objects)
        partition::remove_if_empty(job.dir + "/" + suffix + "/" + hash, 0);
      partition::remove_if_empty(job.dir + "/" + suffix, 0);
    }
    partition::remove_if_empty(job.dir, 0);
  }

  // Pushes the files of `suffixes` that the peer lacks and would keep. confirmed: the local
  // paths the peer now holds, or holds something newer than. false when anything failed.
  bool push_to(const Job& job, const Device& peer, const std::vector<std::string>& suffixes,
               const partition::Listing& listing, std::set<std::string>& confirmed) {
    bool ok = true;
    // Query strings stay short: a few hundred suffixes per listing request.
    for (size_t at = 0; at < suffixes.size(); at += 256) {
      std::string list;
      for (size_t i = at; i < std::min(suffixes.size(), at + 256); ++i)
        list += (list.empty() ? "" : ",") + suffixes[i];
      auto remote =
          call_json(s_, peer, "GET", target(peer, job.partition, "objects") + "?list=" + list, "");
      if (!remote || !remote->is_object()) return false;
      for (size_t i = at; i < std::min(suffixes.size(), at + 256); ++i) {
        auto& suffix = suffixes[i];
        auto local = listing.find(suffix);
        if (local == listing.end()) continue;
        auto* theirs_suffix = remote->as_object().if_contains(suffix);
        for (auto& [hash, names] : local->second) {
          auto dir = job.dir + "/" + suffix + "/" + hash;
          std::set<std::string> theirs;
          if (theirs_suffix && theirs_suffix->is_object())
            if (auto* list_of = theirs_suffix->as_object().if_contains(hash);
                list_of && list_of->is_array())
              for (auto& n : list_of->as_array())
                if (n.is_string()) theirs.insert(std::string(n.as_string()));
          // What the peer would keep of both sides' files.
          std::vector<disk::File> both;
          std::set<std::string> seen;
          for (auto& n : names)
            if (seen.insert(n).second)
              if (auto f = disk::parse_file_name(dir, n)) both.push_back(*f);
          for (auto& n : theirs)
            if (seen.insert(n).second)
              if (auto f = disk::parse_file_name(dir, n)) both.push_back(*f);
          std::sort(both.begin(), both.end(), [](auto& a, auto& b) {
            return a.timestamp != b.timestamp ? a.timestamp > b.timestamp
                                              : a.extension < b.extension;
          });
          std::set<std::string> keep;
          for (auto& f : disk::current_files(both)) keep.insert(f.path);
          for (auto& n : names) {
            auto path = dir + "/" + n;
            if (theirs.count(n) || !keep.count(path)) {
              confirmed.insert(path);
              continue;
            }
            int result = push_file(job, peer, suffix, hash, n, path);
            if (result >= 0) confirmed.insert(path);
            if (result > 0) ++stats.files_pushed;
            if (result < 0) ok = false;
          }
        }
      }
    }
    return ok;
  }

  // 1: sent; 0: nothing to send (the peer has it, or the file went away); -1: failed.
  int push_file(const Job& job, const Device& peer, const std::string& suffix,
                const std::string& hash, const std::string& name, const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    struct stat st {};
    ::fstat(fd, &st);
    int status = 0;
    try {
      BackendRequest r(s_.pool, ip_of(peer), port_of(peer), s_.settings.replication_timeout);
      http::Headers h;
      h.set("X-Backend-Replication", "true");
      r.start("PUT",
              target(peer, job.partition, "objects") + "/" + suffix + "/" + hash + "/" + name, h,
              static_cast<std::uint64_t>(st.st_size));
      std::string buffer(1 << 16, '\0');
      off_t at = 0;
      while (at < st.st_size) {
        auto n = ::pread(fd, buffer.data(), buffer.size(), at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("short read of " + path);
        r.write(std::string_view(buffer.data(), static_cast<size_t>(n)));
        at += n;
      }
      status = r.status();
      r.read_all();
    } catch (const std::exception& e) {
      spdlog::debug("object-replicator: push {} to {}: {}", path, name_of(peer), e.what());
      ::close(fd);
      return -1;
    }
    ::close(fd);
    if (status == 201) return 1;
    if (status == 409) return 0;
    if (status == 422) {
      // The peer found the file corrupt: so is ours, unless it changed meanwhile.
      auto f = disk::parse_file_name(path.substr(0, path.rfind('/')), name);
      if (f && disk::check_file(*f) == disk::Check::corrupt) {
        spdlog::warn("object-replicator: {} is corrupt: quarantined", path);
        quarantine(s_, job.device, path.substr(0, path.rfind('/')));
      }
    }
    spdlog::debug("object-replicator: push {} to {}: {}", path, name_of(peer), status);
    return -1;
  }

  void replicate_db(const Job& job, const char* kind_dir, bool containers,
                    const std::string& suffix, const std::string& hash) {
    auto dir = job.dir + "/" + suffix + "/" + hash;
    auto path = dir + "/" + hash + ".db";
    if (::access(path.c_str(), F_OK) != 0) {
      partition::remove_if_empty(dir);
      return;
    }
    auto kind = containers ? ListingDb::Kind::container : ListingDb::Kind::account;
    std::shared_ptr<ListingDb> db;
    try {
      db = s_.db(path, kind, false, "", "");
    } catch (const std::exception& e) {
      spdlog::warn("object-replicator: {}: {}", path, e.what());
    }
    if (!db) return;
    ++stats.dbs;
    // Totals changed before a crash may not have reached the account: the first pass after a
    // start sends every container's.
    if (containers && first_pass_) s_.totals_changed(path, db);
    db->reclaim(reclaim_before_);
    auto info = db->info();
    if (info.deleted() && info.delete_timestamp < reclaim_before_) {
      remove_db(path, dir);
      return;
    }
    auto digest = db->digest();
    auto record = db->sync_info();
    bool all = !job.peers.empty();
    for (auto* peer : job.peers) {
      if (!sync_db(job, *peer, kind_dir, hash, *db, record, digest)) {
        ++stats.failures;
        all = false;
      }
    }
    // A handoff copy goes once every primary merged it, unless rows came in meanwhile.
    if (job.handoff && all && db->digest() == digest) remove_db(path, dir);
  }

  bool sync_db(const Job& job, const Device& peer, const char* kind_dir, const std::string& hash,
               ListingDb& db, const json::object& record, const std::string& digest) {
    auto url = "/replicate/" + std::string(kind_dir) + "/" + encode_path(peer.device) + "/" +
               std::to_string(job.partition) + "/" + hash;
    auto reply = call_json(s_, peer, "POST", url,
                           json::serialize(json::object{{"op", "sync"}, {"info", record}}));
    if (!reply || !reply->is_object()) return false;
    auto* theirs = reply->as_object().if_contains("digest");
    if (theirs && theirs->is_string() && theirs->as_string() == digest) return true;
    ++stats.dbs_synced;
    std::string marker;
    for (;;) {
      auto rows = db.rows_after(marker, 256 << 10);
      if (rows.empty()) return true;
      marker = std::string(rows.back().as_array()[0].as_string());
      auto n = rows.size();
      if (!call_json(s_, peer, "POST", url,
                     json::serialize(json::object{{"op", "merge"}, {"rows", std::move(rows)}})))
        return false;
      stats.rows_pushed += n;
    }
  }

  void remove_db(const std::string& path, const std::string& dir) {
    s_.forget_db(path);
    for (auto* ext : {"", "-wal", "-shm"}) ::unlink((path + ext).c_str());
    ++stats.dbs_removed;
    partition::remove_if_empty(dir, 0);
  }

  StorageServer& s_;
  Timestamp reclaim_before_;
  bool first_pass_;
};

}  // namespace

void quarantine(StorageServer& server, const std::string& device, const std::string& dir) {
  auto root = server.settings.devices + "/" + device + "/quarantined/objects";
  disk::make_dirs_durable(root);
  auto hash = dir.substr(dir.rfind('/') + 1);
  auto to = root + "/" + hash;
  if (::access(to.c_str(), F_OK) == 0) to += "-" + uuid4_hex();
  if (::rename(dir.c_str(), to.c_str()) == 0) {
    disk::fsync_dir(root);
    disk::fsync_dir(dir.substr(0, dir.rfind('/')));
  }
  server.changed(dir);
}

Replicator::Replicator(std::shared_ptr<StorageServer> server)
    : server_(std::move(server)),
      loop_("object-replicator", server_->settings.replicator_interval, [this] { run_once(); }) {}

ReplicationStats Replicator::run_once() {
  auto started = std::chrono::steady_clock::now();
  Pass pass(*server_, first_pass_);
  for (auto& device : partition::entries(server_->settings.devices)) {
    auto root = server_->settings.devices + "/" + device;
    if (!is_dir(root) || ::access(root.c_str(), W_OK) != 0) continue;
    pass.objects(device);
    pass.dbs(device, true);
    pass.dbs(device, false);
    pass.tmp(device);
  }
  first_pass_ = false;
  auto& st = pass.stats;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  if (st.files_pushed || st.handoff_files_removed || st.dbs_synced || st.dbs_removed || st.failures)
    spdlog::info(
        "object-replicator: pass in {} ms: {} partitions, {} files pushed, {} handoff files "
        "removed, {} of {} databases synced ({} rows), {} removed, {} failures",
        ms, st.partitions, st.files_pushed, st.handoff_files_removed, st.dbs_synced, st.dbs,
        st.rows_pushed, st.dbs_removed, st.failures);
  else
    spdlog::debug("object-replicator: pass in {} ms: {} partitions, {} databases, in sync", ms,
                  st.partitions, st.dbs);
  return st;
}

}  // namespace nubo::object
