#include "common/http/websocket_proxy.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <thread>

namespace nubo::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using WebSocket = websocket::stream<beast::tcp_stream>;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// The host name of "scheme://host:port" or "host:port" (brackets kept off IPv6 literals).
std::string host_name(std::string_view v) {
  if (auto scheme = v.find("://"); scheme != std::string_view::npos) v.remove_prefix(scheme + 3);
  v = v.substr(0, v.find('/'));
  if (!v.empty() && v.front() == '[') return std::string(v.substr(1, v.find(']') - 1));
  return std::string(v.substr(0, v.rfind(':') == std::string_view::npos ? v.size() : v.rfind(':')));
}

std::string token_of(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return {};
  for (auto param : url->params())
    if (param.key == "token") return std::string(param.value);
  return {};
}

// Each direction ends quietly when its side closes or fails; the other is then cancelled.
template <class Socket>
awaitable<void> client_to_target(WebSocket& ws, Socket& target, std::size_t& bytes) {
  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    auto [read_error, n] = co_await ws.async_read(buffer, tuple_awaitable);
    if (read_error) co_return;
    auto [write_error, written] =
        co_await asio::async_write(target, buffer.data(), tuple_awaitable);
    if (write_error) co_return;
    bytes += written;
  }
}

template <class Socket>
awaitable<void> target_to_client(WebSocket& ws, Socket& target, std::size_t& bytes) {
  std::array<char, 16384> data;
  for (;;) {
    auto [read_error, n] = co_await target.async_read_some(asio::buffer(data), tuple_awaitable);
    if (read_error) co_return;
    auto [write_error, written] =
        co_await ws.async_write(asio::buffer(data.data(), n), tuple_awaitable);
    if (write_error) co_return;
    bytes += written;
  }
}

}  // namespace

struct WebsocketProxy::Impl {
  WebsocketProxyOptions options;
  ResolveToken resolve;
  asio::io_context io{1};
  asio::thread_pool pool{2};
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::uint16_t port = 0;

  awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor.async_accept(tuple_awaitable);
      if (error) {
        if (error == asio::error::operation_aborted) co_return;
        // Out of descriptors, say: wait a little rather than spin.
        spdlog::warn("{}: accept failed: {}", options.name, error.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(200));
        co_await pause.async_wait(tuple_awaitable);
        continue;
      }
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  // A member coroutine rather than a capturing lambda: GCC 12 frees a coroutine lambda's
  // captures twice when co_spawn runs it.
  awaitable<std::optional<ProxyTarget>> resolve_token(std::string token) {
    try {
      co_return resolve(token);
    } catch (const std::exception& e) {
      spdlog::error("{}: resolving a token failed: {}", options.name, e.what());
      co_return std::nullopt;
    }
  }

  awaitable<void> refuse(beast::tcp_stream& stream, const bhttp::request<bhttp::string_body>& req,
                         bhttp::status status, const std::string& why) {
    bhttp::response<bhttp::string_body> res{status, req.version()};
    res.set(bhttp::field::content_type, "text/plain; charset=UTF-8");
    res.keep_alive(false);
    res.body() = why + "\n";
    res.prepare_payload();
    co_await bhttp::async_write(stream, res, tuple_awaitable);
    // The path only: the query holds the token, which may still be valid.
    auto target = std::string_view(req.target());
    spdlog::info("{}: {} refused: {}", options.name, target.substr(0, target.find('?')), why);
  }

