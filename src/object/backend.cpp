#include "object/backend.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http/basic_parser.hpp>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>

#include "common/runtime.hpp"

namespace nubo::object {

namespace beast = boost::beast;

namespace {

std::mutex local_mutex;
std::map<std::string, std::shared_ptr<const LocalServer>>& local_servers() {
  static std::map<std::string, std::shared_ptr<const LocalServer>> servers;
  return servers;
}

std::shared_ptr<const LocalServer> find_local(const std::string& key) {
  std::lock_guard lock(local_mutex);
  auto it = local_servers().find(key);
  return it == local_servers().end() ? nullptr : it->second;
}

struct Registration {
  std::string key;
  const LocalServer* server = nullptr;
  ~Registration() {
    std::lock_guard lock(local_mutex);
    auto it = local_servers().find(key);
    if (it != local_servers().end() && it->second.get() == server) local_servers().erase(it);
  }
};

}  // namespace

std::shared_ptr<void> serve_locally(const std::string& key, LocalServer server) {
  auto shared = std::make_shared<const LocalServer>(std::move(server));
  auto registration = std::make_shared<Registration>();
  registration->key = key;
  registration->server = shared.get();
  std::lock_guard lock(local_mutex);
  local_servers()[key] = std::move(shared);
  return registration;
}

struct ChunkLane::State {
  LocalServer::Post post;
  Work work;
  size_t limit;
  mutable std::mutex mutex;
  std::condition_variable drained;
  size_t queued = 0;         // bytes posted and not yet worked on
  std::exception_ptr error;  // the first work that threw
};

ChunkLane::ChunkLane(LocalServer::Post post, Work work, size_t limit)
    : state_(std::make_shared<State>()) {
  state_->post = std::move(post);
  state_->work = std::move(work);
  state_->limit = limit;
}

void ChunkLane::push(std::shared_ptr<const std::string> bytes) {
  auto& s = *state_;
  {
    std::unique_lock lock(s.mutex);
    s.drained.wait(lock, [&] { return s.queued < s.limit || s.error; });
    if (s.error) return;
    s.queued += bytes->size();
  }
  s.post([state = state_, bytes = std::move(bytes)] {
    std::exception_ptr failed;
    {
      std::lock_guard lock(state->mutex);
      failed = state->error;
    }
    if (!failed) try {
        state->work(*bytes);
      } catch (...) {
        failed = std::current_exception();
      }
    std::lock_guard lock(state->mutex);
    if (failed && !state->error) state->error = failed;
    state->queued -= bytes->size();
    state->drained.notify_all();
  });
}

void ChunkLane::drain() {
  std::unique_lock lock(state_->mutex);
  state_->drained.wait(lock, [&] { return state_->queued == 0; });
}

std::exception_ptr ChunkLane::failure() const {
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

const LocalServer::Post& ChunkLane::post() const { return state_->post; }

// One in-process exchange: the request as the server's listener would have parsed it, the
// upload's sink while its body is fed, then the response.
// An upload's sink is used only on its serial queue (`lane`) once it has started; after a failed
// write the rest is dropped and finish() answers with that failure.
struct BackendRequest::Local {
  std::shared_ptr<const LocalServer> server;
  http::Request request;
  std::unique_ptr<http::BodySink> sink;
  std::optional<ChunkLane> lane;          // the upload's queue
  std::future<http::Response> finishing;  // the sink's finish, on that queue
  std::optional<http::Response> response;
  size_t offset = 0;      // into response->body
  bool streamed = false;  // some of response->stream was read

  // An exception from the sink answers as the server's listener answers it, and nothing of
  // the upload is kept.
  http::Response fail(std::exception_ptr error) {
    auto out = render_exception(error, server->render_error, "in-process " + request.path);
    if (sink) sink->abort();
    sink.reset();
    return out;
  }
};

BackendPool::~BackendPool() {
  for (auto& [key, fds] : idle_)
    for (int fd : fds) ::close(fd);
}

int BackendPool::take(const std::string& key) {
  for (;;) {
    int fd = -1;
    {
      std::lock_guard lock(mutex_);
      auto it = idle_.find(key);
      if (it == idle_.end() || it->second.empty()) return -1;
      fd = it->second.back();
      it->second.pop_back();
    }
    // An idle socket that is readable was closed by the server (or holds garbage): not reused.
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) return fd;
    ::close(fd);
  }
}

void BackendPool::give(const std::string& key, int fd) {
  std::lock_guard lock(mutex_);
  auto& fds = idle_[key];
  if (fds.size() >= 64) {
    ::close(fd);
    return;
  }
  fds.push_back(fd);
}

// Beast's HTTP/1.1 response parser, fed by hand (the socket is ours, with poll timeouts), keeping
// the status, the headers and the body bytes not yet read.
struct BackendRequest::Parser : beast::http::basic_parser<false> {
  int status = 0;
  http::Headers headers;
  std::string body;

