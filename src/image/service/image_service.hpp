// The image service's operations (Glance v2 semantics): image records and their state machine,
// visibility and sharing, policy checks that depend on the image, tags, members, and data
// (streamed upload into a store while hashing and inspecting, staging, glance-direct import,
// download).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth.hpp"
#include "common/caller.hpp"
#include "common/db/database.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/limits.hpp"
#include "image/backends/store.hpp"

namespace soci {
class session;
}

namespace nubo::image {

class FileStore;

struct ImageSettings {
  std::string public_url = "http://127.0.0.1:9292";
  std::string store_backend = "file";
  std::string store_id = "file";
  std::string store_description = "Local file store";
  std::string data_dir;     // file store: STATE_DIR/images
  std::string staging_dir;  // staged data (glance-direct): STATE_DIR/staging
  long limit_param_default = 25;
  long api_limit_max = 1000;
  std::int64_t image_size_cap = 1099511627776;  // 1 TiB, Glance's default
  long image_member_quota = 128;
  long image_property_quota = 128;
  long image_tag_quota = 128;
  std::vector<std::string> import_methods{"glance-direct"};
  std::vector<std::string> container_formats{"ami", "ari", "aki",    "bare",
                                             "ovf", "ova", "docker", "compressed"};
  std::vector<std::string> disk_formats{"ami", "ari",   "aki", "vhd", "vhdx", "vmdk",
                                        "raw", "qcow2", "vdi", "iso", "ploop"};
  bool show_image_direct_url = false;
  // Keystone unified limits (image_count_total, image_count_uploading, image_size_total and
  // image_stage_total, sizes in MiB), as Glance's use_keystone_limits.
  bool use_keystone_limits = true;
  std::string region = "RegionOne";
};

using nubo::Caller;
using nubo::PolicyTarget;

// One JSON Patch operation, already parsed: draft 4 (v2.0 media type) or 10 (v2.1).
struct PatchOp {
  std::string op;                 // add, remove, replace
  std::vector<std::string> path;  // decoded pointer segments
  json::value value;
  int draft = 10;
};

struct ListRequest {
  std::vector<std::pair<std::string, std::string>> filters;  // name=..., size_min=..., custom props
  std::vector<std::string> tags;
  std::string member_status = "accepted";
  std::optional<std::string> marker;
  std::optional<long> limit;
  std::vector<std::pair<std::string, bool>> sort;  // key, descending; empty: created_at desc
  bool default_descending = true;                  // direction of the implicit created_at, id keys
};

struct ListResult {
  std::vector<json::object> images;
  std::optional<std::string> next_marker;
};

// Data arriving for an image (PUT /file or /stage): write() per chunk, then finish() or abort().
// write() and finish() throw ApiError to refuse the data; they have cleaned up when they do.
class ImageUpload {
 public:
  virtual ~ImageUpload() = default;
  virtual void write(std::string_view chunk) = 0;
  virtual json::object finish() = 0;  // the image as it is now
  virtual void abort() noexcept = 0;
};

class ImageService {
 public:
  ImageService(std::unique_ptr<db::Database> database, ImageSettings settings,
               std::shared_ptr<Clock> clock = std::make_shared<Clock>());
  ~ImageService();

  db::Database& database() { return *db_; }
  const ImageSettings& settings() const { return settings_; }
  // Where quotas come from (identity, in-process or remote); none: no quotas.
  void set_limit_source(std::shared_ptr<LimitSource> limits);
  ImageStore& store() { return *store_; }
  std::string now() const;

  // Images. Each returns the image row with `tags` (an array) added.
  json::object create(const Caller& c, const json::object& body);
  json::object show(const Caller& c, const std::string& id);
  ListResult list(const Caller& c, const ListRequest& request);
  json::object update(const Caller& c, const std::string& id, const std::vector<PatchOp>& changes);
  void remove(const Caller& c, const std::string& id);
  void deactivate(const Caller& c, const std::string& id);
  void reactivate(const Caller& c, const std::string& id);

  // Tags
  void add_tag(const Caller& c, const std::string& id, const std::string& tag);
  void remove_tag(const Caller& c, const std::string& id, const std::string& tag);

  // Members
  json::object add_member(const Caller& c, const std::string& id, const json::object& body);
  json::object update_member(const Caller& c, const std::string& id, const std::string& member_id,
                             const json::object& body);
  void remove_member(const Caller& c, const std::string& id, const std::string& member_id);
  std::vector<json::object> list_members(const Caller& c, const std::string& id);
  json::object show_member(const Caller& c, const std::string& id, const std::string& member_id);

  // Data. begin_upload checks and moves the image to `saving` (or `uploading` when staging).
  std::unique_ptr<ImageUpload> begin_upload(const Caller& c, const std::string& id, bool stage);
  void import_image(const Caller& c, const std::string& id, const json::object& body);
  // The image for a download after the checks; its `location` is null when it has no data.
  json::object prepare_download(const Caller& c, const std::string& id);
  std::unique_ptr<ImageReader> open_data(const json::object& image, std::uint64_t offset);

  // At start, before serving: no image stays `saving` or `importing`, no partial or orphan data
  // remains. Only the process that owns the stores may run it (it would cut uploads in flight).
  void recover();

  // Internal pieces the upload uses.
  struct UploadDone {
    std::string location;
    std::uint64_t size;
    std::string checksum, hash;
    std::optional<std::int64_t> virtual_size;
  };
  json::object complete_upload(const std::string& id, bool stage, const UploadDone& done);
  void fail_upload(const std::string& id, bool stage) noexcept;
  ImageStore& staging();
  // Where staged data for an image lives (whether or not it exists).
  std::string staged_location(const std::string& id) const;

 private:
  void set_activation(const Caller& c, const std::string& id, const char* action, const char* from, const char* to);
  // The image if the caller may see it (404 otherwise), read in this session.
  json::object visible(soci::session& s, const Caller& c, const std::string& id);
  PolicyTarget target(soci::session& s, const Caller& c, const json::object& image);
  json::object with_tags(soci::session& s, json::object image);
  void check_shared(const json::object& image);
  long activate(soci::session& s, const std::string& id, const UploadDone& done, const char* from);
  // The image a member call is about: visible, readable and shared (the prelude of every member call).
  std::pair<json::object, PolicyTarget> shared_image(soci::session& s, const Caller& c, const std::string& id);
  // The caller's project's image limits (empty: quotas off); then usage + delta checked against
  // them in the write transaction, 413 when over.
  std::map<std::string, std::int64_t> quota_limits(const Caller& c);
  void enforce_quota(soci::session& s, const Caller& c, const std::map<std::string, std::int64_t>& limits,
                     const std::vector<std::pair<std::string, std::int64_t>>& deltas);

  std::unique_ptr<db::Database> db_;
  ImageSettings settings_;
  std::shared_ptr<LimitSource> limits_;
  std::shared_ptr<Clock> clock_;
  std::unique_ptr<ImageStore> store_;
  std::unique_ptr<FileStore> staging_;
};

}  // namespace nubo::image
