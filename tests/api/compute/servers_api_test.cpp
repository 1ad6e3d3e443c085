// Servers over real HTTP on the whole control plane: the compute API, the in-process bus, the
// conductor and scheduler with placement, and agents on the fake driver. Images come from an
// in-memory image client (the image service has its own tests).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/http/client.hpp"
#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "compute/api/service.hpp"
#include "compute/metadata/api.hpp"
#include "compute/metadata/content.hpp"
#include "compute/metadata/relay.hpp"
#include "compute/placement/local_client.hpp"
#include "compute/placement/setup.hpp"
#include "compute/setup.hpp"
#include "compute/virt/fake/fake_driver.hpp"
#include "main/local_network_client.hpp"
#include "network/setup.hpp"
#include "tests/api/support/identity_cloud.hpp"

using namespace nubo;
using apitest::Reply;
namespace fs = std::filesystem;

namespace {

const std::string kImage = "11111111-2222-3333-4444-555555555555";
const std::string kQueuedImage = "11111111-2222-3333-4444-000000000000";

// The image service as compute sees it: two fixed images, and the snapshots compute makes
// (their records, their uploaded bytes, their removal).
class FakeImages : public compute::ImageClient {
 public:
  std::optional<compute::ImageInfo> show(const AuthContext&, const std::string& id) override {
    if (id == kImage)
      return compute::ImageInfo{id,
                                "cirros",
                                "active",
                                0,
                                0,
                                1 << 20,
                                json::object{{"disk_format", "raw"}, {"hw_rng_model", "virtio"}}};
    if (id == kQueuedImage) return compute::ImageInfo{id, "empty", "queued", 0, 0, 0, {}};
    return std::nullopt;
  }
  json::object create(const AuthContext& auth, const json::object& body) override {
    std::lock_guard lock(mu_);
    auto image = body;
    image["id"] = uuid4();
    image["owner"] = auth.project_id;
    image["status"] = "queued";
    made_.push_back(image);
    return image;
  }
  void upload(const std::string& id, const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::lock_guard lock(mu_);
    for (auto& i : made_)
      if (i.at("id").as_string() == id) {
        i["status"] = "active";
        data_[id] = data;
        return;
      }
    throw std::runtime_error("no image " + id);
  }
  json::object download(const std::string& id, const std::string&) override {
    throw std::runtime_error("no data for image " + id + " in this test double");
  }
  std::vector<json::object> find(
      const std::vector<std::pair<std::string, std::string>>& properties) override {
    std::lock_guard lock(mu_);
    std::vector<json::object> out;
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      bool match = true;
      for (auto& [k, v] : properties) match = match && string_or(*it, k) == v;
      if (match) out.push_back(*it);
    }
    return out;
  }
  void remove(const std::string& id) override {
    std::lock_guard lock(mu_);
    std::erase_if(made_, [&](const json::object& i) { return i.at("id").as_string() == id; });
    data_.erase(id);
  }
  std::string location(const std::string& id) const override {
    return "http://images.test/images/" + id;
  }
  std::optional<json::object> get(const AuthContext&, const std::string& id) override {
    return made(id);
  }
  std::vector<json::object> list(
      const AuthContext&, const std::vector<std::pair<std::string, std::string>>& f) override {
    return find(f);
  }
  void remove(const AuthContext&, const std::string& id) override { remove(id); }
  json::object set_properties(const AuthContext&, const std::string& id, const json::object& set,
                              const std::vector<std::string>& unset) override {
    std::lock_guard lock(mu_);
    for (auto& i : made_)
      if (i.at("id").as_string() == id) {
        for (auto& kv : set) i[kv.key()] = kv.value();
        for (auto& k : unset) i.erase(k);
        return i;
      }
    throw NotFound("Image not found.");
  }
  std::optional<json::object> made(const std::string& id) {
    std::lock_guard lock(mu_);
    for (auto& i : made_)
      if (i.at("id").as_string() == id) return i;
    return std::nullopt;
  }
  std::string data(const std::string& id) {
    std::lock_guard lock(mu_);
    return data_[id];
  }

 private:
  std::mutex mu_;
  std::vector<json::object> made_;
  std::map<std::string, std::string> data_;
};

class Cloud : public apitest::IdentityCloud {
 public:
  explicit Cloud(int fake_hosts = 2, const std::string& extra_config = "") {
    dir_ = fs::temp_directory_path() / ("nubo-servers-api-" + uuid4_hex());
    config_ =
        Config::parse("[compute]\nfake_hosts = " + std::to_string(fake_hosts) +
                      "\n[fake]\nvcpus = 4\nmemory_mb = 8192\nlocal_gb = 100\n" + extra_config);
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url) {
      config_.set("database", "compute_connection", url);
      config_.set("database", "placement_connection", url);
    }
    compute_ = compute::open_compute_service(config_, dir_.string());
    compute_->set_image_client(images_);
    placement_ = std::make_shared<placement::LocalPlacementClient>(
        placement::open_placement_service(config_, dir_.string()));
    start_plane();
    runtime_ = std::make_unique<Runtime>(1, 4);
    pipeline_ =
        std::make_shared<Pipeline>(compute::api::make_service_spec(compute_, service_ptr()));
    ServerOptions opts;
    opts.render_error = [](int status, const std::string& m) {
      return render_nova_error(ApiError(status, m));
    };
    url_ = "http://127.0.0.1:" + std::to_string(listen_pipeline(*runtime_, opts, pipeline_));
    ServerOptions metadata_opts;
    metadata_opts.render_error = [](int status, const std::string& m) {
      return compute::metadata::render_error(ApiError(status, m));
    };
    metadata_url_ =
        "http://127.0.0.1:" +
        std::to_string(listen_pipeline(
            *runtime_, metadata_opts,
            std::make_shared<Pipeline>(compute::metadata::make_service_spec(compute_, kSecret))));
    runtime_->start();
    admin_ = token();
  }
  ~Cloud() {
    runtime_->stop(std::chrono::seconds(2));
    plane_.reset();
    fs::remove_all(dir_);
  }
  void start_plane() {
    plane_ = compute::start_control_plane(config_, dir_.string(), compute_, placement_);
    compute_->heartbeat();
  }
  // Stops the conductor and agents as a crash would leave them (records stay as they are).
  void stop_plane() { plane_.reset(); }
  // The servers a fake host runs (its driver's state, read while the plane is stopped).
  std::vector<std::string> fake_servers(const std::string& host) {
    compute::FakeDriver probe(host, 1, 1, 1, dir_ / "fake" / host);
    return probe.list_instances();
  }

  Reply nova(const std::string& method, const std::string& path, const std::string& token,
             const json::object& body = {}, const std::string& version = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!version.empty()) headers.push_back({"OpenStack-API-Version", "compute " + version});
    return client_.request(url_ + path, method, token, body.empty() ? "" : json::serialize(body),
                           body.empty() ? "" : "application/json", headers);
  }
  std::string member(const std::string& name) {
    auto p = call("POST", "/v3/projects", admin_,
                  json::object{{"project", json::object{{"name", name}}}});
    std::string project(p.body.at("project").as_object().at("id").as_string());
    auto u = call("POST", "/v3/users", admin_,
                  json::object{{"user", json::object{{"name", name}, {"password", "pw-" + name}}}});
    std::string user(u.body.at("user").as_object().at("id").as_string());
    auto roles = call("GET", "/v3/roles?name=member", admin_);
    std::string role(roles.body.at("roles").as_array()[0].as_object().at("id").as_string());
    call("PUT", "/v3/projects/" + project + "/users/" + user + "/roles/" + role, admin_);
    projects_[name] = project;
    return token(name, "pw-" + name, name);
  }
  const std::string& admin() const { return admin_; }
  std::string project(const std::string& name) { return projects_[name]; }

  // Creates a server and returns its id (expects 202).
  std::string boot(const std::string& token, const std::string& name,
                   const std::string& flavor = "1", json::object extra = {}) {
    json::object server{{"name", name}, {"flavorRef", flavor}, {"imageRef", kImage}};
    for (auto& kv : extra) server[kv.key()] = kv.value();
    auto r = nova("POST", "/v2.1/servers", token, json::object{{"server", server}});
    EXPECT_EQ(r.status, 202) << r.raw;
    if (r.status != 202) return {};
    return std::string(r.body.at("server").as_object().at("id").as_string());
  }
  // Polls until the server shows `status` (or 404 when status is "GONE"); returns the last view.
  json::object wait_for(const std::string& token, const std::string& id, const std::string& status,
                        const std::string& version = "2.1") {
    json::object last;
    for (int i = 0; i < 500; ++i) {
      auto r = nova("GET", "/v2.1/servers/" + id, token, {}, version);
      if (status == "GONE" && r.status == 404) return {};
      if (r.status == 200) {
        last = r.body.at("server").as_object();
        if (last.at("status").as_string() == status) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "server " << id << " never reached " << status << ": "
                  << json::serialize(last);
    return last;
  }
  static constexpr const char* kSecret = "metadata-test-secret";
  const std::string& metadata_url() const { return metadata_url_; }
  // A request to the metadata service as a proxy sends it for `instance` (signed unless a
  // signature is given).
  http::ClientResponse metadata(const std::string& path, const std::string& instance,
                                const std::string& tenant,
                                std::optional<std::string> signature = {},
                                const std::string& method = "GET", const std::string& body = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!instance.empty()) {
      headers.emplace_back("X-Instance-ID", instance);
      headers.emplace_back("X-Instance-ID-Signature",
                           signature.value_or(compute::metadata::sign(kSecret, instance)));
      headers.emplace_back("X-Tenant-ID", tenant);
    }
    http::Client client;
    return client.request(method, metadata_url_ + path, headers, body);
  }
  placement::PlacementClient& placement() { return *placement_; }
  FakeImages& images() { return *images_; }
  const fs::path& dir() const { return dir_; }

  // The network service in this process, as the all-in-one wires it: compute makes its servers'
  // ports there and hears its events.
  network::NetworkService& with_network() {
    network_ = network::open_network_service(config_, dir_.string());
    compute_->set_network_client(std::make_shared<LocalNetworkClient>(network_, nullptr));
    network_->set_compute_notifier(
        [c = compute_](const json::array& events) { c->external_events(events); });
    return *network_;
  }
  network::NetworkService& network() { return *network_; }
  // A network with one subnet in a project; returns its id.
  std::string make_network(const std::string& project, const std::string& name,
                           const std::string& cidr, bool shared = false) {
    AuthContext auth;
    auth.project_id = project;
    auth.roles = {"admin"};
    Caller c{auth, [](const std::string&, const PolicyTarget&) { return true; }};
    auto n =
        network_->create(c, network::Kind::network,
                         json::object{{"name", name}, {"project_id", project}, {"shared", shared}});
    std::string id(n.at("id").as_string());
    network_->create(
        c, network::Kind::subnet,
        json::object{
            {"network_id", id}, {"cidr", cidr}, {"ip_version", 4}, {"project_id", project}});
    return id;
  }
  // Ports as the network service has them, by filters (its own rights).
  std::vector<json::object> ports(const std::string& key, const std::string& value) {
    LocalNetworkClient client(network_, nullptr);
    return client.list(nullptr, "ports", {{key, value}});
  }

 private:
  std::shared_ptr<network::NetworkService> network_;
  std::shared_ptr<FakeImages> images_ = std::make_shared<FakeImages>();
  fs::path dir_;
  Config config_;
  std::shared_ptr<compute::ComputeService> compute_;
  std::shared_ptr<placement::PlacementClient> placement_;
  std::unique_ptr<compute::ControlPlane> plane_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Pipeline> pipeline_;
  std::string url_, admin_, metadata_url_;
  std::map<std::string, std::string> projects_;
  apitest::ApiClient client_;
};

