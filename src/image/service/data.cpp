// Image data: the streamed upload (hash, inspect and write each chunk; commit, then activate),
// staging and the glance-direct import, and the checks before a download.
#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/error.hpp"
#include "image/backends/file/file_store.hpp"
#include "image/service/access.hpp"
#include "image/service/checksum.hpp"
#include "image/service/format.hpp"
#include "image/service/image_service.hpp"
#include "image/store/images.hpp"
#include "image/store/schema.hpp"

namespace nubo::image {

namespace st = store;

namespace {

using access::enforce;
using access::image_target;
using access::str;
using access::visible_image;

// Everything a data stream goes through: size cap, format inspection, then the hashes and the
// store writer, which consume each chunk on their own threads (DataHasher's lanes).
class DataPipe {
 public:
  DataPipe(std::unique_ptr<ImageWriter> writer, std::string declared_format, std::int64_t size_cap)
      : writer_(std::move(writer)),
        inspector_(std::move(declared_format)),
        hasher_([w = writer_.get()](std::string_view chunk) { w->write(chunk); }),
        cap_(size_cap) {}

  // Throws ApiError (413) or the store's error; the writer is aborted when it does. Refused
  // content is not an error yet: the rest of the body is read and dropped, and commit() answers
  // 400, so that the client gets the answer rather than a connection reset mid-upload.
  void write(std::string_view chunk) {
    size_ += chunk.size();
    if (cap_ > 0 && size_ > static_cast<std::uint64_t>(cap_)) {
      abort();
      throw TooLarge("Denying attempt to upload image larger than " + std::to_string(cap_) +
                     " bytes.");
    }
    if (!refusal_.empty()) return;
    if (!inspected_) {
      inspector_.feed(chunk);
      refusal_ = inspector_.refusal();
      if (!refusal_.empty()) {
        abort();
        return;
      }
      inspected_ = size_ >= FormatInspector::kHeadBytes;
    }
    guarded([&] { hasher_.update(chunk); });
  }

  ImageService::UploadDone commit() {
    if (!refusal_.empty()) throw BadRequest("Image data is refused: " + refusal_);
    std::string why;
    auto report = inspector_.finish(size_, why);
    if (!why.empty()) {
      abort();
      throw BadRequest("Image data is refused: " + why);
    }
    ImageService::UploadDone done;
    done.size = size_;
    done.virtual_size = report.virtual_size;
    guarded([&] {
      hasher_.finish(done.checksum, done.hash);
      done.location = writer_->commit();
    });
    return done;
  }

  void abort() noexcept {
    hasher_.cancel();  // the writer's lane must stop before the writer goes away
    writer_->abort();
  }

 private:
  // Runs fn; on failure the data is dropped, and a full store becomes Glance's 413.
  template <class Fn>
  void guarded(Fn fn) {
    try {
      fn();
    } catch (const StorageFull& e) {
      abort();
      throw TooLarge(std::string("Image storage media is full: ") + e.what());
    } catch (...) {
      abort();
      throw;
    }
  }

  std::unique_ptr<ImageWriter> writer_;
  FormatInspector inspector_;
  DataHasher hasher_;
  std::int64_t cap_;
  std::uint64_t size_ = 0;
  bool inspected_ = false;
  std::string refusal_;
};

class Upload : public ImageUpload {
 public:
  Upload(ImageService& service, std::string id, bool stage, std::unique_ptr<DataPipe> pipe)
      : service_(service), id_(std::move(id)), stage_(stage), pipe_(std::move(pipe)) {}
  ~Upload() override {
    if (!done_) abort();
  }

  void write(std::string_view chunk) override {
    if (done_) throw std::logic_error("image data written after the upload ended");
    try {
      pipe_->write(chunk);
    } catch (...) {
      fail();
      throw;
    }
  }

  json::object finish() override {
    if (done_) throw std::logic_error("image upload finished twice");
    ImageService::UploadDone result;
    try {
      result = pipe_->commit();
    } catch (...) {
      fail();
      throw;
    }
    done_ = true;
    return service_.complete_upload(id_, stage_, result);
  }

  void abort() noexcept override {
    if (done_) return;
    fail();
  }

 private:
  void fail() noexcept {
    if (done_) return;
    done_ = true;
    pipe_->abort();
    service_.fail_upload(id_, stage_);
  }

