#include "compute/virt/qemu/qemu_driver.hpp"

#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/files.hpp"
#include "common/ids.hpp"
#include "common/process.hpp"
#include "compute/metadata/content.hpp"
#include "compute/virt/qemu/qmp.hpp"

namespace nubo::compute {

namespace fs = std::filesystem;

namespace {

// The file's digest with OpenSSL's `algorithm` (md5, sha512, ...), in hex.
std::string file_digest(const fs::path& p, const std::string& algorithm) {
  const EVP_MD* md = EVP_get_digestbyname(algorithm.c_str());
  if (!md) throw std::runtime_error("unknown hash algorithm " + algorithm);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), md, nullptr);
  std::ifstream in(p, std::ios::binary);
  std::string chunk(1 << 20, '\0');
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
    EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(in.gcount()));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  return hex_encode(std::string_view(reinterpret_cast<char*>(out), len));
}

// What qemu-img makes of a file: its format and virtual size.
json::object image_info(const fs::path& p, const std::string& format = {}) {
  std::vector<std::string> argv{"qemu-img", "info", "-U", "--output=json"};
  if (!format.empty()) {
    argv.push_back("-f");
    argv.push_back(format);
  }
  argv.push_back(p.string());
  return json::parse(check_process(argv, std::chrono::seconds(30))).as_object();
}

std::pair<std::string, std::int64_t> image_format(const fs::path& p,
                                                  const std::string& format = {}) {
  auto info = image_info(p, format);
  return {std::string(info.at("format").as_string()), int_or(info, "virtual-size")};
}

