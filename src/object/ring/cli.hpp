// `nubo ring`: swift-ring-builder's commands over a builder file and the ring file beside it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace nubo::object {

// args: <builder_file> [command [arguments...]]; "<name>.builder" writes "<name>.ring.json".
// Returns swift-ring-builder's exit codes: 0 done, 1 done with a warning, 2 error.
int ring_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace nubo::object
