// Object storage over real HTTP: identity in-process, three storage servers on port 0 (one device
// each, three replicas), the Swift proxy in front. Swift's semantics: containers and objects,
// listings in three formats, metadata, conditional and range reads, keystoneauth and ACLs, and
// writes at a quorum when a storage server is down.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <filesystem>

#include "object/proxy/proxy.hpp"
#include "object/ring/ring.hpp"
#include "object/server/storage_server.hpp"
#include "object/swift_http.hpp"
#include "tests/api/support/identity_cloud.hpp"
#include "tests/api/support/served_pipeline.hpp"

using namespace nubo;
using apitest::Reply;
namespace fs = std::filesystem;

namespace {

std::string md5_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_md5(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

class Cloud : public apitest::IdentityCloud {
 public:
  static constexpr int kServers = 3;
  Cloud() {
    dir_ = fs::temp_directory_path() / ("nubo-object-api-" + uuid4_hex());
    std::vector<object::Device> devices;
    for (int i = 0; i < kServers; ++i) {
      object::StorageSettings s;
      s.devices = (dir_ / ("server" + std::to_string(i))).string();
      s.hash_suffix = "test-suffix";
      s.update_timeout = std::chrono::milliseconds(2000);
      fs::create_directories(s.devices + "/d" + std::to_string(i));
      servers_.push_back(std::make_unique<apitest::ServedPipeline>(
          object::make_storage_spec(object::make_storage_server(s)),
          [](int status, const std::string& m) {
            return object::render_swift_error(ApiError(status, m));
          }));
      object::Device d;
      d.id = i;
      d.zone = i + 1;
      d.ip = "127.0.0.1";
      d.port = std::stoi(servers_.back()->url().substr(servers_.back()->url().rfind(':') + 1));
      d.device = "d" + std::to_string(i);
      d.weight = 100;
      devices.push_back(d);
    }
    auto rings = dir_ / "rings";
    fs::create_directories(rings);
    std::vector<std::vector<std::uint16_t>> table(3, std::vector<std::uint16_t>(64));
    for (int r = 0; r < 3; ++r)
      for (int p = 0; p < 64; ++p) table[r][p] = static_cast<std::uint16_t>((p + r) % kServers);
    for (auto* kind : {"account", "container", "object"})
      object::Ring(6, devices, table).save((rings / (std::string(kind) + ".ring.json")).string());
    object::ProxySettings ps;
    ps.rings = rings.string();
    ps.hash_suffix = "test-suffix";
    ps.node_timeout = std::chrono::milliseconds(3000);
    proxy_ = std::make_unique<apitest::ServedPipeline>(
        object::make_proxy_spec(object::make_proxy(ps), service_ptr()),
        [](int status, const std::string& m) {
          return object::render_swift_error(ApiError(status, m));
        });
    admin_ = token();
    auto scoped =
        IdentityCloud::call("GET", "/v3/auth/tokens", admin_, "", {{"X-Subject-Token", admin_}});
    account_ =
        "AUTH_" +
        std::string(
            scoped.body.at("token").as_object().at("project").as_object().at("id").as_string());
  }
  ~Cloud() {
    proxy_.reset();
    servers_.clear();
    fs::remove_all(dir_);
  }
  Reply swift(const std::string& method, const std::string& path, const std::string& body = {},
              std::vector<std::pair<std::string, std::string>> headers = {},
              std::optional<std::string> token = std::nullopt) {
    return client_.request(proxy_->url() + path, method, token ? *token : admin_, body, "",
                           std::move(headers));
  }
  std::string path(const std::string& rest = {}) const { return "/v1/" + account_ + rest; }
  void stop_server(int i) { servers_[static_cast<size_t>(i)].reset(); }
  const std::string& admin() const { return admin_; }
  const std::string& account() const { return account_; }

 private:
  fs::path dir_;
  std::vector<std::unique_ptr<apitest::ServedPipeline>> servers_;
  std::unique_ptr<apitest::ServedPipeline> proxy_;
  std::string admin_, account_;
  apitest::ApiClient client_;
};

TEST(ObjectStorage, ContainersObjectsListingsAndMetadataAsSwift) {
  Cloud c;
  auto created = c.swift("PUT", c.path("/photos"), "", {{"X-Container-Meta-Color", "blue"}});
  EXPECT_EQ(created.status, 201) << created.raw;
  EXPECT_TRUE(created.headers.get_or("X-Trans-Id").starts_with("tx"));
  auto again = c.swift("PUT", c.path("/photos"));
  EXPECT_EQ(again.status, 202) << again.raw;
  EXPECT_EQ(again.raw,
            "<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>");
  // Bytes in, the same bytes out, with Swift's headers.
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>('a' + i % 26);
  auto put = c.swift("PUT", c.path("/photos/2026/cat.jpg"), data,
                     {{"Content-Type", "image/jpeg"}, {"X-Object-Meta-Who", "tom"}});
  EXPECT_EQ(put.status, 201) << put.raw;
  EXPECT_EQ(put.headers.get_or("ETag"), md5_hex(data));
  auto got = c.swift("GET", c.path("/photos/2026/cat.jpg"));
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.raw == data) << "the object reads back byte-identical";
  EXPECT_EQ(got.headers.get_or("Content-Type"), "image/jpeg");
  EXPECT_EQ(got.headers.get_or("X-Object-Meta-Who"), "tom");
  EXPECT_EQ(got.headers.get_or("Accept-Ranges"), "bytes");
  EXPECT_FALSE(got.headers.get_or("Last-Modified").empty());
  EXPECT_FALSE(got.headers.get("X-Backend-Timestamp")) << "backend headers stay inside";
  c.swift("PUT", c.path("/photos/2026/dog.jpg"), "woof");
  c.swift("PUT", c.path("/photos/readme"), "hi");
  // Listings: plain, json, xml; prefix, delimiter, marker, limit, reverse.
  EXPECT_EQ(c.swift("GET", c.path("/photos")).raw, "2026/cat.jpg\n2026/dog.jpg\nreadme\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos?delimiter=/")).raw, "2026/\nreadme\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos?prefix=2026/&limit=1")).raw, "2026/cat.jpg\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos?marker=2026/cat.jpg&end_marker=readme")).raw,
            "2026/dog.jpg\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos?reverse=on")).raw,
            "readme\n2026/dog.jpg\n2026/cat.jpg\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos?limit=10001")).status, 412);
  auto json_listing = c.swift("GET", c.path("/photos?format=json&prefix=2026/cat"));
  EXPECT_EQ(json_listing.headers.get_or("Content-Type"), "application/json; charset=utf-8");
  auto rows = json::parse(json_listing.raw).as_array();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].as_object().at("bytes"), 100000);
  EXPECT_EQ(rows[0].as_object().at("hash").as_string(), md5_hex(data));
  EXPECT_EQ(rows[0].as_object().at("content_type"), "image/jpeg");
  EXPECT_EQ(rows[0].as_object().at("last_modified").as_string().size(), 26u);
  auto xml = c.swift("GET", c.path("/photos?format=xml&prefix=readme")).raw;
  EXPECT_TRUE(
      xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"photos\">"))
      << xml;
  EXPECT_NE(xml.find("<name>readme</name>"), std::string::npos);
  // Container and account totals.
  auto head = c.swift("HEAD", c.path("/photos"));
  EXPECT_EQ(head.status, 204);
  EXPECT_EQ(head.headers.get_or("X-Container-Object-Count"), "3");
  EXPECT_EQ(head.headers.get_or("X-Container-Bytes-Used"), std::to_string(100000 + 4 + 2));
  EXPECT_EQ(head.headers.get_or("X-Container-Meta-Color"), "blue");
  auto account = c.swift("HEAD", c.path());
  EXPECT_EQ(account.status, 204);
  EXPECT_EQ(account.headers.get_or("X-Account-Container-Count"), "1");
  EXPECT_EQ(account.headers.get_or("X-Account-Object-Count"), "3");
  EXPECT_EQ(c.swift("GET", c.path()).raw, "photos\n");
  // POST replaces an object's metadata; containers merge and delete keys.
  EXPECT_EQ(c.swift("POST", c.path("/photos/readme"), "", {{"X-Object-Meta-A", "1"}}).status, 202);
  auto meta = c.swift("HEAD", c.path("/photos/readme"));
  EXPECT_EQ(meta.headers.get_or("X-Object-Meta-A"), "1");
  EXPECT_EQ(c.swift("POST", c.path("/photos"), "", {{"X-Remove-Container-Meta-Color", "x"}}).status,
            204);
  EXPECT_FALSE(c.swift("HEAD", c.path("/photos")).headers.get("X-Container-Meta-Color"));
  // Metadata limits with Swift's messages.
  auto long_name =
      c.swift("POST", c.path("/photos"), "", {{"X-Container-Meta-" + std::string(129, 'n'), "v"}});
  EXPECT_EQ(long_name.status, 400);
  EXPECT_NE(long_name.raw.find("Metadata name too long"), std::string::npos);
  // Deletes: a container with objects is kept (409), objects go, then the container.
  EXPECT_EQ(c.swift("DELETE", c.path("/photos")).status, 409);
  for (auto* o : {"/photos/2026/cat.jpg", "/photos/2026/dog.jpg", "/photos/readme"})
    EXPECT_EQ(c.swift("DELETE", c.path(o)).status, 204);
  EXPECT_EQ(c.swift("GET", c.path("/photos/readme")).status, 404);
  EXPECT_EQ(c.swift("DELETE", c.path("/photos/readme")).status, 404);
  EXPECT_EQ(c.swift("GET", c.path("/photos")).status, 204) << "an empty plain listing";
  EXPECT_EQ(c.swift("DELETE", c.path("/photos")).status, 204);
  auto gone = c.swift("GET", c.path("/photos/x"));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.raw, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>");
  EXPECT_EQ(c.swift("HEAD", c.path()).headers.get_or("X-Account-Container-Count"), "0");
}

