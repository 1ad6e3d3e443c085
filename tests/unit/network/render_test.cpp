// The Linux dataplane's rendering: nftables tables and dnsmasq files from a desired state. When
// run as root, the rendered tables are also checked by nft itself (`nft -c`, in a new network
// namespace, so nothing is applied).
#include "network/dataplane/linux/render.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/process.hpp"
#include "network/dataplane/state.hpp"

namespace nubo::network::dataplane {
namespace {

const char* kNet = "11111111-2222-4333-8444-555555555555";
const char* kVm1 = "aaaaaaaa-0000-4000-8000-000000000001";
const char* kVm2 = "bbbbbbbb-0000-4000-8000-000000000002";

HostState sample() {
  auto doc = json::parse(R"({
    "host": "h1",
    "networks": [{"id": "11111111-2222-4333-8444-555555555555", "provider:network_type": "vxlan",
                  "provider:segmentation_id": 7, "mtu": 1450,
                  "subnets": [{"id": "5ub00000-0000-4000-8000-000000000001", "cidr": "10.0.0.0/24",
                               "ip_version": 4, "gateway_ip": "10.0.0.1", "enable_dhcp": true,
                               "dns_nameservers": ["192.0.2.53"],
                               "host_routes": [{"destination": "192.168.5.0/24", "nexthop": "10.0.0.9"}]},
                              {"id": "5ub00000-0000-4000-8000-000000000006", "cidr": "fd00::/64",
                               "ip_version": 6, "enable_dhcp": true}]},
                 {"id": "e0000000-0000-4000-8000-000000000000", "provider:network_type": "flat",
                  "provider:physical_network": "public", "router:external": true, "mtu": 1500,
                  "subnets": [{"id": "e5000000-0000-4000-8000-000000000000", "cidr": "172.24.4.0/24",
                               "ip_version": 4, "gateway_ip": "172.24.4.1", "enable_dhcp": false}]}],
    "ports": [
      {"id": "aaaaaaaa-0000-4000-8000-000000000001", "network_id": "11111111-2222-4333-8444-555555555555",
       "mac_address": "fa:16:3e:00:00:01", "device_owner": "compute:nova", "device_id": "vm-1",
       "port_security_enabled": true, "security_groups": ["g1"],
       "fixed_ips": [{"subnet_id": "5ub00000-0000-4000-8000-000000000001", "ip_address": "10.0.0.5"}],
       "allowed_address_pairs": [{"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:99"}]},
      {"id": "bbbbbbbb-0000-4000-8000-000000000002", "network_id": "11111111-2222-4333-8444-555555555555",
       "mac_address": "fa:16:3e:00:00:02", "device_owner": "compute:nova", "device_id": "vm-2",
       "port_security_enabled": false, "security_groups": [],
       "fixed_ips": [{"subnet_id": "5ub00000-0000-4000-8000-000000000001", "ip_address": "10.0.0.6"}]},
      {"id": "dddddddd-0000-4000-8000-000000000003", "network_id": "11111111-2222-4333-8444-555555555555",
       "mac_address": "fa:16:3e:00:00:03", "device_owner": "network:dhcp",
       "fixed_ips": [{"subnet_id": "5ub00000-0000-4000-8000-000000000001", "ip_address": "10.0.0.2"}]},
      {"id": "gggggggg-0000-4000-8000-000000000004", "network_id": "e0000000-0000-4000-8000-000000000000",
       "mac_address": "fa:16:3e:00:00:04", "device_owner": "network:router_gateway", "device_id": "r1",
       "fixed_ips": [{"subnet_id": "e5000000-0000-4000-8000-000000000000", "ip_address": "172.24.4.2"}]}],
    "security_groups": [{"id": "g1", "rules": [
      {"direction": "egress", "ethertype": "IPv4"},
      {"direction": "egress", "ethertype": "IPv6"},
      {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
       "remote_ip_prefix": "0.0.0.0/0"},
      {"direction": "ingress", "ethertype": "IPv4", "protocol": "udp", "port_range_min": 1000, "port_range_max": 2000},
      {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
      {"direction": "ingress", "ethertype": "IPv6", "protocol": "icmp"},
      {"direction": "ingress", "ethertype": "IPv4", "protocol": "112"},
      {"direction": "ingress", "ethertype": "IPv4", "protocol": "gre", "remote_ip_prefix": "192.0.2.7/24"},
      {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "g1"},
      {"direction": "ingress", "ethertype": "IPv6", "remote_group_id": "g1"}]}],
    "group_members": {"g1": ["10.0.0.5", "10.0.0.0/28", "10.0.0.5"]},
    "routers": [{"id": "r1", "enable_snat": true, "gateway_port_id": "gggggggg-0000-4000-8000-000000000004",
                 "interface_port_ids": [],
                 "floating_ips": [{"floating_ip_address": "172.24.4.10", "fixed_ip_address": "10.0.0.5",
                                   "port_id": "aaaaaaaa-0000-4000-8000-000000000001"}]}]
  })");
  return parse_host_state(doc.as_object());
}

std::string bridge(const Network& n) { return n.external ? "br-ex" : bridge_name(n.id); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

kernel::Ruleset host_rules(const HostState& state) {
  kernel::PortMarks marks;
  kernel::assign_marks(state, marks);
  return kernel::render_host_tables(state, "nubo", bridge, marks);
}

const std::string kVm1Chain = "aaaaaaaa000040008000000000000001";

TEST(Render, HostTablesGuardOnlyPortsWithPortSecurity) {
  auto text = kernel::replace_script(host_rules(sample()));
  // Replaced atomically: created if absent, deleted, defined again in one file.
  EXPECT_TRUE(
      contains(text, "table bridge nubo {}\ndelete table bridge nubo\nadd table bridge nubo\n"));
  auto tap = "\"" + tap_name(kVm1) + "\"";
  EXPECT_TRUE(contains(text, "add element bridge nubo guarded { " + tap + " }"));
  EXPECT_FALSE(contains(text, tap_name(kVm2))) << "port security off: not guarded";
  // Anti-spoofing: its MACs, its addresses (the pair's prefix swallows the fixed IP).
  EXPECT_TRUE(contains(text, "add element bridge nubo macs { " + tap + " . fa:16:3e:00:00:01, " +
                                 tap + " . fa:16:3e:00:00:99 }"));
  EXPECT_TRUE(contains(
      text, "add element bridge nubo ips4 { " + tap + " . 0.0.0.0, " + tap + " . 10.0.0.0/28 }"));
  EXPECT_TRUE(contains(text, tap + " . fe80::f816:3eff:fe00:1")) << "the MAC's link-local address";
  EXPECT_TRUE(
      contains(text, "add rule bridge nubo spoof ether type ip iifname . ip saddr != @ips4 drop"));
  EXPECT_TRUE(contains(text, "add element bridge nubo mark_out { " + tap + " : 0x1 }"));
  EXPECT_TRUE(contains(
      text, "add rule bridge nubo in_" + kVm1Chain + " meta mark set meta mark or 0x10000"));
  // A conntrack zone per bridge, from the VNI.
  EXPECT_TRUE(contains(text, "iifname \"" + bridge_name(kNet) + "\" ct zone set 8"));
}

TEST(Render, SecurityGroupRulesAreOneChainPairPerGroup) {
  auto text = kernel::replace_script(host_rules(sample()));
  EXPECT_TRUE(contains(text, "add rule inet nubo ge_g1 meta nfproto ipv4 accept"));
  EXPECT_TRUE(contains(text,
                       "add rule inet nubo gi_g1 meta nfproto ipv4 ip saddr 0.0.0.0/0 meta l4proto "
                       "6 tcp dport 22 accept"));
  EXPECT_TRUE(contains(text, "meta l4proto 17 udp dport 1000-2000 accept"));
  EXPECT_TRUE(contains(text, "meta l4proto 1 icmp type 8 icmp code 0 accept"));
  EXPECT_TRUE(contains(text, "meta nfproto ipv6 meta l4proto 58 accept"))
      << "icmp in IPv6 is ICMPv6";
  EXPECT_TRUE(contains(text, "meta l4proto 112 accept"));
  EXPECT_TRUE(contains(text, "ip saddr 192.0.2.0/24 meta l4proto 47 accept"))
      << "prefix normalized";
  EXPECT_TRUE(contains(text, "ip saddr @r4_g1 accept"));
  EXPECT_TRUE(contains(text, "ip6 saddr @r6_g1 accept"));
  EXPECT_TRUE(contains(text, "add element inet nubo r4_g1 { 10.0.0.0/28 }"))
      << "deduplicated, merged";
  // One group: the port's mark leads straight to the group's chains.
  EXPECT_TRUE(contains(text, "add element inet nubo ingress_ports { 0x1 : jump gi_g1 }"));
  EXPECT_TRUE(contains(text, "add element inet nubo egress_ports { 0x10000 : jump ge_g1 }"));
  EXPECT_TRUE(contains(text, "add rule inet nubo ingress ct state established,related accept"));
}

TEST(Render, PortsInSeveralGroupsGetTheirOwnChains) {
  auto state = sample();
  state.security_groups["g2"] = {"g2", {{"x", "ingress", "IPv4", "tcp", 80, 80, "", ""}}};
  state.ports[0].security_groups.push_back("g2");
  auto text = kernel::replace_script(host_rules(state));
  EXPECT_TRUE(
      contains(text, "add element inet nubo ingress_ports { 0x1 : jump i_" + kVm1Chain + " }"));
  EXPECT_TRUE(contains(text, "add rule inet nubo i_" + kVm1Chain +
                                 " jump gi_g1\nadd rule inet nubo i_" + kVm1Chain +
                                 " jump gi_g2\n"));
}

TEST(Render, DeltasTouchOnlyWhatChanged) {
  auto state = sample();
  kernel::PortMarks marks;
  kernel::assign_marks(state, marks);
  auto before = kernel::render_host_tables(state, "nubo", bridge, marks);
  EXPECT_EQ(kernel::delta_script(before, before), std::string());
  // A rule added to the group: its chain is rewritten, nothing else, whatever the port count.
  state.security_groups["g1"].rules.push_back({"r", "ingress", "IPv4", "tcp", 80, 80, "", ""});
  auto after = kernel::render_host_tables(state, "nubo", bridge, marks);
  auto delta = kernel::delta_script(before, after);
  ASSERT_TRUE(delta);
  EXPECT_TRUE(delta->starts_with("flush chain inet nubo gi_g1\n")) << *delta;
  std::istringstream lines(*delta);
  for (std::string line; std::getline(lines, line);)
    EXPECT_TRUE(contains(line, " gi_g1")) << "only the group's chain changes: " << line;
  // A port gone: its chains are flushed, then deleted, and the maps no longer name them.
  auto without = state;
  std::erase_if(without.ports, [](auto& p) { return p.id == kVm1; });
  kernel::assign_marks(without, marks);
  auto removed =
      kernel::delta_script(after, kernel::render_host_tables(without, "nubo", bridge, marks));
  ASSERT_TRUE(removed);
  EXPECT_TRUE(contains(*removed, "delete chain bridge nubo in_" + kVm1Chain));
  EXPECT_TRUE(contains(*removed, "flush map bridge nubo mark_in"));
  EXPECT_LT(removed->find("flush map bridge nubo mark_in"),
            removed->find("delete chain bridge nubo in_"));
}

TEST(Render, MarksStayWithTheirPorts) {
  auto state = sample();
  kernel::PortMarks marks;
  kernel::assign_marks(state, marks);
  ASSERT_EQ(marks.size(), 1u);
  auto extra = state.ports[0];
  extra.id = "00000000-0000-4000-8000-000000000000";  // sorts first
  state.ports.push_back(extra);
  kernel::assign_marks(state, marks);
  EXPECT_EQ(marks[kVm1], 1);
  EXPECT_EQ(marks[extra.id], 2);
}

TEST(Render, ShapeOfAListing) {
  auto shape = kernel::shape_of_listing(R"({"nftables": [{"metainfo": {}},
    {"table": {"family": "inet", "name": "nubo"}},
    {"chain": {"family": "inet", "table": "nubo", "name": "gi_g1"}},
    {"chain": {"family": "inet", "table": "nubo", "name": "empty"}},
    {"rule": {"family": "inet", "table": "nubo", "chain": "gi_g1", "expr": []}},
    {"rule": {"family": "inet", "table": "nubo", "chain": "gi_g1", "expr": []}},
    {"set": {"family": "inet", "table": "nubo", "name": "r4_g1", "elem": ["10.0.0.5", "10.0.0.6"]}},
    {"map": {"family": "inet", "table": "nubo", "name": "ingress_ports", "elem": [[1, {"jump": {"target": "gi_g1"}}]]}}]})");
  EXPECT_EQ(shape, (kernel::Shape{{"inet chain gi_g1", 2},
                                  {"inet chain empty", 0},
                                  {"inet set r4_g1", 2},
                                  {"inet map ingress_ports", 1}}));
}

TEST(Render, RouterNat) {
  auto state = sample();
  auto text =
      kernel::replace_script(kernel::render_router_table(state, state.routers[0], "nubo", 9697));
  EXPECT_TRUE(contains(text, "ip daddr 172.24.4.10 dnat to 10.0.0.5"));
  EXPECT_TRUE(contains(text, "oifname \"qg-gggggggg-00\" ip saddr 10.0.0.5 snat to 172.24.4.10"));
  EXPECT_TRUE(contains(text, "redirect to :9697"));
  EXPECT_FALSE(contains(text, "snat to 172.24.4.2")) << "no interfaces: nothing to SNAT";
}
TEST(Render, DhcpHostsAndOptions) {
  auto state = sample();
  auto& net = state.networks[0];
  auto hosts = kernel::render_dhcp_hosts(state, net, "openstacklocal");
  EXPECT_EQ(hosts,
            "fa:16:3e:00:00:01,host-10-0-0-5.openstacklocal,10.0.0.5\n"
            "fa:16:3e:00:00:02,host-10-0-0-6.openstacklocal,10.0.0.6\n");
  auto options = kernel::render_dhcp_options(state, net);
  EXPECT_TRUE(contains(options, "option:router,10.0.0.1"));
  EXPECT_TRUE(contains(options, "option:dns-server,192.0.2.53"));
  EXPECT_TRUE(contains(options, "option:mtu,1450"));
  // No router on the subnet: metadata through the DHCP port, and the default route kept.
  EXPECT_TRUE(contains(options,
                       "option:classless-static-route,169.254.169.254/32,10.0.0.2,"
                       "192.168.5.0/24,10.0.0.9,0.0.0.0/0,10.0.0.1"));
  auto ranges = kernel::dhcp_ranges(net);
  ASSERT_EQ(ranges.size(), 1u) << "IPv4 only";
  EXPECT_TRUE(contains(ranges[0], ",10.0.0.0,static,255.255.255.0,"));
  // A port's extra_dhcp_opts: its host entry tagged, its options for that tag only (by name or
  // number; IPv6 ones and values that would break the file left out).
  for (auto& p : state.ports)
    if (p.mac_address == "fa:16:3e:00:00:01")
      p.extra_dhcp_opts = {{"tftp-server", "192.0.2.7", 4},
                           {"67", "pxelinux.0", 4},
                           {"dns-server", "2001:db8::1", 6},
                           {"domain-name", "a\nb", 4},
                           {"tag:other,option:router", "10.0.0.66", 4}};
  hosts = kernel::render_dhcp_hosts(state, net, "openstacklocal");
  auto tagged = hosts.substr(0, hosts.find('\n'));
  EXPECT_TRUE(contains(tagged, "fa:16:3e:00:00:01,set:p")) << hosts;
  auto tag = tagged.substr(tagged.find("set:") + 4, 12);
  options = kernel::render_dhcp_options(state, net);
  EXPECT_TRUE(contains(options, "tag:" + tag + ",option:tftp-server,192.0.2.7\n")) << options;
  EXPECT_TRUE(contains(options, "tag:" + tag + ",67,pxelinux.0\n")) << options;
  EXPECT_FALSE(contains(options, "2001:db8::1"));
  EXPECT_FALSE(contains(options, "domain-name"));
  EXPECT_FALSE(contains(options, "10.0.0.66")) << "a name that would set another tag's option";
  EXPECT_FALSE(contains(hosts.substr(hosts.find('\n') + 1), "set:")) << "the other port";
}

TEST(Render, NftablesAcceptsTheTables) {
  if (::geteuid() != 0 || run_process({"nft", "--version"}).exit_code != 0)
    GTEST_SKIP() << "needs root and nft (CI has both): nft -c asks the kernel";
  auto state = sample();
  auto before = host_rules(state);
  state.security_groups["g1"].rules.push_back({"r", "ingress", "IPv4", "tcp", 80, 80, "", ""});
  std::erase_if(state.ports, [](auto& p) { return p.id == kVm1; });
  kernel::PortMarks marks;
  auto after = kernel::render_host_tables(state, "nubo", bridge, marks);
  // A replacement, then a delta on top of it (one file: nft -c checks against an empty kernel).
  for (auto& text : {kernel::replace_script(before) + *kernel::delta_script(before, after),
                     kernel::replace_script(
                         kernel::render_router_table(state, state.routers[0], "nubo", 9697))}) {
    auto file = testing::TempDir() + "/rules.nft";
    std::ofstream(file) << text;
    auto r = run_process({"unshare", "-n", "nft", "-c", "-f", file});
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << text;
  }
}

}  // namespace
}  // namespace nubo::network::dataplane
