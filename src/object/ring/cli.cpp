#include "object/ring/cli.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include "object/ring/builder.hpp"
#include "object/ring/format.hpp"

// format() below measures before it writes; GCC's truncation estimate for "%*d" with a run-time
// width is a false alarm wherever it gets inlined.
#pragma GCC diagnostic ignored "-Wformat-truncation"

namespace nubo::object {

namespace {

namespace fs = std::filesystem;

constexpr int exit_success = 0;
constexpr int exit_warning = 1;
constexpr int exit_error = 2;

const std::string dashes(79, '-');

const char* const usage_text = R"(nubo ring <builder_file>
    Shows information about the ring and the devices within (id, region, zone, address, weight,
    partitions, balance, flags: DEL marks a device removed at the next rebalance).
nubo ring <builder_file> create <part_power> <replicas> <min_part_hours>
nubo ring <builder_file> add [r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta> <weight> [...]
nubo ring <builder_file> add --region <region> --zone <zone> --ip <ip> --port <port>
    [--replication-ip <r_ip>] [--replication-port <r_port>] --device <device_name> --weight <weight>
    [--meta <meta>]
nubo ring <builder_file> set_weight <search-value> <new_weight> [...] [--yes]
nubo ring <builder_file> remove <search-value> [...] [--yes]
nubo ring <builder_file> search <search-value>
nubo ring <builder_file> rebalance [--force] [--seed <seed>]
nubo ring <builder_file> dispersion [<tier regex>] [--verbose]
nubo ring <builder_file> pretend_min_part_hours_passed
nubo ring <builder_file> set_min_part_hours <hours>
nubo ring <builder_file> set_replicas <replicas>
nubo ring <builder_file> set_overload <overload>[%]
nubo ring <builder_file> validate
nubo ring <builder_file> write_ring

<search-value>: d<device_id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/<device_name>_<meta>,
any part optional: d74 is device id 74, z1 zone 1, /sdb1 the device named sdb1, _shiny meta
containing "shiny". The ring file is written beside the builder file: <name>.builder gives
<name>.ring.json.
Exit codes: 0 = operation successful
            1 = operation completed with warnings
            2 = error
)";

// Ends a command with its exit code (after the message was printed).
struct Exit {
  int code;
};

// printf into a string: Swift's messages are %-formatted, this keeps them recognisable.
std::string format(const char* fmt, auto... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(s.data(), s.size(), fmt, args...);
  s.resize(static_cast<size_t>(n));
  return s;
}

using ring_format::python_float;

// Python's str(timedelta(seconds=n)): "0:59:59", "1 day, 2:00:00".
std::string timedelta(std::int64_t seconds) {
  std::int64_t days = seconds / 86400, rest = seconds % 86400;
  std::string s;
  if (days) s = std::to_string(days) + (days == 1 ? " day, " : " days, ");
  return s + format("%d:%02d:%02d", static_cast<int>(rest / 3600),
                    static_cast<int>(rest % 3600 / 60), static_cast<int>(rest % 60));
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE) return std::nullopt;
  return v;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// IPv4 as given, IPv6 in its canonical form (lowercase, compressed) so searches match.
std::optional<std::string> normalize_ip(const std::string& ip) {
  auto l = lower(ip);
  unsigned char buffer[16];
  if (::inet_pton(AF_INET, l.c_str(), buffer) == 1) return l;
  if (::inet_pton(AF_INET6, l.c_str(), buffer) == 1) {
    char text[INET6_ADDRSTRLEN];
    if (::inet_ntop(AF_INET6, buffer, text, sizeof text)) return std::string(text);
  }
  return std::nullopt;
}

std::string normalize_ip_or_throw(const std::string& ip) {
  auto n = normalize_ip(ip);
  if (!n) throw std::invalid_argument("Invalid ip " + ip);
  return *n;
}

// An ip or a host name (the long options accept names).
std::string normalize_address(const std::string& address) {
  if (auto n = normalize_ip(address)) return *n;
  static const std::regex host(
      R"(^(?=.{1,253}\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$)");
  if (!std::regex_match(address, host)) throw std::invalid_argument("Invalid address " + address);
  return address;
}

std::string bracketed(const std::string& ip) {
  return ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
}

std::string format_device(const Device& d) {
  return "d" + std::to_string(d.id) + "r" + std::to_string(d.region) + "z" +
         std::to_string(d.zone) + "-" + bracketed(d.ip) + ":" + std::to_string(d.port) + "R" +
         bracketed(d.replication_ip.empty() ? d.ip : d.replication_ip) + ":" +
         std::to_string(d.replication_port ? d.replication_port : d.port) + "/" + d.device + "_\"" +
         d.meta + "\"";
}

bool valid_device_name(const std::string& name) {
  return !name.empty() && name.front() != ' ' && name.back() != ' ' &&
         name.find('/') == std::string::npos;
}

// --- command-line options (the long form of add, set_weight, remove and search) ----------------

struct Options {
  std::optional<int> id, region, zone, port, replication_port;
  std::optional<std::string> ip, replication_ip, device, meta;
  std::optional<double> weight;
  bool yes = false;
  std::vector<std::string> positional;
  bool describes_device() const {
    return id || region || zone || ip || port || replication_ip || replication_port || device ||
           weight || (meta && !meta->empty());
  }
};

Options parse_options(const std::vector<std::string>& args) {
  struct Spec {
    const char* short_name;
    const char* long_name;
    std::function<void(Options&, const std::string&)> set;
  };
  auto integer = [](const std::string& name, const std::string& v) {
    auto n = parse_int(v);
    if (!n || *n < INT32_MIN || *n > INT32_MAX)
      throw std::invalid_argument("option " + name + ": invalid integer value: '" + v + "'");
    return static_cast<int>(*n);
  };
  const std::vector<Spec> specs = {
      {"-u", "--id", [&](Options& o, const std::string& v) { o.id = integer("--id", v); }},
      {"-r", "--region",
       [&](Options& o, const std::string& v) { o.region = integer("--region", v); }},
      {"-z", "--zone", [&](Options& o, const std::string& v) { o.zone = integer("--zone", v); }},
      {"-i", "--ip", [](Options& o, const std::string& v) { o.ip = v; }},
      {"-p", "--port", [&](Options& o, const std::string& v) { o.port = integer("--port", v); }},
      {"-j", "--replication-ip", [](Options& o, const std::string& v) { o.replication_ip = v; }},
      {"-q", "--replication-port",
       [&](Options& o, const std::string& v) {
         o.replication_port = integer("--replication-port", v);
       }},
      {"-d", "--device", [](Options& o, const std::string& v) { o.device = v; }},
      {"-w", "--weight",
       [](Options& o, const std::string& v) {
         auto w = parse_double(v);
         if (!w)
           throw std::invalid_argument("option --weight: invalid floating-point value: '" + v +
                                       "'");
         o.weight = *w;
       }},
      {"-m", "--meta", [](Options& o, const std::string& v) { o.meta = v; }},
  };
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "-y" || a == "--yes") {
      o.yes = true;
      continue;
    }
    const Spec* spec = nullptr;
    std::optional<std::string> value;
    for (auto& s : specs) {
      std::string long_name = s.long_name;
      if (a == s.short_name || a == long_name) {
        spec = &s;
      } else if (a.rfind(long_name + "=", 0) == 0) {
        spec = &s;
        value = a.substr(long_name.size() + 1);
      }
      if (spec) break;
    }
    if (!spec) {
      o.positional.push_back(a);
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size())
        throw std::invalid_argument(std::string(spec->long_name) + " option requires an argument");
      value = args[++i];
    }
    spec->set(o, *value);
  }
  return o;
}

