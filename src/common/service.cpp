#include "common/service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

#include "common/ids.hpp"
#include "common/policy.hpp"

namespace nubo {

bool AuthContext::has_role(std::string_view name) const {
  for (auto& r : roles)
    if (http::iequals(r, name)) return true;
  return false;
}

json::object AuthContext::policy_credentials() const {
  json::object c;
  json::array r;
  for (auto& x : roles) r.emplace_back(x);
  c["roles"] = std::move(r);
  c["user_id"] = user_id;
  c["user_domain_id"] = user_domain_id;
  c["project_id"] = project_id.empty() ? json::value(nullptr) : json::value(project_id);
  c["project_domain_id"] =
      project_domain_id.empty() ? json::value(nullptr) : json::value(project_domain_id);
  c["domain_id"] = domain_id.empty() ? json::value(nullptr) : json::value(domain_id);
  c["system_scope"] = system_scope ? json::value("all") : json::value(nullptr);
  c["is_admin_project"] = is_admin_project;
  c["trust_id"] = trust_id.empty() ? json::value(nullptr) : json::value(trust_id);
  json::object token;
  token["domain"] =
      json::object{{"id", domain_id.empty() ? json::value(nullptr) : json::value(domain_id)}};
  token["project"] = json::object{
      {"id", project_id.empty() ? json::value(nullptr) : json::value(project_id)},
      {"domain", json::object{{"id", project_domain_id.empty() ? json::value(nullptr)
                                                               : json::value(project_domain_id)}}}};
  token["user"] = json::object{{"id", user_id}, {"domain", json::object{{"id", user_domain_id}}}};
  c["token"] = std::move(token);
  return c;
}

const std::string& Context::param(const std::string& name) const {
  static const std::string empty;
  auto it = params.find(name);
  return it == params.end() ? empty : it->second;
}

json::object Context::body() const {
  if (request.body.empty())
    throw BadRequest("The request body is empty; a JSON object is required.");
  boost::system::error_code ec;
  auto v = json::parse(request.body, ec);
  if (ec) throw BadRequest("Malformed JSON in request body: " + ec.message() + ".");
  if (!v.is_object()) throw BadRequest("The request body must be a JSON object.");
  return std::move(v.as_object());
}

bool Context::allowed(const std::string& rule, const Target& target) const {
  if (!policy) return true;
  std::string key = rule;
  for (auto& [k, v] : target) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  if (auto it = decisions_.find(key); it != decisions_.end()) return it->second;
  if (!credentials_) credentials_ = auth ? auth->policy_credentials() : json::object{};
  bool ok = policy->enforce(rule, *credentials_, target);
  decisions_.emplace(std::move(key), ok);
  return ok;
}

void Context::authorize(const std::string& rule, const Target& target) const {
  if (!allowed(rule, target)) {
    throw Forbidden("You are not authorized to perform the requested action: " + rule + ".");
  }
}

struct Pipeline::Compiled {
  const Route* route;
  std::vector<std::string> segments;  // "{name}" marks a parameter
};

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& parts,
           std::map<std::string, std::string>& params) {
  // A last segment "{name*}" takes the rest of the path, slashes included (possibly nothing).
  bool rest = !pattern.empty() && pattern.back().size() > 3 && pattern.back().ends_with("*}");
  if (rest ? parts.size() + 1 < pattern.size() : pattern.size() != parts.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    auto& p = pattern[i];
    if (rest && i + 1 == pattern.size()) {
      std::string tail;
      for (size_t j = i; j < parts.size(); ++j) tail += (j > i ? "/" : "") + parts[j];
      params[p.substr(1, p.size() - 3)] = std::move(tail);
    } else if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      params[p.substr(1, p.size() - 2)] = parts[i];
    } else if (p != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

Pipeline::Pipeline(ServiceSpec spec) : spec_(std::move(spec)) {
  for (auto& r : spec_.routes) {
    compiled_.push_back(Compiled{&r, split_path(r.path)});
    has_uploads_ |= static_cast<bool>(r.upload);
  }
}
Pipeline::~Pipeline() = default;

// Thrown inside the fast path when a step would have to block; the request then runs on the pool.
struct WouldBlock {};

http::Response Pipeline::handle(http::Request& request) {
  return *run(request, Mode::Normal, nullptr);
}

std::optional<http::Response> Pipeline::try_fast(http::Request& request) {
  return run(request, Mode::Fast, nullptr);
}

bool Pipeline::streams(const http::Request& request) const {
  if (!has_uploads_) return false;
  auto parts = split_path(request.path);
  for (auto& c : compiled_) {
    std::map<std::string, std::string> params;
    if (c.route->method == request.method && c.route->upload && match(c.segments, parts, params))
      return true;
  }
  return false;
}

namespace {
// The Date header every HTTP/1.1 origin server sends (RFC 9110 §6.6.1), formatted once a second.
std::string http_date_now() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  auto now = std::time(nullptr);
  if (now != last) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    text = buf;
    last = now;
  }
  return text;
}

// Logs the access line of a streamed upload when it ends, with its final status.
class LoggedSink : public http::BodySink {
 public:
  LoggedSink(std::unique_ptr<http::BodySink> inner, std::string request_id, std::string line,
             std::chrono::steady_clock::time_point start, std::string service,
             std::function<http::Response(const ApiError&)> render)
      : inner_(std::move(inner)),
        request_id_(std::move(request_id)),
        line_(std::move(line)),
        start_(start),
        service_(std::move(service)),
        render_(std::move(render)) {}
  void write(std::string_view chunk) override {
    bytes_ += chunk.size();
    inner_->write(chunk);
  }
  bool take_sender_md5() override { return inner_->take_sender_md5(); }
  void sender_md5(std::string_view hex) override { inner_->sender_md5(hex); }
  http::Response finish() override {
    http::Response r;
    try {
      r = inner_->finish();
    } catch (const ApiError& e) {
      r = render_(e);
      for (auto& [k, v] : e.headers) r.headers.set(k, v);
      inner_->abort();
      aborted_ = true;
    }
    r.headers.set("x-openstack-request-id", request_id_);
    if (!r.headers.get("Date")) r.headers.set("Date", http_date_now());
    log(r.status);
    return r;
  }
  void abort() noexcept override {
    if (aborted_) return;
    aborted_ = true;
    inner_->abort();
    log(499);
  }

 private:
  void log(int status) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    spdlog::info("{} {} {} {} {:.3f}ms bytes={}", service_, request_id_, line_, status,
                 static_cast<double>(us) / 1000.0, bytes_);
  }
  std::unique_ptr<http::BodySink> inner_;
  std::string request_id_;
  std::string line_;
  std::chrono::steady_clock::time_point start_;
  std::string service_;
  std::function<http::Response(const ApiError&)> render_;
  size_t bytes_ = 0;
  bool aborted_ = false;
};
}  // namespace

