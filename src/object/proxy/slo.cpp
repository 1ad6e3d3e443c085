// Static large objects: manifest upload and checks, assembled reads, manifest reads and deletes.
#include "object/proxy/slo.hpp"

#include <charconv>
#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include "object/proxy/bulk.hpp"
#include "object/proxy/large_object.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy::slo {

namespace {

constexpr size_t kMaxManifestSize = 8 * 1024 * 1024;
constexpr size_t kMaxSegments = 1000;
constexpr int kMaxDepth = 10;

// A range as swob's Range keeps it: begin and end, either possibly absent ("a-", "-n").
struct RangeSpec {
  std::optional<std::uint64_t> begin, end;
};

// "a-b", "a-" or "-n" (swob's Range without "bytes="); several or malformed: nullopt, with
// `several` set for a list.
std::optional<RangeSpec> parse_range_spec(std::string_view text, bool& several) {
  several = text.find(',') != std::string_view::npos;
  if (several) return std::nullopt;
  std::string s;
  for (char c : text)
    if (c != ' ') s += c;
  auto dash = s.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto number = [](std::string_view v) -> std::optional<std::uint64_t> {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) return std::nullopt;
    return n;
  };
  RangeSpec r;
  auto a = std::string_view(s).substr(0, dash), b = std::string_view(s).substr(dash + 1);
  if (!a.empty() && !(r.begin = number(a))) return std::nullopt;
  if (!b.empty() && !(r.end = number(b))) return std::nullopt;
  if (!r.begin && !r.end) return std::nullopt;
  if (r.begin && r.end && *r.begin > *r.end) return std::nullopt;
  return r;
}

// swob's ranges_for_length for one range: [start, end) or nullopt when unsatisfiable.
std::optional<std::pair<std::uint64_t, std::uint64_t>> for_length(const RangeSpec& r,
                                                                  std::uint64_t length) {
  if (!r.begin) {
    if (*r.end == 0) return std::nullopt;
    if (*r.end > length) return std::pair<std::uint64_t, std::uint64_t>(0, length);
    return std::pair(length - *r.end, length);
  }
  if (*r.begin >= length) return std::nullopt;
  if (!r.end) return std::pair(*r.begin, length);
  return std::pair(*r.begin, std::min(*r.end + 1, length));
}