// --- search values ------------------------------------------------------------------------------

struct Search {
  std::optional<int> id, region, zone, port, replication_port;
  std::optional<std::string> ip, replication_ip, device, meta;
  std::optional<double> weight;
};

size_t digits_end(std::string_view s, size_t from) {
  while (from < s.size() && std::isdigit(static_cast<unsigned char>(s[from]))) ++from;
  return from;
}

int number_at(std::string_view s, size_t from, size_t to, std::string_view original) {
  auto n = parse_int(s.substr(from, to - from));
  if (!n) throw std::invalid_argument("Invalid <search-value>: '" + std::string(original) + "'");
  return static_cast<int>(*n);
}

// An address in a search value: digits and dots, or [ipv6].
std::optional<std::string> take_ip(std::string_view& s) {
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) {
    size_t i = 1;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    std::string ip(s.substr(0, i));
    s.remove_prefix(i);
    return normalize_ip_or_throw(ip);
  }
  if (!s.empty() && s[0] == '[') {
    size_t i = s.find(']');
    i = i == std::string_view::npos ? s.size() : i + 1;
    std::string ip(s.substr(1, i - 2 < s.size() ? i - 2 : 0));
    s.remove_prefix(i);
    return normalize_ip_or_throw(ip);
  }
  return std::nullopt;
}

Search parse_search_value(std::string_view original) {
  Search m;
  std::string_view s = original;
  auto number = [&](char prefix, std::optional<int>& field) {
    if (s.empty() || s[0] != prefix) return;
    size_t end = digits_end(s, 1);
    field = number_at(s, 1, end, original);
    s.remove_prefix(end);
  };
  number('d', m.id);
  number('r', m.region);
  number('z', m.zone);
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  m.ip = take_ip(s);
  number(':', m.port);
  if (!s.empty() && s[0] == 'R') {
    s.remove_prefix(1);
    m.replication_ip = take_ip(s);
    number(':', m.replication_port);
  }
  if (!s.empty() && s[0] == '/') {
    size_t end = s.find('_', 1);
    if (end == std::string_view::npos) end = s.size();
    m.device = std::string(s.substr(1, end - 1));
    s.remove_prefix(end);
  }
  if (!s.empty() && s[0] == '_') {
    m.meta = std::string(s.substr(1));
    s = {};
  }
  if (!s.empty())
    throw std::invalid_argument("Invalid <search-value>: '" + std::string(original) + "'");
  return m;
}

Search search_from_options(const Options& o) {
  Search m;
  m.id = o.id;
  m.region = o.region;
  m.zone = o.zone;
  if (o.ip) m.ip = normalize_address(*o.ip);
  m.port = o.port;
  if (o.replication_ip) m.replication_ip = normalize_address(*o.replication_ip);
  m.replication_port = o.replication_port;
  m.device = o.device;
  m.weight = o.weight;
  if (o.meta && !o.meta->empty()) m.meta = o.meta;
  return m;
}