http::UploadStart Pipeline::begin_upload(http::Request& request) {
  http::UploadStart start;
  auto r = run(request, Mode::Upload, &start);
  if (r) start.response = std::move(*r);
  return start;
}

std::optional<Microversion> Microversion::parse(std::string_view s) {
  auto dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) return std::nullopt;
  Microversion v;
  auto a = std::from_chars(s.data(), s.data() + dot, v.major);
  auto b = std::from_chars(s.data() + dot + 1, s.data() + s.size(), v.minor);
  if (a.ec != std::errc() || a.ptr != s.data() + dot || b.ec != std::errc() ||
      b.ptr != s.data() + s.size())
    return std::nullopt;
  if (s[dot + 1] == '0' && dot + 2 < s.size()) return std::nullopt;  // "2.01"
  return v;
}

namespace {

// The version a request asks for under the service's rules: the OpenStack-API-Version header
// naming this service wins over the legacy one; absent means the minimum.
Microversion negotiate(const MicroversionSpec& m, const http::Request& request) {
  auto trim = [](std::string_view v) {
    auto b = v.find_first_not_of(' ');
    if (b == std::string_view::npos) return std::string_view();
    return v.substr(b, v.find_last_not_of(' ') - b + 1);
  };
  std::optional<std::string> asked;
  if (auto h = request.headers.get("OpenStack-API-Version")) {
    // "compute 2.53", possibly among other services' versions, comma-separated.
    std::string_view all(*h);
    while (!all.empty()) {
      auto comma = all.find(',');
      auto item = trim(all.substr(0, comma));
      all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
      auto space = item.find(' ');
      if (space == std::string_view::npos) continue;
      std::string type(item.substr(0, space));
      std::transform(type.begin(), type.end(), type.begin(), ::tolower);
      if (type == m.service_type) asked = std::string(trim(item.substr(space + 1)));
    }
  }
  if (!asked && !m.legacy_header.empty())
    if (auto h = request.headers.get(m.legacy_header)) asked = std::string(*h);
  if (!asked) return m.min;
  std::string lower = *asked;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "latest") return m.max;
  auto v = Microversion::parse(*asked);
  if (!v)
    throw BadRequest("API Version String " + *asked +
                     " is of invalid format. Must be of format MajorNum.MinorNum.");
  if (*v < m.min || *v > m.max)
    throw ApiError(406, "Version " + *asked + " is not supported by the API. Minimum is " +
                            m.min.str() + " and maximum is " + m.max.str() + ".");
  return *v;
}

}  // namespace

