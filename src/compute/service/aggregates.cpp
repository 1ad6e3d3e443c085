// Host aggregates: groups of hosts with metadata, the source of availability zones and of the
// scheduler's aggregate filters.
#include <soci/soci.h>

#include <set>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

constexpr const char* kZoneKey = "availability_zone";

}  // namespace

json::object ComputeService::aggregate_row(soci::session& s, const std::string& id) {
  auto row = st::by_id_or_number(s, st::aggregate, id);
  if (!row) throw NotFound("Aggregate " + id + " could not be found.");
  std::string uuid(row->at("id").as_string());
  json::array hosts;
  for (auto& h : db::select(s, st::aggregate_host, db::Query{}.eq("aggregate_id", uuid)))
    hosts.push_back(h.at("host"));
  json::object metadata;
  for (auto& m : db::select(s, st::aggregate_metadata, db::Query{}.eq("aggregate_id", uuid)))
    metadata[m.at("key").as_string()] = m.at("value");
  (*row)["availability_zone"] =
      metadata.contains(kZoneKey) ? metadata.at(kZoneKey) : json::value(nullptr);
  (*row)["hosts"] = std::move(hosts);
  (*row)["metadata"] = std::move(metadata);
  return std::move(*row);
}

std::map<std::string, std::string> ComputeService::host_zones(soci::session& s) {
  std::map<std::string, std::string> zone_of_aggregate, out;
  for (auto& m : db::select(s, st::aggregate_metadata, db::Query{}.eq("key", kZoneKey)))
    zone_of_aggregate[std::string(m.at("aggregate_id").as_string())] =
        std::string(m.at("value").as_string());
  for (auto& h : db::select(s, st::aggregate_host))
    if (auto it = zone_of_aggregate.find(std::string(h.at("aggregate_id").as_string()));
        it != zone_of_aggregate.end())
      out[std::string(h.at("host").as_string())] = it->second;
  return out;
}

json::object ComputeService::change_aggregate(
    const Caller& c, const char* rule, const std::string& id,
    const std::function<void(soci::session&, const json::object&, const std::string&)>& change) {
  c.authorize(std::string("os_compute_api:os-aggregates:") + rule, {{"project_id", c.project()}});
  json::object out;
  write_hosts([&](soci::session& s) {
    auto row = aggregate_row(s, id);
    std::string uuid(row.at("id").as_string());
    change(s, row, uuid);
    out = aggregate_row(s, uuid);
  });
  return out;
}

std::vector<json::object> ComputeService::list_aggregates(const Caller& c) {
  c.authorize("os_compute_api:os-aggregates:index", {{"project_id", c.project()}});
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    db::Query q;
    q.order_by = "number";
    for (auto& a : db::select(s, st::aggregate, q))
      out.push_back(aggregate_row(s, std::string(a.at("id").as_string())));
  });
  return out;
}

json::object ComputeService::show_aggregate(const Caller& c, const std::string& id) {
  c.authorize("os_compute_api:os-aggregates:show", {{"project_id", c.project()}});
  json::object out;
  db_->read([&](soci::session& s) { out = aggregate_row(s, id); });
  return out;
}

json::object ComputeService::create_aggregate(const Caller& c, const std::string& name,
                                              const std::optional<std::string>& zone) {
  c.authorize("os_compute_api:os-aggregates:create", {{"project_id", c.project()}});
  if (zone && *zone == settings_.internal_zone)
    throw BadRequest("Aggregate " + name + " can not use the internal availability zone '" + *zone +
                     "'.");
  json::object out;
  write_hosts([&](soci::session& s) {
    if (db::count(s, st::aggregate, db::Query{}.eq("name", name)) > 0)
      throw Conflict("Aggregate " + name + " already exists.");
    std::string uuid = uuid4();
    db::insert(s, st::aggregate,
               json::object{{"id", uuid},
                            {"number", st::next_number(s, st::aggregate)},
                            {"name", name},
                            {"created_at", now()},
                            {"updated_at", nullptr}});
    if (zone)
      db::insert(s, st::aggregate_metadata,
                 json::object{
                     {"id", uuid4()}, {"aggregate_id", uuid}, {"key", kZoneKey}, {"value", *zone}});
    out = aggregate_row(s, uuid);
  });
  return out;
}