std::vector<int> search_devices(const RingBuilder& b, const Search& m) {
  std::vector<int> out;
  for (auto& bd : b.devices()) {
    if (!bd) continue;
    auto& d = bd->device;
    auto ip_matches = [](const std::string& have, const std::optional<std::string>& want) {
      if (!want) return true;
      auto n = normalize_ip(have);
      return (n ? *n : std::string()) == *want;
    };
    if ((m.id && *m.id != d.id) || (m.region && *m.region != d.region) ||
        (m.zone && *m.zone != d.zone) || !ip_matches(d.ip, m.ip) || (m.port && *m.port != d.port) ||
        !ip_matches(d.replication_ip, m.replication_ip) ||
        (m.replication_port && *m.replication_port != d.replication_port) ||
        (m.device && *m.device != d.device) || (m.weight && *m.weight != d.weight) ||
        (m.meta && d.meta.find(*m.meta) == std::string::npos))
      continue;
    out.push_back(d.id);
  }
  return out;
}

// --- add values ---------------------------------------------------------------------------------

// "ip:port" up to an 'R' or '/', the ip possibly [bracketed].
std::tuple<std::string, int, std::string_view> parse_address(std::string_view rest) {
  std::string text(rest);
  if (!text.empty() && text[0] == '[') {
    text.erase(0, 1);
    if (auto close = text.find(']'); close != std::string::npos) text.erase(close, 1);
  }
  size_t pos = 0;
  while (pos < text.size() && text[pos] != 'R' && text[pos] != '/') ++pos;
  std::string address = text.substr(0, pos);
  size_t consumed = rest.size() - (text.size() - pos);
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("Invalid port in add value");
  auto port = parse_int(address.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535)
    throw std::invalid_argument("Invalid port " + address.substr(colon) + " in add value");
  return {normalize_ip_or_throw(address.substr(0, colon)), static_cast<int>(*port),
          rest.substr(consumed)};
}

struct AddValue {
  Device device;
  bool region_given = false;
};

AddValue parse_add_value(std::string_view value) {
  AddValue out;
  auto& d = out.device;
  std::string_view rest = value;
  auto invalid = [&] { return std::invalid_argument("Invalid add value: " + std::string(value)); };
  if (!rest.empty() && rest[0] == 'r') {
    size_t end = digits_end(rest, 1);
    auto n = parse_int(rest.substr(1, end - 1));
    if (!n) throw invalid();
    d.region = static_cast<int>(*n);
    out.region_given = true;
    rest.remove_prefix(end);
  }
  if (rest.empty() || rest[0] != 'z') throw invalid();
  size_t end = digits_end(rest, 1);
  auto zone = parse_int(rest.substr(1, end - 1));
  if (!zone) throw invalid();
  d.zone = static_cast<int>(*zone);
  rest.remove_prefix(end);
  if (rest.empty() || rest[0] != '-') throw invalid();
  std::tie(d.ip, d.port, rest) = parse_address(rest.substr(1));
  if (!rest.empty() && rest[0] == 'R')
    std::tie(d.replication_ip, d.replication_port, rest) = parse_address(rest.substr(1));
  if (rest.empty() || rest[0] != '/') throw invalid();
  size_t underscore = rest.find('_', 1);
  if (underscore == std::string_view::npos) underscore = rest.size();
  d.device = std::string(rest.substr(1, underscore - 1));
  if (!valid_device_name(d.device)) throw std::invalid_argument("Invalid device name");
  rest.remove_prefix(underscore);
  if (!rest.empty() && rest[0] == '_') d.meta = std::string(rest.substr(1));
  return out;
}

// --- the session --------------------------------------------------------------------------------

class Session {
 public:
  Session(std::string builder_file, std::string ring_file, std::ostream& out, std::ostream& err)
      : builder_file_(std::move(builder_file)),
        ring_file_(std::move(ring_file)),
        out_(out),
        err_(err) {
    auto dir = fs::path(builder_file_).parent_path();
    backup_dir_ = (dir.empty() ? fs::path("backups") : dir / "backups").string();
  }

  int run(const std::string& command, const std::vector<std::string>& args);

 private:
  using Handler = int (Session::*)(const std::vector<std::string>&);

  void load() {
    std::error_code ec;
    if (!fs::exists(builder_file_, ec)) {
      out_ << "Ring Builder file does not exist: " << builder_file_ << "\n";
      throw Exit{exit_error};
    }
    try {
      builder_.emplace(RingBuilder::load(builder_file_));
    } catch (const std::exception& e) {
      out_ << "Problem occurred while reading builder file: " << builder_file_ << ". " << e.what()
           << "\n";
      throw Exit{exit_error};
    }
  }
  RingBuilder& builder() { return *builder_; }

  std::string backup_path(const std::string& file, std::time_t when) {
    fs::create_directories(backup_dir_);
    return (fs::path(backup_dir_) /
            (std::to_string(when) + "." + fs::path(file).filename().string()))
        .string();
  }
  void save_builder() { builder().save(builder_file_); }

