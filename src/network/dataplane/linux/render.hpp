// What the Linux dataplane writes, rendered as text from the desired state alone (no kernel):
// nftables tables (replaced whole and atomically by `nft -f`), and dnsmasq's hosts and options.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "network/dataplane/state.hpp"

namespace nubo::network::dataplane::kernel {

// nftables as objects (chains and sets with their contents), so that a change is applied as a
// delta touching only the objects that differ, in one atomic transaction.
struct Object {
  std::string family, table, kind, name;  // kind: "chain" or "set"
  std::string head;                       // hook and policy, or the set's type and flags
  std::vector<std::string> body;          // rules, or elements
  bool operator==(const Object&) const = default;
};
using Ruleset = std::vector<Object>;

// `nft -f` input that replaces the rulesets' tables whole: created if absent, deleted, defined.
std::string replace_script(const Ruleset& rules);
// `nft -f` input that turns `before` into `after` (empty when equal); nullopt when only a
// replacement can (a base chain's hook changed).
std::optional<std::string> delta_script(const Ruleset& before, const Ruleset& after);

// What a resync compares with the kernel: each chain's rule count and each set's element count,
// from the model or from `nft -j list table` output (rules are never printed as we wrote them).
using Shape = std::map<std::string, std::size_t>;
Shape shape_of(const Ruleset& rules);
Shape shape_of_listing(const std::string& nft_json);

// Marks of the VM ports with port security (the bridge family tags packets with them for the
// inet family): kept for a port as long as it exists, so that deltas stay small.
using PortMarks = std::map<std::string, int>;
void assign_marks(const HostState& state, PortMarks& marks);

// The host's tables: `bridge <table>` (anti-spoofing per VM port, and the port marks) and
// `inet <table>` (conntrack zone per network, a chain pair per security group, and per-port
// chains reached through br_netfilter). `bridge_of(network)` names each network's bridge.
Ruleset render_host_tables(const HostState& state, const std::string& table,
                           const std::function<std::string(const Network&)>& bridge_of,
                           const PortMarks& marks);

// A router's NAT in its namespace: floating IPs (DNAT in, SNAT out), the default SNAT of its
// subnets, and the metadata redirect to the proxy's port.
Ruleset render_router_table(const HostState& state, const Router& router, const std::string& table,
                            int metadata_port);

// The connection-tracking zone of a network's bridge: stable across restarts and renders.
int conntrack_zone(const Network& network);

// dnsmasq: static hosts (no leases to strangers) and per-subnet options. `metadata_route`:
// the subnet has no router, so the DHCP port serves metadata and its route is pushed (option
// 121, with the default route that clients otherwise drop).
std::string render_dhcp_hosts(const HostState& state, const Network& network,
                              const std::string& domain);
std::string render_dhcp_options(const HostState& state, const Network& network);
// The command-line ranges: one `--dhcp-range` per DHCP-enabled IPv4 subnet.
std::vector<std::string> dhcp_ranges(const Network& network);
// Whether a subnet has a router interface on it (else the DHCP port serves metadata).
bool subnet_routed(const HostState& state, const Subnet& subnet);
// The DHCP port's IPv4 address on the subnet ("" when it has none).
std::string dhcp_address(const HostState& state, const Network& network, const Subnet& subnet);

}  // namespace nubo::network::dataplane::kernel
