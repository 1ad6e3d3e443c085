#include "compute/service/compute_service.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "common/db/table.hpp"
#include "common/error.hpp"
#include "compute/service/keys.hpp"
#include "compute/store/schema.hpp"

namespace nubo::compute {

namespace st = store;

std::string nova_denied(const std::string& rule) {
  return "Policy doesn't allow " + rule + " to be performed.";
}

std::optional<bool> nova_boolean(const json::value& v) {
  if (v.is_bool()) return v.as_bool();
  if (!v.is_string()) return std::nullopt;
  std::string t(v.as_string());
  std::transform(t.begin(), t.end(), t.begin(), ::tolower);
  if (t == "true" || t == "1" || t == "on" || t == "yes" || t == "y" || t == "t") return true;
  if (t == "false" || t == "0" || t == "off" || t == "no" || t == "n" || t == "f") return false;
  return std::nullopt;
}

namespace {

constexpr std::int64_t kMaxInt = 2147483647;  // Nova's database integers

std::string invalid(std::string_view field, const json::value& v, const std::string& why) {
  return "Invalid input for field/attribute " + std::string(field) +
         ". Value: " + json::serialize(v) + ". " + why;
}

// Nova's flavor integers: a JSON integer or a string of digits, within [min, 2^31 - 1].
std::int64_t flavor_int(const json::object& body, std::string_view field, std::int64_t min,
                        std::optional<std::int64_t> fallback) {
  auto* v = body.if_contains(field);
  if (!v || v->is_null()) {
    if (fallback) return *fallback;
    throw BadRequest("Invalid input for field/attribute flavor. '" + std::string(field) +
                     "' is a required property");
  }
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64()) {
    n = std::numeric_limits<std::int64_t>::max();
  } else if (v->is_string() && !v->as_string().empty()) {
    std::string_view s(v->as_string());
    auto b = s.find_first_not_of(' ');
    s = b == std::string_view::npos ? std::string_view()
                                    : s.substr(b, s.find_last_not_of(' ') - b + 1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size())
      throw BadRequest(
          invalid(field, *v, json::serialize(*v) + " is not of type 'integer', 'string'"));
  } else {
    throw BadRequest(
        invalid(field, *v, json::serialize(*v) + " is not of type 'integer', 'string'"));
  }
  if (n < min)
    throw BadRequest(invalid(
        field, *v, std::to_string(n) + " is less than the minimum of " + std::to_string(min)));
  if (n > kMaxInt)
    throw BadRequest(
        invalid(field, *v,
                std::to_string(n) + " is greater than the maximum of " + std::to_string(kMaxInt)));
  return n;
}

// Names and ids: 1-255 characters, not starting or ending with whitespace.
void check_name(std::string_view field, const json::value& v, bool id) {
  if (!v.is_string())
    throw BadRequest(invalid(field, v, json::serialize(v) + " is not of type 'string'"));
  std::string_view s(v.as_string());
  if (s.empty() || s.size() > 255)
    throw BadRequest(invalid(field, v, "Length must be 1 to 255 characters."));
  if (std::isspace(static_cast<unsigned char>(s.front())) ||
      std::isspace(static_cast<unsigned char>(s.back())))
    throw BadRequest(invalid(field, v, "Leading and trailing whitespace is not allowed."));
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    bool ok = id ? (std::isalnum(u) || ch == '.' || ch == ' ' || ch == '_' || ch == '-')
                 : (u >= 0x20 && u != 0x7f);
    if (!ok)
      throw BadRequest(invalid(field, v, "Invalid characters in " + std::string(field) + "."));
  }
}

bool visible_flavor(const json::object& f, bool admin, const std::vector<std::string>& access) {
  if (admin) return true;
  if (f.at("is_public").as_bool()) return !f.at("disabled").as_bool();
  return std::find(access.begin(), access.end(), std::string(f.at("id").as_string())) !=
         access.end();
}

}  // namespace