// Python's int() of a size_bytes value.
std::optional<std::int64_t> python_int(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.as_uint64());
  if (v.is_double()) return static_cast<std::int64_t>(std::trunc(v.as_double()));
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  if (v.is_string()) {
    std::string_view s = v.as_string();
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

std::string strip_slashes(std::string_view s, bool right = true) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (right && !s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

// "/container/object" → the object's path in the account; nullopt without both parts.
std::optional<SwiftPath> segment_path(const std::string& account, std::string_view name) {
  auto rest = strip_slashes(name, false);
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) return std::nullopt;
  return object_path(account, rest.substr(0, slash), rest.substr(slash + 1));
}

std::string content_type_param(std::string_view type, std::string_view name) {
  for (auto at = type.find(';'); at != std::string_view::npos; at = type.find(';', at + 1)) {
    auto param = type.substr(at + 1);
    while (!param.empty() && param.front() == ' ') param.remove_prefix(1);
    if (param.starts_with(name) && param.size() > name.size() && param[name.size()] == '=') {
      auto value = param.substr(name.size() + 1);
      return std::string(value.substr(0, value.find(';')));
    }
  }
  return {};
}

// The validated segment list of an upload (parse_and_validate_input); 400 with Swift's
// per-index messages otherwise.
json::array parse_manifest(const std::string& body, const Request& q) {
  boost::system::error_code ec;
  auto parsed = json::parse(body, ec);
  if (ec) throw swift_error(400, "Manifest must be valid JSON.\n");
  if (!parsed.is_array()) throw swift_error(400, "Manifest must be a list.\n");
  auto& list = parsed.as_array();
  std::string errors;
  auto fail = [&](size_t i, const std::string& what) {
    errors += "Index " + std::to_string(i) + ": " + what + "\n";
  };
  auto own_path = "/v1/" + q.path.account + "/" + q.path.container + "/" + q.path.object;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) {
      fail(i, "not a JSON object");
      continue;
    }
    auto& seg = list[i].as_object();
    std::string kind = seg.contains("data") ? "data" : seg.contains("path") ? "path" : "";
    if (kind.empty()) {
      fail(i, "expected keys to include one of 'data' or 'path'");
      continue;
    }
    std::set<std::string> allowed = {kind};
    if (kind == "path") allowed.insert({"range", "etag", "size_bytes"});
    std::vector<std::string> extraneous;
    for (auto& kv : seg)
      if (!allowed.count(std::string(kv.key()))) extraneous.emplace_back(kv.key());
    if (!extraneous.empty()) {
      std::sort(extraneous.begin(), extraneous.end());
      std::string keys;
      for (auto& k : extraneous)
        keys += (keys.empty() ? "" : ", ") + bulk::py_json(json::string(k));
      fail(i, "extraneous keys " + keys);
      continue;
    }
    if (kind == "path") {
      if (!seg.at("path").is_string()) {
        fail(i, "\"path\" must be a string");
        continue;
      }
      auto* etag = seg.if_contains("etag");
      if (etag && !etag->is_null() && !etag->is_string()) {
        fail(i, "\"etag\" must be a string or null (if provided)");
        continue;
      }
      std::string path(seg.at("path").as_string());
      if (strip_slashes(path).find('/') == std::string::npos) {
        fail(i, "path does not refer to an object. Path must be of the form /container/object.");
        continue;
      }
      std::optional<std::int64_t> size;
      if (auto* v = seg.if_contains("size_bytes"); v && !v->is_null()) {
        size = python_int(*v);
        if (!size) {
          fail(i, "invalid size_bytes");
          continue;
        }
        seg["size_bytes"] = *size;
        if (*size < 1 && i + 1 != list.size()) {
          fail(i, "too small; each segment must be at least 1 byte.");
          continue;
        }
      }
      if ("/v1/" + q.path.account + "/" + strip_slashes(path, false) == own_path) {
        fail(i, "manifest must not include itself as a segment");
        continue;
      }
      if (auto* range = seg.if_contains("range");
          range && range->is_string() && !range->as_string().empty()) {
        bool several = false;
        auto r = parse_range_spec(range->as_string(), several);
        if (several) {
          fail(i, "multiple ranges (only one allowed)");
          continue;
        }
        if (!r) {
          fail(i, "invalid range");
          continue;
        }
        if (size && !for_length(*r, static_cast<std::uint64_t>(std::max<std::int64_t>(*size, 0)))) {
          fail(i, "unsatisfiable range");
          continue;
        }
      }
    } else {
      auto& data = seg.at("data");
      auto raw = data.is_string() ? base64_decode(data.as_string()) : std::nullopt;
      if (!raw) {
        fail(i, "data must be valid base64");
        continue;
      }
      if (raw->empty()) {
        fail(i, "too small; each segment must be at least 1 byte.");
        continue;
      }
      seg["data"] = base64_encode(*raw);
    }
  }
  if (!list.empty() && std::all_of(list.begin(), list.end(), [](const json::value& v) {
        return v.is_object() && v.as_object().contains("data");
      }))
    errors += "Inline data segments require at least one object-backed segment.\n";
  if (!errors.empty()) {
    auto e = swift_error(400, errors);
    e.headers.emplace_back("Content-Type", "text/plain");
    throw e;
  }
  return std::move(list);
}

std::string listing_time(std::string_view http_date_text) {
  std::tm tm{};
  std::string text(http_date_text);
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return {};
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000", &tm);
  return buf;
}

// The HEAD of a segment as the caller would make it: status and headers (large objects as
// assembled).
struct SegmentHead {
  int status = 0;
  std::uint64_t length = 0;
  std::string etag, content_type, last_modified;
  bool slo = false;
};
SegmentHead head_segment(const Request& q, const std::string& name) {
  SegmentHead h;
  auto path = segment_path(q.path.account, name);
  if (!path) {
    h.status = 400;
    return h;
  }
  SubRequest head(q, "HEAD", *path);
  try {
    auto out = object_get(head.q());
    h.status = out.status;
    auto cl = out.headers.get_or("Content-Length");
    h.length = out.content_length_override ? *out.content_length_override : 0;
    if (!out.content_length_override) std::from_chars(cl.data(), cl.data() + cl.size(), h.length);
    auto etag = out.headers.get_or("ETag");
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
      etag = etag.substr(1, etag.size() - 2);
    h.etag = etag;
    h.content_type = out.headers.get_or("Content-Type");
    h.last_modified = out.headers.get_or("Last-Modified");
    h.slo = is_slo(out.headers);
  } catch (const ApiError& e) {
    h.status = e.status();
  }
  return h;
}

