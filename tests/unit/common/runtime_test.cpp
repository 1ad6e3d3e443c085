// The HTTP runtime on loopback: keep-alive, limits, and graceful shutdown with a request in flight.
#include "common/http/client.hpp"
#include "common/runtime.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <future>
#include <thread>

using namespace nubo;

TEST(Runtime, ServesKeepAliveAndEnforcesBodyLimit) {
  Runtime rt(1, 2);
  ServerOptions o;
  o.body_limit = 1024;
  auto port = rt.listen(o, [](http::Request& r) {
    http::Response resp;
    resp.body = r.method + " " + r.path + " " + std::to_string(r.body.size()) + " " + r.query_param("q").value_or("-");
    return resp;
  });
  rt.start();
  http::Client c;
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto a = c.request("GET", base + "/a%20b?q=x%2By");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "GET /a b 0 x+y");
  auto b = c.request("POST", base + "/p", {}, std::string(1000, 'x'));
  EXPECT_EQ(b.body, "POST /p 1000 -");
  auto big = c.request("POST", base + "/p", {}, std::string(5000, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(c.request("GET", base + "/again").status, 200);
  rt.stop(std::chrono::seconds(2));
}

TEST(Runtime, StopLetsInFlightRequestsFinish) {
  Runtime rt(1, 2);
  std::atomic<bool> started{false};
  auto port = rt.listen(ServerOptions{}, [&](http::Request&) {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    http::Response r;
    r.body = "done";
    return r;
  });
  rt.start();
  auto reply = std::async(std::launch::async, [port] {
    http::Client c;
    return c.request("GET", "http://127.0.0.1:" + std::to_string(port) + "/slow");
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  rt.stop(std::chrono::seconds(5));
  auto r = reply.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done");
  http::Client c;
  EXPECT_THROW(c.request("GET", "http://127.0.0.1:" + std::to_string(port) + "/after"), std::runtime_error);
}

TEST(Runtime, ServesHttpsWhenConfigured) {
  auto dir = std::filesystem::temp_directory_path() / ("nubo-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
                    "subjectAltName=DNS:localhost -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Runtime rt(1, 1);
  ServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  auto port = rt.listen(o, [](http::Request&) {
    http::Response r;
    r.body = "secure";
    return r;
  });
  rt.start();
  http::Client c;
  c.set_ca_file(cert);
  auto r = c.request("GET", "https://localhost:" + std::to_string(port) + "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "secure");
  http::Client plain;
  EXPECT_THROW(plain.request("GET", "http://localhost:" + std::to_string(port) + "/"), std::runtime_error);
  rt.stop(std::chrono::seconds(2));
  std::filesystem::remove_all(dir);
}

namespace {
// Counts and checksums what it receives; finish() answers with the totals.
struct CountingSink : http::BodySink {
  size_t bytes = 0;
  unsigned long long sum = 0;
  size_t chunks = 0;
  bool* aborted;
  explicit CountingSink(bool* a) : aborted(a) {}
  void write(std::string_view chunk) override {
    ++chunks;
    bytes += chunk.size();
    for (unsigned char c : chunk) sum += c;
  }
  http::Response finish() override {
    http::Response r;
    r.status = 201;
    r.body = std::to_string(bytes) + " " + std::to_string(sum);
    return r;
  }
  void abort() noexcept override { *aborted = true; }
};

// Produces `total` bytes of a repeating pattern in chunks.
struct PatternSource : http::BodySource {
  size_t left, pos = 0;
  explicit PatternSource(size_t total) : left(total) {}
  std::string next(size_t max) override {
    size_t n = std::min(left, max);
    left -= n;
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i, ++pos) s[i] = static_cast<char>('a' + (pos % 26));
    return s;
  }
};
}  // namespace

TEST(Runtime, StreamsUploadsAndDownloadsWithoutBuffering) {
  Runtime rt(1, 2);
  bool aborted = false;
  ServerOptions o;
  o.body_limit = 1024;  // streamed requests are not bound by it
  UploadHandlers uploads;
  uploads.matches = [](const http::Request& r) { return r.method == "PUT" && r.path == "/upload"; };
  uploads.start = [&](http::Request& r) {
    http::UploadStart s;
    if (r.headers.get_or("X-Refuse") == "1") {
      http::Response no;
      no.status = 403;
      s.response = no;
    } else {
      s.sink = std::make_unique<CountingSink>(&aborted);
    }
    return s;
  };
  const size_t total = 48u << 20;
  auto port = rt.listen(
      o,
      [&](http::Request& r) {
        http::Response resp;
        if (r.path == "/download") {
          resp.stream = std::make_shared<PatternSource>(total);
          resp.headers.set("Content-Length", std::to_string(total));
        } else if (r.path == "/chunked") {
          resp.stream = std::make_shared<PatternSource>(3u << 20);
        } else {
          resp.body = "buffered";
        }
        return resp;
      },
      {}, uploads);
  rt.start();
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  http::Client c(std::chrono::seconds(60));
  std::string body(total, '\0');
  unsigned long long sum = 0;
  for (size_t i = 0; i < total; ++i) {
    body[i] = static_cast<char>(i % 251);
    sum += static_cast<unsigned char>(body[i]);
  }
  auto up = c.request("PUT", base + "/upload", {}, body);
  EXPECT_EQ(up.status, 201);
  EXPECT_EQ(up.body, std::to_string(total) + " " + std::to_string(sum));
  EXPECT_FALSE(aborted);
  auto refused = c.request("PUT", base + "/upload", {{"X-Refuse", "1"}}, "data");
  EXPECT_EQ(refused.status, 403);
  auto down = c.request("GET", base + "/download");
  ASSERT_EQ(down.status, 200);
  ASSERT_EQ(down.body.size(), total);
  EXPECT_EQ(down.body.substr(0, 3), "abc");
  EXPECT_EQ(down.body[total - 1], static_cast<char>('a' + ((total - 1) % 26)));
  auto chunked = c.request("GET", base + "/chunked");
  EXPECT_EQ(chunked.body.size(), 3u << 20);
  EXPECT_EQ(c.request("POST", base + "/other", {}, std::string(5000, 'x')).status, 413);  // others stay bounded
  rt.stop(std::chrono::seconds(2));
}

// Without a worker pool (Runtime(n, 0)): handlers block the shard they run on, a connection on
// another shard is still answered, posted work runs on the shards, and stop() waits for the
// blocked request.
TEST(Runtime, ShardsRunBlockingHandlersWithoutAPool) {
  // Six shards, taken in turn: the blocked request's, three quick connections', the next
  // accept's (picked when it is armed), the post's.
  Runtime rt(6, 0);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> blocked{false};
  auto port = rt.listen(ServerOptions{}, [&](http::Request& r) {
    if (r.path == "/block") {
      blocked = true;
      released.wait();
    }
    http::Response resp;
    resp.body = r.path;
    return resp;
  });
  rt.start();
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto slow = std::async(std::launch::async, [&] { return http::Client().request("GET", base + "/block"); });
  while (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // Each new connection goes to the next shard: the blocked one holds only its own.
  for (int i = 0; i < 3; ++i) {
    http::Client c;
    auto r = c.request("GET", base + "/quick");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "/quick");
  }
  std::promise<std::thread::id> ran;
  rt.post_work([&] { ran.set_value(std::this_thread::get_id()); });
  EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
  release.set_value();
  EXPECT_EQ(slow.get().body, "/block");
  rt.stop(std::chrono::seconds(2));
}
