// Image queries beyond single rows: the filtered, sorted, paginated list (keyset pagination on
// any sort keys, NULLs first ascending as Glance's MySQL does), tags and memberships.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/db/table.hpp"
#include "common/json.hpp"

namespace soci {
class session;
}

namespace nubo::image::store {

struct SortKey {
  std::string column;
  bool descending = true;
};

struct ListQuery {
  bool admin = false;                      // sees every image (no ownership or membership scoping)
  std::string project;                     // the caller's project; empty when unscoped
  std::optional<std::string> visibility;   // community, public, private, shared or all
  std::string member_status = "accepted";  // pending, accepted, rejected or all
  std::vector<db::Condition>
      conditions;                      // on image columns: =, !=, <, <=, >, >=, IN, OUTSIDE [a, b)
  std::vector<std::string> tags;       // every one must be present
  std::vector<SortKey> sort;           // should end with a unique key (id)
  std::optional<json::object> marker;  // the row after which the page starts
  std::optional<long> limit;
};

// The ids of the matching images, in order.
std::vector<std::string> list_image_ids(soci::session& s, const ListQuery& q);
// Rows with their `tags`, in the order of `ids` (missing ids are skipped).
std::vector<json::object> load_images(soci::session& s, const std::vector<std::string>& ids);
std::vector<std::string> tags_of(soci::session& s, const std::string& image_id);
// The caller's membership row on this image, if any.
std::optional<json::object> membership(soci::session& s, const std::string& image_id,
                                       const std::string& member_id);

}  // namespace nubo::image::store
