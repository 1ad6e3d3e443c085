// Object storage over real HTTP: identity in-process, three storage servers on port 0 (one device
// each, three replicas), the Swift proxy in front. Swift's semantics: containers and objects,
// listings in three formats, metadata, conditional and range reads, keystoneauth and ACLs, and
// writes at a quorum when a storage server is down; the middleware features (SLO, TempURL,
// FormPost, quotas, bulk delete and archive extraction) as Swift's.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "common/ids.hpp"
#include "object/proxy/proxy.hpp"
#include "object/proxy/tempauth.hpp"
#include "object/replicator/replicator.hpp"
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
  std::string out = hex_encode(std::string_view(reinterpret_cast<const char*>(digest), n));
  return out;
}

std::string hmac_hex(const EVP_MD* md, const std::string& key, const std::string& message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &n);
  std::string text = hex_encode(std::string_view(reinterpret_cast<const char*>(out), n));
  return text;
}

// A ustar archive of regular files.
std::string tar_of(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  for (auto& [name, data] : files) {
    std::string h(512, '\0');
    name.copy(h.data(), std::min<size_t>(name.size(), 99));
    std::snprintf(h.data() + 100, 8, "%07o", 0644);
    std::snprintf(h.data() + 108, 8, "%07o", 0);
    std::snprintf(h.data() + 116, 8, "%07o", 0);
    std::snprintf(h.data() + 124, 12, "%011o", static_cast<unsigned>(data.size()));
    std::snprintf(h.data() + 136, 12, "%011o", 1700000000u);
    h[156] = '0';
    std::memcpy(h.data() + 257,
                "ustar\0"
                "00",
                8);
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h.data() + 148, 8, "%06o", sum);
    h[155] = ' ';
    out += h + data + std::string((512 - data.size() % 512) % 512, '\0');
  }
  return out + std::string(1024, '\0');
}

std::string gzip_of(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class Cloud : public apitest::IdentityCloud {
 public:
  static constexpr int kServers = 3;
  // tempauth: the proxy authenticates with it instead of the identity service.
  explicit Cloud(std::shared_ptr<object::TempAuth> tempauth = nullptr) {
    dir_ = fs::temp_directory_path() / ("nubo-object-api-" + uuid4_hex());
    std::vector<object::Device> devices;
    for (int i = 0; i < kServers; ++i) {
      object::StorageSettings s;
      s.devices = (dir_ / ("server" + std::to_string(i))).string();
      s.hash_suffix = "test-suffix";
      s.update_timeout = std::chrono::milliseconds(2000);
      s.rings = (dir_ / "rings").string();
      s.ip = "127.0.0.1";
      fs::create_directories(s.devices + "/d" + std::to_string(i));
      storage_.push_back(object::make_storage_server(s));
      servers_.push_back(std::make_unique<apitest::ServedPipeline>(
          object::make_storage_spec(storage_.back()), [](int status, const std::string& m) {
            return object::render_swift_error(ApiError(status, m));
          }));
      object::Device d;
      d.id = i;
      d.zone = i + 1;
      d.ip = "127.0.0.1";
      d.port = std::stoi(servers_.back()->url().substr(servers_.back()->url().rfind(':') + 1));
      storage_.back()->settings.port = d.port;
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
    if (tempauth) {
      ps.tempauth = tempauth;
      ps.operator_roles = {".admin"};
      ps.reseller_admin_role = ".reseller_admin";
    }
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
    storage_.clear();
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
  // What the storage servers' totals loop does every account_update_interval.
  void report_totals() {
    for (auto& s : storage_) s->report_totals();
  }
  // One pass of every storage server's expirer.
  std::uint64_t expire() {
    std::uint64_t reaped = 0;
    for (auto& s : storage_) reaped += object::Expirer(s).run_once().reaped;
    return reaped;
  }
  // A user whose only role is ResellerAdmin (keystoneauth's reseller admin), in a project of
  // its own.
  std::string reseller() {
    auto role =
        IdentityCloud::call("POST", "/v3/roles", admin_,
                            json::object{{"role", json::object{{"name", "ResellerAdmin"}}}});
    std::string role_id(role.body.at("role").as_object().at("id").as_string());
    auto p = IdentityCloud::call("POST", "/v3/projects", admin_,
                                 json::object{{"project", json::object{{"name", "resellers"}}}});
    std::string project(p.body.at("project").as_object().at("id").as_string());
    auto u = IdentityCloud::call(
        "POST", "/v3/users", admin_,
        json::object{{"user", json::object{{"name", "reseller"}, {"password", "pw-reseller"}}}});
    std::string user(u.body.at("user").as_object().at("id").as_string());
    IdentityCloud::call("PUT", "/v3/projects/" + project + "/users/" + user + "/roles/" + role_id,
                        admin_);
    return token("reseller", "pw-reseller", "resellers");
  }
  const std::string& admin() const { return admin_; }
  const std::string& account() const { return account_; }

 private:
  fs::path dir_;
  std::vector<std::shared_ptr<object::StorageServer>> storage_;
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
  // Accounts learn containers' totals from the storage servers' totals pass, not at once.
  EXPECT_EQ(c.swift("HEAD", c.path()).headers.get_or("X-Account-Object-Count"), "0");
  c.report_totals();
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
  auto several = c.swift("GET", c.path("/c/o"), "", {{"Range", "bytes=0-1,5-6"}});
  EXPECT_EQ(several.status, 206);
  auto type = std::string(several.headers.get_or("Content-Type"));
  ASSERT_TRUE(type.starts_with("multipart/byteranges;boundary=")) << type;
  auto b = type.substr(type.find('=') + 1);
  auto stored_type = std::string(c.swift("HEAD", c.path("/c/o")).headers.get_or("Content-Type"));
  EXPECT_EQ(several.raw, "--" + b + "\r\nContent-Type: " + stored_type +
                             "\r\nContent-Range: bytes "
                             "0-1/10\r\n\r\n01\r\n--" +
                             b + "\r\nContent-Type: " + stored_type +
                             "\r\nContent-Range: bytes "
                             "5-6/10\r\n\r\n56\r\n--" +
                             b + "--");
  EXPECT_EQ(several.headers.get_or("Content-Length"), std::to_string(several.raw.size()));
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"Range", "bytes=0-5,1-6,2-7"}}).status, 416);
  EXPECT_EQ(c.swift("HEAD", c.path("/c/o"), "", {{"Range", "bytes=2-4"}}).status, 200)
      << "swob ignores Range on HEAD";
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {{"If-Match", "nope"}}).status, 412);
  EXPECT_EQ(c.swift("PUT", c.path("/c/o"), data, {{"If-None-Match", "*"}}).status, 412);
  EXPECT_EQ(c.swift("PUT", c.path("/nocontainer/o"), data).status, 404);
  EXPECT_EQ(c.swift("PUT", c.path("/c/o2"), "", {{"X-Delete-After", "x"}}).status, 400);
}

