// Puts a service pipeline on a listening socket: buffered requests, the in-memory fast path and
// streamed uploads all go through the same pipeline.
#pragma once

#include "common/runtime.hpp"
#include "common/service.hpp"

#include <memory>

namespace nubo {

inline uint16_t listen_pipeline(Runtime& runtime, const ServerOptions& options, std::shared_ptr<Pipeline> pipeline) {
  UploadHandlers uploads;
  uploads.matches = [pipeline](const http::Request& r) { return pipeline->streams(r); };
  uploads.start = [pipeline](http::Request& r) { return pipeline->begin_upload(r); };
  return runtime.listen(
      options, [pipeline](http::Request& r) { return pipeline->handle(r); },
      [pipeline](http::Request& r) { return pipeline->try_fast(r); }, std::move(uploads));
}

}  // namespace nubo
