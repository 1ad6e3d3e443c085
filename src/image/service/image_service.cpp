#include "image/service/image_service.hpp"

#include <soci/soci.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <set>
#include <unordered_set>

#include "common/error.hpp"
#include "image/backends/file/file_store.hpp"
#include "image/service/access.hpp"
#include "image/store/images.hpp"
#include "image/store/schema.hpp"

namespace nubo::image {

namespace st = store;
using access::enforce;
using access::str;

namespace {

// Attributes an image always has (the `hasattr(image, x)` of Glance's domain model).
const std::set<std::string, std::less<>> kBase = {
    "id",           "name",          "status",           "visibility", "protected",    "os_hidden",
    "owner",        "disk_format",   "container_format", "size",       "virtual_size", "checksum",
    "os_hash_algo", "os_hash_value", "min_disk",         "min_ram",    "created_at",   "updated_at",
    "tags"};
// Server-managed: clients may not set them (403).
const std::set<std::string, std::less<>> kReadOnly = {
    "created_at", "updated_at", "status", "checksum", "size",         "virtual_size",  "direct_url",
    "self",       "file",       "schema", "id",       "os_hash_algo", "os_hash_value", "stores"};
const std::set<std::string, std::less<>> kReserved = {"location", "deleted", "deleted_at"};
constexpr std::string_view kReservedPrefix = "os_glance_";
const std::vector<std::string> kVisibilities = {"public", "private", "shared", "community"};
const std::vector<std::string> kMemberStatuses = {"pending", "accepted", "rejected"};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool reserved_name(std::string_view key) {
  return kReserved.count(key) || key.rfind(kReservedPrefix, 0) == 0;
}

// Glance's image schema, for the writable base attributes; BadRequest like jsonschema's.
void validate_base(const ImageSettings& settings, std::string_view key, const json::value& v) {
  auto bad = [&](const std::string& why) {
    throw BadRequest("Invalid value for '" + std::string(key) + "': " + why);
  };
  if (key == "name" || key == "owner") {
    if (v.is_null()) return;
    if (!v.is_string()) bad(json::serialize(v) + " is not of type 'null', 'string'");
    if (v.as_string().size() > 255) bad("is too long (maximum 255 characters)");
  } else if (key == "visibility") {
    if (!v.is_string() || !contains(kVisibilities, v.as_string()))
      bad(json::serialize(v) + " is not one of ['community', 'public', 'private', 'shared']");
  } else if (key == "protected" || key == "os_hidden") {
    if (!v.is_bool()) bad(json::serialize(v) + " is not of type 'boolean'");
  } else if (key == "container_format" || key == "disk_format") {
    if (v.is_null()) return;
    auto& allowed = key == "disk_format" ? settings.disk_formats : settings.container_formats;
    if (!v.is_string() || !contains(allowed, v.as_string())) {
      std::string list;
      for (auto& f : allowed) list += (list.empty() ? "" : ", ") + ("'" + f + "'");
      bad(json::serialize(v) + " is not one of [None, " + list + "]");
    }
  } else if (key == "min_disk" || key == "min_ram") {
    if (!v.is_int64() && !v.is_uint64()) bad(json::serialize(v) + " is not of type 'integer'");
    auto n = v.is_int64()
                 ? v.as_int64()
                 : static_cast<std::int64_t>(std::min<std::uint64_t>(v.as_uint64(), INT64_MAX));
    if (n < 0) bad("must be a non-negative integer");
    if (n > INT_MAX) bad("value out of range, must not exceed " + std::to_string(INT_MAX));
  } else if (key == "tags") {
    if (!v.is_array()) bad(json::serialize(v) + " is not of type 'array'");
    for (auto& t : v.as_array()) {
      if (!t.is_string()) bad(json::serialize(t) + " is not of type 'string'");
      if (t.as_string().size() > 255) bad("a tag is too long (maximum 255 characters)");
    }
  } else if (key == "id") {
    if (!v.is_string()) bad("is not of type 'string'");
    std::string_view s = v.as_string();
    static const int groups[] = {8, 4, 4, 4, 12};
    size_t pos = 0;
    for (int g = 0; g < 5; ++g) {
      if (g) {
        if (pos >= s.size() || s[pos] != '-') bad("does not look like a UUID");
        ++pos;
      }
      for (int i = 0; i < groups[g]; ++i, ++pos)
        if (pos >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[pos])))
          bad("does not look like a UUID");
    }
    if (pos != s.size()) bad("does not look like a UUID");
  }
}