TEST(ObjectStorage, LargeObjectsReadBackByteIdenticalUnderTheirMd5) {
  // Past 8 MiB a replica's body goes to disk with O_DIRECT in aligned blocks, and the proxy
  // hashes the body once for the replicas in its process: an odd size crosses both boundaries.
  Cloud c;
  c.swift("PUT", c.path("/c"));
  std::string data((13u << 20) + 4321, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& ch : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ch = static_cast<char>(x);
  }
  auto put = c.swift("PUT", c.path("/c/big"), data);
  ASSERT_EQ(put.status, 201) << put.raw;
  EXPECT_EQ(put.headers.get_or("ETag"), md5_hex(data));
  auto get = c.swift("GET", c.path("/c/big"));
  EXPECT_EQ(get.headers.get_or("ETag"), md5_hex(data));
  EXPECT_TRUE(get.raw == data) << "the object read back differs (" << get.raw.size() << " bytes)";
  auto across = c.swift("GET", c.path("/c/big"), "", {{"Range", "bytes=8388000-8389000"}});
  EXPECT_EQ(across.status, 206);
  EXPECT_TRUE(across.raw == data.substr(8388000, 1001));
  auto tail = c.swift("GET", c.path("/c/big"), "", {{"Range", "bytes=-5000"}});
  EXPECT_TRUE(tail.raw == data.substr(data.size() - 5000));
  // A large body that does not match its ETag is refused and the stored one stays.
  auto other = data;
  other[10u << 20] ^= 1;
  EXPECT_EQ(c.swift("PUT", c.path("/c/big"), other, {{"ETag", md5_hex(data)}}).status, 422);
  EXPECT_EQ(c.swift("HEAD", c.path("/c/big")).headers.get_or("ETag"), md5_hex(data));
}

TEST(ObjectStorage, ExpiredObjectsAreReapedFromDisksListingsAndTotals) {
  Cloud c;
  ASSERT_EQ(c.swift("PUT", c.path("/c")).status, 201);
  ASSERT_EQ(c.swift("PUT", c.path("/c/short"), "12345", {{"X-Delete-After", "1"}}).status, 201);
  ASSERT_EQ(c.swift("PUT", c.path("/c/long"), "abc", {{"X-Delete-After", "3600"}}).status, 201);
  ASSERT_EQ(c.swift("PUT", c.path("/c/posted"), "xy").status, 201);
  ASSERT_EQ(c.swift("POST", c.path("/c/posted"), "", {{"X-Delete-After", "1"}}).status, 202);
  EXPECT_EQ(c.expire(), 0u) << "nothing is due yet";
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(c.swift("GET", c.path("/c/short")).status, 404) << "expired: gone at once";
  EXPECT_EQ(c.swift("GET", c.path("/c?format=plain")).raw, "long\nposted\nshort\n")
      << "listed until reaped, as in Swift";
  EXPECT_EQ(c.expire(), 6u) << "two objects, three replicas each";
  c.report_totals();
  EXPECT_EQ(c.swift("GET", c.path("/c?format=plain")).raw, "long\n");
  auto head = c.swift("HEAD", c.path("/c"));
  EXPECT_EQ(head.headers.get_or("X-Container-Object-Count"), "1");
  EXPECT_EQ(head.headers.get_or("X-Container-Bytes-Used"), "3");
  EXPECT_EQ(c.swift("GET", c.path("/c/long")).raw, "abc");
  EXPECT_EQ(c.expire(), 0u);
}