std::string str(const json::object& o, const char* key) {
  return std::string(o.at(key).as_string());
}

std::set<std::string> keys(const json::object& o) {
  std::set<std::string> out;
  for (auto& kv : o) out.insert(std::string(kv.key()));
  return out;
}

TEST(Servers, BootReachesActiveOnAFakeHostAndDeleteFreesIt) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto r = cloud.nova(
      "POST", "/v2.1/servers", alice,
      json::object{{"server", json::object{{"name", "web 1"},
                                           {"flavorRef", "1"},
                                           {"imageRef", kImage},
                                           {"metadata", json::object{{"role", "web"}}}}}});
  ASSERT_EQ(r.status, 202) << r.raw;
  auto& created = r.body.at("server").as_object();
  EXPECT_EQ(keys(created), (std::set<std::string>{"id", "links", "OS-DCF:diskConfig", "adminPass",
                                                  "security_groups"}));
  EXPECT_TRUE(r.headers.get("Location").has_value());
  auto id = str(created, "id");

  auto server = cloud.wait_for(alice, id, "ACTIVE");
  // Nova's 2.1 detail view for a project member: no admin-only attributes, no later fields.
  EXPECT_EQ(keys(server), (std::set<std::string>{"id",
                                                 "name",
                                                 "status",
                                                 "tenant_id",
                                                 "user_id",
                                                 "metadata",
                                                 "hostId",
                                                 "image",
                                                 "flavor",
                                                 "created",
                                                 "updated",
                                                 "addresses",
                                                 "accessIPv4",
                                                 "accessIPv6",
                                                 "links",
                                                 "OS-DCF:diskConfig",
                                                 "progress",
                                                 "key_name",
                                                 "security_groups",
                                                 "OS-SRV-USG:launched_at",
                                                 "OS-SRV-USG:terminated_at",
                                                 "OS-EXT-AZ:availability_zone",
                                                 "config_drive",
                                                 "OS-EXT-STS:task_state",
                                                 "OS-EXT-STS:vm_state",
                                                 "OS-EXT-STS:power_state",
                                                 "os-extended-volumes:volumes_attached"}));
  EXPECT_EQ(server.at("OS-EXT-STS:power_state").as_int64(), 1);
  EXPECT_EQ(server.at("OS-EXT-AZ:availability_zone").as_string(), "nova");
  EXPECT_EQ(server.at("metadata").as_object().at("role").as_string(), "web");
  EXPECT_EQ(server.at("hostId").as_string().size(), 56u);  // sha224 hex of project and host

  // The admin sees where it runs; placement holds its flavor there.
  auto admin_view = cloud.nova("GET", "/v2.1/servers/" + id, cloud.admin(), {}, "2.3")
                        .body.at("server")
                        .as_object();
  auto host = str(admin_view, "OS-EXT-SRV-ATTR:host");
  EXPECT_TRUE(host == "fake-host-1" || host == "fake-host-2") << host;
  EXPECT_EQ(str(admin_view, "OS-EXT-SRV-ATTR:instance_name").rfind("instance-", 0), 0u);
  auto held = cloud.placement().allocations(id);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held.begin()->second.at("MEMORY_MB"), 512);
  EXPECT_EQ(held.begin()->second.at("VCPU"), 1);

  // Instance actions record the create, with its events for the admin.
  auto actions = cloud.nova("GET", "/v2.1/servers/" + id + "/os-instance-actions", alice);
  ASSERT_EQ(actions.status, 200) << actions.raw;
  auto& list = actions.body.at("instanceActions").as_array();
  ASSERT_EQ(list.size(), 1u);
  auto request_id = str(list[0].as_object(), "request_id");
  auto action = cloud.nova("GET", "/v2.1/servers/" + id + "/os-instance-actions/" + request_id,
                           cloud.admin());
  ASSERT_EQ(action.status, 200) << action.raw;
  auto& events = action.body.at("instanceAction").as_object().at("events").as_array();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().as_object().at("result").as_string(), "Success");

  ASSERT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id, alice).status, 204);
  cloud.wait_for(alice, id, "GONE");
  // Placement lets go before the record says deleted.
  EXPECT_TRUE(cloud.placement().allocations(id).empty());
  // Deleted servers are listed to admins who ask for them, and in changes-since.
  auto deleted =
      cloud.nova("GET", "/v2.1/servers/detail?deleted=true&all_tenants=1", cloud.admin());
  ASSERT_EQ(deleted.status, 200) << deleted.raw;
  ASSERT_EQ(deleted.body.at("servers").as_array().size(), 1u);
  EXPECT_EQ(deleted.body.at("servers").as_array()[0].as_object().at("status").as_string(),
            "DELETED");
}

