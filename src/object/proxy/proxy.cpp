#include "object/proxy/proxy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <random>
#include <set>

#include "common/digest.hpp"
#include "common/ids.hpp"
#include "object/backend.hpp"
#include "object/proxy/bulk.hpp"
#include "object/proxy/core.hpp"
#include "object/proxy/cors.hpp"
#include "object/proxy/formpost.hpp"
#include "object/proxy/large_object.hpp"
#include "object/proxy/quotas.hpp"
#include "object/proxy/slo.hpp"
#include "object/proxy/tempauth.hpp"
#include "object/proxy/tempurl.hpp"
#include "object/ring/ring.hpp"
#include "object/swift_http.hpp"
#include "object/timestamp.hpp"

namespace nubo::object {

std::shared_ptr<Proxy> make_proxy(ProxySettings settings) {
  return std::make_shared<Proxy>(std::move(settings));
}

namespace proxy {

SwiftPath parse_swift_path(std::string_view path) {
  // /v1/<account>[/<container>[/<object...>]]
  SwiftPath p;
  if (!http::valid_utf8(path) || path.find('\0') != std::string_view::npos)
    throw swift_error(412, "Invalid UTF8 or contains NULL");
  std::string_view rest = path;
  if (rest.starts_with("/v1/"))
    rest.remove_prefix(4);
  else if (rest.starts_with("/v1.0/"))
    rest.remove_prefix(6);
  else
    throw swift_error(412, "Bad URL");
  auto slash = rest.find('/');
  p.account = std::string(rest.substr(0, slash));
  if (p.account.empty()) throw swift_error(412, "Bad URL");
  if (slash == std::string_view::npos) return p;
  rest.remove_prefix(slash + 1);
  slash = rest.find('/');
  p.container = std::string(rest.substr(0, slash));
  p.has_container = !p.container.empty();
  if (slash == std::string_view::npos) return p;
  rest.remove_prefix(slash + 1);
  p.object = std::string(rest);
  p.has_object = !p.object.empty();
  if (p.has_object && !p.has_container) throw swift_error(412, "Bad URL");
  return p;
}

std::string new_trans_id() {
  auto hex = uuid4_request_hex().substr(0, 21);
  char tail[16];
  std::snprintf(tail, sizeof tail, "%010llx",
                static_cast<unsigned long long>(Timestamp::now().raw / 100000));
  return "tx" + hex + "-" + tail;
}

// ---- talking to the replicas ----

struct Node {
  Device device;
  bool handoff = false;
};

// The primaries, then handoffs to stand in for ones that fail.
std::vector<Node> nodes_for(const Ring& ring, std::uint32_t part) {
  std::vector<Node> out;
  for (auto& d : ring.primaries(part)) out.push_back({d, false});
  for (auto& d : ring.handoffs(part, ring.replicas() * 2)) out.push_back({d, true});
  return out;
}

std::string backend_target(const char* kind, const Device& d, std::uint32_t part,
                           const SwiftPath& p, bool container, bool object,
                           const std::string& query = {}) {
  std::string path =
      std::string("/") + kind + "/" + d.device + "/" + std::to_string(part) + "/" + p.account;
  if (container) path += "/" + p.container;
  if (object) path += "/" + p.object;
  auto target = encode_path(path);
  if (!query.empty()) target += "?" + query;
  return target;
}

struct Reply {
  int status = 503;
  http::Headers headers;
  std::string body;
};

int quorum(size_t replicas) { return static_cast<int>((replicas + 1) / 2); }

// Swift's best_response: the highest status of the first class (2xx, 3xx, 4xx) a quorum agrees
// on; 503 otherwise.
Reply best(std::vector<Reply> replies, size_t replicas) {
  for (int cls : {2, 3, 4}) {
    int count = 0;
    const Reply* top = nullptr;
    for (auto& r : replies)
      if (r.status / 100 == cls) {
        ++count;
        if (!top || r.status > top->status) top = &r;
      }
    if (count >= quorum(replicas)) return *top;
  }
  return Reply{};
}

// The same request to every replica at once (each sent before any answer is read), a handoff
// standing in for a replica that cannot be reached.
std::vector<Reply> fan_out(Proxy& proxy, const Ring& ring, std::uint32_t part,
                           const std::function<std::string(const Device&)>& target,
                           const std::string& method,
                           const std::function<http::Headers(size_t)>& headers,
                           const std::string& body = {}) {
  auto nodes = nodes_for(ring, part);
  size_t next = ring.replicas();
  std::vector<std::unique_ptr<BackendRequest>> sent;
  for (size_t i = 0; i < ring.replicas() && i < nodes.size(); ++i) {
    size_t at = i;
    for (;;) {
      auto r = std::make_unique<BackendRequest>(proxy.pool, nodes[at].device.ip,
                                                nodes[at].device.port, proxy.settings.node_timeout);
      try {
        r->start(method, target(nodes[at].device), headers(i), body.size());
        if (!body.empty()) r->write(body);
        sent.push_back(std::move(r));
        break;
      } catch (const BackendError& e) {
        spdlog::warn("object proxy: {} {}: {}", method, r->where(), e.what());
        if (next >= nodes.size()) {
          sent.push_back(nullptr);
          break;
        }
        at = next++;
      }
    }
  }
  std::vector<Reply> replies;
  for (auto& r : sent) {
    Reply reply;
    if (r) try {
        reply.status = r->status();
        reply.headers = r->headers();
        reply.body = r->read_all();
      } catch (const BackendError& e) {
        spdlog::warn("object proxy: {} {}: {}", method, r->where(), e.what());
        reply.status = 503;
      }
    replies.push_back(std::move(reply));
  }
  return replies;
}

// GET or HEAD from the first replica that answers well (primaries, then handoffs).
Source read_from(Proxy& proxy, const Ring& ring, std::uint32_t part,
                 const std::function<std::string(const Device&)>& target, const std::string& method,
                 const http::Headers& headers, bool object) {
  Source best_error;
  bool saw_404 = false;
  for (auto& node : nodes_for(ring, part)) {
    auto r = std::make_unique<BackendRequest>(proxy.pool, node.device.ip, node.device.port,
                                              proxy.settings.node_timeout);
    try {
      r->start(method, target(node.device), headers, 0);
      int status = r->status();
      bool good =
          status / 100 == 2 || status == 304 || (object && (status == 412 || status == 416));
      if (good) {
        Source s;
        s.status = status;
        s.headers = r->headers();
        s.request = std::move(r);
        return s;
      }
      if (status == 404) saw_404 = true;
      if (status / 100 == 4 && status != 404 && best_error.status == 503) {
        best_error.status = status;
        best_error.headers = r->headers();
      }
      r->read_all();
    } catch (const BackendError& e) {
      spdlog::warn("object proxy: {} {}: {}", method, r->where(), e.what());
    }
    if (node.handoff && saw_404) break;  // a handoff has nothing the primaries lacked
  }
  if (best_error.status == 503 && saw_404) best_error.status = 404;
  return best_error;
}

// ---- requests ----

http::Response empty(int status, const char* content_type) {
  http::Response out;
  out.status = status;
  out.headers.set("Content-Type", content_type);
  if (status == 202)
    out.body = "<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>";
  return out;
}

http::Response from_reply(const Reply& reply) {
  if (reply.status >= 400) throw swift_error(reply.status);
  return empty(reply.status);
}

bool has_role(const AuthContext& a, const std::string& role) {
  return std::any_of(a.roles.begin(), a.roles.end(),
                     [&](auto& r) { return http::iequals(r, role); });
}

// keystoneauth: the reseller admin anywhere, a project's operators on its account.
bool is_owner(const Proxy& proxy, const Context& ctx, const std::string& account) {
  if (!ctx.auth) return false;
  if (has_role(*ctx.auth, proxy.settings.reseller_admin_role)) return true;
  if (account != proxy.settings.reseller_prefix + ctx.auth->project_id) return false;
  return std::any_of(proxy.settings.operator_roles.begin(), proxy.settings.operator_roles.end(),
                     [&](auto& role) { return has_role(*ctx.auth, role); });
}

bool is_reseller(const Proxy& proxy, const Context& ctx) {
  return ctx.auth && has_role(*ctx.auth, proxy.settings.reseller_admin_role);
}

std::string status_line(int status) { return std::to_string(status) + " " + status_title(status); }

std::string md5_hex(std::string_view data) { return Md5::of(data); }

bool true_value(std::string_view v) {
  for (auto* t : {"true", "1", "yes", "on", "t", "y"})
    if (http::iequals(v, t)) return true;
  return false;
}

SwiftPath object_path(const std::string& account, const std::string& container,
                      const std::string& object) {
  return SwiftPath{account, container, object, !container.empty(), !object.empty()};
}

namespace {
std::string path_of(const SwiftPath& p) {
  std::string out = "/v1/" + p.account;
  if (p.has_container) out += "/" + p.container;
  if (p.has_object) out += "/" + p.object;
  return out;
}
}  // namespace

SubRequest::SubRequest(const Request& parent, std::string method, SwiftPath path,
                       http::Headers headers, std::multimap<std::string, std::string> query)
    : ctx_{request_}, q_{parent.proxy, ctx_, std::move(path)} {
  request_.method = std::move(method);
  request_.path = path_of(q_.path);
  request_.target = encode_path(request_.path);
  char sep = '?';
  for (auto& [k, v] : query) {
    request_.target += sep + http::percent_encode(k) + "=" + http::percent_encode(v);
    sep = '&';
  }
  request_.query = std::move(query);
  request_.headers = std::move(headers);
  if (auto token = parent.ctx.request.headers.get("X-Auth-Token"))
    request_.headers.set("X-Auth-Token", std::string(*token));
  request_.remote_address = parent.ctx.request.remote_address;
  ctx_.auth = parent.ctx.auth;
  ctx_.request_id = parent.ctx.request_id;
  // A signature's grant replaces the token's rights, as tempurl's authorize override does.
  auto rights = on_path(parent, q_.path);
  q_.owner = rights.owner;
  q_.access = rights.access;
  q_.grant = parent.grant;
}

Request on_path(const Request& q, SwiftPath path) {
  Request out{q.proxy, q.ctx, std::move(path), false, AccountAccess::none, q.grant};
  out.owner = !q.grant && is_owner(q.proxy, q.ctx, out.path.account);
  if (out.path.account == q.path.account) {
    out.owner = out.owner || q.owner;
    out.access = q.access;
  }
  return out;
}

HeldRequest::HeldRequest(const Request& parent)
    : request_(parent.ctx.request), ctx_{request_}, q_{parent.proxy, ctx_, parent.path} {
  ctx_.auth = parent.ctx.auth;
  ctx_.request_id = parent.ctx.request_id;
  q_.owner = parent.owner;
  q_.access = parent.access;
  q_.grant = parent.grant;
}

[[noreturn]] void deny(const Context& ctx, const std::string& account) {
  if (!ctx.auth) {
    auto e = swift_error(401);
    e.headers.emplace_back("WWW-Authenticate", "Swift realm=\"" + account + "\"");
    throw e;
  }
  throw swift_error(403);
}

// A container ACL (X-Container-Read/Write) against the caller: project:user pairs (ids or names,
// * for any), role names; referrer entries (.r:*) let anyone read objects, .rlistings listings.
bool acl_allows(const std::string& acl, const Context& ctx, bool read, bool listing) {
  size_t start = 0;
  while (start <= acl.size()) {
    auto comma = acl.find(',', start);
    auto item = acl.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? acl.size() + 1 : comma + 1;
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) continue;
    if (read &&
        (item == ".r:*" || item == ".ref:*" || item == ".referer:*" || item == ".referrer:*")) {
      if (!listing) return true;
      continue;
    }
    if (read && listing && item == ".rlistings") {
      if (acl.find(".r:*") != std::string::npos) return true;
      continue;
    }
    if (item.front() != '.' && names_caller(item, ctx)) return true;
  }
  return false;
}

bool names_caller(const std::string& item, const Context& ctx) {
  if (!ctx.auth) return false;
  auto colon = item.find(':');
  if (colon == std::string::npos) return has_role(*ctx.auth, item);
  auto project = item.substr(0, colon), user = item.substr(colon + 1);
  bool project_ok =
      project == "*" || project == ctx.auth->project_id || project == ctx.auth->project_name;
  bool user_ok = user == "*" || user == ctx.auth->user_id || user == ctx.auth->user_name;
  return project_ok && user_ok;
}

// ---- account ACLs (X-Account-Access-Control, as tempauth keeps them) ----

using AccountAcl = std::map<std::string, std::vector<std::string>>;

// The header's JSON: an object of "admin", "read-write" and "read-only" lists of strings;
// Swift's 400 otherwise. An empty value is no ACL.
AccountAcl parse_account_acl(std::string_view text) {
  AccountAcl out;
  if (text.empty()) return out;
  auto invalid = [&](const std::string& why) {
    return swift_error(
        400, "X-Account-Access-Control invalid: " + why + "\n\nInput: " + std::string(text) + "\n");
  };
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) throw invalid("Syntax error in input ('" + std::string(text) + "')");
  for (auto& kv : v.as_object()) {
    std::string key(kv.key());
    if (key != "admin" && key != "read-write" && key != "read-only")
      throw invalid("Key \"" + key + "\" not recognized");
    if (!kv.value().is_array()) throw invalid("Value for key \"" + key + "\" must be a list");
    auto& list = out[key];
    for (auto& item : kv.value().as_array()) {
      if (!item.is_string()) throw invalid("Elements of \"" + key + "\" list must be strings");
      list.emplace_back(item.as_string());
    }
  }
  return out;
}

