// What the metadata service reads of a server, and the password its guest posts there (shown and
// cleared through os-server-password).
#include <soci/soci.h>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/metadata/content.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {
// Kept in the instance row's extra fields, as Nova keeps it in system metadata.
constexpr const char* kPassword = "metadata_password";
}  // namespace

std::optional<ComputeService::MetadataView> ComputeService::metadata_view(const std::string& id) {
  std::optional<MetadataView> out;
  db_->read([&](soci::session& s) {
    auto row = db::get(s, st::instance, id);
    if (!row || row->at("deleted").as_bool()) return;
    std::map<std::string, std::string> metadata;
    for (auto& m : db::select(s, st::instance_metadata, db::Query{}.eq("instance_id", id)))
      metadata[string_or(m, "key")] = string_or(m, "value");
    out = MetadataView{instance_spec(*row, metadata), string_or(*row, kPassword)};
  });
  return out;
}

void ComputeService::set_metadata_password(const std::string& id, const std::string& password) {
  db_->write([&](soci::session& s) {
    auto row = db::get(s, st::instance, id);
    if (!row || row->at("deleted").as_bool())
      throw NotFound("Instance " + id + " could not be found.");
    // Nova's order: an existing password first, then the size.
    if (!string_or(*row, kPassword).empty()) throw Conflict("The password is already set.");
    if (password.size() > metadata::kMaxPassword) throw BadRequest("Request is too large.");
    // A guest posts its password encrypted and base64-encoded; anything else (bytes that are not
    // text) could not be kept in the row's JSON.
    if (password.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789+/=\r\n") != std::string::npos)
      throw BadRequest("The password must be base64-encoded.");
    db::update(s, st::instance, id, json::object{{kPassword, password}});
  });
}

std::string ComputeService::server_password(const Caller& c, const std::string& id) {
  std::string out;
  db_->read([&](soci::session& s) {
    out = string_or(server_row(s, c, id, "os_compute_api:os-server-password:show"), kPassword);
  });
  return out;
}

void ComputeService::clear_server_password(const Caller& c, const std::string& id) {
  db_->write([&](soci::session& s) {
    server_row(s, c, id, "os_compute_api:os-server-password:clear");
    db::update(s, st::instance, id, json::object{{kPassword, ""}});
  });
}

}  // namespace nubo::compute