bool alive(int pid) {
  // A zombie (waiting for init to reap it) counts as gone.
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Waits until `pid` exits (a zombie counts), for at most `limit`: a pidfd wakes us the moment it
// does, where polling /proc would add its interval to every stop and delete.
bool wait_exit(int pid, std::chrono::milliseconds limit) {
  // The syscall itself: Debian 12's <sys/pidfd.h> declares pidfd_open without C linkage.
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return !alive(pid);  // ESRCH: already gone
  auto until = std::chrono::steady_clock::now() + limit;
  pollfd ready{fd, POLLIN, 0};
  int r = 0;
  do {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    r = ::poll(&ready, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
  } while (r < 0 && errno == EINTR);
  ::close(fd);
  return r > 0 || !alive(pid);
}

constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;

// A value inside a QEMU option string (-drive file=...,format=...): commas doubled.
std::string qemu_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

// The backing file a qcow2 names in its header (QEMU's own layout: magic, version, then the
// backing file's offset and size, big-endian), or nothing.
std::optional<fs::path> backing_file(const fs::path& disk) {
  std::ifstream in(disk, std::ios::binary);
  unsigned char h[20];
  if (!in.read(reinterpret_cast<char*>(h), sizeof h)) return std::nullopt;
  if (h[0] != 'Q' || h[1] != 'F' || h[2] != 'I' || h[3] != 0xfb) return std::nullopt;
  std::uint64_t offset = 0;
  for (int i = 8; i < 16; ++i) offset = offset << 8 | h[i];
  std::uint32_t size = 0;
  for (int i = 16; i < 20; ++i) size = size << 8 | h[i];
  if (!offset || !size || size > 4096) return std::nullopt;
  std::string name(size, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in.read(name.data(), size)) return std::nullopt;
  return fs::path(name);
}

// The formats a host accepts, as qemu-img names them; anything else (qed, luks, dmg...) is
// refused, since qemu-img follows what such headers point at.
const std::set<std::string>& allowed_formats() {
  static const std::set<std::string> formats{"raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx"};
  return formats;
}

// What the file refers to besides itself (a backing file, an external data file, vmdk extents
// elsewhere): a user's image must not make the host read its other files.
std::string external_reference(const json::object& info, const fs::path& self) {
  if (auto b = string_or(info, "backing-filename"); !b.empty()) return "a backing file (" + b + ")";
  if (auto* fs_ = info.if_contains("format-specific"); fs_ && fs_->is_object()) {
    auto& spec = fs_->as_object();
    if (auto* data = spec.if_contains("data"); data && data->is_object()) {
      if (auto file = string_or(data->as_object(), "data-file"); !file.empty())
        return "an external data file (" + file + ")";
      if (auto* extents = data->as_object().if_contains("extents"); extents && extents->is_array())
        for (auto& e : extents->as_array())
          if (e.is_object())
            if (auto file = string_or(e.as_object(), "filename");
                !file.empty() && fs::path(file) != self)
              return "an extent in another file (" + file + ")";
    }
  }
  return {};
}

}  // namespace

QemuDriver::QemuDriver(QemuSettings settings, ImageFetcher fetch)
    : settings_(std::move(settings)),
      fetch_(std::move(fetch)),
      accel_(accelerator(settings_.virt_type)) {
  // Absolute: overlays name their base by path, and the daemonized QEMU runs from /.
  settings_.instances_dir = fs::absolute(settings_.instances_dir);
  fs::create_directories(settings_.instances_dir / "_base");
  spdlog::info("qemu driver on {}: {} under {} ({} servers found)", settings_.host,
               accel_ == "kvm" ? "KVM" : "TCG (software emulation)",
               settings_.instances_dir.string(), list_instances().size());
}

std::string QemuDriver::accelerator(const std::string& virt_type) {
  if (virt_type == "kvm" || virt_type == "tcg") return virt_type;
  auto modules = read_file("/proc/modules");
  if (modules.find("kvm_intel ") != std::string::npos ||
      modules.find("kvm_amd ") != std::string::npos)
    return "kvm";
  std::istringstream cpuinfo(read_file("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("flags", 0) == 0 &&
        (line.find(" vmx") != std::string::npos || line.find(" svm") != std::string::npos))
      return "kvm";
  return "tcg";
}

HostResources QemuDriver::resources() const {
  HostResources r;
  r.host = r.hypervisor_hostname = settings_.host;
  r.hypervisor_type = "QEMU";
  r.hypervisor_version = 7002000;  // Debian 12's QEMU 7.2, as libvirt reports versions
  r.vcpus = settings_.vcpus > 0 ? settings_.vcpus
                                : static_cast<std::int64_t>(std::thread::hardware_concurrency());
  if (settings_.memory_mb > 0) {
    r.memory_mb = settings_.memory_mb;
  } else {
    r.memory_mb = sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024;
  }
  if (settings_.local_gb > 0) {
    r.local_gb = settings_.local_gb;
  } else {
    struct statvfs st {};
    if (statvfs(settings_.instances_dir.c_str(), &st) == 0)
      r.local_gb = static_cast<std::int64_t>(st.f_blocks * st.f_frsize / kGiB);
  }
  r.cpu_info = json::serialize(
      json::object{{"arch", "x86_64"},
                   {"model", "qemu64"},
                   {"vendor", "QEMU"},
                   {"accelerator", accel_},
                   {"topology", json::object{{"sockets", 1}, {"cores", r.vcpus}, {"threads", 1}}},
                   {"features", json::array{}}});
  return r;
}

fs::path QemuDriver::dir(const std::string& uuid) const {
  // uuids come from the control plane; still, only a uuid names a directory here (no path
  // outside the instances directory, nothing a shell or QEMU's option parser would read).
  if (!is_uuid(uuid)) throw std::runtime_error("bad instance id " + uuid);
  return settings_.instances_dir / uuid;
}

std::optional<int> QemuDriver::pid(const std::string& uuid) const {
  auto text = read_file(dir(uuid) / "qemu.pid");
  if (text.empty()) return std::nullopt;
  int p = std::atoi(text.c_str());
  if (p <= 0 || !alive(p)) return std::nullopt;
  // The pid may have been reused by another process since: it must be this server's QEMU.
  auto cmdline = read_file("/proc/" + std::to_string(p) + "/cmdline");
  if (cmdline.find(uuid) == std::string::npos) return std::nullopt;
  return p;
}

json::value QemuDriver::monitor(const std::string& uuid, const std::string& command,
                                const json::object& arguments) const {
  return qmp::execute(dir(uuid) / "qmp.sock", command, arguments);
}

void QemuDriver::save_spec(const InstanceSpec& spec) {
  auto o = spec.to_json();
  o.erase("admin_password");  // not kept on disk
  write_file_atomic(dir(spec.uuid) / "spec.json", json::serialize(o));
}

InstanceSpec QemuDriver::load_spec(const std::string& uuid) const {
  auto text = read_file(dir(uuid) / "spec.json");
  if (text.empty()) throw NotFound("Instance " + uuid + " could not be found on this host.");
  return InstanceSpec::from_json(json::parse(text).as_object());
}

QemuDriver::BaseImage QemuDriver::base_image(const std::string& image_id) {
  if (image_id.empty() || image_id.find('/') != std::string::npos || image_id[0] == '.')
    throw std::runtime_error("bad image id " + image_id);
  std::lock_guard lock(cache_mu_);
  auto base = settings_.instances_dir / "_base" / image_id;
  auto format_file = base;
  format_file += ".format";
  std::error_code ignored;
  // A use: the trimmer keeps what was used within its max age.
  fs::last_write_time(base, fs::file_time_type::clock::now(), ignored);
  if (auto it = cache_.find(image_id); it != cache_.end() && fs::exists(base)) return it->second;
  if (fs::exists(base) && fs::exists(format_file)) {
    auto known_format = read_file(format_file);
    BaseImage known{base, known_format, image_format(base, known_format).second};
    auto boot_file = base;
    boot_file += ".boot";
    if (auto text = read_file(boot_file); !text.empty()) {
      auto boot = json::parse(text).as_object();
      known.kernel_id = string_or(boot, "kernel_id");
      known.ramdisk_id = string_or(boot, "ramdisk_id");
      known.command_line = string_or(boot, "os_command_line");
    }
    cache_[image_id] = known;
    return known;
  }
  auto part = base;
  part += ".part";
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ignored;
      fs::remove(p, ignored);
    }
  } cleanup{part};
  if (!fetch_) throw std::runtime_error("this host cannot fetch images");
  auto image = fetch_(image_id, part);
  // The data must be what the image service recorded (Glance's multihash, else its md5).
  auto algo = string_or(image, "os_hash_algo");
  auto expected = string_or(image, "os_hash_value");
  if (algo.empty() || expected.empty()) {
    algo = "md5";
    expected = string_or(image, "checksum");
  }
  if (!expected.empty() && file_digest(part, algo) != expected)
    throw BuildAbort("image " + image_id + " does not match its " + algo +
                     " checksum (corrupt download)");
  auto declared = string_or(image, "disk_format");
  std::string format;
  try {
    auto info = image_info(part);
    format = std::string(info.at("format").as_string());
    if (!allowed_formats().count(format))
      throw BuildAbort("image " + image_id + " is in a format this host does not run (" + format +
                       ")");
    if (auto ref = external_reference(info, part); !ref.empty())
      throw BuildAbort("image " + image_id + " refers to " + ref + "; refused");
  } catch (const ProcessError& e) {
    throw BuildAbort("image " + image_id + " is not a disk image qemu-img can read: " + e.what());
  }
  // A qcow2 declared raw (or the reverse) is refused: booting it as declared would expose the
  // host's files (qcow2 backing files) or give the guest a garbled disk.
  if ((declared == "raw" || declared == "qcow2") && format != declared)
    throw BuildAbort("image " + image_id + " is declared " + declared + " but is " + format);
  if (format != "raw" && format != "qcow2") {  // vmdk, vdi, vhd...: converted once
    auto converted = part;
    converted += ".qcow2";
    check_process(
        {"qemu-img", "convert", "-f", format, "-O", "qcow2", part.string(), converted.string()});
    fs::rename(converted, part);
    format = "qcow2";
  } else if (format == "qcow2") {
    // A corrupt or truncated qcow2 is found here, before any server is built on it.
    // (exit 3 is leaked clusters only, harmless)
    auto check = run_process({"qemu-img", "check", part.string()});
    if (check.exit_code != 0 && check.exit_code != 3) {
      auto out = check.output;
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      if (out.size() > 300) out = "..." + out.substr(out.size() - 300);
      throw BuildAbort("image " + image_id +
                       " is a corrupt or truncated qcow2 (qemu-img check: " + out + ")");
    }
  }
  auto size = image_format(part, format).second;
  BaseImage made{base, format, size};
  // An image that boots with a separate kernel (and ramdisk), as Glance's kernel_id/ramdisk_id
  // name them: QEMU loads them directly, with the image's os_command_line if it has one.
  made.kernel_id = string_or(image, "kernel_id");
  made.ramdisk_id = string_or(image, "ramdisk_id");
  made.command_line = string_or(image, "os_command_line");
  if (!made.kernel_id.empty()) {
    auto boot_file = base;
    boot_file += ".boot";
    write_file_atomic(boot_file,
                      json::serialize(json::object{{"kernel_id", made.kernel_id},
                                                   {"ramdisk_id", made.ramdisk_id},
                                                   {"os_command_line", made.command_line}}));
  }
  fs::rename(part, base);
  write_file_atomic(format_file, format);
  cache_[image_id] = made;
  return made;
}

