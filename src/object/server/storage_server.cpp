#include "object/server/storage_server.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <list>
#include <map>
#include <unordered_map>

#include "object/backend.hpp"
#include "object/ring/ring.hpp"
#include "object/server/disk.hpp"
#include "object/server/listing_db.hpp"
#include "object/server/partition.hpp"
#include "object/swift_http.hpp"
#include "object/timestamp.hpp"

namespace nubo::object {

StorageServer::StorageServer(StorageSettings s)
    : settings(std::move(s)),
      account_ring(settings.rings + "/account.ring.json"),
      container_ring(settings.rings + "/container.ring.json"),
      object_ring(settings.rings + "/object.ring.json"),
      expiring(settings.devices) {}

std::shared_ptr<ListingDb> StorageServer::db(const std::string& path, ListingDb::Kind kind,
                                             bool create, const std::string& account,
                                             const std::string& container) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(path); it != open_.end()) return it->second;
  }
  auto db = ListingDb::open(path, kind, create, account, container);
  if (!db) return nullptr;
  std::lock_guard lock(mutex_);
  if (open_.size() >= 256) open_.clear();  // handles in use stay alive with their users
  return open_.emplace(path, db).first->second;
}

void StorageServer::forget_db(const std::string& path) {
  std::lock_guard lock(mutex_);
  open_.erase(path);
}

void StorageServer::totals_changed(const std::string& path, std::shared_ptr<ListingDb> db) {
  std::lock_guard lock(totals_mutex_);
  changed_totals_[path] = std::move(db);
}

bool StorageServer::is_local(const Device& d) const {
  auto& ip = d.replication_ip.empty() ? d.ip : d.replication_ip;
  int port = d.replication_port ? d.replication_port : d.port;
  return port == settings.port &&
         (settings.ip.empty() || settings.ip == "0.0.0.0" || settings.ip == ip);
}

void StorageServer::changed(const std::string& dir) {
  auto suffix_end = dir.rfind('/');
  auto partition_end = dir.rfind('/', suffix_end - 1);
  if (suffix_end == std::string::npos || partition_end == std::string::npos) return;
  hashes.invalidate(dir.substr(0, partition_end),
                    dir.substr(partition_end + 1, suffix_end - partition_end - 1));
}

Timestamp StorageServer::reclaim_before() const {
  auto t = Timestamp::now();
  t.raw -= static_cast<std::int64_t>(settings.reclaim_age.count()) * 100000;
  return t;
}

std::shared_ptr<StorageServer> make_storage_server(StorageSettings settings) {
  return std::make_shared<StorageServer>(std::move(settings));
}

namespace {

// /<kind>/<device>/<partition>/<account>[/<container>[/<object...>]] from the decoded path; the
// object keeps its slashes as they are.
struct Path {
  std::string device;
  std::uint32_t partition = 0;
  std::string account, container, object;
};

Path parse_path(std::string_view path) {
  Path p;
  std::string_view rest = path;
  auto segment = [&](bool last) {
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (last) {
      std::string s(rest);
      rest = {};
      return s;
    }
    auto slash = rest.find('/');
    std::string s(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    return s;
  };
  segment(false);  // kind
  p.device = segment(false);
  auto part = segment(false);
  p.account = segment(false);
  bool has_container = !rest.empty();
  p.container = segment(false);
  bool has_object = !rest.empty();
  p.object = segment(true);
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), p.partition);
  if (ec != std::errc() || ptr != part.data() + part.size() || p.device.empty() ||
      p.device.find("..") != std::string::npos || p.account.empty())
    throw swift_error(400, "Invalid path");
  if (has_container && p.container.empty()) throw swift_error(400, "Invalid path");
  if (has_object && p.object.empty()) throw swift_error(400, "Invalid path");
  return p;
}

Timestamp required_timestamp(const http::Request& r) {
  auto v = r.headers.get("X-Timestamp");
  auto t = v ? Timestamp::parse(*v) : std::nullopt;
  if (!t) throw swift_error(400, "Missing or invalid X-Timestamp header");
  return *t;
}

std::string db_path(const StorageServer& s, const Path& p, bool container) {
  auto hash =
      container ? hash_path(s.settings.hash_prefix, s.settings.hash_suffix, p.account, p.container)
                : hash_path(s.settings.hash_prefix, s.settings.hash_suffix, p.account);
  auto kind = container ? "containers" : "accounts";
  return s.settings.devices + "/" + p.device + "/" + kind + "/" + std::to_string(p.partition) +
         "/" + hash.substr(hash.size() - 3) + "/" + hash + "/" + hash + ".db";
}

disk::Location object_location(const StorageServer& s, const Path& p) {
  return {
      s.settings.devices, p.device, p.partition,
      hash_path(s.settings.hash_prefix, s.settings.hash_suffix, p.account, p.container, p.object)};
}

void check_device(const StorageServer& s, const Path& p) {
  if (::access((s.settings.devices + "/" + p.device).c_str(), W_OK) != 0)
    throw swift_error(507,
                      "<html><h1>Insufficient Storage</h1><p>There was not enough space to "
                      "save the resource. Drive: " +
                          p.device + "</p></html>");
}