// Compact JSON with sorted keys, as Swift shows it; empty when the ACL grants nothing.
std::string account_acl_text(const AccountAcl& acl) {
  json::object o;
  bool any = false;
  for (auto& [key, list] : acl) {  // std::map: sorted
    json::array a;
    for (auto& item : list) a.emplace_back(json::string(item));
    any = any || !list.empty();
    o[key] = std::move(a);
  }
  return any ? json::serialize(o) : std::string();
}

// What the account's ACL gives the caller: admin makes it an owner, the others a level.
void apply_account_acl(Request& q) {
  if (q.owner || q.grant || !q.ctx.auth || q.path.account.empty()) return;
  auto info = account_info(q.proxy, q.path.account, false);
  auto text = info.headers.get("X-Account-Access-Control");
  if (!text || text->empty()) return;
  AccountAcl acl;
  try {
    acl = parse_account_acl(*text);
  } catch (const ApiError&) {
    return;  // stored before it was checked: grants nothing
  }
  auto listed = [&](const char* level) {
    auto it = acl.find(level);
    if (it == acl.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](auto& item) { return names_caller(item, q.ctx); });
  };
  if (listed("admin"))
    q.owner = true;
  else if (listed("read-write"))
    q.access = AccountAccess::read_write;
  else if (listed("read-only"))
    q.access = AccountAccess::read_only;
}

// Headers only owners may set (Swift's swift_owner_headers): dropped from others' requests.
void drop_owner_headers(Request& q) {
  if (q.owner) return;
  for (auto* h :
       {"X-Container-Read", "X-Container-Write", "X-Container-Sync-Key", "X-Container-Sync-To",
        "X-Remove-Container-Read", "X-Remove-Container-Write", "X-Account-Meta-Temp-Url-Key",
        "X-Account-Meta-Temp-Url-Key-2", "X-Container-Meta-Temp-Url-Key",
        "X-Container-Meta-Temp-Url-Key-2", "X-Account-Access-Control"})
    q.r().headers.remove(h);
}

// ---- metadata checks (constraints.check_metadata) ----

void check_metadata(const http::Request& r, const char* kind) {
  std::string prefix = std::string("x-") + kind + "-meta-";
  int count = 0;
  size_t total = 0;
  for (auto& [k, v] : r.headers.all()) {
    if (v.size() > 8192) throw swift_error(400, "Header value too long: " + k.substr(0, 128));
    if (k.size() < prefix.size() ||
        !http::iequals(std::string_view(k).substr(0, prefix.size()), prefix))
      continue;
    auto name = k.substr(prefix.size());
    if (name.empty()) throw swift_error(400, "Metadata name cannot be empty");
    if (name.size() > 128) throw swift_error(400, "Metadata name too long: " + prefix + name);
    if (v.size() > 256) throw swift_error(400, "Metadata value longer than 256: " + prefix + name);
    if (++count > 90) throw swift_error(400, "Too many metadata items; max 90");
    total += name.size() + v.size();
    if (total > 4096) throw swift_error(400, "Total metadata too large; max 4096");
  }
}

// Headers passed to the storage servers: metadata, the system headers, conditionals.
http::Headers pass_headers(const http::Request& r, const Timestamp& t) {
  http::Headers h;
  for (auto& [k, v] : r.headers.all()) {
    std::string_view key = k;
    if (http::iequals(key, "X-Auth-Token") || http::iequals(key, "Host") ||
        http::iequals(key, "Content-Length") || http::iequals(key, "Transfer-Encoding") ||
        http::iequals(key, "Connection") || http::iequals(key, "Expect") ||
        (key.size() > 10 && http::iequals(key.substr(0, 10), "X-Backend-")))
      continue;
    h.add(k, v);
  }
  h.set("X-Timestamp", t.internal());
  return h;
}

// ---- listings ----

std::string listing_format(const http::Request& r) {
  if (auto f = r.query_param("format")) {
    std::string v = *f;
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "json") return "application/json";
    if (v == "xml") return "application/xml";
    return "text/plain";
  }
  auto accept = r.headers.get_or("Accept");
  if (accept.find("application/json") != std::string::npos) return "application/json";
  if (accept.find("application/xml") != std::string::npos) return "application/xml";
  if (accept.find("text/xml") != std::string::npos) return "text/xml";
  return "text/plain";
}