// The stored entry for an uploaded segment, its length in the whole, or a problem.
class ManifestSink : public http::BodySink {
 public:
  ManifestSink(const Request& q, PutPlan plan)
      : held_(std::make_unique<HeldRequest>(q)), plan_(std::move(plan)) {}
  void write(std::string_view chunk) override {
    if (body_.size() + chunk.size() > kMaxManifestSize)
      throw swift_error(413, "Manifest File > " + std::to_string(kMaxManifestSize) + " bytes");
    body_ += chunk;
  }
  http::Response finish() override {
    auto& q = held_->q();
    auto segments = parse_manifest(body_, q);
    size_t objects = static_cast<size_t>(
        std::count_if(segments.begin(), segments.end(),
                      [](const json::value& v) { return v.as_object().contains("path"); }));
    if (objects > kMaxSegments)
      throw swift_error(
          413, "Number of object-backed segments must be <= " + std::to_string(kMaxSegments));
    auto format = bulk::response_format(q.r());
    if (format.empty()) format = "text/plain";
    std::map<std::string, SegmentHead> heads;
    for (auto& v : segments) {
      auto& seg = v.as_object();
      if (!seg.contains("path")) continue;
      std::string name(seg.at("path").as_string());
      if (!heads.count(name)) heads[name] = head_segment(q, name);
    }
    std::vector<std::pair<std::string, std::string>> problems;
    json::array stored;
    std::uint64_t total = 0;
    for (size_t i = 0; i < segments.size(); ++i) {
      auto& seg = segments[i].as_object();
      if (auto* data = seg.if_contains("data")) {
        stored.push_back(json::object{{"data", *data}});
        total += base64_decode(data->as_string())->size();
        continue;
      }
      std::string name(seg.at("path").as_string());
      auto quoted = encode_path(name);
      auto& head = heads[name];
      if (head.status / 100 != 2) {
        problems.emplace_back(quoted, status_line(head.status));
        continue;
      }
      std::uint64_t length = head.length;
      std::optional<std::string> range;
      if (auto* r = seg.if_contains("range"); r && r->is_string() && !r->as_string().empty()) {
        bool several = false;
        auto spec = parse_range_spec(r->as_string(), several);
        auto span = for_length(*spec, head.length);
        if (!span) {
          problems.emplace_back(quoted, "Unsatisfiable Range");
        } else if (!(span->first == 0 && span->second == head.length)) {
          range = std::to_string(span->first) + "-" + std::to_string(span->second - 1);
          length = span->second - span->first;
        }
      }
      if (length < 1 && i + 1 != segments.size())
        problems.emplace_back(quoted, "Too small; each segment must be at least 1 byte.");
      if (auto* size = seg.if_contains("size_bytes");
          size && !size->is_null() &&
          size->to_number<std::int64_t>() != static_cast<std::int64_t>(head.length))
        problems.emplace_back(quoted, "Size Mismatch");
      if (auto* etag = seg.if_contains("etag");
          etag && etag->is_string() && etag->as_string() != head.etag)
        problems.emplace_back(quoted, "Etag Mismatch");
      json::object entry{{"name", "/" + strip_slashes(name, false)},
                         {"bytes", head.length},
                         {"hash", head.etag},
                         {"content_type", head.content_type},
                         {"last_modified", listing_time(head.last_modified)}};
      if (range) entry["range"] = *range;
      if (head.slo) entry["sub_slo"] = true;
      stored.push_back(std::move(entry));
      total += length;
    }
    if (!problems.empty()) {
      auto e = swift_error(400, bulk::result_body(format, json::object{}, problems, "upload"));
      e.headers.emplace_back("Content-Type", format);
      throw e;
    }
    std::string concatenated;
    for (auto& v : stored) {
      auto& seg = v.as_object();
      if (auto* data = seg.if_contains("data"))
        concatenated += md5_hex(*base64_decode(data->as_string()));
      else if (auto* range = seg.if_contains("range"))
        concatenated +=
            std::string(seg.at("hash").as_string()) + ":" + std::string(range->as_string()) + ";";
      else
        concatenated += seg.at("hash").as_string();
    }
    auto slo_etag = md5_hex(concatenated);
    auto client_etag = std::string(q.r().headers.get_or("ETag"));
    if (client_etag.size() >= 2 && client_etag.front() == '"' && client_etag.back() == '"')
      client_etag = client_etag.substr(1, client_etag.size() - 2);
    if (!client_etag.empty() && client_etag != slo_etag) throw swift_error(422);
    auto text = bulk::py_json(stored);
    auto& h = plan_.headers;
    h.set("X-Static-Large-Object", "True");
    h.set("ETag", md5_hex(text));
    h.set("Content-Type", std::string(h.get_or("Content-Type", "application/octet-stream")) +
                              ";swift_bytes=" + std::to_string(total) +
                              ";swift_slo_etag=" + slo_etag);
    plan_.length = text.size();
    auto sink = start_put(q, plan_);
    sink->write(text);
    auto out = sink->finish();
    if (out.status / 100 == 2) out.headers.set("ETag", "\"" + slo_etag + "\"");
    return out;
  }