TEST(ObjectStorage, TempauthTokensOwnersGroupsAndAccountAcls) {
  object::TempAuthSettings settings;
  settings.secret = "shared by the proxies";
  settings.users = {{"test", "tester", "testing", {".admin"}, ""},
                    {"test", "tester2", "testing2", {}, ""},
                    {"reseller", "root", "secret", {".reseller_admin"}, ""}};
  Cloud c(std::make_shared<object::TempAuth>(settings));
  auto login = [&](const std::string& user, const std::string& key) {
    return c.swift("GET", "/auth/v1.0", "", {{"X-Auth-User", user}, {"X-Auth-Key", key}}, "");
  };
  auto ok = login("test:tester", "testing");
  ASSERT_EQ(ok.status, 200) << ok.raw;
  auto tester = std::string(ok.headers.get_or("X-Auth-Token"));
  EXPECT_TRUE(tester.starts_with("AUTH_tk"));
  EXPECT_EQ(ok.headers.get_or("X-Storage-Token"), tester);
  EXPECT_TRUE(ok.headers.get_or("X-Storage-Url").ends_with("/v1/AUTH_test"));
  EXPECT_EQ(ok.headers.get_or("X-Auth-Token-Expires"), "86400");
  auto bad = login("test:tester", "wrong");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.headers.get_or("Www-Authenticate"), "Swift realm=\"unknown\"");
  EXPECT_EQ(login("test:nobody", "x").status, 401);
  EXPECT_EQ(login("no-colon", "x").status, 401);
  auto v1 = c.swift("GET", "/auth/v1/test/auth", "",
                    {{"X-Storage-User", "tester2"}, {"X-Storage-Pass", "testing2"}}, "");
  ASSERT_EQ(v1.status, 200);
  auto tester2 = std::string(v1.headers.get_or("X-Auth-Token"));
  auto root = std::string(login("reseller:root", "secret").headers.get_or("X-Auth-Token"));

  // .admin owns its account; another user of the account needs an ACL; a forged token is no one.
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_test/c", "", {}, tester).status, 201);
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_test/c/o", "data", {}, tester).status, 201);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, tester2).status, 403);
  auto forged = tester;
  forged[10] = forged[10] == 'a' ? 'b' : 'a';
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, forged).status, 401);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_other", "", {}, tester).status, 403);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, root).raw, "data") << "reseller admin";
  c.swift("POST", "/v1/AUTH_test/c", "", {{"X-Container-Read", "test:tester2"}}, tester);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, tester2).raw, "data");
  c.swift("POST", "/v1/AUTH_test/c", "", {{"X-Container-Read", "test"}}, tester);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, tester2).raw, "data")
      << "the account's name is a group of all its users";
  c.swift("POST", "/v1/AUTH_test/c", "", {{"X-Remove-Container-Read", "x"}}, tester);

  // Account ACLs.
  auto set_acl = [&](const std::string& acl) {
    return c.swift("POST", "/v1/AUTH_test", "", {{"X-Account-Access-Control", acl}}, tester);
  };
  auto invalid = set_acl("{\"owner\": []}");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.raw,
            "X-Account-Access-Control invalid: Key \"owner\" not recognized\n\nInput: "
            "{\"owner\": []}\n");
  EXPECT_EQ(set_acl("[1]").status, 400);
  EXPECT_EQ(set_acl("{\"admin\": \"x\"}").status, 400);
  EXPECT_EQ(set_acl("{\"admin\": [1]}").status, 400);
  ASSERT_EQ(set_acl("{\"read-only\": [\"test:tester2\"], \"admin\": []}").status, 204);
  EXPECT_EQ(
      c.swift("HEAD", "/v1/AUTH_test", "", {}, tester).headers.get_or("X-Account-Access-Control"),
      "{\"admin\":[],\"read-only\":[\"test:tester2\"]}")
      << "shown to owners, compact and sorted";
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test?format=plain", "", {}, tester2).raw, "c\n");
  EXPECT_FALSE(
      c.swift("HEAD", "/v1/AUTH_test", "", {}, tester2).headers.get("X-Account-Access-Control"))
      << "hidden from others";
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c?format=plain", "", {}, tester2).raw, "o\n");
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, tester2).raw, "data");
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_test/c/o2", "x", {}, tester2).status, 403);
  ASSERT_EQ(set_acl("{\"read-write\": [\"test:tester2\"]}").status, 204);
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_test/c/o2", "x", {}, tester2).status, 201);
  EXPECT_EQ(c.swift("PUT", "/v1/AUTH_test/c2", "", {{"X-Container-Read", ".r:*"}}, tester2).status,
            201);
  EXPECT_FALSE(c.swift("HEAD", "/v1/AUTH_test/c2", "", {}, tester).headers.get("X-Container-Read"))
      << "an ACL only owners may set is dropped";
  EXPECT_EQ(c.swift("POST", "/v1/AUTH_test", "", {{"X-Account-Meta-A", "b"}}, tester2).status, 403);
  ASSERT_EQ(set_acl("{\"admin\": [\"test:tester2\"]}").status, 204);
  EXPECT_EQ(c.swift("POST", "/v1/AUTH_test", "", {{"X-Account-Meta-A", "b"}}, tester2).status, 204);
  EXPECT_TRUE(
      c.swift("HEAD", "/v1/AUTH_test", "", {}, tester2).headers.get("X-Account-Access-Control"));
  ASSERT_EQ(set_acl("{}").status, 204);
  EXPECT_EQ(c.swift("GET", "/v1/AUTH_test/c/o", "", {}, tester2).status, 403) << "ACL removed";
}

TEST(ObjectStorage, AccountAclsWithKeystoneIdentities) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  c.swift("PUT", c.path("/c"));
  c.swift("PUT", c.path("/c/o"), "data");
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {}, alice).status, 403);
  ASSERT_EQ(
      c.swift("POST", c.path(), "",
              {{"X-Account-Access-Control", "{\"read-only\": [\"" + alice_project + ":*\"]}"}})
          .status,
      204);
  EXPECT_EQ(c.swift("GET", c.path("/c/o"), "", {}, alice).raw, "data");
  EXPECT_EQ(c.swift("GET", c.path("?format=plain"), "", {}, alice).raw, "c\n");
  EXPECT_EQ(c.swift("DELETE", c.path("/c/o"), "", {}, alice).status, 403);
  EXPECT_EQ(c.swift("POST", c.path(), "", {{"X-Account-Access-Control", "{}"}}, alice).status, 403)
      << "only owners set account ACLs";
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

