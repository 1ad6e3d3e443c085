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
#include <cstring>

namespace nubo::object {

namespace beast = boost::beast;

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
  connect();
  head_ = method == "HEAD";
  chunked_ = !content_length;
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

void BackendRequest::finish() {
  if (chunked_) send_all("0\r\n\r\n");
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
  return parser_->headers;
}

std::string BackendRequest::read(size_t max) {
  status();
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
