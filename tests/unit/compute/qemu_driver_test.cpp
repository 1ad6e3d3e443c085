// The qemu driver's checks of an image before any server is built on it (qemu-img runs; no VM
// starts): files that refer to host files, formats it does not run, corrupt downloads.
#include "compute/virt/qemu/qemu_driver.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/ids.hpp"
#include "common/process.hpp"

using namespace nubo;
using namespace nubo::compute;
namespace fs = std::filesystem;

namespace {

struct QemuImageChecks : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("nubo-qemu-driver-" + uuid4_hex());
  void TearDown() override { fs::remove_all(dir); }
  // A driver whose image service hands out `file` as image "img", declared `declared`.
  QemuDriver driver(const fs::path& file, const std::string& declared,
                    const std::string& checksum = {}) {
    QemuSettings s;
    s.host = "test-host";
    s.instances_dir = dir / "instances";
    s.virt_type = "tcg";
    return QemuDriver(s, [=](const std::string&, const fs::path& to) {
      fs::copy_file(file, to, fs::copy_options::overwrite_existing);
      return json::object{{"disk_format", declared}, {"checksum", checksum}};
    });
  }
  std::string spawn_error(QemuDriver& d) {
    InstanceSpec spec;
    spec.uuid = uuid4();
    spec.image_ref = uuid4();
    spec.root_gb = 1;
    try {
      d.spawn(spec);
    } catch (const BuildAbort& e) {
      // Nothing is left of the server, nor of the download.
      EXPECT_FALSE(fs::exists(dir / "instances" / spec.uuid));
      EXPECT_TRUE(d.list_instances().empty());
      for (auto& e2 : fs::directory_iterator(dir / "instances" / "_base"))
        ADD_FAILURE() << "left in the cache: " << e2.path();
      return e.what();
    }
    ADD_FAILURE() << "the build was not aborted";
    return {};
  }
};

TEST_F(QemuImageChecks, AQcow2WithABackingFileOnTheHostIsRefused) {
  fs::create_directories(dir);
  auto file = dir / "evil.qcow2";
  check_process({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw",
                 file.string(), "1M"});
  auto d = driver(file, "qcow2");
  EXPECT_NE(spawn_error(d).find("refers to a backing file (/etc/hostname)"), std::string::npos);
}

TEST_F(QemuImageChecks, AFormatTheHostDoesNotRunIsRefusedWhateverItIsDeclared) {
  fs::create_directories(dir);
  auto file = dir / "disk.qed";
  check_process({"qemu-img", "create", "-q", "-f", "qed", file.string(), "1M"});
  auto d = driver(file, "vdi");
  EXPECT_NE(spawn_error(d).find("format this host does not run (qed)"), std::string::npos);
}

TEST_F(QemuImageChecks, ARawImageDeclaredQcow2AndACorruptDownloadAreRefused) {
  fs::create_directories(dir);
  auto file = dir / "disk.raw";
  std::ofstream(file) << std::string(65536, 'x');
  auto mislabelled = driver(file, "qcow2");
  EXPECT_NE(spawn_error(mislabelled).find("is declared qcow2 but is raw"), std::string::npos);
  auto corrupt = driver(file, "raw", std::string(32, '0'));
  EXPECT_NE(spawn_error(corrupt).find("does not match its md5 checksum"), std::string::npos);
}

}  // namespace

TEST_F(QemuImageChecks, TheImageCacheKeepsWhatServersUseAndWhatWasUsedLately) {
  QemuSettings s;
  s.host = "test-host";
  s.instances_dir = dir / "instances";
  s.image_cache_max_age = std::chrono::seconds(3600);
  QemuDriver d(s, nullptr);
  auto base = dir / "instances" / "_base";
  fs::create_directories(base);
  auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (auto* name : {"in-use", "old", "recent", "old.tmp-1"}) {
    check_process({"qemu-img", "create", "-q", "-f", "raw", (base / name).string(), "1M"});
    std::ofstream(base / (std::string(name) + ".format")) << "raw";
    if (std::string(name) != "recent") fs::last_write_time(base / name, old);
  }
  // A server whose root disk is backed by "in-use".
  InstanceSpec spec;
  spec.uuid = uuid4();
  auto server = dir / "instances" / spec.uuid;
  fs::create_directories(server);
  std::ofstream(server / "spec.json") << json::serialize(spec.to_json());
  check_process({"qemu-img", "create", "-q", "-f", "qcow2", "-b", (base / "in-use").string(), "-F",
                 "raw", (server / "disk.qcow2").string()});

  EXPECT_EQ(d.trim_image_cache(), std::vector<std::string>{"old"});
  EXPECT_FALSE(fs::exists(base / "old"));
  EXPECT_FALSE(fs::exists(base / "old.format"));
  for (auto* kept : {"in-use", "in-use.format", "recent", "old.tmp-1"})
    EXPECT_TRUE(fs::exists(base / kept)) << kept;
  // Once the server is gone, its image goes too.
  fs::remove_all(server);
  EXPECT_EQ(d.trim_image_cache(), std::vector<std::string>{"in-use"});
}

TEST_F(QemuImageChecks, AConsoleLogPastItsLimitIsRotatedAndStillShown) {
  QemuSettings s;
  s.host = "test-host";
  s.instances_dir = dir / "instances";
  s.console_log_max_bytes = 1000;
  QemuDriver d(s, nullptr);
  InstanceSpec spec;
  spec.uuid = uuid4();
  auto server = dir / "instances" / spec.uuid;
  fs::create_directories(server);
  std::ofstream(server / "spec.json") << json::serialize(spec.to_json());
  std::ofstream(server / "console.log") << std::string(1500, 'a') << "old end\n";
  d.rotate_console_logs();
  EXPECT_EQ(fs::file_size(server / "console.log"), 0u);
  EXPECT_EQ(fs::file_size(server / "console.log.1"), 1508u);
  // QEMU appends to the emptied file; the output shows both parts in order.
  std::ofstream(server / "console.log", std::ios::app) << "new line\n";
  auto out = d.console_output(spec.uuid);
  EXPECT_TRUE(out.ends_with("old end\nnew line\n")) << out.substr(out.size() - 30);
  d.rotate_console_logs();  // under the limit: left alone
  EXPECT_EQ(fs::file_size(server / "console.log"), 9u);
}