TEST(Servers, PowerActionsMoveThroughNovasStatesAndLockGuardsThem) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  cloud.wait_for(alice, id, "ACTIVE");
  auto act = [&](const json::object& body, const std::string& token) {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/action", token, body);
  };
  ASSERT_EQ(act({{"os-stop", nullptr}}, alice).status, 202);
  auto s = cloud.wait_for(alice, id, "SHUTOFF");
  EXPECT_EQ(s.at("OS-EXT-STS:power_state").as_int64(), 4);
  // Stopping a stopped server is a conflict, in Nova's words.
  auto again = act({{"os-stop", nullptr}}, alice);
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.raw.find("Cannot 'stop' instance"), std::string::npos) << again.raw;
  ASSERT_EQ(act({{"os-start", nullptr}}, alice).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");
  ASSERT_EQ(act({{"reboot", json::object{{"type", "HARD"}}}}, alice).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");
  ASSERT_EQ(act({{"pause", nullptr}}, alice).status, 202);
  EXPECT_EQ(cloud.wait_for(alice, id, "PAUSED").at("OS-EXT-STS:power_state").as_int64(), 3);
  ASSERT_EQ(act({{"unpause", nullptr}}, alice).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");
  ASSERT_EQ(act({{"suspend", nullptr}}, alice).status, 202);
  EXPECT_EQ(cloud.wait_for(alice, id, "SUSPENDED").at("OS-EXT-STS:power_state").as_int64(), 7);
  ASSERT_EQ(act({{"resume", nullptr}}, alice).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");
  auto rescue = act({{"rescue", nullptr}}, alice);
  ASSERT_EQ(rescue.status, 200) << rescue.raw;
  EXPECT_TRUE(rescue.body.contains("adminPass"));
  cloud.wait_for(alice, id, "RESCUE");
  ASSERT_EQ(act({{"unrescue", nullptr}}, alice).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");

  // An admin lock stops the owner's actions and deletes.
  ASSERT_EQ(act({{"lock", nullptr}}, cloud.admin()).status, 202);
  EXPECT_EQ(act({{"os-stop", nullptr}}, alice).status, 409);
  EXPECT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id, alice).status, 409);
  EXPECT_TRUE(cloud.nova("GET", "/v2.1/servers/" + id, alice, {}, "2.9")
                  .body.at("server")
                  .as_object()
                  .at("locked")
                  .as_bool());
  ASSERT_EQ(act({{"unlock", nullptr}}, cloud.admin()).status, 202);

  std::multiset<std::string> names;
  auto history = cloud.nova("GET", "/v2.1/servers/" + id + "/os-instance-actions", alice);
  for (auto& a : history.body.at("instanceActions").as_array())
    names.insert(str(a.as_object(), "action"));
  for (auto* n : {"create", "stop", "start", "reboot", "pause", "unpause", "suspend", "resume",
                  "rescue", "unrescue", "lock", "unlock"})
    EXPECT_EQ(names.count(n), 1u) << n;

  auto console = act({{"os-getConsoleOutput", json::object{{"length", 1}}}}, alice);
  ASSERT_EQ(console.status, 200) << console.raw;
  EXPECT_EQ(console.body.at("output").as_string(), "LAST LINE");
}

TEST(Servers, SnapshotsAndBackupsGoIntoTheImageServiceAndBackupsRotate) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  cloud.wait_for(alice, id, "ACTIVE");
  auto act = [&](const json::object& body, const std::string& version = "2.1") {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice, body, version);
  };
  // From 2.45 the image id comes in the body.
  auto r = act({{"createImage",
                 json::object{{"name", "snap"}, {"metadata", json::object{{"purpose", "test"}}}}}},
               "2.45");
  ASSERT_EQ(r.status, 202) << r.raw;
  auto image_id = str(r.body, "image_id");
  // Nova names the request id twice; Tempest finds instance actions by X-Compute-Request-Id.
  EXPECT_EQ(r.headers.get("X-Compute-Request-Id").value_or("none"),
            r.headers.get("X-OpenStack-Request-Id").value_or("other"));
  for (int i = 0; i < 500 && cloud.images().made(image_id) &&
                  str(*cloud.images().made(image_id), "status") != "active";
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto image = cloud.images().made(image_id);
  ASSERT_TRUE(image);
  SCOPED_TRACE(json::serialize(*image));
  EXPECT_EQ(str(*image, "status"), "active");
  EXPECT_EQ(str(*image, "name"), "snap");
  EXPECT_EQ(str(*image, "instance_uuid"), id);
  EXPECT_EQ(str(*image, "image_type"), "snapshot");
  EXPECT_EQ(str(*image, "base_image_ref"), kImage);
  EXPECT_EQ(str(*image, "purpose"), "test");
  EXPECT_EQ(str(*image, "hw_rng_model"), "virtio");  // inherited from the base image
  EXPECT_EQ(str(*image, "visibility"), "private");
  EXPECT_EQ(str(*image, "owner"), cloud.project("alice"));
  EXPECT_NE(cloud.images().data(image_id).find("disk of " + id), std::string::npos);
  // The server stays ACTIVE throughout, and its task ends.
  auto idle = [&] {
    for (int w = 0; w < 500; ++w) {
      auto v = cloud.nova("GET", "/v2.1/servers/" + id, alice);
      if (v.body.at("server").as_object().at("OS-EXT-STS:task_state").is_null()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  EXPECT_TRUE(idle());
  EXPECT_EQ(str(cloud.wait_for(alice, id, "ACTIVE"), "OS-EXT-STS:vm_state"), "active");
  // The driver's snapshot file is gone once uploaded.
  for (auto& e : fs::recursive_directory_iterator(cloud.dir()))
    EXPECT_EQ(e.path().string().find(".snapshot"), std::string::npos) << e.path();

  // The image proxy (before 2.36) shows the snapshot as Nova did, and changes its metadata.
  auto shown = cloud.nova("GET", "/v2.1/images/" + image_id, alice);
  ASSERT_EQ(shown.status, 200) << shown.raw;
  auto& view = shown.body.at("image").as_object();
  EXPECT_EQ(str(view, "status"), "ACTIVE");
  EXPECT_EQ(view.at("progress").as_int64(), 100);
  EXPECT_EQ(view.at("minDisk").as_int64(), 1);
  EXPECT_EQ(str(view.at("server").as_object(), "id"), id);
  EXPECT_EQ(str(view.at("metadata").as_object(), "purpose"), "test");
  EXPECT_EQ(cloud.nova("GET", "/v2.1/images/" + image_id, alice, {}, "2.36").status, 404);
  auto listed = cloud.nova("GET", "/v2.1/images/detail?server=" + id, alice);
  ASSERT_EQ(listed.status, 200) << listed.raw;
  EXPECT_EQ(listed.body.at("images").as_array().size(), 1u);
  auto key = cloud.nova("PUT", "/v2.1/images/" + image_id + "/metadata/color", alice,
                        json::object{{"meta", json::object{{"color", "blue"}}}});
  ASSERT_EQ(key.status, 200) << key.raw;
  EXPECT_EQ(str(*cloud.images().made(image_id), "color"), "blue");
  EXPECT_EQ(cloud
                .nova("PUT", "/v2.1/images/" + image_id + "/metadata/color", alice,
                      json::object{{"meta", json::object{{"other", "x"}}}})
                .status,
            400);
  EXPECT_EQ(cloud.nova("DELETE", "/v2.1/images/" + image_id + "/metadata/color", alice).status,
            204);
  EXPECT_FALSE(cloud.images().made(image_id)->contains("color"));

  // Before 2.45 the image is named in a Location header; a stopped server can be snapshotted.
  ASSERT_EQ(act({{"os-stop", nullptr}}).status, 202);
  cloud.wait_for(alice, id, "SHUTOFF");
  r = act({{"createImage", json::object{{"name", "snap2"}}}});
  ASSERT_EQ(r.status, 202) << r.raw;
  auto location = std::string(r.headers.get("Location").value_or(""));
  ASSERT_EQ(location.rfind("http://images.test/images/", 0), 0u) << location;
  EXPECT_TRUE(cloud.images().made(location.substr(location.rfind('/') + 1)));
  ASSERT_TRUE(idle());
  EXPECT_EQ(str(cloud.wait_for(alice, id, "SHUTOFF"), "OS-EXT-STS:vm_state"), "stopped");

  // Backups of one type keep the newest `rotation`.
  std::vector<std::string> backups;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(idle());
    r = act({{"createBackup", json::object{{"name", "daily-" + std::to_string(i)},
                                           {"backup_type", "daily"},
                                           {"rotation", 2}}}},
            "2.45");
    ASSERT_EQ(r.status, 202) << r.raw;
    backups.push_back(str(r.body, "image_id"));
  }
  for (int w = 0; w < 500 && cloud.images().made(backups[0]); ++w)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(cloud.images().made(backups[0]));
  EXPECT_TRUE(cloud.images().made(backups[1]));
  EXPECT_TRUE(cloud.images().made(backups[2]));
  EXPECT_EQ(str(*cloud.images().made(backups[2]), "backup_type"), "daily");

  // Bad input and wrong states, in Nova's words.
  EXPECT_EQ(act({{"createImage", json::object{}}}).status, 400);
  EXPECT_EQ(act({{"createBackup", json::object{{"name", "b"}, {"backup_type", "daily"}}}}).status,
            400);
  EXPECT_EQ(act({{"createBackup",
                  json::object{{"name", "b"}, {"backup_type", "daily"}, {"rotation", -1}}}})
                .status,
            400);
  ASSERT_TRUE(idle());
  ASSERT_EQ(act({{"shelve", nullptr}}).status, 202);
  cloud.wait_for(alice, id, "SHELVED_OFFLOADED");
  auto conflict = act({{"createImage", json::object{{"name", "late"}}}});
  EXPECT_EQ(conflict.status, 409) << conflict.raw;
  EXPECT_NE(conflict.raw.find("Cannot 'createImage' instance"), std::string::npos);
  // Shelving kept the disk as <name>-shelved; unshelving boots it and removes it.
  auto kept = cloud.images().find({{"name", "vm-shelved"}, {"instance_uuid", id}});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(str(kept[0], "status"), "active");
  ASSERT_EQ(act({{"unshelve", nullptr}}).status, 202);
  cloud.wait_for(alice, id, "ACTIVE");
  for (int w = 0; w < 500 && cloud.images().made(str(kept[0], "id")); ++w)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(cloud.images().made(str(kept[0], "id")));
  std::multiset<std::string> names;
  auto history = cloud.nova("GET", "/v2.1/servers/" + id + "/os-instance-actions", alice);
  for (auto& a : history.body.at("instanceActions").as_array())
    names.insert(str(a.as_object(), "action"));
  EXPECT_EQ(names.count("createImage"), 2u);
  EXPECT_EQ(names.count("unshelve"), 1u);
  EXPECT_EQ(cloud.nova("DELETE", "/v2.1/images/" + image_id, alice).status, 204);
  EXPECT_EQ(cloud.nova("GET", "/v2.1/images/" + image_id, alice).status, 404);
  EXPECT_EQ(names.count("createBackup"), 3u);
}

TEST(Servers, OneServersSlowWorkDoesNotHoldUpAnotherOnTheSameHost) {
  // One host whose snapshots take 2 s: a boot on it finishes while the snapshot still runs (the
  // agent works on each server in order, and on different servers side by side).
  Cloud cloud(1, "snapshot_seconds = 2\n");
  auto alice = cloud.member("alice");
  auto slow = cloud.boot(alice, "slow");
  cloud.wait_for(alice, slow, "ACTIVE");
  auto r = cloud.nova("POST", "/v2.1/servers/" + slow + "/action", alice,
                      json::object{{"createImage", json::object{{"name", "snap"}}}}, "2.45");
  ASSERT_EQ(r.status, 202) << r.raw;
  auto image_id = str(r.body, "image_id");
  auto quick = cloud.boot(alice, "quick");
  cloud.wait_for(alice, quick, "ACTIVE");
  auto during = cloud.nova("GET", "/v2.1/servers/" + slow, alice).body.at("server").as_object();
  EXPECT_FALSE(during.at("OS-EXT-STS:task_state").is_null())
      << "the snapshot ended before the boot: " << json::serialize(during);
  // The snapshot still finishes.
  for (int i = 0; i < 500 && !(cloud.images().made(image_id) &&
                               str(*cloud.images().made(image_id), "status") == "active");
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(cloud.images().made(image_id));
  EXPECT_EQ(str(*cloud.images().made(image_id), "status"), "active");
}

TEST(Servers, ResizeConfirmAndRevertMoveTheClaims) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  cloud.wait_for(alice, id, "ACTIVE");
  auto act = [&](const json::object& body) {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice, body);
  };
  ASSERT_EQ(act({{"resize", json::object{{"flavorRef", "2"}}}}).status, 202);
  auto s = cloud.wait_for(alice, id, "VERIFY_RESIZE", "2.47");
  EXPECT_EQ(s.at("flavor").as_object().at("ram").as_int64(), 2048);
  // During verification the old flavor's room is still held (by the migration).
  std::int64_t memory = 0;
  for (auto& [provider, rcs] : cloud.placement().allocations(id)) memory += rcs.at("MEMORY_MB");
  EXPECT_EQ(memory, 2048);
  ASSERT_EQ(act({{"revertResize", nullptr}}).status, 202);
  s = cloud.wait_for(alice, id, "ACTIVE", "2.47");
  EXPECT_EQ(s.at("flavor").as_object().at("ram").as_int64(), 512);
  memory = 0;
  for (auto& [provider, rcs] : cloud.placement().allocations(id)) memory += rcs.at("MEMORY_MB");
  EXPECT_EQ(memory, 512);

  ASSERT_EQ(act({{"resize", json::object{{"flavorRef", "2"}}}}).status, 202);
  cloud.wait_for(alice, id, "VERIFY_RESIZE");
  ASSERT_EQ(act({{"confirmResize", nullptr}}).status, 204);
  s = cloud.wait_for(alice, id, "ACTIVE", "2.47");
  EXPECT_EQ(s.at("flavor").as_object().at("ram").as_int64(), 2048);
  // Both resizes are in os-migrations, newest first, with what became of them.
  auto migrations =
      cloud.nova("GET", "/v2.1/os-migrations?instance_uuid=" + id, cloud.admin(), {}, "2.59");
  ASSERT_EQ(migrations.status, 200) << migrations.raw;
  auto& list = migrations.body.at("migrations").as_array();
  ASSERT_EQ(list.size(), 2u) << migrations.raw;
  EXPECT_EQ(list[0].as_object().at("status").as_string(), "confirmed");
  EXPECT_EQ(list[1].as_object().at("status").as_string(), "reverted");
  EXPECT_EQ(list[0].as_object().at("migration_type").as_string(), "resize");
  EXPECT_EQ(list[0].as_object().at("new_instance_type_id").as_int64(), 2);
  EXPECT_EQ(cloud.nova("GET", "/v2.1/os-migrations", alice).status, 403);
  // Resizing to the flavor it has is refused.
  EXPECT_EQ(act({{"resize", json::object{{"flavorRef", "2"}}}}).status, 400);
}

TEST(Servers, LiveMigrationMovesARunningServerAndItsClaim) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  cloud.wait_for(alice, id, "ACTIVE");
  auto live = [&](const json::object& args, const std::string& version = "2.30",
                  const std::string& token = {}) {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/action",
                      token.empty() ? cloud.admin() : token, json::object{{"os-migrateLive", args}},
                      version);
  };
  auto host_of = [&] {
    return str(cloud.wait_for(cloud.admin(), id, "ACTIVE"), "OS-EXT-SRV-ATTR:host");
  };
  auto source = host_of();
  auto other = source == "fake-host-1" ? "fake-host-2" : "fake-host-1";
  // Admin only; Nova's schema per microversion; a named host must be another compute host.
  EXPECT_EQ(live({{"host", nullptr}, {"block_migration", "auto"}}, "2.30", alice).status, 403);
  EXPECT_EQ(live({{"host", nullptr}}).status, 400);
  EXPECT_EQ(live({{"host", nullptr}, {"block_migration", "auto"}}, "2.24").status, 400);
  EXPECT_EQ(live({{"host", nullptr}, {"block_migration", false}}, "2.24").status, 400);
  EXPECT_EQ(live({{"host", nullptr}, {"block_migration", false}, {"force", false}}, "2.68").status,
            400);
  EXPECT_EQ(live({{"host", "nowhere"}, {"block_migration", "auto"}}).status, 400);
  EXPECT_EQ(live({{"host", source}, {"block_migration", "auto"}}).status, 400);

  ASSERT_EQ(live({{"host", nullptr}, {"block_migration", "auto"}}).status, 202);
  EXPECT_EQ(host_of(), other);
  // The claim moved with it: one provider, the server's own, and no migration holding room.
  auto held = cloud.placement().allocations(id);
  ASSERT_EQ(held.size(), 1u);
  auto migrations =
      cloud.nova("GET", "/v2.1/os-migrations?instance_uuid=" + id, cloud.admin(), {}, "2.59");
  ASSERT_EQ(migrations.status, 200) << migrations.raw;
  auto& m = migrations.body.at("migrations").as_array().at(0).as_object();
  EXPECT_EQ(str(m, "migration_type"), "live-migration");
  EXPECT_EQ(str(m, "status"), "completed");
  EXPECT_EQ(str(m, "source_compute"), source);
  EXPECT_EQ(str(m, "dest_compute"), other);
  EXPECT_TRUE(cloud.placement().allocations(str(m, "uuid")).empty());

  // A paused server moves back, named, at 2.1 (disk_over_commit then required), still paused.
  ASSERT_EQ(
      cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice, json::object{{"pause", nullptr}})
          .status,
      202);
  cloud.wait_for(alice, id, "PAUSED");
  auto back =
      live({{"host", source}, {"block_migration", false}, {"disk_over_commit", false}}, "2.1");
  ASSERT_EQ(back.status, 202) << back.raw;
  auto view = cloud.wait_for(cloud.admin(), id, "PAUSED");
  for (int i = 0; i < 200 && str(view, "OS-EXT-SRV-ATTR:host") != source; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    view = cloud.wait_for(cloud.admin(), id, "PAUSED");
  }
  EXPECT_EQ(str(view, "OS-EXT-SRV-ATTR:host"), source);
  // A stopped server does not live-migrate.
  cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice, json::object{{"unpause", nullptr}});
  cloud.wait_for(alice, id, "ACTIVE");
  cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice, json::object{{"os-stop", nullptr}});
  cloud.wait_for(alice, id, "SHUTOFF");
  EXPECT_EQ(live({{"host", nullptr}, {"block_migration", "auto"}}).status, 409);
}