  ImageService& service_;
  std::string id_;
  bool stage_;
  std::unique_ptr<DataPipe> pipe_;
  bool done_ = false;
};

}  // namespace

// Marks the image active with its data's size, hashes and location, if it is still in `from`
// (a concurrent delete or reset wins); returns the rows changed.
long ImageService::activate(soci::session& s, const std::string& id, const UploadDone& done, const char* from) {
  return db::execute(s,
                     "UPDATE image SET status = 'active', size = :p0, virtual_size = :p1, checksum = :p2, "
                     "os_hash_algo = 'sha512', os_hash_value = :p3, location = :p4, updated_at = :p5 "
                     "WHERE id = :p6 AND status = :p7",
                     {std::to_string(done.size),
                      done.virtual_size ? std::optional(std::to_string(*done.virtual_size)) : std::nullopt,
                      done.checksum, done.hash, done.location, now(), id, std::string(from)});
}

std::unique_ptr<ImageUpload> ImageService::begin_upload(const Caller& c, const std::string& id,
                                                        bool stage) {
  if (stage && std::find(settings_.import_methods.begin(), settings_.import_methods.end(),
                         "glance-direct") == settings_.import_methods.end())
    throw NotFound("The staging API is not enabled (glance-direct import is off).");
  const char* next = stage ? "uploading" : "saving";
  std::string declared;
  auto limits = quota_limits(c);
  db_->write([&](soci::session& s) {
    bool member = false;
    auto image = visible_image(s, c, id, member);
    enforce(c, "upload_image", image_target(c, image, member));
    auto status = str(image, "status");
    if (status != "queued")
      throw Conflict("Image status transition from '" + status + "' to '" + next +
                     "' is not allowed");
    enforce_quota(s, c, limits,
                  {{stage ? "image_stage_total" : "image_size_total", 0}, {"image_count_uploading", 1}});
    declared = str(image, "disk_format");
    db::execute(
        s, "UPDATE image SET status = :p0, updated_at = :p1 WHERE id = :p2 AND status = 'queued'",
        {std::string(next), now(), id});
  });
  std::unique_ptr<ImageWriter> writer;
  try {
    writer = stage ? staging().open_writer(id) : store_->open_writer(id);
  } catch (...) {
    fail_upload(id, stage);
    throw;
  }
  auto pipe = std::make_unique<DataPipe>(std::move(writer), declared, settings_.image_size_cap);
  return std::make_unique<Upload>(*this, id, stage, std::move(pipe));
}

json::object ImageService::complete_upload(const std::string& id, bool stage,
                                           const UploadDone& done) {
  long changed = 0;
  json::object out;
  auto& target_store = stage ? staging() : *store_;
  auto drop_data = [&]() noexcept {
    try {
      target_store.remove(done.location);
    } catch (const std::exception& e) {
      spdlog::warn("image {}: orphan data not removed: {}", id, e.what());
    }
  };
  try {
    db_->write([&](soci::session& s) {
      if (stage) {
        // The staged data stays in the staging area until the import; the image stays `uploading`
        // with the staged size, which the image_stage_total quota counts.
        changed = db::execute(
            s, "UPDATE image SET size = :p0, updated_at = :p1 WHERE id = :p2 AND status = 'uploading'",
            {std::to_string(done.size), now(), id});
      } else {
        changed = activate(s, id, done, "saving");
      }
      if (changed) {
        out = *db::get(s, st::image, id);
        json::array tags;
        for (auto& t : st::tags_of(s, id)) tags.emplace_back(t);
        out["tags"] = std::move(tags);
      }
    });
  } catch (...) {
    // Not recorded: the data must not outlive the failure, nor the image stay `saving`.
    drop_data();
    fail_upload(id, stage);
    throw;
  }
  if (!changed) {
    // Deleted (or reset) while the data was arriving: the data has no image to belong to.
    drop_data();
    throw ApiError(410,
                   "Image " + id +
                       " could not be found after upload. The image may have been deleted during "
                       "the upload.",
                   "Gone");
  }
  return out;
}

void ImageService::fail_upload(const std::string& id, bool stage) noexcept {
  try {
    db_->write([&](soci::session& s) {
      db::execute(
          s, "UPDATE image SET status = 'queued', updated_at = :p0 WHERE id = :p1 AND status = :p2",
          {now(), id, std::string(stage ? "uploading" : "saving")});
    });
  } catch (const std::exception& e) {
    spdlog::error("image {}: cannot reset the status after a failed upload: {}", id, e.what());
  }
}

void ImageService::import_image(const Caller& c, const std::string& id, const json::object& body) {
  auto* method = find(body, "method");
  if (!method) throw BadRequest("Import request requires a 'method' field.");
  if (!method->is_object()) throw BadRequest("Import request requires a 'method' field.");
  auto* name = find(method->as_object(), "name");
  if (!name) throw BadRequest("Import request requires a 'name' field.");
  std::string method_name =
      name->is_string() ? std::string(name->as_string()) : json::serialize(*name);
  if (std::find(settings_.import_methods.begin(), settings_.import_methods.end(), method_name) ==
      settings_.import_methods.end())
    throw BadRequest("Unknown import method name '" + method_name + "'.");
  for (const char* flag : {"all_stores", "all_stores_must_succeed"})
    if (auto* v = find(body, flag); v && !v->is_bool())
      throw BadRequest("'" + std::string(flag) + "' must be a boolean value");
  if (auto* stores = find(body, "stores")) {
    if (!stores->is_array()) throw BadRequest("'stores' must be a list of store identifiers");
    for (auto& sv : stores->as_array())
      if (!sv.is_string() || sv.as_string() != store_->id())
        throw Conflict("Unknown store " +
                       (sv.is_string() ? std::string(sv.as_string()) : json::serialize(sv)));
  }

  std::string declared;
  auto limits = quota_limits(c);
  db_->write([&](soci::session& s) {
    bool member = false;
    auto image = visible_image(s, c, id, member);
    auto status = str(image, "status");
    if (status == "active") throw Conflict("Image with status active cannot be target for import");
    enforce_quota(s, c, limits, {{"image_size_total", 0}});
    if (status != "uploading")
      throw Conflict("Image needs to be staged before 'glance-direct' method can be used");
    if (str(image, "container_format").empty())
      throw Conflict("'container_format' needs to be set before import");
    if (str(image, "disk_format").empty())
      throw Conflict("'disk_format' needs to be set before import");
    enforce(c, "modify_image", image_target(c, image, member));
    declared = str(image, "disk_format");
    json::object fields{{"status", "importing"},
                        {"updated_at", now()},
                        {"os_glance_importing_to_stores", store_->id()},
                        {"os_glance_failed_import", ""}};
    db::update(s, st::image, id, fields);
  });

  // The import runs now, in the request: the staged data is copied into the store while hashed.
  auto staged = staged_location(id);
  UploadDone done;
  try {
    auto reader = staging().open_reader(staged, 0);
    DataPipe pipe(store_->open_writer(id), declared, settings_.image_size_cap);
    for (;;) {
      auto chunk = reader->read(1 << 20);
      if (chunk.empty()) break;
      pipe.write(chunk);
    }
    done = pipe.commit();
  } catch (...) {
    db_->write([&](soci::session& s) {
      db::execute(s,
                  "UPDATE image SET status = 'queued', updated_at = :p0 WHERE id = :p1 AND status "
                  "= 'importing'",
                  {now(), id});
      if (db::get(s, st::image, id))
        db::update(s, st::image, id,
                   json::object{{"os_glance_importing_to_stores", ""},
                                {"os_glance_failed_import", store_->id()}});
    });
    try {
      staging().remove(staged);
    } catch (...) {
    }
    throw;
  }
  long changed = 0;
  db_->write([&](soci::session& s) {
    changed = activate(s, id, done, "importing");
    if (changed)
      db::update(
          s, st::image, id,
          json::object{{"os_glance_importing_to_stores", ""}, {"os_glance_failed_import", ""}});
  });
  try {
    staging().remove(staged);
    if (!changed) store_->remove(done.location);
  } catch (const std::exception& e) {
    spdlog::warn("image {}: data not removed after import: {}", id, e.what());
  }
  if (!changed)
    throw ApiError(410,
                   "Image " + id +
                       " could not be found after import. The image may have been deleted during "
                       "the import.",
                   "Gone");
}

json::object ImageService::prepare_download(const Caller& c, const std::string& id) {
  json::object image;
  db_->read([&](soci::session& s) {
    bool member = false;
    image = visible_image(s, c, id, member);
    enforce(c, "download_image", image_target(c, image, member));
  });
  if (str(image, "status") == "deactivated" && !c.admin())
    throw Forbidden("The requested image has been deactivated. Image data download is forbidden.");
  return image;
}

std::unique_ptr<ImageReader> ImageService::open_data(const json::object& image,
                                                     std::uint64_t offset) {
  return store_->open_reader(str(image, "location"), offset);
}

}  // namespace nubo::image
