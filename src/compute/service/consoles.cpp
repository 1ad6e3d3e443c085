// Remote consoles: tokens for a server's interactive console (kept as hashes, with an expiry),
// the URLs that carry them to the console proxy, and what the proxy learns from a token.
#include <openssl/evp.h>
#include <soci/soci.h>

#include <map>
#include <set>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/compute_service.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

namespace {

std::string token_hash(const std::string& token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::int64_t unix_now(const Clock& clock) {
  return static_cast<std::int64_t>(to_unix(clock.now()));
}

}  // namespace

json::object ComputeService::create_remote_console(const Caller& c, const std::string& id,
                                                   const std::string& protocol,
                                                   const std::string& type) {
  json::object row;
  db_->read(
      [&](soci::session& s) { row = server_row(s, c, id, "os_compute_api:os-remote-consoles"); });
  // Nova's pairs of protocol and type; the ones this cloud does not serve are unavailable.
  static const std::map<std::string, std::set<std::string>> types{{"vnc", {"novnc", "xvpvnc"}},
                                                                  {"spice", {"spice-html5"}},
                                                                  {"serial", {"serial"}},
                                                                  {"rdp", {"rdp-html5"}},
                                                                  {"mks", {"webmks"}}};
  auto known = types.find(protocol);
  if (known == types.end() || !known->second.count(type))
    throw BadRequest("Invalid console type " + type);
  if (protocol != "serial" || !settings_.serial_console_enabled)
    throw BadRequest("Unavailable console type " + type + ".");
  auto answer = ask_host(row, "console", json::object{{"instance_id", id}, {"protocol", protocol}},
                         "The console is not available: ");
  json::object endpoint = answer.is_object() ? answer.as_object() : json::object{};
  auto token = uuid4();
  auto base = settings_.serial_console_base_url;
  db_->write([&](soci::session& s) {
    auto now = unix_now(*clock_);
    // Expired tokens go as new ones come (Nova's clean_console_auths_for_instance is per host).
    db::execute(s, "DELETE FROM console_auth_token WHERE expires < :p0", {std::to_string(now)});
    db::insert(s, st::console_auth_token,
               json::object{{"id", uuid4()},
                            {"token_hash", token_hash(token)},
                            {"console_type", type},
                            {"host", string_or(endpoint, "host")},
                            {"port", int_or(endpoint, "port")},
                            {"internal_access_path", string_or(endpoint, "path")},
                            {"instance_uuid", id},
                            {"access_url_base", base},
                            {"created_at", iso8601(clock_->now(), true, false)},
                            {"expires", now + settings_.console_token_ttl}});
  });
  return json::object{{"protocol", protocol}, {"type", type}, {"url", base + "?token=" + token}};
}

std::optional<ComputeService::ConsoleTarget> ComputeService::console_target(
    const std::string& token) {
  std::optional<ConsoleTarget> out;
  db_->read([&](soci::session& s) {
    auto rows =
        db::select(s, st::console_auth_token, db::Query{}.eq("token_hash", token_hash(token)));
    if (rows.empty() || int_or(rows.front(), "expires") < unix_now(*clock_)) return;
    auto& r = rows.front();
    auto server = db::get(s, st::instance, string_or(r, "instance_uuid"));
    if (!server || server->at("deleted").as_bool()) return;
    out = ConsoleTarget{string_or(r, "instance_uuid"), string_or(r, "console_type"),
                        string_or(r, "host"), string_or(r, "internal_access_path"),
                        int_or(r, "port")};
  });
  return out;
}

json::object ComputeService::console_auth_token(const Caller& c, const std::string& token,
                                                bool any_type) {
  c.authorize("os_compute_api:os-console-auth-tokens", {{"project_id", c.project()}});
  // Before 2.31 only RDP's tokens were shown, and RDP consoles are gone: Nova refuses them all.
  if (!any_type) throw BadRequest("The requested console type details are not accessible");
  auto target = console_target(token);
  if (!target) throw NotFound("Token not found");
  json::object out{{"instance_uuid", target->instance_uuid},
                   {"host", target->host},
                   {"port", target->port},
                   {"internal_access_path", target->internal_access_path}};
  if (target->internal_access_path.empty()) out["internal_access_path"] = nullptr;
  return out;
}

}  // namespace nubo::compute