void validate_extra(std::string_view key, const json::value& v) {
  if (key.size() > 255)
    throw BadRequest("Custom property should not be greater than 255 characters.");
  if (!v.is_string())
    throw BadRequest("Invalid value for '" + std::string(key) + "': " + json::serialize(v) +
                     " is not of type 'string'");
}

std::vector<std::string> tag_list(const json::value& v) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& t : v.as_array()) {
    std::string s(t.as_string());
    if (seen.insert(s).second) out.push_back(std::move(s));
  }
  return out;
}

size_t extra_count(const json::object& image) {
  size_t n = 0;
  for (auto& kv : image)
    if (!kBase.count(kv.key()) && kv.key() != "location" && kv.key().rfind(kReservedPrefix, 0) != 0)
      ++n;
  return n;
}

void write_tags(soci::session& s, const std::string& id, const std::vector<std::string>& tags) {
  db::remove(s, st::image_tag, db::Query{}.eq("image_id", id));
  for (auto& t : tags) db::insert(s, st::image_tag, json::object{{"image_id", id}, {"value", t}});
}

std::string forbidden_message(const std::string& rule) {
  return "You are not authorized to complete " + rule + " action.";
}

}  // namespace

ImageService::ImageService(std::unique_ptr<db::Database> database, ImageSettings settings,
                           std::shared_ptr<Clock> clock)
    : db_(std::move(database)), settings_(std::move(settings)), clock_(std::move(clock)) {
  db_->migrate("image", st::migrations());
  store_ =
      make_store(settings_.store_backend, StoreOptions{settings_.store_id, settings_.data_dir});
  staging_ = std::make_unique<FileStore>("os_glance_staging_store", settings_.staging_dir);
}

ImageService::~ImageService() = default;

void ImageService::set_limit_source(std::shared_ptr<LimitSource> limits) { limits_ = std::move(limits); }

// Glance's keystone quotas: fetched before the transaction (the identity service may be remote),
// counted and checked inside it, so that two creates cannot both take the last place.
std::map<std::string, std::int64_t> ImageService::quota_limits(const Caller& c) {
  if (!limits_ || !settings_.use_keystone_limits || c.project().empty()) return {};
  return limits_->project_limits("image", settings_.region, c.project());
}

void ImageService::enforce_quota(soci::session& s, const Caller& c,
                                 const std::map<std::string, std::int64_t>& limits,
                                 const std::vector<std::pair<std::string, std::int64_t>>& deltas) {
  if (limits.empty()) return;
  // Each resource's usage query; sizes are summed in bytes and counted in MiB, rounded down, as
  // Glance counts them (divided here: PostgreSQL's SUM is a numeric whose quotient is no integer).
  struct Usage {
    const char* sql;
    std::int64_t unit;
  };
  static const std::map<std::string, Usage, std::less<>> kUsage = {
      {"image_count_total", {"SELECT COUNT(*) FROM image WHERE owner = :p0", 1}},
      {"image_count_uploading",
       {"SELECT COUNT(*) FROM image WHERE owner = :p0 AND status IN ('saving', 'uploading', 'importing')", 1}},
      {"image_size_total",
       {"SELECT COALESCE(SUM(size), 0) FROM image WHERE owner = :p0 AND status IN ('active', 'deactivated')",
        1048576}},
      {"image_stage_total",
       {"SELECT COALESCE(SUM(size), 0) FROM image WHERE owner = :p0 AND status IN ('uploading', 'importing')",
        1048576}}};
  std::vector<LimitCheck> checks;
  for (auto& [resource, delta] : deltas) {
    if (!limits.count(resource)) continue;
    auto& usage = kUsage.at(resource);
    auto rows = db::query_strings(s, usage.sql, {c.project()});
    std::int64_t used = rows.empty() || !rows[0][0] ? 0 : std::stoll(*rows[0][0]);
    checks.push_back({resource, used / usage.unit, delta});
  }
  if (auto over = over_limit(limits, c.project(), checks))
    throw TooLarge("The request returned a 413 Request Entity Too Large. This generally means that "
                   "rate limiting or a quota threshold was breached.\n\nThe response body:\n" + *over);
}