TEST(Servers, EvacuateRecreatesTheServerOfADeadHostElsewhere) {
  Cloud cloud(3);
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  auto source = str(cloud.wait_for(cloud.admin(), id, "ACTIVE"), "OS-EXT-SRV-ATTR:host");
  auto evacuate = [&](const json::object& args, const std::string& version,
                      const std::string& token = {}) {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/action",
                      token.empty() ? cloud.admin() : token, json::object{{"evacuate", args}},
                      version);
  };
  auto other = source == "fake-host-1" ? "fake-host-2" : "fake-host-1";
  // Admin only; Nova's schema per microversion; a named host must exist and be another one.
  EXPECT_EQ(evacuate({}, "2.14", alice).status, 403);
  EXPECT_EQ(evacuate({}, "2.1").status, 400);  // onSharedStorage required before 2.14
  EXPECT_EQ(evacuate({{"onSharedStorage", true}}, "2.14").status, 400);
  EXPECT_EQ(evacuate({{"onSharedStorage", "maybe"}}, "2.1").status, 400);
  auto shared_pass = evacuate({{"onSharedStorage", true}, {"adminPass", "x"}}, "2.1");
  EXPECT_EQ(shared_pass.status, 400);
  EXPECT_NE(shared_pass.raw.find("admin password can't be changed on existing disk"),
            std::string::npos);
  EXPECT_EQ(evacuate({{"force", true}}, "2.29").status, 400);  // forced to nowhere
  EXPECT_EQ(evacuate({{"force", true}, {"host", other}}, "2.68").status, 400);
  EXPECT_EQ(evacuate({{"host", "nowhere"}}, "2.14").status, 404);
  EXPECT_EQ(evacuate({{"host", source}}, "2.14").status, 400);
  // Its host is up: refused, as Nova refuses it.
  auto in_use = evacuate({}, "2.14");
  EXPECT_EQ(in_use.status, 400);
  EXPECT_NE(in_use.raw.find("Compute service of " + source + " is still in use."),
            std::string::npos);

  auto services = cloud.nova("GET", "/v2.1/os-services?host=" + source, cloud.admin(), {}, "2.53");
  auto service = str(services.body.at("services").as_array().at(0).as_object(), "id");
  auto force_down = [&](bool down) {
    ASSERT_EQ(cloud
                  .nova("PUT", "/v2.1/os-services/" + service, cloud.admin(),
                        json::object{{"forced_down", down}}, "2.53")
                  .status,
              200);
  };
  force_down(true);
  // Before 2.14 the new password is the answer.
  auto r = evacuate({{"onSharedStorage", false}}, "2.1");
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_FALSE(str(r.body, "adminPass").empty());
  auto view = cloud.wait_for(cloud.admin(), id, "ACTIVE");
  auto dest = str(view, "OS-EXT-SRV-ATTR:host");
  EXPECT_NE(dest, source);
  auto migrations =
      cloud.nova("GET", "/v2.1/os-migrations?instance_uuid=" + id, cloud.admin(), {}, "2.59");
  auto& m = migrations.body.at("migrations").as_array().at(0).as_object();
  EXPECT_EQ(str(m, "migration_type"), "evacuation");
  EXPECT_EQ(str(m, "status"), "done");
  EXPECT_EQ(str(m, "source_compute"), source);
  EXPECT_EQ(str(m, "dest_compute"), dest);
  // The server holds the new host; the dead host's room stays held until it is back.
  EXPECT_EQ(cloud.placement().allocations(id).size(), 1u);
  EXPECT_EQ(cloud.placement().allocations(str(m, "uuid")).size(), 1u);

  // The dead host comes back (its agent starts): its copy and its room go.
  cloud.stop_plane();
  auto before = cloud.fake_servers(source);
  EXPECT_NE(std::find(before.begin(), before.end(), id), before.end());
  force_down(false);
  cloud.start_plane();
  std::string status;
  for (int i = 0; i < 300 && status != "completed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto again =
        cloud.nova("GET", "/v2.1/os-migrations?instance_uuid=" + id, cloud.admin(), {}, "2.59");
    status = str(again.body.at("migrations").as_array().at(0).as_object(), "status");
  }
  EXPECT_EQ(status, "completed");
  EXPECT_TRUE(cloud.placement().allocations(str(m, "uuid")).empty());
  cloud.stop_plane();
  auto after = cloud.fake_servers(source);
  EXPECT_EQ(std::find(after.begin(), after.end(), id), after.end());
  auto on_dest = cloud.fake_servers(dest);
  EXPECT_NE(std::find(on_dest.begin(), on_dest.end(), id), on_dest.end());
  cloud.start_plane();

  // From 2.95 a server arrives stopped; the answer is empty from 2.14. Evacuated again while
  // the conductor is down, it goes when the conductor is back.
  auto dest_services =
      cloud.nova("GET", "/v2.1/os-services?host=" + dest, cloud.admin(), {}, "2.53");
  service = str(dest_services.body.at("services").as_array().at(0).as_object(), "id");
  force_down(true);
  cloud.stop_plane();
  auto stopped = evacuate({}, "2.95");
  ASSERT_EQ(stopped.status, 200) << stopped.raw;
  EXPECT_TRUE(stopped.raw.empty()) << stopped.raw;
  cloud.start_plane();
  view = cloud.wait_for(cloud.admin(), id, "SHUTOFF");
  EXPECT_NE(str(view, "OS-EXT-SRV-ATTR:host"), dest);
  EXPECT_EQ(cloud.placement().allocations(id).size(), 1u);
}