void QemuDriver::make_disks(const InstanceSpec& spec) {
  auto d = dir(spec.uuid);
  auto image = base_image(spec.image_ref);
  auto& [base, format, virtual_size, kernel_id, ramdisk_id, command_line] = image;
  if (!kernel_id.empty()) {
    json::object boot{
        {"kernel", base_image(kernel_id).path.string()},
        {"append", command_line.empty() ? std::string("root=/dev/vda console=tty0 console=ttyS0")
                                        : command_line}};
    if (!ramdisk_id.empty()) boot["initrd"] = base_image(ramdisk_id).path.string();
    write_file_atomic(d / "boot.json", json::serialize(boot));
  }
  std::vector<std::string> create{
      "qemu-img", "create",      "-q", "-f",   "qcow2",
      "-b",       base.string(), "-F", format, (d / "disk.qcow2.tmp").string()};
  if (spec.root_gb > 0) {
    if (spec.root_gb * kGiB < virtual_size)
      throw BuildAbort("Flavor's disk is too small for requested image. Flavor disk is " +
                       std::to_string(spec.root_gb * kGiB) + " bytes, image is " +
                       std::to_string(virtual_size) + " bytes.");
    create.push_back(std::to_string(spec.root_gb * kGiB));
  }
  check_process(create);
  fs::rename(d / "disk.qcow2.tmp", d / "disk.qcow2");
  make_extra_disks(spec);
}

void QemuDriver::make_extra_disks(const InstanceSpec& spec) {
  auto d = dir(spec.uuid);
  // Ephemeral and swap disks come formatted, as Nova makes them (ext4 labelled ephemeral0, and
  // mkswap): overlays on one formatted base per size, made once per host.
  auto overlay = [&](const fs::path& base, const char* file) {
    if (fs::exists(d / file)) return;  // a resize keeps what the server wrote there
    check_process({"qemu-img", "create", "-q", "-f", "qcow2", "-b", base.string(), "-F", "raw",
                   (d / (std::string(file) + ".tmp")).string()});
    fs::rename(d / (std::string(file) + ".tmp"), d / file);
  };
  if (spec.ephemeral_gb > 0)
    overlay(formatted_base("ephemeral_" + std::to_string(spec.ephemeral_gb) + "_ext4",
                           spec.ephemeral_gb * kGiB,
                           {"mkfs.ext4", "-q", "-F", "-L", "ephemeral0", "-E",
                            "lazy_itable_init=1,lazy_journal_init=1"}),
            "disk.eph0");
  // Swap holds nothing to keep: a flavor with another size (or none) gets a new one (or none).
  auto swap_base = "swap_" + std::to_string(spec.swap_mb);
  if (auto b = backing_file(d / "disk.swap"); b && b->filename() != swap_base) {
    std::error_code ignored;
    fs::remove(d / "disk.swap", ignored);
  }
  if (spec.swap_mb > 0)
    overlay(formatted_base("swap_" + std::to_string(spec.swap_mb), spec.swap_mb * 1024 * 1024,
                           {"mkswap", "-q"}),
            "disk.swap");
}