ComputeService::ComputeService(std::unique_ptr<db::Database> database, ComputeSettings settings,
                               std::shared_ptr<Clock> clock)
    : db_(std::move(database)), settings_(std::move(settings)), clock_(std::move(clock)) {
  db_->migrate("compute", st::migrations());
}

ComputeService::~ComputeService() = default;

std::string ComputeService::now() const { return iso8601(clock_->now(), true, false); }

void ComputeService::ensure_default_flavors() {
  struct Default {
    const char *id, *name;
    int ram, vcpus, disk;
  };
  static const Default defaults[] = {{"1", "m1.tiny", 512, 1, 1},
                                     {"2", "m1.small", 2048, 1, 20},
                                     {"3", "m1.medium", 4096, 2, 40},
                                     {"4", "m1.large", 8192, 4, 80},
                                     {"5", "m1.xlarge", 16384, 8, 160}};
  db_->write([&](soci::session& s) {
    if (db::count(s, st::flavor) > 0) return;
    int seq = 0;
    for (auto& d : defaults)
      db::insert(s, st::flavor,
                 json::object{{"id", d.id},
                              {"name", d.name},
                              {"memory_mb", d.ram},
                              {"vcpus", d.vcpus},
                              {"root_gb", d.disk},
                              {"ephemeral_gb", 0},
                              {"swap", 0},
                              {"rxtx_factor", 1.0},
                              {"is_public", true},
                              {"disabled", false},
                              {"description", nullptr},
                              {"seq", ++seq},
                              {"created_at", now()}});
  });
}

json::object ComputeService::flavor_row(soci::session& s, const Caller& c, const std::string& id) {
  auto row = db::get(s, st::flavor, id);
  bool admin = c.admin();
  std::vector<std::string> access;
  if (row && !admin && !row->at("is_public").as_bool())
    for (auto& a : db::select(s, st::flavor_project,
                              db::Query{}.eq("flavor_id", id).eq("project_id", c.project())))
      access.push_back(std::string(a.at("flavor_id").as_string()));
  if (!row || !visible_flavor(*row, admin, access))
    throw NotFound("Flavor " + id + " could not be found.");
  json::object specs;
  for (auto& e : db::select(s, st::flavor_extra_spec, db::Query{}.eq("flavor_id", id)))
    specs[e.at("key").as_string()] = e.at("value");
  (*row)["extra_specs"] = std::move(specs);
  return std::move(*row);
}

