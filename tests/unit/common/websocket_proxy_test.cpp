// The console websocket proxy: a token leads to a unix socket whose bytes come back as binary
// messages; unknown tokens, foreign origins and plain HTTP are refused; an absent console is a
// 502.
#include "common/http/websocket_proxy.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <filesystem>
#include <thread>

#include "common/ids.hpp"

using namespace nubo;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace fs = std::filesystem;

namespace {

// A console on a unix socket: answers each read with the same bytes upper-cased.
class ShoutingConsole {
 public:
  explicit ShoutingConsole(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    thread_ = std::thread([this] {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      char buf[256];
      for (ssize_t n; (n = ::read(client, buf, sizeof buf)) > 0;) {
        for (ssize_t i = 0; i < n; ++i) buf[i] = static_cast<char>(std::toupper(buf[i]));
        if (::write(client, buf, static_cast<size_t>(n)) != n) break;
      }
      ::close(client);
    });
  }
  ~ShoutingConsole() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    fs::remove(path_);
  }

 private:
  fs::path path_;
  int fd_;
  std::thread thread_;
};

struct Client {
  asio::io_context io;
  websocket::stream<asio::ip::tcp::socket> ws{io};
  // Connects and upgrades; returns the HTTP status of a refused upgrade (101 when accepted).
  int open(std::uint16_t port, const std::string& target, const std::string& origin = {}) {
    asio::ip::tcp::resolver resolver(io);
    asio::connect(ws.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      req.set(beast::http::field::sec_websocket_protocol, "binary");
      if (!origin.empty()) req.set(beast::http::field::origin, origin);
    }));
    websocket::response_type res;
    beast::error_code error;
    ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, error);
    return static_cast<int>(res.result_int());
  }
};

}  // namespace

TEST(WebsocketProxy, RelaysATokensConsoleAndRefusesEverythingElse) {
  auto socket = fs::temp_directory_path() / ("nubo-ws-" + uuid4_hex() + ".sock");
  ShoutingConsole console(socket);
  http::WebsocketProxy proxy({"test proxy", "127.0.0.1", 0, {"allowed.example"}},
                             [&](const std::string& token) -> std::optional<http::ProxyTarget> {
                               if (token == "good") return http::ProxyTarget{socket, "", 0, "vm"};
                               if (token == "gone")
                                 return http::ProxyTarget{socket.string() + ".none", "", 0, "vm"};
                               return std::nullopt;
                             });
  proxy.start();

  Client c;
  ASSERT_EQ(
      c.open(proxy.port(), "/?token=good", "http://127.0.0.1:" + std::to_string(proxy.port())),
      101);
  c.ws.binary(true);
  c.ws.write(asio::buffer(std::string("echo hi\n")));
  std::string got;
  while (got.size() < 8) {
    beast::flat_buffer b;
    c.ws.read(b);
    EXPECT_TRUE(c.ws.got_binary());
    got += beast::buffers_to_string(b.data());
  }
  EXPECT_EQ(got, "ECHO HI\n");
  c.ws.close(websocket::close_code::normal);

  EXPECT_EQ(Client().open(proxy.port(), "/?token=bad"), 403);
  EXPECT_EQ(Client().open(proxy.port(), "/"), 403);
  EXPECT_EQ(Client().open(proxy.port(), "/?token=good", "https://evil.example"), 403);
  EXPECT_EQ(Client().open(proxy.port(), "/?token=gone"), 502);
  // A named origin is allowed (the console is busy with its first client, but accepts).
  Client allowed;
  EXPECT_EQ(allowed.open(proxy.port(), "/?token=good", "https://allowed.example:443"), 101);

  // Plain HTTP is told what this is.
  asio::io_context io;
  asio::ip::tcp::socket plain(io);
  plain.connect({asio::ip::make_address("127.0.0.1"), proxy.port()});
  beast::http::request<beast::http::empty_body> req{beast::http::verb::get, "/", 11};
  beast::http::write(plain, req);
  beast::flat_buffer b;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(plain, b, res);
  EXPECT_EQ(res.result_int(), 400);
  proxy.stop();
}