TEST(ObjectStorage, ConditionalRangeAndIntegrityChecks) {
  Cloud c;
  c.swift("PUT", c.path("/c"));
  std::string data = "0123456789";
  auto etag = md5_hex(data);
  EXPECT_EQ(c.swift("PUT", c.path("/c/o"), data, {{"ETag", "0000"}}).status, 422)
      << "a body that does not match its ETag is refused";
  EXPECT_EQ(c.swift("GET", c.path("/c/o")).status, 404) << "and nothing half-written stays";
  EXPECT_EQ(c.swift("PUT", c.path("/c/o"), data, {{"ETag", etag}}).status, 201);
  auto range = c.swift("GET", c.path("/c/o"), "", {{"Range", "bytes=2-4"}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.raw, "234");
  EXPECT_EQ(range.headers.get_or("Content-Range"), "bytes 2-4/10");
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"Range", "bytes=-3"}}).raw, "789");
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"Range", "bytes=20-"}}).status, 416);
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"If-Match", "nope"}}).status, 412);
  EXPECT_EQ(c.swift("PUT", c.path("/c/o"), data, {{"If-None-Match", "*"}}).status, 412);
  EXPECT_EQ(c.swift("PUT", c.path("/nocontainer/o"), data).status, 404);
  EXPECT_EQ(c.swift("PUT", c.path("/c/o2"), "", {{"X-Delete-After", "x"}}).status, 400);
}

