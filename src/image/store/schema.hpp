// The image database: its tables as the generic row layer sees them, and its migrations.
#pragma once

#include <vector>

#include "common/db/database.hpp"
#include "common/db/table.hpp"

namespace nubo::image::store {

// image: base attributes as columns, custom properties in `extra`; `location` is where the
// store keeps the data (null while there is none).
extern const db::Table image, image_tag, image_member;

std::vector<db::Migration> migrations();

}  // namespace nubo::image::store
