// The process runtime: I/O threads serving HTTP, a bounded worker pool for blocking work,
// periodic background tasks, and graceful shutdown on SIGINT/SIGTERM.
#pragma once

#include "common/http/message.hpp"

#include <chrono>
#include <exception>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace nubo {

struct ServerOptions {
  std::string name = "http";
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  size_t header_limit = 16 * 1024;
  size_t body_limit = 112 * 1024;  // Keystone's max_request_body_size
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{75};
  std::string tls_cert_file;  // both set: serve HTTPS
  std::string tls_key_file;
  // Renders transport-level errors (413, 400) in the service's dialect.
  std::function<http::Response(int status, const std::string& message)> render_error;
};

// Runs on a worker thread; must not throw (the pipeline turns exceptions into 500s).
using HttpHandler = std::function<http::Response(http::Request&)>;
// Runs on the I/O thread first; returns nullopt to hand the request to the worker pool.
using FastHttpHandler = std::function<std::optional<http::Response>(http::Request&)>;
// Streamed uploads: `matches` runs on the I/O thread on the request's head (it must be cheap);
// `start` runs on the worker pool; the body is then fed to the sink chunk by chunk.
struct UploadHandlers {
  std::function<bool(const http::Request&)> matches;
  std::function<http::UploadStart(http::Request&)> start;
};

// An exception from an upload's sink (or other streamed work), answered in the listener's
// dialect: an ApiError's status, message and headers; anything else a 500, logged with `where`.
http::Response render_exception(std::exception_ptr error,
                                const std::function<http::Response(int, const std::string&)>& render,
                                const std::string& where);

class Runtime {
 public:
  // worker_threads 0: no pool; handlers run (and block) on the I/O threads, for services whose
  // every request is blocking work, where the handoff to a pool and back is pure cost.
  Runtime(unsigned io_threads, unsigned worker_threads);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Binds immediately (so port 0 is resolved and bind errors surface now); serves after start().
  uint16_t listen(const ServerOptions& options, HttpHandler handler, FastHttpHandler fast = {},
                  UploadHandlers uploads = {});
  // Runs fn every interval on the worker pool until stop().
  void every(std::chrono::milliseconds interval, std::function<void()> fn);
  void post_work(std::function<void()> fn);
  // A queue of blocking work that runs in order, one item at a time (a strand on the pool, or
  // one shard without a pool); queues made one after the other spread over the threads.
  std::function<void(std::function<void()>)> serial_work();
  void start();
  // Blocks until SIGINT or SIGTERM, then stops gracefully.
  void wait_for_signal();
  // Stops accepting, lets in-flight requests finish (up to grace), then joins every thread.
  void stop(std::chrono::seconds grace = std::chrono::seconds(30));

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nubo