 private:
  std::unique_ptr<HeldRequest> held_;
  PutPlan plan_;
  std::string body_;
};

// A manifest's segments with their lengths (Swift's _annotate_segments).
struct Entry {
  json::object seg;
  std::uint64_t length = 0;
};
std::vector<Entry> entries_of(const std::string& body) {
  boost::system::error_code ec;
  auto parsed = json::parse(body, ec);
  if (ec || !parsed.is_array()) throw swift_error(500, "Unable to load SLO manifest");
  std::vector<Entry> out;
  for (auto& v : parsed.as_array()) {
    if (!v.is_object()) continue;
    Entry e{v.as_object()};
    if (auto* data = e.seg.if_contains("data")) {
      auto raw = data->is_string() ? base64_decode(data->as_string()) : std::nullopt;
      e.seg["raw"] = raw.value_or("");
      e.length = raw ? raw->size() : 0;
    } else if (auto* range = e.seg.if_contains("range"); range && range->is_string()) {
      std::string_view r = range->as_string();
      auto dash = r.find('-');
      std::uint64_t a = 0, b = 0;
      std::from_chars(r.data(), r.data() + dash, a);
      std::from_chars(r.data() + dash + 1, r.data() + r.size(), b);
      e.length = b - a + 1;
    } else if (auto* bytes = e.seg.if_contains("bytes")) {
      e.length = static_cast<std::uint64_t>(bytes->to_number<std::int64_t>());
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The pieces of a manifest's bytes [first, last], sub-manifests read as needed.
void flatten(Request& q, const std::vector<Entry>& entries, std::uint64_t first, std::uint64_t last,
             int depth, std::set<std::string>& authorized, std::vector<Piece>& out) {
  std::uint64_t at = 0;
  for (auto& e : entries) {
    std::uint64_t begin = at, end = at + e.length;
    at = end;
    if (e.length == 0 || end <= first || begin > last) continue;
    auto from = std::max(first, begin) - begin, to = std::min(last + 1, end) - begin;
    if (auto* raw = e.seg.if_contains("raw")) {
      Piece p;
      p.data = std::string(raw->as_string()).substr(from, to - from);
      p.length = to - from;
      out.push_back(std::move(p));
      continue;
    }
    auto path = segment_path(q.path.account, e.seg.at("name").as_string());
    if (!path) throw swift_error(409);
    if (authorized.insert(path->container).second) {
      Request reader = on_path(q, *path);
      authorize_object(reader, true);
    }
    std::uint64_t range_start = 0;
    if (auto* range = e.seg.if_contains("range"); range && range->is_string()) {
      std::string_view r = range->as_string();
      std::from_chars(r.data(), r.data() + r.find('-'), range_start);
    }
    if (auto* sub = e.seg.if_contains("sub_slo"); sub && sub->is_bool() && sub->as_bool()) {
      if (depth >= kMaxDepth) throw swift_error(409);
      auto source = read_object(q.proxy, *path, "GET", {});
      if (source.status != 200 || !is_slo(source.headers)) throw swift_error(409);
      auto sub_entries = entries_of(source.request->read_all());
      flatten(q, sub_entries, range_start + from, range_start + to - 1, depth + 1, authorized, out);
      continue;
    }
    Piece p;
    p.path = *path;
    p.first = range_start + from;
    p.length = to - from;
    p.segment_size = static_cast<std::uint64_t>(e.seg.at("bytes").to_number<std::int64_t>());
    if (auto* hash = e.seg.if_contains("hash"); hash && hash->is_string())
      p.etag = hash->as_string();
    out.push_back(std::move(p));
  }
}

}  // namespace

bool is_slo(const http::Headers& h) { return true_value(h.get_or("X-Static-Large-Object")); }

std::string clean_content_type(std::string_view type) {
  std::string out;
  size_t start = 0;
  while (start <= type.size()) {
    auto semi = type.find(';', start);
    auto part =
        type.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
    auto trimmed = part;
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
    bool ours = start > 0 && trimmed.starts_with("swift_");
    if (!ours) out += (start > 0 ? ";" : "") + std::string(part);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return out;
}

void fix_listing_row(json::object& row) {
  auto* type = row.if_contains("content_type");
  if (!type || !type->is_string()) return;
  std::string text(type->as_string());
  auto bytes = content_type_param(text, "swift_bytes");
  if (bytes.empty()) return;
  std::int64_t n = 0;
  std::from_chars(bytes.data(), bytes.data() + bytes.size(), n);
  row["bytes"] = n;
  auto etag = content_type_param(text, "swift_slo_etag");
  row["content_type"] = clean_content_type(text);
  if (!etag.empty()) row["slo_etag"] = "\"" + etag + "\"";
}

std::unique_ptr<http::BodySink> put_manifest(Request& q) {
  auto& r = q.r();
  if (r.headers.get("X-Copy-From"))
    throw swift_error(405, "Multipart Manifest PUTs cannot be COPY requests");
  bool chunked = http::iequals(r.headers.get_or("Transfer-Encoding"), "chunked");
  if (!chunked) {
    auto cl = r.headers.get("Content-Length");
    if (!cl) throw swift_error(411);
    std::uint64_t n = 0;
    std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (n > kMaxManifestSize)
      throw swift_error(413, "Manifest File > " + std::to_string(kMaxManifestSize) + " bytes");
  }
  return std::make_unique<ManifestSink>(q, plan_put(q));
}

http::Response assembled(Request& q, Source source, http::Response out) {
  auto manifest_etag = std::string(out.headers.get_or("ETag"));
  auto stored_type = std::string(out.headers.get_or("Content-Type"));
  out.headers.set("Content-Type", clean_content_type(stored_type));
  out.headers.set("X-Manifest-Etag", manifest_etag);
  auto size_text = content_type_param(stored_type, "swift_bytes");
  auto slo_etag = content_type_param(stored_type, "swift_slo_etag");
  std::vector<Piece> pieces;
  if (q.r().method == "HEAD" && !size_text.empty() && !slo_etag.empty()) {
    // A HEAD needs only the size: one piece that is never read stands for the whole.
    Piece whole;
    std::from_chars(size_text.data(), size_text.data() + size_text.size(), whole.length);
    pieces.push_back(std::move(whole));
    source.request.reset();
    return proxy::assembled(q, std::move(out), std::move(pieces), slo_etag, true);
  }
  std::string body;
  if (q.r().method == "HEAD") {
    source.request.reset();
    auto again = read_object(q.proxy, q.path, "GET", {});
    if (again.status != 200) throw swift_error(again.status);
    body = again.request->read_all();
  } else {
    body = source.request->read_all();
  }
  auto entries = entries_of(body);
  if (slo_etag.empty()) {
    std::string concatenated;
    for (auto& e : entries) {
      if (auto* raw = e.seg.if_contains("raw"))
        concatenated += md5_hex(raw->as_string());
      else if (auto* range = e.seg.if_contains("range"))
        concatenated +=
            std::string(e.seg.at("hash").as_string()) + ":" + std::string(range->as_string()) + ";";
      else if (auto* hash = e.seg.if_contains("hash"))
        concatenated += hash->as_string();
    }
    slo_etag = md5_hex(concatenated);
  }
  std::uint64_t total = 0;
  for (auto& e : entries) total += e.length;
  std::set<std::string> authorized;
  if (total > 0) flatten(q, entries, 0, total - 1, 1, authorized, pieces);
  return proxy::assembled(q, std::move(out), std::move(pieces), slo_etag, true);
}

http::Response manifest(Request& q, Source source, http::Response out) {
  auto stored_type = std::string(out.headers.get_or("Content-Type"));
  bool head = q.r().method == "HEAD";
  if (q.r().query_param("format") == "raw") {
    auto body = head ? read_object(q.proxy, q.path, "GET", {}).request->read_all()
                     : source.request->read_all();
    auto entries = entries_of(body);
    json::array raw;
    for (auto& e : entries) {
      if (auto* data = e.seg.if_contains("data")) {
        raw.push_back(json::object{{"data", *data}});
        continue;
      }
      // Keys sorted, as json.dumps(sort_keys=True) writes them.
      json::object seg;
      seg["etag"] = e.seg.contains("hash") ? e.seg.at("hash") : json::value(nullptr);
      seg["path"] = e.seg.contains("name") ? e.seg.at("name") : json::value(nullptr);
      if (auto* range = e.seg.if_contains("range")) seg["range"] = *range;
      seg["size_bytes"] = e.seg.contains("bytes") ? e.seg.at("bytes") : json::value(nullptr);
      raw.push_back(std::move(seg));
    }
    auto text = bulk::py_json(raw);
    out.headers.set("Content-Type", clean_content_type(stored_type));
    out.headers.set("ETag", md5_hex(text));
    out.headers.set("Content-Length", std::to_string(text.size()));
    if (head) {
      out.content_length_override = text.size();
    } else {
      out.body = std::move(text);
    }
    return out;
  }
  out.headers.set("Content-Type", "application/json; charset=utf-8");
  auto length = std::string(out.headers.get_or("Content-Length"));
  if (head) {
    std::uint64_t n = 0;
    std::from_chars(length.data(), length.data() + length.size(), n);
    out.content_length_override = n;
    return out;
  }
  out.stream = stream_of(std::move(source.request));
  return out;
}

http::Response delete_manifest(Request& q) {
  auto format = bulk::response_format(q.r());
  // Segments of sub-manifests first, each manifest after its segments (breadth first).
  std::vector<bulk::Item> items;
  struct Pending {
    std::string name;
    bool manifest = false;
    std::optional<std::pair<int, std::string>> error;
  };
  std::vector<Pending> queue{{"/" + q.path.container + "/" + q.path.object, true, std::nullopt}};
  for (size_t i = 0; i < queue.size(); ++i) {
    if (queue.size() > kMaxSegments * 10)
      throw swift_error(400, "Too many buffered slo segments to delete.");
    auto current = queue[i];
    if (!current.manifest) {
      items.push_back({current.name, current.error});
      continue;
    }
    auto path = segment_path(q.path.account, current.name);
    std::optional<std::pair<int, std::string>> error;
    if (!path) {
      error = std::pair(400, std::string("Not an SLO manifest"));
    } else {
      SubRequest head(q, "HEAD", *path, {}, {{"multipart-manifest", "get"}});
      int status = 0;
      bool slo = false;
      try {
        auto out = object_get(head.q());
        status = out.status;
        slo = is_slo(out.headers);
      } catch (const ApiError& e) {
        status = e.status();
      }
      if (status / 100 == 2 && slo) {
        auto source = read_object(q.proxy, *path, "GET", {});
        if (source.status != 200) {
          error = std::pair(500, std::string("Unable to load SLO manifest or segment."));
        } else {
          try {
            for (auto& e : entries_of(source.request->read_all())) {
              if (e.seg.contains("raw")) continue;
              bool sub = e.seg.contains("sub_slo") && e.seg.at("sub_slo").is_bool() &&
                         e.seg.at("sub_slo").as_bool();
              queue.push_back({std::string(e.seg.at("name").as_string()), sub, std::nullopt});
            }
          } catch (const ApiError&) {
            error = std::pair(500, std::string("Unable to load SLO manifest"));
          }
        }
      } else if (status / 100 == 2) {
        error = std::pair(400, std::string("Not an SLO manifest"));
      } else if (status == 404) {
        error = std::pair(404, std::string("SLO manifest not found"));
      } else if (status == 401) {
        error = std::pair(401, std::string("401 Unauthorized"));
      } else {
        error = std::pair(500, std::string("Unable to load SLO manifest or segment."));
      }
    }
    queue.push_back({current.name, false, error});
  }
  return bulk::delete_items(q, items, format);
}

}  // namespace nubo::object::proxy::slo