// "ip:port" + device + partition of the replica to update, from the proxy's headers.
struct UpdateTarget {
  std::string ip;
  int port = 0;
  std::string device;
  std::string partition;
};
std::optional<UpdateTarget> update_target(const http::Headers& h, const char* kind) {
  auto host = h.get(std::string("X-") + kind + "-Host");
  auto device = h.get(std::string("X-") + kind + "-Device");
  auto partition = h.get(std::string("X-") + kind + "-Partition");
  if (!host || !device || !partition) return std::nullopt;
  auto colon = host->rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  UpdateTarget t{std::string(host->substr(0, colon)), 0, std::string(*device),
                 std::string(*partition)};
  auto port = host->substr(colon + 1);
  std::from_chars(port.data(), port.data() + port.size(), t.port);
  return t;
}

// Sends one row update; false when it did not land (the caller keeps it for the updater).
http::Response db_request(StorageServer& s, Context& ctx, bool container);

bool send_update(StorageServer& s, const UpdateTarget& t, const std::string& method,
                 const std::string& path, const http::Headers& headers) {
  Device target;
  target.ip = t.ip;
  target.port = t.port;
  if (s.is_local(target)) {
    // A replica on this server is updated in-process: a worker waiting on its own pool for the
    // update would starve it under load (every worker waiting, none left to answer).
    try {
      http::Request request;
      request.method = method;
      request.path = path;
      request.target = encode_path(path);
      request.headers = headers;
      Context ctx{request, {}, std::nullopt, "local-update", nullptr, {}, {}};
      auto status = db_request(s, ctx, path.starts_with("/container/")).status;
      return status >= 200 && status < 300;
    } catch (const std::exception& e) {
      spdlog::warn("object-server: local update {} {} failed: {}", method, path, e.what());
      return false;
    }
  }
  try {
    BackendRequest r(s.pool, t.ip, t.port, s.settings.update_timeout);
    int status = r.call(method, encode_path(path), headers);
    r.read_all();
    return status >= 200 && status < 300;
  } catch (const std::exception& e) {
    spdlog::warn("object-server: update {} {}:{}{} failed: {}", method, t.ip, t.port, path,
                 e.what());
    return false;
  }
}

// A container update that could not be sent is kept on the device, durably, for the updater:
// <device>/async_pending/<suffix>/<hash>-<timestamp> (Swift's async_pending).
void keep_pending(StorageServer& s, const Path& p, const std::string& hash, const Timestamp& t,
                  const UpdateTarget& target, const std::string& method, const std::string& path,
                  const http::Headers& headers) {
  json::object h;
  for (auto& [k, v] : headers.all()) h[k] = v;
  json::object record{{"method", method},
                      {"path", path},
                      {"host", target.ip + ":" + std::to_string(target.port)},
                      {"headers", std::move(h)}};
  auto dir = s.settings.devices + "/" + p.device + "/async_pending/" + hash.substr(hash.size() - 3);
  disk::make_dirs_durable(dir);
  disk::write_file_durably(dir + "/" + hash + "-" + t.internal(), json::serialize(record));
}

void update_container(StorageServer& s, const Path& p, const http::Headers& request,
                      const std::string& method, const Timestamp& t, const disk::Location& at,
                      std::int64_t size, const std::string& content_type, const std::string& etag) {
  auto target = update_target(request, "Container");
  if (!target) return;
  http::Headers h;
  h.set("X-Timestamp", t.internal());
  if (method == "PUT") {
    h.set("X-Size", std::to_string(size));
    h.set("X-Content-Type", content_type);
    h.set("X-Etag", etag);
  }
  auto path = "/container/" + target->device + "/" + target->partition + "/" + p.account + "/" +
              p.container + "/" + p.object;
  if (!send_update(s, *target, method, path, h))
    keep_pending(s, p, at.hash, t, *target, method, path, h);
}

// ---- objects ----

json::object object_metadata(const http::Request& r, const Path& p, const Timestamp& t) {
  json::object m{{"name", "/" + p.account + "/" + p.container + "/" + p.object},
                 {"X-Timestamp", t.internal()}};
  for (auto& [k, v] : r.headers.all()) {
    if (k.size() > 14 && http::iequals(std::string_view(k).substr(0, 14), "X-Object-Meta-"))
      m[title_case(k)] = v;
    else if (is_object_system_header(k))
      m[title_case(k)] = v;
  }
  return m;
}