http::Response render_listing(const http::Request& r, std::string rows_json, bool account,
                              const std::string& name) {
  auto type = listing_format(r);
  http::Response out;
  out.status = 200;
  out.headers.set("Content-Type", type + "; charset=utf-8");
  if (!r.query_param("format")) out.headers.set("Vary", "Accept");
  // SLO manifests are listed with their whole size (kept in their stored content type).
  bool manifests = !account && rows_json.find(";swift_bytes=") != std::string::npos;
  if (type == "application/json" && !manifests) {
    out.body = rows_json.empty() ? std::string("[]") : std::move(rows_json);
    return out;
  }
  boost::system::error_code ec;
  auto parsed = json::parse(rows_json.empty() ? "[]" : rows_json, ec);
  json::array rows = !ec && parsed.is_array() ? parsed.as_array() : json::array{};
  if (manifests)
    for (auto& row : rows)
      if (row.is_object()) slo::fix_listing_row(row.as_object());
  if (type == "application/json") {
    out.body = json::serialize(rows);
    return out;
  }
  auto str = [](const json::object& o, const char* k) -> std::string {
    auto* v = o.if_contains(k);
    if (!v) return "";
    if (v->is_string()) return std::string(v->as_string());
    return json::serialize(*v);
  };
  if (type == "text/plain") {
    for (auto& row : rows) {
      auto& o = row.as_object();
      out.body += o.contains("subdir") ? str(o, "subdir") : str(o, "name");
      out.body += '\n';
    }
    if (out.body.empty()) out.status = 204;
    return out;
  }
  const char* root = account ? "account" : "container";
  out.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<" + std::string(root) + " name=\"" +
             http::escape_markup(name) + "\"";
  if (rows.empty() && !account) {
    out.body += " />";
    return out;
  }
  out.body += account ? ">\n" : ">";
  for (auto& row : rows) {
    auto& o = row.as_object();
    if (o.contains("subdir")) {
      auto d = http::escape_markup(str(o, "subdir"));
      out.body += account ? "<subdir name=\"" + d + "\" />"
                          : "<subdir name=\"" + d + "\"><name>" + d + "</name></subdir>";
    } else if (account) {
      out.body += "<container><name>" + http::escape_markup(str(o, "name")) + "</name><count>" +
                  str(o, "count") + "</count><bytes>" + str(o, "bytes") +
                  "</bytes><last_modified>" + str(o, "last_modified") +
                  "</last_modified></container>";
    } else {
      out.body += "<object><name>" + http::escape_markup(str(o, "name")) + "</name><hash>" +
                  str(o, "hash") + "</hash><bytes>" + str(o, "bytes") + "</bytes><content_type>" +
                  http::escape_markup(str(o, "content_type")) + "</content_type><last_modified>" +
                  str(o, "last_modified") + "</last_modified></object>";
    }
    if (account) out.body += "\n";
  }
  out.body += "</" + std::string(root) + ">";
  return out;
}

std::string listing_query(const http::Request& r, bool container) {
  std::string q = "format=json";
  auto add = [&](const char* k, const std::string& v) {
    q += std::string("&") + k + "=" + http::percent_encode(v);
  };
  if (auto v = r.query_param("limit")) {
    long limit = 10000;
    bool digits = !v->empty() && std::all_of(v->begin(), v->end(), ::isdigit);
    if (digits) {
      if (v->size() > 6 || std::stol(*v) > 10000) throw swift_error(412, "Maximum limit is 10000");
      limit = std::stol(*v);
    }
    add("limit", std::to_string(limit));
  }
  for (auto* k : {"marker", "end_marker", "prefix", "delimiter", "reverse"})
    if (auto v = r.query_param(k)) {
      if (!http::valid_utf8(*v))
        throw swift_error(400, std::string("\"") + k + "\" parameter not valid UTF-8");
      add(k, *v);
    }
  if (container)
    if (auto path = r.query_param("path")) {
      auto prefix = *path;
      while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
      if (!prefix.empty()) prefix += '/';
      add("prefix", prefix);
      add("delimiter", "/");
    }
  return q;
}

void copy_headers(http::Response& out, const http::Headers& from) {
  for (auto& [k, v] : from.all()) {
    std::string_view key = k;
    if ((key.size() > 10 && http::iequals(key.substr(0, 10), "X-Backend-")) ||
        http::iequals(key, "Content-Length") || http::iequals(key, "Transfer-Encoding") ||
        http::iequals(key, "Connection") || http::iequals(key, "Date") ||
        http::iequals(key, "X-Openstack-Request-Id") || http::iequals(key, "Server"))
      continue;
    out.headers.set(k, v);
  }
}

// ---- accounts ----

Reply account_put(Request& q) {
  auto part = q.proxy.account_ring()->partition_of_hash(
      hash_path(q.proxy.settings.hash_prefix, q.proxy.settings.hash_suffix, q.path.account));
  auto t = Timestamp::now();
  auto replies = fan_out(
      q.proxy, *q.proxy.account_ring(), part,
      [&](const Device& d) { return backend_target("account", d, part, q.path, false, false); },
      "PUT",
      [&](size_t) {
        http::Headers h;
        h.set("X-Timestamp", t.internal());
        return h;
      });
  auto reply = best(std::move(replies), q.proxy.account_ring()->replicas());
  if (reply.status / 100 == 2) q.proxy.remember_account(q.path.account);
  return reply;
}

void ensure_account(Request& q) {
  if (q.proxy.account_known(q.path.account)) return;
  auto reply = account_put(q);
  if (reply.status / 100 != 2) throw swift_error(503);
}

http::Response account_request(Request& q) {
  auto& r = q.r();
  bool reading = r.method == "GET" || r.method == "HEAD";
  if (!q.owner && !(reading && q.access != AccountAccess::none)) deny(q.ctx, q.path.account);
  if (q.path.account.size() > 256)
    throw swift_error(400, "Account name length of " + std::to_string(q.path.account.size()) +
                               " longer than 256");
  if (r.method == "PUT" || r.method == "DELETE") {
    auto e = swift_error(405);
    e.headers.emplace_back("Allow", "HEAD, GET, POST");
    throw e;
  }
  auto part = q.proxy.account_ring()->partition_of_hash(
      hash_path(q.proxy.settings.hash_prefix, q.proxy.settings.hash_suffix, q.path.account));
  if (r.method == "POST") {
    check_metadata(r, "account");
    if (auto acl = r.headers.get("X-Account-Access-Control")) parse_account_acl(*acl);
    ensure_account(q);
    auto t = Timestamp::now();
    auto replies = fan_out(
        q.proxy, *q.proxy.account_ring(), part,
        [&](const Device& d) { return backend_target("account", d, part, q.path, false, false); },
        "POST",
        [&](size_t) {
          auto h = pass_headers(r, t);
          if (auto acl = r.headers.get("X-Account-Access-Control"))
            h.set("X-Account-Access-Control", account_acl_text(parse_account_acl(*acl)));
          return h;
        });
    q.proxy.forget_account(q.path.account);
    auto reply = best(std::move(replies), q.proxy.account_ring()->replicas());
    if (reply.status >= 400) throw swift_error(reply.status);
    return empty(204);
  }
  bool head = r.method == "HEAD";
  auto query = head ? std::string() : listing_query(r, false);
  auto source = read_from(
      q.proxy, *q.proxy.account_ring(), part,
      [&](const Device& d) {
        return backend_target("account", d, part, q.path, false, false, query);
      },
      head ? "HEAD" : "GET", {}, false);
  http::Response out;
  if (source.status == 404) {
    // An account never written: empty, as Swift's autocreate answers.
    auto now = Timestamp::now().normal();
    out = head ? empty(200, "text/plain; charset=utf-8")
               : render_listing(r, "[]", true, q.path.account);
    if (head) out.headers.set("Content-Type", listing_format(r) + "; charset=utf-8");
    out.headers.set("X-Account-Container-Count", "0");
    out.headers.set("X-Account-Object-Count", "0");
    out.headers.set("X-Account-Bytes-Used", "0");
    out.headers.set("X-Timestamp", now);
    out.headers.set("X-Put-Timestamp", now);
    return out;
  }
  if (source.status / 100 != 2) throw swift_error(source.status);
  auto body = head ? std::string() : source.request->read_all();
  if (head) {
    out = empty(204);
    out.headers.set("Content-Type", listing_format(r) + "; charset=utf-8");
  } else {
    out = render_listing(r, std::move(body), true, q.path.account);
  }
  copy_headers(out, source.headers);
  out.headers.remove("X-Put-Timestamp");
  out.headers.set("Content-Type", listing_format(r) + "; charset=utf-8");
  out.headers.set("Accept-Ranges", "bytes");
  if (out.headers.get_or("X-Account-Container-Count", "0") != "0") {
    // One storage policy: its usage is the account's.
    std::string policy = std::string("X-Account-Storage-Policy-") + kPolicy;
    out.headers.set(policy + "-Container-Count", out.headers.get_or("X-Account-Container-Count"));
    out.headers.set(policy + "-Object-Count", out.headers.get_or("X-Account-Object-Count"));
    out.headers.set(policy + "-Bytes-Used", out.headers.get_or("X-Account-Bytes-Used"));
  }
  if (!q.owner) out.headers.remove("X-Account-Access-Control");
  return out;
}