 private:
  void on_request_impl(beast::http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    status = code;
  }
  void on_field_impl(beast::http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    headers.add(std::string(name), std::string(value));
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(boost::optional<std::uint64_t> const&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code&) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code&) override {}
};

BackendRequest::BackendRequest(BackendPool& pool, std::string ip, int port,
                               std::chrono::milliseconds timeout)
    : pool_(pool),
      ip_(std::move(ip)),
      key_(ip_ + ":" + std::to_string(port)),
      port_(port),
      timeout_(timeout) {}

BackendRequest::~BackendRequest() {
  // A body that was not finished: the server drops what it had, as on a connection lost.
  if (local_ && local_->sink && !local_->finishing.valid() && !local_->response)
    local_->lane->post()([local = local_] {
      local->sink->abort();
      local->sink.reset();
    });
  if (fd_ < 0) return;
  bool clean = parser_ && parser_->is_done() && parser_->keep_alive() && in_.empty();
  if (clean)
    pool_.give(key_, fd_);
  else
    ::close(fd_);
}

void BackendRequest::wait(short events) {
  pollfd p{fd_, events, 0};
  int n;
  do {
    n = ::poll(&p, 1, static_cast<int>(timeout_.count()));
  } while (n < 0 && errno == EINTR);
  if (n == 0) throw BackendError(key_ + ": timed out");
  if (n < 0) throw BackendError(key_ + ": " + std::strerror(errno));
}

void BackendRequest::connect() {
  fd_ = pool_.take(key_);
  if (fd_ >= 0) {
    reused_ = true;
    return;
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw BackendError(key_ + ": socket: " + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::inet_pton(AF_INET, ip_.c_str(), &addr.sin_addr) != 1)
    throw BackendError(key_ + ": not an IPv4 address");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) throw BackendError(key_ + ": connect: " + std::strerror(errno));
    wait(POLLOUT);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) throw BackendError(key_ + ": connect: " + std::strerror(err));
  }
}

void BackendRequest::send_all(std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait(POLLOUT);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      throw BackendError(key_ + ": send: " + std::strerror(errno));
    }
  }
}

void BackendRequest::start(std::string_view method, std::string_view target,
                           const http::Headers& headers,
                           std::optional<std::uint64_t> content_length) {
  head_ = method == "HEAD";
  chunked_ = !content_length;
  if (auto server = find_local(key_)) {
    local_ = std::make_shared<Local>();
    local_->server = std::move(server);
    auto& q = local_->request;
    q.method = std::string(method);
    q.target = std::string(target);
    http::parse_target(q);
    q.remote_address = ip_;
    q.headers.add("Host", key_);
    for (auto& [k, v] : headers.all())
      if (!http::iequals(k, "Content-Length") && !http::iequals(k, "Transfer-Encoding") &&
          !http::iequals(k, "Host") && !http::iequals(k, "Connection"))
        q.headers.add(k, v);
    if (chunked_)
      q.headers.add("Transfer-Encoding", "chunked");
    else
      q.headers.add("Content-Length", std::to_string(*content_length));
    if (local_->server->streams(q)) {
      auto upload = local_->server->begin_upload(q);
      if (upload.response)
        local_->response = std::move(upload.response);  // refused before the body
      else
        local_->sink = std::move(upload.sink);
      if (local_->sink)
        local_->lane.emplace(local_->server->serial(),
                             [sink = local_->sink.get()](const std::string& b) { sink->write(b); });
    }
    return;
  }
  connect();
  std::string out;
  out.reserve(256);
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(key_);
  out += "\r\n";
  for (auto& [k, v] : headers.all()) {
    if (http::iequals(k, "Content-Length") || http::iequals(k, "Transfer-Encoding") ||
        http::iequals(k, "Host") || http::iequals(k, "Connection"))
      continue;
    out.append(k).append(": ").append(v).append("\r\n");
  }
  if (chunked_)
    out += "Transfer-Encoding: chunked\r\n";
  else
    out.append("Content-Length: ").append(std::to_string(*content_length)).append("\r\n");
  out += "\r\n";
  send_all(out);
}

void BackendRequest::write(std::string_view chunk) {
  if (chunk.empty()) return;
  if (local_ && local_->sink) {  // the sink's queue keeps its own copy
    if (!answered_locally()) local_->lane->push(std::make_shared<const std::string>(chunk));
    return;
  }
  if (local_) {
    if (!answered_locally()) local_->request.body.append(chunk);
    return;
  }
  if (!chunked_) {
    send_all(chunk);
    return;
  }
  char size[32];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  send_all(std::string_view(size, static_cast<size_t>(n)));
  send_all(chunk);
  send_all("\r\n");
}

// An in-process exchange already answered (refused before the body, or finishing): the rest of
// the body is dropped.
bool BackendRequest::answered_locally() const {
  return local_->response || local_->finishing.valid();
}

bool BackendRequest::takes_md5() {
  return local_ && local_->sink && !local_->response && local_->sink->take_sender_md5();
}

void BackendRequest::write(const std::shared_ptr<const std::string>& chunk) {
  if (!local_ || !local_->sink) return write(std::string_view(*chunk));  // copied or sent
  if (!chunk->empty() && !answered_locally()) local_->lane->push(chunk);
}