class PutSink : public http::BodySink {
 public:
  PutSink(StorageServer& s, Path p, http::Headers headers, Timestamp t,
          std::optional<std::uint64_t> length, json::object metadata)
      : s_(s),
        path_(std::move(p)),
        headers_(std::move(headers)),
        t_(t),
        length_(length),
        metadata_(std::move(metadata)),
        writer_(s.settings.devices, path_.device) {}
  void write(std::string_view chunk) override { writer_.write(chunk); }
  // The proxy in this process hashes the body once for all its replicas here (an md5 of 256 MiB
  // is a third of a second of a core, and three of them were most of a large PUT's time).
  bool take_sender_md5() override {
    writer_.skip_md5();
    return true;
  }
  void sender_md5(std::string_view hex) override { writer_.sender_md5(std::string(hex)); }
  http::Response finish() override {
    if (length_ && writer_.size() != *length_) throw swift_error(499);
    auto etag = writer_.etag();
    if (auto expected = headers_.get("ETag")) {
      std::string e(*expected);
      if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
      for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (e != etag) throw swift_error(422);
    }
    auto at = object_location(s_, path_);
    auto content_type = headers_.get_or("Content-Type", "application/octet-stream");
    metadata_["Content-Type"] = content_type;
    metadata_["Content-Length"] = std::to_string(writer_.size());
    metadata_["ETag"] = etag;
    s_.expiring.add(path_.device, path_.partition, at.hash, metadata_);
    writer_.commit(at, t_, "data", metadata_);
    s_.changed(at.dir());
    update_container(s_, path_, headers_, "PUT", t_, at, static_cast<std::int64_t>(writer_.size()),
                     content_type, etag);
    http::Response r;
    r.status = 201;
    r.headers.set("ETag", etag);
    r.headers.set("Content-Type", "text/html; charset=UTF-8");
    return r;
  }

 private:
  StorageServer& s_;
  Path path_;
  http::Headers headers_;
  Timestamp t_;
  std::optional<std::uint64_t> length_;
  json::object metadata_;
  disk::Writer writer_;
};

bool expired(const json::object& metadata) {
  auto when = delete_at_of(metadata);
  return when && when <= Timestamp::now().raw / 100000;
}

std::unique_ptr<http::BodySink> object_put(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_path(r.path);
  if (p.object.empty()) throw swift_error(400, "Invalid path");
  check_device(s, p);
  auto t = required_timestamp(r);
  std::optional<std::uint64_t> length;
  if (auto cl = r.headers.get("Content-Length")) {
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), v);
    if (ec != std::errc()) throw swift_error(400, "Invalid Content-Length");
    length = v;
  } else if (!http::iequals(r.headers.get_or("Transfer-Encoding"), "chunked")) {
    throw swift_error(411);
  }
  auto current = disk::open(object_location(s, p));
  if (current.kind != disk::Current::none && current.timestamp >= t) {
    auto e = swift_error(409);
    e.headers.emplace_back("X-Backend-Timestamp", current.timestamp.internal());
    throw e;
  }
  if (r.headers.get_or("If-None-Match") == "*" && current.kind == disk::Current::data &&
      !expired(current.metadata))
    throw swift_error(412);
  return std::make_unique<PutSink>(s, p, r.headers, t, length, object_metadata(r, p, t));
}

class FileSource : public http::BodySource {
 public:
  FileSource(int fd, std::uint64_t offset, std::uint64_t length)
      : fd_(fd), offset_(offset), remaining_(length) {}
  ~FileSource() override { ::close(fd_); }
  std::string next(size_t max) override {
    std::string out(std::min<std::uint64_t>(max, remaining_), '\0');
    if (out.empty()) return out;
    auto n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset_));
    if (n <= 0) throw std::runtime_error("object file shorter than its metadata says");
    out.resize(static_cast<size_t>(n));
    offset_ += static_cast<std::uint64_t>(n);
    remaining_ -= static_cast<std::uint64_t>(n);
    return out;
  }
  std::optional<FileSpan> file_span() override { return FileSpan{fd_, offset_, remaining_}; }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::uint64_t offset_, remaining_;
};

