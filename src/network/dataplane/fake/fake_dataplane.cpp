// The `fake` dataplane: API-only scale tests. It touches no kernel and reports every VM port as
// plugged at once, as if its VM had made the device.
#include "network/dataplane/dataplane.hpp"

namespace nubo::network::dataplane {

namespace {

class FakeDataplane final : public Dataplane {
 public:
  ApplyResult apply(const HostState& desired, bool) override {
    ApplyResult result;
    for (auto& p : desired.ports)
      if (p.is_vm() && p.admin_state_up) result.plugged.push_back(p.id);
    return result;
  }
};

}  // namespace

std::unique_ptr<Dataplane> make_fake_dataplane() { return std::make_unique<FakeDataplane>(); }

}  // namespace nubo::network::dataplane