LocalServer::Post BackendRequest::local_queue() const {
  return local_ ? local_->server->serial() : LocalServer::Post{};
}

void BackendRequest::finish(std::string_view md5) {
  if (local_) {
    if (local_->response || !local_->sink || local_->finishing.valid()) return;
    auto done = std::make_shared<std::promise<http::Response>>();
    local_->finishing = done->get_future();
    local_->lane->post()([local = local_, done, md5 = std::string(md5)] {
      if (auto error = local->lane->failure()) {
        done->set_value(local->fail(error));
        return;
      }
      try {
        if (!md5.empty()) local->sink->sender_md5(md5);
        done->set_value(local->sink->finish());
      } catch (...) {
        done->set_value(local->fail(std::current_exception()));
      }
    });
    return;
  }
  if (chunked_) send_all("0\r\n\r\n");
}

void BackendRequest::run_local() {
  auto& l = *local_;
  if (l.response) return;
  if (l.sink) {
    finish();
    l.response = l.finishing.get();
  } else {
    l.response = l.server->handle(l.request);
  }
  // The framing the listener would have given it.
  auto& r = *l.response;
  bool no_body = r.status == 204 || r.status == 304 || r.status < 200;
  if (head_)
    r.headers.set("Content-Length",
                  std::to_string(r.content_length_override.value_or(r.body.size())));
  else if (!r.stream && !no_body)
    r.headers.set("Content-Length", std::to_string(r.body.size()));
  if (head_ || no_body) {
    r.body.clear();
    r.stream.reset();
  }
}

std::optional<http::BodySource::FileSpan> BackendRequest::file_span() {
  if (!local_) return std::nullopt;
  run_local();
  auto& r = *local_->response;
  if (!r.stream || local_->streamed) return std::nullopt;
  return r.stream->file_span();
}

bool BackendRequest::fill() {
  char buf[65536];
  for (;;) {
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      throw BackendError(key_ + ": recv: " + std::strerror(errno));
    wait(POLLIN);
  }
}

int BackendRequest::status() {
  if (local_) {
    run_local();
    return local_->response->status;
  }
  if (!parser_) {
    parser_ = std::make_unique<Parser>();
    parser_->eager(true);
    parser_->body_limit(boost::none);
    if (head_) parser_->skip(true);
  }
  while (!parser_->is_header_done()) {
    beast::error_code ec;
    auto used = in_.empty() ? 0 : parser_->put(boost::asio::buffer(in_.data(), in_.size()), ec);
    in_.erase(0, used);
    if (ec && ec != beast::http::error::need_more)
      throw BackendError(key_ + ": bad response: " + ec.message());
    if (parser_->is_header_done()) break;
    if (!fill()) throw BackendError(key_ + ": connection closed before the response");
  }
  return parser_->status;
}

const http::Headers& BackendRequest::headers() {
  status();
  if (local_) return local_->response->headers;
  return parser_->headers;
}

std::string BackendRequest::read(size_t max) {
  status();
  if (local_) {
    auto& r = *local_->response;
    if (r.stream) {
      local_->streamed = true;
      return r.stream->next(max);
    }
    auto piece = r.body.substr(std::min(local_->offset, r.body.size()), max);
    local_->offset += piece.size();
    return piece;
  }
  while (parser_->body.empty() && !parser_->is_done()) {
    beast::error_code ec;
    if (!in_.empty()) {
      auto used = parser_->put(boost::asio::buffer(in_.data(), in_.size()), ec);
      in_.erase(0, used);
      if (ec && ec != beast::http::error::need_more)
        throw BackendError(key_ + ": bad response: " + ec.message());
      if (!parser_->body.empty() || parser_->is_done()) break;
      if (used > 0 && !ec) continue;
    }
    if (!fill()) {
      parser_->put_eof(ec);
      if (ec) throw BackendError(key_ + ": connection closed in the body");
    }
  }
  std::string out;
  if (parser_->body.size() <= max) {
    out.swap(parser_->body);
  } else {
    out = parser_->body.substr(0, max);
    parser_->body.erase(0, max);
  }
  return out;
}

std::string BackendRequest::read_all(size_t limit) {
  if (local_) {
    run_local();
    auto& r = *local_->response;
    if (!r.stream && local_->offset == 0 && r.body.size() <= limit) {
      local_->offset = r.body.size();
      return std::move(r.body);  // the whole body, not copied piece by piece
    }
  }
  std::string all;
  for (;;) {
    auto piece = read();
    if (piece.empty()) break;
    all += piece;
    if (all.size() > limit) throw BackendError(key_ + ": response too large");
  }
  return all;
}

int BackendRequest::call(std::string_view method, std::string_view target,
                         const http::Headers& headers, std::string_view body) {
  start(method, target, headers, body.size());
  if (!body.empty()) write(body);
  return status();
}

std::string encode_path(std::string_view s) { return http::percent_encode(s, "/"); }

}  // namespace nubo::object
