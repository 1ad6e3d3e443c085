#include "object/server/partition.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "common/digest.hpp"
#include "object/server/disk.hpp"

namespace nubo::object::partition {

namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The current files of one object after cleanup and reclaim; empty when nothing is left.
std::vector<disk::File> settle(const std::string& dir, const Timestamp& reclaim_before) {
  disk::cleanup(dir);
  auto current = disk::current_files(disk::files_of(dir));
  // A tombstone only needs to outlive every copy it must beat; after reclaim_age it goes.
  if (current.size() == 1 && current[0].extension == "ts" &&
      current[0].timestamp < reclaim_before) {
    ::unlink(current[0].path.c_str());
    current.clear();
  }
  if (current.empty()) remove_if_empty(dir);
  return current;
}

std::string hash_suffix(const std::string& suffix_dir, const Timestamp& reclaim_before) {
  auto hashes = entries(suffix_dir);
  std::sort(hashes.begin(), hashes.end());
  Md5 md5;
  bool any = false;
  for (auto& hash : hashes) {
    if (!valid_hash(hash)) continue;
    auto files = settle(suffix_dir + "/" + hash, reclaim_before);
    // Oldest first, so the order does not depend on how files_of breaks ties.
    std::sort(files.begin(), files.end(), [](auto& a, auto& b) { return a.path < b.path; });
    for (auto& f : files) {
      auto name = f.path.substr(f.path.rfind('/') + 1);
      std::string item = hash + "/" + name + "\n";
      md5.update(item);
      any = true;
    }
  }
  if (!any) {
    remove_if_empty(suffix_dir);
    return {};
  }
  return md5.hex();
}

}  // namespace

bool valid_suffix(std::string_view s) { return s.size() == 3 && is_hex(s); }
bool valid_hash(std::string_view s) { return s.size() == 32 && is_hex(s); }

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") out.emplace_back(name);
  }
  ::closedir(d);
  return out;
}

bool remove_if_empty(const std::string& dir, int quiet_seconds) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return true;
  if (st.st_mtime + quiet_seconds > std::time(nullptr)) return false;
  return ::rmdir(dir.c_str()) == 0;
}

std::map<std::string, std::string> suffix_hashes(const std::string& partition_dir,
                                                 const Timestamp& reclaim_before) {
  std::vector<std::string> suffixes;
  for (auto& name : entries(partition_dir))
    if (valid_suffix(name)) suffixes.push_back(name);
  return suffix_hashes(partition_dir, suffixes, reclaim_before);
}

std::map<std::string, std::string> suffix_hashes(const std::string& partition_dir,
                                                 const std::vector<std::string>& suffixes,
                                                 const Timestamp& reclaim_before) {
  std::map<std::string, std::string> out;
  for (auto& suffix : suffixes) {
    if (!valid_suffix(suffix)) continue;
    auto h = hash_suffix(partition_dir + "/" + suffix, reclaim_before);
    if (!h.empty()) out[suffix] = h;
  }
  return out;
}

std::map<std::string, std::string> HashCache::get(const std::string& partition_dir,
                                                  const Timestamp& reclaim_before) {
  std::map<std::string, std::string> out;
  for (auto& suffix : entries(partition_dir)) {
    if (!valid_suffix(suffix)) continue;
    auto key = partition_dir + "/" + suffix;
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(mutex_);
      auto& e = entries_[key];
      if (e.valid && std::chrono::steady_clock::now() - e.at < ttl_) {
        if (!e.hash.empty()) out[suffix] = e.hash;
        continue;
      }
      generation = e.generation;
    }
    auto hash = hash_suffix(key, reclaim_before);
    if (!hash.empty()) out[suffix] = hash;
    std::lock_guard lock(mutex_);
    auto& e = entries_[key];
    if (e.generation != generation) continue;
    if (hash.empty()) {
      entries_.erase(key);
    } else {
      e.hash = hash;
      e.valid = true;
      e.at = std::chrono::steady_clock::now();
    }
  }
  return out;
}

void HashCache::invalidate(const std::string& partition_dir, const std::string& suffix) {
  std::lock_guard lock(mutex_);
  auto& e = entries_[partition_dir + "/" + suffix];
  ++e.generation;
  e.valid = false;
}

Listing list(const std::string& partition_dir, const std::vector<std::string>& suffixes) {
  Listing out;
  for (auto& suffix : suffixes) {
    if (!valid_suffix(suffix)) continue;
    auto& objects = out[suffix];
    auto dir = partition_dir + "/" + suffix;
    for (auto& hash : entries(dir)) {
      if (!valid_hash(hash)) continue;
      auto files = disk::current_files(disk::files_of(dir + "/" + hash));
      if (files.empty()) continue;
      auto& names = objects[hash];
      for (auto& f : files) names.push_back(f.path.substr(f.path.rfind('/') + 1));
    }
  }
  return out;
}

}  // namespace nubo::object::partition
