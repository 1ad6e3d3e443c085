// Small whole-file reads and writes for state files (pid files, dnsmasq's hosts, configs).
#pragma once

#include <filesystem>
#include <string>

namespace nubo {

// The file's bytes; empty when it cannot be read.
std::string read_file(const std::filesystem::path& p);
// Written beside as `<p>.tmp`, then renamed over `p`: a reader never sees half a file.
void write_file_atomic(const std::filesystem::path& p, const std::string& data);

}  // namespace nubo
