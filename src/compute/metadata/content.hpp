// What a guest reads about itself, the same through its config drive and through the metadata
// service: OpenStack's tree (openstack/<version>/meta_data.json, user_data, password,
// vendor_data.json, network_data.json, vendor_data2.json) and EC2's (<version>/meta-data/...,
// user-data), as Nova lays them out.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "compute/virt/driver.hpp"

namespace nubo::compute::metadata {

// The versions a guest may name, oldest first ("latest" is the newest of each).
const std::vector<std::string>& openstack_versions();
const std::vector<std::string>& ec2_versions();

// The user data as the guest gets it (the API keeps it base64-encoded).
std::string user_data(const InstanceSpec& instance);
// openstack/<version>/meta_data.json; `admin_pass` only on config drives, as Nova does.
json::object openstack_meta_data(const InstanceSpec& instance, bool with_admin_pass);
// The EC2 tree: {"meta-data": {...}, "user-data": ...} (user-data only when there is some).
json::object ec2_tree(const InstanceSpec& instance);

// The config drive's files (path in the ISO → content).
std::map<std::string, std::string> config_drive_files(const InstanceSpec& instance);

struct Answer {
  std::string content_type;
  std::string body;
};
// The metadata service's answer for a path (without its leading slash; "" is the root), with
// the password the guest posted earlier; nullopt when there is no such entry.
std::optional<Answer> lookup(const InstanceSpec& instance, const std::string& path,
                             const std::string& password);

// How a proxy vouches for an instance id (X-Instance-ID-Signature): HMAC-SHA256 of the id under
// the shared secret, in lower-case hex, as Neutron's metadata agent signs it.
std::string sign(const std::string& secret, const std::string& instance_id);

// The largest password a guest may post (Nova keeps four chunks of 255 bytes).
constexpr std::size_t kMaxPassword = 4 * 255;

}  // namespace nubo::compute::metadata