std::vector<json::object> ComputeService::list_flavors(const Caller& c, const FlavorQuery& q) {
  static const std::map<std::string, std::string, std::less<>> kSortKeys = {
      {"created_at", "created_at"},
      {"description", "description"},
      {"disabled", "disabled"},
      {"ephemeral_gb", "ephemeral_gb"},
      {"flavorid", "id"},
      {"id", "seq"},
      {"is_public", "is_public"},
      {"memory_mb", "memory_mb"},
      {"name", "name"},
      {"root_gb", "root_gb"},
      {"rxtx_factor", "rxtx_factor"},
      {"swap", "swap"},
      {"updated_at", "created_at"},
      {"vcpu_weight", "seq"},
      {"vcpus", "vcpus"}};
  auto key = kSortKeys.find(q.sort_key);
  if (key == kSortKeys.end()) throw BadRequest("Invalid sort_key: " + q.sort_key);
  if (q.sort_dir != "asc" && q.sort_dir != "desc")
    throw BadRequest("Invalid sort_dir: " + q.sort_dir);
  std::vector<json::object> rows, specs;
  std::vector<std::string> access;
  db_->read([&](soci::session& s) {
    rows = db::select(s, st::flavor);
    specs = db::select(s, st::flavor_extra_spec);
    if (!c.project().empty())
      for (auto& a : db::select(s, st::flavor_project, db::Query{}.eq("project_id", c.project())))
        access.push_back(std::string(a.at("flavor_id").as_string()));
  });
  bool admin = c.admin();
  std::optional<bool> is_public = q.is_public;
  std::vector<json::object> out;
  for (auto& f : rows) {
    bool pub = f.at("is_public").as_bool();
    if (admin) {
      if (is_public && pub != *is_public) continue;
    } else if (!visible_flavor(f, false, access)) {
      continue;
    }
    if (q.min_ram && f.at("memory_mb").as_int64() < *q.min_ram) continue;
    if (q.min_disk && f.at("root_gb").as_int64() < *q.min_disk) continue;
    out.push_back(std::move(f));
  }
  const std::string& col = key->second;
  bool desc = q.sort_dir == "desc";
  auto less = [&](const json::object& a, const json::object& b) {
    auto& x = a.at(col);
    auto& y = b.at(col);
    if (x.is_null() || y.is_null()) return x.is_null() && !y.is_null();
    if (x.is_string()) return x.as_string() < y.as_string();
    if (x.is_bool()) return !x.as_bool() && y.as_bool();
    return x.to_number<double>() < y.to_number<double>();
  };
  std::stable_sort(out.begin(), out.end(), [&](const json::object& a, const json::object& b) {
    return desc ? less(b, a) : less(a, b);
  });
  if (!q.marker.empty()) {
    auto it = std::find_if(out.begin(), out.end(), [&](const json::object& f) {
      return f.at("id").as_string() == q.marker;
    });
    if (it == out.end()) throw BadRequest("marker [" + q.marker + "] not found");
    out.erase(out.begin(), it + 1);
  }
  if (q.limit && static_cast<long>(out.size()) > *q.limit)
    out.resize(static_cast<size_t>(*q.limit));
  for (auto& f : out) {
    json::object es;
    for (auto& e : specs)
      if (e.at("flavor_id") == f.at("id")) es[e.at("key").as_string()] = e.at("value");
    f["extra_specs"] = std::move(es);
  }
  return out;
}

json::object ComputeService::show_flavor(const Caller& c, const std::string& id) {
  json::object out;
  db_->read([&](soci::session& s) { out = flavor_row(s, c, id); });
  return out;
}

json::object ComputeService::create_flavor(const Caller& c, const json::object& body) {
  c.authorize("os_compute_api:os-flavor-manage:create", {{"project_id", c.project()}});
  auto* name = body.if_contains("name");
  if (!name)
    throw BadRequest("Invalid input for field/attribute flavor. 'name' is a required property");
  check_name("name", *name, false);
  std::string id;
  if (auto* v = body.if_contains("id");
      v && !v->is_null() && !(v->is_string() && v->as_string() == "auto")) {
    // Nova takes a number too, and keeps its text.
    json::value text = v->is_number() ? json::value(json::serialize(*v)) : *v;
    check_name("id", text, true);
    id = std::string(text.as_string());
  } else {
    id = uuid4();
  }
  json::object row{{"id", id},
                   {"name", name->as_string()},
                   {"memory_mb", flavor_int(body, "ram", 1, std::nullopt)},
                   {"vcpus", flavor_int(body, "vcpus", 1, std::nullopt)},
                   {"root_gb", flavor_int(body, "disk", 0, std::nullopt)},
                   {"ephemeral_gb", flavor_int(body, "OS-FLV-EXT-DATA:ephemeral", 0, 0)},
                   {"swap", flavor_int(body, "swap", 0, 0)},
                   {"rxtx_factor", 1.0},
                   {"is_public", true},
                   {"disabled", false},
                   {"description", nullptr},
                   {"created_at", now()}};
  if (auto* v = body.if_contains("swap"); v && v->is_string() && v->as_string().empty())
    row["swap"] = 0;
  if (auto* v = body.if_contains("rxtx_factor"); v && !v->is_null()) {
    if (!v->is_number() || v->to_number<double>() <= 0 || !std::isfinite(v->to_number<double>()))
      throw BadRequest(invalid("rxtx_factor", *v, "must be a number greater than 0"));
    row["rxtx_factor"] = v->to_number<double>();
  }
  if (auto* v = body.if_contains("os-flavor-access:is_public"); v && !v->is_null()) {
    auto b = nova_boolean(*v);
    if (!b)
      throw BadRequest(invalid("os-flavor-access:is_public", *v,
                               json::serialize(*v) + " is not of type 'boolean'"));
    row["is_public"] = *b;
  }
  if (auto* v = body.if_contains("description"); v && !v->is_null()) {
    if (!v->is_string() || v->as_string().size() > 65535)
      throw BadRequest(invalid("description", *v, "must be a string of at most 65535 characters"));
    row["description"] = *v;
  }
  db_->write([&](soci::session& s) {
    if (db::count(s, st::flavor, db::Query{}.eq("name", std::string(name->as_string()))) > 0)
      throw Conflict("Flavor with name " + std::string(name->as_string()) + " already exists.");
    if (db::get(s, st::flavor, id)) throw Conflict("Flavor with ID " + id + " already exists.");
    row["seq"] = st::next_number(s, st::flavor, "seq");
    db::insert(s, st::flavor, row);
  });
  row["extra_specs"] = json::object{};
  return row;
}