  void validation_error(const std::exception& e) {
    out_ << dashes << "\n"
         << "An error has occurred during ring validation. Common\n"
            "causes of failure are rings that are empty or do not\n"
            "have enough devices to accommodate the replica count.\n"
            "Original exception message:\n "
         << e.what() << "\n"
         << dashes << "\n";
  }

  // One device or, with --yes, several; none is an error.
  void check_devices(const std::vector<int>& ids, bool yes, const std::string& abort_message) {
    if (ids.empty()) {
      out_ << "Search value matched 0 devices.\nThe on-disk ring builder is unchanged.\n";
      throw Exit{exit_error};
    }
    if (ids.size() > 1) {
      out_ << "Matched more than one device:\n";
      for (int id : ids) out_ << "    " << format_device(device(id)) << "\n";
      if (!yes) {
        out_ << "Give --yes to change them all.\n" << abort_message << "\n";
        throw Exit{exit_error};
      }
    }
  }
  const Device& device(int id) { return builder().devices()[static_cast<size_t>(id)]->device; }

  int summary(const std::vector<std::string>&);
  int create(const std::vector<std::string>&);
  int add(const std::vector<std::string>&);
  int set_weight(const std::vector<std::string>&);
  int remove(const std::vector<std::string>&);
  int search(const std::vector<std::string>&);
  int rebalance(const std::vector<std::string>&);
  int dispersion(const std::vector<std::string>&);
  int pretend_min_part_hours_passed(const std::vector<std::string>&);
  int set_min_part_hours(const std::vector<std::string>&);
  int set_replicas(const std::vector<std::string>&);
  int set_overload(const std::vector<std::string>&);
  int validate(const std::vector<std::string>&);
  int write_ring(const std::vector<std::string>&);

  std::string builder_file_, ring_file_, backup_dir_;
  std::ostream& out_;
  std::ostream& err_;
  std::optional<RingBuilder> builder_;
};

int Session::run(const std::string& command, const std::vector<std::string>& args) {
  static const std::map<std::string, Handler> commands = {
      {"", &Session::summary},
      {"create", &Session::create},
      {"add", &Session::add},
      {"set_weight", &Session::set_weight},
      {"remove", &Session::remove},
      {"search", &Session::search},
      {"rebalance", &Session::rebalance},
      {"dispersion", &Session::dispersion},
      {"pretend_min_part_hours_passed", &Session::pretend_min_part_hours_passed},
      {"set_min_part_hours", &Session::set_min_part_hours},
      {"set_replicas", &Session::set_replicas},
      {"set_overload", &Session::set_overload},
      {"validate", &Session::validate},
      {"write_ring", &Session::write_ring},
  };
  try {
    auto it = commands.find(command);
    if (command != "create") load();
    if (it == commands.end()) {
      out_ << "Unknown command: " << command << "\n";
      return exit_error;
    }
    return (this->*(it->second))(args);
  } catch (const Exit& e) {
    return e.code;
  } catch (const std::exception& e) {
    out_ << e.what() << "\n";
    return exit_error;
  }
}

int Session::summary(const std::vector<std::string>&) {
  auto& b = builder();
  out_ << builder_file_ << ", build version " << b.version() << ", id " << b.id() << "\n";
  double balance = 0;
  std::optional<std::string> empty_error;
  std::vector<double> balances(b.devices().size(), 0.0);
  try {
    balance = b.balance();
    balances = b.balance_per_device();
  } catch (const RingBuilderError& e) {
    empty_error = e.what();
  }
  std::set<int> regions;
  std::set<std::pair<int, int>> zones;
  int count = 0;
  for (auto& d : b.devices()) {
    if (!d) continue;
    regions.insert(d->device.region);
    zones.insert({d->device.region, d->device.zone});
    ++count;
  }
  out_ << format(
      "%u partitions, %.6f replicas, %zu regions, %zu zones, %d devices, %.02f balance, "
      "%.02f dispersion\n",
      b.parts(), b.replicas(), regions.size(), zones.size(), count, balance,
      b.dispersion().value_or(0.0));
  out_ << "The minimum number of hours before a partition can be reassigned is "
       << b.min_part_hours() << " (" << timedelta(b.min_part_seconds_left()) << " remaining)\n";
  out_ << format("The overload factor is %0.2f%% (%.6f)\n", b.overload() * 100, b.overload());
  std::error_code ec;
  if (!fs::exists(ring_file_, ec)) {
    out_ << "Ring file " << ring_file_ << " not found, probably it hasn't been written yet\n";
  } else {
    try {
      auto on_disk = Ring::load(ring_file_);
      out_ << "Ring file " << ring_file_
           << (on_disk == b.ring() ? " is up-to-date\n" : " is obsolete\n");
    } catch (const std::exception& e) {
      out_ << "Ring file " << ring_file_ << " is invalid: " << e.what() << "\n";
    }
  }

  // The device table, columns as wide as their widest value.
  size_t ip_width = 10, port_width = 4, rep_ip_width = 14, rep_port_width = 4, weight_width = 6;
  std::vector<const BuilderDevice*> rows;
  for (auto& d : b.devices()) {
    if (!d) continue;
    rows.push_back(&*d);
    auto& dev = d->device;
    ip_width = std::max(ip_width, bracketed(dev.ip).size());
    rep_ip_width = std::max(rep_ip_width, bracketed(dev.replication_ip).size());
    port_width = std::max(port_width, std::to_string(dev.port).size());
    rep_port_width = std::max(rep_port_width, std::to_string(dev.replication_port).size());
    weight_width = std::max(weight_width, format("%6.02f", dev.weight).size());
  }
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) {
    return std::tie(a->device.region, a->device.zone, a->device.ip, a->device.device) <
           std::tie(b->device.region, b->device.zone, b->device.ip, b->device.device);
  });
  auto w = [](size_t n) { return static_cast<int>(n); };
  out_ << format("Devices:%5s %6s %4s %*s:%-*s %*s:%-*s %5s %*s %10s %7s %5s %s\n", "id", "region",
                 "zone", w(ip_width), "ip address", w(port_width), "port", w(rep_ip_width),
                 "replication ip", w(rep_port_width), "port", "name", w(weight_width), "weight",
                 "partitions", "balance", "flags", "meta");
  for (auto* d : rows) {
    auto& dev = d->device;
    out_ << format("%13d %6d %4d %*s:%-*d %*s:%-*d %5s %*.02f %10lld %7.02f %5s %s\n", dev.id,
                   dev.region, dev.zone, w(ip_width), bracketed(dev.ip).c_str(), w(port_width),
                   dev.port, w(rep_ip_width), bracketed(dev.replication_ip).c_str(),
                   w(rep_port_width), dev.replication_port, dev.device.c_str(), w(weight_width),
                   dev.weight, static_cast<long long>(d->parts),
                   balances[static_cast<size_t>(dev.id)], b.marked_for_removal(dev.id) ? "DEL" : "",
                   dev.meta.c_str());
  }
  if (empty_error) out_ << *empty_error << "\n";
  return exit_success;
}

