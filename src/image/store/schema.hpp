// The image database: its tables as the generic row layer sees them, and its migrations.
#pragma once

#include <vector>

#include "common/db/database.hpp"
#include "common/db/table.hpp"

namespace nubo::image::store {

// image: base attributes as columns, custom properties in `extra`; `location` is where the
// store keeps the data (null while there is none).
extern const db::Table image, image_tag, image_member;
// Metadata definitions: namespaces (keyed by name), the resource types they apply to, and the
// objects, properties (their definition in `body`) and tags each namespace defines.
extern const db::Table metadef_namespace, metadef_resource_type, metadef_association,
    metadef_object, metadef_property, metadef_tag;

std::vector<db::Migration> migrations();

}  // namespace nubo::image::store