std::string ImageService::now() const { return iso8601(clock_->now(), true, true); }

ImageStore& ImageService::staging() { return *staging_; }

std::string ImageService::staged_location(const std::string& id) const {
  return "file://" + staging_->directory() + "/" + id;
}

// ---------------------------------------------------------------- visibility and policy

json::object ImageService::visible(soci::session& s, const Caller& c, const std::string& id) {
  bool member = false;
  return access::visible_image(s, c, id, member);
}

PolicyTarget ImageService::target(soci::session& s, const Caller& c, const json::object& image) {
  return access::image_target(c, image,
                              st::membership(s, str(image, "id"), c.project()).has_value());
}

json::object ImageService::with_tags(soci::session& s, json::object image) {
  json::array tags;
  for (auto& t : st::tags_of(s, str(image, "id"))) tags.emplace_back(t);
  image["tags"] = std::move(tags);
  return image;
}

std::pair<json::object, PolicyTarget> ImageService::shared_image(soci::session& s, const Caller& c,
                                                                 const std::string& id) {
  auto image = visible(s, c, id);
  auto t = target(s, c, image);
  enforce(c, "get_image", t);
  check_shared(image);
  return {std::move(image), std::move(t)};
}

void ImageService::check_shared(const json::object& image) {
  if (str(image, "visibility") != "shared")
    throw Forbidden("Error fetching members of image " + str(image, "id") +
                    ": Only shared images have members.");
}

// ---------------------------------------------------------------- images

json::object ImageService::create(const Caller& c, const json::object& body) {
  for (const char* k : {"direct_url", "self", "file", "schema", "stores"})
    if (body.contains(k)) throw Forbidden("Attribute '" + std::string(k) + "' is read-only.");
  json::object row;
  std::vector<std::string> tags;
  json::object extras;
  for (auto& kv : body) {
    std::string_view key = kv.key();
    if (kBase.count(key) && !kReadOnly.count(key)) {
      validate_base(settings_, key, kv.value());
    } else if (key == "id") {
      validate_base(settings_, key, kv.value());
    } else if (!kBase.count(key)) {
      if (key == "locations") throw Forbidden("Attribute 'locations' is reserved.");
      if (key.size() > 255)
        throw BadRequest("Custom property should not be greater than 255 characters.");
      if (reserved_name(key)) throw Forbidden("Attribute '" + std::string(key) + "' is reserved.");
      validate_extra(key, kv.value());
      extras[key] = kv.value();
    }
  }
  for (auto& kv : body)
    if (kReadOnly.count(kv.key()) && kv.key() != "id")
      throw Forbidden("Attribute '" + std::string(kv.key()) + "' is read-only.");

  std::string owner = c.project();
  if (auto* o = find(body, "owner"); o && o->is_string() && !o->as_string().empty())
    owner = o->as_string();
  c.authorize("add_image", {{"project_id", owner}, {"owner", owner}});
  std::string visibility = body.contains("visibility") ? str(body, "visibility") : "shared";
  if (visibility == "public")
    c.authorize("publicize_image", {{"project_id", owner}, {"owner", owner}});
  if (visibility == "community")
    c.authorize("communitize_image", {{"project_id", owner}, {"owner", owner}});
  if (auto* t = find(body, "tags")) tags = tag_list(*t);
  if (static_cast<long>(tags.size()) > settings_.image_tag_quota)
    throw TooLarge("Maximum number of tags exceeded (" + std::to_string(settings_.image_tag_quota) +
                   ").");
  if (static_cast<long>(extras.size()) > settings_.image_property_quota)
    throw TooLarge("Maximum number of image properties exceeded (" +
                   std::to_string(settings_.image_property_quota) + ").");

  std::string id = body.contains("id") ? str(body, "id") : uuid4();
  auto ts = now();
  row = extras;
  row["id"] = id;
  row["name"] = body.contains("name") ? body.at("name") : json::value(nullptr);
  row["status"] = "queued";
  row["visibility"] = visibility;
  row["protected"] = bool_or(body, "protected", false);
  row["os_hidden"] = bool_or(body, "os_hidden", false);
  row["owner"] = owner.empty() ? json::value(nullptr) : json::value(owner);
  row["disk_format"] = body.contains("disk_format") ? body.at("disk_format") : json::value(nullptr);
  row["container_format"] =
      body.contains("container_format") ? body.at("container_format") : json::value(nullptr);
  row["size"] = nullptr;
  row["virtual_size"] = nullptr;
  row["checksum"] = nullptr;
  row["os_hash_algo"] = nullptr;
  row["os_hash_value"] = nullptr;
  row["min_disk"] = body.contains("min_disk") ? body.at("min_disk") : json::value(0);
  row["min_ram"] = body.contains("min_ram") ? body.at("min_ram") : json::value(0);
  row["created_at"] = ts;
  row["updated_at"] = ts;
  row["location"] = nullptr;
  auto limits = quota_limits(c);
  db_->write([&](soci::session& s) {
    if (db::get(s, st::image, id))
      throw Conflict("Image with identifier " + id + " already exists!");
    enforce_quota(s, c, limits, {{"image_count_total", 1}});
    db::insert(s, st::image, row);
    write_tags(s, id, tags);
  });
  json::array ta;
  for (auto& t : tags) ta.emplace_back(t);
  row["tags"] = std::move(ta);
  return row;
}