TEST(ObjectStorage, VersionedContainersKeepAndRestoreVersions) {
  Cloud c;
  c.swift("PUT", c.path("/archive"));
  EXPECT_EQ(c.swift("PUT", c.path("/docs"), "",
                    {{"X-Versions-Location", "archive"}, {"X-History-Location", "archive"}})
                .status,
            400);
  EXPECT_EQ(c.swift("PUT", c.path("/docs"), "", {{"X-Versions-Location", "a/b"}}).status, 412);
  EXPECT_EQ(c.swift("PUT", c.path("/docs"), "", {{"X-Versions-Location", "archive"}}).status, 201);
  c.swift("PUT", c.path("/docs/report"), "first", {{"Content-Type", "text/plain"}});
  c.swift("PUT", c.path("/docs/report"), "second");
  EXPECT_EQ(c.swift("GET", c.path("/docs/report")).raw, "second");
  auto archived = c.swift("GET", c.path("/archive?prefix=006report/")).raw;
  EXPECT_EQ(std::count(archived.begin(), archived.end(), '\n'), 1) << archived;
  // Stack mode: a delete brings the previous version back, then the object goes.
  EXPECT_EQ(c.swift("DELETE", c.path("/docs/report")).status, 204);
  auto back = c.swift("GET", c.path("/docs/report"));
  EXPECT_EQ(back.raw, "first");
  EXPECT_EQ(back.headers.get_or("Content-Type"), "text/plain");
  EXPECT_EQ(c.swift("GET", c.path("/archive")).status, 204) << "the archive gave it back";
  EXPECT_EQ(c.swift("DELETE", c.path("/docs/report")).status, 204);
  EXPECT_EQ(c.swift("GET", c.path("/docs/report")).status, 404);
  // History mode: every version, the last one too, stays in the archive.
  c.swift("PUT", c.path("/history"));
  c.swift("PUT", c.path("/log"), "", {{"X-History-Location", "history"}});
  c.swift("PUT", c.path("/log/day"), "one");
  c.swift("PUT", c.path("/log/day"), "two");
  EXPECT_EQ(c.swift("DELETE", c.path("/log/day")).status, 204);
  EXPECT_EQ(c.swift("GET", c.path("/log/day")).status, 404);
  auto kept = json::parse(c.swift("GET", c.path("/history?format=json")).raw).as_array();
  ASSERT_EQ(kept.size(), 3u) << "two versions and the delete marker";
  auto row = [&](size_t i, const char* key) {
    return std::string(kept[i].as_object().at(key).as_string());
  };
  EXPECT_TRUE(row(0, "name").starts_with("003day/"));
  EXPECT_EQ(row(0, "content_type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(row(2, "content_type"), "application/x-deleted;swift_versions_deleted=1");
  EXPECT_EQ(row(2, "hash"), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(kept[2].as_object().at("bytes"), 0);
  // Deleting what is not there still leaves a marker (and answers 404), as Swift's.
  EXPECT_EQ(c.swift("DELETE", c.path("/log/never")).status, 404);
  EXPECT_EQ(json::parse(c.swift("GET", c.path("/history?format=json&prefix=005never/")).raw)
                .as_array()
                .size(),
            1u);
  // No archive container: the delete is refused, the object stays.
  c.swift("PUT", c.path("/orphan"), "", {{"X-History-Location", "missing"}});
  c.swift("PUT", c.path("/orphan/o"), "kept");
  EXPECT_EQ(c.swift("DELETE", c.path("/orphan/o")).status, 412);
  EXPECT_EQ(c.swift("GET", c.path("/orphan/o")).raw, "kept");
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

TEST(ObjectStorage, StaticLargeObjectsAsSwift) {
  Cloud c;
  c.swift("PUT", c.path("/segs"));
  c.swift("PUT", c.path("/c"));
  std::string a(1 << 20, 'a'), b = "bbbbbbbbbb";
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>('a' + i % 7);
  c.swift("PUT", c.path("/segs/1"), a);
  c.swift("PUT", c.path("/segs/2"), b);
  auto manifest = "[{\"path\": \"/segs/1\", \"etag\": \"" + md5_hex(a) +
                  "\", \"size_bytes\": " + std::to_string(a.size()) +
                  "}, {\"path\": \"/segs/2\", \"etag\": null, \"size_bytes\": null}]";
  auto slo_etag = md5_hex(md5_hex(a) + md5_hex(b));
  auto put = c.swift("PUT", c.path("/c/big?multipart-manifest=put"), manifest,
                     {{"Content-Type", "text/plain"}});
  ASSERT_EQ(put.status, 201) << put.raw;
  EXPECT_EQ(put.headers.get_or("ETag"), "\"" + slo_etag + "\"");
  auto got = c.swift("GET", c.path("/c/big"));
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.raw == a + b) << "the segments, assembled";
  EXPECT_EQ(got.headers.get_or("X-Static-Large-Object"), "True");
  EXPECT_EQ(got.headers.get_or("ETag"), "\"" + slo_etag + "\"");
  EXPECT_EQ(got.headers.get_or("Content-Type"), "text/plain");
  auto head = c.swift("HEAD", c.path("/c/big"));
  EXPECT_EQ(head.headers.get_or("Content-Length"), std::to_string(a.size() + b.size()));
  EXPECT_EQ(head.headers.get_or("ETag"), "\"" + slo_etag + "\"");
  auto range = c.swift(
      "GET", c.path("/c/big"), "",
      {{"Range", "bytes=" + std::to_string(a.size() - 2) + "-" + std::to_string(a.size() + 1)}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.raw, a.substr(a.size() - 2) + "bb") << "a range across two segments";
  auto parts = c.swift("GET", c.path("/c/big"), "", {{"Range", "bytes=0-1,-2"}});
  EXPECT_EQ(parts.status, 206);
  auto boundary = std::string(parts.headers.get_or("Content-Type"));
  boundary = boundary.substr(boundary.find("boundary=") + 9);
  auto total = std::to_string(a.size() + b.size());
  EXPECT_EQ(parts.raw, "--" + boundary +
                           "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/" + total +
                           "\r\n\r\n" + a.substr(0, 2) + "\r\n--" + boundary +
                           "\r\nContent-Type: text/plain\r\nContent-Range: bytes " +
                           std::to_string(a.size() + b.size() - 2) + "-" +
                           std::to_string(a.size() + b.size() - 1) + "/" + total + "\r\n\r\n" +
                           b.substr(b.size() - 2) + "\r\n--" + boundary + "--")
      << "an SLO answers several ranges as Swift's does";
  EXPECT_EQ(
      c.swift("GET", c.path("/c/big"), "", {{"If-None-Match", "\"" + slo_etag + "\""}}).status,
      304);
  // The manifest as stored, and as uploaded.
  auto stored = c.swift("GET", c.path("/c/big?multipart-manifest=get"));
  EXPECT_EQ(stored.headers.get_or("Content-Type"), "application/json; charset=utf-8");
  auto rows = json::parse(stored.raw).as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].as_object().at("name"), "/segs/1");
  EXPECT_EQ(rows[0].as_object().at("hash").as_string(), md5_hex(a));
  EXPECT_EQ(rows[1].as_object().at("bytes"), 10);
  auto raw = c.swift("GET", c.path("/c/big?multipart-manifest=get&format=raw"));
  EXPECT_NE(raw.raw.find("\"size_bytes\": 10"), std::string::npos) << raw.raw;
  // Listings show the whole's size; the container counts the manifest's.
  auto listing = json::parse(c.swift("GET", c.path("/c?format=json")).raw).as_array();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0].as_object().at("bytes"), static_cast<std::int64_t>(a.size() + b.size()));
  EXPECT_EQ(listing[0].as_object().at("slo_etag").as_string(), "\"" + slo_etag + "\"");
  EXPECT_EQ(listing[0].as_object().at("content_type"), "text/plain");
  EXPECT_EQ(listing[0].as_object().at("hash").as_string(), md5_hex(stored.raw));
  EXPECT_EQ(c.swift("HEAD", c.path("/c")).headers.get_or("X-Container-Bytes-Used"),
            std::to_string(stored.raw.size()));
  // Segments are checked, and problems worded as Swift words them.
  auto bad = c.swift("PUT", c.path("/c/bad?multipart-manifest=put"),
                     "[{\"path\": \"/segs/1\", \"etag\": \"0000\"}, {\"path\": \"/segs/none\"}]");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.raw, "Errors:\n/segs/1, Etag Mismatch\n/segs/none, 404 Not Found\n");
  EXPECT_EQ(bad.headers.get_or("Content-Type"), "text/plain");
  auto malformed = c.swift("PUT", c.path("/c/bad?multipart-manifest=put"), "[{\"path\": \"x\"}]");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.raw,
            "Index 0: path does not refer to an object. Path must be of the form "
            "/container/object.\n");
  EXPECT_EQ(c.swift("PUT", c.path("/c/bad"), "x", {{"X-Static-Large-Object", "true"}}).status, 400);
  // A copy of the large object is its bytes.
  EXPECT_EQ(c.swift("PUT", c.path("/c/copy"), "", {{"X-Copy-From", "c/big"}}).status, 201);
  EXPECT_TRUE(c.swift("GET", c.path("/c/copy")).raw == a + b);
  EXPECT_FALSE(c.swift("HEAD", c.path("/c/copy")).headers.get("X-Static-Large-Object"));
  // Deleting the manifest with its segments.
  auto del = c.swift("DELETE", c.path("/c/big?multipart-manifest=delete"));
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.raw,
            "Number Deleted: 3\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\n"
            "Errors:\n");
  EXPECT_EQ(c.swift("GET", c.path("/segs")).status, 204) << "the segments went too";
  auto plain = c.swift("DELETE", c.path("/c/copy?multipart-manifest=delete"), "",
                       {{"Accept", "application/json"}});
  EXPECT_EQ(plain.raw,
            "{\"Response Status\": \"400 Bad Request\", \"Response Body\": \"\", \"Number "
            "Deleted\": 0, \"Number Not Found\": 0, \"Errors\": [[\"/c/copy\", \"Not an SLO "
            "manifest\"]]}");
}