TEST(ObjectStorage, KeystoneauthOwnersAclsAndAnonymousReaders) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  c.swift("PUT", c.path("/shared"));
  c.swift("PUT", c.path("/shared/o"), "data");
  EXPECT_EQ(c.swift("GET", c.path("/shared/o"), "", {}, std::string()).status, 401);
  EXPECT_EQ(c.swift("GET", c.path("/shared/o"), "", {}, alice).status, 403);
  EXPECT_EQ(c.swift("PUT", c.path("/shared/o"), "x", {}, alice).status, 403);
  // Alice's own account is hers.
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_" + alice_project + "/mine", "", {}, alice).status, 201);
  // A read ACL naming her project lets her read, not write; .r:* lets anyone read objects,
  // .rlistings lets them list.
  c.swift("POST", c.path("/shared"), "", {{"X-Container-Read", alice_project + ":*"}});
  EXPECT_EQ(c.swift("GET", c.path("/shared/o"), "", {}, alice).raw, "data");
  EXPECT_EQ(c.swift("PUT", c.path("/shared/o"), "x", {}, alice).status, 403);
  c.swift("POST", c.path("/shared"), "", {{"X-Container-Read", ".r:*"}});
  EXPECT_EQ(c.swift("GET", c.path("/shared/o"), "", {}, std::string()).raw, "data");
  EXPECT_EQ(c.swift("GET", c.path("/shared"), "", {}, std::string()).status, 401);
  c.swift("POST", c.path("/shared"), "", {{"X-Container-Read", ".r:*,.rlistings"}});
  EXPECT_EQ(c.swift("GET", c.path("/shared"), "", {}, std::string()).raw, "o\n");
  c.swift("POST", c.path("/shared"), "", {{"X-Container-Write", alice_project + ":*"}});
  EXPECT_EQ(c.swift("PUT", c.path("/shared/by-alice"), "x", {}, alice).status, 201);
}

TEST(ObjectStorage, WritesSucceedAtAQuorumAndReadsFindTheSurvivors) {
  Cloud c;
  c.swift("PUT", c.path("/c"));
  c.stop_server(0);
  // Two of three replicas: a quorum. Every acknowledged object reads back.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(c.swift("PUT", c.path("/c/o" + std::to_string(i)), "v" + std::to_string(i)).status,
              201);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(c.swift("GET", c.path("/c/o" + std::to_string(i))).raw, "v" + std::to_string(i));
  c.stop_server(1);
  EXPECT_EQ(c.swift("PUT", c.path("/c/late"), "x").status, 503) << "one replica is no quorum";
  EXPECT_EQ(c.swift("GET", c.path("/c/o3")).raw, "v3") << "reads need one replica";
}

}  // namespace
