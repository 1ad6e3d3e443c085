// Running host tools: output, exit codes, timeouts, and no inherited descriptors.
#include "common/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace nubo;

TEST(Process, CapturesOutputAndExitCode) {
  auto ok = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ok.exit_code, 3);
  EXPECT_NE(ok.output.find("out"), std::string::npos);
  EXPECT_NE(ok.output.find("err"), std::string::npos);
  EXPECT_EQ(check_process({"echo", "hello"}), "hello\n");
  try {
    check_process({"sh", "-c", "echo broken disk >&2; exit 1"});
    FAIL() << "no error";
  } catch (const ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("broken disk"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_process({"/nonexistent/tool"}), ProcessError);
}

TEST(Process, ATimeoutKillsTheCommand) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"sleep", "30"}, std::chrono::milliseconds(200));
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(Process, ToolsDoNotInheritOurDescriptors) {
  // A daemon started this way (QEMU) must not keep Nubo's sockets or files open.
  int opened = ::open("/dev/null", O_RDONLY);
  int fd = ::dup2(opened, 100);  // dup2: deliberately without FD_CLOEXEC
  ::close(opened);
  ASSERT_EQ(fd, 100);
  auto r = run_process({"sh", "-c", "ls /proc/self/fd"});
  ::close(fd);
  EXPECT_EQ(r.output.find("100\n"), std::string::npos) << r.output;
}