TEST(ObjectStorage, DynamicLargeObjectsReadRanges) {
  Cloud c;
  c.swift("PUT", c.path("/c"));
  c.swift("PUT", c.path("/c/parts/1"), "hello ");
  c.swift("PUT", c.path("/c/parts/2"), "world");
  c.swift("PUT", c.path("/c/dlo"), "", {{"X-Object-Manifest", "c/parts/"}});
  EXPECT_EQ(c.swift("GET", c.path("/c/dlo")).raw, "hello world");
  auto range = c.swift("GET", c.path("/c/dlo"), "", {{"Range", "bytes=4-7"}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.raw, "o wo");
  EXPECT_EQ(range.headers.get_or("Content-Range"), "bytes 4-7/11");
  auto several = c.swift("GET", c.path("/c/dlo"), "", {{"Range", "bytes=0-1,4-7"}});
  EXPECT_EQ(several.status, 200) << "a DLO serves the whole for several ranges, as Swift's";
  EXPECT_EQ(several.raw, "hello world");
}

TEST(ObjectStorage, TempUrlsAsSwift) {
  Cloud c;
  auto [alice, alice_project] = c.member_of_new_project(c.admin(), "alice");
  c.swift("POST", c.path(), "", {{"X-Account-Meta-Temp-URL-Key", "secret"}});
  c.swift("PUT", c.path("/c"));
  c.swift("PUT", c.path("/c/doc.txt"), "temporary",
          {{"X-Object-Meta-Private", "p"}, {"X-Object-Meta-Public-Note", "n"}});
  auto expires = std::to_string(std::time(nullptr) + 60);
  auto path = c.path("/c/doc.txt");
  auto sig = hmac_hex(EVP_sha256(), "secret", "GET\n" + expires + "\n" + path);
  auto url = path + "?temp_url_sig=" + sig + "&temp_url_expires=" + expires;
  auto got = c.swift("GET", url, "", {}, std::string());
  EXPECT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.raw, "temporary");
  EXPECT_EQ(got.headers.get_or("Content-Disposition"),
            "attachment; filename=\"doc.txt\"; filename*=UTF-8''doc.txt");
  EXPECT_FALSE(got.headers.get("X-Object-Meta-Private"));
  EXPECT_EQ(got.headers.get_or("X-Object-Meta-Public-Note"), "n");
  EXPECT_FALSE(got.headers.get_or("Expires").empty());
  EXPECT_EQ(c.swift("HEAD", url, "", {}, std::string()).status, 200) << "GET signatures HEAD too";
  EXPECT_EQ(
      c.swift("GET", url + "&inline", "", {}, std::string()).headers.get_or("Content-Disposition"),
      "inline");
  EXPECT_EQ(c.swift("GET", url + "&filename=a%20b.txt", "", {}, std::string())
                .headers.get_or("Content-Disposition"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
  // A prefix URL covers every object under its prefix.
  auto prefix_sig =
      hmac_hex(EVP_sha256(), "secret", "GET\n" + expires + "\nprefix:" + c.path("/c/do"));
  auto prefixed =
      "?temp_url_sig=" + prefix_sig + "&temp_url_expires=" + expires + "&temp_url_prefix=do";
  EXPECT_EQ(c.swift("GET", path + prefixed, "", {}, std::string()).raw, "temporary");
  EXPECT_EQ(c.swift("GET", c.path("/c/other") + prefixed, "", {}, std::string()).status, 401);
  // Another token is no matter: the signature decides.
  EXPECT_EQ(c.swift("GET", url, "", {}, alice).status, 200);
  // sha512 as swiftclient writes it ("sha512:" and URL-safe base64), and sha1.
  auto sha512 = hmac_hex(EVP_sha512(), "secret", "GET\n" + expires + "\n" + path);
  std::string bytes;
  for (size_t i = 0; i < sha512.size(); i += 2)
    bytes += static_cast<char>(std::stoi(sha512.substr(i, 2), nullptr, 16));
  unsigned char b64[256];
  int n = EVP_EncodeBlock(b64, reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  std::string urlsafe(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
  for (auto& ch : urlsafe) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  while (urlsafe.back() == '=') urlsafe.pop_back();
  EXPECT_EQ(
      c.swift("GET", path + "?temp_url_sig=sha512:" + urlsafe + "&temp_url_expires=" + expires, "",
              {}, std::string())
          .status,
      200);
  auto sha1 = hmac_hex(EVP_sha1(), "secret", "GET\n" + expires + "\n" + path);
  EXPECT_EQ(c.swift("GET", path + "?temp_url_sig=" + sha1 + "&temp_url_expires=" + expires, "", {},
                    std::string())
                .status,
            200);
  // Wrong signature, expired, wrong method: 401 with Swift's body.
  auto bad = c.swift(
      "GET", path + "?temp_url_sig=" + std::string(64, 'a') + "&temp_url_expires=" + expires, "",
      {}, std::string());
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.raw, "401 Unauthorized: Temp URL invalid\n");
  auto past = std::to_string(std::time(nullptr) - 1);
  EXPECT_EQ(c.swift("GET",
                    path + "?temp_url_sig=" +
                        hmac_hex(EVP_sha256(), "secret", "GET\n" + past + "\n" + path) +
                        "&temp_url_expires=" + past,
                    "", {}, std::string())
                .status,
            401);
  EXPECT_EQ(c.swift("PUT", url, "x", {}, std::string()).status, 401);
  // PUT with a PUT signature, into a container keyed on its own (container scope).
  c.swift("POST", c.path("/c"), "", {{"X-Container-Meta-Temp-URL-Key-2", "ckey"}});
  auto put_path = c.path("/c/new");
  auto put_sig = hmac_hex(EVP_sha256(), "ckey", "PUT\n" + expires + "\n" + put_path);
  EXPECT_EQ(c.swift("PUT", put_path + "?temp_url_sig=" + put_sig + "&temp_url_expires=" + expires,
                    "uploaded", {}, std::string())
                .status,
            201);
  EXPECT_EQ(c.swift("GET", put_path).raw, "uploaded");
  // Keys are the owner's to see.
  EXPECT_EQ(c.swift("HEAD", c.path()).headers.get_or("X-Account-Meta-Temp-Url-Key"), "secret");
  c.swift("POST", c.path("/c"), "", {{"X-Container-Read", alice_project + ":*"}});
  EXPECT_EQ(c.swift("HEAD", c.path("/c")).headers.get_or("X-Container-Meta-Temp-Url-Key-2"),
            "ckey");
  auto reader = c.swift("HEAD", c.path("/c"), "", {}, alice);
  EXPECT_EQ(reader.status, 204);
  EXPECT_FALSE(reader.headers.get("X-Container-Meta-Temp-Url-Key-2"));
}

TEST(ObjectStorage, FormPostAsSwift) {
  Cloud c;
  c.swift("POST", c.path(), "", {{"X-Account-Meta-Temp-URL-Key", "formkey"}});
  c.swift("PUT", c.path("/c"));
  auto form = [&](std::int64_t expires, const std::string& key) {
    auto path = c.path("/c/up-");
    auto e = std::to_string(expires);
    auto sig = hmac_hex(EVP_sha1(), key, path + "\n\n1024\n10\n" + e);
    std::string b = "--BOUNDARY\r\n";
    auto field = [&](const std::string& name, const std::string& value) {
      return "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value +
             "\r\n--BOUNDARY\r\n";
    };
    b += field("redirect", "") + field("max_file_size", "1024") + field("max_file_count", "10") +
         field("expires", e) + field("signature", sig);
    b += "Content-Disposition: form-data; name=\"file1\"; filename=\"testfile\"\r\n"
         "Content-Type: text/plain\r\n\r\nhello world\r\n--BOUNDARY--\r\n";
    return c.swift("POST", path, b, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}},
                   std::string());
  };
  auto ok = form(std::time(nullptr) + 60, "formkey");
  EXPECT_EQ(ok.status, 201) << ok.raw;
  EXPECT_EQ(ok.raw, "201 Created");
  EXPECT_EQ(c.swift("GET", c.path("/c/up-testfile")).raw, "hello world");
  auto expired = form(std::time(nullptr) - 10, "formkey");
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.raw, "FormPost: Form Expired");
  auto bad = form(std::time(nullptr) + 60, "wrong");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.raw, "FormPost: Invalid Signature");
}