TEST(Servers, NoValidHostEndsInErrorWithNovasFault) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  // m1.xlarge (16 GB) fits on no fake host (8 GB).
  auto id = cloud.boot(alice, "too-big", "5");
  auto s = cloud.wait_for(alice, id, "ERROR");
  ASSERT_TRUE(s.contains("fault")) << json::serialize(s);
  EXPECT_NE(std::string(s.at("fault").as_object().at("message").as_string())
                .find("No valid host was found"),
            std::string::npos);
  EXPECT_EQ(s.at("fault").as_object().at("code").as_int64(), 500);
  // A server in ERROR on no host deletes at once.
  ASSERT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id, alice).status, 204);
  cloud.wait_for(alice, id, "GONE");
}

TEST(Servers, QuotaRefusesTheServerThatDoesNotFitAndMinCountCreatesSeveral) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  ASSERT_EQ(cloud
                .nova("PUT", "/v2.1/os-quota-sets/" + cloud.project("alice"), cloud.admin(),
                      json::object{{"quota_set", json::object{{"instances", 3}}}})
                .status,
            200);
  auto r = cloud.nova("POST", "/v2.1/servers", alice,
                      json::object{{"server", json::object{{"name", "many"},
                                                           {"flavorRef", "1"},
                                                           {"imageRef", kImage},
                                                           {"min_count", 2},
                                                           {"max_count", 5},
                                                           {"return_reservation_id", true}}}});
  ASSERT_EQ(r.status, 202) << r.raw;
  auto reservation = str(r.body, "reservation_id");
  auto listed = cloud.nova("GET", "/v2.1/servers?reservation_id=" + reservation, alice);
  // As many as the quota allows (3), named name-1..3.
  ASSERT_EQ(listed.body.at("servers").as_array().size(), 3u) << listed.raw;
  auto over = cloud.nova(
      "POST", "/v2.1/servers", alice,
      json::object{{"server",
                    json::object{{"name", "one-more"}, {"flavorRef", "1"}, {"imageRef", kImage}}}});
  EXPECT_EQ(over.status, 403) << over.raw;
  EXPECT_NE(over.raw.find("Quota exceeded for instances"), std::string::npos) << over.raw;
  // The next server takes a number none of the three has.
  ASSERT_EQ(cloud
                .nova("PUT", "/v2.1/os-quota-sets/" + cloud.project("alice"), cloud.admin(),
                      json::object{{"quota_set", json::object{{"instances", 4}}}})
                .status,
            200);
  auto next = cloud.boot(alice, "one-more");
  auto shown = cloud.nova("GET", "/v2.1/servers/" + next, cloud.admin(), {}, "2.3");
  std::set<std::string> names{
      str(shown.body.at("server").as_object(), "OS-EXT-SRV-ATTR:instance_name")};
  for (auto& item : listed.body.at("servers").as_array())
    names.insert(str(
        cloud.nova("GET", "/v2.1/servers/" + str(item.as_object(), "id"), cloud.admin(), {}, "2.3")
            .body.at("server")
            .as_object(),
        "OS-EXT-SRV-ATTR:instance_name"));
  EXPECT_EQ(names.size(), 4u);
}

TEST(Servers, ListFiltersSortAndPages) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto bob = cloud.member("bob");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(cloud.boot(alice, "alpha-" + std::to_string(i)));
  auto other = cloud.boot(bob, "bob-server");
  for (auto& id : ids) cloud.wait_for(alice, id, "ACTIVE");
  cloud.wait_for(bob, other, "ACTIVE");

  auto names = [&](const std::string& query, const std::string& token,
                   const std::string& version = "2.1") {
    auto r = cloud.nova("GET", "/v2.1/servers" + query, token, {}, version);
    EXPECT_EQ(r.status, 200) << r.raw;
    std::vector<std::string> out;
    for (auto& s : r.body.at("servers").as_array()) out.push_back(str(s.as_object(), "name"));
    return out;
  };
  EXPECT_EQ(names("", alice).size(), 5u);  // projects see only their own
  EXPECT_EQ(names("?all_tenants=1", cloud.admin()).size(), 6u);
  EXPECT_EQ(cloud.nova("GET", "/v2.1/servers?all_tenants=1", alice).status, 403);
  EXPECT_EQ(names("?name=alpha-%5B13%5D", alice), (std::vector<std::string>{"alpha-3", "alpha-1"}));
  EXPECT_EQ(names("?sort_key=display_name&sort_dir=asc&limit=2", alice),
            (std::vector<std::string>{"alpha-0", "alpha-1"}));
  auto page = cloud.nova("GET", "/v2.1/servers?sort_key=display_name&sort_dir=asc&limit=2", alice);
  ASSERT_TRUE(page.body.contains("servers_links"));
  auto marker = str(page.body.at("servers").as_array()[1].as_object(), "id");
  EXPECT_EQ(names("?sort_key=display_name&sort_dir=asc&limit=2&marker=" + marker, alice),
            (std::vector<std::string>{"alpha-2", "alpha-3"}));
  EXPECT_EQ(cloud.nova("GET", "/v2.1/servers?marker=nope", alice).status, 400);
  EXPECT_EQ(names("?status=SHUTOFF", alice).size(), 0u);
  EXPECT_EQ(names("?status=ACTIVE&flavor=1", alice).size(), 5u);

  // Tags (2.26).
  ASSERT_EQ(cloud.nova("PUT", "/v2.1/servers/" + ids[0] + "/tags/red", alice, {}, "2.26").status,
            201);
  ASSERT_EQ(cloud
                .nova("PUT", "/v2.1/servers/" + ids[1] + "/tags", alice,
                      json::object{{"tags", json::array{"red", "blue"}}}, "2.26")
                .status,
            200);
  EXPECT_EQ(names("?tags=red,blue", alice, "2.26"), (std::vector<std::string>{"alpha-1"}));
  EXPECT_EQ(names("?tags-any=red", alice, "2.26").size(), 2u);
  EXPECT_EQ(names("?not-tags-any=red", alice, "2.26").size(), 3u);
  // Before 2.26 tag filters are not a project's to use: ignored.
  EXPECT_EQ(names("?tags=red", alice).size(), 5u);

  auto bad = cloud.nova("GET", "/v2.1/servers?changes-since=yesterday", alice);
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(names("?changes-since=2000-01-01T00:00:00Z", alice).size(), 5u);
}

TEST(Servers, MetadataUpdateAndBadInput) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "vm");
  auto base = "/v2.1/servers/" + id;
  ASSERT_EQ(cloud
                .nova("POST", base + "/metadata", alice,
                      json::object{{"metadata", json::object{{"a", "1"}, {"b", "2"}}}})
                .status,
            200);
  ASSERT_EQ(cloud
                .nova("PUT", base + "/metadata/c", alice,
                      json::object{{"meta", json::object{{"c", "3"}}}})
                .status,
            200);
  EXPECT_EQ(cloud
                .nova("PUT", base + "/metadata/c", alice,
                      json::object{{"meta", json::object{{"d", "3"}}}})
                .status,
            400);
  ASSERT_EQ(cloud.nova("DELETE", base + "/metadata/a", alice).status, 204);
  EXPECT_EQ(cloud.nova("DELETE", base + "/metadata/a", alice).status, 404);
  auto meta = cloud.nova("GET", base + "/metadata", alice).body.at("metadata").as_object();
  EXPECT_EQ(keys(meta), (std::set<std::string>{"b", "c"}));
  ASSERT_EQ(cloud
                .nova("PUT", base + "/metadata", alice,
                      json::object{{"metadata", json::object{{"z", "9"}}}})
                .status,
            200);
  EXPECT_EQ(keys(cloud.nova("GET", base + "/metadata", alice).body.at("metadata").as_object()),
            (std::set<std::string>{"z"}));

  auto upd = cloud.nova(
      "PUT", base, alice,
      json::object{{"server", json::object{{"name", "renamed"}, {"description", "d"}}}}, "2.19");
  ASSERT_EQ(upd.status, 200) << upd.raw;
  EXPECT_EQ(upd.body.at("server").as_object().at("name").as_string(), "renamed");
  EXPECT_EQ(upd.body.at("server").as_object().at("description").as_string(), "d");
  // Before 2.75 an update answers with the short view.
  EXPECT_FALSE(upd.body.at("server").as_object().contains("OS-EXT-STS:vm_state"));

  auto post = [&](const json::object& server) {
    return cloud.nova("POST", "/v2.1/servers", alice, json::object{{"server", server}});
  };
  EXPECT_EQ(post({{"flavorRef", "1"}, {"imageRef", kImage}}).status, 400);  // no name
  EXPECT_EQ(post({{"name", "x"}, {"imageRef", kImage}}).status, 400);       // no flavor
  EXPECT_EQ(post({{"name", "x"}, {"flavorRef", "99"}, {"imageRef", kImage}}).status,
            400);  // unknown flavor
  EXPECT_EQ(post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", "not-a-uuid"}}).status,
            400);  // bad image ref
  EXPECT_EQ(post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kQueuedImage}}).status,
            400);  // image not active
  EXPECT_EQ(
      post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kImage}, {"key_name", "nokey"}}).status,
      400);
  EXPECT_EQ(post({{"name", "x"},
                  {"flavorRef", "1"},
                  {"imageRef", kImage},
                  {"availability_zone", "nowhere"}})
                .status,
            400);
  EXPECT_EQ(
      post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kImage}, {"user_data", "not base64!"}})
          .status,
      400);
  EXPECT_EQ(post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kImage}, {"accessIPv4", "1.2.3"}})
                .status,
            400);
  EXPECT_EQ(
      post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kImage}, {"min_count", 0}}).status,
      400);
  EXPECT_EQ(post({{"name", "x"}, {"flavorRef", "1"}, {"imageRef", kImage}, {"bogus", 1}}).status,
            400);
  auto r = post({{"name", " x"}, {"flavorRef", "1"}, {"imageRef", kImage}});
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.body.contains("badRequest")) << r.raw;
  EXPECT_EQ(cloud
                .nova("POST", base + "/action", alice,
                      json::object{{"reboot", json::object{{"type", "GENTLY"}}}})
                .status,
            400);
  EXPECT_EQ(cloud.nova("POST", base + "/action", alice, json::object{{"explode", nullptr}}).status,
            400);
  EXPECT_EQ(cloud.nova("GET", "/v2.1/servers/" + uuid4(), alice).status, 404);
  // Another project's server is not there for bob.
  auto bob = cloud.member("bob");
  EXPECT_EQ(cloud.nova("GET", base, bob).status, 404);
  EXPECT_EQ(cloud.nova("DELETE", base, bob).status, 404);
}

