// The compute database: its tables as the generic row layer sees them, and its migrations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/db/database.hpp"
#include "common/db/table.hpp"

namespace nubo::compute::store {

// flavor: keyed by Nova's string flavorid; `seq` keeps creation order for the default sort.
// flavor_extra_spec and flavor_project (access to private flavors) hang off it.
extern const db::Table flavor, flavor_extra_spec, flavor_project;
// keypair: per user, keyed by a uuid; `number` is the integer id Nova shows.
extern const db::Table keypair;
// quota: a project's (user_id empty) or a project user's hard limit for one resource;
// quota_class: a class's (only "default" is used, as in Nova) limit for one resource.
extern const db::Table quota, quota_class;
// server_group: one policy and its rules (a JSON object); members join when servers do.
extern const db::Table server_group, server_group_member;
// compute_service: a service on a host (nova-compute, nova-scheduler, nova-conductor) with its
// heartbeat; compute_node: the hypervisor a nova-compute service reports. Both keep the integer
// id Nova showed before 2.53 (`number`) beside the uuid it shows after.
extern const db::Table compute_service, compute_node;
// aggregate (`number` is the integer id the API shows), its hosts and its metadata (where the
// availability zone lives, as `availability_zone`).
extern const db::Table aggregate, aggregate_host, aggregate_metadata;

// instance: a server. Queried columns are columns; the rest (user_data, access IPs, requested
// networks, old/new flavor during a resize...) lives in `extra`. `flavor` is the flavor as it was
// at boot (Nova's embedded flavor). `deleted` rows stay for changes-since and usage. The task
// state is the durable record of the operation in flight: the conductor resumes from it.
// instance_metadata, instance_tag hang off it; instance_action and instance_action_event record
// what was asked and what ran (os-instance-actions); instance_fault the last errors.
extern const db::Table instance, instance_metadata, instance_tag, instance_action,
    instance_action_event, instance_fault;

// migration: a resize or cold migration of a server, as os-migrations lists it (`number` is the
// integer id shown; flavor ids are the flavors' integer `seq`).
extern const db::Table migration;
extern const db::Table console_auth_token;

std::vector<db::Migration> migrations();

// The next value of an increasing integer column (the integer ids Nova shows), read in the write
// transaction that inserts it; `count` numbers from it on are taken.
std::int64_t next_number(soci::session& s, const db::Table& t, const std::string& column = "number",
                         std::int64_t count = 1);
// Records a migration of the server `instance` (its row) from its host: id, number, source,
// project, user and times filled in; `fields` adds the rest (type, status, destination, flavors).
void insert_migration(soci::session& s, const std::string& id, const json::object& instance,
                      const std::string& now, json::object fields);
// A row by its uuid, or by the integer `number` older microversions show.
std::optional<json::object> by_id_or_number(soci::session& s, const db::Table& t,
                                            const std::string& id);

}  // namespace nubo::compute::store
