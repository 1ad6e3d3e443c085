// The identity database: its tables as the generic row layer sees them, and its migrations.
#pragma once

#include "common/db/database.hpp"
#include "common/db/table.hpp"

#include <vector>

namespace nubo::identity::store {

// Domains are projects with is_domain = 1 whose domain_id is kRootDomain, as in Keystone.
inline constexpr const char* kRootDomain = "<<keystone.domain.root>>";
// Global roles carry this domain_id so the unique (name, domain_id) index covers them.
inline constexpr const char* kNullDomain = "<<null>>";

extern const db::Table project, project_tag, user, password, group, user_group, role, implied_role, assignment, region,
    service, endpoint, endpoint_group, application_credential, access_rule, credential, registered_limit, limit,
    revocation_event, trust, policy, consumer, domain_config;

std::vector<db::Migration> migrations();

}  // namespace nubo::identity::store
