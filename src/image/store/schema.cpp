#include "image/store/schema.hpp"

namespace nubo::image::store {

using T = db::ColumnType;

const db::Table image{"image",
                      {{"id"},
                       {"name"},
                       {"status"},
                       {"visibility"},
                       {"protected", T::Bool},
                       {"os_hidden", T::Bool},
                       {"owner"},
                       {"disk_format"},
                       {"container_format"},
                       {"size", T::Int},
                       {"virtual_size", T::Int},
                       {"checksum"},
                       {"os_hash_algo"},
                       {"os_hash_value"},
                       {"min_disk", T::Int},
                       {"min_ram", T::Int},
                       {"created_at"},
                       {"updated_at"},
                       {"location"}},
                      true};
const db::Table image_tag{"image_tag", {{"image_id"}, {"value"}}};
const db::Table image_member{
    "image_member", {{"image_id"}, {"member_id"}, {"status"}, {"created_at"}, {"updated_at"}}};

const db::Table metadef_namespace{"metadef_namespace",
                                  {{"namespace"},
                                   {"display_name"},
                                   {"description"},
                                   {"visibility"},
                                   {"protected", T::Bool},
                                   {"owner"},
                                   {"created_at"},
                                   {"updated_at"}}};
const db::Table metadef_resource_type{
    "metadef_resource_type", {{"name"}, {"protected", T::Bool}, {"created_at"}, {"updated_at"}}};
const db::Table metadef_association{"metadef_association",
                                    {{"id"},
                                     {"namespace"},
                                     {"name"},
                                     {"prefix"},
                                     {"properties_target"},
                                     {"created_at"},
                                     {"updated_at"}}};
const db::Table metadef_object{
    "metadef_object",
    {{"id"}, {"namespace"}, {"name"}, {"body", T::Json}, {"created_at"}, {"updated_at"}}};
const db::Table metadef_property{
    "metadef_property",
    {{"id"}, {"namespace"}, {"name"}, {"body", T::Json}, {"created_at"}, {"updated_at"}}};
const db::Table metadef_tag{"metadef_tag",
                            {{"id"}, {"namespace"}, {"name"}, {"created_at"}, {"updated_at"}}};

std::vector<db::Migration> migrations() {
  return {
      {1, R"SQL(
CREATE TABLE image (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255), status VARCHAR(30) NOT NULL,
  visibility VARCHAR(20) NOT NULL, protected INTEGER NOT NULL DEFAULT 0, os_hidden INTEGER NOT NULL DEFAULT 0,
  owner VARCHAR(255), disk_format VARCHAR(20), container_format VARCHAR(20), size BIGINT, virtual_size BIGINT,
  checksum VARCHAR(32), os_hash_algo VARCHAR(64), os_hash_value VARCHAR(128), min_disk BIGINT NOT NULL DEFAULT 0,
  min_ram BIGINT NOT NULL DEFAULT 0, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL,
  location TEXT, extra TEXT);
CREATE INDEX image_owner ON image (owner);
CREATE INDEX image_visibility ON image (visibility);
CREATE INDEX image_status ON image (status);
CREATE INDEX image_created ON image (created_at, id);
CREATE TABLE image_tag (image_id VARCHAR(36) NOT NULL REFERENCES image (id) ON DELETE CASCADE,
  value VARCHAR(255) NOT NULL, PRIMARY KEY (image_id, value));
CREATE INDEX image_tag_value ON image_tag (value);
CREATE TABLE image_member (image_id VARCHAR(36) NOT NULL REFERENCES image (id) ON DELETE CASCADE,
  member_id VARCHAR(255) NOT NULL, status VARCHAR(20) NOT NULL, created_at VARCHAR(40) NOT NULL,
  updated_at VARCHAR(40) NOT NULL, PRIMARY KEY (image_id, member_id));
CREATE INDEX image_member_member ON image_member (member_id, status)
)SQL"},
      // Metadata definitions (metadefs): namespaces and what they define; resource types seeded
      // with Glance's usual names.
      {2, R"SQL(
CREATE TABLE metadef_namespace (namespace VARCHAR(80) PRIMARY KEY, display_name VARCHAR(80),
  description TEXT, visibility VARCHAR(32) NOT NULL, protected INTEGER NOT NULL DEFAULT 0,
  owner VARCHAR(255), created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL);
CREATE TABLE metadef_resource_type (name VARCHAR(80) PRIMARY KEY, protected INTEGER NOT NULL DEFAULT 0,
  created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL);
CREATE TABLE metadef_association (id VARCHAR(36) PRIMARY KEY, namespace VARCHAR(80) NOT NULL,
  name VARCHAR(80) NOT NULL, prefix VARCHAR(80), properties_target VARCHAR(80),
  created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL, UNIQUE (namespace, name));
CREATE TABLE metadef_object (id VARCHAR(36) PRIMARY KEY, namespace VARCHAR(80) NOT NULL,
  name VARCHAR(80) NOT NULL, body TEXT, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL,
  UNIQUE (namespace, name));
CREATE TABLE metadef_property (id VARCHAR(36) PRIMARY KEY, namespace VARCHAR(80) NOT NULL,
  name VARCHAR(255) NOT NULL, body TEXT, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL,
  UNIQUE (namespace, name));
CREATE TABLE metadef_tag (id VARCHAR(36) PRIMARY KEY, namespace VARCHAR(80) NOT NULL,
  name VARCHAR(255) NOT NULL, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL,
  UNIQUE (namespace, name));
INSERT INTO metadef_resource_type (name, protected, created_at, updated_at) VALUES
  ('OS::Glance::Image', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z'),
  ('OS::Cinder::Volume', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z'),
  ('OS::Nova::Flavor', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z'),
  ('OS::Nova::Aggregate', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z'),
  ('OS::Nova::Server', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z'),
  ('OS::Trove::Instance', 1, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z')
)SQL"},
  };
}

}  // namespace nubo::image::store
