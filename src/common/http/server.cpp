// Beast/Asio lives only in this file: the HTTP/1.1 server behind Runtime.
#include "common/runtime.hpp"

#include "common/error.hpp"

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/sendfile.h>

#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

namespace nubo {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

// What shutdown needs to know about one connection.
struct Connection {
  asio::any_io_executor executor;
  tcp::socket* socket = nullptr;
  bool busy = false;
};

struct Listener {
  ServerOptions options;
  HttpHandler handler;
  FastHttpHandler fast;
  UploadHandlers uploads;
  tcp::acceptor acceptor;
  std::unique_ptr<asio::ssl::context> tls;
  Listener(asio::io_context& ioc, ServerOptions o, HttpHandler h)
      : options(std::move(o)), handler(std::move(h)), acceptor(ioc) {}
};

http::Response default_error(int status, const std::string& message) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", "text/plain");
  r.body = message + "\n";
  return r;
}

}  // namespace

struct Runtime::Impl {
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::thread_pool pool;
  unsigned io_threads;
  std::vector<std::thread> threads;
  std::list<std::unique_ptr<Listener>> listeners;
  std::list<std::unique_ptr<asio::steady_timer>> timers;
  std::mutex mu;
  std::condition_variable cv;
  std::list<Connection> connections;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;

  // No worker pool: handlers block the I/O thread they run on, and there are many of those.
  // Each such thread runs its own io_context (a shard) and keeps each connection it is given
  // from accept to close: one io_context run by many threads moved every request's steps
  // between threads (a 4 KiB HEAD cost 280 µs of CPU, most of it in futex wake-ups).
  bool inline_work = false;
  struct Shard {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  };
  std::vector<std::unique_ptr<Shard>> shards;
  std::atomic<unsigned> next_shard{0};

  Impl(unsigned io, unsigned workers)
      : pool(std::max(1u, workers)), io_threads(io), inline_work(workers == 0) {
    if (inline_work)
      for (unsigned i = 0; i < io; ++i) shards.push_back(std::make_unique<Shard>());
  }
  asio::any_io_executor connection_executor() {
    if (!inline_work) return asio::make_strand(ioc);
    return shards[next_shard++ % shards.size()]->ioc.get_executor();
  }

  // Runs fn where blocking work runs: on the pool, awaited, or right here in inline mode.
  template <class F>
  awaitable<void> blocking(F&& fn) {
    if (inline_work) {
      fn();
      co_return;
    }
    co_await asio::co_spawn(
        pool.get_executor(),
        [&]() -> awaitable<void> {
          fn();
          co_return;
        },
        use_awaitable);
  }

  std::list<Connection>::iterator register_connection(asio::any_io_executor ex, tcp::socket* s) {
    std::lock_guard lock(mu);
    connections.push_back(Connection{std::move(ex), s, false});
    return std::prev(connections.end());
  }
  void set_busy(std::list<Connection>::iterator it, bool busy) {
    std::lock_guard lock(mu);
    it->busy = busy;
  }
  void unregister(std::list<Connection>::iterator it) {
    std::lock_guard lock(mu);
    connections.erase(it);
    cv.notify_all();
  }

  awaitable<http::Response> run_handler(Listener& l, http::Request& req) {
    http::Response out;
    co_await blocking([&] {
      try {
        out = l.handler(req);
      } catch (const std::exception& e) {
        spdlog::error("{}: unhandled exception for {} {}: {}", l.options.name, req.method, req.target,
                      e.what());
        out = (l.options.render_error ? l.options.render_error
                                      : std::function<http::Response(int, const std::string&)>(default_error))(
            500, "An unexpected error prevented the server from fulfilling your request.");
      }
    });
    co_return out;
  }

  // Runs fn on the worker pool; an exception becomes the error response to send.
  awaitable<std::optional<http::Response>> pool_call(Listener& l, std::function<void()> fn) {
    std::optional<http::Response> out;
    co_await blocking([&] {
      auto render = l.options.render_error ? l.options.render_error
                                           : std::function<http::Response(int, const std::string&)>(default_error);
      try {
        fn();
      } catch (...) {
        out = render_exception(std::current_exception(), render, l.options.name);
      }
    });
    co_return out;
  }

  template <class Stream>
  static tcp::socket& lowest_socket(Stream& s) {
    return beast::get_lowest_layer(s).socket();
  }