json::object ImageService::show(const Caller& c, const std::string& id) {
  json::object out;
  db_->read([&](soci::session& s) {
    auto image = visible(s, c, id);
    enforce(c, "get_image", target(s, c, image));
    out = with_tags(s, std::move(image));
  });
  return out;
}

ListResult ImageService::list(const Caller& c, const ListRequest& r) {
  c.authorize("get_images", {{"project_id", c.project()}});
  st::ListQuery q;
  q.admin = c.admin();
  q.project = c.project();
  q.member_status = r.member_status;
  q.tags = r.tags;
  long limit = std::min(r.limit.value_or(settings_.limit_param_default), settings_.api_limit_max);
  bool os_hidden_filtered = false;
  std::vector<std::pair<std::string, std::string>> properties;

  auto bad_operator = [](const std::string& op) {
    throw BadRequest("Unable to filter by unknown operator '" + op + "'.");
  };
  // Glance's split_filter_op: "op:value", except that a bare ISO time keeps its colons.
  auto split_op = [](const std::string& expr) -> std::pair<std::string, std::string> {
    auto colon = expr.find(':');
    if (colon == std::string::npos) return {"eq", expr};
    if (expr.find('T') != std::string::npos && parse_iso8601(expr)) return {"eq", expr};
    return {expr.substr(0, colon), expr.substr(colon + 1)};
  };
  auto integer = [](const std::string& v, const char* message) {
    try {
      size_t used = 0;
      long long n = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
      return std::to_string(n);
    } catch (const std::exception&) {
      throw BadRequest(message);
    }
  };

  for (auto& [key, value] : r.filters) {
    if (key == "visibility") {
      q.visibility = value;
    } else if (key == "os_hidden" || key == "protected") {
      std::string v;
      for (char ch : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (v != "true" && v != "false")
        throw BadRequest("Invalid value '" + value + "' for '" + key +
                         "' filter. Valid values are 'true' or 'false'.");
      q.conditions.push_back({key, "=", {v == "true" ? "1" : "0"}});
      if (key == "os_hidden") os_hidden_filtered = true;
    } else if (key.size() > 4 && (key.ends_with("_min") || key.ends_with("_max"))) {
      auto column = key.substr(0, key.size() - 4);
      if (column != "size" && column != "virtual_size" && column != "min_disk" &&
          column != "min_ram")
        throw BadRequest("Unable to filter on a range of '" + column + "'.");
      auto n = integer(value, "Unable to filter on a range with a non-numeric value.");
      q.conditions.push_back({column, key.ends_with("_min") ? ">=" : "<=", {n}});
    } else if (key == "created_at" || key == "updated_at") {
      auto [op, when] = split_op(value);
      auto t = parse_iso8601(when);
      if (!t)
        throw BadRequest("Bad \"" + key +
                         "\" query filter format. Use ISO 8601 DateTime notation.");
      // Glance keeps times to the second: compare whole seconds.
      auto lo = std::chrono::floor<std::chrono::seconds>(*t);
      auto from = iso8601(lo, true, true), to = iso8601(lo + std::chrono::seconds(1), true, true);
      if (op == "gt")
        q.conditions.push_back({key, ">=", {to}});
      else if (op == "gte")
        q.conditions.push_back({key, ">=", {from}});
      else if (op == "lt")
        q.conditions.push_back({key, "<", {from}});
      else if (op == "lte")
        q.conditions.push_back({key, "<", {to}});
      else if (op == "eq") {
        q.conditions.push_back({key, ">=", {from}});
        q.conditions.push_back({key, "<", {to}});
      } else if (op == "neq")
        q.conditions.push_back({key, "OUTSIDE", {from, to}});
      else
        bad_operator(op);
    } else if (key == "name" || key == "id" || key == "status" || key == "container_format" ||
               key == "disk_format") {
      auto [op, v] = split_op(value);
      if (op == "eq") {
        q.conditions.push_back({key, "=", {v}});
      } else if (op == "in") {
        // Comma-separated, with "quoted, values" kept whole.
        std::vector<std::string> values;
        std::string cur;
        bool quoted = false, was_quoted = false;
        for (char ch : v) {
          if (ch == '"') {
            quoted = !quoted;
            was_quoted = true;
          } else if (ch == ',' && !quoted) {
            values.push_back(cur);
            cur.clear();
            was_quoted = false;
          } else {
            cur += ch;
          }
        }
        if (quoted) throw BadRequest("Invalid filter value " + v + ". The quote is not closed.");
        (void)was_quoted;
        values.push_back(cur);
        q.conditions.push_back({key, "IN", values});
      } else {
        bad_operator(op);
      }
    } else if (key == "size" || key == "virtual_size" || key == "min_disk" || key == "min_ram") {
      q.conditions.push_back({key, "=", {integer(value, "Invalid value for an integer filter.")}});
    } else if (key == "owner" || key == "checksum" || key == "os_hash_value" ||
               key == "os_hash_algo") {
      q.conditions.push_back({key, "=", {value}});
    } else {
      properties.emplace_back(key, value);
    }
  }
  if (!os_hidden_filtered) q.conditions.push_back({"os_hidden", "=", {"0"}});

  for (auto& [k, d] : r.sort) q.sort.push_back({k, d});
  if (q.sort.empty()) q.sort.push_back({"created_at", true});
  for (const char* k : {"created_at", "id"}) {
    bool present = false;
    for (auto& sk : q.sort) present = present || sk.column == k;
    if (!present) q.sort.push_back({k, r.default_descending});
  }

  ListResult result;
  db_->read([&](soci::session& s) {
    if (r.marker) {
      try {
        q.marker = visible(s, c, *r.marker);
      } catch (const ApiError& e) {
        throw BadRequest(e.what());
      }
    }
    if (properties.empty()) {
      q.limit = limit;
      result.images = st::load_images(s, st::list_image_ids(s, q));
    } else {
      // Custom properties live in a JSON column: filter them here, page after filtering.
      auto ids = st::list_image_ids(s, q);
      for (size_t start = 0; start < ids.size() && static_cast<long>(result.images.size()) < limit;
           start += 500) {
        std::vector<std::string> chunk(
            ids.begin() + static_cast<long>(start),
            ids.begin() + static_cast<long>(std::min(ids.size(), start + 500)));
        for (auto& img : st::load_images(s, chunk)) {
          bool match = true;
          for (auto& [k, v] : properties) {
            auto* p = find(img, k);
            if (!p || !p->is_string() || p->as_string() != v) match = false;
          }
          if (match && static_cast<long>(result.images.size()) < limit)
            result.images.push_back(std::move(img));
        }
      }
    }
  });
  if (!result.images.empty() && static_cast<long>(result.images.size()) == limit)
    result.next_marker = str(result.images.back(), "id");
  return result;
}

json::object ImageService::update(const Caller& c, const std::string& id,
                                  const std::vector<PatchOp>& changes) {
  json::object out;
  bool admin = c.admin();
  db_->write([&](soci::session& s) {
    auto original = visible(s, c, id);
    auto t = target(s, c, original);
    enforce(c, "modify_image", t);
    auto image = with_tags(s, original);
    for (auto& ch : changes) {
      if (ch.path.empty()) throw BadRequest("Invalid JSON pointer for this resource: '/'");
      const std::string& root = ch.path[0];
      if (root == "locations")
        throw Forbidden("It's not allowed to update locations if locations are invisible.");
      if (kReadOnly.count(root)) throw Forbidden("Attribute '" + root + "' is read-only.");
      if (kReserved.count(root) || root.rfind(kReservedPrefix, 0) == 0)
        throw Forbidden("Attribute '" + root + "' is reserved.");
      if (ch.path.size() != 1) {
        std::string joined;
        for (auto& p : ch.path) joined += "/" + p;
        throw BadRequest("Invalid JSON pointer for this resource: '" + joined + "'");
      }
      bool base = kBase.count(root) > 0;
      if (ch.op != "remove") {
        if (base)
          validate_base(settings_, root, ch.value);
        else
          validate_extra(root, ch.value);
      }
      if (root == "owner" && ch.op != "remove" && !admin)
        throw Forbidden("Owner can't be updated by non admin.");
      if (ch.op == "replace") {
        if (!base && !image.contains(root)) throw Conflict("Property " + root + " does not exist.");
        image[root] = ch.value;
      } else if (ch.op == "add") {
        if (ch.draft == 4 && (base || image.contains(root)))
          throw Conflict("Property " + root + " already present.");
        image[root] = ch.value;
      } else if (ch.op == "remove") {
        if (base) throw Forbidden("Property " + root + " may not be removed.");
        if (!image.contains(root)) throw Conflict("Property " + root + " does not exist.");
        image.erase(root);
      } else {
        throw BadRequest("Invalid operation: `" + ch.op +
                         "`. It must be one of the following: add, remove, replace.");
      }
    }
    auto status = str(original, "status");
    for (const char* k : {"container_format", "disk_format"})
      if (image.at(k) != original.at(k) && status != "queued")
        throw Forbidden("Attribute " + std::string(k) +
                        " can be only replaced for a queued image.");
    auto vis = str(image, "visibility");
    if (vis != str(original, "visibility")) {
      if (vis == "public") enforce(c, "publicize_image", t);
      if (vis == "community") enforce(c, "communitize_image", t);
    }
    auto tags = tag_list(image.at("tags"));
    if (static_cast<long>(tags.size()) > settings_.image_tag_quota)
      throw TooLarge("Maximum number of tags exceeded (" +
                     std::to_string(settings_.image_tag_quota) + ").");
    if (static_cast<long>(extra_count(image)) > settings_.image_property_quota)
      throw TooLarge("Maximum number of image properties exceeded (" +
                     std::to_string(settings_.image_property_quota) + ").");
    json::object fields;
    for (auto& kv : image)
      if (kv.key() != "tags" &&
          (!original.contains(kv.key()) || original.at(kv.key()) != kv.value()))
        fields[kv.key()] = kv.value();
    for (auto& kv : original)
      if (!image.contains(kv.key())) fields[kv.key()] = nullptr;  // a removed custom property
    fields["updated_at"] = now();
    if (auto* o = find(fields, "owner"); o && o->is_string() && o->as_string().empty())
      fields["owner"] = nullptr;
    db::update(s, st::image, id, fields);
    write_tags(s, id, tags);
    out = with_tags(s, *db::get(s, st::image, id));
  });
  return out;
}

void ImageService::remove(const Caller& c, const std::string& id) {
  json::object image;
  db_->write([&](soci::session& s) {
    image = visible(s, c, id);
    enforce(c, "delete_image", target(s, c, image));
    if (bool_or(image, "protected", false))
      throw Forbidden("Image " + id + " is protected and cannot be deleted.");
    db::remove(s, st::image_tag, db::Query{}.eq("image_id", id));
    db::remove(s, st::image_member, db::Query{}.eq("image_id", id));
    db::remove_id(s, st::image, id);
  });
  // The row is gone (committed) before the data: a crash in between leaves an orphan that
  // recover() removes, never an image without its data.
  try {
    if (auto loc = str(image, "location"); !loc.empty()) store_->remove(loc);
    staging_->remove(staged_location(id));
  } catch (const std::exception& e) {
    spdlog::warn("image {}: data not removed: {}", id, e.what());
  }
}

// Moves an image between active and deactivated (idempotent when it is already there).
void ImageService::set_activation(const Caller& c, const std::string& id, const char* action, const char* from,
                                  const char* to) {
  db_->write([&](soci::session& s) {
    auto image = visible(s, c, id);
    enforce(c, action, target(s, c, image));
    auto status = str(image, "status");
    if (status == to) return;
    if (status != from)
      throw Forbidden("Not allowed to " + std::string(action) + " image in status '" + status + "'");
    db::update(s, st::image, id, json::object{{"status", to}, {"updated_at", now()}});
  });
}

void ImageService::deactivate(const Caller& c, const std::string& id) {
  set_activation(c, id, "deactivate", "active", "deactivated");
}

void ImageService::reactivate(const Caller& c, const std::string& id) {
  set_activation(c, id, "reactivate", "deactivated", "active");
}

// ---------------------------------------------------------------- tags

void ImageService::add_tag(const Caller& c, const std::string& id, const std::string& tag) {
  if (tag.size() > 255) throw BadRequest("Invalid tag: longer than 255 characters.");
  db_->write([&](soci::session& s) {
    auto image = visible(s, c, id);
    enforce(c, "modify_image", target(s, c, image));
    auto tags = st::tags_of(s, id);
    if (std::find(tags.begin(), tags.end(), tag) != tags.end()) return;
    if (static_cast<long>(tags.size()) + 1 > settings_.image_tag_quota)
      throw TooLarge("Maximum number of tags exceeded (" +
                     std::to_string(settings_.image_tag_quota) + ").");
    db::insert(s, st::image_tag, json::object{{"image_id", id}, {"value", tag}});
    db::update(s, st::image, id, json::object{{"updated_at", now()}});
  });
}

void ImageService::remove_tag(const Caller& c, const std::string& id, const std::string& tag) {
  db_->write([&](soci::session& s) {
    auto image = visible(s, c, id);
    enforce(c, "modify_image", target(s, c, image));
    if (db::remove(s, st::image_tag, db::Query{}.eq("image_id", id).eq("value", tag)) == 0)
      throw NotFound("Tag " + tag + " not found.");
    db::update(s, st::image, id, json::object{{"updated_at", now()}});
  });
}

// ---------------------------------------------------------------- members

json::object ImageService::add_member(const Caller& c, const std::string& id,
                                      const json::object& body) {
  auto* m = find(body, "member");
  if (!m || !m->is_string() || m->as_string().empty())
    throw BadRequest("Member to be added not specified");
  std::string member(m->as_string());
  if (member.size() > 255) throw BadRequest("Member id is too long (maximum 255 characters).");
  json::object row;
  db_->write([&](soci::session& s) {
    auto [image, t] = shared_image(s, c, id);
    enforce(c, "add_member", t);
    if (st::membership(s, id, member))
      throw Conflict("Member " + member + " already associated with image " + id + ".");
    if (db::count(s, st::image_member, db::Query{}.eq("image_id", id)) + 1 >
        settings_.image_member_quota)
      throw TooLarge("Maximum number of image members exceeded (" +
                     std::to_string(settings_.image_member_quota) + ").");
    auto ts = now();
    row = json::object{{"image_id", id},
                       {"member_id", member},
                       {"status", "pending"},
                       {"created_at", ts},
                       {"updated_at", ts}};
    db::insert(s, st::image_member, row);
  });
  return row;
}

json::object ImageService::update_member(const Caller& c, const std::string& id,
                                         const std::string& member_id, const json::object& body) {
  auto* v = find(body, "status");
  if (!v) throw BadRequest("Status not specified");
  if (!v->is_string() || !contains(kMemberStatuses, v->as_string()))
    throw BadRequest("Invalid status: " +
                     (v->is_string() ? std::string(v->as_string()) : json::serialize(*v)));
  std::string status(v->as_string());
  json::object row;
  db_->write([&](soci::session& s) {
    auto [image, t] = shared_image(s, c, id);
    auto member = st::membership(s, id, member_id);
    if (!member) throw NotFound("Member " + member_id + " not found on image " + id + ".");
    enforce(c, "modify_member", t);
    // Only the member itself decides on a share (an admin may act for it).
    if (!c.admin() && c.project() != member_id)
      throw Forbidden("You are not permitted to modify 'status' on this image member.");
    auto ts = now();
    db::execute(s,
                "UPDATE image_member SET status = :p0, updated_at = :p1 WHERE image_id = :p2 AND "
                "member_id = :p3",
                {status, ts, id, member_id});
    row = *member;
    row["status"] = status;
    row["updated_at"] = ts;
  });
  return row;
}

void ImageService::remove_member(const Caller& c, const std::string& id,
                                 const std::string& member_id) {
  db_->write([&](soci::session& s) {
    auto [image, t] = shared_image(s, c, id);
    enforce(c, "delete_member", t);
    if (db::remove(s, st::image_member,
                   db::Query{}.eq("image_id", id).eq("member_id", member_id)) == 0)
      throw NotFound("Member " + member_id + " not found on image " + id + ".");
  });
}

std::vector<json::object> ImageService::list_members(const Caller& c, const std::string& id) {
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    auto [image, t] = shared_image(s, c, id);
    enforce(c, "get_members", t);
    db::Query q;
    q.eq("image_id", id);
    // The owner (and an admin) see every member; a member sees its own share only.
    if (!c.admin() && str(image, "owner") != c.project()) q.eq("member_id", c.project());
    q.order_by = "created_at";
    out = db::select(s, st::image_member, q);
  });
  return out;
}