TEST(Servers, SpawnFailureReschedulesToAnotherHostThenGivesUp) {
  {
    Cloud cloud(2, "[fake]\nfail_spawn_hosts = fake-host-1\n");
    auto alice = cloud.member("alice");
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(cloud.boot(alice, "vm-" + std::to_string(i)));
    for (auto& id : ids) {
      cloud.wait_for(alice, id, "ACTIVE");
      auto view =
          cloud.nova("GET", "/v2.1/servers/" + id, cloud.admin()).body.at("server").as_object();
      EXPECT_EQ(view.at("OS-EXT-SRV-ATTR:host").as_string(), "fake-host-2");
      auto held = cloud.placement().allocations(id);
      ASSERT_EQ(held.size(), 1u);  // nothing left claimed on the host that failed
    }
  }
  Cloud cloud(2, "[fake]\nfail_spawn_hosts = fake-host-1, fake-host-2\n");
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "doomed");
  auto s = cloud.wait_for(alice, id, "ERROR");
  // Nova's MaxRetriesExceeded, with why the last host failed.
  std::string message(s.at("fault").as_object().at("message").as_string());
  EXPECT_NE(message.find("Exceeded maximum number of retries. Exhausted all hosts available"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("Last error: fake driver: spawning fails"), std::string::npos) << message;
  EXPECT_TRUE(cloud.placement().allocations(id).empty());
}

TEST(Servers, ConductorResumesBuildsAfterARestart) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto moving = cloud.boot(alice, "moving");
  auto source = str(cloud.wait_for(cloud.admin(), moving, "ACTIVE"), "OS-EXT-SRV-ATTR:host");
  // With the conductor and agents gone (a crash), the API still accepts and records builds, and
  // a live migration.
  cloud.stop_plane();
  ASSERT_EQ(cloud
                .nova("POST", "/v2.1/servers/" + moving + "/action", cloud.admin(),
                      json::object{{"os-migrateLive",
                                    json::object{{"host", nullptr}, {"block_migration", "auto"}}}},
                      "2.30")
                .status,
            202);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(cloud.boot(alice, "pending-" + std::to_string(i)));
  for (auto& id : ids)
    EXPECT_EQ(cloud.nova("GET", "/v2.1/servers/" + id, alice)
                  .body.at("server")
                  .as_object()
                  .at("status")
                  .as_string(),
              "BUILD");
  cloud.start_plane();
  for (auto& id : ids) cloud.wait_for(alice, id, "ACTIVE");
  // The migration finishes on the other host.
  EXPECT_NE(str(cloud.wait_for(cloud.admin(), moving, "ACTIVE"), "OS-EXT-SRV-ATTR:host"), source);
  EXPECT_EQ(cloud.placement().allocations(moving).size(), 1u);
}

}  // namespace

TEST(Servers, TheMetadataServiceAnswersForTheInstanceItsProxyVouchesFor) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto key = cloud.nova("POST", "/v2.1/os-keypairs", alice,
                        json::object{{"keypair", json::object{{"name", "k1"}}}});
  ASSERT_EQ(key.status, 200) << key.raw;
  auto public_key = str(key.body.at("keypair").as_object(), "public_key");
  auto id = cloud.boot(alice, "meta 1", "1",
                       json::object{{"key_name", "k1"},
                                    {"user_data", base64_encode("#!/bin/sh\necho hi\n")},
                                    {"metadata", json::object{{"role", "db"}}}});
  cloud.wait_for(alice, id, "ACTIVE");
  auto project = cloud.project("alice");

  // The versions are listed to anyone; the rest needs a proxy's word.
  auto root = cloud.metadata("/", "", "");
  EXPECT_EQ(root.status, 200);
  EXPECT_TRUE(root.body.ends_with("2009-04-04\nlatest")) << root.body;
  auto missing = cloud.metadata("/openstack", "", "");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("X-Instance-ID header is missing from request."), std::string::npos);
  {
    http::Client client;
    auto twice =
        client.request("GET", cloud.metadata_url() + "/openstack",
                       {{"X-Instance-ID", id},
                        {"X-Instance-ID", id},
                        {"X-Instance-ID-Signature", compute::metadata::sign(Cloud::kSecret, id)},
                        {"X-Tenant-ID", project}});
    EXPECT_EQ(twice.status, 400);
    EXPECT_NE(twice.body.find("Multiple X-Instance-ID headers"), std::string::npos) << twice.body;
  }
  auto forged = cloud.metadata("/openstack", id, project, std::string(64, 'a'));
  EXPECT_EQ(forged.status, 403);
  EXPECT_NE(forged.body.find("Invalid proxy request signature."), std::string::npos);
  EXPECT_EQ(cloud.metadata("/openstack", id, "another-project").status, 404);
  EXPECT_EQ(cloud.metadata("/openstack", uuid4(), project).status, 404);

  // OpenStack's tree.
  auto versions = cloud.metadata("/openstack", id, project);
  EXPECT_EQ(versions.status, 200);
  EXPECT_TRUE(versions.body.starts_with("2012-08-10\n")) << versions.body;
  EXPECT_TRUE(versions.body.ends_with("2020-10-14\nlatest")) << versions.body;
  EXPECT_EQ(cloud.metadata("/openstack/latest", id, project).body,
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\n"
            "vendor_data2.json");
  EXPECT_EQ(cloud.metadata("/openstack/2012-08-10", id, project).body, "meta_data.json\nuser_data");
  auto meta = cloud.metadata("/openstack/latest/meta_data.json", id, project);
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.headers.get_or("Content-Type"), "application/json");
  auto doc = json::parse(meta.body).as_object();
  EXPECT_EQ(str(doc, "uuid"), id);
  EXPECT_EQ(str(doc, "name"), "meta 1");
  EXPECT_EQ(str(doc, "hostname"), "meta-1");
  EXPECT_EQ(str(doc, "project_id"), project);
  EXPECT_EQ(str(doc.at("meta").as_object(), "role"), "db");
  EXPECT_EQ(str(doc.at("public_keys").as_object(), "k1"), public_key);
  EXPECT_FALSE(doc.contains("admin_pass"));  // only config drives carry it
  auto old = json::parse(cloud.metadata("/openstack/2012-08-10/meta_data.json", id, project).body);
  EXPECT_FALSE(old.as_object().contains("project_id"));
  EXPECT_FALSE(old.as_object().contains("random_seed"));
  EXPECT_EQ(cloud.metadata("/openstack/latest/user_data", id, project).body,
            "#!/bin/sh\necho hi\n");
  EXPECT_EQ(cloud.metadata("/openstack/latest/nothing", id, project).status, 404);
  EXPECT_EQ(cloud.metadata("/openstack/2011-01-01/meta_data.json", id, project).status, 404);

  // EC2's.
  EXPECT_EQ(cloud.metadata("/latest", id, project).body, "meta-data/\nuser-data");
  auto ec2 = cloud.metadata("/latest/meta-data/", id, project);
  EXPECT_NE(ec2.body.find("instance-id\n"), std::string::npos) << ec2.body;
  EXPECT_NE(ec2.body.find("placement/\n"), std::string::npos) << ec2.body;
  EXPECT_TRUE(cloud.metadata("/latest/meta-data/instance-id", id, project).body.starts_with("i-"));
  EXPECT_EQ(cloud.metadata("/2009-04-04/meta-data/public-keys", id, project).body, "0=k1");
  EXPECT_EQ(cloud.metadata("/latest/meta-data/public-keys/0/openssh-key", id, project).body,
            public_key);
  EXPECT_EQ(cloud.metadata("/latest/meta-data/placement/availability-zone", id, project).body,
            "nova");
  EXPECT_EQ(cloud.metadata("/latest/meta-data/instance-type", id, project).body, "m1.tiny");
  EXPECT_EQ(cloud.metadata("/ec2/latest/meta-data/instance-type", id, project).body, "m1.tiny");
  EXPECT_EQ(
      cloud.metadata("/openstack/latest/../../latest/meta-data/instance-type", id, project).body,
      "m1.tiny");
  EXPECT_EQ(cloud.metadata("/1.0/meta-data/instance-type", id, project).status, 404);
  EXPECT_EQ(cloud.metadata("/latest/user-data", id, project).body, "#!/bin/sh\necho hi\n");

  // The guest posts its password once; its owner reads it through os-server-password and clears it.
  EXPECT_EQ(cloud
                .metadata("/openstack/latest/password", id, project, {}, "POST",
                          std::string(compute::metadata::kMaxPassword + 1, 'x'))
                .status,
            400);
  EXPECT_EQ(cloud
                .metadata("/openstack/latest/password", id, project, {}, "POST",
                          std::string("\xff\xfe{\"", 4))
                .status,
            400);
  EXPECT_EQ(
      cloud.metadata("/openstack/2012-08-10/password", id, project, {}, "POST", "sealed").status,
      404);
  EXPECT_EQ(cloud.metadata("/openstack/latest/password", id, project, {}, "POST", "sealed").status,
            200);
  EXPECT_EQ(cloud.metadata("/openstack/latest/password", id, project, {}, "POST", "again").status,
            409);
  EXPECT_EQ(cloud.metadata("/openstack/latest/password", id, project).body, "sealed");
  auto pw = cloud.nova("GET", "/v2.1/servers/" + id + "/os-server-password", alice);
  EXPECT_EQ(str(pw.body, "password"), "sealed");
  EXPECT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id + "/os-server-password", alice).status, 204);
  EXPECT_EQ(
      str(cloud.nova("GET", "/v2.1/servers/" + id + "/os-server-password", alice).body, "password"),
      "");

  // The relay QEMU runs for a guest's connection: the guest's own identity headers are dropped
  // and the instance's are signed in.
  compute::metadata::RelaySettings relay{cloud.metadata_url(), Cloud::kSecret, id, project};
  std::istringstream guest(
      "GET /openstack/latest/meta_data.json HTTP/1.1\r\nHost: 169.254.169.254\r\n"
      "X-Instance-ID: " +
      uuid4() + "\r\nX-Instance-ID-Signature: forged\r\n\r\n");
  std::ostringstream answer;
  EXPECT_EQ(compute::metadata::relay(guest, answer, relay), 0);
  EXPECT_TRUE(answer.str().starts_with("HTTP/1.1 200 OK\r\n")) << answer.str();
  EXPECT_NE(answer.str().find("\"uuid\":\"" + id + "\""), std::string::npos) << answer.str();
  std::istringstream garbage("NOT HTTP\r\n\r\n");
  std::ostringstream refused;
  EXPECT_EQ(compute::metadata::relay(garbage, refused, relay), 1);
  EXPECT_TRUE(refused.str().starts_with("HTTP/1.1 400 ")) << refused.str();
  relay.url = "http://127.0.0.1:1";
  std::istringstream again("GET /openstack HTTP/1.1\r\n\r\n");
  std::ostringstream unreachable;
  EXPECT_EQ(compute::metadata::relay(again, unreachable, relay), 1);
  EXPECT_TRUE(unreachable.str().starts_with("HTTP/1.1 502 ")) << unreachable.str();

  // Relays per server are counted with locks in its directory (a guest may open many at once).
  auto slots = fs::temp_directory_path() / ("nubo-relay-" + uuid4_hex());
  fs::create_directories(slots);
  EXPECT_TRUE(compute::metadata::take_relay_slot(slots, 2));
  EXPECT_TRUE(compute::metadata::take_relay_slot(slots, 2));
  EXPECT_FALSE(compute::metadata::take_relay_slot(slots, 2));
  EXPECT_TRUE(compute::metadata::take_relay_slot(slots / "elsewhere", 2));
  fs::remove_all(slots);

  // A deleted server has no metadata.
  EXPECT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id, alice).status, 204);
  cloud.wait_for(alice, id, "GONE");
  EXPECT_EQ(cloud.metadata("/openstack", id, project).status, 404);
}