  template <class Stream>
  awaitable<void> write_response(Stream& stream, const http::Response& r, unsigned version, bool keep_alive,
                                 bool head) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    for (auto& [k, v] : r.headers.all()) res.insert(k, v);
    res.keep_alive(keep_alive);
    if (head) {
      res.content_length(r.content_length_override ? *r.content_length_override : r.body.size());
      bhttp::response_serializer<bhttp::string_body> sr{res};
      co_await bhttp::async_write_header(stream, sr, tuple_awaitable);
      co_return;
    }
    bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (r.stream && !no_body) {
      co_await write_streamed(stream, r, version, keep_alive);
      co_return;
    }
    if (!no_body) {
      res.body() = r.body;
      res.prepare_payload();
    }
    co_await bhttp::async_write(stream, res, tuple_awaitable);
  }

  // Sends a BodySource chunk by chunk: Content-Length when the handler set it, chunked otherwise.
  template <class Stream>
  awaitable<void> write_streamed(Stream& stream, const http::Response& r, unsigned version, bool keep_alive) {
    bhttp::response<bhttp::buffer_body> res{static_cast<bhttp::status>(r.status), version};
    for (auto& [k, v] : r.headers.all()) res.insert(k, v);
    res.keep_alive(keep_alive);
    if (!r.headers.get("Content-Length")) res.chunked(true);
    res.body().data = nullptr;
    res.body().more = true;
    bhttp::response_serializer<bhttp::buffer_body> sr{res};
    auto [hec, hn] = co_await bhttp::async_write_header(stream, sr, tuple_awaitable);
    if (hec) co_return;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      if (auto span = r.stream->file_span(); span && r.headers.get("Content-Length")) {
        co_await send_file(stream.socket(), *span);
        co_return;
      }
    }
    std::string chunk;
    for (;;) {
      bool failed = false;
      co_await blocking([&] {
        try {
          chunk = r.stream->next(1 << 20);
        } catch (const std::exception& e) {
          spdlog::error("download stream failed: {}", e.what());
          failed = true;
        }
      });
      if (failed) {
        // The status is already sent: cut the connection so the client sees a short body.
        boost::system::error_code ignored;
        lowest_socket(stream).close(ignored);
        co_return;
      }
      if (chunk.empty()) {
        res.body().data = nullptr;
        res.body().more = false;
      } else {
        res.body().data = chunk.data();
        res.body().size = chunk.size();
        res.body().more = true;
      }
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(300));
      auto [ec, n] = co_await bhttp::async_write(stream, sr, tuple_awaitable);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec || chunk.empty()) co_return;
    }
  }

  // Sends file bytes with sendfile(2): the kernel moves them from the page cache to the socket
  // without the two copies through user space that next() costs (a download was CPU-bound on
  // them). Each call runs on the pool, as a read may wait for the disk; the I/O thread only waits
  // for the socket to drain. A short file or a stalled client cuts the connection.
  awaitable<void> send_file(tcp::socket& socket, http::BodySource::FileSpan span) {
    using namespace asio::experimental::awaitable_operators;
    boost::system::error_code ec;
    socket.native_non_blocking(true, ec);
    off_t offset = static_cast<off_t>(span.offset);
    std::uint64_t left = span.length;
    asio::steady_timer timer(socket.get_executor());
    // Asks the kernel to read ahead in large steps: its default window (128 KiB) leaves a
    // virtual disk mostly idle between small reads.
    constexpr std::uint64_t kAhead = 32u << 20;
    std::uint64_t end = span.offset + span.length, advised = span.offset;
    while (left > 0 && !ec) {
      ssize_t n = -1;
      int err = 0;
      co_await blocking([&] {
        auto at = static_cast<std::uint64_t>(offset);
        if (advised < end && advised < at + kAhead) {
          auto len = std::min(end - advised, kAhead);
          ::posix_fadvise(span.fd, static_cast<off_t>(advised), static_cast<off_t>(len),
                          POSIX_FADV_WILLNEED);
          advised += len;
        }
        n = ::sendfile(socket.native_handle(), span.fd, &offset,
                       static_cast<size_t>(std::min<std::uint64_t>(left, 8u << 20)));
        err = errno;
      });
      if (n > 0) {
        left -= static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
        timer.expires_after(std::chrono::seconds(300));
        auto done = co_await (socket.async_wait(tcp::socket::wait_write, tuple_awaitable) ||
                              timer.async_wait(tuple_awaitable));
        if (done.index() == 0) continue;
      } else if (n == 0) {
        spdlog::error("download stream failed: the file ended {} bytes early", left);
      }
      break;
    }
    if (left > 0) socket.close(ec);
  }

  // Feeds a request body to an upload sink as it arrives; returns the response to send.
  template <class Stream, class Parser>
  awaitable<http::Response> read_streamed(Listener& l, Stream& stream, beast::flat_buffer& buffer, Parser& header_parser,
                                          http::BodySink& sink) {
    bhttp::request_parser<bhttp::buffer_body> parser{std::move(header_parser)};
    parser.body_limit(boost::none);
    // Beast sizes each socket read by the buffer's free capacity (512 bytes at first): make room
    // so a large body arrives in 64 KiB reads. A small body gets small buffers: 1 MiB ones are
    // mmapped, faulted in and unmapped for each request (a 4 KiB PUT spent more time there than
    // anywhere else).
    size_t size = 1 << 20;
    if (auto length = parser.content_length(); length && *length < size)
      size = std::max<size_t>(static_cast<size_t>(*length), 4096);
    buffer.reserve(size);
    std::unique_ptr<char[]> buf(new char[size]);  // not zeroed: the parser writes it
    while (!parser.is_done()) {
      parser.get().body().data = buf.get();
      parser.get().body().size = size;
      beast::get_lowest_layer(stream).expires_after(l.options.read_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = size - parser.get().body().size;
      if (!ec && got > 0) {
        auto error = co_await pool_call(l, [&] { sink.write(std::string_view(buf.get(), got)); });
        if (error) {
          co_await pool_call(l, [&] { sink.abort(); });
          co_return std::move(*error);
        }
      }
      if (ec) {
        co_await pool_call(l, [&] { sink.abort(); });
        auto render = l.options.render_error ? l.options.render_error
                                             : std::function<http::Response(int, const std::string&)>(default_error);
        co_return render(400, "The request body ended early or was malformed.");
      }
    }
    http::Response out;
    auto error = co_await pool_call(l, [&] { out = sink.finish(); });
    if (error) {
      co_await pool_call(l, [&] { sink.abort(); });
      co_return std::move(*error);
    }
    co_return out;
  }

  template <class Stream>
  awaitable<void> session(Listener& l, Stream& stream) {
    auto& opts = l.options;
    std::function<http::Response(int, const std::string&)> render = opts.render_error ? opts.render_error : default_error;
    auto conn = register_connection(stream.get_executor(), &lowest_socket(stream));
    beast::flat_buffer buffer;
    std::string remote;
    {
      boost::system::error_code ec;
      auto ep = lowest_socket(stream).remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string();
    }
    for (;;) {
      if (stopping) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<uint32_t>(opts.header_limit));
      // The body limit is decided once the head is known: streamed uploads have none here.
      parser.body_limit(boost::none);
      beast::get_lowest_layer(stream).expires_after(opts.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
      if (ec) {
        if (ec == bhttp::error::header_limit) {
          co_await write_response(stream, render(431, "Request header fields too large."), 11, false, false);
        } else if (ec == bhttp::error::body_limit) {
          co_await write_response(stream, render(413, "Request is too large."), 11, false, false);
        } else if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
                   ec != beast::error::timeout && ec != asio::error::eof &&
                   ec != asio::error::connection_reset && n > 0) {
          co_await write_response(stream, render(400, "Malformed HTTP request."), 11, false, false);
        }
        break;
      }
      set_busy(conn, true);
      auto& hdr = parser.get();
      if (l.uploads.matches) {
        http::Request head;
        head.method = std::string(hdr.method_string());
        head.target = std::string(hdr.target());
        http::parse_target(head);
        for (auto& f : hdr) head.headers.add(std::string(f.name_string()), std::string(f.value()));
        head.remote_address = remote;
        if (l.uploads.matches(head)) {
          // The head parser moves into the streaming parser: keep what we need from it now.
          unsigned version = hdr.version();
          bool keep_alive = hdr.keep_alive();
          bool expect_continue = bhttp::token_list{hdr[bhttp::field::expect]}.exists("100-continue");
          http::UploadStart start;
          auto error = co_await pool_call(l, [&] { start = l.uploads.start(head); });
          http::Response resp;
          bool close = true;
          if (error) {
            resp = std::move(*error);
          } else if (start.response) {
            resp = std::move(*start.response);  // refused before reading the body
          } else {
            if (expect_continue) {
              bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
              co_await bhttp::async_write(stream, cont, tuple_awaitable);
            }
            resp = co_await read_streamed(l, stream, buffer, parser, *start.sink);
            close = !keep_alive || stopping || resp.status >= 400;
          }
          co_await write_response(stream, resp, version, !close, false);
          set_busy(conn, false);
          if (close) break;
          continue;
        }
      }
      if (auto length = parser.content_length(); length && *length > opts.body_limit) {
        co_await write_response(stream, render(413, "Request is too large."), hdr.version(), false, false);
        break;
      }
      parser.body_limit(opts.body_limit);
      if (bhttp::token_list{hdr[bhttp::field::expect]}.exists("100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, hdr.version()};
        co_await bhttp::async_write(stream, cont, tuple_awaitable);
      }
      beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
      if (ec2) {
        if (ec2 == bhttp::error::body_limit)
          co_await write_response(stream, render(413, "Request is too large."), hdr.version(), false, false);
        else if (ec2 != beast::error::timeout && ec2 != asio::error::operation_aborted)
          co_await write_response(stream, render(400, "Malformed HTTP request."), hdr.version(), false, false);
        break;
      }
      auto msg = parser.release();
      http::Request req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      http::parse_target(req);
      for (auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
      req.body = std::move(msg.body());
      req.remote_address = remote;
      bool keep_alive = msg.keep_alive();
      beast::get_lowest_layer(stream).expires_never();
      std::optional<http::Response> quick;
      if (l.fast) {
        try {
          quick = l.fast(req);
        } catch (const std::exception& e) {
          spdlog::error("{}: fast path failed for {} {}: {}", l.options.name, req.method, req.target, e.what());
        }
      }
      // No co_await inside ?: (GCC 12 miscompiles it).
      http::Response resp;
      if (quick)
        resp = std::move(*quick);
      else
        resp = co_await run_handler(l, req);
      beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
      bool close = !keep_alive || stopping;
      co_await write_response(stream, resp, msg.version(), !close, req.method == "HEAD");
      set_busy(conn, false);
      if (close) break;
    }
    boost::system::error_code ignored;
    lowest_socket(stream).shutdown(tcp::socket::shutdown_both, ignored);
    unregister(conn);
  }

  awaitable<void> accept_loop(Listener& l) {
    for (;;) {
      auto [ec, socket] = co_await l.acceptor.async_accept(connection_executor(), tuple_awaitable);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("{}: accept failed: {}", l.options.name, ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      auto ex = socket.get_executor();
      if (l.tls) {
        asio::co_spawn(
            ex,
            [this, &l, s = std::move(socket)]() mutable -> awaitable<void> {
              beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(s)), *l.tls);
              beast::get_lowest_layer(stream).expires_after(l.options.read_timeout);
              auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, tuple_awaitable);
              if (hec) co_return;
              co_await session(l, stream);
            },
            asio::detached);
      } else {
        asio::co_spawn(
            ex,
            [this, &l, s = std::move(socket)]() mutable -> awaitable<void> {
              beast::tcp_stream stream(std::move(s));
              co_await session(l, stream);
            },
            asio::detached);
      }
    }
  }
};

