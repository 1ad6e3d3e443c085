// The image API over real HTTP: identity and image run in-process on port 0 each, with a
// temporary state directory (SQLite, or PostgreSQL when NUBO_TEST_DATABASE names one); tokens are
// validated in-process by the identity service, as in the all-in-one.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <soci/soci.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "tests/api/support/api_client.hpp"
#include "common/config.hpp"
#include "common/db/table.hpp"
#include "common/http/client.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"
#include "image/api/common.hpp"
#include "image/api/service.hpp"
#include "image/setup.hpp"

using namespace nubo;
namespace fs = std::filesystem;

namespace {

const char* kPassword = "s3cret-Passw0rd";
const char* kPatch20 = "application/openstack-images-v2.0-json-patch";
const char* kPatch21 = "application/openstack-images-v2.1-json-patch";

using apitest::Reply;

std::string digest(const char* algorithm, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_get_digestbyname(algorithm), nullptr);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(out), n));
}

std::string noise(size_t n, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A QCOW2 v3 header: 1 GiB virtual size, optionally naming a backing file.
std::string qcow2(bool backing) {
  std::string h(512, '\0');
  auto put = [&](size_t off, std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v >>= 8)
      h[off + static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  };
  h.replace(0, 4, std::string("QFI\xfb", 4));
  put(4, 3, 4);
  if (backing) {
    put(8, 200, 8);
    put(16, 11, 4);
    h.replace(200, 11, "/etc/passwd");
  }
  put(20, 16, 4);
  put(24, 1ull << 30, 8);
  put(100, 104, 4);
  return h;
}

class Cloud {
 public:
  Cloud() {
    static bool logging = (setup_logging("warn"), true);
    (void)logging;
    dir_ = fs::temp_directory_path() / ("nubo-image-api-" + uuid4_hex());
    fs::create_directories(dir_);
    config_ = Config::parse("[identity]\npassword_hash_rounds = 4\n");
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url) {
      auto db = db::Database::open(url, 1);
      db->write([](soci::session& s) {
        s << "DROP SCHEMA public CASCADE";
        s << "CREATE SCHEMA public";
      });
      config_.set("database", "identity_connection", url);
      config_.set("database", "image_connection", url);
    }
    identity_ = identity::open_identity_service(config_, dir_.string());
    images_ = image::open_image_service(config_, dir_.string());
    runtime_ = std::make_unique<Runtime>(1, 4);
    identity_pipeline_ = std::make_shared<Pipeline>(identity::api::make_service_spec(identity_));
    image_pipeline_ = std::make_shared<Pipeline>(image::api::make_service_spec(images_, identity_));
    auto id_port = listen(identity_pipeline_, render_keystone_error);
    auto image_port = listen(image_pipeline_, image::api::render_glance_error);
    identity_url_ = "http://127.0.0.1:" + std::to_string(id_port);
    url_ = "http://127.0.0.1:" + std::to_string(image_port);
    identity::BootstrapOptions boot;
    boot.admin_password = kPassword;
    boot.catalog.push_back({"identity", "keystone", identity_url_ + "/v3"});
    boot.catalog.push_back({"image", "glance", url_, image::default_registered_limits()});
    identity::bootstrap(*identity_, boot);
    images_->set_limit_source(identity_);
    runtime_->start();
    admin_ = token("admin", kPassword, "admin");
  }
  ~Cloud() {
    runtime_->stop(std::chrono::seconds(2));
    fs::remove_all(dir_);
  }

  uint16_t listen(std::shared_ptr<Pipeline> p, ErrorRenderer render) {
    ServerOptions opts;
    opts.render_error = [render](int status, const std::string& m) { return render(ApiError(status, m)); };
    return listen_pipeline(*runtime_, opts, std::move(p));
  }

  Reply request(const std::string& base, const std::string& method, const std::string& path,
                const std::string& token, const std::string& body, const std::string& content_type,
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    return client_.request(base + path, method, token, body, content_type, std::move(headers));
  }
  // Image API with a JSON body (or none).
  Reply call(const std::string& method, const std::string& path, const std::string& token = {},
             const json::value& body = nullptr) {
    return request(url_, method, path, token,
                   body.is_null() ? std::string() : json::serialize(body),
                   body.is_null() ? std::string() : "application/json");
  }
  Reply patch(const std::string& id, const std::string& token, const json::array& ops,
              const char* type = kPatch20) {
    return request(url_, "PATCH", "/v2/images/" + id, token, json::serialize(ops), type);
  }
  Reply get(const std::string& path, const std::string& token,
            std::vector<std::pair<std::string, std::string>> headers) {
    return request(url_, "GET", path, token, "", "", std::move(headers));
  }
  Reply upload(const std::string& id, const std::string& token, const std::string& data,
               const std::string& what = "file",
               const std::string& type = "application/octet-stream") {
    return request(url_, "PUT", "/v2/images/" + id + "/" + what, token, data, type);
  }
  Reply identity(const std::string& method, const std::string& path, const std::string& token,
                 const json::object& body = {}) {
    return request(identity_url_, method, path, token,
                   body.empty() ? std::string() : json::serialize(body),
                   body.empty() ? std::string() : "application/json");
  }

  std::string token(const std::string& user, const std::string& password,
                    const std::string& project) {
    auto r = identity("POST", "/v3/auth/tokens", "", apitest::password_auth(user, password, project));
    EXPECT_EQ(r.status, 201) << r.raw;
    auto t = r.headers.get("X-Subject-Token");
    return t ? std::string(*t) : std::string();
  }

  struct User {
    std::string project_id, token;
  };
  // A fresh project with a user holding the member role in it.
  User member_user(const std::string& name) {
    auto p = identity("POST", "/v3/projects", admin_,
                      json::object{{"project", json::object{{"name", name}}}});
    EXPECT_EQ(p.status, 201) << p.raw;
    std::string project(p.body.at("project").as_object().at("id").as_string());
    auto u = identity(
        "POST", "/v3/users", admin_,
        json::object{{"user", json::object{{"name", name + "-user"}, {"password", kPassword}}}});
    EXPECT_EQ(u.status, 201) << u.raw;
    std::string user(u.body.at("user").as_object().at("id").as_string());
    auto roles = identity("GET", "/v3/roles?name=member", admin_);
    std::string member(roles.body.at("roles").as_array()[0].as_object().at("id").as_string());
    EXPECT_EQ(
        identity("PUT", "/v3/projects/" + project + "/users/" + user + "/roles/" + member, admin_)
            .status,
        204);
    return {project, token(name + "-user", kPassword, name)};
  }

  json::object create(const std::string& token, json::object body) {
    auto r = call("POST", "/v2/images", token, body);
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body;
  }

  // Sets (or changes) a project's unified limit for one image resource.
  void set_limit(const std::string& project, const std::string& resource, int value) {
    auto existing = identity("GET", "/v3/limits?project_id=" + project + "&resource_name=" + resource, admin_);
    auto& list = existing.body.at("limits").as_array();
    if (!list.empty()) {
      std::string id(list[0].as_object().at("id").as_string());
      auto r = identity("PATCH", "/v3/limits/" + id, admin_,
                        json::object{{"limit", json::object{{"resource_limit", value}}}});
      EXPECT_EQ(r.status, 200) << r.raw;
      return;
    }
    auto services = identity("GET", "/v3/services?type=image", admin_);
    std::string service(services.body.at("services").as_array()[0].as_object().at("id").as_string());
    auto r = identity("POST", "/v3/limits", admin_,
                      json::object{{"limits", json::array{json::object{{"service_id", service},
                                                                       {"project_id", project},
                                                                       {"region_id", "RegionOne"},
                                                                       {"resource_name", resource},
                                                                       {"resource_limit", value}}}}});
    EXPECT_EQ(r.status, 201) << r.raw;
  }

  const std::string& admin() const { return admin_; }
  const fs::path& dir() const { return dir_; }
  image::ImageService& images() { return *images_; }
  const Config& config() const { return config_; }

 private:
  fs::path dir_;
  Config config_;
  std::shared_ptr<identity::IdentityService> identity_;
  std::shared_ptr<image::ImageService> images_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Pipeline> identity_pipeline_, image_pipeline_;
  std::string identity_url_, url_, admin_;
  apitest::ApiClient client_;
};