int Session::create(const std::vector<std::string>& args) {
  if (args.size() < 3) {
    out_ << "nubo ring <builder_file> create <part_power> <replicas> <min_part_hours>\n"
            "    Creates <builder_file> with 2^<part_power> partitions and <replicas>.\n"
            "    <min_part_hours> is number of hours to restrict moving a partition more\n"
            "    than once.\n";
    return exit_error;
  }
  auto part_power = parse_int(args[0]);
  auto replicas = parse_double(args[1]);
  auto hours = parse_int(args[2]);
  if (!part_power || !replicas || !hours) {
    out_ << "part_power and min_part_hours must be integers and replicas a number\n";
    return exit_error;
  }
  RingBuilder b(static_cast<int>(*part_power), *replicas, static_cast<int>(*hours));
  b.save(backup_path(builder_file_, std::time(nullptr)));
  b.save(builder_file_);
  return exit_success;
}

int Session::add(const std::vector<std::string>& args) {
  if (args.size() < 2) {
    out_ << usage_text;
    return exit_error;
  }
  std::vector<Device> to_add;
  try {
    auto o = parse_options(args);
    if (o.describes_device()) {
      if (!o.positional.empty()) {
        out_ << usage_text;
        return exit_error;
      }
      for (auto [set, name] : {std::pair{bool(o.region), "-r/--region"},
                               {bool(o.zone), "-z/--zone"},
                               {bool(o.ip), "-i/--ip"},
                               {bool(o.port), "-p/--port"},
                               {bool(o.device), "-d/--device"},
                               {bool(o.weight), "-w/--weight"}})
        if (!set)
          throw std::invalid_argument(std::string("Required argument ") + name + " not specified.");
      Device d;
      if (o.id) d.id = *o.id;
      d.region = *o.region;
      d.zone = *o.zone;
      d.ip = normalize_address(*o.ip);
      d.port = *o.port;
      d.replication_ip = normalize_address(o.replication_ip ? *o.replication_ip : *o.ip);
      d.replication_port = o.replication_port ? *o.replication_port : *o.port;
      if (!valid_device_name(*o.device)) throw std::invalid_argument("Invalid device name");
      d.device = *o.device;
      d.weight = *o.weight;
      if (d.weight < 0)
        throw std::invalid_argument("Invalid weight value: " + python_float(d.weight));
      d.meta = o.meta.value_or("");
      to_add.push_back(std::move(d));
    } else {
      if (o.positional.size() % 2 != 0) {
        out_ << usage_text;
        return exit_error;
      }
      for (size_t i = 0; i < o.positional.size(); i += 2) {
        auto value = parse_add_value(o.positional[i]);
        if (!value.region_given)
          err_ << "WARNING: No region specified for " << o.positional[i]
               << ". Defaulting to region 1.\n";
        auto weight = parse_double(o.positional[i + 1]);
        if (!weight)
          throw std::invalid_argument("could not convert string to float: '" + o.positional[i + 1] +
                                      "'");
        if (*weight < 0) throw std::invalid_argument("Invalid weight value: " + o.positional[i]);
        value.device.weight = *weight;
        to_add.push_back(std::move(value.device));
      }
    }
    for (auto& d : to_add) {
      for (auto& existing : builder().devices()) {
        if (!existing) continue;
        auto& e = existing->device;
        if (e.ip == d.ip && e.port == d.port && e.device == d.device) {
          out_ << "Device " << e.id << " already uses " << e.ip << ":" << e.port << "/" << e.device
               << ".\nThe on-disk ring builder is unchanged.\n\n";
          return exit_error;
        }
      }
      d.id = builder().add_device(d);
      out_ << "Device " << format_device(device(d.id)) << " with " << python_float(d.weight)
           << " weight got id " << d.id << "\n";
    }
  } catch (const std::invalid_argument& e) {
    out_ << e.what() << "\nThe on-disk ring builder is unchanged.\n";
    return exit_error;
  } catch (const RingBuilderError& e) {
    out_ << e.what() << "\nThe on-disk ring builder is unchanged.\n";
    return exit_error;
  }
  save_builder();
  return exit_success;
}

