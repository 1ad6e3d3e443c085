// Requests from the object proxy (and from storage servers to each other) to storage servers:
// HTTP/1.1 on kept-alive sockets, bodies streamed both ways, a timeout on every wait. The common
// client (libcurl, whole bodies) cannot stream a body that arrives in pieces to three servers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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

// A storage server in this process (all-in-one): requests to its address run its pipeline on
// the caller's thread instead of crossing a socket, as the bus is in-process there (DESIGN §7).
// Its answers are the ones it would send over HTTP; only the serialization, the loopback hop
// and two thread handoffs are saved (a 4 KiB GET spent most of its time in them).
struct LocalServer {
  std::function<http::Response(http::Request&)> handle;
  std::function<bool(const http::Request&)> streams;
  std::function<http::UploadStart(http::Request&)> begin_upload;
  // A queue on its own threads whose work runs in order: an upload's body is written and
  // finished there, so that replicas on this server take their bytes, hash them and sync side by
  // side as they do over sockets, while the proxy reads on.
  using Post = std::function<void(std::function<void()>)>;
  std::function<Post()> serial;
  // An exception from an upload's sink, rendered as the server's listener renders it.
  std::function<http::Response(int, const std::string&)> render_error;
};
// Work on byte chunks run in order on a serial queue, with at most `limit` bytes waiting there:
// the feeder waits (memory stays flat however fast the bytes arrive) while it goes on with other
// work. After the work throws, the remaining chunks are dropped and failure() says why.
class ChunkLane {
 public:
  using Work = std::function<void(const std::string&)>;
  ChunkLane(LocalServer::Post post, Work work, size_t limit = 4 << 20);
  void push(std::shared_ptr<const std::string> bytes);
  // Waits until every chunk pushed so far has been worked on (or dropped).
  void drain();
  std::exception_ptr failure() const;
  const LocalServer::Post& post() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Serves "ip:port" in-process until the returned handle is released.
[[nodiscard]] std::shared_ptr<void> serve_locally(const std::string& key, LocalServer server);

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
  // The same; a server in this process keeps the bytes without copying them (several replicas
  // there share one copy).
  void write(const std::shared_ptr<const std::string>& chunk);
  // After start(), before the first write: true when the server is in this process and takes
  // the body's md5 from the caller (given to finish()) instead of hashing the bytes again.
  bool takes_md5();
  // A new serial queue on the threads of the server in this process (empty over a socket).
  LocalServer::Post local_queue() const;
  // After the last write (ends a chunked body); `md5`: the body's, when takes_md5() said so.
  void finish(std::string_view md5 = {});
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
  // The rest of the body as bytes of an open file (in-process exchanges), for sendfile(2).
  std::optional<http::BodySource::FileSpan> file_span();

 private:
  struct Parser;
  struct Local;
  std::shared_ptr<Local> local_;  // set when the server is in this process
  void run_local();
  bool answered_locally() const;
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