std::string id_of(const json::object& image) { return std::string(image.at("id").as_string()); }

void expect_glance_error(const Reply& r, int status) {
  EXPECT_EQ(r.status, status) << r.raw;
  EXPECT_EQ(r.headers.get_or("Content-Type"), "text/html; charset=UTF-8");
  EXPECT_NE(r.raw.find("<h1>" + std::to_string(status) + " "), std::string::npos) << r.raw;
  EXPECT_FALSE(r.headers.get("Retry-After"));
}

std::set<std::string> ids(const Reply& list) {
  std::set<std::string> out;
  for (auto& i : list.body.at("images").as_array()) out.insert(id_of(i.as_object()));
  return out;
}

}  // namespace

TEST(ImageApi, DiscoverySchemasInfo) {
  Cloud c;
  auto root = c.call("GET", "/");
  EXPECT_EQ(root.status, 300) << root.raw;
  auto& versions = root.body.at("versions").as_array();
  bool current = false;
  for (auto& v : versions) {
    auto& o = v.as_object();
    EXPECT_TRUE(o.contains("id") && o.contains("links") && o.contains("status"));
    current |= o.at("id") == "v2.17" && o.at("status") == "CURRENT";
  }
  EXPECT_TRUE(current);
  EXPECT_EQ(c.call("GET", "/versions").status, 200);
  expect_glance_error(c.call("GET", "/v2/schemas/image"), 401);
  for (auto [path, name] : {std::pair{"image", "image"},
                            {"images", "images"},
                            {"member", "member"},
                            {"members", "members"},
                            {"metadefs/resource_type", "resource_type_association"},
                            {"metadefs/namespaces", "namespaces"}}) {
    auto r = c.call("GET", std::string("/v2/schemas/") + path, c.admin());
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body.at("name").as_string(), name);
  }
  auto methods = c.call("GET", "/v2/info/import", c.admin());
  EXPECT_EQ(methods.body.at("import-methods").as_object().at("value").as_array()[0],
            "glance-direct");
  auto stores = c.call("GET", "/v2/info/stores", c.admin());
  EXPECT_EQ(stores.body.at("stores").as_array()[0].as_object().at("id"), "file");
  EXPECT_EQ(stores.body.at("stores").as_array()[0].as_object().at("default"), "true");
}