TEST(Servers, RemoteConsolesHandOutTokensTheProxyResolves) {
  Cloud cloud;
  auto alice = cloud.member("alice");
  auto id = cloud.boot(alice, "console 1");
  cloud.wait_for(alice, id, "ACTIVE");
  auto console = [&](json::object rc, const std::string& version = "2.6") {
    return cloud.nova("POST", "/v2.1/servers/" + id + "/remote-consoles", alice,
                      json::object{{"remote_console", std::move(rc)}}, version);
  };
  auto made = console({{"protocol", "serial"}, {"type", "serial"}});
  ASSERT_EQ(made.status, 200) << made.raw;
  auto& rc = made.body.at("remote_console").as_object();
  EXPECT_EQ(str(rc, "protocol"), "serial");
  EXPECT_EQ(str(rc, "type"), "serial");
  auto url = str(rc, "url");
  ASSERT_TRUE(url.starts_with("ws://127.0.0.1:6083/?token=")) << url;
  auto token = url.substr(url.find("token=") + 6);

  // Nova's refusals: a type the protocol has not, a console this cloud does not serve, values
  // outside the schema (mks only from 2.8), extra keys.
  auto refused = [&](const Reply& r, const std::string& words) {
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_NE(r.raw.find(words), std::string::npos) << r.raw;
  };
  refused(console({{"protocol", "vnc"}, {"type", "serial"}}), "Invalid console type serial");
  refused(console({{"protocol", "vnc"}, {"type", "novnc"}}), "Unavailable console type novnc.");
  refused(console({{"protocol", "mks"}, {"type", "webmks"}}), "is not one of");
  refused(console({{"protocol", "mks"}, {"type", "webmks"}}, "2.8"),
          "Unavailable console type webmks.");
  refused(console({{"protocol", "serial"}}), "'type' is a required property");
  refused(console({{"protocol", "serial"}, {"type", "serial"}, {"x", 1}}),
          "Additional properties are not allowed");
  EXPECT_EQ(console({{"protocol", "serial"}, {"type", "serial"}}, "2.5").status, 404);

  // Before 2.6, the action.
  auto legacy = cloud.nova("POST", "/v2.1/servers/" + id + "/action", alice,
                           json::object{{"os-getSerialConsole", json::object{{"type", "serial"}}}});
  ASSERT_EQ(legacy.status, 200) << legacy.raw;
  EXPECT_EQ(str(legacy.body.at("console").as_object(), "type"), "serial");
  EXPECT_NE(str(legacy.body.at("console").as_object(), "url").find("?token="), std::string::npos);

  // What a token leads to: admins only, any console type from 2.31.
  auto path = "/v2.1/os-console-auth-tokens/" + token;
  auto shown = cloud.nova("GET", path, cloud.admin(), {}, "2.31");
  ASSERT_EQ(shown.status, 200) << shown.raw;
  auto& target = shown.body.at("console").as_object();
  EXPECT_EQ(str(target, "instance_uuid"), id);
  EXPECT_EQ(str(target, "host"), "127.0.0.1");
  EXPECT_EQ(target.at("port").as_int64(), 6999);
  EXPECT_EQ(cloud.nova("GET", path, cloud.admin(), {}, "2.30").status, 400);
  EXPECT_EQ(cloud.nova("GET", path, alice, {}, "2.31").status, 403);
  auto unknown = cloud.nova("GET", "/v2.1/os-console-auth-tokens/nope", cloud.admin(), {}, "2.31");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.raw.find("Token not found"), std::string::npos);
  EXPECT_EQ(
      cloud.nova("GET", "/v2.1/os-console-auth-tokens/nope", cloud.admin(), {}, "2.30").status,
      400);

  // A stopped server has no console; a deleted one's tokens lead nowhere.
  ASSERT_EQ(cloud
                .nova("POST", "/v2.1/servers/" + id + "/action", alice,
                      json::object{{"os-stop", nullptr}})
                .status,
            202);
  cloud.wait_for(alice, id, "SHUTOFF");
  EXPECT_EQ(console({{"protocol", "serial"}, {"type", "serial"}}).status, 409);
  ASSERT_EQ(cloud.nova("DELETE", "/v2.1/servers/" + id, alice).status, 204);
  cloud.wait_for(alice, id, "GONE");
  EXPECT_EQ(cloud.nova("GET", path, cloud.admin(), {}, "2.31").status, 404);
}

