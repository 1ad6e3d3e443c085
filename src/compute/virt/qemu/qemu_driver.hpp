// The `qemu` compute driver: one QEMU process per server, started directly (daemonized, so that
// it outlives Nubo) and driven over QMP; no libvirt. Each server has a directory under the
// instances directory:
//   spec.json     what it was built from (the command line is made from it again on start)
//   disk.qcow2    its root disk, a qcow2 overlay on the host's cached copy of its image
//   disk.eph0, disk.swap   the flavor's ephemeral and swap disks (qcow2 overlays on formatted
//                          bases in _base/: ext4 labelled ephemeral0, and swap)
//   disk.config   its config drive (ISO 9660 labelled config-2)
//   boot.json     for images with a kernel_id: the kernel, ramdisk and command line QEMU loads
//   rescue.qcow2  while rescued: the rescue image's overlay, booted instead of disk.qcow2
//   suspend.state while suspended: the VM's saved state
//   console.log   everything written to the serial console (console.log.1: the part before,
//                 once it grew past console_log_max_bytes)
//   serial.sock, qmp.sock, qemu.pid   while it runs: the serial console, QMP, the process
// The view of the servers is rebuilt from these directories and the processes they name, so a
// restart of Nubo finds its VMs running, untouched.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>

#include "compute/virt/driver.hpp"

namespace nubo::compute {

struct QemuSettings {
  std::string host;                     // the compute host's name
  std::filesystem::path instances_dir;  // one directory per server, and _base/ for images
  std::string virt_type = "auto";       // auto | kvm | tcg
  std::string binary = "qemu-system-x86_64";
  std::int64_t vcpus = 0, memory_mb = 0, local_gb = 0;  // reported resources; 0: the host's
  // Every server gets a config drive (Nova's force_config_drive), not only those that ask.
  bool force_config_drive = true;
  // How long a guest has to power off on ACPI's power button before it is stopped hard.
  std::chrono::seconds shutdown_timeout{10};
  // The network namespace the network agent's devices live in (its [network] host_namespace,
  // for tests): the servers' taps are made there and QEMU runs in it. Empty: the host's own.
  std::string host_namespace;
  // Without Nubo networking on the host (a server with no ports): the command (shell words) QEMU's
  // user-mode network runs for each connection to 169.254.169.254:80, given "--instance ID
  // --project ID" more; empty: no NIC at all.
  std::string metadata_relay;
  // The image cache (_base/): files no server uses and nobody used for max_age are removed,
  // checked every interval (Nova's [image_cache] remove_unused_original_minimum_age_seconds and
  // manager_interval); a negative interval never trims.
  std::chrono::seconds image_cache_max_age{86400};
  std::chrono::seconds image_cache_interval{2400};
  // A console log past this size is rotated (console.log.1), as virtlogd's max_size.
  std::int64_t console_log_max_bytes = 2 << 20;
};

// Writes an image's data to `to` and returns its record (disk_format, checksum, os_hash_*).
using ImageFetcher =
    std::function<json::object(const std::string& image_id, const std::filesystem::path& to)>;

class QemuDriver : public ComputeDriver {
 public:
  QemuDriver(QemuSettings settings, ImageFetcher fetch);
  // "kvm" when KVM is really usable (kvm_intel or kvm_amd loaded, or vmx/svm among the CPU's
  // flags; /dev/kvm alone proves nothing), else "tcg"; virt_type kvm or tcg is taken as said.
  static std::string accelerator(const std::string& virt_type);

  std::string name() const override { return "qemu"; }
  HostResources resources() const override;

  void spawn(const InstanceSpec& instance) override;
  void destroy(const std::string& uuid) override;
  void power_off(const std::string& uuid) override;
  void power_on(const InstanceSpec& instance) override;
  void reboot(const InstanceSpec& instance, bool hard) override;
  void pause(const std::string& uuid) override;
  void unpause(const std::string& uuid) override;
  void suspend(const std::string& uuid) override;
  void resume(const InstanceSpec& instance) override;
  void rescue(const InstanceSpec& instance, const std::string& rescue_image_ref) override;
  void unrescue(const InstanceSpec& instance) override;
  void rebuild(const InstanceSpec& instance) override;
  void resize(const InstanceSpec& instance) override;

  std::optional<PowerState> power_state(const std::string& uuid) const override;
  std::vector<std::string> list_instances() const override;
  std::string console_output(const std::string& uuid) const override;
  // serial: the serial port's socket (serial.sock), one client at a time; the console log keeps
  // everything the guest writes either way.
  ConsoleEndpoint console(const std::string& uuid, const std::string& protocol) const override;
  std::string snapshot(const std::string& uuid, const std::string& disk_format) override;
  // NICs hot-plugged over QMP (a virtio-net device on a free PCIe root port, its tap opened by
  // QEMU); a server that does not run gets or loses the NIC at its next start.
  void attach_interface(const InstanceSpec& instance, const json::object& vif) override;
  void detach_interface(const InstanceSpec& instance, const json::object& vif) override;
  void periodic_tasks() override;
  // Rotates the console logs grown past console_log_max_bytes.
  void rotate_console_logs();
  // Removes the cached images (and formatted bases) no server's disk is backed by and that
  // were last used more than image_cache_max_age ago; returns their names.
  std::vector<std::string> trim_image_cache();

 private:
  std::filesystem::path dir(const std::string& uuid) const;
  // The flavor's ephemeral and swap disks, when the server has them not yet.
  void make_extra_disks(const InstanceSpec& spec);
  // A raw file in the image cache of this size, formatted by `format` (the file's path is added
  // last), made once.
  std::filesystem::path formatted_base(const std::string& name, std::int64_t bytes,
                                       std::vector<std::string> format);
  // The running QEMU's pid, when its process is alive and is this server's.
  std::optional<int> pid(const std::string& uuid) const;
  struct BaseImage {
    std::filesystem::path path;
    std::string format;         // raw or qcow2
    std::int64_t virtual_size;  // bytes
    // Glance's kernel_id / ramdisk_id / os_command_line: booted with QEMU's -kernel.
    std::string kernel_id, ramdisk_id, command_line;
  };
  // The image's cached base file, fetched and checked once per host.
  BaseImage base_image(const std::string& image_id);
  // Builds the root disk (and the flavor's other disks) from the spec's image.
  void make_disks(const InstanceSpec& spec);
  void make_config_drive(const InstanceSpec& spec);
  // Starts QEMU from the saved spec (`incoming`: restore the suspended state).
  void start(const std::string& uuid, bool incoming = false);
  // Stops QEMU: ACPI power-down first when `graceful`, then quit, then SIGKILL.
  void stop(const std::string& uuid, bool graceful);
  void save_spec(const InstanceSpec& spec);
  // A NIC's tap device: made (persistent, so that it keeps its place on the bridge while QEMU
  // restarts) when missing, and removed with its server.
  void ensure_tap(const std::string& devname) const;
  void remove_tap(const std::string& devname) const;
  // A command run in the host namespace.
  std::vector<std::string> in_host_namespace(std::vector<std::string> argv) const;
  InstanceSpec load_spec(const std::string& uuid) const;
  json::value monitor(const std::string& uuid, const std::string& command,
                      const json::object& arguments = {}) const;

  QemuSettings settings_;
  ImageFetcher fetch_;
  std::string accel_;
  std::mutex cache_mu_;  // one fetch of an image at a time; guards cache_
  std::map<std::string, BaseImage> cache_;
  std::chrono::steady_clock::time_point last_trim_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_rotation_{};
};

}  // namespace nubo::compute