int Session::set_weight(const std::vector<std::string>& args) {
  if (args.size() < 2) {
    out_ << usage_text;
    return exit_error;
  }
  try {
    auto o = parse_options(args);
    std::vector<std::pair<std::vector<int>, double>> changes;
    auto weight_of = [](const std::string& text) {
      auto w = parse_double(text);
      if (!w) throw std::invalid_argument("could not convert string to float: '" + text + "'");
      return *w;
    };
    if (o.describes_device()) {
      if (o.positional.size() != 1) {
        out_ << usage_text;
        return exit_error;
      }
      changes.emplace_back(search_devices(builder(), search_from_options(o)),
                           weight_of(o.positional[0]));
    } else {
      if (o.positional.size() % 2 != 0) {
        out_ << usage_text;
        return exit_error;
      }
      for (size_t i = 0; i < o.positional.size(); i += 2)
        changes.emplace_back(search_devices(builder(), parse_search_value(o.positional[i])),
                             weight_of(o.positional[i + 1]));
    }
    for (auto& [ids, weight] : changes) {
      check_devices(ids, o.yes, "Aborting device modifications");
      for (int id : ids) {
        builder().set_weight(id, weight);
        out_ << format_device(device(id)) << " weight set to " << python_float(weight) << "\n";
      }
    }
  } catch (const std::invalid_argument& e) {
    out_ << e.what() << "\n";
    return exit_error;
  } catch (const RingBuilderError& e) {
    out_ << e.what() << "\n";
    return exit_error;
  }
  save_builder();
  return exit_success;
}