bool etag_in(std::string_view list, const std::string& etag) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"')
      item = item.substr(1, item.size() - 2);
    if (item == "*" || item == etag) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::int64_t> parse_http_date(std::string_view s) {
  std::tm tm{};
  std::string text(s);
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

http::Response object_get(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_path(r.path);
  if (p.object.empty()) throw swift_error(400, "Invalid path");
  check_device(s, p);
  auto current = disk::open(object_location(s, p));
  if (current.kind != disk::Current::data ||
      (expired(current.metadata) && r.headers.get_or("X-Backend-Replication") != "true")) {
    auto e = swift_error(404);
    if (current.kind == disk::Current::tombstone)
      e.headers.emplace_back("X-Backend-Timestamp", current.timestamp.internal());
    throw e;
  }
  http::Response out;
  out.status = 200;
  std::string etag;
  for (auto& kv : current.metadata) {
    if (kv.key() == "name" || !kv.value().is_string()) continue;
    out.headers.set(std::string(kv.key()), std::string(kv.value().as_string()));
    if (kv.key() == "ETag") etag = kv.value().as_string();
  }
  out.headers.set("X-Timestamp", current.timestamp.normal());
  out.headers.set("X-Backend-Timestamp", current.timestamp.internal());
  out.headers.set("X-Backend-Data-Timestamp", current.data_timestamp.internal());
  auto modified = current.timestamp.ceil_seconds();
  out.headers.set("Last-Modified", http_date(modified));
  out.headers.set("Accept-Ranges", "bytes");
  // Conditional requests, as swob evaluates them.
  if (auto m = r.headers.get("If-Match"); m && !etag_in(*m, etag)) throw swift_error(412);
  if (auto m = r.headers.get("If-None-Match"); m && etag_in(*m, etag)) {
    out.status = 304;
    out.headers.remove("Content-Length");
    return out;
  }
  if (auto since = r.headers.get("If-Unmodified-Since"))
    if (auto t = parse_http_date(*since); t && modified > *t) throw swift_error(412);
  if (auto since = r.headers.get("If-Modified-Since"))
    if (auto t = parse_http_date(*since); t && modified <= *t) {
      out.status = 304;
      out.headers.remove("Content-Length");
      return out;
    }
  out.headers.set("Content-Length", std::to_string(current.body_length));
  // swob ignores Range on a HEAD.
  if (r.method == "HEAD") {
    out.content_length_override = current.body_length;
    return out;
  }
  int fd = ::open(current.data_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw swift_error(404);
  // Large bodies are written past the page cache: read ahead of the sender in larger steps.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto whole = std::make_shared<FileSource>(fd, 0, current.body_length);
  if (auto range = r.headers.get("Range")) {
    // Each range reads through its own descriptor of the file opened above (a newer write may
    // replace the name meanwhile); `whole` keeps that one open while the parts are sent.
    auto ranged = answer_range(out, *range, current.body_length, [whole](const ByteRange& rg) {
      int part = ::dup(whole->fd());
      if (part < 0) throw std::runtime_error("dup of an object file failed");
      return std::make_shared<FileSource>(part, rg.first, rg.second - rg.first + 1);
    });
    if (ranged) {
      out.stream = std::move(ranged);
      return out;
    }
  }
  out.stream = std::move(whole);
  return out;
}

http::Response object_delete(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_path(r.path);
  if (p.object.empty()) throw swift_error(400, "Invalid path");
  check_device(s, p);
  auto t = required_timestamp(r);
  auto at = object_location(s, p);
  auto current = disk::open(at);
  if (current.kind == disk::Current::data && current.timestamp >= t) {
    auto e = swift_error(409);
    e.headers.emplace_back("X-Backend-Timestamp", current.timestamp.internal());
    throw e;
  }
  bool existed = current.kind == disk::Current::data && !expired(current.metadata);
  // A tombstone even when nothing is there: an older PUT arriving later must lose.
  if (current.kind == disk::Current::none || current.timestamp < t) {
    disk::write_tombstone(at, t, "/" + p.account + "/" + p.container + "/" + p.object);
    s.changed(at.dir());
    update_container(s, p, r.headers, "DELETE", t, at, 0, "", "");
  }
  http::Response out;
  out.status = existed ? 204 : 404;
  out.headers.set("X-Backend-Timestamp", std::max(t, current.timestamp).internal());
  out.headers.set("Content-Type", "text/html; charset=UTF-8");
  return out;
}

http::Response object_post(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_path(r.path);
  if (p.object.empty()) throw swift_error(400, "Invalid path");
  check_device(s, p);
  auto t = required_timestamp(r);
  auto at = object_location(s, p);
  auto current = disk::open(at);
  if (current.kind != disk::Current::data || expired(current.metadata)) throw swift_error(404);
  if (current.timestamp >= t) throw swift_error(409);
  auto metadata = object_metadata(r, p, t);
  s.expiring.add(p.device, p.partition, at.hash, metadata);
  disk::Writer w(s.settings.devices, p.device);
  w.commit(at, t, "meta", metadata);
  s.changed(at.dir());
  http::Response out;
  out.status = 202;
  out.headers.set("Content-Type", "text/html; charset=UTF-8");
  return out;
}

// ---- containers and accounts ----

void add_metadata_headers(http::Response& out, const json::object& metadata) {
  for (auto& kv : metadata) {
    if (!kv.value().is_array() || kv.value().as_array().empty()) continue;
    auto& v = kv.value().as_array()[0];
    if (!v.is_string() || v.as_string().empty()) continue;
    out.headers.set(std::string(kv.key()), std::string(v.as_string()));
  }
}

// The headers a container or account keeps as metadata (their user metadata and ACLs, quotas,
// versioning and temp-url keys), with "X-Remove-...-Meta-X" as an empty value.
json::object metadata_updates(const http::Request& r, const char* kind) {
  json::object out;
  std::string meta = std::string("X-") + kind + "-Meta-";
  std::string remove_meta = std::string("X-Remove-") + kind + "-Meta-";
  for (auto& [k, v] : r.headers.all()) {
    std::string_view key = k;
    if (key.size() > meta.size() && http::iequals(key.substr(0, meta.size()), meta)) {
      out[title_case(key)] = v;
    } else if (key.size() > remove_meta.size() &&
               http::iequals(key.substr(0, remove_meta.size()), remove_meta)) {
      out[meta + title_case(key.substr(remove_meta.size()))] = "";
    } else {
      for (auto* h : {"X-Container-Read", "X-Container-Write", "X-Versions-Location",
                      "X-History-Location", "X-Container-Sync-To", "X-Container-Sync-Key",
                      "X-Account-Access-Control", "X-Backend-Storage-Policy-Index"})
        if (http::iequals(key, h)) out[title_case(key)] = v;
      for (auto* h : {"X-Remove-Container-Read", "X-Remove-Container-Write",
                      "X-Remove-Versions-Location", "X-Remove-History-Location"})
        if (http::iequals(key, h)) out["X-" + title_case(key.substr(9))] = "";
    }
  }
  return out;
}

bool update_account(StorageServer& s, ListingDb& db) {
  auto info = db.info();
  if (info.account_location.empty()) return true;
  // "ip:port/device/partition"
  auto slash = info.account_location.find('/');
  auto slash2 = info.account_location.find('/', slash + 1);
  if (slash == std::string::npos || slash2 == std::string::npos) return true;
  auto host = info.account_location.substr(0, slash);
  auto colon = host.rfind(':');
  UpdateTarget t{host.substr(0, colon), std::stoi(host.substr(colon + 1)),
                 info.account_location.substr(slash + 1, slash2 - slash - 1),
                 info.account_location.substr(slash2 + 1)};
  http::Headers h;
  h.set("X-Put-Timestamp", info.put_timestamp.internal());
  h.set("X-Delete-Timestamp", info.delete_timestamp.internal());
  h.set("X-Object-Count", std::to_string(info.object_count));
  h.set("X-Bytes-Used", std::to_string(info.bytes_used));
  return send_update(
      s, t, "PUT",
      "/account/" + t.device + "/" + t.partition + "/" + info.account + "/" + info.container, h);
}

// A JSON string literal as boost::json writes one (UTF-8 kept, quotes, backslashes and control
// characters escaped), appended in place: json::serialize(string_view) returns a new string for
// each value.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 15];
      }
    } else {
      out += c;
    }
  }
  out += '"';
}