TEST(ObjectStorage, ContainerAndAccountQuotasAsSwift) {
  Cloud c;
  EXPECT_EQ(c.swift("PUT", c.path("/q"), "", {{"X-Container-Meta-Quota-Bytes", "ten"}}).status,
            400);
  c.swift("PUT", c.path("/q"), "",
          {{"X-Container-Meta-Quota-Bytes", "10"}, {"X-Container-Meta-Quota-Count", "2"}});
  EXPECT_EQ(c.swift("PUT", c.path("/q/a"), "0123456789").status, 201);
  auto over = c.swift("PUT", c.path("/q/b"), "x");
  EXPECT_EQ(over.status, 413);
  EXPECT_EQ(over.raw, "Upload exceeds quota.");
  // (The test client cannot send an empty header value: the removal header instead.)
  c.swift("POST", c.path("/q"), "", {{"X-Remove-Container-Meta-Quota-Bytes", "x"}});
  EXPECT_EQ(c.swift("PUT", c.path("/q/b"), "x").status, 201);
  EXPECT_EQ(c.swift("PUT", c.path("/q/c"), "x").status, 413) << "the count quota";
  // Account quotas: the reseller admin's to set.
  EXPECT_EQ(c.swift("POST", c.path(), "", {{"X-Account-Meta-Quota-Bytes", "100"}}).status, 403);
  auto reseller = c.reseller();
  EXPECT_EQ(c.swift("POST", c.path(), "", {{"X-Account-Meta-Quota-Bytes", "abc"}}, reseller).status,
            400);
  EXPECT_EQ(c.swift("POST", c.path(), "", {{"X-Account-Meta-Quota-Bytes", "20"}}, reseller).status,
            204);
  EXPECT_EQ(c.swift("HEAD", c.path()).headers.get_or("X-Account-Quota-Bytes"), "20");
  c.swift("PUT", c.path("/other"));
  EXPECT_EQ(c.swift("PUT", c.path("/other/a"), "12345678").status, 201);
  // The account's usage is its containers' totals as last reported (within a second, by the
  // storage servers' totals loop; Swift's container-updater).
  c.report_totals();
  auto account_over = c.swift("PUT", c.path("/other/b"), "123");
  EXPECT_EQ(account_over.status, 413);
  EXPECT_EQ(account_over.raw, "Upload exceeds quota.");
  EXPECT_EQ(
      c.swift("POST", c.path(), "", {{"X-Remove-Account-Meta-Quota-Bytes", "x"}}, reseller).status,
      204);
  EXPECT_EQ(c.swift("PUT", c.path("/other/b"), "123").status, 201);
}

