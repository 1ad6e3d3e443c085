// The in-process bus: ordered topics deliver in order one at a time, calls answer or time out.
#include "common/bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/error.hpp"

using namespace nubo;

TEST(InProcessBus, OrderedTopicKeepsOrderAndNeverOverlaps) {
  auto bus = make_in_process_bus(4);
  std::mutex m;
  std::vector<std::int64_t> seen;
  std::atomic<int> inside{0}, overlap{0};
  bus->subscribe(
      "compute.h1",
      [&](const BusMessage& msg) -> json::value {
        if (inside.fetch_add(1) != 0) overlap++;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        {
          std::lock_guard lock(m);
          seen.push_back(msg.body.at("n").as_int64());
        }
        inside.fetch_sub(1);
        return nullptr;
      },
      true);
  for (int i = 0; i < 200; ++i) bus->cast("compute.h1", "run", json::object{{"n", i}});
  auto answer = bus->call("compute.h1", "last", json::object{{"n", 200}}, std::chrono::seconds(5));
  EXPECT_TRUE(answer.is_null());
  std::lock_guard lock(m);
  ASSERT_EQ(seen.size(), 201u);
  for (int i = 0; i <= 200; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_EQ(overlap.load(), 0);
}

TEST(InProcessBus, CallsAnswerRaiseAndTimeOut) {
  auto bus = make_in_process_bus(2);
  bus->subscribe(
      "conductor",
      [](const BusMessage& msg) -> json::value {
        if (msg.method == "fail") throw NotFound("no such thing");
        if (msg.method == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return json::value(msg.body.at("x").as_int64() * 2);
      },
      false);
  EXPECT_EQ(
      bus->call("conductor", "double", json::object{{"x", 21}}, std::chrono::seconds(1)).as_int64(),
      42);
  try {
    bus->call("conductor", "fail", json::object{{"x", 1}}, std::chrono::seconds(1));
    FAIL() << "expected the handler's error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 404);
  }
  EXPECT_THROW(
      bus->call("conductor", "slow", json::object{{"x", 1}}, std::chrono::milliseconds(50)),
      BusTimeout);
  EXPECT_THROW(bus->call("nobody", "x", json::object{}, std::chrono::milliseconds(50)), BusTimeout);
  bus->stop();
}