json::object ComputeService::update_flavor(const Caller& c, const std::string& id,
                                           const json::object& body) {
  c.authorize("os_compute_api:os-flavor-manage:update", {{"project_id", c.project()}});
  auto* d = body.if_contains("description");
  if (!d)
    throw BadRequest(
        "Invalid input for field/attribute flavor. 'description' is a required property");
  for (auto& kv : body)
    if (kv.key() != "description")
      throw BadRequest(
          "Invalid input for field/attribute flavor. Additional properties are not allowed ('" +
          std::string(kv.key()) + "' was unexpected)");
  if (!d->is_null() && (!d->is_string() || d->as_string().size() > 65535))
    throw BadRequest(invalid("description", *d, "must be a string of at most 65535 characters"));
  json::object out;
  db_->write([&](soci::session& s) {
    flavor_row(s, c, id);
    db::update(s, st::flavor, id, json::object{{"description", *d}});
    out = flavor_row(s, c, id);
  });
  return out;
}

void ComputeService::delete_flavor(const Caller& c, const std::string& id) {
  c.authorize("os_compute_api:os-flavor-manage:delete", {{"project_id", c.project()}});
  db_->write([&](soci::session& s) {
    if (!db::get(s, st::flavor, id)) throw NotFound("Flavor " + id + " could not be found.");
    db::remove(s, st::flavor_extra_spec, db::Query{}.eq("flavor_id", id));
    db::remove(s, st::flavor_project, db::Query{}.eq("flavor_id", id));
    db::remove_id(s, st::flavor, id);
  });
}

json::object ComputeService::extra_specs(const Caller& c, const std::string& flavor_id) {
  c.authorize("os_compute_api:os-flavor-extra-specs:index", {{"project_id", c.project()}});
  return show_flavor(c, flavor_id).at("extra_specs").as_object();
}

json::object ComputeService::set_extra_specs(const Caller& c, const std::string& flavor_id,
                                             const json::object& specs) {
  c.authorize("os_compute_api:os-flavor-extra-specs:create", {{"project_id", c.project()}});
  for (auto& kv : specs) {
    std::string_view k = kv.key();
    if (k.empty() || k.size() > 255 || std::any_of(k.begin(), k.end(), [](char ch) {
          auto u = static_cast<unsigned char>(ch);
          return !(std::isalnum(u) || ch == '-' || ch == '_' || ch == ':' || ch == '.' ||
                   ch == ' ');
        }))
      throw BadRequest("Invalid input for field/attribute extra_specs. Key '" + std::string(k) +
                       "' is not valid.");
    auto& v = kv.value();
    if (!(v.is_string() || v.is_number() || v.is_bool()))
      throw BadRequest(invalid(
          k, v, json::serialize(v) + " is not of type 'string', 'integer', 'number', 'boolean'"));
    if (v.is_string() && v.as_string().size() > 255) throw BadRequest(invalid(k, v, "is too long"));
  }
  json::object out;
  db_->write([&](soci::session& s) {
    flavor_row(s, c, flavor_id);
    for (auto& kv : specs) {
      auto& v = kv.value();
      std::string value = v.is_string() ? std::string(v.as_string()) : json::serialize(v);
      std::string key(kv.key());
      db::remove(s, st::flavor_extra_spec, db::Query{}.eq("flavor_id", flavor_id).eq("key", key));
      db::insert(
          s, st::flavor_extra_spec,
          json::object{{"id", uuid4()}, {"flavor_id", flavor_id}, {"key", key}, {"value", value}});
      out[key] = value;
    }
  });
  return out;
}