http::Response render_exception(std::exception_ptr error,
                                const std::function<http::Response(int, const std::string&)>& render,
                                const std::string& where) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    auto out = render(e.status(), e.what());
    for (auto& [k, v] : e.headers) out.headers.set(k, v);
    return out;
  } catch (const std::exception& e) {
    spdlog::error("{}: streaming failed: {}", where, e.what());
  } catch (...) {
    spdlog::error("{}: streaming failed", where);
  }
  return render(500, "An unexpected error prevented the server from fulfilling your request.");
}

Runtime::Runtime(unsigned io_threads, unsigned worker_threads)
    : impl_(std::make_unique<Impl>(std::max(1u, io_threads), worker_threads)) {}

Runtime::~Runtime() { stop(std::chrono::seconds(5)); }

uint16_t Runtime::listen(const ServerOptions& options, HttpHandler handler, FastHttpHandler fast,
                         UploadHandlers uploads) {
  auto l = std::make_unique<Listener>(impl_->ioc, options, std::move(handler));
  l->fast = std::move(fast);
  l->uploads = std::move(uploads);
  auto addr = asio::ip::make_address(options.host);
  tcp::endpoint ep(addr, options.port);
  l->acceptor.open(ep.protocol());
  l->acceptor.set_option(asio::socket_base::reuse_address(true));
  l->acceptor.bind(ep);
  l->acceptor.listen(asio::socket_base::max_listen_connections);
  if (!options.tls_cert_file.empty() && !options.tls_key_file.empty()) {
    l->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    l->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    l->tls->use_certificate_chain_file(options.tls_cert_file);
    l->tls->use_private_key_file(options.tls_key_file, asio::ssl::context::pem);
  }
  uint16_t port = l->acceptor.local_endpoint().port();
  auto* raw = l.get();
  impl_->listeners.push_back(std::move(l));
  asio::co_spawn(impl_->ioc, impl_->accept_loop(*raw), asio::detached);
  return port;
}

