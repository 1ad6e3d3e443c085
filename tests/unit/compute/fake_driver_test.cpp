// The fake driver's simulated servers outlive a restart, as QEMU processes outlive Nubo's.
#include "compute/virt/fake/fake_driver.hpp"

#include <gtest/gtest.h>

#include <fstream>

using namespace nubo::compute;

namespace {

struct FakeDriverTest : ::testing::Test {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("nubo-fake-driver-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void TearDown() override { std::filesystem::remove_all(dir); }
  static InstanceSpec spec(const std::string& uuid) {
    InstanceSpec s;
    s.uuid = uuid;
    return s;
  }
};

TEST_F(FakeDriverTest, ServersAndTheirPowerStatesSurviveARestart) {
  {
    FakeDriver d("h1", 4, 4096, 40, dir);
    d.spawn(spec("a"));
    d.spawn(spec("b"));
    d.spawn(spec("c"));
    d.power_off("a");
    d.pause("b");
    d.destroy("c");
    EXPECT_EQ(d.list_instances(), (std::vector<std::string>{"a", "b"}));
  }
  // A crash in the middle of a line leaves a torn last line: it is ignored.
  std::ofstream(dir / "servers.log", std::ios::app) << "d 1\ne";
  {
    FakeDriver d("h1", 4, 4096, 40, dir);
    EXPECT_EQ(d.list_instances(), (std::vector<std::string>{"a", "b", "d"}));
    EXPECT_EQ(d.power_state("a"), PowerState::Shutdown);
    EXPECT_EQ(d.power_state("b"), PowerState::Paused);
    EXPECT_EQ(d.power_state("c"), std::nullopt);
    d.destroy("d");
    d.power_on(spec("a"));
  }
  FakeDriver d("h1", 4, 4096, 40, dir);
  EXPECT_EQ(d.list_instances(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.power_state("a"), PowerState::Running);
  // Compacted on start: one line per live server.
  std::ifstream in(dir / "servers.log");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(all, "a 1\nb 3\n");
}

}  // namespace
