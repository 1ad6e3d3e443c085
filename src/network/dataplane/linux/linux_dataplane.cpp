// The `linux` dataplane (DESIGN §8, virt-notes.md): a bridge per network, a namespace per router
// and per DHCP server joined to the bridges by veth pairs, dnsmasq with static hosts, nftables
// rendered whole and replaced atomically, and the metadata proxy. Every apply compares with
// what it applied before (and, when full, with what the kernel shows) and changes only what
// differs, so traffic that is already right is never disturbed.
#include <dirent.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/files.hpp"
#include "common/process.hpp"
#include "network/dataplane/dataplane.hpp"
#include "network/dataplane/linux/metadata_proxy.hpp"
#include "network/dataplane/linux/render.hpp"
#include "network/ipam/address.hpp"

namespace nubo::network::dataplane {

namespace fs = std::filesystem;
using namespace kernel;

namespace {

constexpr const char* kAlias = "nubo";  // on devices this agent made, so that only those go
constexpr auto kCommandTimeout = std::chrono::seconds(30);
// Listings of thousands of devices or rules are megabytes (about 300 bytes a device).
constexpr std::size_t kListingLimit = 256u << 20;

struct Link {
  std::string master, address, alias;
  bool up = false;
  long mtu = 0;
};

struct Address {
  std::string text;  // "10.0.0.1/24"
  bool operator<(const Address& o) const { return text < o.text; }
};

bool process_alive_with(pid_t pid, const std::string& needle) {
  if (pid <= 0) return false;
  auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline.find(needle) != std::string::npos;
}

pid_t read_pid(const fs::path& p) {
  try {
    return static_cast<pid_t>(std::stol(read_file(p)));
  } catch (...) {
    return -1;
  }
}

class LinuxDataplane final : public Dataplane {
 public:
  explicit LinuxDataplane(LinuxSettings s) : s_(std::move(s)) {
    fs::create_directories(fs::path(s_.state_dir) / "dhcp");
    std::ifstream in(fs::path(s_.state_dir) / "namespaces");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) namespaces_.insert(line);
    proxy_ = std::make_unique<MetadataProxy>(
        s_.metadata, [this](const std::string& netns, const std::string& source) {
          return guest_of(netns, source);
        });
  }
  ~LinuxDataplane() override { stop(); }

  void stop() override {
    if (proxy_) proxy_->stop();
  }

  ApplyResult apply(const HostState& desired, bool full) override;

 private:
  // ---- commands ----
  std::vector<std::string> ip(std::initializer_list<std::string> args,
                              const std::string& netns) const {
    std::vector<std::string> argv{"ip"};
    if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
    argv.insert(argv.end(), args);
    return argv;
  }
  std::vector<std::string> in_netns(const std::string& netns, std::vector<std::string> argv) const {
    if (netns.empty()) return argv;
    argv.insert(argv.begin(), {"ip", "netns", "exec", netns});
    return argv;
  }
  // `ip -batch`: many changes in one process; a failing line does not stop the others.
  void batch(const std::string& netns, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    std::string text;
    for (auto& l : lines) text += l + "\n";
    auto file = fs::path(s_.state_dir) / "ip.batch";
    write_file_atomic(file, text);
    auto r = run_process(ip({"-force", "-batch", file.string()}, netns), kCommandTimeout);
    if (r.exit_code != 0)
      spdlog::warn("network agent: ip -batch in {} failed ({}): {}",
                   netns.empty() ? "the host" : netns, r.exit_code, r.output);
  }
  // Replaces nftables tables atomically; returns `nft list` of them afterwards.
  void nft_apply(const std::string& netns, const std::string& text) {
    auto file = fs::path(s_.state_dir) / "nft.rules";
    write_file_atomic(file, text);
    check_process(in_netns(netns, {"nft", "-f", file.string()}), kCommandTimeout);
  }
  // The kernel's tables, as chain and set sizes (absent tables: nothing).
  Shape kernel_shape(const std::string& netns, const std::vector<std::string>& tables) {
    Shape out;
    for (auto& t : tables) {
      std::istringstream words(t);
      std::string family, name;
      words >> family >> name;
      auto r = run_process(in_netns(netns, {"nft", "-j", "list", "table", family, name}),
                           kCommandTimeout, kListingLimit);
      if (r.exit_code != 0) continue;
      out.merge(shape_of_listing(r.output));
    }
    return out;
  }
  // Applies `rules` over what was applied before: a delta when possible, else a replacement;
  // `verify` (a full resync) first compares the kernel's tables with them and replaces on any
  // difference.
  void apply_ruleset(const std::string& netns, const std::vector<std::string>& tables,
                     const Ruleset& rules, std::optional<Ruleset>& applied, bool verify,
                     const std::string& what, ApplyResult& result) {
    bool replace = !applied;
    if (!replace && verify && kernel_shape(netns, tables) != shape_of(*applied)) {
      spdlog::warn("network agent: {} differ from the kernel's; restoring", what);
      ++result.repairs;
      replace = true;
    }
    std::optional<std::string> script;
    if (!replace) script = delta_script(*applied, rules);
    if (!script) script = replace_script(rules);
    if (!script->empty()) nft_apply(netns, *script);
    applied = rules;
  }