// ---- containers ----

std::uint32_t container_part(Proxy& proxy, const SwiftPath& p) {
  return proxy.container_ring()->partition_of_hash(
      hash_path(proxy.settings.hash_prefix, proxy.settings.hash_suffix, p.account, p.container));
}

Proxy::ContainerInfo container_info(Proxy& proxy, const SwiftPath& p, bool fresh) {
  auto key = p.account + "/" + p.container;
  if (!fresh)
    if (auto cached = proxy.cached_container(key)) return *cached;
  auto part = container_part(proxy, p);
  auto source = read_from(
      proxy, *proxy.container_ring(), part,
      [&](const Device& d) { return backend_target("container", d, part, p, true, false); }, "HEAD",
      {}, false);
  Proxy::ContainerInfo info;
  info.status = source.status / 100 == 2 ? 204 : source.status;
  info.headers = source.headers;
  if (info.status == 204 || info.status == 404) proxy.cache_container(key, info);
  return info;
}

Proxy::ContainerInfo account_info(Proxy& proxy, const std::string& account, bool fresh) {
  if (!fresh)
    if (auto cached = proxy.cached_account(account)) return *cached;
  auto part = proxy.account_ring()->partition_of_hash(
      hash_path(proxy.settings.hash_prefix, proxy.settings.hash_suffix, account));
  SwiftPath p{account, "", "", false, false};
  auto source = read_from(
      proxy, *proxy.account_ring(), part,
      [&](const Device& d) { return backend_target("account", d, part, p, false, false); }, "HEAD",
      {}, false);
  Proxy::ContainerInfo info;
  info.status = source.status / 100 == 2 ? 204 : source.status;
  info.headers = source.headers;
  if (info.status == 204 || info.status == 404) proxy.cache_account(account, info);
  return info;
}

std::optional<std::string> container_listing(Proxy& proxy, const SwiftPath& container,
                                             const std::string& query) {
  auto part = container_part(proxy, container);
  auto source = read_from(
      proxy, *proxy.container_ring(), part,
      [&](const Device& d) {
        return backend_target("container", d, part, container, true, false, query);
      },
      "GET", {}, false);
  if (source.status / 100 != 2) return std::nullopt;
  return source.request->read_all();
}

http::Response container_request(Request& q) {
  auto& r = q.r();
  auto& p = q.path;
  if (p.container.size() > 256)
    throw swift_error(
        400, "Container name length of " + std::to_string(p.container.size()) + " longer than 256");
  auto part = container_part(q.proxy, p);
  auto key = p.account + "/" + p.container;
  auto target = [&](const Device& d) {
    return backend_target("container", d, part, p, true, false);
  };
  if (r.method == "GET" || r.method == "HEAD") {
    if (!q.owner && q.access == AccountAccess::none) {
      auto info = container_info(q.proxy, p);
      if (info.status == 404 && !q.ctx.auth) deny(q.ctx, p.account);
      if (!acl_allows(std::string(info.headers.get_or("X-Container-Read")), q.ctx, true, true))
        deny(q.ctx, p.account);
    }
    bool head = r.method == "HEAD";
    auto query = head ? std::string() : listing_query(r, true);
    auto source = read_from(
        q.proxy, *q.proxy.container_ring(), part,
        [&](const Device& d) {
          return backend_target("container", d, part, p, true, false, query);
        },
        head ? "HEAD" : "GET", {}, false);
    if (source.status / 100 != 2) throw swift_error(source.status == 503 ? 503 : source.status);
    http::Response out;
    if (head) {
      out = empty(204);
    } else {
      out = render_listing(r, source.request->read_all(), false, p.container);
    }
    copy_headers(out, source.headers);
    out.headers.remove("X-Put-Timestamp");
    out.headers.set("Content-Type", listing_format(r) + "; charset=utf-8");
    out.headers.set("Accept-Ranges", "bytes");
    out.headers.set("X-Storage-Policy", kPolicy);
    if (!q.owner) {
      out.headers.remove("X-Container-Read");
      out.headers.remove("X-Container-Write");
    }
    return out;
  }
  if (!q.owner && q.access != AccountAccess::read_write) deny(q.ctx, p.account);
  drop_owner_headers(q);
  auto t = Timestamp::now();
  if (r.method == "PUT" || r.method == "POST") {
    // Legacy versioned writes: one archive container, named without slashes.
    auto versions = r.headers.get_or("X-Versions-Location");
    auto history = r.headers.get_or("X-History-Location");
    if (!versions.empty() && !history.empty())
      throw swift_error(400,
                        "Only one of X-Versions-Location or X-History-Location may be specified");
    if (versions.find('/') != std::string::npos || history.find('/') != std::string::npos)
      throw swift_error(412, "Container name cannot contain slashes");
  }
  if (r.method == "PUT") {
    if (p.container.find('/') != std::string::npos) throw swift_error(400, "Bad URL");
    check_metadata(r, "container");
    ensure_account(q);
    auto account_part = q.proxy.account_ring()->partition_of_hash(
        hash_path(q.proxy.settings.hash_prefix, q.proxy.settings.hash_suffix, p.account));
    auto accounts = q.proxy.account_ring()->primaries(account_part);
    auto replies = fan_out(q.proxy, *q.proxy.container_ring(), part, target, "PUT", [&](size_t i) {
      auto h = pass_headers(r, t);
      if (!accounts.empty()) {
        auto& a = accounts[i % accounts.size()];
        h.set("X-Account-Host", a.ip + ":" + std::to_string(a.port));
        h.set("X-Account-Device", a.device);
        h.set("X-Account-Partition", std::to_string(account_part));
      }
      return h;
    });
    q.proxy.forget_container(key);
    auto reply = best(std::move(replies), q.proxy.container_ring()->replicas());
    if (reply.status >= 400) throw swift_error(reply.status);
    return empty(reply.status == 202 ? 202 : 201);
  }
  if (r.method == "POST") {
    check_metadata(r, "container");
    auto replies = fan_out(q.proxy, *q.proxy.container_ring(), part, target, "POST",
                           [&](size_t) { return pass_headers(r, t); });
    q.proxy.forget_container(key);
    return from_reply(best(std::move(replies), q.proxy.container_ring()->replicas())).status == 204
               ? empty(204)
               : empty(204);
  }
  if (r.method == "DELETE") {
    auto replies = fan_out(q.proxy, *q.proxy.container_ring(), part, target, "DELETE",
                           [&](size_t) { return pass_headers(r, t); });
    q.proxy.forget_container(key);
    auto reply = best(std::move(replies), q.proxy.container_ring()->replicas());
    if (reply.status >= 400) throw swift_error(reply.status);
    return empty(204);
  }
  throw swift_error(405);
}

// ---- objects ----

std::uint32_t object_part(Proxy& proxy, const SwiftPath& p) {
  return proxy.object_ring()->partition_of_hash(hash_path(
      proxy.settings.hash_prefix, proxy.settings.hash_suffix, p.account, p.container, p.object));
}

// Object writes carry, for each replica, the container replica it updates.
http::Headers with_container_update(Proxy& proxy, const SwiftPath& p, http::Headers h, size_t i) {
  auto cpart = container_part(proxy, p);
  auto containers = proxy.container_ring()->primaries(cpart);
  if (!containers.empty()) {
    auto& c = containers[i % containers.size()];
    h.set("X-Container-Host", c.ip + ":" + std::to_string(c.port));
    h.set("X-Container-Device", c.device);
    h.set("X-Container-Partition", std::to_string(cpart));
  }
  return h;
}

std::vector<http::Headers> replica_headers(Proxy& proxy, const SwiftPath& p,
                                           const http::Headers& base) {
  std::vector<http::Headers> headers;
  for (size_t i = 0; i < proxy.object_ring()->replicas(); ++i)
    headers.push_back(with_container_update(proxy, p, base, i));
  return headers;
}

void authorize_object(Request& q, bool read) {
  if (q.owner || q.access == AccountAccess::read_write ||
      (read && q.access == AccountAccess::read_only))
    return;
  if (q.grant) {
    if (q.grant->account == q.path.account &&
        (q.grant->container.empty() || q.grant->container == q.path.container))
      return;
    auto e = swift_error(401);
    e.headers.emplace_back("WWW-Authenticate", "Swift realm=\"" + q.path.account + "\"");
    throw e;
  }
  auto info = container_info(q.proxy, q.path);
  auto acl = info.headers.get_or(read ? "X-Container-Read" : "X-Container-Write");
  if (!acl_allows(std::string(acl), q.ctx, read, false)) deny(q.ctx, q.path.account);
}

