#include "network/dataplane/linux/render.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "network/ipam/address.hpp"

namespace nubo::network::dataplane::kernel {

namespace {

// Prefixes, deduplicated, without those inside another (nft refuses overlapping intervals in
// one set); split by IP version.
struct AddressSets {
  std::vector<std::string> v4, v6;
};

AddressSets address_sets(const std::vector<std::string>& addresses) {
  std::vector<ipam::Cidr> all;
  for (auto& a : addresses)
    if (auto c = ipam::parse_cidr(a)) all.push_back(ipam::network_of(c->network, c->prefix));
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.prefix < b.prefix; });
  std::vector<ipam::Cidr> kept;
  for (auto& c : all) {
    bool inside = std::any_of(kept.begin(), kept.end(), [&](auto& k) {
      return k.network.version == c.network.version && k.contains(c.network);
    });
    if (!inside) kept.push_back(c);
  }
  std::sort(kept.begin(), kept.end());
  AddressSets out;
  for (auto& c : kept) {
    auto text = c.prefix == c.bits() ? c.network.str() : c.str();
    (c.network.version == 4 ? out.v4 : out.v6).push_back(text);
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

std::string set_of(const std::vector<std::string>& items) { return "{ " + join(items) + " }"; }

// IANA numbers of the protocol names Neutron accepts.
std::optional<int> protocol_number(const std::string& p) {
  static const std::map<std::string, int> names{
      {"ah", 51},         {"dccp", 33},      {"egp", 8},         {"esp", 50},
      {"gre", 47},        {"icmp", 1},       {"igmp", 2},        {"ipip", 4},
      {"ipv6-encap", 41}, {"ipv6-frag", 44}, {"ipv6-icmp", 58},  {"icmpv6", 58},
      {"ipv6-nonxt", 59}, {"ipv6-opts", 60}, {"ipv6-route", 43}, {"ospf", 89},
      {"pgm", 113},       {"rsvp", 46},      {"sctp", 132},      {"tcp", 6},
      {"udp", 17},        {"udplite", 136},  {"vrrp", 112}};
  if (auto it = names.find(p); it != names.end()) return it->second;
  if (!p.empty() && std::all_of(p.begin(), p.end(), ::isdigit) && p.size() <= 3) {
    int n = std::stoi(p);
    if (n <= 255) return n;
  }
  return std::nullopt;
}

// The nft match of one security-group rule (without its verdict); nullopt when it cannot
// match anything here.
std::optional<std::string> rule_match(const Rule& r,
                                      const std::map<std::string, std::string>& group_sets) {
  std::vector<std::string> parts;
  bool v6 = r.ethertype == "IPv6";
  parts.push_back(v6 ? "meta nfproto ipv6" : "meta nfproto ipv4");
  bool ingress = r.direction == "ingress";
  if (!r.remote_ip_prefix.empty()) {
    auto c = ipam::parse_cidr(r.remote_ip_prefix);
    if (!c || (c->network.version == 6) != v6) return std::nullopt;
    auto net = ipam::network_of(c->network, c->prefix);
    parts.push_back(fmt::format("{} {} {}", v6 ? "ip6" : "ip", ingress ? "saddr" : "daddr",
                                net.prefix == net.bits() ? net.network.str() : net.str()));
  }
  if (!r.remote_group_id.empty()) {
    auto it = group_sets.find(r.remote_group_id);
    if (it == group_sets.end()) return std::nullopt;
    parts.push_back(fmt::format("{} {} @r{}_{}", v6 ? "ip6" : "ip", ingress ? "saddr" : "daddr",
                                v6 ? 6 : 4, it->second));
  }
  if (!r.protocol.empty() && r.protocol != "any") {
    auto number = protocol_number(r.protocol);
    if (!number) return std::nullopt;
    if (*number == 1 && v6) number = 58;  // Neutron: "icmp" in an IPv6 rule is ICMPv6
    auto min = r.port_range_min, max = r.port_range_max;
    switch (*number) {
      case 6:
      case 17:
      case 132:
      case 33:
      case 136: {
        const char* name = *number == 6     ? "tcp"
                           : *number == 17  ? "udp"
                           : *number == 132 ? "sctp"
                           : *number == 33  ? "dccp"
                                            : "udplite";
        parts.push_back(fmt::format("meta l4proto {}", *number));
        if (min || max) {
          long lo = min.value_or(*max), hi = max.value_or(*min);
          parts.push_back(lo == hi ? fmt::format("{} dport {}", name, lo)
                                   : fmt::format("{} dport {}-{}", name, lo, hi));
        }
        break;
      }
      case 1:
      case 58: {
        const char* name = *number == 1 ? "icmp" : "icmpv6";
        parts.push_back(fmt::format("meta l4proto {}", *number));
        if (min) parts.push_back(fmt::format("{} type {}", name, *min));
        if (min && max) parts.push_back(fmt::format("{} code {}", name, *max));
        break;
      }
      default:
        parts.push_back(fmt::format("meta l4proto {}", *number));
    }
  }
  return join(parts, " ");
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// Addresses of a port's own (fixed IPs and allowed address pairs).
std::vector<std::string> port_addresses(const Port& p) {
  std::vector<std::string> out;
  for (auto& ip : p.fixed_ips) out.push_back(ip.ip_address);
  for (auto& pair : p.allowed_address_pairs) out.push_back(pair.ip_address);
  return out;
}

}  // namespace

int conntrack_zone(const Network& network) {
  if (network.network_type == "vxlan" && network.segmentation_id > 0)
    return static_cast<int>(network.segmentation_id % 65000) + 1;
  return 65001 + static_cast<int>(std::hash<std::string>{}(network.id) % 500);
}

namespace {
// nft identifiers: ids without their dashes.
std::string ident(const std::string& id) {
  std::string out;
  for (char c : id)
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
  return out;
}
}  // namespace

void assign_marks(const HostState& state, PortMarks& marks) {
  std::set<std::string> guarded;
  for (auto& p : state.ports)
    if (p.is_vm() && p.port_security_enabled) guarded.insert(p.id);
  std::erase_if(marks, [&](auto& kv) { return !guarded.count(kv.first); });
  std::set<int> used;
  for (auto& [id, mark] : marks) used.insert(mark);
  int next = 1;
  for (auto& id : guarded) {
    if (marks.count(id)) continue;
    while (used.count(next)) ++next;
    marks[id] = next;
    used.insert(next);
  }
}

Ruleset render_host_tables(const HostState& state, const std::string& table,
                           const std::function<std::string(const Network&)>& bridge_of,
                           const PortMarks& marks) {
  // Per-port data lives in named sets and maps (one element per port), and the rules are shared:
  // a thousand ports are a few thousand set elements, which the kernel lists and replaces far
  // faster than a thousand copies of the rules.
  std::deque<Object> out;  // references stay valid as objects are added
  auto add = [&](const char* family, const char* kind, std::string name,
                 std::string head = {}) -> Object& {
    out.push_back({family, table, kind, std::move(name), std::move(head), {}});
    return out.back();
  };
  std::vector<std::pair<const Port*, int>> guarded;
  for (auto& p : state.ports)
    if (auto m = marks.find(p.id); m != marks.end() && p.is_vm() && p.port_security_enabled)
      guarded.emplace_back(&p, m->second);
  std::sort(guarded.begin(), guarded.end(), [](auto& a, auto& b) { return a.second < b.second; });

  // bridge family: anti-spoofing for guarded ports, and the in/out port marks for the inet family
  // (the inet hooks of bridged packets only know the bridge, not the port).
  auto& ports = add("bridge", "set", "guarded", "type ifname;");
  auto& macs = add("bridge", "set", "macs", "type ifname . ether_addr;");
  auto& ips4 = add("bridge", "set", "ips4", "type ifname . ipv4_addr; flags interval;");
  auto& ips6 = add("bridge", "set", "ips6", "type ifname . ipv6_addr; flags interval;");
  auto& mark_out = add("bridge", "map", "mark_out", "type ifname : mark;");
  auto& mark_in = add("bridge", "map", "mark_in", "type ifname : verdict;");
  for (auto& [port, n] : guarded) {
    auto& p = *port;
    auto tap = quoted(tap_name(p.id));
    // Marks or-ed with a value from a map are refused by nft 1.0.6: a one-rule chain per port.
    auto& in = add("bridge", "chain", "in_" + ident(p.id));
    in.body.push_back(fmt::format("meta mark set meta mark or 0x{:x}", n << 16));
    ports.body.push_back(tap);
    mark_out.body.push_back(fmt::format("{} : 0x{:x}", tap, n));
    mark_in.body.push_back(fmt::format("{} : jump in_{}", tap, ident(p.id)));
    std::set<std::string> port_macs{p.mac_address};
    for (auto& pair : p.allowed_address_pairs)
      if (!pair.mac_address.empty()) port_macs.insert(pair.mac_address);
    for (auto& mac : port_macs) macs.body.push_back(tap + " . " + mac);
    auto own = address_sets(port_addresses(p));
    ips4.body.push_back(tap + " . 0.0.0.0");  // DHCP discovery
    for (auto& a : own.v4) ips4.body.push_back(tap + " . " + a);
    std::set<std::string> v6(own.v6.begin(), own.v6.end());
    v6.insert("::");  // duplicate address detection
    for (auto& mac : port_macs) v6.insert(ipam::eui64(*ipam::parse_cidr("fe80::/64"), mac).str());
    for (auto& a : address_sets(std::vector<std::string>(v6.begin(), v6.end())).v6)
      ips6.body.push_back(tap + " . " + a);
  }
  auto& spoof = add("bridge", "chain", "spoof");
  spoof.body = {"iifname . ether saddr != @macs drop",
                "ether type arp iifname . arp saddr ip != @ips4 drop",
                "ether type ip iifname . ip saddr != @ips4 drop",
                "ip saddr 0.0.0.0 udp dport != 67 drop",
                "ether type ip6 iifname . ip6 saddr != @ips6 drop",
                "udp sport { 67, 547 } drop",
                "icmpv6 type nd-router-advert drop"};
  add("bridge", "chain", "forward", "type filter hook forward priority -200; policy accept;")
      .body = {"meta mark set 0", "meta mark set oifname map @mark_out",
               "iifname @guarded jump spoof", "iifname vmap @mark_in"};

  // inet family (bridged IP through br_netfilter): remote groups' members, a conntrack zone per
  // network, then two base chains that must both let a packet pass: the sending port's egress
  // (by the high half of the mark) and the receiving port's ingress (by the low half). Each
  // security group's rules are one chain pair shared by its ports, so that a rule change
  // rewrites one chain whatever the number of ports.
  std::map<std::string, std::string> group_sets;
  for (auto& [gid, members] : state.group_members) {
    auto sets = address_sets(members);
    for (int version : {4, 6})
      add("inet", "set", fmt::format("r{}_{}", version, ident(gid)),
          version == 4 ? "type ipv4_addr; flags interval;" : "type ipv6_addr; flags interval;")
          .body = version == 4 ? sets.v4 : sets.v6;
    group_sets.emplace(gid, ident(gid));
  }
  auto& zones =
      add("inet", "chain", "zones", "type filter hook prerouting priority raw; policy accept;");
  // Overlapping addresses of different networks must not share connection tracking.
  for (auto& net : state.networks)
    zones.body.push_back(
        fmt::format("iifname {} ct zone set {}", quoted(bridge_of(net)), conntrack_zone(net)));
  auto& egress_ports = add("inet", "map", "egress_ports", "type mark : verdict;");
  auto& ingress_ports = add("inet", "map", "ingress_ports", "type mark : verdict;");
  std::set<std::string> groups_used;
  for (auto& [port, n] : guarded) {
    auto& p = *port;
    std::vector<std::string> groups;
    for (auto& gid : p.security_groups)
      if (state.security_groups.count(gid)) groups.push_back(gid);
    groups_used.insert(groups.begin(), groups.end());
    if (groups.empty()) continue;  // no group: nothing but replies, DHCP and neighbour discovery
    std::string e = "ge_" + ident(groups[0]), i = "gi_" + ident(groups[0]);
    if (groups.size() > 1) {  // several groups: any of them may allow
      e = "e_" + ident(p.id);
      i = "i_" + ident(p.id);
      auto& ec = add("inet", "chain", e);
      auto& ic = add("inet", "chain", i);
      for (auto& gid : groups) {
        ec.body.push_back("jump ge_" + ident(gid));
        ic.body.push_back("jump gi_" + ident(gid));
      }
    }
    egress_ports.body.push_back(fmt::format("0x{:x} : jump {}", n << 16, e));
    ingress_ports.body.push_back(fmt::format("0x{:x} : jump {}", n, i));
  }
  for (auto& gid : groups_used) {
    auto& ge = add("inet", "chain", "ge_" + ident(gid)).body;
    auto& gi = add("inet", "chain", "gi_" + ident(gid)).body;
    for (auto& r : state.security_groups.at(gid).rules)
      if (auto match = rule_match(r, group_sets))
        (r.direction == "ingress" ? gi : ge).push_back(*match + " accept");
  }
  // Both base chains: only guarded ports' packets, replies, DHCP and neighbour discovery pass
  // before the port's groups decide.
  auto base = [&](const char* name, const char* priority, const char* mask, const char* dhcp4,
                  const char* dhcp6, const char* icmpv6, const char* ports) {
    add("inet", "chain", name,
        fmt::format("type filter hook forward priority {}; policy accept;", priority))
        .body = {fmt::format("meta mark and {} == 0 accept", mask),
                 "ct state established,related accept",
                 "ct state invalid drop",
                 dhcp4,
                 dhcp6,
                 fmt::format("icmpv6 type {{ {} }} accept", icmpv6),
                 fmt::format("meta mark and {} vmap @{}", mask, ports),
                 "drop"};
  };
  base("egress", "filter", "0xffff0000", "udp sport 68 udp dport 67 accept",
       "udp sport 546 udp dport 547 accept",
       "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, "
       "mld2-listener-report",
       "egress_ports");
  base("ingress", "filter + 1", "0xffff", "udp sport 67 udp dport 68 accept",
       "udp sport 547 udp dport 546 accept",
       "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query",
       "ingress_ports");
  return Ruleset(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

namespace {
std::string declare(const Object& o) {
  return fmt::format("add {} {} {} {} {{ {} }}\n", o.kind, o.family, o.table, o.name, o.head);
}
std::string contents(const Object& o) {
  std::string out;
  if (o.kind == "set" || o.kind == "map") {
    if (!o.body.empty())
      out += fmt::format("add element {} {} {} {}\n", o.family, o.table, o.name, set_of(o.body));
    return out;
  }
  for (auto& rule : o.body)
    out += fmt::format("add rule {} {} {} {}\n", o.family, o.table, o.name, rule);
  return out;
}
}  // namespace

std::string replace_script(const Ruleset& rules) {
  std::string out;
  std::set<std::pair<std::string, std::string>> tables;
  for (auto& o : rules) tables.emplace(o.family, o.table);
  for (auto& [family, table] : tables)
    out +=
        fmt::format("table {0} {1} {{}}\ndelete table {0} {1}\nadd table {0} {1}\n", family, table);
  for (auto& o : rules) out += declare(o);
  for (auto& o : rules) out += contents(o);
  return out;
}

Shape shape_of(const Ruleset& rules) {
  Shape out;
  for (auto& o : rules) out[o.family + " " + o.kind + " " + o.name] = o.body.size();
  return out;
}

Shape shape_of_listing(const std::string& nft_json) {
  Shape out;
  auto doc = json::parse(nft_json);
  auto* items = find(doc.as_object(), "nftables");
  if (!items || !items->is_array()) return out;
  for (auto& item : items->as_array()) {
    if (!item.is_object()) continue;
    auto& o = item.as_object();
    if (auto* c = find(o, "chain"); c && c->is_object()) {
      auto& chain = c->as_object();
      out.emplace(string_or(chain, "family") + " chain " + string_or(chain, "name"), 0);
    } else if (auto* r = find(o, "rule"); r && r->is_object()) {
      auto& rule = r->as_object();
      ++out[string_or(rule, "family") + " chain " + string_or(rule, "chain")];
    } else {
      for (const char* kind : {"set", "map"})
        if (auto* st = find(o, kind); st && st->is_object()) {
          auto& set = st->as_object();
          auto* elements = find(set, "elem");
          out[string_or(set, "family") + " " + kind + " " + string_or(set, "name")] =
              elements && elements->is_array() ? elements->as_array().size() : 0;
        }
    }
  }
  return out;
}

std::optional<std::string> delta_script(const Ruleset& before, const Ruleset& after) {
  auto key = [](const Object& o) { return o.family + " " + o.kind + " " + o.name; };
  std::map<std::string, const Object*> old;
  for (auto& o : before) old.emplace(key(o), &o);
  std::string declares, flushes, adds, removes;
  std::set<std::string> kept;
  for (auto& o : after) {
    auto it = old.find(key(o));
    kept.insert(key(o));
    if (it == old.end()) {
      declares += declare(o);
      adds += contents(o);
      continue;
    }
    if (it->second->head != o.head || it->second->table != o.table) return std::nullopt;
    if (it->second->body == o.body) continue;
    flushes += fmt::format("flush {} {} {} {}\n", o.kind, o.family, o.table, o.name);
    adds += contents(o);
  }
  // Removed chains are flushed before any is deleted: they may jump to one another.
  for (auto& o : before)
    if (!kept.count(key(o))) {
      flushes += fmt::format("flush {} {} {} {}\n", o.kind, o.family, o.table, o.name);
      removes += fmt::format("delete {} {} {} {}\n", o.kind, o.family, o.table, o.name);
    }
  return declares + flushes + adds + removes;
}

Ruleset render_router_table(const HostState& state, const Router& router, const std::string& table,
                            int metadata_port) {
  Ruleset out;
  const Port* gateway =
      router.gateway_port_id.empty() ? nullptr : state.port(router.gateway_port_id);
  std::string gateway_ip;
  if (gateway)
    for (auto& ip : gateway->fixed_ips)
      if (auto a = ipam::parse_address(ip.ip_address); a && a->version == 4) {
        gateway_ip = ip.ip_address;
        break;
      }
  Object pre{"ip",
             table,
             "chain",
             "prerouting",
             "type nat hook prerouting priority dstnat; policy accept;",
             {}};
  pre.body.push_back(fmt::format(
      "iifname \"qr-*\" ip daddr 169.254.169.254 tcp dport 80 redirect to :{}", metadata_port));
  for (auto& f : router.floating_ips)
    if (!f.fixed_ip_address.empty())
      pre.body.push_back(
          fmt::format("ip daddr {} dnat to {}", f.floating_ip_address, f.fixed_ip_address));
  Object post{"ip",
              table,
              "chain",
              "postrouting",
              "type nat hook postrouting priority srcnat; policy accept;",
              {}};
  if (gateway) {
    auto qg = quoted(router_device(*gateway));
    for (auto& f : router.floating_ips)
      if (!f.fixed_ip_address.empty())
        post.body.push_back(fmt::format("oifname {} ip saddr {} snat to {}", qg, f.fixed_ip_address,
                                        f.floating_ip_address));
    if (router.enable_snat && !gateway_ip.empty()) {
      std::vector<std::string> inside;
      for (auto& pid : router.interface_port_ids)
        if (auto* p = state.port(pid))
          if (auto* net = state.network(p->network_id))
            for (auto& ip : p->fixed_ips)
              if (auto* s = net->subnet(ip.subnet_id); s && s->ip_version == 4)
                inside.push_back(s->cidr);
      auto sets = address_sets(inside);
      if (!sets.v4.empty())
        post.body.push_back(
            fmt::format("oifname {} ip saddr {} snat to {}", qg, set_of(sets.v4), gateway_ip));
    }
  }
  out.push_back(std::move(pre));
  out.push_back(std::move(post));
  return out;
}

bool subnet_routed(const HostState& state, const Subnet& subnet) {
  for (auto& p : state.ports)
    if (p.is_router_interface())
      for (auto& ip : p.fixed_ips)
        if (ip.subnet_id == subnet.id) return true;
  return false;
}

std::string dhcp_address(const HostState& state, const Network& network, const Subnet& subnet) {
  for (auto& p : state.ports)
    if (p.is_dhcp() && p.network_id == network.id)
      for (auto& ip : p.fixed_ips)
        if (ip.subnet_id == subnet.id) return ip.ip_address;
  return {};
}

namespace {
bool dhcp_v4(const Subnet& s) { return s.enable_dhcp && s.ip_version == 4; }
std::string tag_of(const Subnet& s) { return "s" + s.id.substr(0, 8); }
// A port's own dnsmasq tag, for its extra_dhcp_opts (Neutron tags host entries likewise).
std::string tag_of(const Port& p) { return "p" + p.id.substr(0, 11); }
bool has_v4_options(const Port& p) {
  return std::any_of(p.extra_dhcp_opts.begin(), p.extra_dhcp_opts.end(),
                     [](auto& o) { return o.ip_version == 4 && !o.name.empty(); });
}
}  // namespace

std::string render_dhcp_hosts(const HostState& state, const Network& network,
                              const std::string& domain) {
  std::vector<std::string> lines;
  for (auto& p : state.ports) {
    if (p.network_id != network.id || p.is_dhcp()) continue;
    for (auto& ip : p.fixed_ips) {
      auto* s = network.subnet(ip.subnet_id);
      if (!s || !dhcp_v4(*s)) continue;
      auto host = ip.ip_address;
      std::replace(host.begin(), host.end(), '.', '-');
      lines.push_back(fmt::format("{},{}host-{}.{},{}", p.mac_address,
                                  has_v4_options(p) ? "set:" + tag_of(p) + "," : "", host, domain,
                                  ip.ip_address));
    }
  }
  std::sort(lines.begin(), lines.end());
  return join(lines, "\n") + (lines.empty() ? "" : "\n");
}

std::string render_dhcp_options(const HostState& state, const Network& network) {
  std::string out;
  for (auto& s : network.subnets) {
    if (!dhcp_v4(s)) continue;
    auto tag = "tag:" + tag_of(s);
    if (!s.gateway_ip.empty()) out += fmt::format("{},option:router,{}\n", tag, s.gateway_ip);
    if (!s.dns_nameservers.empty())
      out += fmt::format("{},option:dns-server,{}\n", tag, join(s.dns_nameservers, ","));
    out += fmt::format("{},option:mtu,{}\n", tag, network.mtu);
    std::vector<std::string> routes;
    auto dhcp_ip = dhcp_address(state, network, s);
    if (!subnet_routed(state, s) && !dhcp_ip.empty())
      routes.push_back("169.254.169.254/32," + dhcp_ip);
    for (auto& r : s.host_routes) routes.push_back(r.destination + "," + r.nexthop);
    if (!routes.empty()) {
      if (!s.gateway_ip.empty()) routes.push_back("0.0.0.0/0," + s.gateway_ip);
      out += fmt::format("{},option:classless-static-route,{}\n", tag, join(routes, ","));
    }
  }
  // Ports' extra_dhcp_opts, by option name (dnsmasq's `option:` names) or number, after the
  // subnets' (dnsmasq prefers the more specific tag).
  for (auto& p : state.ports) {
    if (p.network_id != network.id || !has_v4_options(p)) continue;
    for (auto& o : p.extra_dhcp_opts) {
      if (o.ip_version != 4 || o.name.empty()) continue;
      bool numeric = std::all_of(o.name.begin(), o.name.end(),
                                 [](unsigned char ch) { return std::isdigit(ch); });
      // Only an option's name or number, and a value without control characters: anything else
      // would write other lines (or tags) into dnsmasq's file, for other ports.
      bool plain_name = std::all_of(o.name.begin(), o.name.end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '-' || ch == '_';
      });
      bool plain_value = std::none_of(o.value.begin(), o.value.end(),
                                      [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
      if (!plain_name || !plain_value) continue;
      out += fmt::format("tag:{},{}{},{}\n", tag_of(p), numeric ? "" : "option:", o.name, o.value);
    }
  }
  return out;
}

std::vector<std::string> dhcp_ranges(const Network& network) {
  std::vector<std::string> out;
  for (auto& s : network.subnets) {
    if (!dhcp_v4(s)) continue;
    auto c = ipam::parse_cidr(s.cidr);
    if (!c) continue;
    auto mask =
        ipam::Address{4, c->prefix == 0 ? 0 : (~ipam::u128(0) << (32 - c->prefix)) & 0xffffffffu};
    out.push_back(fmt::format("--dhcp-range=set:{},{},static,{},86400s", tag_of(s),
                              c->network.str(), mask.str()));
  }
  return out;
}

}  // namespace nubo::network::dataplane::kernel