fs::path QemuDriver::formatted_base(const std::string& name, std::int64_t bytes,
                                    std::vector<std::string> format) {
  auto base = settings_.instances_dir / "_base" / name;
  // Under the cache's lock, as the trimmer's check and removal are.
  std::lock_guard lock(cache_mu_);
  std::error_code missing;
  fs::last_write_time(base, fs::file_time_type::clock::now(), missing);  // a use: kept
  if (!missing) return base;
  fs::create_directories(base.parent_path());
  auto tmp = base;
  tmp += ".tmp-" + uuid4_hex();
  try {
    { std::ofstream(tmp, std::ios::binary | std::ios::trunc); }
    fs::resize_file(tmp, static_cast<std::uintmax_t>(bytes));  // sparse
    format.push_back(tmp.string());
    check_process(format, std::chrono::seconds(120));
    fs::rename(tmp, base);  // a concurrent maker's identical file may win: either will do
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  return base;
}

void QemuDriver::make_config_drive(const InstanceSpec& spec) {
  if (!spec.config_drive && !settings_.force_config_drive) return;
  auto d = dir(spec.uuid);
  auto tree = d / "config-drive.tmp";
  fs::remove_all(tree);
  for (auto& [path, content] : metadata::config_drive_files(spec)) {
    fs::create_directories((tree / path).parent_path());
    write_file_atomic(tree / path, content);
  }
  for (auto& p : fs::recursive_directory_iterator(tree))
    if (p.path().extension() == ".tmp") fs::remove(p.path());
  // genisoimage: 13 ms here, xorriso 110 ms for the same few files.
  check_process({"genisoimage", "-quiet", "-V", "config-2", "-J", "-R", "-o",
                 (d / "disk.config.tmp").string(), tree.string()});
  fs::rename(d / "disk.config.tmp", d / "disk.config");
  fs::remove_all(tree);
}

void QemuDriver::start(const std::string& uuid, bool incoming) {
  if (pid(uuid)) return;
  auto spec = load_spec(uuid);
  auto d = dir(uuid);
  bool rescued = fs::exists(d / "rescue.qcow2");
  std::vector<std::string> cmd{
      settings_.binary,
      "-name",
      "guest=" + spec.name + ",process=nubo-" + uuid,
      "-uuid",
      uuid,
      "-machine",
      "q35,accel=" + accel_,
      "-m",
      std::to_string(std::max<std::int64_t>(spec.memory_mb, 64)),
      "-smp",
      std::to_string(std::max<std::int64_t>(spec.vcpus, 1)),
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-chardev",
      "socket,id=console,path=" + qemu_value((d / "serial.sock").string()) +
          ",server=on,wait=off,logfile=" + qemu_value((d / "console.log").string()) +
          ",logappend=on",
      "-serial",
      "chardev:console",
      "-qmp",
      "unix:" + qemu_value((d / "qmp.sock").string()) + ",server=on,wait=off",
      "-pidfile",
      (d / "qemu.pid").string(),
      "-daemonize"};
  // Free PCIe slots for the disks and NICs hot-plugged later.
  for (int i = 0; i < 4; ++i) {
    cmd.push_back("-device");
    cmd.push_back("pcie-root-port,id=hotplug" + std::to_string(i) +
                  ",chassis=" + std::to_string(i + 1));
  }
  int boot = 1;
  auto disk = [&](const std::string& file, const std::string& format, const std::string& id,
                  bool readonly, bool bootable) {
    cmd.push_back("-drive");
    cmd.push_back("file=" + qemu_value((d / file).string()) + ",format=" + format +
                  ",if=none,id=" + id + (readonly ? ",readonly=on" : ",discard=unmap"));
    cmd.push_back("-device");
    cmd.push_back("virtio-blk-pci,drive=" + id +
                  (bootable ? ",bootindex=" + std::to_string(boot++) : std::string()));
  };
  if (rescued) disk("rescue.qcow2", "qcow2", "rescue", false, true);
  disk("disk.qcow2", "qcow2", "root", false, !rescued);
  if (fs::exists(d / "disk.eph0")) disk("disk.eph0", "qcow2", "eph0", false, false);
  if (fs::exists(d / "disk.swap")) disk("disk.swap", "qcow2", "swap", false, false);
  if (fs::exists(d / "disk.config")) disk("disk.config", "raw", "config", true, false);
  if (auto text = read_file(d / "boot.json"); !text.empty() && !rescued) {
    auto boot = json::parse(text).as_object();
    for (auto [option, key] :
         {std::pair{"-kernel", "kernel"}, {"-initrd", "initrd"}, {"-append", "append"}})
      if (auto value = string_or(boot, key); !value.empty()) {
        cmd.push_back(option);
        cmd.push_back(value);
      }
  }
  if (!spec.vifs.empty()) {
    // A virtio NIC per port, on the tap the network agent puts on the network's bridge.
    for (auto& v : spec.vifs) {
      auto& vif = v.as_object();
      ensure_tap(string_or(vif, "devname"));
      auto port = string_or(vif, "port_id");
      cmd.push_back("-netdev");
      cmd.push_back("tap,id=vif-" + port + ",ifname=" + string_or(vif, "devname") +
                    ",script=no,downscript=no");
      cmd.push_back("-device");
      cmd.push_back("virtio-net-pci,netdev=vif-" + port + ",id=nic-" + port +
                    ",mac=" + string_or(vif, "mac") +
                    ",host_mtu=" + std::to_string(int_or(vif, "mtu", 1500)));
    }
  } else if (!settings_.metadata_relay.empty()) {
    // QEMU's user-mode network, closed to everything (restrict=on) but its own DHCP and the
    // metadata address, where the relay answers for this server. The link-local network keeps
    // the guest's address out of every real one.
    auto relay = settings_.metadata_relay + " --instance " + uuid + " --project " +
                 shell_quote(spec.project_id);
    cmd.push_back("-netdev");
    cmd.push_back(
        "user,id=net0,net=169.254.0.0/16,restrict=on,hostname=" + qemu_value(spec.hostname) +
        ",guestfwd=tcp:169.254.169.254:80-cmd:" + qemu_value(relay));
    cmd.push_back("-device");
    // OpenStack's MAC prefix and three bytes of the server's uuid.
    cmd.push_back("virtio-net-pci,netdev=net0,mac=fa:16:3e:" + uuid.substr(0, 2) + ":" +
                  uuid.substr(2, 2) + ":" + uuid.substr(4, 2));
  }
  if (incoming) {
    cmd.push_back("-incoming");
    cmd.push_back("exec:cat " + shell_quote((d / "suspend.state").string()));
  }
  std::error_code ignored;
  fs::remove(d / "qmp.sock", ignored);
  fs::remove(d / "serial.sock", ignored);
  check_process(spec.vifs.empty() ? cmd : in_host_namespace(cmd), std::chrono::seconds(60));
}

std::vector<std::string> QemuDriver::in_host_namespace(std::vector<std::string> argv) const {
  if (settings_.host_namespace.empty()) return argv;
  argv.insert(argv.begin(), {"ip", "netns", "exec", settings_.host_namespace});
  return argv;
}

void QemuDriver::ensure_tap(const std::string& devname) const {
  if (devname.empty() || devname.size() > 15 || devname.find_first_of("/ ,=") != std::string::npos)
    throw std::runtime_error("bad tap device name " + devname);
  if (run_process(in_host_namespace({"ip", "link", "show", "dev", devname}),
                  std::chrono::seconds(10))
          .exit_code == 0)
    return;
  check_process(in_host_namespace({"ip", "tuntap", "add", "dev", devname, "mode", "tap"}),
                std::chrono::seconds(10));
}

void QemuDriver::remove_tap(const std::string& devname) const {
  if (devname.empty()) return;
  run_process(in_host_namespace({"ip", "link", "del", "dev", devname}), std::chrono::seconds(10));
}

void QemuDriver::attach_interface(const InstanceSpec& instance, const json::object& vif) {
  auto spec = load_spec(instance.uuid);
  auto port = string_or(vif, "port_id");
  ensure_tap(string_or(vif, "devname"));
  // The spec (what the next start builds) names the NIC once the running VM has it.
  auto keep = [&] {
    spec.vifs = instance.vifs;
    save_spec(spec);
  };
  if (!pid(instance.uuid)) return keep();
  try {
    monitor(instance.uuid, "netdev_add",
            json::object{{"type", "tap"},
                         {"id", "vif-" + port},
                         {"ifname", string_or(vif, "devname")},
                         {"script", "no"},
                         {"downscript", "no"}});
  } catch (const std::exception& e) {
    if (std::string(e.what()).find("Duplicate") == std::string::npos) throw;  // a replay
  }
  std::string last_error;
  for (int slot = 0; slot < 4; ++slot) {
    try {
      monitor(instance.uuid, "device_add",
              json::object{{"driver", "virtio-net-pci"},
                           {"netdev", "vif-" + port},
                           {"id", "nic-" + port},
                           {"mac", string_or(vif, "mac")},
                           {"host_mtu", int_or(vif, "mtu", 1500)},
                           {"bus", "hotplug" + std::to_string(slot)}});
      return keep();
    } catch (const std::exception& e) {
      last_error = e.what();
      if (last_error.find("Duplicate") != std::string::npos) return keep();  // a replay
    }
  }
  try {  // no free slot: the backend goes again
    monitor(instance.uuid, "netdev_del", json::object{{"id", "vif-" + port}});
  } catch (const std::exception&) {
  }
  throw Conflict("Failed to attach network adapter device to " + instance.uuid + ": " + last_error);
}

void QemuDriver::detach_interface(const InstanceSpec& instance, const json::object& vif) {
  auto spec = load_spec(instance.uuid);
  auto port = string_or(vif, "port_id");
  if (pid(instance.uuid)) {
    monitor(instance.uuid, "device_del", json::object{{"id", "nic-" + port}});
    // The guest lets go of the device (ACPI hot-unplug); then its backend goes. A guest that
    // does not (paused, or ignoring it) keeps the NIC: the detach fails.
    auto present = [&] {
      auto devices =
          monitor(instance.uuid, "qom-list", json::object{{"path", "/machine/peripheral"}});
      if (devices.is_array())
        for (auto& d : devices.as_array())
          if (string_or(d.as_object(), "name") == "nic-" + port) return true;
      return false;
    };
    for (int i = 0; i < 100 && present(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (present())
      throw Conflict("Failed to detach network adapter device from " + instance.uuid +
                     ": the guest did not release it");
    try {
      monitor(instance.uuid, "netdev_del", json::object{{"id", "vif-" + port}});
    } catch (const std::exception& e) {
      spdlog::warn("qemu: detaching {} from {}: {}", port, instance.uuid, e.what());
    }
  }
  spec.vifs = instance.vifs;
  save_spec(spec);
  remove_tap(string_or(vif, "devname"));
}

void QemuDriver::stop(const std::string& uuid, bool graceful) {
  auto p = pid(uuid);
  if (!p) return;
  auto wait_gone = [&](std::chrono::milliseconds limit) { return wait_exit(*p, limit); };
  if (graceful) {
    try {
      monitor(uuid, "system_powerdown");
      if (wait_gone(settings_.shutdown_timeout)) return;
      spdlog::info("qemu: {} did not power off within {} s; stopping it", uuid,
                   settings_.shutdown_timeout.count());
    } catch (const std::exception& e) {
      spdlog::warn("qemu: {}: {}", uuid, e.what());
    }
  }
  try {
    monitor(uuid, "quit");
  } catch (const std::exception&) {
  }
  if (wait_gone(std::chrono::seconds(5))) return;
  ::kill(*p, SIGKILL);
  wait_gone(std::chrono::seconds(5));
}

void QemuDriver::spawn(const InstanceSpec& instance) {
  auto d = dir(instance.uuid);
  if (fs::exists(d / "spec.json")) {  // a replay: the server is there
    if (!pid(instance.uuid) && !fs::exists(d / "suspend.state")) start(instance.uuid);
    return;
  }
  // spec.json is written last: a directory without it is a build that did not finish (Nubo
  // stopped, the disk filled), started again from nothing.
  fs::remove_all(d);
  fs::create_directories(d);
  try {
    // The config drive is made while the disks are (two tools, each mostly waiting).
    auto config_drive = std::async(std::launch::async, [&] { make_config_drive(instance); });
    try {
      make_disks(instance);
    } catch (...) {
      config_drive.wait();
      throw;
    }
    config_drive.get();
    save_spec(instance);
    start(instance.uuid);
  } catch (...) {
    std::error_code ignored;
    if (auto p = pid(instance.uuid)) ::kill(*p, SIGKILL);
    for (auto& v : instance.vifs) remove_tap(string_or(v.as_object(), "devname"));
    fs::remove_all(d, ignored);
    throw;
  }
}

void QemuDriver::destroy(const std::string& uuid) {
  auto d = dir(uuid);
  if (!fs::exists(d)) return;
  stop(uuid, false);
  if (fs::exists(d / "spec.json"))
    for (auto& v : load_spec(uuid).vifs) remove_tap(string_or(v.as_object(), "devname"));
  fs::remove_all(d);
}

void QemuDriver::power_off(const std::string& uuid) {
  load_spec(uuid);
  stop(uuid, true);
}

void QemuDriver::power_on(const InstanceSpec& instance) {
  load_spec(instance.uuid);
  // A cold boot: a saved state no longer applies.
  if (!pid(instance.uuid)) {
    std::error_code ignored;
    fs::remove(dir(instance.uuid) / "suspend.state", ignored);
  }
  start(instance.uuid);
}

void QemuDriver::reboot(const InstanceSpec& instance, bool hard) {
  load_spec(instance.uuid);
  if (hard) {
    // A hard reboot starts the VM again from its definition, as Nova's libvirt driver does.
    stop(instance.uuid, false);
  } else {
    stop(instance.uuid, true);
  }
  std::error_code ignored;  // a cold boot: a saved state no longer applies
  fs::remove(dir(instance.uuid) / "suspend.state", ignored);
  start(instance.uuid);
}

void QemuDriver::pause(const std::string& uuid) {
  if (!pid(uuid)) throw Conflict("Instance " + uuid + " is not running.");
  monitor(uuid, "stop");
}

void QemuDriver::unpause(const std::string& uuid) {
  if (!pid(uuid)) throw Conflict("Instance " + uuid + " is not running.");
  monitor(uuid, "cont");
}

void QemuDriver::suspend(const std::string& uuid) {
  auto d = dir(uuid);
  if (!pid(uuid)) {
    if (fs::exists(d / "suspend.state")) return;  // a replay: already saved
    throw Conflict("Instance " + uuid + " is not running.");
  }
  // The state goes to a file through QEMU's migration (QEMU 7.2 has no file: target), then QEMU
  // stops; resume starts it again from that file. Locally the default bandwidth cap only slows.
  monitor(uuid, "stop");
  auto resume_guest = [&] {
    try {
      monitor(uuid, "migrate_cancel");
      monitor(uuid, "cont");
    } catch (const std::exception&) {
    }
    std::error_code ignored;
    fs::remove(d / "suspend.state.tmp", ignored);
  };
  try {
    monitor(uuid, "migrate-set-parameters", json::object{{"max-bandwidth", 1LL << 40}});
    monitor(uuid, "migrate",
            json::object{{"uri", "exec:cat > " + shell_quote((d / "suspend.state.tmp").string())}});
    for (int i = 0;; ++i) {
      auto status = monitor(uuid, "query-migrate").as_object();
      auto st = string_or(status, "status");
      if (st == "completed") break;
      if (st == "failed" || st == "cancelled")
        throw std::runtime_error("saving the state of " + uuid +
                                 " failed: " + string_or(status, "error-desc", st));
      if (i >= 6000) throw std::runtime_error("saving the state of " + uuid + " took over 5 min");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (...) {
    resume_guest();  // the guest runs on, as it was
    throw;
  }
  fs::rename(d / "suspend.state.tmp", d / "suspend.state");
  stop(uuid, false);
}

void QemuDriver::resume(const InstanceSpec& instance) {
  auto d = dir(instance.uuid);
  load_spec(instance.uuid);
  if (!fs::exists(d / "suspend.state")) return start(instance.uuid);
  if (!pid(instance.uuid)) start(instance.uuid, true);
  // The VM runs once the state is read back; the file goes then (not before: a failed restore
  // can be tried again).
  for (int i = 0;; ++i) {
    auto status = string_or(monitor(instance.uuid, "query-status").as_object(), "status");
    if (status == "running") break;
    if (status == "paused" || status == "postmigrate") {
      monitor(instance.uuid, "cont");
      break;
    }
    if (i >= 6000) {
      stop(instance.uuid, false);
      throw std::runtime_error("restoring the state of " + instance.uuid + " took over 5 min");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fs::remove(d / "suspend.state");
}

void QemuDriver::rescue(const InstanceSpec& instance, const std::string& rescue_image_ref) {
  auto d = dir(instance.uuid);
  load_spec(instance.uuid);
  auto rescue_image = base_image(rescue_image_ref.empty() ? instance.image_ref : rescue_image_ref);
  auto& base = rescue_image.path;
  auto& format = rescue_image.format;
  stop(instance.uuid, true);
  check_process({"qemu-img", "create", "-q", "-f", "qcow2", "-b", base.string(), "-F", format,
                 (d / "rescue.qcow2.tmp").string()});
  fs::rename(d / "rescue.qcow2.tmp", d / "rescue.qcow2");
  start(instance.uuid);
}

void QemuDriver::unrescue(const InstanceSpec& instance) {
  auto d = dir(instance.uuid);
  load_spec(instance.uuid);
  stop(instance.uuid, true);
  std::error_code ignored;
  fs::remove(d / "rescue.qcow2", ignored);
  start(instance.uuid);
}

void QemuDriver::rebuild(const InstanceSpec& instance) {
  auto d = dir(instance.uuid);
  load_spec(instance.uuid);
  stop(instance.uuid, false);
  for (auto* f :
       {"disk.qcow2", "disk.eph0", "disk.swap", "disk.config", "suspend.state", "boot.json"}) {
    std::error_code ignored;
    fs::remove(d / f, ignored);
  }
  save_spec(instance);
  make_disks(instance);
  make_config_drive(instance);
  start(instance.uuid);
}

void QemuDriver::resize(const InstanceSpec& instance) {
  auto d = dir(instance.uuid);
  if (!fs::exists(d / "spec.json")) return spawn(instance);  // built on this host anew
  stop(instance.uuid, true);
  save_spec(instance);
  auto size = image_format(d / "disk.qcow2").second;
  if (instance.root_gb * kGiB > size)  // disks only grow
    check_process({"qemu-img", "resize", "-q", (d / "disk.qcow2").string(),
                   std::to_string(instance.root_gb * kGiB)});
  make_extra_disks(instance);  // a flavor with ephemeral or swap disks the old one had not
  start(instance.uuid);
}

std::optional<PowerState> QemuDriver::power_state(const std::string& uuid) const {
  auto d = dir(uuid);
  if (!fs::exists(d / "spec.json")) return std::nullopt;
  if (!pid(uuid))
    return fs::exists(d / "suspend.state") ? PowerState::Suspended : PowerState::Shutdown;
  try {
    auto status = string_or(monitor(uuid, "query-status").as_object(), "status");
    if (status == "running") return PowerState::Running;
    if (status == "guest-panicked" || status == "internal-error") return PowerState::Crashed;
    if (status == "shutdown") return PowerState::Shutdown;
    return PowerState::Paused;
  } catch (const std::exception&) {
    return PowerState::Running;  // starting up, or busy: its process is there
  }
}

std::vector<std::string> QemuDriver::list_instances() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(settings_.instances_dir, ec)) {
    auto name = e.path().filename().string();
    if (name.empty() || name[0] == '_' || name[0] == '.') continue;
    if (fs::exists(e.path() / "spec.json")) out.push_back(name);
  }
  return out;
}

void QemuDriver::rotate_console_logs() {
  for (auto& uuid : list_instances()) {
    auto log = dir(uuid) / "console.log";
    std::error_code ec;
    auto size = fs::file_size(log, ec);
    if (ec || size <= static_cast<std::uintmax_t>(settings_.console_log_max_bytes)) continue;
    // QEMU appends (O_APPEND): the log is kept as console.log.1 and the file it writes to starts
    // over, so at most twice the limit stays on disk (virtlogd keeps more backups).
    fs::copy_file(log, dir(uuid) / "console.log.1", fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::resize_file(log, 0, ec);
    if (ec)
      spdlog::warn("qemu {}: cannot rotate the console log of {}: {}", settings_.host, uuid,
                   ec.message());
  }
}

void QemuDriver::periodic_tasks() {
  auto now = std::chrono::steady_clock::now();
  // A serial port writes about 11 kB/s at most: every 30 s is often enough.
  if (now - last_rotation_ >= std::chrono::seconds(30)) {
    last_rotation_ = now;
    rotate_console_logs();
  }
  if (settings_.image_cache_interval.count() < 0) return;
  if (now - last_trim_ < settings_.image_cache_interval) return;
  last_trim_ = now;
  trim_image_cache();
}

std::vector<std::string> QemuDriver::trim_image_cache() {
  auto canonical = [](const fs::path& p) {
    std::error_code ec;
    auto c = fs::weakly_canonical(p, ec);
    return ec ? p : c;
  };
  std::set<fs::path> used;
  for (auto& uuid : list_instances()) {
    auto d = dir(uuid);
    for (auto* f : {"disk.qcow2", "disk.eph0", "disk.swap", "rescue.qcow2"})
      if (auto b = backing_file(d / f)) used.insert(canonical(b->is_absolute() ? *b : d / *b));
    if (auto text = read_file(d / "boot.json"); !text.empty()) {
      auto boot = json::parse(text).as_object();
      for (auto* k : {"kernel", "initrd"})
        if (auto v = string_or(boot, k); !v.empty()) used.insert(canonical(v));
    }
  }
  std::vector<std::string> removed;
  std::lock_guard lock(cache_mu_);
  std::error_code ec;
  auto cutoff = fs::file_time_type::clock::now() - settings_.image_cache_max_age;
  for (auto& e : fs::directory_iterator(settings_.instances_dir / "_base", ec)) {
    auto name = e.path().filename().string();
    // Side files go with their image; files being made are not the trimmer's.
    if (name.find(".tmp") != std::string::npos || name.ends_with(".part") ||
        name.ends_with(".format") || name.ends_with(".boot"))
      continue;
    std::error_code time_error;
    auto used_at = fs::last_write_time(e.path(), time_error);
    if (time_error || used.count(canonical(e.path())) || used_at > cutoff) continue;
    for (auto* suffix : {"", ".format", ".boot"}) {
      std::error_code ignored;
      fs::remove(e.path().string() + suffix, ignored);
    }
    cache_.erase(name);
    removed.push_back(name);
    spdlog::info("qemu {}: image cache: removed {}, unused for over {} s", settings_.host, name,
                 settings_.image_cache_max_age.count());
  }
  return removed;
}

ConsoleEndpoint QemuDriver::console(const std::string& uuid, const std::string& protocol) const {
  load_spec(uuid);
  if (protocol != "serial") return ComputeDriver::console(uuid, protocol);
  auto socket = dir(uuid) / "serial.sock";
  // A VM started before its serial port became a socket has none until it is started again.
  if (!pid(uuid) || !fs::exists(socket)) throw Conflict("Instance " + uuid + " is not ready");
  return ConsoleEndpoint{resources().host_ip, 0, socket.string()};
}

std::string QemuDriver::console_output(const std::string& uuid) const {
  load_spec(uuid);
  // The last MiB at most: a guest writes to its console without limit.
  constexpr std::streamoff kTail = 1 << 20;
  auto tail = [&](const fs::path& file, std::streamoff limit) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in || limit <= 0) return std::string();
    auto size = static_cast<std::streamoff>(in.tellg());
    in.seekg(std::max<std::streamoff>(0, size - limit));
    std::string out(static_cast<size_t>(std::min(size, limit)), '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<size_t>(in.gcount()));
    return out;
  };
  auto current = tail(dir(uuid) / "console.log", kTail);
  // What was rotated away fills the rest.
  return tail(dir(uuid) / "console.log.1", kTail - static_cast<std::streamoff>(current.size())) +
         current;
}

std::string QemuDriver::snapshot(const std::string& uuid, const std::string& disk_format) {
  auto d = dir(uuid);
  load_spec(uuid);
  auto out = settings_.instances_dir / ("_snapshot-" + uuid + "-" + uuid4() + "." + disk_format);
  // A running VM is paused for the copy (QMP stop flushes its disk), so that the qcow2 read is
  // consistent; -U since QEMU still holds the disk's lock.
  bool paused_here = false;
  if (pid(uuid) && string_or(monitor(uuid, "query-status").as_object(), "status") == "running") {
    monitor(uuid, "stop");
    paused_here = true;
  }
  struct Cont {
    const QemuDriver& driver;
    const std::string& uuid;
    bool active;
    ~Cont() {
      if (!active) return;
      try {
        driver.monitor(uuid, "cont");
      } catch (const std::exception& e) {
        spdlog::warn("qemu: {} stays paused after its snapshot: {}", uuid, e.what());
      }
    }
  } resume_after{*this, uuid, paused_here};
  check_process({"qemu-img", "convert", "-U", "-O", disk_format == "qcow2" ? "qcow2" : "raw",
                 (d / "disk.qcow2").string(), out.string()},
                std::chrono::hours(6));
  return out.string();
}

}  // namespace nubo::compute
