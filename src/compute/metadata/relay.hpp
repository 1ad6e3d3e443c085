// The metadata relay: QEMU's user-mode network runs it for each connection a guest opens to
// 169.254.169.254:80 (guestfwd), with the connection on stdin and stdout. It forwards the guest's
// request to the metadata service with the instance's identity signed under the shared secret,
// as Neutron's metadata proxy does, so a VM on a host without Nubo networking reads its metadata
// at the usual address.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

namespace nubo::compute::metadata {

struct RelaySettings {
  std::string url;  // the metadata service: http://127.0.0.1:8775
  std::string shared_secret;
  std::string instance_id, project_id;
};

// Serves one connection (one request, answered with Connection: close); returns the exit code.
// The caller bounds its time (`nubo metadata-relay` exits after 20 s): a guest may hold
// connections open.
int relay(std::istream& in, std::ostream& out, const RelaySettings& settings);

// Takes one of `slots` places for relays of the server whose directory this is (a flock on
// DIR/relay.N.lock, held until the process ends), so that a guest opening many connections holds
// few processes; false when all are taken. A server without a directory here is not limited.
bool take_relay_slot(const std::filesystem::path& dir, int slots);

}  // namespace nubo::compute::metadata