  std::map<std::string, Link> observe_links(const std::string& netns) {
    std::map<std::string, Link> out;
    auto r = run_process(ip({"-j", "link", "show"}, netns), kCommandTimeout, kListingLimit);
    if (r.exit_code != 0) throw std::runtime_error("ip link show: " + r.output);
    auto doc = json::parse(r.output);
    for (auto& v : doc.as_array()) {
      auto& o = v.as_object();
      Link l;
      l.master = string_or(o, "master");
      l.address = string_or(o, "address");
      l.alias = string_or(o, "ifalias");
      l.mtu = static_cast<long>(int_or(o, "mtu"));
      if (auto* flags = find(o, "flags"); flags && flags->is_array())
        for (auto& f : flags->as_array())
          if (f.is_string() && f.as_string() == "UP") l.up = true;
      out.emplace(string_or(o, "ifname"), std::move(l));
    }
    return out;
  }

  std::set<Address> observe_addresses(const std::string& netns, const std::string& dev) {
    std::set<Address> out;
    auto r = run_process(ip({"-j", "addr", "show", "dev", dev}, netns), kCommandTimeout);
    if (r.exit_code != 0) return out;
    auto doc = json::parse(r.output);
    for (auto& v : doc.as_array())
      if (auto* infos = find(v.as_object(), "addr_info"); infos && infos->is_array())
        for (auto& i : infos->as_array()) {
          auto& a = i.as_object();
          if (string_or(a, "scope") == "link") continue;
          out.insert({string_or(a, "local") + "/" + std::to_string(int_or(a, "prefixlen"))});
        }
    return out;
  }

  std::set<std::string> present_namespaces() {
    std::set<std::string> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/run/netns", ec)) out.insert(e.path().filename());
    return out;
  }

  void remember_namespaces() {
    std::string text;
    for (auto& n : namespaces_) text += n + "\n";
    write_file_atomic(fs::path(s_.state_dir) / "namespaces", text);
  }

  std::string bridge_of(const Network& n) const {
    if (n.network_type == "flat" && n.physical_network == s_.physical_network)
      return s_.external_bridge;
    return bridge_name(n.id);
  }

