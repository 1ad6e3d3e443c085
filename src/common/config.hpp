// oslo-style INI configuration: [section] key = value, repeated keys, `#`/`;` comments.
// Written by hand because Debian's inih truncates long lines and Boost.PropertyTree
// rejects repeated keys; every option Nubo reads is listed in docs/config.md.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nubo {

class Config {
 public:
  static Config parse(const std::string& text, const std::string& origin = "<string>");
  static Config load(const std::string& path);

  std::optional<std::string> get(const std::string& section, const std::string& key) const;
  std::vector<std::string> get_all(const std::string& section, const std::string& key) const;
  std::string get_string(const std::string& section, const std::string& key,
                         const std::string& fallback) const;
  long get_int(const std::string& section, const std::string& key, long fallback) const;
  bool get_bool(const std::string& section, const std::string& key, bool fallback) const;
  double get_double(const std::string& section, const std::string& key, double fallback) const;
  std::vector<std::string> get_list(const std::string& section, const std::string& key,
                                    const std::vector<std::string>& fallback) const;
  void set(const std::string& section, const std::string& key, const std::string& value);
  // The keys a section sets, in order (sections of user-named keys, such as [tempauth]'s users).
  std::vector<std::string> keys(const std::string& section) const;
  // This machine's name for its services and agents (compute host, ports' binding:host_id):
  // [DEFAULT] host, else the system's host name.
  std::string host() const;

 private:
  // section -> key -> values (in file order)
  std::map<std::string, std::map<std::string, std::vector<std::string>>> values_;
};

}  // namespace nubo