TEST(ImageApi, CreateShowDelete) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto image = c.create(alice.token, json::object{{"name", "cirros"},
                                                  {"container_format", "bare"},
                                                  {"disk_format", "qcow2"},
                                                  {"tags", json::array{"a", "b", "a"}},
                                                  {"ramdisk_id", "abc"},
                                                  {"protected", true}});
  auto id = id_of(image);
  EXPECT_EQ(image.at("status"), "queued");
  EXPECT_EQ(image.at("visibility"), "shared");
  EXPECT_EQ(image.at("owner").as_string(), alice.project_id);
  EXPECT_EQ(image.at("ramdisk_id"), "abc");
  EXPECT_EQ(image.at("tags").as_array().size(), 2u);
  for (const char* k : {"size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"})
    EXPECT_TRUE(image.at(k).is_null()) << k;
  EXPECT_EQ(image.at("min_disk"), 0);
  EXPECT_EQ(image.at("os_hidden"), false);
  EXPECT_EQ(image.at("self").as_string(), "/v2/images/" + id);
  EXPECT_EQ(image.at("file").as_string(), "/v2/images/" + id + "/file");
  EXPECT_EQ(image.at("schema"), "/v2/schemas/image");
  EXPECT_EQ(image.at("created_at").as_string().size(), 20u);  // 2025-01-02T03:04:05Z
  EXPECT_FALSE(image.contains("location"));

  auto shown = c.call("GET", "/v2/images/" + id, alice.token);
  EXPECT_EQ(shown.status, 200);
  EXPECT_EQ(shown.body, image);
  expect_glance_error(c.call("GET", "/v2/images/" + uuid4(), alice.token), 404);
  expect_glance_error(c.call("GET", "/v2/images/", alice.token), 404);
  expect_glance_error(c.call("DELETE", "/v2/images/", alice.token), 404);

  // Schema and reserved names.
  expect_glance_error(
      c.call("POST", "/v2/images", alice.token, json::object{{"container_format", "wrong"}}), 400);
  expect_glance_error(
      c.call("POST", "/v2/images", alice.token, json::object{{"disk_format", "wrong"}}), 400);
  expect_glance_error(
      c.call("POST", "/v2/images", alice.token, json::object{{"os_glance_foo", "x"}}), 403);
  expect_glance_error(c.call("POST", "/v2/images", alice.token, json::object{{"status", "active"}}),
                      403);
  expect_glance_error(c.call("POST", "/v2/images", alice.token, json::object{{"self", "x"}}), 403);
  expect_glance_error(c.call("POST", "/v2/images", alice.token, json::object{{"speed", 3}}), 400);
  expect_glance_error(
      c.call("POST", "/v2/images", alice.token, json::object{{"visibility", "public"}}), 403);
  expect_glance_error(
      c.call("POST", "/v2/images", alice.token, json::object{{"owner", "someone-else"}}), 403);
  expect_glance_error(c.call("POST", "/v2/images", alice.token, json::object{{"id", id}}), 409);
  expect_glance_error(c.call("POST", "/v2/images", alice.token, json::object{{"min_ram", -1}}),
                      400);

  // An admin may create for another project.
  auto owned = c.create(c.admin(), json::object{{"name", "x"}, {"owner", alice.project_id}});
  EXPECT_EQ(owned.at("owner").as_string(), alice.project_id);
  EXPECT_EQ(c.call("GET", "/v2/images/" + id_of(owned), alice.token).status, 200);

  expect_glance_error(c.call("DELETE", "/v2/images/" + id, alice.token), 403);  // protected
  EXPECT_EQ(c.patch(id, alice.token,
                    json::array{json::object{{"replace", "/protected"}, {"value", false}}})
                .status,
            200);
  EXPECT_EQ(c.call("DELETE", "/v2/images/" + id, alice.token).status, 204);
  expect_glance_error(c.call("GET", "/v2/images/" + id, alice.token), 404);
  expect_glance_error(c.call("DELETE", "/v2/images/" + id, alice.token), 404);
}

TEST(ImageApi, PatchBothDialects) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(
      alice.token,
      json::object{{"name", "old"}, {"disk_format", "raw"}, {"container_format", "bare"}}));
  auto r = c.patch(id, alice.token,
                   json::array{json::object{{"replace", "/name"}, {"value", "new"}},
                               json::object{{"add", "/os_distro"}, {"value", "debian"}},
                               json::object{{"add", "/hw_cpu_cores"}, {"value", "2"}}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.at("name"), "new");
  EXPECT_EQ(r.body.at("os_distro"), "debian");
  // v2.0: adding what exists conflicts; v2.1: add sets it.
  expect_glance_error(
      c.patch(id, alice.token, json::array{json::object{{"add", "/os_distro"}, {"value", "x"}}}),
      409);
  r = c.patch(
      id, alice.token,
      json::array{json::object{{"op", "add"}, {"path", "/os_distro"}, {"value", "rhel"}},
                  json::object{{"op", "remove"}, {"path", "/hw_cpu_cores"}},
                  json::object{{"op", "replace"}, {"path", "/tags"}, {"value", json::array{"t1"}}},
                  json::object{{"op", "replace"}, {"path", "/min_ram"}, {"value", 512}}},
      kPatch21);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.at("os_distro"), "rhel");
  EXPECT_FALSE(r.body.contains("hw_cpu_cores"));
  EXPECT_EQ(r.body.at("tags").as_array().size(), 1u);
  EXPECT_EQ(r.body.at("min_ram"), 512);

  expect_glance_error(
      c.patch(id, alice.token, json::array{json::object{{"replace", "/missing"}, {"value", "x"}}}),
      409);
  expect_glance_error(c.patch(id, alice.token, json::array{json::object{{"remove", "/missing"}}}),
                      409);
  expect_glance_error(c.patch(id, alice.token, json::array{json::object{{"remove", "/name"}}}),
                      403);
  expect_glance_error(
      c.patch(id, alice.token,
              json::array{json::object{{"replace", "/status"}, {"value", "active"}}}),
      403);
  expect_glance_error(c.patch(id, alice.token,
                              json::array{json::object{{"add", "/os_glance_foo"}, {"value", "x"}}}),
                      403);
  expect_glance_error(
      c.patch(id, alice.token, json::array{json::object{{"replace", "/owner"}, {"value", "x"}}}),
      403);
  expect_glance_error(
      c.patch(id, alice.token,
              json::array{json::object{{"replace", "/disk_format"}, {"value", "x"}}}),
      400);
  expect_glance_error(
      c.patch(id, alice.token, json::array{json::object{{"add", "/speed"}, {"value", 1}}}), 400);
  expect_glance_error(
      c.patch(id, alice.token, json::array{json::object{{"replace", "/name/x"}, {"value", "y"}}}),
      400);
  expect_glance_error(c.patch(id, alice.token, json::array{json::object{{"bogus", "/name"}}}), 400);
  auto bad_type = c.patch(id, alice.token, json::array{}, "application/json");
  expect_glance_error(bad_type, 415);
  EXPECT_NE(bad_type.headers.get_or("Accept-Patch").find(kPatch21), std::string::npos);

  auto r2 = c.patch(id, c.admin(),
                    json::array{json::object{{"replace", "/owner"}, {"value", "other-project"}}});
  ASSERT_EQ(r2.status, 200) << r2.raw;
  EXPECT_EQ(r2.body.at("owner"), "other-project");
  expect_glance_error(c.call("GET", "/v2/images/" + id, alice.token), 404);  // no longer hers
}