TEST(Servers, ServersOnNetworksGetTheirPortsAddressesAndInterfaces) {
  Cloud c;
  c.with_network();
  auto alice = c.member("net-alice");
  auto project = c.project("net-alice");
  auto net1 = c.make_network(project, "net1", "10.1.0.0/24");
  auto text = [](const json::object& o, const char* key) {
    return std::string(o.at(key).as_string());
  };
  // The project's only network, implicitly: one port, bound to the chosen host, its address in
  // the views.
  auto id = c.boot(alice, "wired");
  auto server = c.wait_for(alice, id, "ACTIVE");
  auto ports = c.ports("device_id", id);
  ASSERT_EQ(ports.size(), 1u);
  auto port = ports.front();
  EXPECT_EQ(text(port, "network_id"), net1);
  auto admin_view = c.nova("GET", "/v2.1/servers/" + id, c.admin());
  EXPECT_EQ(text(port, "binding:host_id"),
            text(admin_view.body.at("server").as_object(), "OS-EXT-SRV-ATTR:host"));
  EXPECT_TRUE(text(port, "device_owner").starts_with("compute:"));
  auto address = text(port.at("fixed_ips").as_array().front().as_object(), "ip_address");
  auto& addresses = server.at("addresses").as_object();
  ASSERT_TRUE(addresses.contains("net1")) << json::serialize(server);
  auto& first = addresses.at("net1").as_array().front().as_object();
  EXPECT_EQ(text(first, "addr"), address);
  EXPECT_EQ(text(first, "OS-EXT-IPS:type"), "fixed");
  EXPECT_EQ(text(first, "OS-EXT-IPS-MAC:mac_addr"), text(port, "mac_address"));
  EXPECT_EQ(c.nova("GET", "/v2.1/servers/" + id + "/ips/net1", alice).status, 200);
  // The guest's network_data.json names its NIC.
  auto data = c.metadata("/openstack/latest/network_data.json", id, project);
  ASSERT_EQ(data.status, 200) << data.body;
  auto nd = json::parse(data.body).as_object();
  ASSERT_EQ(nd.at("links").as_array().size(), 1u) << data.body;
  EXPECT_EQ(text(nd.at("links").as_array().front().as_object(), "ethernet_mac_address"),
            text(port, "mac_address"));
  EXPECT_EQ(text(nd.at("networks").as_array().front().as_object(), "type"), "ipv4_dhcp");
  EXPECT_EQ(c.nova("GET", "/v2.1/servers/" + id + "/ips/nope", alice).status, 404);

  // What a create may not ask for.
  auto create = [&](json::object body) {
    body["name"] = "bad";
    body["flavorRef"] = "1";
    body["imageRef"] = kImage;
    return c.nova("POST", "/v2.1/servers", alice, json::object{{"server", body}});
  };
  EXPECT_EQ(create({{"networks", json::array{json::object{{"uuid", uuid4()}}}}}).status, 400);
  auto in_use = create({{"networks", json::array{json::object{{"port", text(port, "id")}}}}});
  EXPECT_EQ(in_use.status, 409) << in_use.raw;
  EXPECT_EQ(create({{"security_groups", json::array{json::object{{"name", "nope"}}}},
                    {"networks", json::array{json::object{{"uuid", net1}}}}})
                .status,
            400);
  auto net2 = c.make_network(project, "net2", "10.2.0.0/24");
  auto ambiguous = create({});
  EXPECT_EQ(ambiguous.status, 409) << ambiguous.raw;
  EXPECT_NE(ambiguous.raw.find("Multiple possible networks"), std::string::npos);

  // os-interface: a NIC on net2 hot-plugged, listed and in the addresses, then taken out.
  auto attach = c.nova("POST", "/v2.1/servers/" + id + "/os-interface", alice,
                       json::object{{"interfaceAttachment", json::object{{"net_id", net2}}}});
  ASSERT_EQ(attach.status, 200) << attach.raw;
  auto nic = text(attach.body.at("interfaceAttachment").as_object(), "port_id");
  EXPECT_EQ(text(attach.body.at("interfaceAttachment").as_object(), "net_id"), net2);
  auto listed = c.nova("GET", "/v2.1/servers/" + id + "/os-interface", alice);
  ASSERT_EQ(listed.status, 200) << listed.raw;
  EXPECT_EQ(listed.body.at("interfaceAttachments").as_array().size(), 2u);
  server = c.nova("GET", "/v2.1/servers/" + id, alice).body.at("server").as_object();
  EXPECT_TRUE(server.at("addresses").as_object().contains("net2")) << json::serialize(server);
  EXPECT_EQ(c.nova("DELETE", "/v2.1/servers/" + id + "/os-interface/" + uuid4(), alice).status,
            404);
  EXPECT_EQ(c.nova("DELETE", "/v2.1/servers/" + id + "/os-interface/" + nic, alice).status, 202);
  EXPECT_TRUE(c.ports("id", nic).empty()) << "the NIC's port went with it";
  server = c.nova("GET", "/v2.1/servers/" + id, alice).body.at("server").as_object();
  EXPECT_FALSE(server.at("addresses").as_object().contains("net2"));

  // The address filter matches the network info cache.
  auto by_ip = [&](const std::string& pattern) {
    auto r = c.nova("GET", "/v2.1/servers?ip=" + pattern, alice);
    return r.body.at("servers").as_array().size();
  };
  EXPECT_EQ(by_ip("10.1.0"), 1u);
  EXPECT_EQ(by_ip("10.9."), 0u);

  // network-changed: the port's address changed in the network service shows on the server.
  {
    AuthContext auth;
    auth.roles = {"admin"};
    Caller admin{auth, [](const std::string&, const PolicyTarget&) { return true; }};
    c.network().update(
        admin, network::Kind::port, text(port, "id"),
        json::object{{"fixed_ips", json::array{json::object{{"ip_address", "10.1.0.77"}}}}});
  }
  std::string seen;
  for (int i = 0; i < 200 && seen != "10.1.0.77"; ++i) {
    auto v = c.nova("GET", "/v2.1/servers/" + id, alice).body.at("server").as_object();
    seen = text(v.at("addresses").as_object().at("net1").as_array().front().as_object(), "addr");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(seen, "10.1.0.77") << "network-changed did not refresh the addresses";

  // An unknown network for os-interface is 404 (Nova's answer there).
  EXPECT_EQ(c.nova("POST", "/v2.1/servers/" + id + "/os-interface", alice,
                   json::object{{"interfaceAttachment", json::object{{"net_id", uuid4()}}}})
                .status,
            404);

  // A port the user brought is bound at boot, keeps being theirs through an attach, and is
  // only unbound at delete.
  std::string mine;
  {
    AuthContext auth;
    auth.project_id = project;
    auth.roles = {"admin"};
    Caller owner{auth, [](const std::string&, const PolicyTarget&) { return true; }};
    mine = text(c.network().create(owner, network::Kind::port,
                                   json::object{{"network_id", net1}, {"project_id", project}}),
                "id");
  }
  auto carried = c.boot(alice, "carried", "1",
                        json::object{{"networks", json::array{json::object{{"port", mine}}}}});
  c.wait_for(alice, carried, "ACTIVE");
  auto bound = c.ports("id", mine);
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(text(bound.front(), "device_id"), carried);
  auto extra = c.nova("POST", "/v2.1/servers/" + carried + "/os-interface", alice,
                      json::object{{"interfaceAttachment", json::object{{"net_id", net2}}}});
  ASSERT_EQ(extra.status, 200) << extra.raw;
  EXPECT_EQ(c.nova("DELETE", "/v2.1/servers/" + carried, alice).status, 204);
  c.wait_for(alice, carried, "GONE");
  bound = c.ports("id", mine);
  ASSERT_EQ(bound.size(), 1u) << "the user's port was deleted with the server";
  EXPECT_EQ(text(bound.front(), "device_id"), "");
  EXPECT_TRUE(c.ports("device_id", carried).empty()) << "the attached NIC's port went with it";

  // The ports made for the server go with it.
  auto delete_and_wait = [&](const std::string& server_id) {
    EXPECT_EQ(c.nova("DELETE", "/v2.1/servers/" + server_id, alice).status, 204);
    c.wait_for(alice, server_id, "GONE");
  };
  delete_and_wait(id);
  EXPECT_TRUE(c.ports("device_id", id).empty()) << "the port made for the server outlived it";
  EXPECT_TRUE(c.ports("id", text(port, "id")).empty());
}

TEST(Servers, GetMeANetworkSecurityGroupActionsAndTheNetworkProxy) {
  Cloud c;
  auto& network = c.with_network();
  auto bob = c.member("net-bob");
  auto project = c.project("net-bob");
  auto text = [](const json::object& o, const char* key) {
    return std::string(o.at(key).as_string());
  };
  // networks: auto with nothing to use (2.37): the project's network is made at build.
  auto r = c.nova("POST", "/v2.1/servers", bob,
                  json::object{{"server", json::object{{"name", "auto"},
                                                       {"flavorRef", "1"},
                                                       {"imageRef", kImage},
                                                       {"networks", "auto"}}}},
                  "2.37");
  ASSERT_EQ(r.status, 202) << r.raw;
  auto id = text(r.body.at("server").as_object(), "id");
  auto server = c.wait_for(bob, id, "ACTIVE");
  EXPECT_TRUE(server.at("addresses").as_object().contains("auto_allocated_network"))
      << json::serialize(server);
  // The same network again for the next one (no second topology).
  auto again = c.nova("POST", "/v2.1/servers", bob,
                      json::object{{"server", json::object{{"name", "auto2"},
                                                           {"flavorRef", "1"},
                                                           {"imageRef", kImage},
                                                           {"networks", "auto"}}}},
                      "2.37");
  ASSERT_EQ(again.status, 202) << again.raw;
  c.wait_for(bob, text(again.body.at("server").as_object(), "id"), "ACTIVE");
  AuthContext auth;
  auth.project_id = project;
  auth.roles = {"admin"};
  Caller admin{auth, [](const std::string&, const PolicyTarget&) { return true; }};
  network::ListParams mine;
  mine.filters = {{"project_id", project}};
  EXPECT_EQ(network.list(admin, network::Kind::network, mine).items.size(), 1u);

  // addSecurityGroup / removeSecurityGroup change the ports' groups.
  auto web = network.create(admin, network::Kind::security_group,
                            json::object{{"name", "web"}, {"project_id", project}});
  auto action = [&](const std::string& name, const std::string& group) {
    return c.nova("POST", "/v2.1/servers/" + id + "/action", bob,
                  json::object{{name, json::object{{"name", group}}}});
  };
  auto port_groups = [&] {
    auto ports = c.ports("device_id", id);
    return ports.front().at("security_groups").as_array().size();
  };
  EXPECT_EQ(port_groups(), 1u) << "the default group";
  EXPECT_EQ(action("addSecurityGroup", "web").status, 202);
  EXPECT_EQ(port_groups(), 2u);
  EXPECT_EQ(action("addSecurityGroup", "web").status, 400) << "already there";
  EXPECT_EQ(action("addSecurityGroup", "nope").status, 404);
  auto shown = c.nova("GET", "/v2.1/servers/" + id, bob).body.at("server").as_object();
  EXPECT_EQ(shown.at("security_groups").as_array().size(), 2u) << json::serialize(shown);
  EXPECT_EQ(action("removeSecurityGroup", text(web, "id")).status, 202);
  EXPECT_EQ(port_groups(), 1u);
  EXPECT_EQ(action("removeSecurityGroup", "web").status, 400) << "not there any more";

  // The network proxy (before 2.36): id and label only; gone after.
  auto proxied = c.nova("GET", "/v2.1/os-networks", bob);
  ASSERT_EQ(proxied.status, 200) << proxied.raw;
  auto& nets = proxied.body.at("networks").as_array();
  ASSERT_EQ(nets.size(), 1u);
  EXPECT_EQ(text(nets.front().as_object(), "label"), "auto_allocated_network");
  EXPECT_TRUE(nets.front().as_object().at("cidr").is_null());
  auto one = c.nova("GET", "/v2.1/os-networks/" + text(nets.front().as_object(), "id"), bob);
  EXPECT_EQ(one.status, 200) << one.raw;
  EXPECT_EQ(c.nova("GET", "/v2.1/os-networks/" + uuid4(), bob).status, 404);
  EXPECT_EQ(c.nova("GET", "/v2.1/os-networks", bob, {}, "2.36").status, 404);
  EXPECT_EQ(
      c.nova("POST", "/v2.1/os-networks", bob, json::object{{"network", json::object{}}}).status,
      410);
}
