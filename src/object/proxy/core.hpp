// The object proxy's own operations that its middleware (large objects, TempURL, FormPost,
// quotas, bulk) build on, as Swift's middleware build on the proxy app below them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.hpp"
#include "common/service.hpp"
#include "object/backend.hpp"
#include "object/proxy/proxy.hpp"
#include "object/ring/ring.hpp"
#include "object/ring/ring_file.hpp"
#include "object/timestamp.hpp"

namespace nubo::object {

class Proxy {
 public:
  explicit Proxy(ProxySettings s)
      : settings(std::move(s)),
        account_file_(settings.rings + "/account.ring.json"),
        container_file_(settings.rings + "/container.ring.json"),
        object_file_(settings.rings + "/object.ring.json") {
    // Refuse to start without rings (later changes are followed; a bad file keeps the last).
    for (auto* f : {&account_file_, &container_file_, &object_file_})
      if (!f->get()) throw std::runtime_error("object proxy: no ring at " + f->path());
  }
  ProxySettings settings;
  // The rings as of their files' last change (operators push new rings after a rebalance): take
  // one per use; a request holds its copy while it uses it.
  std::shared_ptr<const Ring> account_ring() { return account_file_.get(); }
  std::shared_ptr<const Ring> container_ring() { return container_file_.get(); }
  std::shared_ptr<const Ring> object_ring() { return object_file_.get(); }
  BackendPool pool;

  // Accounts known to exist (autocreated), containers and accounts' headers known for a few
  // seconds (Swift keeps them in memcache).
  bool account_known(const std::string& a) {
    std::lock_guard lock(mutex_);
    return accounts_.count(a) > 0;
  }
  void remember_account(const std::string& a) {
    std::lock_guard lock(mutex_);
    if (accounts_.size() > 100000) accounts_.clear();
    accounts_.insert(a);
  }
  struct ContainerInfo {
    int status = 0;  // 204 found, 404 missing
    http::Headers headers;
    std::chrono::steady_clock::time_point at;
  };
  std::optional<ContainerInfo> cached_container(const std::string& key) {
    return cached(containers_, key);
  }
  void cache_container(const std::string& key, ContainerInfo info) {
    cache(containers_, key, std::move(info));
  }
  void forget_container(const std::string& key) {
    std::lock_guard lock(mutex_);
    containers_.erase(key);
  }
  std::optional<ContainerInfo> cached_account(const std::string& key) {
    return cached(account_infos_, key);
  }
  void cache_account(const std::string& key, ContainerInfo info) {
    cache(account_infos_, key, std::move(info));
  }
  void forget_account(const std::string& key) {
    std::lock_guard lock(mutex_);
    account_infos_.erase(key);
  }

 private:
  RingFile account_file_, container_file_, object_file_;
  std::optional<ContainerInfo> cached(std::map<std::string, ContainerInfo>& m,
                                      const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = m.find(key);
    if (it == m.end() || std::chrono::steady_clock::now() - it->second.at > std::chrono::seconds(5))
      return std::nullopt;
    return it->second;
  }
  void cache(std::map<std::string, ContainerInfo>& m, const std::string& key, ContainerInfo info) {
    std::lock_guard lock(mutex_);
    if (m.size() > 100000) m.clear();
    info.at = std::chrono::steady_clock::now();
    m[key] = std::move(info);
  }
  std::mutex mutex_;
  std::set<std::string> accounts_;
  std::map<std::string, ContainerInfo> containers_, account_infos_;
};

namespace proxy {

// The one storage policy (replication, by the object ring).
inline constexpr const char* kPolicy = "Policy-0";

struct SwiftPath {
  std::string account, container, object;
  bool has_container = false, has_object = false;
};
// /v1/<account>[/<container>[/<object...>]]; 412 "Bad URL" otherwise.
SwiftPath parse_swift_path(std::string_view path);
SwiftPath object_path(const std::string& account, const std::string& container,
                      const std::string& object);

// What a TempURL or FormPost signature grants in place of a token: the account's objects, or
// one container's when the key was the container's.
struct Grant {
  std::string account, container;  // container empty: any in the account
};

// What an account ACL (X-Account-Access-Control) gives a caller who does not own the account
// ("admin" makes it an owner).
enum class AccountAccess { none, read_only, read_write };

struct Request {
  Proxy& proxy;
  Context& ctx;
  SwiftPath path;
  bool owner = false;
  AccountAccess access = AccountAccess::none;
  std::optional<Grant> grant;
  http::Request& r() { return ctx.request; }
};

// The caller's rights on another path: ownership is that account's; what an account ACL gave
// holds in the same account.
Request on_path(const Request& q, SwiftPath path);

// A request the proxy makes on its caller's behalf (segment HEADs, bulk deletes, form
// uploads): the caller's identity and grant, its own method, path, headers and query, and the
// same checks as the caller's own requests.
class SubRequest {
 public:
  SubRequest(const Request& parent, std::string method, SwiftPath path, http::Headers headers = {},
             std::multimap<std::string, std::string> query = {});
  SubRequest(const SubRequest&) = delete;
  SubRequest& operator=(const SubRequest&) = delete;
  Request& q() { return q_; }