http::Response listing_response(ListingDb& db, const http::Request& r, bool containers) {
  ListingQuery q;
  if (auto v = r.query_param("limit")) q.limit = std::stol(*v);
  q.marker = r.query_param("marker").value_or("");
  q.end_marker = r.query_param("end_marker").value_or("");
  q.prefix = r.query_param("prefix").value_or("");
  q.delimiter = r.query_param("delimiter").value_or("");
  auto reverse = r.query_param("reverse").value_or("");
  for (auto& c : reverse) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  q.reverse = reverse == "true" || reverse == "1" || reverse == "yes" || reverse == "on" ||
              reverse == "t" || reverse == "y";
  // The rows are written as JSON text directly: building a json::object per row and then
  // serializing them took a third of a 10,000-row listing.
  auto entries = db.list(q);
  std::string body;
  body.reserve(entries.size() * 192 + 2);
  body += '[';
  auto field = [&body](const char* key, std::string_view value, bool first = false) {
    if (!first) body += ',';
    body += '"';
    body += key;
    body += "\":";
    append_json_string(body, value);
  };
  auto number = [&body](const char* key, std::int64_t value) {
    body += ",\"";
    body += key;
    body += "\":";
    body += std::to_string(value);
  };
  for (auto& e : entries) {
    if (body.size() > 1) body += ',';
    body += '{';
    if (e.subdir) {
      field("subdir", e.name, true);
    } else if (containers) {
      field("name", e.name, true);
      field("hash", e.etag);
      number("bytes", e.bytes);
      field("content_type", e.content_type);
      field("last_modified", iso_microseconds(e.modified));
    } else {
      field("name", e.name, true);
      number("count", e.count);
      number("bytes", e.bytes);
      field("last_modified", iso_microseconds(e.modified));
    }
    body += '}';
  }
  body += ']';
  http::Response out;
  out.status = 200;
  out.headers.set("Content-Type", "application/json; charset=utf-8");
  out.body = std::move(body);
  return out;
}

void stat_headers(http::Response& out, const ListingDb::Info& info, bool account) {
  if (account) {
    out.headers.set("X-Account-Container-Count", std::to_string(info.container_count));
    out.headers.set("X-Account-Object-Count", std::to_string(info.object_count));
    out.headers.set("X-Account-Bytes-Used", std::to_string(info.bytes_used));
  } else {
    out.headers.set("X-Container-Object-Count", std::to_string(info.object_count));
    out.headers.set("X-Container-Bytes-Used", std::to_string(info.bytes_used));
  }
  out.headers.set("X-Timestamp", info.created_at.normal());
  out.headers.set("X-Put-Timestamp", info.put_timestamp.normal());
  out.headers.set("X-Backend-Timestamp", info.created_at.internal());
  out.headers.set("X-Backend-Put-Timestamp", info.put_timestamp.internal());
  out.headers.set("X-Backend-Delete-Timestamp", info.delete_timestamp.internal());
  add_metadata_headers(out, info.metadata);
}