void require_container(Request& q) {
  if (container_info(q.proxy, q.path).status != 204) throw swift_error(404);
}

void normalise_expiry(http::Headers& h) {
  if (auto after = h.get("X-Delete-After")) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(after->data(), after->data() + after->size(), n);
    if (ec != std::errc() || ptr != after->data() + after->size())
      throw swift_error(400, "Non-integer X-Delete-After");
    if (n <= 0) throw swift_error(400, "X-Delete-After in past");
    h.remove("X-Delete-After");
    h.set("X-Delete-At", std::to_string(Timestamp::now().raw / 100000 + n));
  }
  if (auto at = h.get("X-Delete-At")) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(at->data(), at->data() + at->size(), n);
    if (ec != std::errc() || ptr != at->data() + at->size())
      throw swift_error(400, "Non-integer X-Delete-At");
    if (n <= Timestamp::now().raw / 100000) throw swift_error(400, "X-Delete-At in past");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%010lld", static_cast<long long>(n));
    h.set("X-Delete-At", buf);
  }
}

// An object PUT streamed to every replica as it arrives; answered once a quorum has it.
class PutSink : public http::BodySink {
 public:
  PutSink(Proxy& proxy, SwiftPath p, std::vector<http::Headers> headers,
          std::optional<std::uint64_t> length, Timestamp t)
      : proxy_(proxy), p_(std::move(p)), t_(t) {
    auto part = object_part(proxy, p_);
    auto nodes = nodes_for(*proxy.object_ring(), part);
    size_t next = proxy.object_ring()->replicas();
    for (size_t i = 0; i < proxy.object_ring()->replicas() && i < nodes.size(); ++i) {
      size_t at = i;
      for (;;) {
        auto r = std::make_unique<BackendRequest>(
            proxy.pool, nodes[at].device.ip, nodes[at].device.port, proxy.settings.node_timeout);
        try {
          r->start("PUT", backend_target("object", nodes[at].device, part, p_, true, true),
                   headers[i], length);
          puts_.push_back(std::move(r));
          break;
        } catch (const BackendError& e) {
          spdlog::warn("object proxy: PUT {}: {}", r->where(), e.what());
          if (next >= nodes.size()) break;
          at = next++;
        }
      }
    }
    if (static_cast<int>(puts_.size()) < quorum(proxy.object_ring()->replicas()))
      throw swift_error(503);
    // Replicas on a storage server in this process take the md5 from here: one hash of the
    // body instead of one per replica (those over sockets hash what they receive, as Swift's do).
    // The hash runs on a queue of that server's threads, beside the reading and the writing
    // (on the reading thread it was half of a large PUT's time).
    LocalServer::Post queue;
    for (auto& r : puts_)
      if (r->takes_md5() && !queue) queue = r->local_queue();
    if (queue) {
      md5_state_ = std::make_shared<Md5>();
      md5_.emplace(std::move(queue), [md5 = md5_state_](const std::string& b) { md5->update(b); });
    }
  }
  void write(std::string_view chunk) override {
    // Replicas in this process share one copy of the bytes.
    std::shared_ptr<const std::string> shared;
    if (md5_) {
      shared = std::make_shared<const std::string>(chunk);
      md5_->push(shared);
    }
    for (auto& r : puts_) {
      if (!r) continue;
      try {
        if (shared)
          r->write(shared);
        else
          r->write(chunk);
      } catch (const BackendError& e) {
        spdlog::warn("object proxy: PUT {}: {}", r->where(), e.what());
        r.reset();
      }
    }
    if (live() < quorum(proxy_.object_ring()->replicas())) throw swift_error(503);
  }
  http::Response finish() override {
    std::string md5;
    if (md5_) {
      md5_->drain();
      md5 = md5_state_->hex();
    }
    // Every replica ends its body before any answer is awaited, so that they commit side by
    // side.
    for (auto& r : puts_)
      if (r) try {
          r->finish(md5);
        } catch (const BackendError& e) {
          spdlog::warn("object proxy: PUT {}: {}", r->where(), e.what());
          r.reset();
        }
    // The write is acknowledged once a quorum has it (durably): a replica still syncing is not
    // waited for, and finishes on its own (its storage server completes a whole body).
    std::vector<Reply> replies;
    int stored = 0, needed = quorum(proxy_.object_ring()->replicas());
    for (auto& r : puts_) {
      if (stored >= needed) break;
      Reply reply;
      if (r) try {
          reply.status = r->status();
          reply.headers = r->headers();
          r->read_all();
        } catch (const BackendError& e) {
          spdlog::warn("object proxy: PUT {}: {}", r->where(), e.what());
        }
      if (reply.status == 201) ++stored;
      replies.push_back(std::move(reply));
    }
    // An equal or newer write already there (409): this one is superseded, as Swift answers.
    if (std::any_of(replies.begin(), replies.end(), [](auto& r) { return r.status == 409; }))
      return empty(202);
    auto reply = best(replies, proxy_.object_ring()->replicas());
    if (reply.status >= 400 && reply.status != 503) throw swift_error(reply.status);
    if (reply.status / 100 != 2) throw swift_error(503);
    std::set<std::string> etags;
    for (auto& r : replies)
      if (r.status == 201) etags.insert(std::string(r.headers.get_or("ETag")));
    if (etags.size() > 1) throw swift_error(500);
    auto out = empty(201);
    out.headers.set("ETag", *etags.begin());
    out.headers.set("Last-Modified", http_date(t_.ceil_seconds()));
    return out;
  }
  void abort() noexcept override { puts_.clear(); }

 private:
  int live() const {
    return static_cast<int>(
        std::count_if(puts_.begin(), puts_.end(), [](auto& r) { return r != nullptr; }));
  }
  Proxy& proxy_;
  SwiftPath p_;
  Timestamp t_;
  std::vector<std::unique_ptr<BackendRequest>> puts_;
  // Set when some replica takes the md5 from here: the hash, and the queue that feeds it.
  std::shared_ptr<Md5> md5_state_;
  std::optional<ChunkLane> md5_;
};

PutPlan plan_put(Request& q) {
  auto& r = q.r();
  authorize_object(q, false);
  if (q.path.object.size() > 1024)
    throw swift_error(
        400, "Object name length of " + std::to_string(q.path.object.size()) + " longer than 1024");
  std::optional<std::uint64_t> length;
  bool chunked = http::iequals(r.headers.get_or("Transfer-Encoding"), "chunked");
  if (!chunked) {
    auto cl = r.headers.get("Content-Length");
    if (!cl) throw swift_error(411, "Missing Content-Length header.");
    std::int64_t v = -1;
    auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), v);
    if (ec != std::errc() || v < 0) throw swift_error(400, "Invalid Content-Length");
    length = static_cast<std::uint64_t>(v);
    if (*length > q.proxy.settings.max_file_size)
      throw swift_error(413, "Your request is too large.");
  }
  quotas::check_object_put(q, length.value_or(0));
  if (auto inm = r.headers.get("If-None-Match"); inm && *inm != "*")
    throw swift_error(400, "If-None-Match only supports *");
  check_metadata(r, "object");
  // swift_* parameters are the proxy's own (a large object's size and ETag).
  if (auto type = r.headers.get("Content-Type"))
    for (auto at = type->find(';'); at != std::string_view::npos; at = type->find(';', at + 1)) {
      auto param = type->substr(at + 1);
      while (!param.empty() && param.front() == ' ') param.remove_prefix(1);
      if (param.starts_with("swift_"))
        throw swift_error(400, "Invalid Content-Type, swift_* is not a valid parameter name.");
    }
  require_container(q);
  PutPlan plan;
  plan.length = length;
  plan.timestamp = Timestamp::now();
  auto& base = plan.headers;
  base = pass_headers(r, plan.timestamp);
  if (base.get_or("Content-Type").empty() ||
      http::iequals(base.get_or("X-Detect-Content-Type"), "true"))
    base.set("Content-Type", "application/octet-stream");
  normalise_expiry(base);
  if (auto manifest = base.get("X-Object-Manifest")) {
    auto slash = manifest->find('/');
    if (slash == std::string_view::npos || slash == 0 || manifest->front() == '/' ||
        manifest->find_first_of("?&") != std::string_view::npos)
      throw swift_error(400, "X-Object-Manifest must be in the format container/prefix");
  }
  return plan;
}

std::unique_ptr<http::BodySink> start_put(Request& q, const PutPlan& plan) {
  return std::make_unique<PutSink>(q.proxy, q.path, replica_headers(q.proxy, q.path, plan.headers),
                                   plan.length, plan.timestamp);
}

// ---- legacy versioned writes (X-Versions-Location: stack, X-History-Location: history) ----

struct Versioning {
  std::string archive;  // the archive container
  bool history = false;
};

std::optional<Versioning> versioning_of(Request& q) {
  auto info = container_info(q.proxy, q.path);
  if (auto v = info.headers.get("X-Versions-Location"); v && !v->empty())
    return Versioning{std::string(*v), false};
  if (auto v = info.headers.get("X-History-Location"); v && !v->empty())
    return Versioning{std::string(*v), true};
  return std::nullopt;
}