TEST(ObjectStorage, BulkDeleteAndArchiveExtraction) {
  Cloud c;
  auto tar = tar_of({{"photos/a.txt", "alpha"}, {"photos/b/c.txt", "gamma"}, {"top.txt", "x"}});
  auto extracted = c.swift("PUT", c.path("?extract-archive=tar"), tar);
  EXPECT_EQ(extracted.status, 200);
  EXPECT_EQ(extracted.raw,
            "Number Files Created: 2\nResponse Body: \nResponse Status: 201 Created\nErrors:\n");
  EXPECT_EQ(c.swift("GET", c.path("/photos/b/c.txt")).raw, "gamma");
  auto gz = c.swift("PUT", c.path("/photos/sub?extract-archive=tar.gz"),
                    gzip_of(tar_of({{"d.txt", "delta"}})), {{"Accept", "application/json"}});
  EXPECT_EQ(json::parse(gz.raw).as_object().at("Number Files Created"), 1) << gz.raw;
  EXPECT_EQ(c.swift("GET", c.path("/photos/sub/d.txt")).raw, "delta");
  auto junk = c.swift("PUT", c.path("?extract-archive=tar"), "junk");
  EXPECT_NE(junk.raw.find("Response Status: 400 Bad Request"), std::string::npos) << junk.raw;
  EXPECT_EQ(c.swift("PUT", c.path("?extract-archive=zip"), "x").status, 400);
  // Bulk delete: objects first, then containers.
  auto deleted =
      c.swift("POST", c.path("?bulk-delete"),
              "/photos/a.txt\n/photos/b/c.txt\n/photos/sub/d.txt\n/photos\n/photos/gone\n",
              {{"Content-Type", "text/plain"}});
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.raw,
            "Number Deleted: 4\nNumber Not Found: 1\nResponse Body: \nResponse Status: 200 OK\n"
            "Errors:\n");
  EXPECT_EQ(c.swift("HEAD", c.path("/photos")).status, 404);
  auto nothing = c.swift("DELETE", c.path("?bulk-delete"), "", {{"Accept", "application/json"}});
  EXPECT_NE(nothing.raw.find("\"Response Body\": \"Invalid bulk delete.\""), std::string::npos)
      << nothing.raw;
}

}  // namespace

