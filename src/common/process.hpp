// Running the host's tools (qemu-img, qemu-system, xorriso; later ip, nft, dnsmasq): argv only,
// never a shell, with their output captured for the error that names what went wrong.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace nubo {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal (or by the timeout)
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (found on PATH) and waits for it, for at most `timeout`. Output beyond
// `output_limit` bytes is read and dropped.
ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::minutes(10),
                          std::size_t output_limit = 1u << 20);

// The same; throws ProcessError (with the command and its output) unless it exits 0.
std::string check_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::minutes(10));

// One word for a POSIX shell (and for GLib's g_shell_parse_argv, which QEMU uses): single-quoted.
std::string shell_quote(const std::string& word);

struct ProcessError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace nubo
