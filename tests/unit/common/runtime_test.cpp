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
