#include "common/config.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nubo {
namespace {
std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}
}  // namespace

Config Config::parse(const std::string& text, const std::string& origin) {
  Config c;
  std::istringstream in(text);
  std::string line, section = "DEFAULT";
  std::vector<std::string>* last = nullptr;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && last && !trim(line).empty()) {
      // Continuation line: appended to the previous value, as oslo.config does.
      last->back() += "\n" + trim(line);
      continue;
    }
    auto t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      if (t.back() != ']')
        throw std::runtime_error(origin + ":" + std::to_string(lineno) + ": bad section header");
      section = trim(t.substr(1, t.size() - 2));
      last = nullptr;
      continue;
    }
    auto eq = t.find_first_of("=:");
    if (eq == std::string::npos)
      throw std::runtime_error(origin + ":" + std::to_string(lineno) + ": expected key = value");
    auto key = trim(t.substr(0, eq));
    auto value = trim(t.substr(eq + 1));
    last = &c.values_[section][key];
    last->push_back(value);
  }
  return c;
}

Config Config::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read config file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

std::optional<std::string> Config::get(const std::string& section, const std::string& key) const {
  auto s = values_.find(section);
  if (s != values_.end()) {
    auto k = s->second.find(key);
    if (k != s->second.end() && !k->second.empty()) return k->second.back();
  }
  if (section != "DEFAULT") {
    auto d = values_.find("DEFAULT");
    if (d != values_.end()) {
      auto k = d->second.find(key);
      if (k != d->second.end() && !k->second.empty()) return k->second.back();
    }
  }
  return std::nullopt;
}

std::vector<std::string> Config::get_all(const std::string& section, const std::string& key) const {
  auto s = values_.find(section);
  if (s == values_.end()) return {};
  auto k = s->second.find(key);
  return k == s->second.end() ? std::vector<std::string>{} : k->second;
}

std::vector<std::string> Config::keys(const std::string& section) const {
  std::vector<std::string> out;
  if (auto s = values_.find(section); s != values_.end())
    for (auto& [key, values] : s->second) out.push_back(key);
  return out;
}

std::string Config::get_string(const std::string& section, const std::string& key,
                               const std::string& fallback) const {
  auto v = get(section, key);
  return v ? *v : fallback;
}

double Config::get_double(const std::string& section, const std::string& key,
                          double fallback) const {
  auto v = get(section, key);
  if (!v || v->empty()) return fallback;
  try {
    size_t pos = 0;
    double r = std::stod(*v, &pos);
    if (pos != v->size()) throw std::invalid_argument("trailing");
    return r;
  } catch (const std::exception&) {
    throw std::runtime_error("config [" + section + "] " + key + ": not a number: " + *v);
  }
}

long Config::get_int(const std::string& section, const std::string& key, long fallback) const {
  auto v = get(section, key);
  if (!v || v->empty()) return fallback;
  try {
    size_t pos = 0;
    long r = std::stol(*v, &pos);
    if (pos != v->size()) throw std::invalid_argument("trailing");
    return r;
  } catch (const std::exception&) {
    throw std::runtime_error("config [" + section + "] " + key + ": not an integer: " + *v);
  }
}

bool Config::get_bool(const std::string& section, const std::string& key, bool fallback) const {
  auto v = get(section, key);
  if (!v || v->empty()) return fallback;
  std::string s;
  for (char ch : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return false;
  throw std::runtime_error("config [" + section + "] " + key + ": not a boolean: " + *v);
}

std::vector<std::string> Config::get_list(const std::string& section, const std::string& key,
                                          const std::vector<std::string>& fallback) const {
  auto v = get(section, key);
  if (!v) return fallback;
  std::vector<std::string> out;
  std::stringstream ss(*v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void Config::set(const std::string& section, const std::string& key, const std::string& value) {
  values_[section][key] = {value};
}

std::string Config::host() const {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return get_string("DEFAULT", "host", name);
}

}  // namespace nubo