std::optional<http::Response> Pipeline::run(http::Request& request, Mode mode,
                                            http::UploadStart* upload) {
  bool fast = mode == Mode::Fast;
  auto start = std::chrono::steady_clock::now();
  Context ctx{request,
              {},
              std::nullopt,
              spec_.new_request_id ? spec_.new_request_id() : "req-" + uuid4_request(),
              spec_.policy.get(),
              {},
              {}};
  http::Response response;
  bool versioned = false;
  try {
    if (spec_.microversions) {
      // The minimum until negotiated, so that a refused version still gets version headers.
      ctx.version = spec_.microversions->min;
      versioned = true;
      ctx.version = negotiate(*spec_.microversions, request);
    }
    auto parts = split_path(request.path);
    const Route* found = nullptr;
    bool path_matched = false, version_skipped = false;
    std::string method = request.method == "HEAD" ? "GET" : request.method;
    for (auto& c : compiled_) {
      std::map<std::string, std::string> params;
      if (!match(c.segments, parts, params)) continue;
      if (versioned && ((c.route->min_version.major && ctx.version < c.route->min_version) ||
                        (c.route->max_version.major && ctx.version > c.route->max_version))) {
        version_skipped = version_skipped || c.route->method == method;
        continue;
      }
      path_matched = true;
      bool exact = c.route->method == request.method;
      // HEAD takes an explicit HEAD route, else the first matching GET route.
      if (exact || (c.route->method == method && !found)) {
        found = c.route;
        ctx.params = std::move(params);
        if (exact) break;
      }
    }
    if (fast && (!found || (!found->fast && !found->cacheable))) return std::nullopt;
    if (!found) {
      // A method that exists in other microversions is "not found" in this one, as Nova says.
      if (path_matched && !version_skipped) throw MethodNotAllowed();
      throw NotFound("The resource could not be found.");
    }
    // Path parameters and query values reach SQL, where PostgreSQL refuses text that is not UTF-8.
    for (auto& [name, value] : ctx.params)
      if (!http::valid_utf8(value)) throw BadRequest("Invalid UTF-8 in the request path.");
    for (auto& [name, value] : request.query)
      if (!http::valid_utf8(name) || !http::valid_utf8(value))
        throw BadRequest("Invalid UTF-8 in the query string.");
    auto validate = [&](std::string_view token) {
      if (!fast) return spec_.validator->validate(token);
      auto cached = spec_.validator->validate_cached(token);
      if (!cached) throw WouldBlock{};
      return std::move(*cached);
    };
    if (found->authenticated) {
      auto token = request.headers.get("X-Auth-Token");
      if (!token || token->empty()) throw Unauthorized();
      if (!spec_.validator) throw Unauthorized();
      ctx.auth = validate(*token);
    } else if (auto token = request.headers.get("X-Auth-Token");
               token && !token->empty() && spec_.validator) {
      // Optional authentication: a valid token identifies the caller, an invalid one is ignored.
      try {
        ctx.auth = validate(*token);
      } catch (const ApiError&) {
      }
    }
    ctx.policy_rule = found->policy;
    if (!found->policy.empty()) {
      Target target;
      if (found->target) target = found->target(ctx);  // a fast route's loader must not block
      for (auto& [k, v] : ctx.params) target.emplace(k, v);
      ctx.authorize(found->policy, target);
    }
    std::string cache_key;
    std::uint64_t generation = 0;
    if (found->cacheable && spec_.generation &&
        (request.method == "GET" || request.method == "HEAD")) {
      // The caller's identity and scope are part of the key: lists are filtered by who asks.
      cache_key = request.target + '\x1f' +
                  (ctx.auth ? ctx.auth->user_id + '\x1f' + ctx.auth->project_id + '\x1f' +
                                  ctx.auth->domain_id + (ctx.auth->system_scope ? "S" : "")
                            : std::string("-"));
      for (auto& h : spec_.cache_vary_headers) cache_key += '\x1f' + request.headers.get_or(h);
      generation = spec_.generation();
      std::lock_guard lock(cache_mu_);
      auto it = cache_.find(cache_key);
      if (it != cache_.end() && it->second.generation == generation) {
        response = it->second.response;
        cache_key.clear();
        goto done;
      }
    }
    if (mode == Mode::Upload) {
      if (!found->upload) throw MethodNotAllowed();
      auto sink = found->upload(ctx);
      auto render = spec_.render_error ? spec_.render_error : ErrorRenderer(render_keystone_error);
      upload->sink = std::make_unique<LoggedSink>(
          std::move(sink), ctx.request_id,
          request.method + " " + request.target + " user=" + (ctx.auth ? ctx.auth->user_id : "-") +
              " project=" +
              (ctx.auth && !ctx.auth->project_id.empty() ? ctx.auth->project_id : "-"),
          start, spec_.name, render);
      return std::nullopt;
    }
    if (fast) {
      if (!found->fast) return std::nullopt;
      auto r = found->fast(ctx);
      if (!r) return std::nullopt;
      response = std::move(*r);
    } else {
      response = found->handler(ctx);
      if (!cache_key.empty() && response.status == 200 && response.body.size() <= 256 * 1024) {
        std::lock_guard lock(cache_mu_);
        if (cache_.size() > 10000) cache_.clear();
        cache_[cache_key] = Cached{generation, response};
      }
    }
  done:;
  } catch (const WouldBlock&) {
    return std::nullopt;
  } catch (const ApiError& e) {
    response = spec_.render_error_in_context ? spec_.render_error_in_context(e, ctx)
               : spec_.render_error          ? spec_.render_error(e)
                                             : render_keystone_error(e);
    for (auto& [k, v] : e.headers) response.headers.set(k, v);
  } catch (const std::exception& e) {
    spdlog::error("{} {} {} {}: internal error: {}", spec_.name, ctx.request_id, request.method,
                  request.path, e.what());
    ApiError internal(500,
                      "An unexpected error prevented the server from fulfilling your request.");
    response = spec_.render_error_in_context ? spec_.render_error_in_context(internal, ctx)
               : spec_.render_error          ? spec_.render_error(internal)
                                             : render_keystone_error(internal);
  }
  if (upload && upload->sink) return std::nullopt;
  response.headers.set("x-openstack-request-id", ctx.request_id);
  if (!response.headers.get("Date")) response.headers.set("Date", http_date_now());
  if (!spec_.request_id_alias.empty()) response.headers.set(spec_.request_id_alias, ctx.request_id);
  if (versioned) {
    auto& m = *spec_.microversions;
    response.headers.set("OpenStack-API-Version", m.service_type + " " + ctx.version.str());
    if (!m.legacy_header.empty()) response.headers.set(m.legacy_header, ctx.version.str());
    response.headers.set(
        "Vary", "OpenStack-API-Version" + (m.legacy_header.empty() ? "" : ", " + m.legacy_header));
  }
  for (auto& [k, v] : spec_.response_headers) response.headers.set(k, v);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  spdlog::info("{} {} {} {} {} {:.3f}ms user={} project={}", spec_.name, ctx.request_id,
               request.method, request.target, response.status, static_cast<double>(us) / 1000.0,
               ctx.auth ? ctx.auth->user_id : "-",
               ctx.auth && !ctx.auth->project_id.empty() ? ctx.auth->project_id : "-");
  return response;
}