TEST(ImageApi, ListFiltersSortAndPages) {
  Cloud c;
  auto alice = c.member_user("alice");
  std::vector<std::string> made;
  const char* disks[] = {"raw", "vmdk", "vhd", "raw", "iso"};
  for (int i = 0; i < 5; ++i) {
    auto img = c.create(alice.token, json::object{{"name", "img-" + std::to_string(i)},
                                                  {"disk_format", disks[i]},
                                                  {"container_format", i % 2 ? "ami" : "bare"},
                                                  {"visibility", i == 4 ? "private" : "shared"},
                                                  {"tags", json::array{i < 2 ? "low" : "high"}},
                                                  {"speed", i == 3 ? "fast" : "slow"}});
    made.push_back(id_of(img));
    if (i < 4) {
      auto data = noise(1000 * static_cast<size_t>(i + 1), static_cast<unsigned>(i));
      auto up = c.upload(made.back(), alice.token, data);
      EXPECT_EQ(up.status, 204) << up.raw;
    }
  }
  auto list = [&](const std::string& q) {
    auto r = c.call("GET", "/v2/images" + q, alice.token);
    EXPECT_EQ(r.status, 200) << q << " " << r.raw;
    return r;
  };
  EXPECT_EQ(ids(list("")).size(), 5u);
  EXPECT_EQ(ids(list("?name=img-2")), std::set<std::string>{made[2]});
  EXPECT_EQ(ids(list("?disk_format=raw")), (std::set<std::string>{made[0], made[3]}));
  EXPECT_EQ(ids(list("?container_format=ami")), (std::set<std::string>{made[1], made[3]}));
  EXPECT_EQ(ids(list("?visibility=private")), std::set<std::string>{made[4]});
  EXPECT_EQ(ids(list("?status=queued")), std::set<std::string>{made[4]});
  EXPECT_EQ(ids(list("?size=2000")), std::set<std::string>{made[1]});
  EXPECT_EQ(ids(list("?size_min=2000&size_max=3000")), (std::set<std::string>{made[1], made[2]}));
  EXPECT_EQ(ids(list("?tag=low")), (std::set<std::string>{made[0], made[1]}));
  EXPECT_EQ(ids(list("?speed=fast")), std::set<std::string>{made[3]});
  EXPECT_EQ(ids(list("?owner=" + alice.project_id)).size(), 5u);
  EXPECT_EQ(ids(list("?name=in:img-1,img-3")), (std::set<std::string>{made[1], made[3]}));
  EXPECT_EQ(ids(list("?created_at=gte:2000-01-01T00:00:00Z")).size(), 5u);
  EXPECT_TRUE(ids(list("?created_at=lt:2000-01-01T00:00:00Z")).empty());
  EXPECT_EQ(list("?limit=1").body.at("images").as_array().size(), 1u);

  for (const char* q : {"?sort=size:desc", "?sort_key=size&sort_dir=desc"}) {
    std::vector<std::int64_t> sizes;
    auto sorted = list(q);
    for (auto& i : sorted.body.at("images").as_array())
      if (i.as_object().at("size").is_int64()) sizes.push_back(i.as_object().at("size").as_int64());
    EXPECT_EQ(sizes, (std::vector<std::int64_t>{4000, 3000, 2000, 1000})) << q;
  }
  auto by_name = list("?sort=name:asc");
  EXPECT_EQ(id_of(by_name.body.at("images").as_array()[0].as_object()), made[0]);

  // Pages: follow `next` until it disappears; every image exactly once, in order.
  for (const char* sort : {"", "&sort=size:asc", "&sort=name:desc,size:asc"}) {
    std::vector<std::string> seen;
    std::string next = std::string("/v2/images?limit=2") + sort;
    for (int guard = 0; guard < 10 && !next.empty(); ++guard) {
      auto page = c.call("GET", next, alice.token);
      ASSERT_EQ(page.status, 200) << page.raw;
      EXPECT_NE(page.body.at("first").as_string().find("limit=2"), std::string::npos);
      for (auto& i : page.body.at("images").as_array()) seen.push_back(id_of(i.as_object()));
      next = page.body.contains("next") ? std::string(page.body.at("next").as_string())
                                        : std::string();
    }
    EXPECT_EQ(seen.size(), 5u) << sort;
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u) << sort;
  }

  for (const char* q :
       {"?sort_key=bogus", "?sort=size:sideways", "?limit=-1", "?limit=x", "?marker=nope",
        "?member_status=maybe", "?visibility=everyone", "?sort=size&sort_key=name",
        "?created_at=gt:yesterday", "?name=foo:bar", "?size_min=big", "?os_hidden=maybe"})
    expect_glance_error(c.call("GET", std::string("/v2/images") + q, alice.token), 400);

  // Hidden images leave the default list.
  EXPECT_EQ(c.patch(made[0], alice.token,
                    json::array{json::object{{"replace", "/os_hidden"}, {"value", true}}})
                .status,
            200);
  EXPECT_EQ(ids(list("")).count(made[0]), 0u);
  EXPECT_EQ(ids(list("?os_hidden=true")), std::set<std::string>{made[0]});
}

