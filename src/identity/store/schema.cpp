#include "identity/store/schema.hpp"

namespace nubo::identity::store {

using db::ColumnType;
using T = ColumnType;

const db::Table project{"project",
                        {{"id"}, {"name"}, {"domain_id"}, {"parent_id"}, {"is_domain", T::Bool}, {"enabled", T::Bool},
                         {"description"}},
                        true};
const db::Table project_tag{"project_tag", {{"project_id"}, {"name"}}};
const db::Table user{"identity_user",
                     {{"id"}, {"name"}, {"domain_id"}, {"enabled", T::Bool}, {"default_project_id"}, {"created_at"},
                      {"last_active_at"}, {"failed_auth_count", T::Int}, {"failed_auth_at", T::Real},
                      {"options", T::Json}},
                     true};
const db::Table password{"password",
                         {{"id"}, {"user_id"}, {"password_hash"}, {"created_at_us", T::Int}, {"self_service", T::Bool},
                          {"expires_at"}}};
const db::Table group{"identity_group", {{"id"}, {"name"}, {"domain_id"}, {"description"}}, true};
const db::Table user_group{"user_group", {{"user_id"}, {"group_id"}}};
const db::Table role{"role", {{"id"}, {"name"}, {"domain_id"}, {"description"}, {"options", T::Json}}, true};
const db::Table implied_role{"implied_role", {{"prior_role_id"}, {"implied_role_id"}}};
const db::Table assignment{"assignment",
                           {{"type"}, {"actor_id"}, {"target_id"}, {"role_id"}, {"inherited", T::Bool}}};
const db::Table region{"region", {{"id"}, {"description"}, {"parent_region_id"}}, true};
const db::Table service{"service", {{"id"}, {"type"}, {"enabled", T::Bool}}, true};
const db::Table endpoint{"endpoint",
                         {{"id"}, {"service_id"}, {"interface"}, {"region_id"}, {"url"}, {"enabled", T::Bool}}, true};
const db::Table endpoint_group{"endpoint_group", {{"id"}, {"name"}, {"description"}, {"filters", T::Json}}};
const db::Table application_credential{
    "application_credential",
    {{"id"}, {"name"}, {"secret_hash"}, {"description"}, {"user_id"}, {"project_id"}, {"expires_at"},
     {"unrestricted", T::Bool}, {"roles", T::Json}, {"access_rule_ids", T::Json}, {"created_at"}}};
const db::Table access_rule{"access_rule", {{"id"}, {"user_id"}, {"service"}, {"path"}, {"method"}}};
const db::Table credential{"credential", {{"id"}, {"user_id"}, {"project_id"}, {"type"}, {"blob"}}, true};
const db::Table registered_limit{
    "registered_limit",
    {{"id"}, {"service_id"}, {"region_id"}, {"resource_name"}, {"default_limit", T::Int}, {"description"}}};
const db::Table limit{"project_limit",
                      {{"id"}, {"project_id"}, {"domain_id"}, {"service_id"}, {"region_id"}, {"resource_name"},
                       {"resource_limit", T::Int}, {"description"}}};
const db::Table revocation_event{"revocation_event",
                                 {{"id"}, {"user_id"}, {"project_id"}, {"domain_id"}, {"role_id"}, {"trust_id"},
                                  {"audit_id"}, {"issued_before", T::Real}, {"revoked_at", T::Real}}};
const db::Table trust{"trust",
                      {{"id"}, {"trustor_user_id"}, {"trustee_user_id"}, {"project_id"}, {"impersonation", T::Bool},
                       {"expires_at"}, {"remaining_uses", T::Int}, {"allow_redelegation", T::Bool},
                       {"redelegation_count", T::Int}, {"roles", T::Json}}};
const db::Table policy{"policy", {{"id"}, {"type"}, {"blob"}}, true};
const db::Table consumer{"consumer", {{"id"}, {"description"}, {"secret"}}, true};
const db::Table domain_config{"domain_config", {{"domain_id"}, {"config", T::Json}}};

std::vector<db::Migration> migrations() {
  return {
      {1, R"SQL(
CREATE TABLE project (id VARCHAR(64) PRIMARY KEY, name VARCHAR(64) NOT NULL, domain_id VARCHAR(64) NOT NULL,
  parent_id VARCHAR(64), is_domain INTEGER NOT NULL DEFAULT 0, enabled INTEGER NOT NULL DEFAULT 1, description TEXT,
  extra TEXT, UNIQUE (domain_id, name));
CREATE INDEX project_parent ON project (parent_id);
CREATE TABLE project_tag (project_id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, PRIMARY KEY (project_id, name));
CREATE TABLE identity_user (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, domain_id VARCHAR(64) NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1, default_project_id VARCHAR(64), created_at VARCHAR(40), last_active_at VARCHAR(40),
  failed_auth_count BIGINT, failed_auth_at DOUBLE PRECISION, options TEXT, extra TEXT, UNIQUE (domain_id, name));
CREATE TABLE password (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64) NOT NULL, password_hash VARCHAR(255) NOT NULL,
  created_at_us BIGINT NOT NULL, self_service INTEGER NOT NULL DEFAULT 0, expires_at VARCHAR(40));
CREATE INDEX password_user ON password (user_id, created_at_us);
CREATE TABLE identity_group (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, domain_id VARCHAR(64) NOT NULL,
  description TEXT, extra TEXT, UNIQUE (domain_id, name));
CREATE TABLE user_group (user_id VARCHAR(64) NOT NULL, group_id VARCHAR(64) NOT NULL, PRIMARY KEY (user_id, group_id));
CREATE INDEX user_group_group ON user_group (group_id);
CREATE TABLE role (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, domain_id VARCHAR(64) NOT NULL,
  description TEXT, options TEXT, extra TEXT, UNIQUE (name, domain_id));
CREATE TABLE implied_role (prior_role_id VARCHAR(64) NOT NULL, implied_role_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (prior_role_id, implied_role_id));
CREATE TABLE assignment (type VARCHAR(16) NOT NULL, actor_id VARCHAR(64) NOT NULL, target_id VARCHAR(64) NOT NULL,
  role_id VARCHAR(64) NOT NULL, inherited INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (type, actor_id, target_id, role_id, inherited));
CREATE INDEX assignment_actor ON assignment (actor_id);
CREATE INDEX assignment_target ON assignment (target_id);
CREATE INDEX assignment_role ON assignment (role_id);
CREATE TABLE region (id VARCHAR(255) PRIMARY KEY, description TEXT, parent_region_id VARCHAR(255), extra TEXT);
CREATE TABLE service (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255), enabled INTEGER NOT NULL DEFAULT 1, extra TEXT);
CREATE TABLE endpoint (id VARCHAR(64) PRIMARY KEY, service_id VARCHAR(64) NOT NULL, interface VARCHAR(8) NOT NULL,
  region_id VARCHAR(255), url TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, extra TEXT);
CREATE TABLE endpoint_group (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, description TEXT, filters TEXT);
CREATE TABLE application_credential (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL,
  secret_hash VARCHAR(255) NOT NULL, description TEXT, user_id VARCHAR(64) NOT NULL, project_id VARCHAR(64),
  expires_at VARCHAR(40), unrestricted INTEGER NOT NULL DEFAULT 0, roles TEXT, access_rule_ids TEXT, created_at VARCHAR(40),
  UNIQUE (user_id, name));
CREATE TABLE access_rule (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64) NOT NULL, service VARCHAR(64),
  path VARCHAR(128), method VARCHAR(16));
CREATE TABLE credential (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64) NOT NULL, project_id VARCHAR(64),
  type VARCHAR(255) NOT NULL, blob TEXT NOT NULL, extra TEXT);