http::Response json_response(int status, const json::value& body) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  r.body = json::serialize(body);
  return r;
}

http::Response empty_response(int status) {
  http::Response r;
  r.status = status;
  return r;
}

http::Response render_keystone_error(const ApiError& e) {
  json::object err{
      {"code", e.status()}, {"title", status_reason(e.status())}, {"message", e.what()}};
  auto r = json_response(e.status(), json::object{{"error", std::move(err)}});
  if (e.status() == 401) r.headers.set("WWW-Authenticate", "Keystone uri=\"\"");
  return r;
}

}  // namespace nubo

namespace nubo {

http::Response render_nova_error(const ApiError& e) {
  const char* fault = "computeFault";
  switch (e.status()) {
    case 400:
      fault = "badRequest";
      break;
    case 401:
      fault = "unauthorized";
      break;
    case 403:
      fault = "forbidden";
      break;
    case 404:
      fault = "itemNotFound";
      break;
    case 405:
      fault = "badMethod";
      break;
    case 409:
      fault = "conflictingRequest";
      break;
    case 413:
      fault = "overLimit";
      break;
    case 415:
      fault = "badMediaType";
      break;
    case 429:
      fault = "overLimit";
      break;
    case 501:
      fault = "notImplemented";
      break;
    case 503:
      fault = "serviceUnavailable";
      break;
    default:
      break;
  }
  return json_response(
      e.status(), json::object{{fault, json::object{{"code", e.status()}, {"message", e.what()}}}});
}

http::Response render_neutron_error(const ApiError& e) {
  std::string type = e.type().empty() ? std::string(status_reason(e.status())) : e.type();
  std::erase(type, ' ');
  return json_response(
      e.status(),
      json::object{
          {"NeutronError", json::object{{"type", type}, {"message", e.what()}, {"detail", ""}}}});
}

}  // namespace nubo