http::Response db_request(StorageServer& s, Context& ctx, bool container) {
  auto& r = ctx.request;
  auto p = parse_path(r.path);
  check_device(s, p);
  auto kind = container ? ListingDb::Kind::container : ListingDb::Kind::account;
  bool row = container ? !p.object.empty() : !p.container.empty();
  if (!container && !p.object.empty()) throw swift_error(400, "Invalid path");
  auto path = db_path(s, p, container);
  http::Response out;
  out.headers.set("Content-Type", "text/html; charset=UTF-8");
  if (row) {
    // A row from an object server (container) or a container server (account).
    auto db = s.db(path, kind, !container, p.account, container ? p.container : "");
    if (!db || (container && db->info().deleted())) throw swift_error(404);
    if (container) {
      auto t = required_timestamp(r);
      bool deleted = r.method == "DELETE";
      std::int64_t size = 0;
      if (!deleted) {
        auto v = r.headers.get_or("X-Size", "0");
        std::from_chars(v.data(), v.data() + v.size(), size);
      }
      db->put_object(p.object, t, size, r.headers.get_or("X-Content-Type"),
                     r.headers.get_or("X-Etag"), deleted);
      s.totals_changed(path, db);
    } else {
      auto number = [&](const char* h) {
        std::int64_t v = 0;
        auto text = r.headers.get_or(h, "0");
        std::from_chars(text.data(), text.data() + text.size(), v);
        return v;
      };
      if (db->info().put_timestamp == Timestamp{}) db->put(Timestamp::now());  // autocreated
      db->put_container(
          p.container, Timestamp::parse(r.headers.get_or("X-Put-Timestamp")).value_or(Timestamp{}),
          Timestamp::parse(r.headers.get_or("X-Delete-Timestamp")).value_or(Timestamp{}),
          number("X-Object-Count"), number("X-Bytes-Used"));
    }
    out.status = r.method == "DELETE" ? 204 : 201;
    return out;
  }
  const char* meta_kind = container ? "Container" : "Account";
  if (r.method == "PUT") {
    auto t = required_timestamp(r);
    auto db = s.db(path, kind, true, p.account, p.container);
    bool created = db->put(t);
    auto updates = metadata_updates(r, meta_kind);
    if (!updates.empty()) db->update_metadata(updates, t);
    if (container) {
      if (auto target = update_target(r.headers, "Account"))
        db->set_account_location(target->ip + ":" + std::to_string(target->port) + "/" +
                                 target->device + "/" + target->partition);
      update_account(s, *db);
    }
    out.status = created ? 201 : 202;
    return out;
  }
  auto db = s.db(path, kind, false, p.account, p.container);
  if (!db) throw swift_error(404);
  auto info = db->info();
  if (info.deleted() || info.put_timestamp == Timestamp{}) {
    if (r.method == "DELETE") throw swift_error(404);
    if (r.method != "POST" || container) throw swift_error(404);
  }
  if (r.method == "DELETE") {
    auto t = required_timestamp(r);
    if (!db->remove(t)) throw swift_error(409);
    update_account(s, *db);
    out.status = 204;
    return out;
  }
  if (r.method == "POST") {
    auto t = required_timestamp(r);
    db->update_metadata(metadata_updates(r, meta_kind), t);
    out.status = 204;
    return out;
  }
  // GET and HEAD.
  if (r.method == "HEAD") {
    out.status = 204;
  } else {
    out = listing_response(*db, r, container);
  }
  stat_headers(out, info, !container);
  return out;
}

// ---- replication ----
// GET  /replicate/objects/<dev>/<part>[?suffixes=a,b]  {suffix: hash} (of those suffixes only)
// GET  /replicate/objects/<dev>/<part>?list=a,b        {suffix: {object hash: [file names]}}
// PUT  /replicate/objects/<dev>/<part>/<suffix>/<hash>/<file name>   a whole object file, as
//      the sender has it; 201 stored, 409 the name exists, 422 the file fails its own checks
// POST /replicate/containers|accounts/<dev>/<part>/<hash>   JSON {"op": "sync", "info": {...}}
//      (merges the record, creating the database; answers {"digest"}) or {"op": "merge",
//      "rows": [...]} (404 without the database)

struct ReplicatePath {
  std::string kind, device;
  std::uint32_t partition = 0;
  std::vector<std::string> rest;
};

ReplicatePath parse_replicate_path(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  // "replicate", kind, device, partition, ...
  if (parts.size() < 4) throw swift_error(400, "Invalid path");
  ReplicatePath p;
  p.kind = parts[1];
  p.device = parts[2];
  auto& part = parts[3];
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), p.partition);
  if (ec != std::errc() || ptr != part.data() + part.size() || p.device.empty() ||
      p.device == "." || p.device == ".." ||
      (p.kind != "objects" && p.kind != "containers" && p.kind != "accounts"))
    throw swift_error(400, "Invalid path");
  for (auto& r : parts)
    if (r == "." || r == "..") throw swift_error(400, "Invalid path");
  p.rest.assign(parts.begin() + 4, parts.end());
  return p;
}

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    if (comma != 0) out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string partition_dir(const StorageServer& s, const ReplicatePath& p) {
  return s.settings.devices + "/" + p.device + "/" + p.kind + "/" + std::to_string(p.partition);
}

http::Response json_response(json::value v) {
  http::Response out;
  out.status = 200;
  out.headers.set("Content-Type", "application/json");
  out.body = json::serialize(v);
  return out;
}