CREATE TABLE registered_limit (id VARCHAR(64) PRIMARY KEY, service_id VARCHAR(64) NOT NULL, region_id VARCHAR(255),
  resource_name VARCHAR(255) NOT NULL, default_limit BIGINT NOT NULL, description TEXT);
CREATE TABLE project_limit (id VARCHAR(64) PRIMARY KEY, project_id VARCHAR(64), domain_id VARCHAR(64),
  service_id VARCHAR(64) NOT NULL, region_id VARCHAR(255), resource_name VARCHAR(255) NOT NULL,
  resource_limit BIGINT NOT NULL, description TEXT);
CREATE TABLE revocation_event (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64), project_id VARCHAR(64),
  domain_id VARCHAR(64), role_id VARCHAR(64), trust_id VARCHAR(64), audit_id VARCHAR(64),
  issued_before DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION NOT NULL);
CREATE TABLE trust (id VARCHAR(64) PRIMARY KEY, trustor_user_id VARCHAR(64) NOT NULL, trustee_user_id VARCHAR(64) NOT NULL,
  project_id VARCHAR(64), impersonation INTEGER NOT NULL, expires_at VARCHAR(40), remaining_uses BIGINT,
  allow_redelegation INTEGER NOT NULL DEFAULT 0, redelegation_count BIGINT, roles TEXT);
CREATE TABLE policy (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL, blob TEXT NOT NULL, extra TEXT);
CREATE TABLE consumer (id VARCHAR(64) PRIMARY KEY, description TEXT, secret VARCHAR(64) NOT NULL, extra TEXT);
CREATE TABLE domain_config (domain_id VARCHAR(64) PRIMARY KEY, config TEXT NOT NULL)
)SQL"},
  };
}

}  // namespace nubo::identity::store
