// Image data over HTTP: PUT /file and /stage stream the body into the service's upload (the
// server feeds a BodySink), GET /file streams the stored data back (a BodySource, with Range),
// POST /import runs the glance-direct import.
#include <algorithm>
#include <charconv>

#include "image/api/common.hpp"

namespace nubo::image::api {

namespace {

constexpr const char* kOctetStream = "application/octet-stream";

void require_octet_stream(const Context& ctx) {
  auto type = ctx.request.headers.get("Content-Type");
  std::string t = type ? std::string(type->substr(0, type->find(';'))) : std::string();
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (t != kOctetStream)
    throw UnsupportedMediaType("Invalid content type " +
                               (type ? std::string(*type) : std::string("None")) +
                               "; the body must be application/octet-stream.");
}

// The service's upload as the server's sink. finish() answers itself, errors included, so that
// the server needs no knowledge of Glance's error dialect after the body has been read.
class UploadSink : public http::BodySink {
 public:
  explicit UploadSink(std::unique_ptr<ImageUpload> upload) : upload_(std::move(upload)) {}
  void write(std::string_view chunk) override { upload_->write(chunk); }
  http::Response finish() override {
    try {
      upload_->finish();
      return no_content();
    } catch (const ApiError& e) {
      auto r = render_glance_error(e);
      for (auto& [k, v] : e.headers) r.headers.set(k, v);
      return r;
    }
  }
  void abort() noexcept override { upload_->abort(); }

 private:
  std::unique_ptr<ImageUpload> upload_;
};

UploadHandler upload_handler(ImageService& s, bool stage) {
  return [&s, stage](Context& ctx) -> std::unique_ptr<http::BodySink> {
    require_octet_stream(ctx);
    return std::make_unique<UploadSink>(s.begin_upload(caller(ctx), ctx.param("image_id"), stage));
  };
}

// Until the server streams request bodies it buffers them and calls the route's handler: feed the
// buffered body to the same sink.
RouteHandler buffered(UploadHandler start) {
  return [start](Context& ctx) {
    auto sink = start(ctx);
    sink->write(ctx.request.body);
    return sink->finish();
  };
}

class ReaderSource : public http::BodySource {
 public:
  ReaderSource(std::unique_ptr<ImageReader> reader, std::uint64_t length)
      : reader_(std::move(reader)), remaining_(length) {}
  std::string next(size_t max_bytes) override {
    if (remaining_ == 0) return {};
    auto chunk = reader_->read(static_cast<size_t>(std::min<std::uint64_t>(max_bytes, remaining_)));
    if (chunk.empty()) throw std::runtime_error("image data is shorter than its recorded size");
    remaining_ -= chunk.size();
    return chunk;
  }
  std::optional<FileSpan> file_span() override {
    auto at = reader_->file_position();
    if (!at) return std::nullopt;
    return FileSpan{at->fd, at->offset, remaining_};
  }

 private:
  std::unique_ptr<ImageReader> reader_;
  std::uint64_t remaining_;
};

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  auto b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  if (b == std::string_view::npos) return std::nullopt;
  s = s.substr(b, e - b + 1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

struct Range {
  std::uint64_t first, last;  // inclusive
};

// One "bytes=a-b" / "bytes=a-" / "bytes=-n" range; nullopt to send everything (absent, malformed,
// or several ranges). Throws 416 when it cannot be satisfied.
std::optional<Range> requested_range(const Context& ctx, std::uint64_t size) {
  auto header = ctx.request.headers.get("Range");
  if (!header) return std::nullopt;
  std::string_view h = *header;
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string_view::npos) return std::nullopt;
  h.remove_prefix(6);
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto a = h.substr(0, dash), b = h.substr(dash + 1);
  auto unsatisfiable = [&]() {
    ApiError e(416, "Requested range not satisfiable", "RequestedRangeNotSatisfiable");
    e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return e;
  };
  if (a.find_first_not_of(' ') == std::string_view::npos) {
    auto n = number(b);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) throw unsatisfiable();
    return Range{size - std::min(*n, size), size - 1};
  }
  auto first = number(a);
  if (!first) return std::nullopt;
  std::optional<std::uint64_t> last;
  if (b.find_first_not_of(' ') != std::string_view::npos) {
    last = number(b);
    if (!last || *last < *first) return std::nullopt;
  }
  if (*first >= size) throw unsatisfiable();
  return Range{*first, std::min(last.value_or(size - 1), size - 1)};
}

}  // namespace

void add_data_routes(std::vector<Route>& routes, ImageService& s) {
  for (bool stage : {false, true}) {
    Route r;
    r.method = "PUT";
    r.path = stage ? "/v2/images/{image_id}/stage" : "/v2/images/{image_id}/file";
    r.upload = upload_handler(s, stage);
    r.handler = buffered(r.upload);
    routes.push_back(std::move(r));
  }
  routes.push_back({"POST", "/v2/images/{image_id}/import", [&s](Context& ctx) {
                      s.import_image(caller(ctx), ctx.param("image_id"), body_object(ctx));
                      return empty_response(202);
                    }});
  routes.push_back({"GET", "/v2/images/{image_id}/file", [&s](Context& ctx) {
                      auto c = caller(ctx);
                      auto image = s.prepare_download(c, ctx.param("image_id"));
                      auto* location = find(image, "location");
                      auto* size_value = find(image, "size");
                      if (!location || !location->is_string() || !size_value ||
                          !size_value->is_int64())
                        return no_content();  // no data yet: 204 with an empty body
                      auto size = static_cast<std::uint64_t>(size_value->as_int64());
                      auto range = requested_range(ctx, size);
                      std::uint64_t first = range ? range->first : 0;
                      std::uint64_t length = range ? range->last - range->first + 1 : size;
                      http::Response r;
                      r.status = range ? 206 : 200;
                      r.headers.set("Content-Type", kOctetStream);
                      r.headers.set("Content-Length", std::to_string(length));
                      r.headers.set("Accept-Ranges", "bytes");
                      if (range)
                        r.headers.set("Content-Range", "bytes " + std::to_string(range->first) +
                                                           "-" + std::to_string(range->last) + "/" +
                                                           std::to_string(size));
                      else if (auto* md5 = find(image, "checksum"); md5 && md5->is_string())
                        r.headers.set("Content-MD5", std::string(md5->as_string()));
                      r.stream = std::make_shared<ReaderSource>(s.open_data(image, first), length);
                      return r;
                    }});
}

}  // namespace nubo::image::api