// Archived versions of an object live under "<length of its name, 3 hex digits><name>/".
std::string version_prefix(const std::string& object) {
  char length[16];
  std::snprintf(length, sizeof length, "%03zx", object.size());
  return length + object + "/";
}

http::Response copy_object(Request& q, const SwiftPath& src, const SwiftPath& dest);

// A version that could not be kept stops the write as Swift's versioned_writes stops it: 412
// when the archive refused it (missing, not writable), 503 otherwise.
ApiError versioning_failed(const ApiError& e) {
  return swift_error(e.status() / 100 == 4 ? 412 : 503);
}

// The object's current version copied into the archive, named by its timestamp.
void archive_current(Request& q, const Versioning& v) {
  auto current = read_object(q.proxy, q.path, "HEAD", {});
  if (current.status != 200) return;
  auto stamp = Timestamp::parse(current.headers.get_or("X-Timestamp"));
  if (!stamp) return;
  SwiftPath archived =
      object_path(q.path.account, v.archive, version_prefix(q.path.object) + stamp->normal());
  SubRequest copy(q, "COPY", q.path);
  copy.q().owner = q.owner;
  try {
    copy_object(copy.q(), q.path, archived);
  } catch (const ApiError& e) {
    throw versioning_failed(e);
  }
}

// History mode's delete marker: a zero-byte object in the archive named by the time of the
// delete, with Swift's marker type. Pre-authorized as Swift's is (the DELETE was authorized).
void write_delete_marker(Request& q, const Versioning& v) {
  PutPlan plan;
  plan.length = 0;
  plan.timestamp = Timestamp::now();
  http::Headers h;
  h.set("Content-Length", "0");
  SubRequest put(q, "PUT",
                 object_path(q.path.account, v.archive,
                             version_prefix(q.path.object) + plan.timestamp.internal()),
                 std::move(h));
  auto& m = put.q();
  m.owner = true;
  try {
    require_container(m);
    plan.headers = pass_headers(m.r(), plan.timestamp);
    plan.headers.set("Content-Type", "application/x-deleted;swift_versions_deleted=1");
    auto response = start_put(m, plan)->finish();
    if (response.status / 100 == 2) return;
    throw swift_error(response.status);
  } catch (const ApiError& e) {
    throw versioning_failed(e);
  }
}

std::unique_ptr<http::BodySink> object_put(Request& q) {
  auto plan = plan_put(q);
  if (auto v = versioning_of(q)) archive_current(q, *v);
  return start_put(q, plan);
}

// A DELETE in a versioned container: stack mode puts the newest archived version back (and
// removes it from the archive); history mode archives the current version first. nullopt when
// the container keeps no versions or the archive has none (a plain delete follows).
std::optional<http::Response> versioned_delete(Request& q) {
  auto v = versioning_of(q);
  if (!v) return std::nullopt;
  if (v->history) {
    archive_current(q, *v);
    write_delete_marker(q, *v);
    return std::nullopt;
  }
  SwiftPath archive{q.path.account, v->archive, "", true, false};
  auto listing = container_listing(q.proxy, archive,
                                   "format=json&reverse=on&limit=1&prefix=" +
                                       http::percent_encode(version_prefix(q.path.object)));
  if (!listing) return std::nullopt;
  boost::system::error_code ec;
  auto rows = json::parse(*listing, ec);
  if (ec || !rows.is_array() || rows.as_array().empty()) return std::nullopt;
  auto* name = rows.as_array()[0].as_object().if_contains("name");
  if (!name || !name->is_string()) return std::nullopt;
  auto newest = object_path(q.path.account, v->archive, std::string(name->as_string()));
  {
    SubRequest copy(q, "COPY", newest);
    copy.q().owner = q.owner;
    copy_object(copy.q(), newest, q.path);
  }
  SubRequest remove(q, "DELETE", newest);
  remove.q().owner = q.owner;
  object_write(remove.q());
  return empty(204);
}

// ---- server-side copies (COPY and PUT with X-Copy-From) ----