int Session::remove(const std::vector<std::string>& args) {
  if (args.empty()) {
    out_ << usage_text;
    return exit_error;
  }
  std::vector<int> ids;
  bool yes = false;
  try {
    auto o = parse_options(args);
    yes = o.yes;
    if (o.describes_device()) {
      ids = search_devices(builder(), search_from_options(o));
    } else {
      for (auto& value : o.positional)
        for (int id : search_devices(builder(), parse_search_value(value)))
          if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
  } catch (const std::invalid_argument& e) {
    out_ << e.what() << "\n";
    return exit_error;
  }
  check_devices(ids, yes, "Aborting device removals");
  for (int id : ids) {
    builder().remove_device(id);
    out_ << format_device(device(id))
         << " marked for removal and will be removed next rebalance.\n";
  }
  save_builder();
  return exit_success;
}

int Session::search(const std::vector<std::string>& args) {
  if (args.empty()) {
    out_ << usage_text;
    return exit_error;
  }
  std::vector<int> ids;
  try {
    auto o = parse_options(args);
    if (o.describes_device())
      ids = search_devices(builder(), search_from_options(o));
    else if (o.positional.size() == 1)
      ids = search_devices(builder(), parse_search_value(o.positional[0]));
    else {
      out_ << usage_text;
      return exit_error;
    }
  } catch (const std::invalid_argument& e) {
    out_ << e.what() << "\n";
    return exit_error;
  }
  if (ids.empty()) {
    out_ << "No matching devices found\n";
    return exit_error;
  }
  std::vector<double> balances(builder().devices().size(), 0.0);
  try {
    balances = builder().balance_per_device();
  } catch (const RingBuilderError&) {
  }
  out_ << "Devices:    id  region  zone      ip address  port  replication ip  replication port    "
          "  "
          "name weight partitions balance meta\n";
  for (int id : ids) {
    auto& bd = *builder().devices()[static_cast<size_t>(id)];
    auto& d = bd.device;
    out_ << format("         %5d %7d %5d %15s %5d %15s %17d %9s %6.02f %10lld %7.02f %s\n", d.id,
                   d.region, d.zone, d.ip.c_str(), d.port, d.replication_ip.c_str(),
                   d.replication_port, d.device.c_str(), d.weight, static_cast<long long>(bd.parts),
                   balances[static_cast<size_t>(id)], d.meta.c_str());
  }
  return exit_success;
}

int Session::rebalance(const std::vector<std::string>& args) {
  bool force = false;
  std::optional<std::string> seed_text;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    auto& a = args[i];
    if (a == "-f" || a == "--force") {
      force = true;
    } else if (a == "-d" || a == "--debug") {
    } else if (a == "-s" || a == "--seed") {
      if (i + 1 >= args.size()) {
        out_ << "--seed option requires an argument\n";
        return exit_error;
      }
      seed_text = args[++i];
    } else if (a.rfind("--seed=", 0) == 0) {
      seed_text = a.substr(7);
    } else {
      positional.push_back(a);
    }
  }
  if (!seed_text && !positional.empty()) seed_text = positional[0];
  std::optional<std::uint64_t> seed;
  if (seed_text) {
    if (auto n = parse_int(*seed_text))
      seed = static_cast<std::uint64_t>(*n);
    else
      seed = std::hash<std::string>{}(*seed_text);
  }

  auto& b = builder();
  bool devices_changed = b.devices_changed();
  auto seconds_left = b.min_part_seconds_left();
  double last_balance = 0, balance = 0;
  std::optional<double> last_dispersion;
  RebalanceResult result;
  try {
    last_balance = b.balance();
    last_dispersion = b.dispersion();
    result = b.rebalance(seed);
    balance = result.balance;
  } catch (const RingBuilderError& e) {
    validation_error(e);
    return exit_error;
  }
  if (!(result.changed_parts || force || result.removed_devices)) {
    out_ << "No partitions could be reassigned.\n";
    if (seconds_left > 0)
      out_ << "The time between rebalances must be at least min_part_hours: " << b.min_part_hours()
           << " hours (" << timedelta(b.min_part_seconds_left()) << " remaining)\n";
    else
      out_ << "There is no need to do so at this time\n";
    return exit_warning;
  }
  bool cowardly = !force && !devices_changed;
  if (cowardly) {
    // A zero-weight device still holding partitions keeps the balance at its maximum: any
    // rebalance then counts as a change.
    bool balance_changed =
        std::abs(last_balance - balance) >= 1 ||
        (last_balance == RingBuilder::max_balance && balance == RingBuilder::max_balance);
    bool dispersion_changed =
        !last_dispersion || std::abs(*last_dispersion - b.dispersion().value_or(0)) >= 1;
    if (balance_changed || dispersion_changed) cowardly = false;
  }
  if (cowardly) {
    out_ << "Cowardly refusing to save rebalance as it did not change at least 1%.\n";
    return exit_warning;
  }
  try {
    b.validate();
  } catch (const RingBuilderError& e) {
    validation_error(e);
    return exit_error;
  }
  double dispersion = b.dispersion().value_or(0);
  out_ << format(
      "Reassigned %lld (%.02f%%) partitions. Balance is now %.02f.  Dispersion is now %.02f\n",
      static_cast<long long>(result.changed_parts),
      100.0 * static_cast<double>(result.changed_parts) / b.parts(), balance, dispersion);
  int status = exit_success;
  if (dispersion > 0) {
    out_ << dashes << "\n"
         << format(
                "NOTE: Dispersion of %.06f indicates some parts are not\n"
                "      optimally dispersed.\n\n"
                "      You may want to adjust some device weights, increase\n"
                "      the overload or review the dispersion report.\n",
                dispersion)
         << dashes << "\n";
    status = exit_warning;
  } else if (balance > 5 && balance / 100.0 > b.overload()) {
    out_ << dashes << "\n"
         << format("NOTE: Balance of %.02f indicates you should push this \n", balance)
         << format("      ring, wait at least %d hours, and rebalance/repush.\n",
                   b.min_part_hours())
         << dashes << "\n";
    status = exit_warning;
  }
  auto ring = b.ring();
  auto now = std::time(nullptr);
  ring.save(backup_path(ring_file_, now));
  b.save(backup_path(builder_file_, now));
  ring.save(ring_file_);
  save_builder();
  return status;
}

int Session::dispersion(const std::vector<std::string>& args) {
  auto& b = builder();
  if (!b.ever_rebalanced()) {
    out_ << "Specified builder file \"" << builder_file_
         << "\" is not rebalanced yet. Please rebalance first.\n";
    return exit_error;
  }
  bool verbose = false;
  std::optional<std::regex> filter;
  for (auto& a : args) {
    if (a == "-v" || a == "--verbose") {
      verbose = true;
    } else if (a == "--recalculate") {
    } else if (!filter) {
      try {
        filter.emplace(a);
      } catch (const std::regex_error& e) {
        out_ << "Invalid tier regex: " << a << "\n";
        return exit_error;
      }
    }
  }
  auto report = b.dispersion_report();
  std::vector<const DispersionTier*> shown;
  double worst = 0;
  std::string worst_tier;
  for (auto& tier : report) {
    if (filter && !std::regex_search(tier.name, *filter, std::regex_constants::match_continuous))
      continue;
    if (tier.dispersion > worst) {
      worst = tier.dispersion;
      worst_tier = tier.name;
    }
    shown.push_back(&tier);
  }
  double balance = 0;
  try {
    balance = b.balance();
  } catch (const RingBuilderError&) {
  }
  out_ << format("Dispersion is %.06f, Balance is %.06f, Overload is %0.2f%%\n",
                 b.dispersion().value_or(0), balance, b.overload() * 100);
  out_ << format("Required overload is %.6f%%\n", b.required_overload() * 100);
  int status = exit_success;
  if (!worst_tier.empty()) {
    status = exit_warning;
    out_ << format("Worst tier is %.06f (%s)\n", worst, worst_tier.c_str());
  }
  if (verbose && !shown.empty()) {
    auto columns = static_cast<int>(std::ceil(b.replicas() + 1));
    int count_width = std::max(static_cast<int>(std::to_string(b.parts()).size()), 5);
    size_t tier_width = 30;
    for (auto* t : shown) tier_width = std::max(tier_width, t->name.size());
    std::string header = format("%-*s %*s %6s %6s", static_cast<int>(tier_width), "Tier",
                                count_width, "Parts", "%", "Max");
    for (int k = 0; k < columns; ++k) header += format(" %*d", count_width, k);
    std::string underline(header.size(), '-');
    out_ << underline << "\n" << header << "\n" << underline << "\n";
    for (auto* t : shown) {
      std::string line = format(
          "%-*s %*lld %6.02f %6d", static_cast<int>(tier_width), t->name.c_str(), count_width,
          static_cast<long long>(t->placed_parts), t->dispersion, t->max_replicas);
      for (int k = 0; k < columns; ++k) {
        auto v =
            static_cast<size_t>(k) < t->replicas.size() ? t->replicas[static_cast<size_t>(k)] : 0;
        line += format(" %*lld", count_width, static_cast<long long>(v));
      }
      out_ << line << "\n";
    }
  }
  return status;
}

