#include "compute/virt/fake/fake_driver.hpp"

namespace nubo::compute {

FakeDriver::FakeDriver(std::string host, std::int64_t vcpus, std::int64_t memory_mb, std::int64_t local_gb) {
  resources_.host = host;
  resources_.hypervisor_hostname = std::move(host);
  resources_.hypervisor_type = "fake";
  resources_.hypervisor_version = 1000;
  resources_.vcpus = vcpus;
  resources_.memory_mb = memory_mb;
  resources_.local_gb = local_gb;
  resources_.cpu_info = R"({"arch": "x86_64", "model": "fake", "vendor": "Nubo", "topology": {"sockets": 1, "cores": )" +
                        std::to_string(vcpus) + R"(, "threads": 1}, "features": []})";
}

}  // namespace nubo::compute