// "container/object" (leading slash allowed, percent-encoded) or nullopt.
std::optional<std::pair<std::string, std::string>> copy_location(std::string_view value) {
  std::string decoded;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() &&
        std::isxdigit(static_cast<unsigned char>(value[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(value[i + 2]))) {
      decoded += static_cast<char>(std::stoi(std::string(value.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      decoded += value[i];
    }
  }
  if (!decoded.empty() && decoded.front() == '/') decoded.erase(0, 1);
  auto slash = decoded.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= decoded.size()) return std::nullopt;
  return std::pair(decoded.substr(0, slash), decoded.substr(slash + 1));
}

// Copies src to dest through the proxy (read from a source replica, written to the destination's
// replicas at a quorum), the request's headers over the source's unless X-Fresh-Metadata.
http::Response copy_object(Request& q, const SwiftPath& src, const SwiftPath& dest) {
  auto& r = q.r();
  Request from = on_path(q, src);
  Request to = on_path(q, dest);
  authorize_object(from, true);
  authorize_object(to, false);
  require_container(from);
  require_container(to);
  check_metadata(r, "object");
  auto source = read_object(q.proxy, src, "GET", {});
  if (source.status != 200) throw swift_error(source.status);
  std::shared_ptr<http::BodySource> body;
  std::uint64_t length = 0;
  bool large = slo::is_slo(source.headers) || source.headers.get("X-Object-Manifest");
  if (large && r.query_param("multipart-manifest") != "get") {
    // A large object is copied as its assembled bytes, into a plain object.
    source.request.reset();
    SubRequest whole(from, "GET", src);
    auto got = object_get(whole.q());
    body = got.stream;
    source.headers = got.headers;
    source.headers.remove("X-Static-Large-Object");
    source.headers.remove("X-Object-Manifest");
    auto cl = got.headers.get_or("Content-Length", "0");
    std::from_chars(cl.data(), cl.data() + cl.size(), length);
  } else {
    auto cl = source.headers.get_or("Content-Length", "0");
    std::from_chars(cl.data(), cl.data() + cl.size(), length);
    body = stream_of(std::move(source.request));
  }
  quotas::check_object_put(to, length);
  auto t = Timestamp::now();
  http::Headers base;
  bool fresh = http::iequals(r.headers.get_or("X-Fresh-Metadata"), "true");
  auto carried = [](std::string_view k) {
    return (k.size() > 14 && http::iequals(k.substr(0, 14), "X-Object-Meta-")) ||
           is_object_system_header(k);
  };
  if (!fresh)
    for (auto& [k, v] : source.headers.all())
      if (carried(k)) base.set(k, v);
  base.set("Content-Type", source.headers.get_or("Content-Type", "application/octet-stream"));
  for (auto& [k, v] : r.headers.all())
    if ((carried(k) && !http::iequals(k, "X-Static-Large-Object")) ||
        http::iequals(k, "Content-Type"))
      base.set(k, v);
  // Empty user metadata in the request removes the copied key.
  base.set("X-Timestamp", t.internal());
  normalise_expiry(base);
  PutSink sink(q.proxy, dest, replica_headers(q.proxy, dest, base), length, t);
  for (auto chunk = body->next(1 << 20); !chunk.empty(); chunk = body->next(1 << 20))
    sink.write(chunk);
  auto out = sink.finish();
  out.headers.set("X-Copied-From", encode_path(src.container + "/" + src.object));
  out.headers.set("X-Copied-From-Account", encode_path(src.account));
  out.headers.set("X-Copied-From-Last-Modified", source.headers.get_or("Last-Modified"));
  for (auto& [k, v] : base.all())
    if (carried(k)) out.headers.set(k, v);
  return out;
}

// COPY with Destination (and Destination-Account).
http::Response object_copy_verb(Request& q) {
  auto destination = q.r().headers.get("Destination");
  if (!destination) throw swift_error(412, "Destination header required");
  auto where = copy_location(*destination);
  if (!where)
    throw swift_error(412, "Destination header must be of the form <container name>/<object name>");
  SwiftPath dest{std::string(q.r().headers.get_or("Destination-Account", q.path.account)),
                 where->first, where->second, true, true};
  return copy_object(q, q.path, dest);
}

// The answer of a PUT whose work was done before its (empty) body arrived.
class DoneSink : public http::BodySink {
 public:
  explicit DoneSink(http::Response r) : r_(std::move(r)) {}
  void write(std::string_view chunk) override { bytes_ += chunk.size(); }
  http::Response finish() override {
    if (bytes_) throw swift_error(400, "Copy requests require a zero byte body");
    return std::move(r_);
  }

 private:
  http::Response r_;
  size_t bytes_ = 0;
};

std::unique_ptr<http::BodySink> object_put_or_copy(Request& q) {
  auto from = q.r().headers.get("X-Copy-From");
  if (!from) return object_put(q);
  auto where = copy_location(*from);
  if (!where)
    throw swift_error(412, "X-Copy-From header must be of the form <container name>/<object name>");
  SwiftPath src{std::string(q.r().headers.get_or("X-Copy-From-Account", q.path.account)),
                where->first, where->second, true, true};
  return std::make_unique<DoneSink>(copy_object(q, src, q.path));
}

class BackendSource : public http::BodySource {
 public:
  explicit BackendSource(std::unique_ptr<BackendRequest> r) : r_(std::move(r)) {}
  std::string next(size_t max) override { return r_->read(max); }
  std::optional<FileSpan> file_span() override { return r_->file_span(); }

 private:
  std::unique_ptr<BackendRequest> r_;
};

std::shared_ptr<http::BodySource> stream_of(std::unique_ptr<BackendRequest> r) {
  return std::make_shared<BackendSource>(std::move(r));
}

Source read_object(Proxy& proxy, const SwiftPath& p, const std::string& method,
                   const http::Headers& headers) {
  auto part = object_part(proxy, p);
  return read_from(
      proxy, *proxy.object_ring(), part,
      [&](const Device& d) { return backend_target("object", d, part, p, true, true); }, method,
      headers, true);
}

namespace {
bool is_large(const http::Headers& h) {
  return slo::is_slo(h) || h.get("X-Object-Manifest").has_value();
}
}  // namespace

constexpr std::uint64_t kSmallBody = 64 * 1024;

http::Response object_get(Request& q) {
  auto& r = q.r();
  authorize_object(q, true);
  bool manifest_get = r.query_param("multipart-manifest") == "get";
  http::Headers h;
  for (auto* name :
       {"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"})
    if (auto v = r.headers.get(name)) h.set(name, std::string(*v));
  auto source = read_object(q.proxy, q.path, r.method, h);
  if (!manifest_get && !h.all().empty()) {
    // The storage server answers Range and conditionals on the bytes it stores; a large
    // object's are answered on the assembled whole, so it is read again without them.
    bool again = false;
    if (source.status == 412 || source.status == 416) {
      auto head = read_object(q.proxy, q.path, "HEAD", {});
      again = head.status == 200 && is_large(head.headers);
    } else if ((source.status == 206 || source.status == 304) && is_large(source.headers)) {
      again = true;
    }
    if (again) source = read_object(q.proxy, q.path, r.method, {});
  }
  if (source.status / 100 != 2 && source.status != 304) {
    auto e = swift_error(source.status);
    if (source.status == 416)
      e.headers.emplace_back("Content-Range", source.headers.get_or("Content-Range"));
    throw e;
  }
  http::Response out;
  out.status = source.status;
  copy_headers(out, source.headers);
  if (source.status == 200 && slo::is_slo(source.headers)) {
    if (manifest_get) return slo::manifest(q, std::move(source), std::move(out));
    return slo::assembled(q, std::move(source), std::move(out));
  }
  if (auto manifest = source.headers.get("X-Object-Manifest");
      manifest && source.status == 200 && !manifest_get) {
    std::string etag;
    auto pieces = dlo_pieces(q, *manifest, etag);
    source.request.reset();
    return assembled(q, std::move(out), std::move(pieces), etag, false);
  }
  auto length = source.headers.get_or("Content-Length");
  if (r.method == "HEAD" || source.status == 304) {
    std::uint64_t n = 0;
    std::from_chars(length.data(), length.data() + length.size(), n);
    if (source.status != 304) out.content_length_override = n;
    return out;
  }
  out.headers.set("Content-Length", length);
  // A small body is read here, on the worker: streaming it would cost the I/O thread another
  // round trip through the pool for a few pages.
  if (std::uint64_t n = 0;
      std::from_chars(length.data(), length.data() + length.size(), n).ec == std::errc() &&
      n <= kSmallBody) {
    out.body = source.request->read_all(kSmallBody);
    if (out.body.size() == n) return out;
    throw swift_error(503);  // the replica ended early
  }
  out.stream = std::make_shared<BackendSource>(std::move(source.request));
  return out;
}

http::Response object_write(Request& q) {
  auto& r = q.r();
  authorize_object(q, false);
  require_container(q);
  if (r.method == "DELETE" && !r.has_query("multipart-manifest"))
    if (auto restored = versioned_delete(q)) return std::move(*restored);
  auto part = object_part(q.proxy, q.path);
  auto t = Timestamp::now();
  auto base = pass_headers(r, t);
  if (r.method == "POST") {
    check_metadata(r, "object");
    normalise_expiry(base);
  }
  auto replies = fan_out(
      q.proxy, *q.proxy.object_ring(), part,
      [&](const Device& d) { return backend_target("object", d, part, q.path, true, true); },
      r.method, [&](size_t i) { return with_container_update(q.proxy, q.path, base, i); });
  auto reply = best(replies, q.proxy.object_ring()->replicas());
  if (r.method == "DELETE" && reply.status == 503) {
    // Without a quorum, a 404 counts as deleted (Swift's override).
    for (auto& x : replies)
      if (x.status == 404) x.status = 204;
    reply = best(replies, q.proxy.object_ring()->replicas());
  }
  if (reply.status >= 400) throw swift_error(reply.status);
  return empty(r.method == "POST" ? 202 : 204);
}

}  // namespace proxy

namespace proxy {
namespace {

// The request as the middleware leave it: its path and owner, and a TempURL's acceptance.
struct Prepared {
  Request q;
  std::optional<tempurl::Accepted> tempurl;
};

Prepared prepare(Proxy& proxy, Context& ctx) {
  Prepared p{Request{proxy, ctx, parse_swift_path(ctx.request.path)}, std::nullopt};
  p.q.owner = is_owner(proxy, ctx, p.q.path.account);
  apply_account_acl(p.q);
  // TempURL decides before the token does (it is ahead of auth in Swift's pipeline).
  if (tempurl::present(ctx.request)) p.tempurl = tempurl::authorize(p.q);
  return p;
}

[[noreturn]] void reserved_slo_header() {
  throw swift_error(400,
                    "X-Static-Large-Object is a reserved header. To create a static large object "
                    "add query param multipart-manifest=put.");
}

// Every request but those whose body streams into a middleware or an object.
http::Response dispatch(Request& q) {
  auto& r = q.r();
  auto& m = r.method;
  if ((m == "POST" || m == "DELETE") && r.has_query("bulk-delete")) return bulk::bulk_delete(q);
  if (q.path.has_object) {
    if (m == "GET" || m == "HEAD") return object_get(q);
    if (m == "DELETE" && r.query_param("multipart-manifest") == "delete")
      return slo::delete_manifest(q);
    if (r.headers.get("X-Static-Large-Object")) reserved_slo_header();
    if (m == "DELETE" || m == "POST") return object_write(q);
    if (m == "COPY") return object_copy_verb(q);
    throw swift_error(405);
  }
  if (q.path.has_container) {
    if (m == "PUT" || m == "POST") quotas::check_container_update(r);
    auto out = container_request(q);
    if (!q.owner)
      for (auto* key : {"X-Container-Meta-Temp-Url-Key", "X-Container-Meta-Temp-Url-Key-2"})
        out.headers.remove(key);
    return out;
  }
  if (m == "PUT" || m == "POST") quotas::check_account_update(q);
  auto out = account_request(q);
  quotas::add_account_headers(out);
  if (!q.owner)
    for (auto* key : {"X-Account-Meta-Temp-Url-Key", "X-Account-Meta-Temp-Url-Key-2"})
      out.headers.remove(key);
  return out;
}

// A request body the proxy needs whole (container PUTs, bulk deletes...): kept until it
// has arrived, then the request runs as a buffered one would.
class BufferedSink : public http::BodySink {
 public:
  BufferedSink(const Context& ctx, std::function<http::Response(Context&)> handle)
      : request_(ctx.request), auth_(ctx.auth), id_(ctx.request_id), handle_(std::move(handle)) {}
  void write(std::string_view chunk) override {
    if (request_.body.size() + chunk.size() > kMaxBuffered) throw swift_error(413);
    request_.body += chunk;
  }
  http::Response finish() override {
    Context ctx{request_};
    ctx.auth = auth_;
    ctx.request_id = id_;
    return handle_(ctx);
  }

 private:
  static constexpr size_t kMaxBuffered = 32 << 20;
  http::Request request_;
  std::optional<AuthContext> auth_;
  std::string id_;
  std::function<http::Response(Context&)> handle_;
};

// Tags a streamed request's answer with the transaction id (and TempURL's changes) once its
// body has arrived.
class Tagged : public http::BodySink {
 public:
  Tagged(std::unique_ptr<http::BodySink> inner, std::string id, Prepared* p)
      : inner_(std::move(inner)), id_(std::move(id)) {
    if (p && p->tempurl) {
      tempurl_ = p->tempurl;
      held_ = std::make_unique<HeldRequest>(p->q);
    }
  }
  void write(std::string_view c) override { inner_->write(c); }
  bool take_sender_md5() override { return inner_->take_sender_md5(); }
  void sender_md5(std::string_view hex) override { inner_->sender_md5(hex); }
  http::Response finish() override {
    try {
      auto out = inner_->finish();
      out.headers.set("X-Trans-Id", id_);
      if (!out.headers.get("Content-Type"))
        out.headers.set("Content-Type", "text/html; charset=UTF-8");
      if (tempurl_) tempurl::filter_response(held_->q(), *tempurl_, out);
      if (cors_headers)
        for (auto& [k, v] : cors_headers(out.headers.all())) out.headers.set(k, v);
      return out;
    } catch (ApiError& e) {
      e.headers.emplace_back("X-Trans-Id", id_);
      if (cors_headers)
        for (auto& h : cors_headers(e.headers)) e.headers.push_back(h);
      throw;
    }
  }
  // The CORS headers of a request that carried Origin.
  std::function<cors::HeaderList(const cors::HeaderList&)> cors_headers;
  void abort() noexcept override { inner_->abort(); }

 private:
  std::unique_ptr<http::BodySink> inner_;
  std::string id_;
  std::optional<tempurl::Accepted> tempurl_;
  std::unique_ptr<HeldRequest> held_;
};

}  // namespace
}  // namespace proxy

ServiceSpec make_proxy_spec(std::shared_ptr<Proxy> proxy,
                            std::shared_ptr<TokenValidator> validator) {
  using namespace proxy;
  ServiceSpec spec;
  spec.name = "object";
  if (proxy->settings.tempauth)
    spec.validator = proxy->settings.tempauth;
  else
    spec.validator = std::move(validator);
  spec.new_request_id = new_trans_id;
  spec.render_error_in_context = [](const ApiError& e, const Context& ctx) {
    auto out = render_swift_error(e);
    out.headers.set("X-Trans-Id", ctx.request_id);
    if (ctx.request.method == "HEAD") out.body.clear();
    return out;
  };
  // Streamed uploads that fail after their start are rendered without their context.
  spec.render_error = render_swift_error;
  auto with_trans_id = [](Context& ctx, http::Response out) {
    out.headers.set("X-Trans-Id", ctx.request_id);
    if (!out.headers.get("Content-Type"))
      out.headers.set("Content-Type", "text/html; charset=UTF-8");
    return out;
  };
  auto handle = [proxy, with_trans_id](Context& ctx) {
    auto origin = ctx.request.headers.get("Origin");
    try {
      auto p = prepare(*proxy, ctx);
      auto out = dispatch(p.q);
      if (p.tempurl) tempurl::filter_response(p.q, *p.tempurl, out);
      if (origin)
        for (auto& [k, v] :
             cors::response_headers(*proxy, std::string(*origin), p.q.path, out.headers.all()))
          out.headers.set(k, v);
      return with_trans_id(ctx, std::move(out));
    } catch (ApiError& e) {
      if (origin)
        for (auto& h : cors::response_headers(*proxy, std::string(*origin),
                                              parse_swift_path(ctx.request.path), e.headers))
          e.headers.push_back(h);
      throw;
    }
  };
  auto upload = [proxy, handle](Context& ctx) -> std::unique_ptr<http::BodySink> {
    auto& r = ctx.request;
    bool object_put = r.method == "PUT" && parse_swift_path(r.path).has_object;
    bool streamed =
        (r.method == "PUT" && r.has_query("extract-archive")) || formpost::applies(r) || object_put;
    if (!streamed)
      return std::make_unique<Tagged>(std::make_unique<BufferedSink>(ctx, handle), ctx.request_id,
                                      nullptr);
    auto p = prepare(*proxy, ctx);
    auto& q = p.q;
    std::unique_ptr<http::BodySink> inner;
    if (r.method == "PUT" && r.has_query("extract-archive")) {
      inner = bulk::extract_archive(q);
    } else if (formpost::applies(r)) {
      inner = formpost::upload(q);
    } else if (r.query_param("multipart-manifest") == "put") {
      inner = slo::put_manifest(q);
    } else {
      if (r.headers.get("X-Static-Large-Object")) reserved_slo_header();
      inner = object_put_or_copy(q);
    }
    auto tagged = std::make_unique<Tagged>(std::move(inner), ctx.request_id, &p);
    if (auto origin = r.headers.get("Origin"))
      tagged->cors_headers = [proxy, origin = std::string(*origin),
                              path = q.path](const auto& headers) {
        return cors::response_headers(*proxy, origin, path, headers);
      };
    return tagged;
  };
  auto route = [&spec](const std::string& method, const std::string& path, RouteHandler h) {
    Route r;
    r.method = method;
    r.path = path;
    r.handler = std::move(h);
    r.authenticated = false;
    spec.routes.push_back(std::move(r));
  };
  route("GET", "/info", [proxy](Context& ctx) {
    json::object swift{
        {"version", "2.30.1"},
        {"max_file_size", proxy->settings.max_file_size},
        {"max_meta_name_length", 128},
        {"max_meta_value_length", 256},
        {"max_meta_count", 90},
        {"max_meta_overall_size", 4096},
        {"max_header_size", 8192},
        {"max_object_name_length", 1024},
        {"container_listing_limit", 10000},
        {"account_listing_limit", 10000},
        {"max_account_name_length", 256},
        {"max_container_name_length", 256},
        {"extra_header_count", 0},
        {"strict_cors_mode", true},
        {"allow_account_management", false},
        {"account_autocreate", true},
        {"policies",
         json::array{json::object{{"name", kPolicy}, {"aliases", kPolicy}, {"default", true}}}}};
    http::Response out;
    out.status = 200;
    out.headers.set("Content-Type", "application/json; charset=UTF-8");
    out.headers.set("X-Trans-Id", ctx.request_id);
    json::array digests{"sha1", "sha256", "sha512"};
    json::object info{
        {"swift", std::move(swift)},
        {"tempurl",
         json::object{{"methods", json::array{"GET", "HEAD", "PUT", "POST", "DELETE"}},
                      {"incoming_remove_headers", json::array{"x-timestamp", "x-open-expired"}},
                      {"incoming_allow_headers", json::array{}},
                      {"outgoing_remove_headers", json::array{"x-object-meta-*"}},
                      {"outgoing_allow_headers", json::array{"x-object-meta-public-*"}},
                      {"allowed_digests", digests},
                      {"deprecated_digests", json::array{"sha1"}}}},
        {"formpost",
         json::object{{"allowed_digests", digests}, {"deprecated_digests", json::array{"sha1"}}}},
        {"slo", json::object{{"max_manifest_segments", 1000},
                             {"max_manifest_size", 8 * 1024 * 1024},
                             {"yield_frequency", 10},
                             {"min_segment_size", 1},
                             {"allow_async_delete", false}}},
        {"bulk_upload",
         json::object{{"max_containers_per_extraction", 10000}, {"max_failed_extractions", 1000}}},
        {"bulk_delete",
         json::object{{"max_deletes_per_request", 10000}, {"max_failed_deletes", 1000}}},
        {"account_quotas", json::object{}},
        {"container_quotas", json::object{}},
        {"crossdomain", json::object{}}};
    out.body = json::serialize(info);
    return out;
  });
  route("GET", "/healthcheck", [](Context& ctx) {
    auto out = empty(200, "text/plain");
    out.body = "OK";
    out.headers.set("X-Trans-Id", ctx.request_id);
    return out;
  });
  route("GET", "/crossdomain.xml", [](Context& ctx) {
    auto out = empty(200, "application/xml");
    out.body =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM "
        "\"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\" >\n<cross-domain-policy>\n"
        "<allow-access-from domain=\"*\" secure=\"false\" />\n</cross-domain-policy>";
    out.headers.set("X-Trans-Id", ctx.request_id);
    return out;
  });
  if (auto tempauth = proxy->settings.tempauth)
    route("GET", "/auth/{rest*}", [tempauth](Context& ctx) {
      try {
        auto out = tempauth->get_token(ctx.request);
        out.headers.set("X-Trans-Id", ctx.request_id);
        return out;
      } catch (ApiError& e) {
        e.headers.emplace_back("X-Trans-Id", ctx.request_id);
        throw;
      }
    });
  for (auto* version : {"/v1", "/v1.0"}) {
    // Requests with bodies stream: objects, archives and forms go to their sinks as they
    // arrive; the others are gathered first.
    for (auto* method : {"PUT", "POST", "DELETE"}) {
      Route streamed;
      streamed.method = method;
      streamed.path = std::string(version) + "/{rest*}";
      streamed.authenticated = false;
      streamed.upload = upload;
      streamed.handler = handle;
      spec.routes.push_back(streamed);
    }
    for (auto* method : {"GET", "COPY"}) route(method, std::string(version) + "/{rest*}", handle);
    route("OPTIONS", std::string(version) + "/{rest*}", [proxy, with_trans_id](Context& ctx) {
      return with_trans_id(ctx, cors::options(*proxy, ctx.request));
    });
  }
  return spec;
}

}  // namespace nubo::object
