#include "compute/store/schema.hpp"

namespace nubo::compute::store {

using T = db::ColumnType;

const db::Table flavor{"flavor",
                       {{"id"},
                        {"name"},
                        {"memory_mb", T::Int},
                        {"vcpus", T::Int},
                        {"root_gb", T::Int},
                        {"ephemeral_gb", T::Int},
                        {"swap", T::Int},
                        {"rxtx_factor", T::Real},
                        {"is_public", T::Bool},
                        {"disabled", T::Bool},
                        {"description"},
                        {"seq", T::Int},
                        {"created_at"}}};
const db::Table flavor_extra_spec{"flavor_extra_spec", {{"id"}, {"flavor_id"}, {"key"}, {"value"}}};
const db::Table flavor_project{"flavor_project", {{"id"}, {"flavor_id"}, {"project_id"}}};
const db::Table keypair{"keypair",
                        {{"id"},
                         {"number", T::Int},
                         {"name"},
                         {"user_id"},
                         {"fingerprint"},
                         {"public_key"},
                         {"type"},
                         {"created_at"}}};

const db::Table quota{"quota",
                      {{"id"}, {"project_id"}, {"user_id"}, {"resource"}, {"hard_limit", T::Int}}};
const db::Table quota_class{"quota_class",
                            {{"id"}, {"class_name"}, {"resource"}, {"hard_limit", T::Int}}};

const db::Table server_group{"server_group",
                             {{"id"},
                              {"name"},
                              {"policy"},
                              {"rules", T::Json},
                              {"project_id"},
                              {"user_id"},
                              {"created_at"}}};
const db::Table server_group_member{"server_group_member", {{"id"}, {"group_id"}, {"instance_id"}}};

const db::Table compute_service{"compute_service",
                                {{"id"},
                                 {"number", T::Int},
                                 {"host"},
                                 {"binary_name"},
                                 {"zone"},
                                 {"disabled", T::Bool},
                                 {"disabled_reason"},
                                 {"forced_down", T::Bool},
                                 {"updated_at"},
                                 {"created_at"}}};
const db::Table compute_node{"compute_node",
                             {{"id"},
                              {"number", T::Int},
                              {"service_id"},
                              {"host"},
                              {"hypervisor_hostname"},
                              {"hypervisor_type"},
                              {"hypervisor_version", T::Int},
                              {"vcpus", T::Int},
                              {"memory_mb", T::Int},
                              {"local_gb", T::Int},
                              {"host_ip"},
                              {"cpu_info"},
                              {"created_at"}}};

const db::Table aggregate{"aggregate",
                          {{"id"}, {"number", T::Int}, {"name"}, {"created_at"}, {"updated_at"}}};
const db::Table aggregate_host{"aggregate_host", {{"id"}, {"aggregate_id"}, {"host"}}};
const db::Table aggregate_metadata{"aggregate_metadata",
                                   {{"id"}, {"aggregate_id"}, {"key"}, {"value"}}};

const db::Table instance{"instance",
                         {{"id"},
                          {"number", T::Int},
                          {"project_id"},
                          {"user_id"},
                          {"name"},
                          {"hostname"},
                          {"description"},
                          {"image_ref"},
                          {"flavor_id"},
                          {"flavor", T::Json},
                          {"vcpus", T::Int},
                          {"memory_mb", T::Int},
                          {"key_name"},
                          {"availability_zone"},
                          {"host"},
                          {"node"},
                          {"vm_state"},
                          {"task_state"},
                          {"power_state", T::Int},
                          {"locked", T::Bool},
                          {"reservation_id"},
                          {"launch_index", T::Int},
                          {"launched_at"},
                          {"terminated_at"},
                          {"created_at"},
                          {"updated_at"},
                          {"deleted_at"},
                          {"deleted", T::Bool}},
                         true};
const db::Table instance_metadata{"instance_metadata",
                                  {{"id"}, {"instance_id"}, {"key"}, {"value"}}};
const db::Table instance_tag{"instance_tag", {{"id"}, {"instance_id"}, {"tag"}}};
const db::Table instance_action{"instance_action",
                                {{"id"},
                                 {"instance_id"},
                                 {"action"},
                                 {"request_id"},
                                 {"user_id"},
                                 {"project_id"},
                                 {"start_time"},
                                 {"finish_time"},
                                 {"message"},
                                 {"updated_at"},
                                 {"seq", T::Int}}};
const db::Table instance_action_event{"instance_action_event",
                                      {{"id"},
                                       {"action_id"},
                                       {"event"},
                                       {"start_time"},
                                       {"finish_time"},
                                       {"result"},
                                       {"traceback"},
                                       {"host"},
                                       {"seq", T::Int}}};
const db::Table instance_fault{"instance_fault",
                               {{"id"},
                                {"instance_id"},
                                {"code", T::Int},
                                {"message"},
                                {"details"},
                                {"host"},
                                {"created_at"}}};

const db::Table console_auth_token{"console_auth_token",
                                   {{"id"},
                                    {"token_hash"},
                                    {"console_type"},
                                    {"host"},
                                    {"port", T::Int},
                                    {"internal_access_path"},
                                    {"instance_uuid"},
                                    {"access_url_base"},
                                    {"created_at"},
                                    {"expires", T::Int}}};

const db::Table migration{"migration",
                          {{"id"},
                           {"number", T::Int},
                           {"instance_id"},
                           {"source_compute"},
                           {"source_node"},
                           {"dest_compute"},
                           {"dest_node"},
                           {"old_instance_type_id", T::Int},
                           {"new_instance_type_id", T::Int},
                           {"status"},
                           {"migration_type"},
                           {"project_id"},
                           {"user_id"},
                           {"created_at"},
                           {"updated_at"}}};

void insert_migration(soci::session& s, const std::string& id, const json::object& instance,
                      const std::string& now, json::object fields) {
  fields["id"] = id;
  fields["number"] = next_number(s, migration);
  fields["instance_id"] = instance.at("id");
  fields["source_compute"] = instance.at("host");
  fields["source_node"] = instance.at("node");
  fields["project_id"] = instance.at("project_id");
  fields["user_id"] = instance.at("user_id");
  fields["created_at"] = now;
  fields["updated_at"] = now;
  db::insert(s, migration, fields);
}

std::int64_t next_number(soci::session& s, const db::Table& t, const std::string& column,
                         std::int64_t count) {
  // A counter per table and column, never the largest number in use plus one: rows are deleted,
  // and a number given again would let a client's stale id (a tempest cleanup deleting aggregate
  // 7 after its own 7 is gone) reach somebody else's row. Nova's ids never come back either.
  std::string name = t.name + "." + column;
  // `value` is the last number taken.
  // One statement, so that two first uses on PostgreSQL cannot both insert (the WHERE makes
  // SQLite read ON CONFLICT as the upsert's, not the join's).
  auto n = std::to_string(count);
  db::execute(s,
              "INSERT INTO number_sequence (name, value) SELECT :p0, COALESCE(MAX(" + column +
                  "), 0) + " + n + " FROM " + t.name +
                  " WHERE 1 = 1 ON CONFLICT (name) DO UPDATE SET value = number_sequence.value + " +
                  n,
              {name});
  auto rows = db::query_strings(s, "SELECT value FROM number_sequence WHERE name = :p0", {name});
  return std::stoll(rows.at(0).at(0).value_or("0")) - count + 1;
}

std::optional<json::object> by_id_or_number(soci::session& s, const db::Table& t,
                                            const std::string& id) {
  if (auto row = db::get(s, t, id)) return row;
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto rows = db::select(s, t, db::Query{}.eq("number", id));
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

std::vector<db::Migration> migrations() {
  return {{1, R"SQL(
CREATE TABLE flavor (id VARCHAR(255) PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE, memory_mb INTEGER NOT NULL,
  vcpus INTEGER NOT NULL, root_gb INTEGER NOT NULL, ephemeral_gb INTEGER NOT NULL DEFAULT 0,
  swap INTEGER NOT NULL DEFAULT 0, rxtx_factor REAL NOT NULL DEFAULT 1.0, is_public INTEGER NOT NULL DEFAULT 1,
  disabled INTEGER NOT NULL DEFAULT 0, description TEXT, seq INTEGER NOT NULL, created_at VARCHAR(32) NOT NULL);
CREATE TABLE flavor_extra_spec (id VARCHAR(64) PRIMARY KEY, flavor_id VARCHAR(255) NOT NULL, key VARCHAR(255) NOT NULL,
  value VARCHAR(255), UNIQUE (flavor_id, key));
CREATE TABLE flavor_project (id VARCHAR(64) PRIMARY KEY, flavor_id VARCHAR(255) NOT NULL,
  project_id VARCHAR(255) NOT NULL, UNIQUE (flavor_id, project_id));
CREATE TABLE keypair (id VARCHAR(64) PRIMARY KEY, number INTEGER NOT NULL, name VARCHAR(255) NOT NULL,
  user_id VARCHAR(255) NOT NULL, fingerprint VARCHAR(255) NOT NULL, public_key TEXT NOT NULL,
  type VARCHAR(16) NOT NULL, created_at VARCHAR(32) NOT NULL, UNIQUE (user_id, name));
)SQL"},
          {2, R"SQL(
CREATE TABLE quota (id VARCHAR(64) PRIMARY KEY, project_id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
  resource VARCHAR(255) NOT NULL, hard_limit INTEGER NOT NULL, UNIQUE (project_id, user_id, resource));
CREATE TABLE quota_class (id VARCHAR(64) PRIMARY KEY, class_name VARCHAR(255) NOT NULL,
  resource VARCHAR(255) NOT NULL, hard_limit INTEGER NOT NULL, UNIQUE (class_name, resource));
)SQL"},
          {3, R"SQL(
CREATE TABLE server_group (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, policy VARCHAR(32) NOT NULL,
  rules TEXT NOT NULL, project_id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
  created_at VARCHAR(32) NOT NULL);
CREATE TABLE server_group_member (id VARCHAR(64) PRIMARY KEY, group_id VARCHAR(36) NOT NULL,
  instance_id VARCHAR(36) NOT NULL, UNIQUE (group_id, instance_id));
)SQL"},
          {4, R"SQL(
CREATE TABLE compute_service (id VARCHAR(36) PRIMARY KEY, number INTEGER NOT NULL UNIQUE, host VARCHAR(255) NOT NULL,
  binary_name VARCHAR(255) NOT NULL, zone VARCHAR(255) NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
  disabled_reason VARCHAR(255), forced_down INTEGER NOT NULL DEFAULT 0, updated_at VARCHAR(32),
  created_at VARCHAR(32) NOT NULL, UNIQUE (host, binary_name));
CREATE TABLE compute_node (id VARCHAR(36) PRIMARY KEY, number INTEGER NOT NULL UNIQUE, service_id VARCHAR(36) NOT NULL,
  host VARCHAR(255) NOT NULL, hypervisor_hostname VARCHAR(255) NOT NULL UNIQUE, hypervisor_type VARCHAR(255) NOT NULL,
  hypervisor_version INTEGER NOT NULL, vcpus INTEGER NOT NULL, memory_mb INTEGER NOT NULL, local_gb INTEGER NOT NULL,
  host_ip VARCHAR(64) NOT NULL, cpu_info TEXT NOT NULL, created_at VARCHAR(32) NOT NULL);
)SQL"},
          {5, R"SQL(
CREATE TABLE aggregate (id VARCHAR(36) PRIMARY KEY, number INTEGER NOT NULL UNIQUE, name VARCHAR(255) NOT NULL UNIQUE,
  created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32));
CREATE TABLE aggregate_host (id VARCHAR(64) PRIMARY KEY, aggregate_id VARCHAR(36) NOT NULL, host VARCHAR(255) NOT NULL,
  UNIQUE (aggregate_id, host));
CREATE TABLE aggregate_metadata (id VARCHAR(64) PRIMARY KEY, aggregate_id VARCHAR(36) NOT NULL,
  key VARCHAR(255) NOT NULL, value VARCHAR(255) NOT NULL, UNIQUE (aggregate_id, key));
)SQL"},
          {6, R"SQL(
CREATE TABLE instance (id VARCHAR(36) PRIMARY KEY, number INTEGER NOT NULL UNIQUE, project_id VARCHAR(255) NOT NULL,
  user_id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, hostname VARCHAR(255), description TEXT,
  image_ref VARCHAR(255), flavor_id VARCHAR(255) NOT NULL, flavor TEXT NOT NULL, vcpus INTEGER NOT NULL,
  memory_mb INTEGER NOT NULL, key_name VARCHAR(255),
  availability_zone VARCHAR(255), host VARCHAR(255), node VARCHAR(255), vm_state VARCHAR(32) NOT NULL,
  task_state VARCHAR(64), power_state INTEGER NOT NULL DEFAULT 0, locked INTEGER NOT NULL DEFAULT 0,
  reservation_id VARCHAR(255), launch_index INTEGER NOT NULL DEFAULT 0, launched_at VARCHAR(32),
  terminated_at VARCHAR(32), created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32), deleted_at VARCHAR(32),
  deleted INTEGER NOT NULL DEFAULT 0, extra TEXT);
CREATE INDEX instance_project ON instance (project_id, deleted, created_at);
CREATE INDEX instance_host ON instance (host, deleted);
CREATE INDEX instance_task ON instance (task_state);
CREATE INDEX instance_updated ON instance (updated_at);
CREATE TABLE instance_metadata (id VARCHAR(64) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, key VARCHAR(255) NOT NULL,
  value VARCHAR(255) NOT NULL, UNIQUE (instance_id, key));
CREATE TABLE instance_tag (id VARCHAR(64) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, tag VARCHAR(80) NOT NULL,
  UNIQUE (instance_id, tag));
CREATE INDEX instance_tag_tag ON instance_tag (tag);
CREATE TABLE instance_action (id VARCHAR(36) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, action VARCHAR(255) NOT NULL,
  request_id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, project_id VARCHAR(255) NOT NULL,
  start_time VARCHAR(32) NOT NULL, finish_time VARCHAR(32), message TEXT, updated_at VARCHAR(32), seq INTEGER NOT NULL);
CREATE INDEX instance_action_instance ON instance_action (instance_id, seq);
CREATE TABLE instance_action_event (id VARCHAR(36) PRIMARY KEY, action_id VARCHAR(36) NOT NULL, event VARCHAR(255) NOT NULL,
  start_time VARCHAR(32) NOT NULL, finish_time VARCHAR(32), result VARCHAR(32), traceback TEXT, host VARCHAR(255),
  seq INTEGER NOT NULL);
CREATE INDEX instance_action_event_action ON instance_action_event (action_id);
CREATE TABLE instance_fault (id VARCHAR(36) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL, code INTEGER NOT NULL,
  message TEXT NOT NULL, details TEXT, host VARCHAR(255), created_at VARCHAR(32) NOT NULL);
CREATE INDEX instance_fault_instance ON instance_fault (instance_id, created_at);
)SQL"},
          {7, R"SQL(
CREATE TABLE migration (id VARCHAR(36) PRIMARY KEY, number INTEGER NOT NULL UNIQUE, instance_id VARCHAR(36) NOT NULL,
  source_compute VARCHAR(255), source_node VARCHAR(255), dest_compute VARCHAR(255), dest_node VARCHAR(255),
  old_instance_type_id INTEGER, new_instance_type_id INTEGER, status VARCHAR(32) NOT NULL,
  migration_type VARCHAR(32) NOT NULL, project_id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
  created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32));
CREATE INDEX migration_instance ON migration (instance_id);
CREATE INDEX migration_created ON migration (created_at);
)SQL"},
          // Listings sort by created_at then id: with id in the index no page is sorted apart.
          {8, R"SQL(
DROP INDEX instance_project;
CREATE INDEX instance_project ON instance (project_id, deleted, created_at, id);
CREATE INDEX instance_live ON instance (deleted, created_at, id);
)SQL"},
          // Quota usage (every boot counts its project's servers, cores and RAM) from the index
          // alone, without reading each server's row.
          {9, R"SQL(
CREATE INDEX instance_usage ON instance (project_id, deleted, user_id, vcpus, memory_mb);
)SQL"},
          // The numbers handed out so far per table (aggregate ids, service ids, instance names).
          {10, R"SQL(
CREATE TABLE number_sequence (name VARCHAR(128) PRIMARY KEY, value BIGINT NOT NULL);
)SQL"},
          // Remote console tokens (only their hashes), as Nova keeps them.
          {11, R"SQL(
CREATE TABLE console_auth_token (id VARCHAR(64) PRIMARY KEY, token_hash VARCHAR(255) NOT NULL UNIQUE,
  console_type VARCHAR(64) NOT NULL, host VARCHAR(255) NOT NULL, port INTEGER, internal_access_path TEXT,
  instance_uuid VARCHAR(64) NOT NULL, access_url_base TEXT, created_at VARCHAR(32) NOT NULL,
  expires BIGINT NOT NULL);
CREATE INDEX console_auth_token_instance ON console_auth_token (instance_uuid);
)SQL"}};
}

}  // namespace nubo::compute::store
