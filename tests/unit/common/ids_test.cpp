#include "common/ids.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace nubo;

TEST(Ids, UuidShapes) {
  auto h = uuid4_hex();
  EXPECT_EQ(h.size(), 32u);
  EXPECT_EQ(h[12], '4');
  auto u = uuid4();
  EXPECT_EQ(u.size(), 36u);
  EXPECT_EQ(u[8], '-');
  EXPECT_NE(uuid4_hex(), uuid4_hex());
}

TEST(Ids, Base64UrlRoundTrip) {
  for (size_t n = 0; n < 40; ++n) {
    auto b = random_bytes(n);
    auto e = base64url_encode(b);
    EXPECT_EQ(e.find('='), std::string::npos);
    EXPECT_EQ(base64url_decode(e).value(), b);
  }
  EXPECT_FALSE(base64url_decode("a b").has_value());
}

TEST(Ids, Iso8601) {
  auto t = from_unix(1700000000.25);
  EXPECT_EQ(iso8601(t), "2023-11-14T22:13:20.250000Z");
  EXPECT_EQ(iso8601(t, false), "2023-11-14T22:13:20Z");
  auto p = parse_iso8601("2023-11-14T22:13:20.250000Z");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(to_unix(*p), 1700000000.25);
  EXPECT_TRUE(parse_iso8601("2023-11-14T22:13:20"));
  EXPECT_TRUE(parse_iso8601("2023-11-14T23:13:20+01:00"));
  EXPECT_EQ(to_unix(*parse_iso8601("2023-11-14T23:13:20+01:00")), 1700000000.0);
  EXPECT_FALSE(parse_iso8601("bad.123Z"));
  EXPECT_FALSE(parse_iso8601("2023-13-01T00:00:00Z"));
}

TEST(Ids, Base64UrlRejectsBadPadding) {
  EXPECT_FALSE(base64url_decode("t_p==========").has_value());  // found by fuzz_auth_body
  EXPECT_FALSE(base64url_decode("a=bc").has_value());
  EXPECT_FALSE(base64url_decode("abcde").has_value());
  EXPECT_EQ(base64url_decode("YQ==").value(), "a");
  EXPECT_EQ(base64url_decode("YQ").value(), "a");
  EXPECT_EQ(base64url_decode("YWI").value(), "ab");
  EXPECT_EQ(base64url_decode("").value(), "");
}

TEST(Ids, RequestUuidsAreVersion4AndDistinctAcrossThreads) {
  std::vector<std::string> ids;
  std::mutex m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 1000; ++i) mine.push_back(nubo::uuid4_request());
      std::lock_guard lock(m);
      ids.insert(ids.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), ids.size());
  for (auto& id : ids) {
    ASSERT_TRUE(nubo::is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(std::string("89ab").find(id[19]) != std::string::npos) << id;
  }
}
