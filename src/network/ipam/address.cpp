#include "network/ipam/address.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>

#include "common/ids.hpp"

namespace nubo::network::ipam {

namespace {
u128 mask_of(int version, int prefix) {
  int bits = version == 4 ? 32 : 128;
  if (prefix <= 0) return 0;
  u128 all = bits == 128 ? ~u128(0) : ((u128(1) << 32) - 1);
  return prefix >= bits ? all : all & ~((u128(1) << (bits - prefix)) - 1);
}
}  // namespace

std::string Address::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (version == 4) {
    in_addr a{};
    a.s_addr = htonl(static_cast<std::uint32_t>(value));
    inet_ntop(AF_INET, &a, buf, sizeof buf);
  } else {
    in6_addr a{};
    for (int i = 0; i < 16; ++i) a.s6_addr[i] = static_cast<unsigned char>(value >> (8 * (15 - i)));
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
  }
  return buf;
}

std::optional<Address> parse_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  if (s.find(':') == std::string::npos) {
    in_addr a{};
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
    return Address{4, ntohl(a.s_addr)};
  }
  in6_addr a{};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return std::nullopt;
  u128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | a.s6_addr[i];
  return Address{6, v};
}

Address Cidr::last() const {
  return Address{network.version, network.value | (~mask_of(network.version, prefix) &
                                                   mask_of(network.version, bits()))};
}

bool Cidr::contains(const Address& a) const {
  return a.version == network.version &&
         (a.value & mask_of(network.version, prefix)) == network.value;
}

bool Cidr::overlaps(const Cidr& other) const {
  return network.version == other.network.version &&
         (contains(other.network) || other.contains(network));
}

u128 Cidr::size() const {
  int host = bits() - prefix;
  return host >= 127 ? (u128(1) << 127) : (u128(1) << host);
}

std::string Cidr::str() const { return network.str() + "/" + std::to_string(prefix); }

std::optional<Cidr> parse_cidr(std::string_view text, bool strict) {
  auto slash = text.find('/');
  auto address = parse_address(text.substr(0, slash));
  if (!address) return std::nullopt;
  int bits = address->version == 4 ? 32 : 128;
  int prefix = bits;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    prefix = 0;
    for (char ch : p) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) return std::nullopt;
      prefix = prefix * 10 + (ch - '0');
    }
    if (prefix > bits) return std::nullopt;
  }
  Cidr c = network_of(*address, prefix);
  if (strict && c.network != *address) return std::nullopt;
  return c;
}

Cidr network_of(const Address& a, int prefix) {
  return Cidr{Address{a.version, a.value & mask_of(a.version, prefix)}, prefix};
}

std::vector<Range> default_pools(const Cidr& cidr, const std::optional<Address>& gateway) {
  Address first = cidr.first(), last = cidr.last();
  if (first == last) return {Range{first, last}};
  Address start = first + 1;
  Address end = cidr.network.version == 4 ? last - 1 : last;
  if (start >= end) return {};
  std::vector<Range> pools{Range{start, end}};
  return gateway ? without(pools, *gateway) : pools;
}

std::vector<Range> without(const std::vector<Range>& ranges, const Address& a) {
  std::vector<Range> out;
  for (auto& r : ranges) {
    if (!r.contains(a)) {
      out.push_back(r);
      continue;
    }
    if (r.start < a) out.push_back(Range{r.start, a - 1});
    if (a < r.end) out.push_back(Range{a + 1, r.end});
  }
  return out;
}

Address eui64(const Cidr& prefix, std::string_view mac) {
  unsigned char b[6] = {};
  for (int i = 0; i < 6 && static_cast<size_t>(i * 3 + 1) < mac.size(); ++i)
    b[i] = static_cast<unsigned char>(std::stoi(std::string(mac.substr(i * 3, 2)), nullptr, 16));
  u128 iid = 0;
  unsigned char e[8] = {
      static_cast<unsigned char>(b[0] ^ 0x02), b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]};
  for (unsigned char x : e) iid = (iid << 8) | x;
  return Address{6, prefix.network.value | iid};
}

std::string random_mac(std::string_view prefix) {
  auto bytes = random_bytes(3);
  std::string mac(prefix);
  static const char* hex = "0123456789abcdef";
  for (unsigned char ch : bytes) {
    mac += ':';
    mac += hex[ch >> 4];
    mac += hex[ch & 15];
  }
  return mac;
}

std::optional<std::string> normalize_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < 17; ++i) {
    char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
    if (i % 3 == 2) {
      if (ch != ':' && ch != '-') return std::nullopt;
      out += ':';
    } else {
      if (!std::isxdigit(static_cast<unsigned char>(ch))) return std::nullopt;
      out += ch;
    }
  }
  return out;
}

}  // namespace nubo::network::ipam