int Session::pretend_min_part_hours_passed(const std::vector<std::string>&) {
  builder().pretend_min_part_hours_passed();
  save_builder();
  return exit_success;
}

int Session::set_min_part_hours(const std::vector<std::string>& args) {
  auto hours = args.empty() ? std::nullopt : parse_int(args[0]);
  if (!hours || *hours < 0) {
    out_ << "nubo ring <builder_file> set_min_part_hours <hours>\n";
    return exit_error;
  }
  builder().set_min_part_hours(static_cast<int>(*hours));
  out_ << "The minimum number of hours before a partition can be reassigned is now set to "
       << args[0] << "\n";
  save_builder();
  return exit_success;
}

int Session::set_replicas(const std::vector<std::string>& args) {
  if (args.empty()) {
    out_ << "nubo ring <builder_file> set_replicas <replicas>\n";
    return exit_error;
  }
  auto replicas = parse_double(args[0]);
  if (!replicas) {
    out_ << "nubo ring <builder_file> set_replicas <replicas>\n"
         << "\"" << args[0] << "\" is not a valid number.\n";
    return exit_error;
  }
  if (*replicas < 1) {
    out_ << "Replica count must be at least 1.\n";
    return exit_error;
  }
  builder().set_replicas(*replicas);
  out_ << format("The replica count is now %.6f.\n", builder().replicas())
       << "The change will take effect after the next rebalance.\n";
  save_builder();
  return exit_success;
}

int Session::set_overload(const std::vector<std::string>& args) {
  if (args.empty()) {
    out_ << "nubo ring <builder_file> set_overload <overload>[%]\n";
    return exit_error;
  }
  std::string text = args[0];
  bool percent = !text.empty() && text.back() == '%';
  while (!text.empty() && text.back() == '%') text.pop_back();
  auto overload = parse_double(text);
  if (!overload) {
    out_ << "nubo ring <builder_file> set_overload <overload>[%]\n"
         << "'" << text << "' is not a valid number.\n";
    return exit_error;
  }
  if (percent) *overload *= 0.01;
  if (*overload < 0) {
    out_ << "Overload must be non-negative.\n";
    return exit_error;
  }
  int status = exit_success;
  if (*overload > 1 && !percent) {
    out_ << "!?! Warning overload is greater than 100% !?!\n";
    status = exit_warning;
  }
  builder().set_overload(*overload);
  out_ << format("The overload factor is now %0.2f%% (%.6f)\n", builder().overload() * 100,
                 builder().overload())
       << "The change will take effect after the next rebalance.\n";
  save_builder();
  return status;
}

int Session::validate(const std::vector<std::string>&) {
  try {
    builder().validate();
  } catch (const RingBuilderError& e) {
    out_ << e.what() << "\n";
    return exit_error;
  }
  return exit_success;
}

int Session::write_ring(const std::vector<std::string>&) {
  auto& b = builder();
  if (b.devices().empty()) {
    out_ << "Unable to write empty ring.\n";
    return exit_error;
  }
  if (!b.ever_rebalanced())
    out_ << "Warning: Writing a ring with no partition assignments but with devices; did you "
            "forget to run \"rebalance\"?\n";
  auto ring = b.ring();
  ring.save(backup_path(ring_file_, std::time(nullptr)));
  ring.save(ring_file_);
  return exit_success;
}

}  // namespace

int ring_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    out << usage_text;
    return exit_success;
  }
  // "<name>.builder" goes with "<name>.ring.json"; naming the ring file means its builder.
  std::string builder_file = args[0], ring_file;
  const std::string ring_suffix = ".ring.json", builder_suffix = ".builder";
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(builder_file, ring_suffix)) {
    ring_file = builder_file;
    builder_file =
        builder_file.substr(0, builder_file.size() - ring_suffix.size()) + builder_suffix;
    out << "Note: using " << builder_file << " instead of " << args[0] << " as builder file\n";
  } else if (ends_with(builder_file, builder_suffix)) {
    ring_file = builder_file.substr(0, builder_file.size() - builder_suffix.size()) + ring_suffix;
  } else {
    ring_file = builder_file + ring_suffix;
  }
  Session session(builder_file, ring_file, out, err);
  std::string command = args.size() > 1 ? args[1] : "";
  std::vector<std::string> rest(args.begin() + std::min<size_t>(2, args.size()), args.end());
  return session.run(command, rest);
}

}  // namespace nubo::object
