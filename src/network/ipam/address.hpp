// IP address and prefix arithmetic for IPAM (IPv4 and IPv6 in one 128-bit form): parsing as
// Neutron's validators accept, allocation pools around the gateway, EUI-64 addresses for SLAAC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nubo::network::ipam {

using u128 = unsigned __int128;

struct Address {
  int version = 4;
  u128 value = 0;
  auto operator<=>(const Address&) const = default;
  std::string str() const;
  Address operator+(u128 n) const { return {version, value + n}; }
  Address operator-(u128 n) const { return {version, value - n}; }
};

// "10.0.0.1", "fd00::1"; nullopt when not an address (no surrounding blanks, no prefix).
std::optional<Address> parse_address(std::string_view text);

struct Cidr {
  Address network;  // host bits zero
  int prefix = 0;
  int bits() const { return network.version == 4 ? 32 : 128; }
  Address first() const { return network; }
  Address last() const;
  bool contains(const Address& a) const;
  bool overlaps(const Cidr& other) const;
  // Addresses in the prefix (saturates at 2^127 for /0 and /1 in IPv6).
  u128 size() const;
  std::string str() const;
  auto operator<=>(const Cidr&) const = default;
};

// "10.0.0.0/24". With `strict`, host bits must be zero (Neutron's "isn't a recommended CIDR").
// A bare address is a host prefix (/32, /128).
std::optional<Cidr> parse_cidr(std::string_view text, bool strict = false);
// The prefix containing `a` of this length.
Cidr network_of(const Address& a, int prefix);

struct Range {
  Address start, end;  // inclusive
  bool contains(const Address& a) const { return start <= a && a <= end; }
};

// Neutron's default allocation pools: the prefix without its first address (and the IPv4
// broadcast address), without the gateway.
std::vector<Range> default_pools(const Cidr& cidr, const std::optional<Address>& gateway);
// Removes one address from a set of ranges (splitting the range that holds it).
std::vector<Range> without(const std::vector<Range>& ranges, const Address& a);

// An IPv6 address from a /64 prefix and a MAC (modified EUI-64, RFC 4291), as SLAAC makes it.
Address eui64(const Cidr& prefix, std::string_view mac);

// A MAC "fa:16:3e:xx:xx:xx" from a prefix of 3 bytes and random bytes.
std::string random_mac(std::string_view prefix = "fa:16:3e");
// Lower-cased and validated "aa:bb:cc:dd:ee:ff" (also accepts '-' separators); nullopt if invalid.
std::optional<std::string> normalize_mac(std::string_view text);

}  // namespace nubo::network::ipam
