// Address arithmetic behind IPAM: parsing as Neutron accepts, pools around gateways, EUI-64.
#include <gtest/gtest.h>

#include "network/ipam/address.hpp"

using namespace nubo::network::ipam;

TEST(Ipam, ParsesAndPrintsBothFamilies) {
  EXPECT_EQ(parse_address("10.0.0.1")->str(), "10.0.0.1");
  EXPECT_EQ(parse_address("2001:DB8::1")->str(), "2001:db8::1");
  EXPECT_FALSE(parse_address("10.0.0.256"));
  EXPECT_FALSE(parse_address(" 10.0.0.1"));
  EXPECT_FALSE(parse_address("10.0.0.0/24"));
  EXPECT_EQ(parse_cidr("10.0.0.5/24")->str(), "10.0.0.0/24");
  EXPECT_FALSE(parse_cidr("10.0.0.5/24", true));
  EXPECT_FALSE(parse_cidr("192.168.1.1/33"));
  EXPECT_FALSE(parse_cidr("192.168.1./24"));
  EXPECT_EQ(parse_cidr("2001:db8::/48")->last().str(), "2001:db8:0:ffff:ffff:ffff:ffff:ffff");
  EXPECT_TRUE(parse_cidr("10.0.0.0/8")->overlaps(*parse_cidr("10.1.0.0/16")));
  EXPECT_FALSE(parse_cidr("10.0.0.0/16")->overlaps(*parse_cidr("10.1.0.0/16")));
}

TEST(Ipam, DefaultPoolsLeaveOutTheGatewayAndBroadcast) {
  auto pools = default_pools(*parse_cidr("10.0.0.0/28"), parse_address("10.0.0.5"));
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].start.str(), "10.0.0.1");
  EXPECT_EQ(pools[0].end.str(), "10.0.0.4");
  EXPECT_EQ(pools[1].start.str(), "10.0.0.6");
  EXPECT_EQ(pools[1].end.str(), "10.0.0.14");
  auto v6 = default_pools(*parse_cidr("2001:db8::/64"), parse_address("2001:db8::1"));
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].end.str(), "2001:db8::ffff:ffff:ffff:ffff");
  EXPECT_TRUE(default_pools(*parse_cidr("10.0.0.0/31"), std::nullopt).empty());
}

TEST(Ipam, Eui64AndMacs) {
  EXPECT_EQ(eui64(*parse_cidr("2001:db8::/64"), "fa:16:3e:12:34:56").str(),
            "2001:db8::f816:3eff:fe12:3456");
  EXPECT_EQ(normalize_mac("FA-16-3E-AA-BB-CC"), "fa:16:3e:aa:bb:cc");
  EXPECT_FALSE(normalize_mac("fa:16:3e:aa:bb"));
  EXPECT_EQ(random_mac().rfind("fa:16:3e:", 0), 0u);
}