  // ---- parts of apply ----
  void ensure_bridges(const HostState& d, const std::map<std::string, Link>& links,
                      std::vector<std::string>& host, ApplyResult& result);
  void ensure_ports(const HostState& d, const std::map<std::string, Link>& links,
                    std::vector<std::string>& host, std::set<std::string>& fresh,
                    ApplyResult& result);
  void configure_namespace_port(const std::string& netns, const HostState& d, const Port& p,
                                bool metadata, ApplyResult& result);
  void apply_router(const HostState& d, const Router& r, bool changed, bool full,
                    ApplyResult& result);
  void apply_dhcp(const HostState& d, const Network& n, bool full, ApplyResult& result);
  void apply_tables(const HostState& d, bool full, ApplyResult& result);
  void remove_stale(const HostState& d, const std::set<std::string>& wanted_namespaces,
                    const std::map<std::string, Link>& links, bool devices);
  // What the host's devices depend on: networks, and ports with their state.
  static std::string device_signature(const HostState& d) {
    std::string out;
    for (auto& n : d.networks)
      out += fmt::format("n {} {} {} {}\n", n.id, n.mtu, n.network_type, n.segmentation_id);
    for (auto& p : d.ports)
      out += fmt::format("p {} {} {} {}\n", p.id, p.network_id, p.device_owner, p.admin_state_up);
    return out;
  }
  // A dnsmasq whose files are in `dir` (pid, args): stopped; run with these arguments (started
  // again when they changed or it died, which counts as a repair when `expected` names it;
  // SIGHUP to re-read its files on `reload`).
  void stop_dnsmasq(const std::filesystem::path& dir);
  void run_dnsmasq(const std::string& netns, const std::filesystem::path& dir,
                   const std::vector<std::string>& argv, bool reload, const std::string& expected,
                   ApplyResult& result);
  std::vector<std::string> dnsmasq_argv(const std::filesystem::path& dir,
                                        const std::vector<std::string>& interfaces);
  void apply_router_advertisements(const HostState& d, const Router& r, ApplyResult& result);
  bool port_changed(const Port& p) const {
    if (!last_) return true;
    auto* old = last_->port(p.id);
    if (!old) return true;
    return old->mac_address != p.mac_address || old->admin_state_up != p.admin_state_up ||
           old->fixed_ips.size() != p.fixed_ips.size() ||
           !std::equal(old->fixed_ips.begin(), old->fixed_ips.end(), p.fixed_ips.begin(),
                       [](auto& a, auto& b) { return a.ip_address == b.ip_address; });
  }

  std::optional<Guest> guest_of(const std::string& netns, const std::string& source) {
    std::shared_ptr<const HostState> state;
    {
      std::lock_guard lock(current_mutex_);
      state = current_;
    }
    if (!state) return std::nullopt;
    std::set<std::string> networks;
    for (auto& n : state->networks)
      if (dhcp_namespace(n.id) == netns) networks.insert(n.id);
    for (auto& r : state->routers)
      if (router_namespace(r.id) == netns)
        for (auto& pid : r.interface_port_ids)
          if (auto* p = state->port(pid)) networks.insert(p->network_id);
    // Ports on other hosts are not in this host's state: the guest is found among all the
    // network's VM ports that the service sent (one host today; the multi-host issue sends a
    // network node every port of its networks).
    for (auto& p : state->ports)
      if (p.is_vm() && networks.count(p.network_id))
        for (auto& ip : p.fixed_ips)
          if (ip.ip_address == source) {
            // The ids become request headers: anything but a plain id is refused.
            auto plain = [](const std::string& v) {
              return !v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) {
                return std::isalnum(c) || c == '-' || c == '_';
              });
            };
            if (!plain(p.device_id) || !plain(p.project_id)) return std::nullopt;
            return Guest{p.device_id, p.project_id};
          }
    return std::nullopt;
  }

  LinuxSettings s_;
  std::optional<HostState> last_;
  std::optional<Ruleset> host_rules_;  // as applied
  PortMarks marks_;
  std::map<std::string, std::optional<Ruleset>> router_rules_;  // by namespace
  std::set<std::string> namespaces_;
  std::map<std::string, std::string> dhcp_files_;
  std::set<std::string> ns_configured_;
  std::set<std::string> plugged_;  // VM ports found on their bridges
  std::string device_signature_;   // ports configured inside their namespaces this run
  std::unique_ptr<MetadataProxy> proxy_;
  std::mutex current_mutex_;
  std::shared_ptr<const HostState> current_;
  bool started_ = false;
};