TEST(ImageApi, MembersAndVisibility) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto bob = c.member_user("bob");
  auto id = id_of(c.create(alice.token, json::object{{"name", "shared-one"}}));
  expect_glance_error(c.call("GET", "/v2/images/" + id, bob.token), 404);

  auto m = c.call("POST", "/v2/images/" + id + "/members", alice.token,
                  json::object{{"member", bob.project_id}});
  ASSERT_EQ(m.status, 200) << m.raw;
  EXPECT_EQ(m.body.at("status"), "pending");
  EXPECT_EQ(m.body.at("member_id").as_string(), bob.project_id);
  EXPECT_EQ(m.body.at("image_id").as_string(), id);
  EXPECT_EQ(m.body.at("schema"), "/v2/schemas/member");
  expect_glance_error(c.call("POST", "/v2/images/" + id + "/members", alice.token,
                             json::object{{"member", bob.project_id}}),
                      409);

  // Pending: visible by id, listed only when asked for.
  EXPECT_EQ(c.call("GET", "/v2/images/" + id, bob.token).status, 200);
  EXPECT_EQ(ids(c.call("GET", "/v2/images", bob.token)).count(id), 0u);
  EXPECT_EQ(ids(c.call("GET", "/v2/images?visibility=shared&member_status=pending", bob.token)),
            std::set<std::string>{id});

  auto member_path = "/v2/images/" + id + "/members/" + bob.project_id;
  expect_glance_error(c.call("PUT", member_path, alice.token, json::object{{"status", "accepted"}}),
                      403);
  expect_glance_error(
      c.call("PUT", member_path, bob.token, json::object{{"status", "notavalidstatus"}}), 400);
  auto accepted = c.call("PUT", member_path, bob.token, json::object{{"status", "accepted"}});
  ASSERT_EQ(accepted.status, 200) << accepted.raw;
  EXPECT_EQ(accepted.body.at("status"), "accepted");
  EXPECT_EQ(ids(c.call("GET", "/v2/images", bob.token)).count(id), 1u);
  EXPECT_EQ(c.call("GET", member_path, bob.token).body.at("status"), "accepted");
  auto members = c.call("GET", "/v2/images/" + id + "/members", alice.token);
  ASSERT_EQ(members.body.at("members").as_array().size(), 1u);
  EXPECT_EQ(members.body.at("schema"), "/v2/schemas/members");
  EXPECT_EQ(c.call("GET", "/v2/images/" + id + "/members", bob.token)
                .body.at("members")
                .as_array()
                .size(),
            1u);

  // A member may read but not change the image.
  expect_glance_error(
      c.patch(id, bob.token, json::array{json::object{{"replace", "/name"}, {"value", "x"}}}), 403);
  expect_glance_error(c.call("DELETE", "/v2/images/" + id, bob.token), 403);
  expect_glance_error(
      c.call("POST", "/v2/images/" + id + "/members", bob.token, json::object{{"member", "x"}}),
      403);

  EXPECT_EQ(c.call("PUT", member_path, bob.token, json::object{{"status", "rejected"}}).status,
            200);
  EXPECT_EQ(ids(c.call("GET", "/v2/images", bob.token)).count(id), 0u);
  EXPECT_EQ(c.call("DELETE", member_path, alice.token).status, 204);
  expect_glance_error(c.call("DELETE", member_path, alice.token), 404);
  expect_glance_error(c.call("GET", "/v2/images/" + id, bob.token), 404);

  // Only shared images have members.
  auto priv = id_of(c.create(alice.token, json::object{{"visibility", "private"}}));
  expect_glance_error(c.call("POST", "/v2/images/" + priv + "/members", alice.token,
                             json::object{{"member", bob.project_id}}),
                      403);

  // Public (made by an admin) is visible to all; community only when asked for.
  auto pub = id_of(c.create(c.admin(), json::object{{"name", "pub"}, {"visibility", "public"}}));
  auto community =
      id_of(c.create(alice.token, json::object{{"name", "com"}, {"visibility", "community"}}));
  auto bob_list = ids(c.call("GET", "/v2/images", bob.token));
  EXPECT_EQ(bob_list.count(pub), 1u);
  EXPECT_EQ(bob_list.count(community), 0u);
  EXPECT_EQ(bob_list.count(priv), 0u);
  EXPECT_EQ(ids(c.call("GET", "/v2/images?visibility=community", bob.token)),
            std::set<std::string>{community});
  EXPECT_EQ(ids(c.call("GET", "/v2/images", alice.token)).count(community),
            1u);  // its owner lists it
  EXPECT_EQ(c.call("GET", "/v2/images/" + community, bob.token).status, 200);
  expect_glance_error(c.call("GET", "/v2/images/" + priv, bob.token), 404);
  expect_glance_error(
      c.patch(pub, bob.token, json::array{json::object{{"replace", "/name"}, {"value", "x"}}}),
      403);
  expect_glance_error(
      c.patch(priv, alice.token,
              json::array{json::object{{"replace", "/visibility"}, {"value", "public"}}}),
      403);
}

TEST(ImageApi, Tags) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(alice.token, json::object{{"name", "tagged"}}));
  EXPECT_EQ(c.call("PUT", "/v2/images/" + id + "/tags/blue", alice.token).status, 204);
  EXPECT_EQ(c.call("PUT", "/v2/images/" + id + "/tags/blue", alice.token).status, 204);
  auto tags = c.call("GET", "/v2/images/" + id, alice.token).body.at("tags").as_array();
  EXPECT_EQ(tags, (json::array{"blue"}));
  EXPECT_EQ(c.call("DELETE", "/v2/images/" + id + "/tags/blue", alice.token).status, 204);
  EXPECT_TRUE(c.call("GET", "/v2/images/" + id, alice.token).body.at("tags").as_array().empty());
  expect_glance_error(c.call("DELETE", "/v2/images/" + id + "/tags/blue", alice.token), 404);
  expect_glance_error(c.call("PUT", "/v2/images/" + uuid4() + "/tags/blue", alice.token), 404);
}