http::Response replicate_get(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_replicate_path(r.path);
  if (p.kind != "objects" || !p.rest.empty()) throw swift_error(400, "Invalid path");
  check_device(s, Path{p.device, p.partition, "-", "", ""});
  auto dir = partition_dir(s, p);
  if (auto list = r.query_param("list")) {
    json::object out;
    for (auto& [suffix, objects] : partition::list(dir, split_commas(*list))) {
      json::object o;
      for (auto& [hash, names] : objects) {
        json::array a;
        for (auto& n : names) a.push_back(json::string(n));
        o[hash] = std::move(a);
      }
      out[suffix] = std::move(o);
    }
    return json_response(std::move(out));
  }
  std::map<std::string, std::string> hashes;
  if (auto suffixes = r.query_param("suffixes")) {
    auto list = split_commas(*suffixes);
    for (auto& suffix : list) s.hashes.invalidate(dir, suffix);
    hashes = partition::suffix_hashes(dir, list, s.reclaim_before());
  } else {
    hashes = s.hashes.get(dir, s.reclaim_before());
  }
  json::object out;
  for (auto& [suffix, hash] : hashes) out[suffix] = hash;
  return json_response(std::move(out));
}

class ReplicaSink : public http::BodySink {
 public:
  ReplicaSink(StorageServer& s, std::string device, std::uint32_t partition, std::string hash,
              std::string dir, std::string name)
      : s_(s),
        device_(device),
        partition_(partition),
        hash_(std::move(hash)),
        dir_(std::move(dir)),
        name_(std::move(name)),
        writer_(s.settings.devices, device),
        file_(*disk::parse_file_name(dir_, name_)) {}
  void write(std::string_view chunk) override { writer_.write(chunk); }
  http::Response finish() override {
    // The copy must pass the checks the auditor applies: a corrupt replica never spreads.
    auto temp = file_;
    temp.path = writer_.temp_path();
    if (disk::check_file(temp) != disk::Check::ok) throw swift_error(422);
    if (file_.extension != "ts")
      if (auto metadata = disk::read_metadata(temp.path))
        s_.expiring.add(device_, partition_, hash_, metadata->first);
    http::Response out;
    out.status = writer_.commit_file(dir_, name_) ? 201 : 409;
    s_.changed(dir_);
    out.headers.set("Content-Type", "text/html; charset=UTF-8");
    return out;
  }

 private:
  StorageServer& s_;
  std::string device_;
  std::uint32_t partition_;
  std::string hash_, dir_, name_;
  disk::Writer writer_;
  disk::File file_;
};

std::unique_ptr<http::BodySink> replicate_put(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_replicate_path(r.path);
  if (p.kind != "objects" || p.rest.size() != 3 || !partition::valid_suffix(p.rest[0]) ||
      !partition::valid_hash(p.rest[1]) || !p.rest[1].ends_with(p.rest[0]))
    throw swift_error(400, "Invalid path");
  check_device(s, Path{p.device, p.partition, "-", "", ""});
  auto dir = partition_dir(s, p) + "/" + p.rest[0] + "/" + p.rest[1];
  if (!disk::parse_file_name(dir, p.rest[2])) throw swift_error(400, "Invalid file name");
  if (r.headers.get_or("X-Backend-Replication") != "true") throw swift_error(400);
  return std::make_unique<ReplicaSink>(s, p.device, p.partition, p.rest[1], dir, p.rest[2]);
}

http::Response replicate_db(StorageServer& s, Context& ctx) {
  auto& r = ctx.request;
  auto p = parse_replicate_path(r.path);
  if (p.kind == "objects" || p.rest.size() != 1 || !partition::valid_hash(p.rest[0]))
    throw swift_error(400, "Invalid path");
  check_device(s, Path{p.device, p.partition, "-", "", ""});
  boost::system::error_code ec;
  auto body = json::parse(r.body, ec);
  if (ec || !body.is_object()) throw swift_error(400, "Invalid body");
  auto& o = body.as_object();
  auto& hash = p.rest[0];
  auto path =
      partition_dir(s, p) + "/" + hash.substr(hash.size() - 3) + "/" + hash + "/" + hash + ".db";
  bool container = p.kind == "containers";
  auto kind = container ? ListingDb::Kind::container : ListingDb::Kind::account;
  auto op = o.if_contains("op");
  if (op && op->is_string() && op->as_string() == "sync") {
    auto* info = o.if_contains("info");
    if (!info || !info->is_object()) throw swift_error(400, "Invalid body");
    auto text = [&](const char* key) {
      auto* v = info->as_object().if_contains(key);
      return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    auto account = text("account"), name = text("container");
    // The names must be the ones the hash stands for: a mislabelled copy is refused.
    auto expected = container
                        ? hash_path(s.settings.hash_prefix, s.settings.hash_suffix, account, name)
                        : hash_path(s.settings.hash_prefix, s.settings.hash_suffix, account);
    if (account.empty() || (container && name.empty()) || expected != hash)
      throw swift_error(400, "Names do not match the hash");
    auto db = s.db(path, kind, true, account, name);
    db->merge_info(info->as_object());
    return json_response(json::object{{"digest", db->digest()}});
  }
  if (op && op->is_string() && op->as_string() == "merge") {
    auto* rows = o.if_contains("rows");
    if (!rows || !rows->is_array()) throw swift_error(400, "Invalid body");
    auto db = s.db(path, kind, false, "", "");
    if (!db) throw swift_error(404);
    db->merge_rows(rows->as_array(), s.reclaim_before());
    if (kind == ListingDb::Kind::container) s.totals_changed(path, db);
    return json_response(json::object{{"merged", rows->as_array().size()}});
  }
  throw swift_error(400, "Unknown op");
}

// Until the server streams every request body it may buffer one: feed it to the same sink.
RouteHandler buffered(UploadHandler start) {
  return [start](Context& ctx) {
    auto sink = start(ctx);
    sink->write(ctx.request.body);
    return sink->finish();
  };
}

}  // namespace