void Runtime::every(std::chrono::milliseconds interval, std::function<void()> fn) {
  auto timer = std::make_unique<asio::steady_timer>(impl_->ioc);
  auto* t = timer.get();
  impl_->timers.push_back(std::move(timer));
  asio::co_spawn(
      impl_->ioc,
      [impl = impl_.get(), t, interval, fn = std::move(fn)]() -> awaitable<void> {
        while (!impl->stopping) {
          t->expires_after(interval);
          auto [ec] = co_await t->async_wait(tuple_awaitable);
          if (ec || impl->stopping) co_return;
          co_await impl->blocking([&] {
            try {
              fn();
            } catch (const std::exception& e) {
              spdlog::error("periodic task failed: {}", e.what());
            }
          });
        }
      },
      asio::detached);
}

void Runtime::post_work(std::function<void()> fn) {
  if (impl_->inline_work)
    asio::post(impl_->connection_executor(), std::move(fn));
  else
    asio::post(impl_->pool, std::move(fn));
}

std::function<void(std::function<void()>)> Runtime::serial_work() {
  asio::any_io_executor ex = impl_->inline_work ? impl_->connection_executor()
                                                : asio::any_io_executor(asio::make_strand(impl_->pool.get_executor()));
  return [ex](std::function<void()> fn) { asio::post(ex, std::move(fn)); };
}