TEST(ImageApi, SmallUploadDownloadDeactivate) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(
      alice.token,
      json::object{{"name", "small"}, {"disk_format", "ami"}, {"container_format", "ami"}}));
  auto empty = c.call("GET", "/v2/images/" + id + "/file", alice.token);
  EXPECT_EQ(empty.status, 204);
  EXPECT_TRUE(empty.raw.empty());

  auto data = noise(1024);
  expect_glance_error(c.upload(id, alice.token, data, "file", "application/json"), 415);
  auto up = c.upload(id, alice.token, data);
  ASSERT_EQ(up.status, 204) << up.raw;
  EXPECT_TRUE(up.raw.empty());
  auto image = c.call("GET", "/v2/images/" + id, alice.token).body;
  EXPECT_EQ(image.at("status"), "active");
  EXPECT_EQ(image.at("size"), 1024);
  EXPECT_EQ(image.at("virtual_size"), 1024);
  EXPECT_EQ(image.at("checksum").as_string(), digest("MD5", data));
  EXPECT_EQ(image.at("os_hash_algo"), "sha512");
  EXPECT_EQ(image.at("os_hash_value").as_string(), digest("SHA512", data));
  EXPECT_EQ(image.at("stores"), "file");
  expect_glance_error(c.upload(id, alice.token, data), 409);

  EXPECT_EQ(c.call("POST", "/v2/images/" + id + "/actions/deactivate", alice.token).status, 204);
  EXPECT_EQ(c.call("POST", "/v2/images/" + id + "/actions/deactivate", alice.token).status, 204);
  EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "deactivated");
  expect_glance_error(c.call("GET", "/v2/images/" + id + "/file", alice.token), 403);
  EXPECT_EQ(c.call("POST", "/v2/images/" + id + "/actions/reactivate", alice.token).status, 204);
  EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "active");
  auto queued = id_of(c.create(alice.token, json::object{{"name", "q"}}));
  expect_glance_error(c.call("POST", "/v2/images/" + queued + "/actions/deactivate", alice.token),
                      403);
}

// Needs the server's streamed responses (Response::stream) and, for sizes past the body limit,
// streamed request bodies.
TEST(ImageApi, UploadDownloadRoundTrip) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(
      alice.token,
      json::object{{"name", "big"}, {"disk_format", "raw"}, {"container_format", "bare"}}));
  auto data = noise(3 * 1024 * 1024 + 123);
  auto up = c.upload(id, alice.token, data);
  ASSERT_EQ(up.status, 204) << up.raw;
  auto image = c.call("GET", "/v2/images/" + id, alice.token).body;
  EXPECT_EQ(image.at("size").as_int64(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(image.at("os_hash_value").as_string(), digest("SHA512", data));

  auto got = c.call("GET", "/v2/images/" + id + "/file", alice.token);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.headers.get_or("Content-Type"), "application/octet-stream");
  EXPECT_EQ(got.headers.get_or("Content-MD5"), digest("MD5", data));
  EXPECT_EQ(got.raw.size(), data.size());
  EXPECT_EQ(digest("SHA512", got.raw), digest("SHA512", data));

  auto part = c.get("/v2/images/" + id + "/file", alice.token, {{"Range", "bytes=100-199"}});
  ASSERT_EQ(part.status, 206);
  EXPECT_EQ(part.raw, data.substr(100, 100));
  EXPECT_EQ(part.headers.get_or("Content-Range"), "bytes 100-199/" + std::to_string(data.size()));
  auto tail = c.get("/v2/images/" + id + "/file", alice.token, {{"Range", "bytes=-10"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.raw, data.substr(data.size() - 10));
  EXPECT_EQ(c.get("/v2/images/" + id + "/file", alice.token, {{"Range", "bytes=99999999-"}}).status,
            416);

  // Another project cannot read it; an accepted member can.
  auto bob = c.member_user("bob");
  expect_glance_error(c.call("GET", "/v2/images/" + id + "/file", bob.token), 404);
}

TEST(ImageApi, StageAndImport) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(
      alice.token,
      json::object{{"name", "staged"}, {"disk_format", "raw"}, {"container_format", "bare"}}));
  auto import =
      json::object{{"method", json::object{{"name", "glance-direct"}}}, {"all_stores", true}};
  expect_glance_error(c.call("POST", "/v2/images/" + id + "/import", alice.token, import),
                      409);  // nothing staged
  auto data = noise(5000);
  auto staged = c.upload(id, alice.token, data, "stage");
  ASSERT_EQ(staged.status, 204) << staged.raw;
  EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "uploading");
  expect_glance_error(c.call("POST", "/v2/images/" + id + "/import", alice.token,
                             json::object{{"method", json::object{{"name", "web-download"}}}}),
                      400);
  expect_glance_error(c.call("POST", "/v2/images/" + id + "/import", alice.token,
                             json::object{{"all_stores", true}}),
                      400);
  auto r = c.call("POST", "/v2/images/" + id + "/import", alice.token, import);
  ASSERT_EQ(r.status, 202) << r.raw;
  EXPECT_TRUE(r.raw.empty());
  auto image = c.call("GET", "/v2/images/" + id, alice.token).body;
  EXPECT_EQ(image.at("status"), "active");
  EXPECT_EQ(image.at("size"), 5000);
  EXPECT_EQ(image.at("os_hash_value").as_string(), digest("SHA512", data));
  EXPECT_EQ(image.at("os_glance_failed_import"), "");
  EXPECT_EQ(image.at("stores"), "file");
  EXPECT_FALSE(fs::exists(c.dir() / "staging" / id));
  expect_glance_error(c.call("POST", "/v2/images/" + id + "/import", alice.token, import), 409);
}

TEST(ImageApi, FormatInspection) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto make = [&](const char* disk) {
    return id_of(
        c.create(alice.token, json::object{{"disk_format", disk}, {"container_format", "bare"}}));
  };
  // A qcow2 naming a host file as its backing file is refused whatever it claims to be.
  for (const char* disk : {"qcow2", "raw"}) {
    auto id = make(disk);
    expect_glance_error(c.upload(id, alice.token, qcow2(true)), 400);
    EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "queued");
  }
  // Declared qcow2 but not one.
  expect_glance_error(c.upload(make("qcow2"), alice.token, noise(4096)), 400);
  // Random bytes declared as anything else are fine.
  for (const char* disk : {"vhd", "vmdk", "ami", "vdi"})
    EXPECT_EQ(c.upload(make(disk), alice.token, noise(2048)).status, 204);
  // A clean qcow2 gets its virtual size from the header.
  auto ok = make("qcow2");
  ASSERT_EQ(c.upload(ok, alice.token, qcow2(false)).status, 204);
  EXPECT_EQ(c.call("GET", "/v2/images/" + ok, alice.token).body.at("virtual_size").as_int64(),
            1ll << 30);
  // Nothing half-written remains in the store.
  for (auto& f : fs::directory_iterator(c.dir() / "images"))
    EXPECT_FALSE(f.path().string().ends_with(".part"));
  size_t files =
      std::distance(fs::directory_iterator(c.dir() / "images"), fs::directory_iterator{});
  EXPECT_EQ(files, 5u);
}