void LinuxDataplane::ensure_bridges(const HostState& d, const std::map<std::string, Link>& links,
                                    std::vector<std::string>& host, ApplyResult& result) {
  std::set<std::string> done;
  for (auto& n : d.networks) {
    auto br = bridge_of(n);
    if (!done.insert(br).second) continue;
    auto it = links.find(br);
    if (it == links.end()) {
      host.push_back(fmt::format("link add {} type bridge", br));
      // The operator's external bridge is made when missing but never marked as ours.
      if (br != s_.external_bridge) host.push_back(fmt::format("link set {} alias {}", br, kAlias));
      if (last_) ++result.repairs;
    }
    bool external = br == s_.external_bridge;
    if (it == links.end() || !it->second.up || (!external && it->second.mtu != n.mtu))
      host.push_back(external ? fmt::format("link set {} up", br)
                              : fmt::format("link set {} mtu {} up", br, n.mtu));
    if (!s_.local_ip.empty() && n.network_type == "vxlan" && n.segmentation_id > 0) {
      auto vx = fmt::format("vxlan-{}", n.segmentation_id);
      auto v = links.find(vx);
      if (v == links.end())
        host.push_back(fmt::format("link add {} type vxlan id {} local {} dstport 4789", vx,
                                   n.segmentation_id, s_.local_ip));
      if (v == links.end() || v->second.master != br || !v->second.up)
        host.push_back(fmt::format("link set {} master {} up", vx, br));
      if (v == links.end()) host.push_back(fmt::format("link set {} alias {}", vx, kAlias));
    }
  }
}

void LinuxDataplane::ensure_ports(const HostState& d, const std::map<std::string, Link>& links,
                                  std::vector<std::string>& host, std::set<std::string>& fresh,
                                  ApplyResult& result) {
  std::map<std::string, std::string> netns_of;  // router ports' namespaces
  for (auto& r : d.routers) {
    for (auto& pid : r.interface_port_ids) netns_of[pid] = router_namespace(r.id);
    if (!r.gateway_port_id.empty()) netns_of[r.gateway_port_id] = router_namespace(r.id);
  }
  for (auto& p : d.ports) {
    auto* n = d.network(p.network_id);
    if (!n) continue;
    auto br = bridge_of(*n);
    auto tap = tap_name(p.id);
    auto it = links.find(tap);
    if (p.is_vm()) {
      if (it == links.end()) continue;  // the VM (or its stand-in) has not made its device yet
      if (it->second.master != br) host.push_back(fmt::format("link set {} master {}", tap, br));
      if (it->second.mtu != n->mtu) host.push_back(fmt::format("link set {} mtu {}", tap, n->mtu));
      if (it->second.up != p.admin_state_up)
        host.push_back(fmt::format("link set {} {}", tap, p.admin_state_up ? "up" : "down"));
      if (p.admin_state_up) result.plugged.push_back(p.id);
      continue;
    }
    std::string netns = p.is_dhcp() ? dhcp_namespace(p.network_id) : netns_of[p.id];
    if (netns.empty()) continue;
    auto inner = p.is_dhcp() ? dhcp_device(p.id) : router_device(p);
    if (it == links.end()) {
      host.push_back(fmt::format("link add {} mtu {} type veth peer name {} netns {}", tap, n->mtu,
                                 inner, netns));
      host.push_back(fmt::format("link set {} alias {}", tap, kAlias));
      fresh.insert(p.id);
      if (last_ && ns_configured_.count(p.id)) ++result.repairs;
    }
    if (it == links.end() || it->second.master != br || !it->second.up)
      host.push_back(fmt::format("link set {} master {} up", tap, br));
  }
}