json::object ComputeService::update_aggregate(
    const Caller& c, const std::string& id, const std::optional<std::string>& name,
    const std::optional<std::optional<std::string>>& zone) {
  c.authorize("os_compute_api:os-aggregates:update", {{"project_id", c.project()}});
  write_hosts([&](soci::session& s) {
    auto row = aggregate_row(s, id);
    std::string uuid(row.at("id").as_string());
    if (name && *name != row.at("name").as_string()) {
      if (db::count(s, st::aggregate, db::Query{}.eq("name", *name)) > 0)
        throw Conflict("Aggregate " + *name + " already exists.");
      db::update(s, st::aggregate, uuid, json::object{{"name", *name}, {"updated_at", now()}});
    }
  });
  if (zone) {
    json::object meta;
    meta[kZoneKey] = *zone ? json::value(**zone) : json::value(nullptr);
    return aggregate_set_metadata(c, id, meta);
  }
  return show_aggregate(c, id);
}

void ComputeService::delete_aggregate(const Caller& c, const std::string& id) {
  c.authorize("os_compute_api:os-aggregates:delete", {{"project_id", c.project()}});
  write_hosts([&](soci::session& s) {
    auto row = aggregate_row(s, id);
    if (!row.at("hosts").as_array().empty())
      throw BadRequest("Cannot perform action 'delete' on aggregate " + id +
                       ". Reason: Host aggregate is not empty.");
    std::string uuid(row.at("id").as_string());
    db::remove(s, st::aggregate_metadata, db::Query{}.eq("aggregate_id", uuid));
    db::remove_id(s, st::aggregate, uuid);
  });
}

json::object ComputeService::aggregate_add_host(const Caller& c, const std::string& id,
                                                const std::string& host) {
  return change_aggregate(
      c, "add_host", id, [&](soci::session& s, const json::object& row, const std::string& uuid) {
        if (!is_compute_host(s, host))
          throw NotFound("Compute host " + host + " could not be found.");
        if (db::count(s, st::aggregate_host,
                      db::Query{}.eq("aggregate_id", uuid).eq("host", host)) > 0)
          throw Conflict("Aggregate " + id + " already has host " + host + ".");
        // A host lives in one availability zone: another aggregate's zone must agree.
        auto& zone = row.at("availability_zone");
        auto zones = host_zones(s);
        if (auto it = zones.find(host);
            it != zones.end() && zone.is_string() && it->second != zone.as_string())
          throw BadRequest("Cannot add host to aggregate " + id +
                           ". Reason: One or more hosts already in availability zone(s) [" +
                           it->second + "].");
        db::insert(s, st::aggregate_host,
                   json::object{{"id", uuid4()}, {"aggregate_id", uuid}, {"host", host}});
      });
}

json::object ComputeService::aggregate_remove_host(const Caller& c, const std::string& id,
                                                   const std::string& host) {
  return change_aggregate(
      c, "remove_host", id, [&](soci::session& s, const json::object&, const std::string& uuid) {
        if (db::remove(s, st::aggregate_host,
                       db::Query{}.eq("aggregate_id", uuid).eq("host", host)) == 0)
          throw NotFound("Cannot remove host " + host + " in aggregate " + id);
      });
}

json::object ComputeService::aggregate_set_metadata(const Caller& c, const std::string& id,
                                                    const json::object& metadata) {
  return change_aggregate(
      c, "set_metadata", id,
      [&](soci::session& s, const json::object& row, const std::string& uuid) {
        for (auto& kv : metadata) {
          std::string key(kv.key());
          if (key.empty() || key.size() > 255)
            throw BadRequest("Invalid input for field/attribute metadata.");
          auto& v = kv.value();
          if (!v.is_null() && !v.is_string())
            throw BadRequest("Invalid input for field/attribute metadata value.");
          if (key == kZoneKey && v.is_string()) {
            if (v.as_string() == settings_.internal_zone)
              throw BadRequest("Aggregate " + id + " can not use the internal availability zone.");
            // Its hosts must not sit in another aggregate's zone.
            auto zones = host_zones(s);
            for (auto& h : row.at("hosts").as_array())
              if (auto it = zones.find(std::string(h.as_string()));
                  it != zones.end() && it->second != v.as_string() &&
                  row.at("availability_zone") != json::value(it->second))
                throw BadRequest("Cannot update aggregate " + id +
                                 ". Reason: One or more hosts already in availability zone(s) [" +
                                 it->second + "].");
          }
          db::remove(s, st::aggregate_metadata,
                     db::Query{}.eq("aggregate_id", uuid).eq("key", key));
          if (!v.is_null())
            db::insert(
                s, st::aggregate_metadata,
                json::object{{"id", uuid4()}, {"aggregate_id", uuid}, {"key", key}, {"value", v}});
        }
        db::update(s, st::aggregate, uuid, json::object{{"updated_at", now()}});
      });
}

}  // namespace nubo::compute