  awaitable<void> session(tcp::socket socket) {
    std::string peer;
    try {
      peer = socket.remote_endpoint().address().to_string();
    } catch (const std::exception&) {
    }
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(30));
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(0);
    auto [read_error, n] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
    if (read_error) co_return;
    auto req = parser.release();
    if (!websocket::is_upgrade(req)) {
      co_await refuse(stream, req, bhttp::status::bad_request,
                      "This is a websocket console proxy: connect with a websocket client.");
      co_return;
    }
    // A browser page from elsewhere may not open consoles with the user's URL (Nova's check).
    if (auto origin = req[bhttp::field::origin]; !origin.empty() && origin != "null") {
      auto from = host_name(origin);
      bool allowed = from == host_name(req[bhttp::field::host]);
      for (auto& o : options.allowed_origins) allowed = allowed || o == from;
      if (!allowed) {
        co_await refuse(stream, req, bhttp::status::forbidden,
                        "Origin " + std::string(origin) + " is not allowed.");
        co_return;
      }
    }
    auto token = token_of(req.target());
    std::optional<ProxyTarget> target;
    if (!token.empty()) {
      // A database read: on the pool, so that a slow one holds no other console.
      target = co_await asio::co_spawn(pool.get_executor(), resolve_token(token), use_awaitable);
    }
    if (!target) {
      co_await refuse(stream, req, bhttp::status::forbidden,
                      "The token has expired or is invalid.");
      co_return;
    }
    if (!target->path.empty()) {
      asio::local::stream_protocol::socket to(io);
      auto [error] = co_await to.async_connect(asio::local::stream_protocol::endpoint(target->path),
                                               tuple_awaitable);
      if (error) {
        spdlog::warn("{}: console of {} at {} does not answer: {}", options.name, target->label,
                     target->path, error.message());
        co_await refuse(stream, req, bhttp::status::bad_gateway,
                        "The console does not answer: " + error.message());
        co_return;
      }
      co_await relay(std::move(stream), req, to, *target, peer);
    } else {
      tcp::socket to(io);
      tcp::resolver resolver(io);
      auto [resolve_error, endpoints] = co_await resolver.async_resolve(
          target->host, std::to_string(target->port), tuple_awaitable);
      boost::system::error_code error = resolve_error;
      if (!error)
        std::tie(error, std::ignore) = co_await asio::async_connect(to, endpoints, tuple_awaitable);
      if (error) {
        spdlog::warn("{}: console of {} at {}:{} does not answer: {}", options.name, target->label,
                     target->host, target->port, error.message());
        co_await refuse(stream, req, bhttp::status::bad_gateway,
                        "The console does not answer: " + error.message());
        co_return;
      }
      co_await relay(std::move(stream), req, to, *target, peer);
    }
  }

  template <class Socket>
  awaitable<void> relay(beast::tcp_stream stream, const bhttp::request<bhttp::string_body>& req,
                        Socket& target, const ProxyTarget& where, const std::string& peer) {
    stream.expires_never();
    WebSocket ws(std::move(stream));
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    // websockify's clients (noVNC, nova's) ask for "binary"; answer with it when asked.
    bool binary = std::string_view(req[bhttp::field::sec_websocket_protocol]).find("binary") !=
                  std::string_view::npos;
    ws.set_option(websocket::stream_base::decorator([binary](websocket::response_type& res) {
      if (binary) res.set(bhttp::field::sec_websocket_protocol, "binary");
    }));
    auto [error] = co_await ws.async_accept(req, tuple_awaitable);
    if (error) co_return;
    ws.binary(true);
    auto started = std::chrono::steady_clock::now();
    spdlog::info("{}: {} connected to the console of {}", options.name, peer, where.label);
    std::size_t in = 0, out = 0;
    co_await (client_to_target(ws, target, in) || target_to_client(ws, target, out));
    boost::system::error_code ignored;
    target.close(ignored);
    if (ws.is_open()) co_await ws.async_close(websocket::close_code::normal, tuple_awaitable);
    spdlog::info("{}: {} left the console of {} after {:.1f} s ({} bytes in, {} out)", options.name,
                 peer, where.label,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                 in, out);
  }
};

WebsocketProxy::WebsocketProxy(WebsocketProxyOptions options, ResolveToken resolve)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->resolve = std::move(resolve);
  tcp::endpoint endpoint(asio::ip::make_address(impl_->options.host), impl_->options.port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
}

WebsocketProxy::~WebsocketProxy() { stop(); }

std::uint16_t WebsocketProxy::port() const { return impl_->port; }

void WebsocketProxy::start() {
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void WebsocketProxy::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  // Relayed connections last as long as their users: they end with the process.
  impl_->io.stop();
  impl_->thread.join();
  impl_->pool.join();
}

}  // namespace nubo::http
