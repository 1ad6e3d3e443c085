// Range headers as swob's Range and ranges_for_length take them.
#include <gtest/gtest.h>

#include "object/swift_http.hpp"

using namespace nubo::object;

namespace {

std::vector<ByteRange> ranges(const std::string& header, std::uint64_t size,
                              bool* refused = nullptr) {
  bool unsatisfiable = false;
  auto out = parse_ranges(header, size, unsatisfiable);
  if (refused)
    *refused = unsatisfiable;
  else
    EXPECT_FALSE(unsatisfiable) << header;
  return out;
}

using V = std::vector<ByteRange>;

}  // namespace

TEST(Ranges, SingleAndSuffixAndOpenEnded) {
  EXPECT_EQ(ranges("bytes=2-4", 10), (V{{2, 4}}));
  EXPECT_EQ(ranges("bytes=-3", 10), (V{{7, 9}}));
  EXPECT_EQ(ranges("bytes=-30", 10), (V{{0, 9}})) << "a suffix longer than the object is all";
  EXPECT_EQ(ranges("bytes=7-", 10), (V{{7, 9}}));
  EXPECT_EQ(ranges("bytes=7-100", 10), (V{{7, 9}})) << "clamped to the end";
  EXPECT_EQ(ranges(" Bytes = 1 - 2 ", 10), (V{{1, 2}})) << "spaces and case ignored";
}

TEST(Ranges, MalformedHeadersAreIgnored) {
  for (auto* h :
       {"bytes=abc", "bytes=5-3", "bytes=-", "bytes=45", "items=1-2", "bytes=1-2,x", "bytes=1-2,"})
    EXPECT_TRUE(ranges(h, 10).empty()) << h;
}

TEST(Ranges, SeveralInTheClientsOrderUnsatisfiableOnesDropped) {
  EXPECT_EQ(ranges("bytes=0-1,5-6", 10), (V{{0, 1}, {5, 6}}));
  EXPECT_EQ(ranges("bytes=5-6,0-1", 10), (V{{5, 6}, {0, 1}}));
  EXPECT_EQ(ranges("bytes=0-1,100-200", 10), (V{{0, 1}})) << "one left: a single range";
  EXPECT_EQ(ranges("bytes=0-1,-0", 10), (V{{0, 1}})) << "-0 names nothing";
}

TEST(Ranges, UnsatisfiableAndEgregiousSetsAre416) {
  bool refused = false;
  EXPECT_TRUE(ranges("bytes=20-", 10, &refused).empty());
  EXPECT_TRUE(refused);
  EXPECT_TRUE(ranges("bytes=-0", 10, &refused).empty());
  EXPECT_TRUE(refused);
  std::string many = "bytes=0-0";
  for (int i = 1; i <= 50; ++i) many += "," + std::to_string(i) + "-" + std::to_string(i);
  EXPECT_TRUE(ranges(many, 100, &refused).empty()) << "51 ranges";
  EXPECT_TRUE(refused);
  EXPECT_EQ(ranges("bytes=0-5,1-6,2-7", 10, &refused).size(), 0u) << "three overlapping pairs";
  EXPECT_TRUE(refused);
  EXPECT_EQ(ranges("bytes=0-5,1-6", 10, &refused).size(), 2u) << "one overlapping pair is fine";
  EXPECT_FALSE(refused);
  EXPECT_TRUE(ranges("bytes=9-9,8-8,7-7,6-6,5-5,4-4,3-3,2-2", 10, &refused).empty())
      << "eight out of order";
  EXPECT_TRUE(refused);
  EXPECT_EQ(ranges("bytes=7-7,6-6,5-5,4-4,3-3,2-2,1-1", 10, &refused).size(), 7u);
  EXPECT_FALSE(refused);
}

TEST(Ranges, EmptyObjects) {
  bool refused = false;
  EXPECT_TRUE(ranges("bytes=-5", 0, &refused).empty()) << "a suffix on nothing: the whole";
  EXPECT_FALSE(refused);
  EXPECT_TRUE(ranges("bytes=0-", 0, &refused).empty());
  EXPECT_TRUE(refused);
}

TEST(Ranges, MultipartBodyAsSwobFramesIt) {
  std::string data = "0123456789";
  struct Memory : nubo::http::BodySource {
    std::string bytes;
    std::string next(size_t max) override {
      auto out = bytes.substr(0, max);
      bytes.erase(0, out.size());
      return out;
    }
  };
  ByteRangesSource source(V{{0, 1}, {5, 6}}, 10, "text/plain", [&](const ByteRange& r) {
    auto m = std::make_shared<Memory>();
    m->bytes = data.substr(r.first, r.second - r.first + 1);
    return m;
  });
  auto type = source.content_type();
  ASSERT_TRUE(type.starts_with("multipart/byteranges;boundary="));
  auto b = type.substr(type.find('=') + 1);
  EXPECT_EQ(b.size(), 32u);
  std::string body;
  for (auto chunk = source.next(3); !chunk.empty(); chunk = source.next(3)) body += chunk;
  EXPECT_EQ(
      body,
      "--" + b + "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n--" + b +
          "\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n--" + b + "--");
  EXPECT_EQ(source.content_length(), body.size());
}