json::object ImageService::show_member(const Caller& c, const std::string& id,
                                       const std::string& member_id) {
  json::object out;
  db_->read([&](soci::session& s) {
    auto [image, t] = shared_image(s, c, id);
    enforce(c, "get_member", t);
    auto member = st::membership(s, id, member_id);
    bool own = c.admin() || str(image, "owner") == c.project() || member_id == c.project();
    if (!member || !own) throw NotFound("Member " + member_id + " not found on image " + id + ".");
    out = std::move(*member);
  });
  return out;
}

// ---------------------------------------------------------------- recovery

void ImageService::recover() {
  std::unordered_set<std::string> locations, staged;
  db_->write([&](soci::session& s) {
    // An upload cut by a crash left `saving`: the data never committed, so the image has none.
    db::execute(s, "UPDATE image SET status = 'queued' WHERE status = 'saving'", {});
    for (auto& row : db::query_strings(s,
                                       "SELECT id, status, location FROM image WHERE status IN "
                                       "('uploading', 'importing') OR location IS NOT NULL",
                                       {})) {
      auto id = row[0].value_or("");
      auto status = row[1].value_or("");
      if (row[2]) locations.insert(*row[2]);
      if (status == "uploading" || status == "importing") {
        auto loc = staged_location(id);
        bool have = staging_->size(loc) >= 0;
        if (have) staged.insert(loc);
        // An import cut by a crash is retried from the staged data, or the image has none.
        db::execute(s, "UPDATE image SET status = :p0 WHERE id = :p1",
                    {have ? "uploading" : "queued", id});
      }
    }
  });
  store_->recover([&](const std::string& loc) { return locations.count(loc) > 0; });
  staging_->recover([&](const std::string& loc) { return staged.count(loc) > 0; });
}

