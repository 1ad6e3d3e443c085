// A small blocking HTTP client on libcurl, for service-to-service calls and tests.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/http/message.hpp"

namespace nubo::http {

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

class Client {
 public:
  explicit Client(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Trust this CA bundle (PEM) for HTTPS instead of the system's.
  void set_ca_file(std::string path) { ca_file_ = std::move(path); }
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Throws std::runtime_error on transport failure; any HTTP status is a response.
  ClientResponse request(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& body = {});
  // Large bodies, streamed: the file at `path` as the request's body, or a successful (2xx)
  // response's body into the file at `path` (another status keeps its body in the response).
  // The timeout then bounds a stall (no byte for that long), not the whole transfer.
  ClientResponse send_file(const std::string& method, const std::string& url,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& path);
  ClientResponse fetch_file(const std::string& url,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& path);

  struct Streams;  // a streamed transfer's state (client.cpp)

 private:
  ClientResponse perform(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, Streams* streams);
  void* curl_;  // CURL*, reused for keep-alive
  std::chrono::milliseconds timeout_;
  std::string ca_file_;
};

}  // namespace nubo::http
