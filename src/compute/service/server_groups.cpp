// Server groups: the affinity policies the scheduler honours for their members.
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

json::object with_members(soci::session& s, json::object row) {
  json::array members;
  for (auto& m : db::select(s, st::server_group_member,
                            db::Query{}.eq("group_id", std::string(row.at("id").as_string()))))
    members.push_back(m.at("instance_id"));
  row["members"] = std::move(members);
  return row;
}

}  // namespace

json::object ComputeService::create_server_group(const Caller& c, const std::string& name,
                                                 const std::string& policy,
                                                 const json::object& rules) {
  c.authorize("os_compute_api:os-server-groups:create",
              {{"project_id", c.project()}, {"user_id", c.user()}});
  json::object row{{"id", uuid4()},
                   {"name", name},
                   {"policy", policy},
                   {"rules", rules},
                   {"project_id", c.project()},
                   {"user_id", c.user()},
                   {"created_at", now()}};
  db_->write([&](soci::session& s) {
    auto q = effective_quotas(s, c.project(), c.user()).at("server_groups");
    auto used = db::count(s, st::server_group, db::Query{}.eq("project_id", c.project()));
    if (q.limit >= 0 && used + 1 > q.limit)
      throw Forbidden("Quota exceeded, too many server groups.");
    db::insert(s, st::server_group, row);
  });
  row["members"] = json::array{};
  return row;
}

std::vector<json::object> ComputeService::list_server_groups(const Caller& c, bool all_projects,
                                                             long offset,
                                                             std::optional<long> limit) {
  c.authorize("os_compute_api:os-server-groups:index", {{"project_id", c.project()}});
  if (all_projects)
    c.authorize("os_compute_api:os-server-groups:index:all_projects",
                {{"project_id", c.project()}});
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    db::Query q;
    if (!all_projects) q.eq("project_id", c.project());
    q.order_by = "created_at";
    for (auto& row : db::select(s, st::server_group, q))
      out.push_back(with_members(s, std::move(row)));
  });
  if (offset > 0)
    out.erase(out.begin(), out.begin() + std::min<long>(offset, static_cast<long>(out.size())));
  if (limit && static_cast<long>(out.size()) > *limit) out.resize(static_cast<size_t>(*limit));
  return out;
}

json::object ComputeService::show_server_group(const Caller& c, const std::string& id) {
  json::object out;
  db_->read([&](soci::session& s) {
    auto row = db::get(s, st::server_group, id);
    if (!row || !c.allowed("os_compute_api:os-server-groups:show",
                           {{"project_id", std::string(row->at("project_id").as_string())}}))
      throw NotFound("Instance group " + id + " could not be found.");
    out = with_members(s, std::move(*row));
  });
  return out;
}

void ComputeService::delete_server_group(const Caller& c, const std::string& id) {
  db_->write([&](soci::session& s) {
    auto row = db::get(s, st::server_group, id);
    if (!row) throw NotFound("Instance group " + id + " could not be found.");
    c.authorize("os_compute_api:os-server-groups:delete",
                {{"project_id", std::string(row->at("project_id").as_string())}});
    db::remove(s, st::server_group_member, db::Query{}.eq("group_id", id));
    db::remove_id(s, st::server_group, id);
  });
}

}  // namespace nubo::compute
