// Logging setup: spdlog (compiled library), level and optional file from [DEFAULT].
#pragma once

#include <string>

namespace nubo {
class Config;
void setup_logging(const Config& config);
void setup_logging(const std::string& level, const std::string& file = {});
}  // namespace nubo
