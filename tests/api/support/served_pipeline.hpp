// A service's pipeline served in-process on port 0 (its own runtime), for API tests of services
// that run beside the identity cloud.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "common/service.hpp"

namespace nubo::apitest {

class ServedPipeline {
 public:
  ServedPipeline(ServiceSpec spec,
                 std::function<http::Response(int, const std::string&)> render_error)
      : runtime_(std::make_unique<Runtime>(1, 4)),
        pipeline_(std::make_shared<Pipeline>(std::move(spec))) {
    ServerOptions opts;
    opts.render_error = std::move(render_error);
    url_ = "http://127.0.0.1:" + std::to_string(listen_pipeline(*runtime_, opts, pipeline_));
    runtime_->start();
  }
  ~ServedPipeline() { runtime_->stop(std::chrono::seconds(2)); }
  const std::string& url() const { return url_; }

 private:
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Pipeline> pipeline_;
  std::string url_;
};

}  // namespace nubo::apitest
