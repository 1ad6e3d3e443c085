#include "common/log.hpp"

#include "common/config.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace nubo {

void setup_logging(const std::string& level, const std::string& file) {
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty())
    logger = spdlog::stderr_logger_mt("nubo");
  else
    logger = spdlog::basic_logger_mt("nubo", file);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

void setup_logging(const Config& config) {
  setup_logging(config.get_string("DEFAULT", "log_level", "info"), config.get_string("DEFAULT", "log_file", ""));
}

}  // namespace nubo