TEST(ImageApi, AbortedUploadAndRecovery) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto id = id_of(c.create(
      alice.token,
      json::object{{"name", "cut"}, {"disk_format", "raw"}, {"container_format", "bare"}}));
  AuthContext auth;
  auth.project_id = alice.project_id;
  auth.roles = {"member", "reader"};
  image::Caller caller{auth, [](const std::string&, const image::PolicyTarget&) { return true; }};
  {
    auto upload = c.images().begin_upload(caller, id, false);
    upload->write(noise(1000));
    EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "saving");
    EXPECT_TRUE(fs::exists(c.dir() / "images" / (id + ".part")));
    upload->abort();  // the client went away
  }
  EXPECT_EQ(c.call("GET", "/v2/images/" + id, alice.token).body.at("status"), "queued");
  EXPECT_FALSE(fs::exists(c.dir() / "images" / (id + ".part")));

  // A crash mid-upload: the image stays `saving` and a partial file remains; an orphan file too.
  auto upload = c.images().begin_upload(caller, id, false);
  upload->write(noise(1000));
  std::ofstream(c.dir() / "images" / uuid4()) << "orphan";
  auto reopened = image::open_image_service(c.config(), c.dir().string());  // what a restart does
  auto row = c.call("GET", "/v2/images/" + id, alice.token).body;
  EXPECT_EQ(row.at("status"), "queued");
  size_t files =
      std::distance(fs::directory_iterator(c.dir() / "images"), fs::directory_iterator{});
  EXPECT_EQ(files, 0u);
  upload.reset();  // its part file is already gone; abort() finds nothing left to undo

  // Deleted while uploading: the upload ends with 410 and leaves no data.
  auto id2 = id_of(c.create(alice.token, json::object{{"name", "gone"}}));
  auto u2 = c.images().begin_upload(caller, id2, false);
  u2->write("abc");
  EXPECT_EQ(c.call("DELETE", "/v2/images/" + id2, alice.token).status, 204);
  try {
    u2->finish();
    ADD_FAILURE() << "finish succeeded on a deleted image";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 410);
  }
  EXPECT_FALSE(fs::exists(c.dir() / "images" / id2));
}

// Glance's keystone quotas from unified limits: counts with delta 1, sizes in MiB with delta 0
// (so the upload that crosses the limit succeeds and the next one is refused), 413 when over.
TEST(ImageApi, UnifiedLimitQuotas) {
  Cloud c;
  auto alice = c.member_user("alice");
  auto bob = c.member_user("bob");
  auto raw = json::object{{"disk_format", "raw"}, {"container_format", "bare"}};
  // Registered by bootstrap with generous defaults.
  auto registered = c.identity("GET", "/v3/registered_limits", c.admin());
  std::set<std::string> names;
  for (auto& l : registered.body.at("registered_limits").as_array())
    names.insert(std::string(l.as_object().at("resource_name").as_string()));
  EXPECT_EQ(names, (std::set<std::string>{"image_count_total", "image_count_uploading",
                                          "image_size_total", "image_stage_total"}));

  c.set_limit(alice.project_id, "image_count_total", 2);
  auto first = id_of(c.create(alice.token, raw));
  auto second = id_of(c.create(alice.token, raw));
  auto over = c.call("POST", "/v2/images", alice.token, raw);
  expect_glance_error(over, 413);
  EXPECT_NE(over.raw.find("image_count_total is over limit of 2"), std::string::npos) << over.raw;
  EXPECT_EQ(c.call("POST", "/v2/images", bob.token, raw).status, 201);  // another project's quota
  EXPECT_EQ(c.call("DELETE", "/v2/images/" + second, alice.token).status, 204);
  second = id_of(c.create(alice.token, raw));
  c.set_limit(alice.project_id, "image_count_total", 10);

  c.set_limit(alice.project_id, "image_size_total", 1);
  auto mib = noise(1024 * 1024 + 10);
  ASSERT_EQ(c.upload(first, alice.token, mib).status, 204);
  ASSERT_EQ(c.upload(second, alice.token, mib).status, 204);  // usage 1 MiB is not over 1
  auto third = id_of(c.create(alice.token, raw));
  expect_glance_error(c.upload(third, alice.token, mib), 413);  // usage 2 MiB is
  EXPECT_EQ(c.call("GET", "/v2/images/" + third, alice.token).body.at("status"), "queued");
  c.set_limit(alice.project_id, "image_size_total", 100);

  c.set_limit(alice.project_id, "image_count_uploading", 1);
  ASSERT_EQ(c.upload(third, alice.token, "staged", "stage").status, 204);  // stays `uploading`
  auto fourth = id_of(c.create(alice.token, raw));
  expect_glance_error(c.upload(fourth, alice.token, "data"), 413);
  expect_glance_error(c.upload(fourth, alice.token, "data", "stage"), 413);
  c.set_limit(alice.project_id, "image_count_uploading", 2);
  EXPECT_EQ(c.upload(fourth, alice.token, "data").status, 204);

  c.set_limit(alice.project_id, "image_count_uploading", 10);
  c.set_limit(alice.project_id, "image_stage_total", 0);
  auto fifth = id_of(c.create(alice.token, raw));
  auto staged = c.upload(fifth, alice.token, mib, "stage");
  EXPECT_EQ(staged.status, 204) << staged.raw;  // 0 MiB staged until now
  auto sixth = id_of(c.create(alice.token, raw));
  auto staged_over = c.upload(sixth, alice.token, "x", "stage");
  expect_glance_error(staged_over, 413);
  EXPECT_NE(staged_over.raw.find("image_stage_total is over limit of 0"), std::string::npos) << staged_over.raw;
  // Importing moves the staged data into the store; only image_size_total applies.
  auto import = json::object{{"method", json::object{{"name", "glance-direct"}}}};
  EXPECT_EQ(c.call("POST", "/v2/images/" + fifth + "/import", alice.token, import).status, 202);
  EXPECT_EQ(c.call("GET", "/v2/images/" + fifth, alice.token).body.at("status"), "active");
}