void LinuxDataplane::configure_namespace_port(const std::string& netns, const HostState& d,
                                              const Port& p, bool metadata, ApplyResult& result) {
  auto dev = p.is_dhcp() ? dhcp_device(p.id) : router_device(p);
  auto* n = d.network(p.network_id);
  std::set<Address> want;
  for (auto& ip : p.fixed_ips)
    if (auto* s = n ? n->subnet(ip.subnet_id) : nullptr)
      if (auto c = ipam::parse_cidr(s->cidr))
        want.insert({ip.ip_address + "/" + std::to_string(c->prefix)});
  if (metadata) want.insert({"169.254.169.254/32"});
  if (p.is_router_gateway())
    if (auto* r = [&]() -> const Router* {
          for (auto& r : d.routers)
            if (r.gateway_port_id == p.id) return &r;
          return nullptr;
        }())
      for (auto& f : r->floating_ips) want.insert({f.floating_ip_address + "/32"});
  std::vector<std::string> lines{
      fmt::format("link set {} address {} mtu {} up", dev, p.mac_address, n ? n->mtu : 1500),
      "link set lo up"};
  auto have = observe_addresses(netns, dev);
  for (auto& a : have)
    if (!want.count(a)) {
      lines.push_back(fmt::format("addr del {} dev {}", a.text, dev));
      if (ns_configured_.count(p.id)) ++result.repairs;
    }
  for (auto& a : want)
    if (!have.count(a)) {
      lines.push_back(fmt::format("addr add {} dev {}", a.text, dev));
      if (ns_configured_.count(p.id) && !port_changed(p)) ++result.repairs;
    }
  batch(netns, lines);
  ns_configured_.insert(p.id);
}

