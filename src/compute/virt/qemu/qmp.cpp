#include "compute/virt/qemu/qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace nubo::compute::qmp {

namespace {

class Connection {
 public:
  Connection(const std::filesystem::path& socket, std::chrono::milliseconds timeout)
      : timeout_(timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    auto path = socket.string();
    if (path.size() >= sizeof addr.sun_path) throw Error("QMP socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw Error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      auto err = errno;
      ::close(fd_);
      throw Error("cannot reach QEMU at " + path + ": " + std::strerror(err));
    }
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(const json::object& message) {
    auto text = json::serialize(message) + "\n";
    for (size_t done = 0; done < text.size();) {
      auto n = ::send(fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) throw Error(std::string("QMP send: ") + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }
  // The next message that is not an event.
  json::object answer() {
    for (;;) {
      auto message = json::parse(line()).as_object();
      if (!message.contains("event")) return message;
    }
  }

 private:
  std::string line() {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        auto out = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return out;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw Error("QEMU did not answer on its monitor in time");
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) throw Error("QEMU closed its monitor");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

json::value result(const json::object& answer) {
  if (auto* e = answer.if_contains("error")) {
    auto& err = e->as_object();
    auto* desc = err.if_contains("desc");
    throw Error("QEMU: " + (desc && desc->is_string() ? std::string(desc->as_string())
                                                      : json::serialize(err)));
  }
  auto* r = answer.if_contains("return");
  return r ? *r : json::value(nullptr);
}

}  // namespace

json::value execute(const std::filesystem::path& socket, const std::string& command,
                    const json::object& arguments, std::chrono::milliseconds timeout) {
  Connection c(socket, timeout);
  auto greeting = c.answer();
  if (!greeting.contains("QMP")) throw Error("not a QMP monitor: " + socket.string());
  c.send(json::object{{"execute", "qmp_capabilities"}});
  result(c.answer());
  json::object message{{"execute", command}};
  if (!arguments.empty()) message["arguments"] = arguments;
  c.send(message);
  return result(c.answer());
}

}  // namespace nubo::compute::qmp
