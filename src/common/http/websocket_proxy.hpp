// A websocket proxy for consoles (what Nova's nova-serialproxy and nova-novncproxy do): each
// client names a token in its URL (?token=...); the token resolves to a stream endpoint (a unix
// socket, or host:port) whose bytes are relayed both ways as binary websocket messages. Tokens
// are resolved through a callback, so this knows no service.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nubo::http {

struct WebsocketProxyOptions {
  std::string name = "console proxy";  // for the log
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
  // Origins (host names) a browser page may connect from besides the proxy's own host name.
  std::vector<std::string> allowed_origins;
};

struct ProxyTarget {
  std::string path;  // a unix socket; else host:port
  std::string host;
  std::uint16_t port = 0;
  std::string label;  // for the log (the server's id)
};

// Returns the target of a valid token, nullopt when it is unknown or expired. Runs on the
// proxy's thread: it must be quick.
using ResolveToken = std::function<std::optional<ProxyTarget>(const std::string& token)>;

class WebsocketProxy {
 public:
  // Binds at once (so that a port in use fails here); serves after start().
  WebsocketProxy(WebsocketProxyOptions options, ResolveToken resolve);
  ~WebsocketProxy();
  WebsocketProxy(const WebsocketProxy&) = delete;
  WebsocketProxy& operator=(const WebsocketProxy&) = delete;
  std::uint16_t port() const;
  void start();
  // Closes the listener and every relayed connection, then joins the proxy's thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nubo::http
