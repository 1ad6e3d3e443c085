// Requests from the object proxy (and from storage servers to each other) to storage servers:
// HTTP/1.1 on kept-alive sockets, bodies streamed both ways, a timeout on every wait. The common
// client (libcurl, whole bodies) cannot stream a body that arrives in pieces to three servers.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/message.hpp"

namespace nubo::object {

struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Idle connections by "ip:port", reused by later requests (a request that ends cleanly gives its
// socket back).
class BackendPool {
 public:
  ~BackendPool();
  int take(const std::string& key);  // an idle socket or -1
  void give(const std::string& key, int fd);

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<int>> idle_;
};

class BackendRequest {
 public:
  BackendRequest(BackendPool& pool, std::string ip, int port,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~BackendRequest();
  BackendRequest(const BackendRequest&) = delete;
  BackendRequest& operator=(const BackendRequest&) = delete;

  // Connects and sends the head. content_length: the body's size (0: none); nullopt: chunked.
  void start(std::string_view method, std::string_view target, const http::Headers& headers,
             std::optional<std::uint64_t> content_length = 0);
  void write(std::string_view chunk);
  void finish();  // after the last write (ends a chunked body)
  // The response's status and headers (reads them on first call).
  int status();
  const http::Headers& headers();
  // The next body bytes, at most max; empty at the end of the body.
  std::string read(size_t max = 65536);
  std::string read_all(size_t limit = 64 << 20);
  // The whole exchange for a request with a small body.
  int call(std::string_view method, std::string_view target, const http::Headers& headers,
           std::string_view body = {});
  const std::string& where() const { return key_; }

 private:
  struct Parser;
  void connect();
  void send_all(std::string_view data);
  bool fill();  // reads more bytes into the parser; false at EOF
  void wait(short events);
  BackendPool& pool_;
  std::string ip_, key_;
  int port_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  bool reused_ = false, chunked_ = false, head_ = false;
  std::unique_ptr<Parser> parser_;
  std::string in_;  // bytes read and not yet parsed
};

// "a/b c" → "a/b%20c" (slashes kept), for names in backend paths.
std::string encode_path(std::string_view s);

}  // namespace nubo::object
