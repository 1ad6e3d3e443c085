#include "common/http/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

struct Client::Streams {
  std::FILE* in = nullptr;
  std::uint64_t in_size = 0;
  std::FILE* out = nullptr;
  CURL* curl = nullptr;
  std::string* body = nullptr;  // where a non-2xx answer's body goes
  int decided = 0;              // 0: not yet, 1: to the file, 2: to body
  bool failed = false;
};

namespace {
size_t on_file_body(char* p, size_t size, size_t n, void* userdata) {
  auto* s = static_cast<Client::Streams*>(userdata);
  if (!s->decided) {
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    s->decided = status / 100 == 2 ? 1 : 2;
  }
  if (s->decided == 2) {
    s->body->append(p, size * n);
    return size * n;
  }
  if (std::fwrite(p, size, n, s->out) != n) {
    s->failed = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}
size_t on_file_read(char* p, size_t size, size_t n, void* userdata) {
  return std::fread(p, size, n, static_cast<Client::Streams*>(userdata)->in) * size;
}
// A file open for a transfer, closed when it ends.
struct File {
  std::FILE* f;
  File(const std::string& path, const char* mode) : f(std::fopen(path.c_str(), mode)) {
    if (!f)
      throw std::runtime_error(std::string(*mode == 'r' ? "cannot read " : "cannot write ") + path +
                               ": " + std::strerror(errno));
  }
  ~File() { std::fclose(f); }
};
}  // namespace

Client::Client(std::chrono::milliseconds timeout) : curl_(curl_easy_init()), timeout_(timeout) {
  if (!curl_) throw std::runtime_error("curl_easy_init failed");
}
Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

ClientResponse Client::request(const std::string& method, const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& body) {
  return perform(method, url, headers, body, nullptr);
}

ClientResponse Client::send_file(const std::string& method, const std::string& url,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 const std::string& path) {
  File in(path, "rb");
  Streams s;
  s.in = in.f;
  std::fseek(in.f, 0, SEEK_END);
  s.in_size = static_cast<std::uint64_t>(std::ftell(in.f));
  std::fseek(in.f, 0, SEEK_SET);
  return perform(method, url, headers, {}, &s);
}

ClientResponse Client::fetch_file(const std::string& url,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::string& path) {
  File out(path, "wb");
  Streams s;
  s.out = out.f;
  auto r = perform("GET", url, headers, {}, &s);
  if (std::fflush(out.f) != 0 || s.failed)
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  return r;
}

ClientResponse Client::perform(const std::string& method, const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& body, Streams* streams) {
  auto* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  ClientResponse out;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (streams) {
    // A transfer may take long; one that stops moving for the timeout fails.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(timeout_.count() / 1000)));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  } else {
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  }
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (streams && streams->in) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_file_read);
    curl_easy_setopt(c, CURLOPT_READDATA, streams);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(streams->in_size));
  } else if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_slist* list = nullptr;
  for (auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  if (streams && streams->out) {
    streams->curl = c;
    streams->body = &out.body;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, streams);
  } else {
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  }
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
