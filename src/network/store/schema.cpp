#include "network/store/schema.hpp"

namespace nubo::network::store {

using T = db::ColumnType;

const db::Table network{
    "network", {{"id"}, {"project_id"}, {"name"}, {"shared", T::Bool}, {"created_at"}}, true};
const db::Table subnet{"subnet",
                       {{"id"},
                        {"project_id"},
                        {"network_id"},
                        {"name"},
                        {"cidr"},
                        {"ip_version", T::Int},
                        {"subnetpool_id"},
                        {"created_at"},
                        {"revision_number", T::Int}},
                       true};
const db::Table port{"port",
                     {{"id"},
                      {"project_id"},
                      {"network_id"},
                      {"name"},
                      {"device_id"},
                      {"device_owner"},
                      {"mac_address"},
                      {"created_at"},
                      {"revision_number", T::Int}},
                     true};
const db::Table security_group{
    "security_group", {{"id"}, {"project_id"}, {"name"}, {"created_at"}}, true};
const db::Table security_group_rule{"security_group_rule",
                                    {{"id"},
                                     {"project_id"},
                                     {"security_group_id"},
                                     {"remote_group_id"},
                                     {"created_at"},
                                     {"revision_number", T::Int}},
                                    true};
const db::Table router{
    "router",
    {{"id"}, {"project_id"}, {"name"}, {"created_at"}, {"revision_number", T::Int}},
    true};
const db::Table floatingip{"floatingip",
                           {{"id"},
                            {"project_id"},
                            {"floating_network_id"},
                            {"floating_ip_address"},
                            {"port_id"},
                            {"router_id"},
                            {"created_at"},
                            {"revision_number", T::Int}},
                           true};
const db::Table subnetpool{
    "subnetpool",
    {{"id"}, {"project_id"}, {"name"}, {"created_at"}, {"revision_number", T::Int}},
    true};
const db::Table rbac_policy{"rbac_policy",
                            {{"id"},
                             {"project_id"},
                             {"object_type"},
                             {"object_id"},
                             {"action"},
                             {"target_tenant"},
                             {"created_at"},
                             {"revision_number", T::Int}},
                            true};
const db::Table address_scope{
    "address_scope",
    {{"id"}, {"project_id"}, {"name"}, {"created_at"}, {"revision_number", T::Int}},
    true};

std::vector<db::Migration> migrations() {
  return {
      {1, R"SQL(
CREATE TABLE network (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255), name VARCHAR(255),
  shared INTEGER NOT NULL DEFAULT 0, created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE INDEX network_project ON network (project_id);
CREATE TABLE subnet (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255),
  network_id VARCHAR(36) NOT NULL REFERENCES network (id), name VARCHAR(255), cidr VARCHAR(64) NOT NULL,
  ip_version INTEGER NOT NULL, subnetpool_id VARCHAR(36), created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE INDEX subnet_network ON subnet (network_id);
CREATE TABLE port (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255),
  network_id VARCHAR(36) NOT NULL REFERENCES network (id), name VARCHAR(255), device_id VARCHAR(255),
  device_owner VARCHAR(255), mac_address VARCHAR(32) NOT NULL, created_at VARCHAR(40) NOT NULL, extra TEXT,
  UNIQUE (network_id, mac_address));
CREATE INDEX port_device ON port (device_id);
CREATE INDEX port_project ON port (project_id);
-- One row per allocated address: the primary key makes a double allocation impossible.
CREATE TABLE ip_allocation (subnet_id VARCHAR(36) NOT NULL REFERENCES subnet (id),
  ip_address VARCHAR(64) NOT NULL, network_id VARCHAR(36) NOT NULL, port_id VARCHAR(36),
  PRIMARY KEY (subnet_id, ip_address));
CREATE INDEX ip_allocation_port ON ip_allocation (port_id);
CREATE TABLE port_security_group (port_id VARCHAR(36) NOT NULL, security_group_id VARCHAR(36) NOT NULL,
  PRIMARY KEY (port_id, security_group_id));
CREATE INDEX port_security_group_group ON port_security_group (security_group_id);
CREATE TABLE security_group (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255), name VARCHAR(255),
  created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE INDEX security_group_project ON security_group (project_id);
CREATE TABLE default_security_group (project_id VARCHAR(255) PRIMARY KEY,
  security_group_id VARCHAR(36) NOT NULL);
CREATE TABLE security_group_rule (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255),
  security_group_id VARCHAR(36) NOT NULL REFERENCES security_group (id), remote_group_id VARCHAR(36),
  created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE INDEX security_group_rule_group ON security_group_rule (security_group_id);
CREATE TABLE router (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255), name VARCHAR(255),
  created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE TABLE floatingip (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255),
  floating_network_id VARCHAR(36) NOT NULL, floating_ip_address VARCHAR(64) NOT NULL,
  port_id VARCHAR(36), router_id VARCHAR(36), created_at VARCHAR(40) NOT NULL, extra TEXT,
  UNIQUE (floating_network_id, floating_ip_address));
CREATE INDEX floatingip_port ON floatingip (port_id);
CREATE TABLE subnetpool (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255), name VARCHAR(255),
  created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE TABLE address_scope (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255), name VARCHAR(255),
  created_at VARCHAR(40) NOT NULL, extra TEXT);
CREATE TABLE rbac_policy (id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255),
  object_type VARCHAR(32) NOT NULL, object_id VARCHAR(36) NOT NULL, action VARCHAR(32) NOT NULL,
  target_tenant VARCHAR(255) NOT NULL, created_at VARCHAR(40) NOT NULL, extra TEXT,
  UNIQUE (object_type, object_id, action, target_tenant));
CREATE INDEX rbac_policy_object ON rbac_policy (object_id);
CREATE TABLE quota (project_id VARCHAR(255) NOT NULL, resource VARCHAR(64) NOT NULL,
  hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource))
)SQL"},
      // Revisions as columns where listings keep rendered rows (NetworkService::list_rendered
      // compares them). Rows stored before keep theirs in `extra` until ensure_revisions copies it.
      {2, R"SQL(
ALTER TABLE subnet ADD COLUMN revision_number BIGINT;
ALTER TABLE port ADD COLUMN revision_number BIGINT;
ALTER TABLE security_group_rule ADD COLUMN revision_number BIGINT;
ALTER TABLE router ADD COLUMN revision_number BIGINT;
ALTER TABLE floatingip ADD COLUMN revision_number BIGINT;
ALTER TABLE subnetpool ADD COLUMN revision_number BIGINT;
ALTER TABLE rbac_policy ADD COLUMN revision_number BIGINT;
ALTER TABLE address_scope ADD COLUMN revision_number BIGINT
)SQL"},
  };
}

}  // namespace nubo::network::store
