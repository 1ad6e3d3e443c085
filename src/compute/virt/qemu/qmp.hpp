// A QMP client for one command at a time: connects to a QEMU's monitor socket, negotiates
// capabilities, sends the command and returns its answer, skipping the events in between.
// Written here because Debian ships no C or C++ QMP library (libvirt's is inside libvirtd).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "common/json.hpp"

namespace nubo::compute::qmp {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs `command` (with `arguments`) on the QEMU listening at `socket`; the command's "return"
// value. Throws Error when QEMU cannot be reached, answers with an error, or is silent for
// `timeout`.
json::value execute(const std::filesystem::path& socket, const std::string& command,
                    const json::object& arguments = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace nubo::compute::qmp
