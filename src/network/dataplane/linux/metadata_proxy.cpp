#include "network/dataplane/linux/metadata_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace nubo::network::dataplane::kernel {

namespace {

constexpr int kMaxConnections = 64;  // at once, over all namespaces: a guest cannot hold more

// A listening TCP socket made inside a named network namespace. setns() changes only the calling
// thread's namespace, so a short-lived thread enters it; the socket stays in the namespace it was
// made in.
int listen_in(const std::string& netns, const std::string& address, int port) {
  int result = -1;
  std::string error;
  std::thread([&] {
    int ns = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
      error = "open namespace: " + std::string(std::strerror(errno));
      return;
    }
    if (::setns(ns, CLONE_NEWNET) != 0) {
      error = "setns: " + std::string(std::strerror(errno));
      ::close(ns);
      return;
    }
    ::close(ns);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    // The address may be added to the namespace's device after the socket is made.
    ::setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof on);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 64) != 0) {
      error = "bind " + address + ":" + std::to_string(port) + ": " + std::strerror(errno);
      ::close(fd);
      return;
    }
    result = fd;
  }).join();
  if (result < 0) throw std::runtime_error("metadata proxy in " + netns + ": " + error);
  return result;
}

void answer(int fd, int status, const char* reason) {
  auto text =
      std::string("HTTP/1.1 ") + std::to_string(status) + " " + reason +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(std::strlen(reason) + 1) +
      "\r\nConnection: close\r\n\r\n" + reason + "\n";
  [[maybe_unused]] auto n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
}

}  // namespace

struct MetadataProxy::Listener {
  std::string netns;
  int fd = -1;
  int wake[2] = {-1, -1};
  std::thread thread;

  ~Listener() {
    if (wake[1] >= 0) [[maybe_unused]]
      auto n = ::write(wake[1], "x", 1);
    if (thread.joinable()) thread.join();
    for (int f : {fd, wake[0], wake[1]})
      if (f >= 0) ::close(f);
  }
};

MetadataProxy::MetadataProxy(MetadataForwarder forward, Lookup lookup)
    : forward_(std::move(forward)), lookup_(std::move(lookup)) {}

MetadataProxy::~MetadataProxy() { stop(); }

void MetadataProxy::ensure(const std::string& netns, const std::string& address, int port) {
  std::lock_guard lock(mutex_);
  if (listeners_.count(netns)) return;
  auto l = std::make_unique<Listener>();
  l->netns = netns;
  l->fd = listen_in(netns, address, port);
  if (::pipe2(l->wake, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  auto* raw = l.get();
  l->thread = std::thread([this, raw] {
    for (;;) {
      pollfd fds[2] = {{raw->fd, POLLIN, 0}, {raw->wake[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (!(fds[0].revents & POLLIN)) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int conn = ::accept4(raw->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (conn < 0) continue;
      if (active_->fetch_add(1) >= kMaxConnections) {
        active_->fetch_sub(1);
        answer(conn, 503, "Service Unavailable");
        ::close(conn);
        continue;
      }
      // A guest that sends nothing cannot hold the thread: reads time out.
      timeval tv{10, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      char text[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
      std::thread([forward = forward_, lookup = lookup_, active = active_, netns = raw->netns,
                   source = std::string(text), conn] {
        try {
          if (auto guest = lookup(netns, source))
            forward(conn, guest->instance_id, guest->project_id);
          else
            answer(conn, 404, "Not Found");
        } catch (const std::exception& e) {
          spdlog::warn("metadata proxy {}: request from {}: {}", netns, source, e.what());
        }
        ::close(conn);
        active->fetch_sub(1);
      }).detach();
    }
  });
  spdlog::info("metadata proxy listening on {}:{} in {}", address, port, netns);
  listeners_.emplace(netns, std::move(l));
}

void MetadataProxy::retain(const std::set<std::string>& keep) {
  std::lock_guard lock(mutex_);
  for (auto it = listeners_.begin(); it != listeners_.end();)
    it = keep.count(it->first) ? std::next(it) : listeners_.erase(it);
}

void MetadataProxy::stop() {
  {
    std::lock_guard lock(mutex_);
    listeners_.clear();
  }
  // Requests under way use the lookup, which reads the dataplane's state: let them finish.
  for (int i = 0; i < 250 && active_->load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace nubo::network::dataplane::kernel
