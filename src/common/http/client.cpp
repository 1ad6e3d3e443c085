#include "common/http/client.hpp"

#include <curl/curl.h>

#include <stdexcept>

namespace nubo::http {
namespace {
size_t on_body(char* p, size_t size, size_t n, void* userdata) {
  static_cast<std::string*>(userdata)->append(p, size * n);
  return size * n;
}
size_t on_header(char* p, size_t size, size_t n, void* userdata) {
  std::string line(p, size * n);
  auto* h = static_cast<Headers*>(userdata);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    h->add(line.substr(0, colon), value);
  }
  return size * n;
}
}  // namespace

Client::Client(std::chrono::milliseconds timeout) : curl_(curl_easy_init()), timeout_(timeout) {
  if (!curl_) throw std::runtime_error("curl_easy_init failed");
}
Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

ClientResponse Client::request(const std::string& method, const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& body) {
  auto* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  ClientResponse out;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_slist* list = nullptr;
  for (auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
  auto rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) throw std::runtime_error(method + " " + url + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  out.status = static_cast<int>(status);
  return out;
}

}  // namespace nubo::http