namespace access {

std::string str(const json::object& o, std::string_view key) {
  auto* v = find(o, key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

json::object visible_image(soci::session& s, const Caller& c, const std::string& id, bool& member) {
  auto row = db::get(s, st::image, id);
  if (!row) throw NotFound("No image found with ID " + id);
  member = st::membership(s, id, c.project()).has_value();
  auto visibility = str(*row, "visibility");
  if (c.admin() || (!c.project().empty() && str(*row, "owner") == c.project()) ||
      visibility == "public" || visibility == "community" || (visibility == "shared" && member))
    return std::move(*row);
  throw NotFound("No image found with ID " + id);
}

PolicyTarget image_target(const Caller& c, const json::object& image, bool member) {
  auto id = str(image, "id");
  return {{"id", id},
          {"image_id", id},
          {"project_id", str(image, "owner")},
          {"owner", str(image, "owner")},
          {"visibility", str(image, "visibility")},
          {"status", str(image, "status")},
          {"member_id", member ? c.project() : std::string()}};
}

void enforce(const Caller& c, const std::string& rule, const PolicyTarget& t) {
  if (c.allowed(rule, t)) return;
  if (rule != "get_image" && c.allowed("get_image", t)) throw Forbidden(forbidden_message(rule));
  throw NotFound("No image found with ID " + t.at("id"));
}

}  // namespace access

}  // namespace nubo::image
