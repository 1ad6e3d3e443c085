#include "common/config.hpp"

#include <gtest/gtest.h>

using nubo::Config;

TEST(Config, ParsesSectionsRepeatedKeysAndDefaults) {
  auto c = Config::parse(
      "# comment\n[DEFAULT]\nlog_level = debug\n[identity]\nport=5001\nname = a\nname = b\n"
      "long = first\n  second\n; other comment\n[token]\nexpiration = 60\nflag = True\n");
  EXPECT_EQ(c.get_int("identity", "port", 0), 5001);
  EXPECT_EQ(c.get_string("identity", "name", ""), "b");
  EXPECT_EQ(c.get_all("identity", "name").size(), 2u);
  EXPECT_EQ(c.get_string("identity", "long", ""), "first\nsecond");
  EXPECT_EQ(c.get_string("identity", "log_level", ""), "debug");  // falls back to DEFAULT
  EXPECT_TRUE(c.get_bool("token", "flag", false));
  EXPECT_EQ(c.get_int("token", "missing", 7), 7);
}

TEST(Config, RejectsMalformedValues) {
  auto c = Config::parse("[a]\nport = 50x\nflag = maybe\n");
  EXPECT_THROW(c.get_int("a", "port", 0), std::runtime_error);
  EXPECT_THROW(c.get_bool("a", "flag", false), std::runtime_error);
  EXPECT_THROW(Config::parse("[broken\n"), std::runtime_error);
  EXPECT_THROW(Config::parse("[a]\nnovalue\n"), std::runtime_error);
}

TEST(Config, LongLinesAreKept) {
  std::string value(5000, 'x');
  auto c = Config::parse("[a]\nk = " + value + "\n");
  EXPECT_EQ(c.get_string("a", "k", "").size(), 5000u);
}