TEST(ImageApi, MetadefNamespaceDefinitions) {
  Cloud c;
  const std::string ns = "/v2/metadefs/namespaces/OS::Test::Ns";
  auto types = c.call("GET", "/v2/metadefs/resource_types", c.admin());
  ASSERT_EQ(types.status, 200) << types.raw;
  ASSERT_FALSE(types.body.at("resource_types").as_array().empty());
  auto created = c.call(
      "POST", "/v2/metadefs/namespaces", c.admin(),
      json::object{{"namespace", "OS::Test::Ns"},
                   {"display_name", "Test"},
                   {"visibility", "public"},
                   {"protected", true},
                   {"resource_type_associations",
                    json::array{json::object{{"name", "OS::Glance::Image"}}}}});
  ASSERT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.body.at("protected"), true);
  EXPECT_EQ(created.body.at("self"), json::value(ns));
  expect_glance_error(c.call("POST", "/v2/metadefs/namespaces", c.admin(),
                             json::object{{"namespace", "OS::Test::Ns"}}),
                      409);

  // An object, a property, tags (bulk, then one by name) and a second association.
  auto obj = c.call("POST", ns + "/objects", c.admin(), json::object{{"name", "obj"}});
  ASSERT_EQ(obj.status, 201) << obj.raw;
  auto renamed = c.call("PUT", ns + "/objects/obj", c.admin(), json::object{{"name", "obj2"}});
  EXPECT_EQ(renamed.status, 200) << renamed.raw;
  EXPECT_EQ(renamed.body.at("name"), "obj2");
  EXPECT_EQ(c.call("GET", ns + "/objects/obj2", c.admin()).status, 200);
  expect_glance_error(c.call("GET", ns + "/objects/obj", c.admin()), 404);
  auto prop = c.call("POST", ns + "/properties", c.admin(),
                     json::object{{"name", "hypervisor"},
                                  {"title", "Hypervisor"},
                                  {"type", "string"},
                                  {"enum", json::array{"kvm", "qemu"}}});
  ASSERT_EQ(prop.status, 201) << prop.raw;
  EXPECT_EQ(prop.body.at("title"), "Hypervisor");
  auto props = c.call("GET", ns + "/properties", c.admin());
  EXPECT_EQ(props.body.at("properties").as_object().at("hypervisor").as_object().at("type"),
            "string");
  auto tags = c.call("POST", ns + "/tags", c.admin(),
                     json::object{{"tags", json::array{json::object{{"name", "a"}},
                                                       json::object{{"name", "b"}}}}});
  ASSERT_EQ(tags.status, 201) << tags.raw;
  EXPECT_EQ(c.call("POST", ns + "/tags/c", c.admin()).status, 201);
  EXPECT_EQ(c.call("GET", ns + "/tags", c.admin()).body.at("tags").as_array().size(), 3u);
  auto tag = c.call("PUT", ns + "/tags/c", c.admin(), json::object{{"name", "d"}});
  EXPECT_EQ(tag.body.at("name"), "d");
  EXPECT_EQ(c.call("DELETE", ns + "/tags/d", c.admin()).status, 204);
  EXPECT_EQ(c.call("GET", ns + "/tags", c.admin()).body.at("tags").as_array().size(), 2u);
  auto assoc = c.call("POST", ns + "/resource_types", c.admin(),
                      json::object{{"name", "OS::Nova::Flavor"}, {"prefix", "hw:"}});
  ASSERT_EQ(assoc.status, 201) << assoc.raw;
  EXPECT_EQ(c.call("GET", ns + "/resource_types", c.admin())
                .body.at("resource_type_associations")
                .as_array()
                .size(),
            2u);
  EXPECT_EQ(c.call("DELETE", ns + "/resource_types/OS::Nova::Flavor", c.admin()).status, 204);

  // Non-admins read public namespaces but may not change them; private ones are hidden.
  auto alice = c.member_user("alice");
  EXPECT_EQ(c.call("GET", ns, alice.token).status, 200);
  expect_glance_error(c.call("POST", ns + "/objects", alice.token, json::object{{"name", "x"}}),
                      403);

  // Protected namespaces cannot be deleted; once unprotected, deletion takes everything along.
  expect_glance_error(c.call("DELETE", ns, c.admin()), 403);
  auto updated = c.call("PUT", ns, c.admin(),
                        json::object{{"namespace", "OS::Test::Ns"},
                                     {"visibility", "private"},
                                     {"protected", false}});
  ASSERT_EQ(updated.status, 200) << updated.raw;
  EXPECT_EQ(updated.body.at("visibility"), "private");
  EXPECT_EQ(updated.body.at("protected"), false);
  expect_glance_error(c.call("GET", ns, alice.token), 404);
  EXPECT_EQ(c.call("DELETE", ns, c.admin()).status, 204);
  expect_glance_error(c.call("GET", ns, c.admin()), 404);
  long left = 0;
  c.images().database().read([&](soci::session& s) {
    for (auto* t : {"metadef_object", "metadef_property", "metadef_tag", "metadef_association"})
      left += std::stol(db::query_strings(s, std::string("SELECT COUNT(*) FROM ") + t, {})[0][0].value());
  });
  EXPECT_EQ(left, 0);
  // Recreating the namespace starts empty.
  ASSERT_EQ(c.call("POST", "/v2/metadefs/namespaces", c.admin(),
                   json::object{{"namespace", "OS::Test::Ns"}})
                .status,
            201);
  EXPECT_TRUE(c.call("GET", ns + "/objects", c.admin()).body.at("objects").as_array().empty());
}
