// The network service's tables and numbered migrations. Resources keep their columns for lookups
// and uniqueness; every other attribute lives in the row's `extra` JSON.
#pragma once

#include <vector>

#include "common/db/database.hpp"
#include "common/db/table.hpp"

namespace nubo::network::store {

extern const db::Table network, subnet, port, security_group, security_group_rule, router,
    floatingip, subnetpool, rbac_policy, address_scope;
std::vector<db::Migration> migrations();

}  // namespace nubo::network::store