void LinuxDataplane::apply_router(const HostState& d, const Router& r, bool changed, bool full,
                                  ApplyResult& result) {
  auto netns = router_namespace(r.id);
  if (changed || full) {
    // Each interface answers ARP for its own addresses only (as Neutron's routers do): with
    // several interfaces on one network (an IPv4 and an IPv6 subnet), another's MAC would draw
    // the IPv4 traffic to an interface without an IPv4 address.
    check_process(
        in_netns(netns, {"sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                         "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"}),
        kCommandTimeout);
    // Routes: the default through the external subnet's gateway, then the router's own.
    std::vector<std::string> lines;
    std::set<std::string> wanted;
    if (auto* gw = d.port(r.gateway_port_id))
      if (auto* n = d.network(gw->network_id))
        for (auto& ip : gw->fixed_ips)
          if (auto* s = n->subnet(ip.subnet_id);
              s && s->ip_version == 4 && !s->gateway_ip.empty()) {
            lines.push_back(fmt::format("route replace default via {} dev {}", s->gateway_ip,
                                        router_device(*gw)));
            wanted.insert("default");
            break;
          }
    for (auto& route : r.routes)
      if (route.destination.find(':') == std::string::npos) {
        lines.push_back(fmt::format("route replace {} via {}", route.destination, route.nexthop));
        wanted.insert(route.destination);
      }
    auto listing = run_process(ip({"-j", "route", "show"}, netns), kCommandTimeout);
    auto routes = listing.exit_code == 0 ? json::parse(listing.output) : json::value(json::array{});
    for (auto& v : routes.as_array()) {
      auto& o = v.as_object();
      if (string_or(o, "protocol") != "boot") continue;  // the kernel's own (connected) routes
      auto dst = string_or(o, "dst");
      if (!wanted.count(dst)) lines.push_back("route del " + dst);
    }
    batch(netns, lines);
  }
  apply_ruleset(netns, {"ip " + s_.table}, render_router_table(d, r, s_.table, s_.metadata_port),
                router_rules_[netns], full, "NAT rules of router " + r.id, result);
  proxy_->ensure(netns, "0.0.0.0", s_.metadata_port);
  apply_router_advertisements(d, r, result);
}

void LinuxDataplane::stop_dnsmasq(const fs::path& dir) {
  auto pid = read_pid(dir / "pid");
  if (process_alive_with(pid, dir.string())) {
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 50 && process_alive_with(pid, dir.string()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void LinuxDataplane::apply_dhcp(const HostState& d, const Network& n, bool full,
                                ApplyResult& result) {
  const Port* port = nullptr;
  for (auto& p : d.ports)
    if (p.is_dhcp() && p.network_id == n.id) port = &p;
  auto ranges = dhcp_ranges(n);
  if (!port || ranges.empty()) return;
  auto dir = fs::path(s_.state_dir) / "dhcp" / n.id;
  fs::create_directories(dir);
  auto hosts = render_dhcp_hosts(d, n, s_.dns_domain);
  auto options = render_dhcp_options(d, n);
  bool files_changed = dhcp_files_[n.id] != hosts + options;
  if (files_changed || full) {
    if (read_file(dir / "hosts") != hosts) write_file_atomic(dir / "hosts", hosts);
    if (read_file(dir / "opts") != options) write_file_atomic(dir / "opts", options);
  }
  auto argv = dnsmasq_argv(dir, {dhcp_device(port->id)});
  for (auto& a : {"--dhcp-hostsfile=" + (dir / "hosts").string(),
                  "--dhcp-optsfile=" + (dir / "opts").string(), std::string("--dhcp-authoritative"),
                  "--domain=" + s_.dns_domain})
    argv.push_back(a);
  argv.insert(argv.end(), ranges.begin(), ranges.end());
  run_dnsmasq(dhcp_namespace(n.id), dir, argv, files_changed,
              last_ && dhcp_files_.count(n.id) ? "DHCP of network " + n.id : std::string(), result);
  dhcp_files_[n.id] = hosts + options;
  proxy_->ensure(dhcp_namespace(n.id), "169.254.169.254", 80);
}

std::vector<std::string> LinuxDataplane::dnsmasq_argv(const fs::path& dir,
                                                      const std::vector<std::string>& interfaces) {
  // No DNS, no configuration but ours, on these interfaces only; its files in `dir`.
  std::vector<std::string> argv{"dnsmasq",
                                "--conf-file=/dev/null",
                                "--no-hosts",
                                "--no-resolv",
                                "--port=0",
                                "--bind-interfaces",
                                "--except-interface=lo",
                                "--leasefile-ro",
                                "--user=root",
                                "--pid-file=" + (dir / "pid").string(),
                                "--log-facility=" + (dir / "log").string()};
  for (auto& i : interfaces) argv.push_back("--interface=" + i);
  return argv;
}

void LinuxDataplane::run_dnsmasq(const std::string& netns, const fs::path& dir,
                                 const std::vector<std::string>& argv, bool reload,
                                 const std::string& expected, ApplyResult& result) {
  std::string args;
  for (auto& a : argv) args += a + "\n";
  auto pid = read_pid(dir / "pid");
  bool running = process_alive_with(pid, dir.string());
  bool same = read_file(dir / "args") == args;
  if (running && !same) {  // reconfigured, not repaired
    stop_dnsmasq(dir);
    running = false;
  }
  if (!running) {
    if (!expected.empty() && same) {
      spdlog::warn("network agent: dnsmasq ({}) is not running; starting it", expected);
      ++result.repairs;
    }
    write_file_atomic(dir / "args", args);
    check_process(in_netns(netns, argv), kCommandTimeout);
  } else if (reload) {
    ::kill(pid, SIGHUP);  // re-reads the hosts and options files
  }
}

void LinuxDataplane::apply_router_advertisements(const HostState& d, const Router& r,
                                                 ApplyResult& result) {
  // IPv6 subnets on the router's interfaces with an RA mode Nubo serves: the router announces
  // their prefixes (SLAAC; with DHCPv6-stateless also the "other configuration" flag, answered
  // by the same dnsmasq) and itself as the default router, as Neutron's radvd does.
  std::vector<std::string> interfaces, ranges;
  for (auto& pid : r.interface_port_ids) {
    auto* p = d.port(pid);
    auto* n = p ? d.network(p->network_id) : nullptr;
    if (!n) continue;
    for (auto& ip : p->fixed_ips) {
      auto* s = n->subnet(ip.subnet_id);
      if (!s || s->ip_version != 6) continue;
      if (s->ipv6_ra_mode != "slaac" && s->ipv6_ra_mode != "dhcpv6-stateless") continue;
      auto dev = router_device(*p);
      if (std::find(interfaces.begin(), interfaces.end(), dev) == interfaces.end()) {
        interfaces.push_back(dev);
        ranges.push_back(fmt::format("--ra-param={},mtu:{},10", dev, n->mtu));
      }
      ranges.push_back(fmt::format("--dhcp-range=::,constructor:{},{},64,86400s", dev,
                                   s->ipv6_ra_mode == "slaac" ? "ra-only" : "ra-stateless"));
    }
  }
  auto dir = fs::path(s_.state_dir) / "ra" / r.id;
  if (interfaces.empty()) {
    if (fs::exists(dir)) {
      stop_dnsmasq(dir);
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    return;
  }
  fs::create_directories(dir);
  auto argv = dnsmasq_argv(dir, interfaces);
  argv.push_back("--enable-ra");
  argv.insert(argv.end(), ranges.begin(), ranges.end());
  bool started_before = fs::exists(dir / "args");
  run_dnsmasq(router_namespace(r.id), dir, argv, false,
              started_before ? "router advertisements of router " + r.id : std::string(), result);
}

void LinuxDataplane::apply_tables(const HostState& d, bool full, ApplyResult& result) {
  assign_marks(d, marks_);
  auto rules = render_host_tables(
      d, s_.table, [this](const Network& n) { return bridge_of(n); }, marks_);
  apply_ruleset(s_.host_namespace, {"bridge " + s_.table, "inet " + s_.table}, rules, host_rules_,
                full, "the host's security-group rules", result);
}

void LinuxDataplane::remove_stale(const HostState& d, const std::set<std::string>& wanted,
                                  const std::map<std::string, Link>& links, bool devices) {
  bool changed = false;
  for (auto it = namespaces_.begin(); it != namespaces_.end();) {
    if (wanted.count(*it)) {
      ++it;
      continue;
    }
    if (it->rfind("qrouter-", 0) == 0) {
      auto ra = fs::path(s_.state_dir) / "ra" / it->substr(8);
      stop_dnsmasq(ra);
      std::error_code ec;
      fs::remove_all(ra, ec);
    }
    if (it->rfind("qdhcp-", 0) == 0) {
      auto network_id = it->substr(6);
      stop_dnsmasq(fs::path(s_.state_dir) / "dhcp" / network_id);
      std::error_code ec;
      fs::remove_all(fs::path(s_.state_dir) / "dhcp" / network_id, ec);
      dhcp_files_.erase(network_id);
    }
    router_rules_.erase(*it);
    run_process({"ip", "netns", "del", *it}, kCommandTimeout);
    spdlog::info("network agent: removed namespace {}", *it);
    it = namespaces_.erase(it);
    changed = true;
  }
  if (changed) remember_namespaces();
  proxy_->retain(wanted);
  if (!devices) return;
  // Bridges, VXLAN devices and namespace veths this agent made and nothing wants any more.
  std::set<std::string> keep;
  for (auto& n : d.networks) {
    keep.insert(bridge_of(n));
    if (n.segmentation_id > 0) keep.insert(fmt::format("vxlan-{}", n.segmentation_id));
  }
  for (auto& p : d.ports) keep.insert(tap_name(p.id));
  std::vector<std::string> lines;
  for (auto& [name, link] : links)
    if (link.alias == kAlias && !keep.count(name)) lines.push_back("link del " + name);
  batch(s_.host_namespace, lines);
}

ApplyResult LinuxDataplane::apply(const HostState& desired, bool full) {
  ApplyResult result;
  auto t0 = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {
    auto now = std::chrono::steady_clock::now();
    spdlog::debug("network agent: {} {} us", what,
                  std::chrono::duration_cast<std::chrono::microseconds>(now - t0).count());
    t0 = now;
  };
  {
    std::lock_guard lock(current_mutex_);
    current_ = std::make_shared<const HostState>(desired);
  }
  if (!started_ || full) {
    // Bridged IP traffic must pass the inet family's hooks (security groups).
    for (auto* key :
         {"net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"})
      run_process(in_netns(s_.host_namespace, {"sysctl", "-qw", key}), kCommandTimeout);
    started_ = true;
  }
  bool first = !last_;
  full = full || first;

  // Namespaces first: the veth pairs are made straight into them.
  std::set<std::string> wanted;
  for (auto& p : desired.ports)
    if (auto* n = desired.network(p.network_id); p.is_dhcp() && n && !dhcp_ranges(*n).empty())
      wanted.insert(dhcp_namespace(p.network_id));
  for (auto& r : desired.routers) wanted.insert(router_namespace(r.id));
  auto present = present_namespaces();
  bool remembered = false;
  for (auto& ns : wanted) {
    if (!present.count(ns)) {
      check_process({"ip", "netns", "add", ns}, kCommandTimeout);
      if (!first && namespaces_.count(ns)) ++result.repairs;
    }
    if (namespaces_.insert(ns).second) remembered = true;
  }
  if (remembered) remember_namespaces();

  phase("namespaces");
  // The host's devices are read only when something may have to change there: a full resync,
  // other networks or ports, or VM ports whose devices have not appeared yet. A rule change
  // alone skips this (with a thousand taps, `ip link show` costs tens of milliseconds).
  auto signature = device_signature(desired);
  bool all_plugged = std::all_of(desired.ports.begin(), desired.ports.end(), [&](auto& p) {
    return !p.is_vm() || !p.admin_state_up || plugged_.count(p.id);
  });
  std::map<std::string, Link> links;
  std::set<std::string> fresh;
  bool devices = full || signature != device_signature_ || !all_plugged;
  if (devices) {
    links = observe_links(s_.host_namespace);
    phase("links");
    std::vector<std::string> host;
    ensure_bridges(desired, links, host, result);
    batch(s_.host_namespace, host);  // bridges before the ports that join them
    host.clear();
    ensure_ports(desired, links, host, fresh, result);
    batch(s_.host_namespace, host);
    plugged_ = std::set<std::string>(result.plugged.begin(), result.plugged.end());
    device_signature_ = signature;
  } else {
    result.plugged.assign(plugged_.begin(), plugged_.end());
  }

  phase("host devices");
  for (auto& p : desired.ports) {
    if (p.is_vm()) continue;
    std::string netns;
    if (p.is_dhcp()) {
      netns = dhcp_namespace(p.network_id);
    } else {
      for (auto& r : desired.routers)
        if (r.gateway_port_id == p.id ||
            std::find(r.interface_port_ids.begin(), r.interface_port_ids.end(), p.id) !=
                r.interface_port_ids.end())
          netns = router_namespace(r.id);
    }
    if (netns.empty() || !wanted.count(netns)) continue;
    // The gateway port carries the floating IPs' addresses.
    bool fips_changed = false;
    if (p.is_router_gateway() && last_)
      for (auto& r : desired.routers)
        if (r.gateway_port_id == p.id) {
          auto* old = last_->router(r.id);
          fips_changed = !old || old->floating_ips != r.floating_ips;
        }
    if (full || fresh.count(p.id) || port_changed(p) || fips_changed)
      configure_namespace_port(netns, desired, p, p.is_dhcp(), result);
  }

  phase("namespace ports");
  for (auto& r : desired.routers) {
    auto* old = last_ ? last_->router(r.id) : nullptr;
    bool changed = !old || old->gateway_port_id != r.gateway_port_id || old->routes != r.routes;
    try {
      apply_router(desired, r, changed, full, result);
    } catch (const std::exception& e) {
      spdlog::error("network agent: router {}: {}", r.id, e.what());
    }
  }
  for (auto& n : desired.networks) try {
      apply_dhcp(desired, n, full, result);
    } catch (const std::exception& e) {
      spdlog::error("network agent: DHCP of network {}: {}", n.id, e.what());
    }
  phase("routers and dhcp");
  apply_tables(desired, full, result);
  phase("tables");
  remove_stale(desired, wanted, links, devices);
  phase("stale");
  last_ = desired;
  return result;
}

}  // namespace

std::unique_ptr<Dataplane> make_linux_dataplane(LinuxSettings settings) {
  return std::make_unique<LinuxDataplane>(std::move(settings));
}

}  // namespace nubo::network::dataplane
