// Objects assembled from segments: DLO listings, conditionals and Range on the whole, streaming.
#include "object/proxy/large_object.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <ctime>
#include <memory>
#include <set>
#include <stdexcept>

#include "common/digest.hpp"
#include "common/json.hpp"
#include "object/swift_http.hpp"

namespace nubo::object::proxy {

namespace {

std::string unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

bool etag_in(std::string_view list, const std::string& etag) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "*" || unquote(item) == etag) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// RFC 1123, RFC 850 and asctime dates (swob accepts all three; Tempest sends asctime).
std::optional<std::int64_t> parse_http_date(std::string_view s) {
  std::string text(s);
  for (auto* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
    std::tm tm{};
    auto* end = strptime(text.c_str(), format, &tm);
    if (end && *end == '\0') return static_cast<std::int64_t>(timegm(&tm));
  }
  return std::nullopt;
}

std::optional<std::int64_t> last_modified(const http::Response& out) {
  auto v = out.headers.get("Last-Modified");
  if (!v) return std::nullopt;
  return parse_http_date(*v);
}

// The pieces' bytes one after another, each segment read from a replica when its turn comes.
class PiecesSource : public http::BodySource {
 public:
  PiecesSource(Proxy& proxy, std::vector<Piece> pieces, std::string name)
      : proxy_(proxy), pieces_(std::move(pieces)), name_(std::move(name)) {}
  // Opens the first segment before the response starts: a missing one is a 409 then, as in
  // Swift, rather than a cut body.
  void open_first() {
    if (pieces_.empty() || pieces_[0].data) return;
    try {
      open(pieces_[0]);
    } catch (const std::exception& e) {
      spdlog::warn("object proxy: {}: {}", name_, e.what());
      throw swift_error(409);
    }
  }
  std::string next(size_t max) override {
    for (;;) {
      if (index_ >= pieces_.size()) return {};
      auto& piece = pieces_[index_];
      if (piece.data) {
        auto chunk =
            piece.data->substr(offset_, std::min<size_t>(max, piece.data->size() - offset_));
        offset_ += chunk.size();
        if (offset_ >= piece.data->size()) advance();
        if (!chunk.empty()) return chunk;
        continue;
      }
      if (!current_) open(piece);
      auto chunk = current_->read(std::min<std::uint64_t>(max, remaining_));
      if (chunk.empty()) {
        if (remaining_ > 0)
          throw std::runtime_error("segment " + piece.path.container + "/" + piece.path.object +
                                   " ended early");
        advance();
        continue;
      }
      remaining_ -= chunk.size();
      if (remaining_ == 0) advance();
      return chunk;
    }
  }