void StorageServer::report_totals() {
  std::unordered_map<std::string, std::shared_ptr<ListingDb>> changed;
  {
    std::lock_guard lock(totals_mutex_);
    changed.swap(changed_totals_);
  }
  for (auto& [path, db] : changed) {
    bool sent = false;
    try {
      sent = update_account(*this, *db);
    } catch (const std::exception& e) {
      spdlog::warn("object-server: container totals of {}: {}", path, e.what());
    }
    if (!sent) {
      std::lock_guard lock(totals_mutex_);
      changed_totals_.emplace(path, db);  // a newer change may be there already: it wins
    }
  }
}

void StorageServer::update_container_row(const std::string& device, std::uint32_t partition,
                                         const std::string& hash, const std::string& name,
                                         const std::string& method, const Timestamp& t) {
  // name: /<account>/<container>/<object>
  auto second = name.find('/', 1), third = name.find('/', second + 1);
  if (name.empty() || name[0] != '/' || second == std::string::npos || third == std::string::npos)
    return;
  Path p{device, partition, name.substr(1, second - 1), name.substr(second + 1, third - second - 1),
         name.substr(third + 1)};
  auto containers = container_ring.get();
  auto objects = object_ring.get();
  if (!containers || !objects) {
    spdlog::warn("object-server: no rings in {}: the container row of {} is not updated",
                 settings.rings, name);
    return;
  }
  auto container_part = containers->partition_of_hash(
      hash_path(settings.hash_prefix, settings.hash_suffix, p.account, p.container));
  auto replicas = containers->primary_devices(container_part);
  auto object_replicas = objects->primary_devices(partition);
  std::vector<const Device*> targets = replicas;
  for (std::size_t i = 0; i < object_replicas.size() && !replicas.empty(); ++i)
    if (object_replicas[i]->device == device && is_local(*object_replicas[i]))
      targets = {replicas[i % replicas.size()]};
  http::Headers h;
  h.set("X-Timestamp", t.internal());
  disk::Location at{settings.devices, device, partition, hash};
  for (auto* d : targets) {
    UpdateTarget target{d->ip, d->port, d->device, std::to_string(container_part)};
    auto path = "/container/" + target.device + "/" + target.partition + "/" + p.account + "/" +
                p.container + "/" + p.object;
    if (!send_update(*this, target, method, path, h))
      keep_pending(*this, p, hash, t, target, method, path, h);
  }
}

ServiceSpec make_storage_spec(std::shared_ptr<StorageServer> server) {
  ServiceSpec spec;
  spec.name = "object-server";
  spec.render_error = render_swift_error;
  auto& s = *server;
  auto route = [&spec](const std::string& method, const std::string& path, RouteHandler h) {
    Route r;
    r.method = method;
    r.path = path;
    r.handler = std::move(h);
    r.authenticated = false;
    spec.routes.push_back(std::move(r));
  };
  // Streamed PUTs (and the same sink for a body the server buffered).
  auto upload_route = [&spec](const std::string& path, UploadHandler upload) {
    Route r;
    r.method = "PUT";
    r.path = path;
    r.authenticated = false;
    r.upload = upload;
    r.handler = buffered(upload);
    spec.routes.push_back(std::move(r));
  };
  upload_route("/object/{rest*}", [server](Context& ctx) { return object_put(*server, ctx); });
  route("GET", "/object/{rest*}", [&s](Context& ctx) { return object_get(s, ctx); });
  route("GET", "/replicate/{rest*}", [&s](Context& ctx) { return replicate_get(s, ctx); });
  route("POST", "/replicate/{rest*}", [&s](Context& ctx) { return replicate_db(s, ctx); });
  upload_route("/replicate/{rest*}",
               [server](Context& ctx) { return replicate_put(*server, ctx); });
  route("DELETE", "/object/{rest*}", [&s](Context& ctx) { return object_delete(s, ctx); });
  route("POST", "/object/{rest*}", [&s](Context& ctx) { return object_post(s, ctx); });
  for (auto* method : {"GET", "PUT", "DELETE", "POST"}) {
    route(method, "/container/{rest*}", [&s](Context& ctx) { return db_request(s, ctx, true); });
    route(method, "/account/{rest*}", [&s](Context& ctx) { return db_request(s, ctx, false); });
  }
  return spec;  // the upload routes hold `server`, which the others use by reference
}

}  // namespace nubo::object