void Runtime::start() {
  if (impl_->started) return;
  impl_->started = true;
  if (impl_->inline_work) {
    // One thread for the listeners and timers, one per shard.
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
    for (auto& shard : impl_->shards) impl_->threads.emplace_back([s = shard.get()] { s->ioc.run(); });
    return;
  }
  for (unsigned i = 0; i < impl_->io_threads; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void Runtime::wait_for_signal() {
  asio::io_context sig_ctx;
  asio::signal_set signals(sig_ctx, SIGINT, SIGTERM);
  int got = 0;
  signals.async_wait([&](const boost::system::error_code&, int s) { got = s; });
  sig_ctx.run();
  spdlog::info("signal {} received, shutting down (in-flight requests finish first)", got);
  stop();
}

void Runtime::stop(std::chrono::seconds grace) {
  auto& im = *impl_;
  if (im.stopped) return;
  im.stopped = true;
  im.stopping = true;
  for (auto& l : im.listeners)
    asio::post(l->acceptor.get_executor(), [a = &l->acceptor] {
      boost::system::error_code ec;
      a->close(ec);
    });
  for (auto& t : im.timers) asio::post(im.ioc, [t = t.get()] { t->cancel(); });
  {
    std::unique_lock lock(im.mu);
    // Idle keep-alive connections are closed now; busy ones close after their response.
    for (auto& c : im.connections)
      if (!c.busy)
        asio::post(c.executor, [s = c.socket] {
          boost::system::error_code ec;
          s->cancel(ec);
        });
    if (im.started) im.cv.wait_for(lock, grace, [&] { return im.connections.empty(); });
  }
  im.work.reset();
  im.ioc.stop();
  for (auto& shard : im.shards) {
    shard->work.reset();
    shard->ioc.stop();
  }
  for (auto& t : im.threads)
    if (t.joinable()) t.join();
  im.pool.join();
}

}  // namespace nubo