void ComputeService::delete_extra_spec(const Caller& c, const std::string& flavor_id,
                                       const std::string& key) {
  c.authorize("os_compute_api:os-flavor-extra-specs:delete", {{"project_id", c.project()}});
  db_->write([&](soci::session& s) {
    flavor_row(s, c, flavor_id);
    if (db::remove(s, st::flavor_extra_spec,
                   db::Query{}.eq("flavor_id", flavor_id).eq("key", key)) == 0)
      throw NotFound("Flavor " + flavor_id + " has no extra specs with key " + key + ".");
  });
}

std::vector<std::string> ComputeService::flavor_access(const Caller& c,
                                                       const std::string& flavor_id) {
  c.authorize("os_compute_api:os-flavor-access", {{"project_id", c.project()}});
  std::vector<std::string> out;
  db_->read([&](soci::session& s) {
    auto f = flavor_row(s, c, flavor_id);
    if (f.at("is_public").as_bool())
      throw NotFound("Access list not available for public flavors.");
    for (auto& a : db::select(s, st::flavor_project, db::Query{}.eq("flavor_id", flavor_id)))
      out.push_back(std::string(a.at("project_id").as_string()));
  });
  return out;
}

std::vector<std::string> ComputeService::add_flavor_access(const Caller& c,
                                                           const std::string& flavor_id,
                                                           const std::string& project) {
  c.authorize("os_compute_api:os-flavor-access:add_tenant_access", {{"project_id", c.project()}});
  db_->write([&](soci::session& s) {
    auto f = flavor_row(s, c, flavor_id);
    if (f.at("is_public").as_bool()) throw Conflict("Can not add access to a public flavor.");
    if (db::count(s, st::flavor_project,
                  db::Query{}.eq("flavor_id", flavor_id).eq("project_id", project)) > 0)
      throw Conflict("Flavor access already exists for flavor " + flavor_id + " and project " +
                     project + " combination.");
    db::insert(s, st::flavor_project,
               json::object{{"id", uuid4()}, {"flavor_id", flavor_id}, {"project_id", project}});
  });
  return flavor_access(c, flavor_id);
}

std::vector<std::string> ComputeService::remove_flavor_access(const Caller& c,
                                                              const std::string& flavor_id,
                                                              const std::string& project) {
  c.authorize("os_compute_api:os-flavor-access:remove_tenant_access",
              {{"project_id", c.project()}});
  db_->write([&](soci::session& s) {
    flavor_row(s, c, flavor_id);
    if (db::remove(s, st::flavor_project,
                   db::Query{}.eq("flavor_id", flavor_id).eq("project_id", project)) == 0)
      throw NotFound("Flavor access not found for " + flavor_id + " / " + project +
                     " combination.");
  });
  return flavor_access(c, flavor_id);
}

