// The request pipeline every service runs: route → authenticate → authorize (policy)
// → handler → render, with request ids, error dialects and one access-log line per request.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/auth.hpp"
#include "common/error.hpp"
#include "common/http/message.hpp"
#include "common/json.hpp"

namespace nubo {

class Policy;

using Target = std::map<std::string, std::string>;

// An API microversion (compute 2.53...); ordered.
struct Microversion {
  int major = 0, minor = 0;
  auto operator<=>(const Microversion&) const = default;
  std::string str() const { return std::to_string(major) + "." + std::to_string(minor); }
  // "2.53" → {2, 53}; nullopt when malformed.
  static std::optional<Microversion> parse(std::string_view s);
};

// How a service negotiates microversions (Nova's rules): `OpenStack-API-Version: <type> X.Y` or
// the legacy header, "latest" for the maximum, the minimum when absent, 406 outside the range.
struct MicroversionSpec {
  std::string service_type;   // "compute"
  std::string legacy_header;  // "X-OpenStack-Nova-API-Version"
  Microversion min, max;
};

struct Context {
  http::Request& request;
  std::map<std::string, std::string> params;
  std::optional<AuthContext> auth;
  std::string request_id;
  const Policy* policy = nullptr;
  std::string policy_rule;  // the route's rule
  Microversion version;     // negotiated, for services with microversions

  const std::string& param(const std::string& name) const;
  // The request body as a JSON object; BadRequest when it is not one.
  json::object body() const;
  // Raises Forbidden unless the rule allows the caller on this target.
  void authorize(const std::string& rule, const Target& target) const;
  bool allowed(const std::string& rule, const Target& target) const;

  // allowed()'s memory, not for callers: decisions already taken in this request (a listing asks
  // the same question for every row).
  mutable std::map<std::string, bool> decisions_;
  mutable std::optional<json::object> credentials_;
};

using RouteHandler = std::function<http::Response(Context&)>;
// Answers on the I/O thread from memory, or nullopt when the request needs blocking work.
using FastHandler = std::function<std::optional<http::Response>(Context&)>;
using TargetLoader = std::function<Target(Context&)>;
// Starts a streamed upload after authentication and policy; the server feeds the body to the sink.
using UploadHandler = std::function<std::unique_ptr<http::BodySink>(Context&)>;

struct Route {
  std::string method;  // GET, POST...; GET routes also answer HEAD
  std::string path;    // template: /v3/users/{user_id}; a last "{name*}" takes the rest
  RouteHandler handler;
  std::string policy;  // rule checked before the handler; empty: the handler checks
  bool authenticated = true;
  TargetLoader target;  // attributes the rule reads (target.user.domain_id...)
  FastHandler fast;     // optional non-blocking path tried before the worker pool
  // GET responses may be served from the pipeline's cache while the service's generation is
  // unchanged.
  bool cacheable = false;
  // When set, the request body is not buffered: it streams into the sink this returns (no body
  // size limit but the service's own), and `handler` is not used.
  UploadHandler upload;
  // Microversions the route exists in (404 outside, as for an unknown path); {0,0}: no bound.
  Microversion min_version{}, max_version{};
};

using ErrorRenderer = std::function<http::Response(const ApiError&)>;
// Renders an error with the request at hand (its id, its negotiated microversion).
using ContextErrorRenderer = std::function<http::Response(const ApiError&, const Context&)>;

struct ServiceSpec {
  std::string name;
  std::vector<Route> routes;
  ErrorRenderer render_error;
  ContextErrorRenderer render_error_in_context;  // preferred over render_error when set
  std::shared_ptr<TokenValidator> validator;
  std::shared_ptr<Policy> policy;
  // Bumped by the service on every write; cacheable GET responses live while it is unchanged.
  std::function<std::uint64_t()> generation;
  // Request headers that change a cacheable response (e.g. OpenStack-API-Version): part of the key.
  std::vector<std::string> cache_vary_headers;
  // Extra headers on every response (e.g. Vary).
  std::vector<std::pair<std::string, std::string>> response_headers;
  std::optional<MicroversionSpec> microversions;
  // The request id under a second header too (Nova's X-Compute-Request-Id).
  std::string request_id_alias;
  // Request ids in the service's own form (Swift's "tx..."); "req-<uuid>" when unset.
  std::function<std::string()> new_request_id;
};

class Pipeline {
 public:
  explicit Pipeline(ServiceSpec spec);
  ~Pipeline();
  http::Response handle(http::Request& request);
  // On the I/O thread: the response when the route's fast path can answer without blocking.
  std::optional<http::Response> try_fast(http::Request& request);
  // Whether this request's route streams its body (cheap; runs on the I/O thread).
  bool streams(const http::Request& request) const;
  // Authenticates and authorizes a streamed upload and opens its sink (or answers at once).
  http::UploadStart begin_upload(http::Request& request);
  const ServiceSpec& spec() const { return spec_; }

 private:
  enum class Mode { Normal, Fast, Upload };
  std::optional<http::Response> run(http::Request& request, Mode mode, http::UploadStart* upload);
  bool has_uploads_ = false;
  struct Cached {
    std::uint64_t generation;
    http::Response response;
  };
  std::mutex cache_mu_;
  std::unordered_map<std::string, Cached> cache_;
  struct Compiled;
  ServiceSpec spec_;
  std::vector<Compiled> compiled_;
};

// Common response builders.
http::Response json_response(int status, const json::value& body);
http::Response empty_response(int status = 204);

// The error dialects (DESIGN §4); a service names its renderer in its ServiceSpec.
// Keystone: {"error": {"code", "title", "message"}}.
http::Response render_keystone_error(const ApiError& e);
// Nova: {"itemNotFound": {"code": 404, "message"}} with Nova's fault name per status.
http::Response render_nova_error(const ApiError& e);
// Neutron: {"NeutronError": {"type", "message", "detail"}}; type from ApiError::type().
http::Response render_neutron_error(const ApiError& e);

}  // namespace nubo