 private:
  http::Request request_;
  Context ctx_;
  Request q_;
};

// A request whose work runs after its handler returned (once its body has arrived): a copy of
// the request and of the caller's identity, at a stable address.
class HeldRequest {
 public:
  explicit HeldRequest(const Request& q);
  HeldRequest(const HeldRequest&) = delete;
  HeldRequest& operator=(const HeldRequest&) = delete;
  Request& q() { return q_; }

 private:
  http::Request request_;
  Context ctx_;
  Request q_;
};

http::Response empty(int status, const char* content_type = "text/html; charset=UTF-8");
// "404 Not Found", as Swift words a status in bodies.
std::string status_line(int status);
std::string md5_hex(std::string_view data);

// Swift's config_true_value: true, 1, yes, on, t, y in any case.
bool true_value(std::string_view v);

bool is_owner(const Proxy& proxy, const Context& ctx, const std::string& account);
bool is_reseller(const Proxy& proxy, const Context& ctx);
// An ACL entry names the caller: "<project>:<user>" (ids or names, * for any) or a role name
// (tempauth: a group).
bool names_caller(const std::string& item, const Context& ctx);
// 401 (with Swift's WWW-Authenticate) without an identity, 403 with one.
[[noreturn]] void deny(const Context& ctx, const std::string& account);
// keystoneauth on an object: owners, grants, then the container's read or write ACL.
void authorize_object(Request& q, bool read);
void require_container(Request& q);

// A container's or an account's HEAD (metadata, counts), cached for a few seconds unless fresh.
Proxy::ContainerInfo container_info(Proxy& proxy, const SwiftPath& p, bool fresh = false);
Proxy::ContainerInfo account_info(Proxy& proxy, const std::string& account, bool fresh = false);

// A container's listing rows as the storage servers give them (JSON; query: "format=json&..."),
// nullopt when no replica answers with one.
std::optional<std::string> container_listing(Proxy& proxy, const SwiftPath& container,
                                             const std::string& query);

// GET or HEAD from the first replica that answers well.
struct Source {
  std::unique_ptr<BackendRequest> request;
  int status = 503;
  http::Headers headers;
};
Source read_object(Proxy& proxy, const SwiftPath& p, const std::string& method,
                   const http::Headers& headers);
// The body of a backend response as a response stream.
std::shared_ptr<http::BodySource> stream_of(std::unique_ptr<BackendRequest> r);
// Response headers from a storage server's, without the backend's own.
void copy_headers(http::Response& out, const http::Headers& from);

// The client's object requests, with every check.
http::Response object_get(Request& q);
std::unique_ptr<http::BodySink> object_put(Request& q);
http::Response object_write(Request& q);  // DELETE, POST
http::Response container_request(Request& q);

// An object PUT checked (authorization, names, lengths, metadata, quotas, container) and
// ready to start: the headers for the storage servers and the body's length (nullopt: chunked).
struct PutPlan {
  http::Headers headers;
  std::optional<std::uint64_t> length;
  Timestamp timestamp;
};
PutPlan plan_put(Request& q);
// Streams a body to the object's replicas; finish() answers once a quorum has it.
std::unique_ptr<http::BodySink> start_put(Request& q, const PutPlan& plan);

// "container/object" (leading slash allowed, percent-encoded) or nullopt.
std::optional<std::pair<std::string, std::string>> copy_location(std::string_view value);

}  // namespace proxy
}  // namespace nubo::object