json::object ComputeService::create_keypair(const Caller& c, const KeypairRequest& r,
                                            bool extended_names) {
  std::string user = r.user_id.empty() ? c.user() : r.user_id;
  c.authorize("os_compute_api:os-keypairs:create", {{"user_id", user}});
  auto bad_name = [&] {
    return BadRequest("Keypair data is invalid: Keypair name contains unsafe characters");
  };
  if (r.name.empty() || r.name.size() > 255)
    throw BadRequest(
        "Keypair data is invalid: Keypair name must be string and between 1 and 255 characters "
        "long");
  for (char ch : r.name) {
    auto u = static_cast<unsigned char>(ch);
    if (!(std::isalnum(u) || ch == '_' || ch == '-' || ch == ' ' ||
          (extended_names && (ch == '@' || ch == '.'))))
      throw bad_name();
  }
  if (r.name.find_first_not_of(' ') == std::string::npos) throw bad_name();
  if (r.type != "ssh" && r.type != "x509")
    throw BadRequest("Invalid input for field/attribute type.");
  json::object row{{"id", uuid4()},
                   {"name", r.name},
                   {"user_id", user},
                   {"type", r.type},
                   {"created_at", now()}};
  std::optional<std::string> private_key;
  if (r.public_key) {
    auto fp = r.type == "x509" ? x509_fingerprint(*r.public_key) : ssh_fingerprint(*r.public_key);
    if (!fp) throw BadRequest("Keypair data is invalid: failed to generate fingerprint");
    row["public_key"] = *r.public_key;
    row["fingerprint"] = *fp;
  } else {
    auto key = r.type == "x509" ? generate_x509_key(r.name) : generate_ssh_key();
    row["public_key"] = key.public_key;
    row["fingerprint"] = key.fingerprint;
    private_key = key.private_key;
  }
  db_->write([&](soci::session& s) {
    // The user's key_pairs quota, within the caller's project (keypairs belong to users).
    auto q = effective_quotas(s, c.project(), user).at("key_pairs");
    if (q.limit >= 0 && q.in_use + 1 > q.limit)
      throw Forbidden("Quota exceeded, too many key pairs.");
    if (db::count(s, st::keypair, db::Query{}.eq("user_id", user).eq("name", r.name)) > 0)
      throw Conflict("Key pair '" + r.name + "' already exists.");
    row["number"] = st::next_number(s, st::keypair);
    db::insert(s, st::keypair, row);
  });
  if (private_key) row["private_key"] = *private_key;
  return row;
}

std::vector<json::object> ComputeService::list_keypairs(const Caller& c, const std::string& user_id,
                                                        const std::string& marker,
                                                        std::optional<long> limit) {
  std::string user = user_id.empty() ? c.user() : user_id;
  c.authorize("os_compute_api:os-keypairs:index", {{"user_id", user}});
  std::vector<json::object> out;
  db_->read([&](soci::session& s) {
    db::Query q;
    q.eq("user_id", user);
    q.order_by = "name";
    out = db::select(s, st::keypair, q);
  });
  if (!marker.empty()) {
    auto it = std::find_if(out.begin(), out.end(), [&](const json::object& k) {
      return k.at("name").as_string() == marker;
    });
    if (it == out.end()) throw BadRequest("marker [" + marker + "] not found");
    out.erase(out.begin(), it + 1);
  }
  if (limit && static_cast<long>(out.size()) > *limit) out.resize(static_cast<size_t>(*limit));
  return out;
}

json::object ComputeService::show_keypair(const Caller& c, const std::string& user_id,
                                          const std::string& name) {
  std::string user = user_id.empty() ? c.user() : user_id;
  c.authorize("os_compute_api:os-keypairs:show", {{"user_id", user}});
  std::vector<json::object> rows;
  db_->read([&](soci::session& s) {
    rows = db::select(s, st::keypair, db::Query{}.eq("user_id", user).eq("name", name));
  });
  if (rows.empty()) throw NotFound("Keypair " + name + " not found for user " + user);
  return rows.front();
}

void ComputeService::delete_keypair(const Caller& c, const std::string& user_id,
                                    const std::string& name) {
  std::string user = user_id.empty() ? c.user() : user_id;
  c.authorize("os_compute_api:os-keypairs:delete", {{"user_id", user}});
  long n = 0;
  db_->write([&](soci::session& s) {
    n = db::remove(s, st::keypair, db::Query{}.eq("user_id", user).eq("name", name));
  });
  if (n == 0) throw NotFound("Keypair " + name + " not found for user " + user);
}

}  // namespace nubo::compute