 private:
  void advance() {
    current_.reset();
    offset_ = 0;
    ++index_;
  }
  void open(const Piece& piece) {
    http::Headers h;
    bool whole = piece.first == 0 && piece.length == piece.segment_size;
    if (!whole)
      h.set("Range", "bytes=" + std::to_string(piece.first) + "-" +
                         std::to_string(piece.first + piece.length - 1));
    auto source = read_object(proxy_, piece.path, "GET", h);
    auto where = piece.path.container + "/" + piece.path.object;
    if (source.status != 200 && source.status != 206)
      throw std::runtime_error("segment " + where + " answered " + std::to_string(source.status));
    if (whole && !piece.etag.empty() && unquote(source.headers.get_or("ETag")) != piece.etag)
      throw std::runtime_error("Object segment no longer valid: " + where + " etag: " +
                               unquote(source.headers.get_or("ETag")) + " != " + piece.etag);
    current_ = std::move(source.request);
    remaining_ = piece.length;
  }
  Proxy& proxy_;
  std::vector<Piece> pieces_;
  std::string name_;
  size_t index_ = 0, offset_ = 0;
  std::uint64_t remaining_ = 0;
  std::unique_ptr<BackendRequest> current_;
};

// The pieces covering bytes [first, last] of the whole.
std::vector<Piece> slice(const std::vector<Piece>& pieces, std::uint64_t first,
                         std::uint64_t last) {
  std::vector<Piece> out;
  std::uint64_t at = 0;
  for (auto& p : pieces) {
    std::uint64_t begin = at, end = at + p.length;  // [begin, end)
    at = end;
    if (end <= first || begin > last || p.length == 0) continue;
    auto from = std::max(first, begin) - begin;
    auto to = std::min(last + 1, end) - begin;
    Piece q = p;
    if (q.data) {
      q.data = q.data->substr(from, to - from);
    } else {
      q.first = p.first + from;
    }
    q.length = to - from;
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace

std::vector<Piece> dlo_pieces(Request& q, std::string_view manifest, std::string& etag) {
  auto where = copy_location(manifest);
  if (!where) throw swift_error(409);
  SwiftPath container{q.path.account, where->first, "", true, false};
  Request listing = on_path(q, container);
  authorize_object(listing, true);
  std::vector<Piece> out;
  Md5 md5;
  std::string marker;
  for (;;) {
    auto body = container_listing(q.proxy, container,
                                  "format=json&prefix=" + http::percent_encode(where->second) +
                                      "&marker=" + http::percent_encode(marker));
    if (!body) break;
    boost::system::error_code ec;
    auto rows = json::parse(*body, ec);
    if (ec || !rows.is_array() || rows.as_array().empty()) break;
    for (auto& row : rows.as_array()) {
      auto& o = row.as_object();
      auto* name = o.if_contains("name");
      if (!name) continue;
      Piece piece;
      piece.path = object_path(q.path.account, where->first, std::string(name->as_string()));
      piece.length = piece.segment_size =
          static_cast<std::uint64_t>(o.at("bytes").to_number<std::int64_t>());
      auto hash = o.at("hash").as_string();
      md5.update(hash);
      marker = piece.path.object;
      out.push_back(std::move(piece));
    }
  }
  etag = md5.hex();
  return out;
}

http::Response assembled(Request& q, http::Response out, std::vector<Piece> pieces,
                         const std::string& etag, bool several_ranges) {
  auto& r = q.r();
  std::uint64_t size = 0;
  for (auto& p : pieces) size += p.length;
  out.status = 200;
  out.headers.set("ETag", "\"" + etag + "\"");
  out.headers.set("Accept-Ranges", "bytes");
  out.headers.remove("Content-Range");
  // Conditionals in swob's order; their answers keep the headers and have no body.
  auto no_body = [&](int status) {
    out.status = status;
    out.headers.remove("Content-Length");
    if (status == 412) out.headers.set("Content-Length", "0");
    return out;
  };
  if (auto m = r.headers.get("If-None-Match"); m && etag_in(*m, etag)) return no_body(304);
  if (auto m = r.headers.get("If-Match"); m && !etag_in(*m, etag)) return no_body(412);
  auto modified = last_modified(out);
  if (auto since = r.headers.get("If-Modified-Since"); since && modified)
    if (auto t = parse_http_date(*since); t && *modified <= *t) return no_body(304);
  if (auto since = r.headers.get("If-Unmodified-Since"); since && modified)
    if (auto t = parse_http_date(*since); t && *modified > *t) return no_body(412);
  auto name = q.path.container + "/" + q.path.object;
  // Called while the body is sent, after this request's handler returned: only the proxy and
  // copies are kept.
  auto open = [proxy = &q.proxy, pieces, name](const ByteRange& rg) {
    auto source = std::make_shared<PiecesSource>(*proxy, slice(pieces, rg.first, rg.second), name);
    source->open_first();
    return source;
  };
  out.headers.set("Content-Length", std::to_string(size));
  std::shared_ptr<http::BodySource> ranged;
  auto range = r.headers.get("Range");
  // A DLO answers one range only (Swift's dlo middleware drops a set of several).
  if (range && r.method != "HEAD" && (several_ranges || range->find(',') == std::string::npos))
    ranged = answer_range(out, *range, size, open);
  if (r.method == "HEAD") {
    out.content_length_override = size;
    return out;
  }
  if (ranged) {
    out.stream = std::move(ranged);
    return out;
  }
  auto source = std::make_shared<PiecesSource>(q.proxy, std::move(pieces), name);
  source->open_first();
  out.stream = std::move(source);
  return out;
}

}  // namespace nubo::object::proxy