// Swift's CORS: preflights answered from the container's metadata without a token, allowed
// origins get Access-Control-Allow-Origin and the exposed headers on answers and errors alike,
// other origins get the answer without them (strict mode).
TEST(ObjectStorage, CorsPreflightsAndResponsesAsSwift) {
  Cloud c;
  c.swift("PUT", c.path("/web"), "",
          {{"X-Container-Meta-Access-Control-Allow-Origin", "http://a.example http://b.example"},
           {"X-Container-Meta-Access-Control-Max-Age", "60"},
           {"X-Container-Meta-Access-Control-Expose-Headers", "X-Custom"}});
  c.swift("PUT", c.path("/open"), "", {{"X-Container-Meta-Access-Control-Allow-Origin", "*"}});
  auto plain = c.swift("OPTIONS", c.path("/web/page"), "", {}, std::string());
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.headers.get_or("Allow"), "GET, HEAD, PUT, POST, DELETE, COPY, OPTIONS");
  EXPECT_FALSE(plain.headers.get("Access-Control-Allow-Origin"));
  auto preflight = c.swift("OPTIONS", c.path("/web/page"), "",
                           {{"Origin", "http://a.example"},
                            {"Access-Control-Request-Method", "PUT"},
                            {"Access-Control-Request-Headers", "x-auth-token, content-type"}},
                           std::string());
  EXPECT_EQ(preflight.status, 200);
  EXPECT_EQ(preflight.headers.get_or("Access-Control-Allow-Origin"), "http://a.example");
  EXPECT_EQ(preflight.headers.get_or("Access-Control-Max-Age"), "60");
  EXPECT_EQ(preflight.headers.get_or("Access-Control-Allow-Headers"), "content-type, x-auth-token");
  EXPECT_NE(preflight.headers.get_or("Access-Control-Allow-Methods").find("PUT"),
            std::string::npos);
  EXPECT_EQ(preflight.headers.get_or("Vary"), "Origin, Access-Control-Request-Headers");
  EXPECT_EQ(c.swift("OPTIONS", c.path("/web/page"), "",
                    {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "GET"}},
                    std::string())
                .status,
            401);
  EXPECT_EQ(c.swift("OPTIONS", c.path("/web/page"), "",
                    {{"Origin", "http://a.example"}, {"Access-Control-Request-Method", "PATCH"}},
                    std::string())
                .status,
            401);
  auto wildcard = c.swift(
      "OPTIONS", c.path("/open"), "",
      {{"Origin", "http://z.example"}, {"Access-Control-Request-Method", "GET"}}, std::string());
  EXPECT_EQ(wildcard.status, 200);
  EXPECT_EQ(wildcard.headers.get_or("Access-Control-Allow-Origin"), "*");
  // Actual requests: an object PUT (streamed), a GET, an error, another origin.
  auto put = c.swift("PUT", c.path("/web/page"), "<html/>",
                     {{"Origin", "http://b.example"}, {"X-Object-Meta-Color", "red"}});
  EXPECT_EQ(put.status, 201);
  EXPECT_EQ(put.headers.get_or("Access-Control-Allow-Origin"), "http://b.example");
  auto get = c.swift("GET", c.path("/web/page"), "", {{"Origin", "http://a.example"}});
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.headers.get_or("Access-Control-Allow-Origin"), "http://a.example");
  EXPECT_EQ(get.headers.get_or("Vary"), "Origin");
  auto expose = std::string(get.headers.get_or("Access-Control-Expose-Headers"));
  for (auto* h : {"etag", "x-trans-id", "x-object-meta-color", "x-custom"})
    EXPECT_NE(expose.find(h), std::string::npos) << h << " in " << expose;
  auto missing = c.swift("GET", c.path("/web/nothing"), "", {{"Origin", "http://a.example"}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers.get_or("Access-Control-Allow-Origin"), "http://a.example");
  auto other = c.swift("GET", c.path("/web/page"), "", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(other.status, 200);
  EXPECT_FALSE(other.headers.get("Access-Control-Allow-Origin"));
  EXPECT_EQ(c.swift("GET", c.path("/open/x"), "", {{"Origin", "http://z.example"}})
                .headers.get_or("Access-Control-Allow-Origin"),
            "*");
}
