// The placement API over real HTTP: identity in-process (tests/api/support), placement beside it
// on port 0, validating tokens in-process as in the all-in-one; and the in-process client.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "compute/placement/api/service.hpp"
#include "compute/placement/local_client.hpp"
#include "compute/placement/setup.hpp"
#include "tests/api/support/identity_cloud.hpp"
#include "tests/api/support/served_pipeline.hpp"

using namespace nubo;
using apitest::Reply;
namespace fs = std::filesystem;

namespace {

const std::string kUser = "8a3e3a7f-45a1-4d0a-9c8e-000000000001";

class Cloud : public apitest::IdentityCloud {
 public:
  Cloud() {
    dir_ = fs::temp_directory_path() / ("nubo-placement-api-" + uuid4_hex());
    auto config = Config::parse("");
    if (const char* url = std::getenv("NUBO_TEST_DATABASE"); url && *url)
      config.set("database", "placement_connection", url);
    placement_ = placement::open_placement_service(config, dir_.string());
    served_ = std::make_unique<apitest::ServedPipeline>(
        placement::api::make_service_spec(placement_, service_ptr()),
        placement::api::render_transport_error);
    url_ = served_->url();
    admin_ = token();
  }
  ~Cloud() {
    served_.reset();
    fs::remove_all(dir_);
  }
  // A request at a microversion ("" sends no version header), as the admin unless a token is given.
  Reply call(const std::string& method, const std::string& path, const std::string& version,
             const std::string& body = {}, std::optional<std::string> token = std::nullopt) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!version.empty()) headers.push_back({"OpenStack-API-Version", "placement " + version});
    return client_.request(url_ + path, method, token ? *token : admin_, body,
                           body.empty() ? "" : "application/json", headers);
  }
  Reply call(const std::string& method, const std::string& path, const std::string& version,
             const json::value& body) {
    return call(method, path, version, json::serialize(body));
  }
  // A provider made at 1.20 (optionally under a parent); its uuid.
  std::string provider(const std::string& name, const std::string& parent = {}) {
    json::object body{{"name", name}};
    if (!parent.empty()) body["parent_provider_uuid"] = parent;
    auto r = call("POST", "/resource_providers", "1.20", body);
    EXPECT_EQ(r.status, 200) << r.raw;
    return std::string(r.body.at("uuid").as_string());
  }
  // Sets inventories (class → total, with optional ratio) at the provider's current generation.
  void inventory(const std::string& uuid, const std::map<std::string, std::int64_t>& totals,
                 double ratio = 1.0) {
    auto g = call("GET", "/resource_providers/" + uuid, "1.20").body.at("generation").as_int64();
    json::object inventories;
    for (auto& [rc, total] : totals)
      inventories[rc] = json::object{{"total", total}, {"allocation_ratio", ratio}};
    auto r = call("PUT", "/resource_providers/" + uuid + "/inventories", "1.20",
                  json::object{{"resource_provider_generation", g}, {"inventories", inventories}});
    EXPECT_EQ(r.status, 200) << r.raw;
  }
  std::int64_t generation(const std::string& uuid) {
    return call("GET", "/resource_providers/" + uuid, "1.20").body.at("generation").as_int64();
  }
  placement::PlacementService& service() { return *placement_; }
  std::shared_ptr<placement::PlacementService> service_ptr_placement() { return placement_; }
  const std::string& admin() const { return admin_; }
  // A member (not admin) of a fresh project.
  std::string member(const std::string& name) { return member_of_new_project(admin_, name).first; }

 private:
  fs::path dir_;
  std::shared_ptr<placement::PlacementService> placement_;
  std::unique_ptr<apitest::ServedPipeline> served_;
  std::string url_, admin_;
  apitest::ApiClient client_;
};

// Placement's error body: status, title, detail, request id, and the code from 1.23.
void expect_error(const Reply& r, int status, const std::string& code = {}) {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.contains("errors")) << r.raw;
  auto& e = r.body.at("errors").as_array().at(0).as_object();
  EXPECT_EQ(e.at("status"), status) << r.raw;
  EXPECT_FALSE(e.at("title").as_string().empty());
  EXPECT_FALSE(e.at("detail").as_string().empty());
  EXPECT_EQ(e.at("request_id").as_string(), r.headers.get_or("x-openstack-request-id"));
  if (!code.empty()) {
    EXPECT_EQ(e.at("code").as_string(), code) << r.raw;
  }
}

std::string detail(const Reply& r) {
  return std::string(r.body.at("errors").as_array().at(0).at("detail").as_string());
}

json::object allocation_body(const std::map<std::string, std::map<std::string, std::int64_t>>& a,
                             std::optional<std::int64_t> consumer_generation = std::nullopt,
                             bool with_generation = false) {
  json::object allocations;
  for (auto& [p, amounts] : a) {
    json::object resources;
    for (auto& [rc, n] : amounts) resources[rc] = n;
    allocations[p] = json::object{{"resources", resources}};
  }
  json::object body{{"allocations", allocations}, {"project_id", "proj-1"}, {"user_id", kUser}};
  if (with_generation)
    body["consumer_generation"] =
        consumer_generation ? json::value(*consumer_generation) : json::value(nullptr);
  return body;
}

TEST(PlacementApi, VersionsAndNegotiation) {
  Cloud c;
  auto root = c.call("GET", "/", "", "", std::string());
  ASSERT_EQ(root.status, 200) << root.raw;
  auto& v = root.body.at("versions").as_array().at(0).as_object();
  EXPECT_EQ(v.at("max_version"), "1.39");
  EXPECT_EQ(v.at("min_version"), "1.0");
  EXPECT_EQ(v.at("id"), "v1.0");
  auto plain = c.call("GET", "/resource_providers", "");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.headers.get_or("OpenStack-API-Version"), "placement 1.0");
  EXPECT_EQ(c.call("GET", "/resource_providers", "latest").headers.get_or("OpenStack-API-Version"),
            "placement 1.39");
  auto too_new = c.call("GET", "/resource_providers", "1.40");
  expect_error(too_new, 406);
  EXPECT_EQ(too_new.body.at("errors").as_array()[0].at("max_version"), "1.39");
  EXPECT_EQ(c.call("GET", "/resource_providers", "2.0").status, 406);
  // Routes that exist only from a microversion are absent before it.
  EXPECT_EQ(c.call("GET", "/traits", "1.5").status, 404);
  EXPECT_EQ(c.call("GET", "/traits", "1.6").status, 200);
  EXPECT_EQ(c.call("POST", "/allocations", "1.12", json::object{}).status, 404);
  // Authentication and the admin-only default policy.
  EXPECT_EQ(c.call("GET", "/resource_providers", "1.0", "", std::string()).status, 401);
  auto denied = c.call("GET", "/resource_providers", "1.23", "", c.member("alice"));
  expect_error(denied, 403, "placement.undefined_code");
  EXPECT_NE(detail(denied).find("placement:resource_providers:list"), std::string::npos);
  // The code appears from 1.23 only.
  auto old = c.call("GET", "/resource_providers/" + uuid4(), "1.22");
  expect_error(old, 404);
  EXPECT_FALSE(old.body.at("errors").as_array()[0].as_object().contains("code"));
  expect_error(c.call("GET", "/resource_providers/" + uuid4(), "1.23"), 404,
               "placement.resource_provider.not_found");
}

TEST(PlacementApi, ProvidersCrudAndTrees) {
  Cloud c;
  // Before 1.20: 201, a Location and no body; from 1.20: 200 with the provider.
  auto old = c.call("POST", "/resource_providers", "1.0", json::object{{"name", "old-style"}});
  EXPECT_EQ(old.status, 201) << old.raw;
  EXPECT_TRUE(old.raw.empty());
  EXPECT_EQ(old.headers.get_or("Location").rfind("/resource_providers/", 0), 0u);
  std::string fixed = "5A8B0F4C-1F0E-4E8B-9E4D-1A2B3C4D5E6F";  // uppercase: stored canonical
  auto made =
      c.call("POST", "/resource_providers", "1.20", json::object{{"name", "cn1"}, {"uuid", fixed}});
  ASSERT_EQ(made.status, 200) << made.raw;
  std::string cn1 = "5a8b0f4c-1f0e-4e8b-9e4d-1a2b3c4d5e6f";
  EXPECT_EQ(made.body.at("uuid"), json::value(cn1));
  EXPECT_EQ(made.body.at("generation"), 0);
  EXPECT_EQ(made.body.at("root_provider_uuid"), json::value(cn1));
  EXPECT_TRUE(made.body.at("parent_provider_uuid").is_null());
  EXPECT_EQ(made.body.at("links").as_array().size(),
            6u);  // self, inventories, usages, aggregates, traits, allocations
  EXPECT_EQ(c.call("GET", "/resource_providers/" + cn1, "1.0").body.at("links").as_array().size(),
            3u);
  EXPECT_FALSE(
      c.call("GET", "/resource_providers/" + cn1, "1.13").body.contains("root_provider_uuid"));
  expect_error(c.call("POST", "/resource_providers", "1.23", json::object{{"name", "cn1"}}), 409,
               "placement.duplicate_name");
  expect_error(
      c.call("POST", "/resource_providers", "1.23", json::object{{"name", "x"}, {"uuid", cn1}}),
      409, "placement.duplicate_name");

  // A tree: cn1 ← numa0 ← pf0; in_tree lists it; a parent cannot be deleted.
  auto numa0 = c.provider("numa0", cn1);
  auto pf0 = c.provider("pf0", numa0);
  auto other = c.provider("other");
  auto pf = c.call("GET", "/resource_providers/" + pf0, "1.14");
  EXPECT_EQ(pf.body.at("root_provider_uuid"), json::value(cn1));
  EXPECT_EQ(pf.body.at("parent_provider_uuid"), json::value(numa0));
  auto tree = c.call("GET", "/resource_providers?in_tree=" + pf0, "1.14");
  ASSERT_EQ(tree.status, 200) << tree.raw;
  EXPECT_EQ(tree.body.at("resource_providers").as_array().size(), 3u);
  EXPECT_EQ(c.call("GET", "/resource_providers?in_tree=" + pf0, "1.13").status,
            400);  // not yet a filter
  EXPECT_EQ(c.call("GET", "/resource_providers?name=other", "1.0")
                .body.at("resource_providers")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(c.call("GET", "/resource_providers?uuid=" + other, "1.0")
                .body.at("resource_providers")
                .as_array()
                .size(),
            1u);
  expect_error(c.call("DELETE", "/resource_providers/" + numa0, "1.23"), 409,
               "placement.resource_provider.cannot_delete_parent");
  expect_error(c.call("POST", "/resource_providers", "1.20",
                      json::object{{"name", "orphan"}, {"parent_provider_uuid", uuid4()}}),
               400);

  // Update: a rename; re-parenting only from 1.37, and never into its own subtree.
  auto renamed = c.call("PUT", "/resource_providers/" + other, "1.14",
                        json::object{{"name", "other-renamed"}});
  ASSERT_EQ(renamed.status, 200) << renamed.raw;
  EXPECT_EQ(renamed.body.at("name"), "other-renamed");
  auto adopt = c.call("PUT", "/resource_providers/" + other, "1.14",
                      json::object{{"name", "other-renamed"}, {"parent_provider_uuid", cn1}});
  ASSERT_EQ(adopt.status, 200) << adopt.raw;  // from no parent to one is allowed
  EXPECT_EQ(adopt.body.at("root_provider_uuid"), json::value(cn1));
  expect_error(c.call("PUT", "/resource_providers/" + pf0, "1.36",
                      json::object{{"name", "pf0"}, {"parent_provider_uuid", cn1}}),
               400);
  auto moved = c.call("PUT", "/resource_providers/" + pf0, "1.37",
                      json::object{{"name", "pf0"}, {"parent_provider_uuid", cn1}});
  EXPECT_EQ(moved.status, 200) << moved.raw;
  expect_error(c.call("PUT", "/resource_providers/" + cn1, "1.37",
                      json::object{{"name", "cn1"}, {"parent_provider_uuid", pf0}}),
               400);
  auto unparented = c.call("PUT", "/resource_providers/" + numa0, "1.37",
                           json::object{{"name", "numa0"}, {"parent_provider_uuid", nullptr}});
  ASSERT_EQ(unparented.status, 200) << unparented.raw;
  EXPECT_EQ(unparented.body.at("root_provider_uuid"), json::value(numa0));

  EXPECT_EQ(c.call("DELETE", "/resource_providers/" + pf0, "1.0").status, 204);
  expect_error(c.call("GET", "/resource_providers/" + pf0, "1.0"), 404);
  expect_error(c.call("DELETE", "/resource_providers/" + pf0, "1.0"), 404);
}

TEST(PlacementApi, InventoriesGenerationsAndRefusals) {
  Cloud c;
  auto rp = c.provider("cn1");
  auto base = "/resource_providers/" + rp + "/inventories";
  json::object inv{
      {"VCPU", json::object{{"total", 8}, {"allocation_ratio", 2.0}}},
      {"MEMORY_MB", json::object{{"total", 4096}, {"reserved", 512}, {"max_unit", 2048}}}};
  auto put = c.call("PUT", base, "1.26",
                    json::object{{"resource_provider_generation", 0}, {"inventories", inv}});
  ASSERT_EQ(put.status, 200) << put.raw;
  EXPECT_EQ(put.body.at("resource_provider_generation"), 1);
  EXPECT_EQ(put.body.at("inventories").at("MEMORY_MB").at("min_unit"), 1);
  EXPECT_EQ(put.body.at("inventories").at("MEMORY_MB").at("step_size"), 1);
  EXPECT_EQ(put.body.at("inventories").at("VCPU").at("max_unit"), 2147483647);
  // A stale generation is a conflict and changes nothing.
  expect_error(c.call("PUT", base, "1.26",
                      json::object{{"resource_provider_generation", 0}, {"inventories", inv}}),
               409, "placement.concurrent_update");
  EXPECT_EQ(c.generation(rp), 1);
  auto one = c.call("GET", base + "/MEMORY_MB", "1.0");
  ASSERT_EQ(one.status, 200) << one.raw;
  EXPECT_EQ(one.body.at("reserved"), 512);
  EXPECT_EQ(one.body.at("resource_provider_generation"), 1);
  expect_error(c.call("GET", base + "/DISK_GB", "1.0"), 404);
  // One class: update (generation checked), create with POST, delete.
  auto upd = c.call("PUT", base + "/VCPU", "1.0",
                    json::object{{"resource_provider_generation", 1}, {"total", 16}});
  ASSERT_EQ(upd.status, 200) << upd.raw;
  EXPECT_EQ(upd.body.at("resource_provider_generation"), 2);
  expect_error(c.call("PUT", base + "/VCPU", "1.23",
                      json::object{{"resource_provider_generation", 1}, {"total", 16}}),
               409, "placement.concurrent_update");
  auto post =
      c.call("POST", base, "1.0", json::object{{"resource_class", "DISK_GB"}, {"total", 100}});
  ASSERT_EQ(post.status, 201) << post.raw;
  EXPECT_EQ(post.body.at("resource_provider_generation"), 3);
  // Reserved above total is refused; equal to total only from 1.26.
  expect_error(
      c.call("PUT", base + "/DISK_GB", "1.25",
             json::object{{"resource_provider_generation", 3}, {"total", 100}, {"reserved", 100}}),
      400);
  EXPECT_EQ(
      c.call("PUT", base + "/DISK_GB", "1.26",
             json::object{{"resource_provider_generation", 3}, {"total", 100}, {"reserved", 100}})
          .status,
      200);
  expect_error(c.call("PUT", base, "1.26",
                      json::object{{"resource_provider_generation", 4},
                                   {"inventories",
                                    json::object{{"CUSTOM_NOPE", json::object{{"total", 1}}}}}}),
               400);
  // Usage: a class in use cannot be removed.
  auto consumer = uuid4();
  ASSERT_EQ(
      c.call("PUT", "/allocations/" + consumer, "1.12", allocation_body({{rp, {{"VCPU", 4}}}}))
          .status,
      204);
  auto usages = c.call("GET", "/resource_providers/" + rp + "/usages", "1.0");
  EXPECT_EQ(usages.body.at("usages").at("VCPU"), 4);
  EXPECT_EQ(usages.body.at("usages").at("MEMORY_MB"), 0);
  expect_error(c.call("DELETE", base + "/VCPU", "1.23"), 409, "placement.concurrent_update");
  auto g = c.generation(rp);
  expect_error(c.call("PUT", base, "1.23",
                      json::object{{"resource_provider_generation", g},
                                   {"inventories",
                                    json::object{{"MEMORY_MB", json::object{{"total", 4096}}}}}}),
               409, "placement.inventory.inuse");
  expect_error(c.call("DELETE", base, "1.23"), 409, "placement.inventory.inuse");
  EXPECT_EQ(c.call("DELETE", base, "1.4").status, 405);
  EXPECT_EQ(c.call("DELETE", base + "/MEMORY_MB", "1.0").status, 204);
  EXPECT_EQ(c.call("DELETE", "/allocations/" + consumer, "1.0").status, 204);
  EXPECT_EQ(c.call("DELETE", base, "1.5").status, 204);
  EXPECT_TRUE(c.call("GET", base, "1.0").body.at("inventories").as_object().empty());
}

TEST(PlacementApi, AllocationsInEveryForm) {
  Cloud c;
  auto rp = c.provider("cn1");
  c.inventory(rp, {{"VCPU", 4}, {"MEMORY_MB", 2048}, {"DISK_GB", 10}});
  auto a = uuid4(), b = uuid4();
  // The list form (before 1.12), without project and user (before 1.8).
  json::array list{json::object{{"resource_provider", json::object{{"uuid", rp}}},
                                {"resources", json::object{{"VCPU", 1}, {"MEMORY_MB", 512}}}}};
  ASSERT_EQ(c.call("PUT", "/allocations/" + a, "1.0", json::object{{"allocations", list}}).status,
            204);
  auto got = c.call("GET", "/allocations/" + a, "1.0");
  EXPECT_EQ(got.body.at("allocations").at(rp).at("resources").at("MEMORY_MB"), 512);
  EXPECT_FALSE(got.body.contains("project_id"));
  expect_error(c.call("PUT", "/allocations/" + a, "1.8", json::object{{"allocations", list}}), 400);
  // The dict form (1.12) with project and user, shown back.
  ASSERT_EQ(
      c.call("PUT", "/allocations/" + b, "1.12", allocation_body({{rp, {{"VCPU", 2}}}})).status,
      204);
  auto dict = c.call("GET", "/allocations/" + b, "1.12");
  EXPECT_EQ(dict.body.at("project_id"), "proj-1");
  EXPECT_EQ(dict.body.at("user_id"), json::value(kUser));
  EXPECT_FALSE(dict.body.contains("consumer_generation"));
  // Consumer generations (1.28): shown, required, checked.
  auto gen = c.call("GET", "/allocations/" + b, "1.28");
  EXPECT_EQ(gen.body.at("consumer_generation"), 1);
  expect_error(c.call("PUT", "/allocations/" + b, "1.28", allocation_body({{rp, {{"VCPU", 1}}}})),
               400);
  expect_error(c.call("PUT", "/allocations/" + b, "1.28",
                      allocation_body({{rp, {{"VCPU", 1}}}}, std::nullopt, true)),
               409, "placement.concurrent_update");
  ASSERT_EQ(
      c.call("PUT", "/allocations/" + b, "1.28", allocation_body({{rp, {{"VCPU", 1}}}}, 1, true))
          .status,
      204);
  EXPECT_EQ(c.call("GET", "/allocations/" + b, "1.28").body.at("consumer_generation"), 2);
  auto fresh = uuid4();
  expect_error(c.call("PUT", "/allocations/" + fresh, "1.28",
                      allocation_body({{rp, {{"VCPU", 1}}}}, 7, true)),
               409);
  // Capacity: used + requested ≤ (total − reserved) × ratio; unit constraints.
  auto over =
      c.call("PUT", "/allocations/" + fresh, "1.12", allocation_body({{rp, {{"VCPU", 3}}}}));
  expect_error(over, 409);
  EXPECT_NE(detail(over).find("The requested amount would exceed the capacity."), std::string::npos)
      << over.raw;
  auto exact =
      c.call("PUT", "/allocations/" + fresh, "1.12", allocation_body({{rp, {{"VCPU", 2}}}}));
  EXPECT_EQ(exact.status, 204) << exact.raw;  // 1 + 1 + 2 = 4
  expect_error(
      c.call("PUT", "/allocations/" + uuid4(), "1.12", allocation_body({{rp, {{"DISK_GB", 11}}}})),
      409);
  expect_error(
      c.call("PUT", "/allocations/" + uuid4(), "1.12", allocation_body({{uuid4(), {{"VCPU", 1}}}})),
      400);
  expect_error(
      c.call("PUT", "/allocations/" + uuid4(), "1.12", allocation_body({{rp, {{"CUSTOM_X", 1}}}})),
      400);
  expect_error(c.call("PUT", "/allocations/" + uuid4(), "1.12",
                      allocation_body({{rp, {{"PCI_DEVICE", 1}}}})),
               409);
  expect_error(
      c.call("PUT", "/allocations/not-a-uuid", "1.12", allocation_body({{rp, {{"VCPU", 1}}}})),
      400);
  // The provider's view of its allocations, and usages.
  auto by_rp = c.call("GET", "/resource_providers/" + rp + "/allocations", "1.28");
  ASSERT_EQ(by_rp.status, 200) << by_rp.raw;
  EXPECT_EQ(by_rp.body.at("allocations").as_object().size(), 3u);
  EXPECT_EQ(by_rp.body.at("allocations").at(b).at("consumer_generation"), 2);
  EXPECT_EQ(
      c.call("GET", "/resource_providers/" + rp + "/usages", "1.0").body.at("usages").at("VCPU"),
      4);
  auto usages = c.call("GET", "/usages?project_id=proj-1", "1.9");
  ASSERT_EQ(usages.status, 200) << usages.raw;
  EXPECT_EQ(usages.body.at("usages").at("VCPU"), 3);  // a was written before 1.8: another project
  EXPECT_EQ(c.call("GET", "/usages?project_id=proj-1&user_id=nobody", "1.9")
                .body.at("usages")
                .as_object()
                .size(),
            0u);
  expect_error(c.call("GET", "/usages", "1.9"), 400);
  EXPECT_EQ(c.call("GET", "/usages?project_id=proj-1", "1.8").status, 404);
  // Consumer types (1.38): required in writes, grouped usages.
  auto typed = allocation_body({{rp, {{"MEMORY_MB", 256}}}}, std::nullopt, true);
  expect_error(c.call("PUT", "/allocations/" + uuid4(), "1.38", typed), 400);
  typed["consumer_type"] = "INSTANCE";
  auto t = uuid4();
  ASSERT_EQ(c.call("PUT", "/allocations/" + t, "1.38", typed).status, 204);
  EXPECT_EQ(c.call("GET", "/allocations/" + t, "1.38").body.at("consumer_type"), "INSTANCE");
  auto grouped = c.call("GET", "/usages?project_id=proj-1", "1.38");
  ASSERT_EQ(grouped.status, 200) << grouped.raw;
  EXPECT_EQ(grouped.body.at("usages").at("INSTANCE").at("MEMORY_MB"), 256);
  EXPECT_EQ(grouped.body.at("usages").at("INSTANCE").at("consumer_count"), 1);
  EXPECT_EQ(grouped.body.at("usages").at("unknown").at("consumer_count"), 2);
  // Emptying with PUT (1.28) and DELETE.
  ASSERT_EQ(c.call("PUT", "/allocations/" + b, "1.28",
                   json::object{{"allocations", json::object{}},
                                {"project_id", "proj-1"},
                                {"user_id", kUser},
                                {"consumer_generation", 2}})
                .status,
            204);
  EXPECT_TRUE(
      c.call("GET", "/allocations/" + b, "1.28").body.at("allocations").as_object().empty());
  EXPECT_EQ(c.call("DELETE", "/allocations/" + a, "1.0").status, 204);
  expect_error(c.call("DELETE", "/allocations/" + a, "1.0"), 404);
  EXPECT_EQ(
      c.call("GET", "/resource_providers/" + rp + "/usages", "1.0").body.at("usages").at("VCPU"),
      2);
}

TEST(PlacementApi, PostAllocationsIsAllOrNothing) {
  Cloud c;
  auto rp = c.provider("small");
  c.inventory(rp, {{"VCPU", 2}});
  auto ok = uuid4(), bad = uuid4();
  json::object body{{ok, allocation_body({{rp, {{"VCPU", 1}}}})},
                    {bad, allocation_body({{rp, {{"VCPU", 2}}}})}};
  expect_error(c.call("POST", "/allocations", "1.13", body), 409);
  EXPECT_TRUE(
      c.call("GET", "/allocations/" + ok, "1.12").body.at("allocations").as_object().empty());
  EXPECT_TRUE(
      c.call("GET", "/allocations/" + bad, "1.12").body.at("allocations").as_object().empty());
  EXPECT_EQ(
      c.call("GET", "/resource_providers/" + rp + "/usages", "1.0").body.at("usages").at("VCPU"),
      0);
  // A consumer with a bad generation spoils the whole request too.
  json::object gens{{ok, allocation_body({{rp, {{"VCPU", 1}}}}, std::nullopt, true)},
                    {bad, allocation_body({{rp, {{"VCPU", 1}}}}, 3, true)}};
  expect_error(c.call("POST", "/allocations", "1.28", gens), 409, "placement.concurrent_update");
  EXPECT_TRUE(
      c.call("GET", "/allocations/" + ok, "1.12").body.at("allocations").as_object().empty());
  // Both fit: both written; then one emptied and the other moved up in one request.
  body[bad] = allocation_body({{rp, {{"VCPU", 1}}}});
  ASSERT_EQ(c.call("POST", "/allocations", "1.13", body).status, 204);
  EXPECT_EQ(
      c.call("GET", "/resource_providers/" + rp + "/usages", "1.0").body.at("usages").at("VCPU"),
      2);
  json::object swap{{ok, allocation_body({})}, {bad, allocation_body({{rp, {{"VCPU", 2}}}})}};
  ASSERT_EQ(c.call("POST", "/allocations", "1.13", swap).status, 204);
  EXPECT_EQ(c.call("GET", "/allocations/" + bad, "1.12")
                .body.at("allocations")
                .at(rp)
                .at("resources")
                .at("VCPU"),
            2);
  EXPECT_EQ(
      c.call("GET", "/resource_providers/" + rp + "/usages", "1.0").body.at("usages").at("VCPU"),
      2);
}

TEST(PlacementApi, CandidatesHonourCapacityTraitsAndAggregates) {
  Cloud c;
  auto big = c.provider("big"), small = c.provider("small"), full = c.provider("full");
  c.inventory(big, {{"VCPU", 16}, {"MEMORY_MB", 32768}});
  c.inventory(small, {{"VCPU", 2}, {"MEMORY_MB", 1024}});
  c.inventory(full, {{"VCPU", 4}, {"MEMORY_MB", 4096}});
  ASSERT_EQ(
      c.call("PUT", "/allocations/" + uuid4(), "1.12", allocation_body({{full, {{"VCPU", 4}}}}))
          .status,
      204);
  ASSERT_EQ(c.call("PUT", "/traits/CUSTOM_FAST", "1.6").status, 201);
  ASSERT_EQ(c.call("PUT", "/resource_providers/" + big + "/traits", "1.6",
                   json::object{{"traits", json::array{"CUSTOM_FAST", "HW_CPU_X86_AVX2"}},
                                {"resource_provider_generation", c.generation(big)}})
                .status,
            200);
  auto agg = uuid4();
  ASSERT_EQ(
      c.call("PUT", "/resource_providers/" + small + "/aggregates", "1.1", json::array{agg}).status,
      200);

  auto ask = [&](const std::string& q, const std::string& version = "1.39") {
    auto r = c.call("GET", "/allocation_candidates?" + q, version);
    EXPECT_EQ(r.status, 200) << r.raw;
    std::set<std::string> out;
    for (auto& req : r.body.at("allocation_requests").as_array())
      for (auto& kv : req.at("allocations").as_object()) out.insert(std::string(kv.key()));
    return out;
  };
  EXPECT_EQ(ask("resources=VCPU:1,MEMORY_MB:512"), (std::set<std::string>{big, small}));
  EXPECT_EQ(ask("resources=VCPU:2,MEMORY_MB:2048"), (std::set<std::string>{big}));
  EXPECT_EQ(ask("resources=VCPU:1&required=CUSTOM_FAST"), (std::set<std::string>{big}));
  EXPECT_EQ(ask("resources=VCPU:1&required=!CUSTOM_FAST"), (std::set<std::string>{small}));
  EXPECT_EQ(ask("resources=VCPU:1&required=in:CUSTOM_FAST,HW_CPU_X86_SSE"),
            (std::set<std::string>{big}));
  EXPECT_EQ(ask("resources=VCPU:1&member_of=" + agg), (std::set<std::string>{small}));
  EXPECT_EQ(ask("resources=VCPU:1&member_of=!" + agg), (std::set<std::string>{big}));
  EXPECT_EQ(ask("resources=VCPU:1&in_tree=" + small), (std::set<std::string>{small}));
  EXPECT_EQ(ask("resources=VCPU:1&limit=1").size(), 1u);
  EXPECT_TRUE(ask("resources=VCPU:64").empty());
  // Shapes: summaries with capacity and used; traits from 1.17; list form before 1.12.
  auto r = c.call("GET", "/allocation_candidates?resources=VCPU:1", "1.39");
  auto& sum = r.body.at("provider_summaries").at(big).as_object();
  EXPECT_EQ(sum.at("resources").at("VCPU").at("capacity"), 16);
  EXPECT_EQ(sum.at("resources").at("VCPU").at("used"), 0);
  EXPECT_TRUE(sum.at("resources").as_object().contains("MEMORY_MB"));  // every class from 1.27
  EXPECT_EQ(sum.at("traits").as_array().size(), 2u);
  EXPECT_EQ(sum.at("root_provider_uuid"), json::value(big));
  EXPECT_EQ(r.body.at("allocation_requests").as_array()[0].at("mappings").at("").as_array().size(),
            1u);
  auto v110 = c.call("GET", "/allocation_candidates?resources=VCPU:1", "1.10");
  ASSERT_EQ(v110.status, 200) << v110.raw;
  auto& first = v110.body.at("allocation_requests").as_array()[0].at("allocations").as_array()[0];
  EXPECT_TRUE(first.as_object().contains("resource_provider"));
  EXPECT_FALSE(v110.body.at("provider_summaries").at(big).as_object().contains("traits"));
  EXPECT_FALSE(
      v110.body.at("provider_summaries").at(big).at("resources").as_object().contains("MEMORY_MB"));
  // Bad requests.
  expect_error(c.call("GET", "/allocation_candidates?resources=VCPU:0", "1.39"), 400);
  expect_error(c.call("GET", "/allocation_candidates?resources=NOPE:1", "1.39"), 400);
  expect_error(
      c.call("GET", "/allocation_candidates?resources=VCPU:1&required=CUSTOM_MISSING", "1.39"),
      400);
  expect_error(c.call("GET", "/allocation_candidates?resources=VCPU:1&required=in:A,B", "1.38"),
               400);
  expect_error(c.call("GET", "/allocation_candidates?resources=VCPU:1&limit=0", "1.39"), 400);
  expect_error(c.call("GET", "/allocation_candidates?resources=VCPU:1&limit=1", "1.15"), 400);
  expect_error(c.call("GET", "/allocation_candidates?resources=VCPU:1&member_of=bogus", "1.39"),
               400);
  expect_error(c.call("GET", "/allocation_candidates", "1.39"), 400);
  EXPECT_EQ(c.call("GET", "/allocation_candidates?resources=VCPU:1", "1.9").status, 404);
  // GET /resource_providers with the same filters.
  auto rps = c.call("GET", "/resource_providers?resources=VCPU:2&required=!CUSTOM_FAST", "1.22");
  ASSERT_EQ(rps.status, 200) << rps.raw;
  ASSERT_EQ(rps.body.at("resource_providers").as_array().size(), 1u);
  EXPECT_EQ(rps.body.at("resource_providers").as_array()[0].at("uuid"), json::value(small));
  EXPECT_EQ(c.call("GET", "/resource_providers?member_of=in:" + agg + "," + uuid4(), "1.3")
                .body.at("resource_providers")
                .as_array()
                .size(),
            1u);
  expect_error(c.call("GET", "/resource_providers?resources=VCPU:1", "1.3"), 400);
}

TEST(PlacementApi, NestedCandidatesSpanATree) {
  Cloud c;
  auto cn = c.provider("cn");
  auto gpu = c.provider("gpu0", cn);
  c.inventory(cn, {{"VCPU", 8}});
  c.inventory(gpu, {{"VGPU", 2}});
  auto r = c.call("GET", "/allocation_candidates?resources=VCPU:1,VGPU:1", "1.29");
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body.at("allocation_requests").as_array().size(), 1u);
  auto& a = r.body.at("allocation_requests").as_array()[0].at("allocations").as_object();
  EXPECT_EQ(a.at(cn).at("resources").at("VCPU"), 1);
  EXPECT_EQ(a.at(gpu).at("resources").at("VGPU"), 1);
  EXPECT_EQ(r.body.at("provider_summaries").at(gpu).at("parent_provider_uuid"), json::value(cn));
  // Before 1.29 a request is served by one provider only.
  EXPECT_TRUE(c.call("GET", "/allocation_candidates?resources=VCPU:1,VGPU:1", "1.28")
                  .body.at("allocation_requests")
                  .as_array()
                  .empty());
}

TEST(PlacementApi, GranularGroupsEachOnOneProvider) {
  Cloud c;
  auto cn = c.provider("cn");
  auto nic1 = c.provider("nic1", cn), nic2 = c.provider("nic2", cn);
  c.inventory(cn, {{"VCPU", 8}});
  c.inventory(nic1, {{"SRIOV_NET_VF", 4}});
  c.inventory(nic2, {{"SRIOV_NET_VF", 4}});
  ASSERT_EQ(c.call("PUT", "/traits/CUSTOM_PHYSNET_A", "1.6").status, 201);
  ASSERT_EQ(c.call("PUT", "/traits/CUSTOM_PHYSNET_B", "1.6").status, 201);
  for (auto& [nic, trait] :
       {std::pair{nic1, "CUSTOM_PHYSNET_A"}, std::pair{nic2, "CUSTOM_PHYSNET_B"}})
    ASSERT_EQ(c.call("PUT", "/resource_providers/" + nic + "/traits", "1.6",
                     json::object{{"traits", json::array{trait}},
                                  {"resource_provider_generation", c.generation(nic)}})
                  .status,
              200);
  auto count = [&](const std::string& q, const std::string& version = "1.39") {
    auto r = c.call("GET", "/allocation_candidates?" + q, version);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.contains("allocation_requests")
               ? r.body.at("allocation_requests").as_array().size()
               : 0u;
  };
  auto r = c.call("GET",
                  "/allocation_candidates?resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1="
                  "CUSTOM_PHYSNET_A",
                  "1.34");
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body.at("allocation_requests").as_array().size(), 1u);
  auto& one = r.body.at("allocation_requests").as_array()[0].as_object();
  EXPECT_EQ(one.at("allocations").at(cn).at("resources").at("VCPU"), 1);
  EXPECT_EQ(one.at("allocations").at(nic1).at("resources").at("SRIOV_NET_VF"), 1);
  EXPECT_EQ(one.at("mappings").at("1").as_array()[0], json::value(nic1));
  EXPECT_EQ(one.at("mappings").at("").as_array()[0], json::value(cn));
  EXPECT_EQ(r.body.at("provider_summaries").as_object().size(), 3u);  // the whole tree
  // Isolation: two groups on two providers, or also on one when the policy allows and it fits.
  EXPECT_EQ(count("resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=isolate"), 2u);
  EXPECT_EQ(count("resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=none"), 4u);
  EXPECT_EQ(count("resources1=SRIOV_NET_VF:3&resources2=SRIOV_NET_VF:3&group_policy=none"), 2u);
  // Named suffixes from 1.33.
  auto named = c.call(
      "GET", "/allocation_candidates?resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET_B",
      "1.34");
  ASSERT_EQ(named.status, 200) << named.raw;
  ASSERT_EQ(named.body.at("allocation_requests").as_array().size(), 1u);
  EXPECT_EQ(
      named.body.at("allocation_requests").as_array()[0].at("mappings").at("_NET").as_array()[0],
      json::value(nic2));
  // A group's amount must come from one provider: 6 VFs are on no single NIC.
  EXPECT_EQ(count("resources1=SRIOV_NET_VF:6"), 0u);
  EXPECT_EQ(count("resources=SRIOV_NET_VF:6"), 0u);
}

TEST(PlacementApi, TraitsClassesAndAggregates) {
  Cloud c;
  auto traits = c.call("GET", "/traits?name=startswith:COMPUTE_", "1.6");
  ASSERT_EQ(traits.status, 200) << traits.raw;
  EXPECT_GT(traits.body.at("traits").as_array().size(), 10u);
  EXPECT_EQ(c.call("GET", "/traits/HW_CPU_X86_AVX2", "1.6").status, 204);
  EXPECT_EQ(c.call("PUT", "/traits/CUSTOM_GOLD", "1.6").status, 201);
  EXPECT_EQ(c.call("PUT", "/traits/CUSTOM_GOLD", "1.6").status, 204);
  expect_error(c.call("PUT", "/traits/GOLD", "1.6"), 400);
  expect_error(c.call("DELETE", "/traits/HW_CPU_X86_AVX2", "1.6"), 400);
  expect_error(c.call("GET", "/traits/CUSTOM_NONE", "1.6"), 404);
  auto in = c.call("GET", "/traits?name=in:CUSTOM_GOLD,COMPUTE_NODE", "1.6");
  EXPECT_EQ(in.body.at("traits").as_array().size(), 2u);
  expect_error(c.call("GET", "/traits?name=CUSTOM_GOLD", "1.6"), 400);
  // Provider traits with generations.
  auto rp = c.provider("cn1");
  auto path = "/resource_providers/" + rp + "/traits";
  auto set = c.call("PUT", path, "1.6",
                    json::object{{"traits", json::array{"CUSTOM_GOLD", "COMPUTE_NODE"}},
                                 {"resource_provider_generation", 0}});
  ASSERT_EQ(set.status, 200) << set.raw;
  EXPECT_EQ(set.body.at("resource_provider_generation"), 1);
  expect_error(c.call("PUT", path, "1.23",
                      json::object{{"traits", json::array{"CUSTOM_GOLD"}},
                                   {"resource_provider_generation", 0}}),
               409, "placement.concurrent_update");
  expect_error(c.call("PUT", path, "1.6",
                      json::object{{"traits", json::array{"CUSTOM_MISSING"}},
                                   {"resource_provider_generation", 1}}),
               400);
  EXPECT_EQ(c.call("GET", path, "1.6").body.at("traits").as_array().size(), 2u);
  EXPECT_EQ(c.call("GET", "/traits?associated=true&name=startswith:CUSTOM_", "1.6")
                .body.at("traits")
                .as_array()
                .size(),
            1u);
  expect_error(c.call("DELETE", "/traits/CUSTOM_GOLD", "1.6"), 409);
  EXPECT_EQ(c.call("DELETE", path, "1.6").status, 204);
  EXPECT_EQ(c.call("DELETE", "/traits/CUSTOM_GOLD", "1.6").status, 204);
  // Resource classes.
  auto classes = c.call("GET", "/resource_classes", "1.2");
  ASSERT_EQ(classes.status, 200) << classes.raw;
  EXPECT_EQ(classes.body.at("resource_classes").as_array()[0].at("name"), "VCPU");
  EXPECT_EQ(
      c.call("POST", "/resource_classes", "1.2", json::object{{"name", "CUSTOM_FPGA_X"}}).status,
      201);
  expect_error(c.call("POST", "/resource_classes", "1.23", json::object{{"name", "CUSTOM_FPGA_X"}}),
               409, "placement.duplicate_name");
  expect_error(c.call("POST", "/resource_classes", "1.2", json::object{{"name", "FPGA_X"}}), 400);
  EXPECT_EQ(c.call("GET", "/resource_classes/CUSTOM_FPGA_X", "1.2").status, 200);
  EXPECT_EQ(c.call("PUT", "/resource_classes/CUSTOM_NEW", "1.7").status, 201);
  EXPECT_EQ(c.call("PUT", "/resource_classes/CUSTOM_NEW", "1.7").status, 204);
  auto renamed =
      c.call("PUT", "/resource_classes/CUSTOM_NEW", "1.2", json::object{{"name", "CUSTOM_NEWER"}});
  EXPECT_EQ(renamed.status, 200) << renamed.raw;
  expect_error(c.call("DELETE", "/resource_classes/VCPU", "1.2"), 400);
  c.inventory(rp, {{"CUSTOM_FPGA_X", 2}});
  expect_error(c.call("DELETE", "/resource_classes/CUSTOM_FPGA_X", "1.2"), 409);
  // A renamed class keeps its inventories.
  ASSERT_EQ(c.call("PUT", "/resource_classes/CUSTOM_FPGA_X", "1.6",
                   json::object{{"name", "CUSTOM_FPGA_Y"}})
                .status,
            200);
  EXPECT_EQ(c.call("GET", "/resource_providers/" + rp + "/inventories/CUSTOM_FPGA_Y", "1.6").status,
            200);
  EXPECT_EQ(c.call("DELETE", "/resource_classes/CUSTOM_NEWER", "1.2").status, 204);
  // Aggregates: a bare list before 1.19, with the generation from it.
  auto agg1 = uuid4(), agg2 = uuid4();
  auto apath = "/resource_providers/" + rp + "/aggregates";
  auto old = c.call("PUT", apath, "1.1", json::array{agg1});
  ASSERT_EQ(old.status, 200) << old.raw;
  EXPECT_FALSE(old.body.contains("resource_provider_generation"));
  auto g = c.generation(rp);
  auto now = c.call(
      "PUT", apath, "1.19",
      json::object{{"aggregates", json::array{agg1, agg2}}, {"resource_provider_generation", g}});
  ASSERT_EQ(now.status, 200) << now.raw;
  EXPECT_EQ(now.body.at("resource_provider_generation"), g + 1);
  expect_error(
      c.call("PUT", apath, "1.23",
             json::object{{"aggregates", json::array{}}, {"resource_provider_generation", g}}),
      409, "placement.concurrent_update");
  EXPECT_EQ(c.call("GET", apath, "1.19").body.at("aggregates").as_array().size(), 2u);
  expect_error(c.call("PUT", apath, "1.1", json::array{"not-a-uuid"}), 400);
  EXPECT_EQ(c.call("GET", apath, "1.0").status, 404);
}

TEST(PlacementApi, BadInputIsA400WithPlacementsBody) {
  Cloud c;
  auto rp = c.provider("cn1");
  struct Case {
    std::string method, path, version, body;
    int status;
  };
  std::vector<Case> cases = {
      {"POST", "/resource_providers", "1.20", "{not json", 400},
      {"POST", "/resource_providers", "1.20", "[]", 400},
      {"POST", "/resource_providers", "1.20", R"({"name": 7})", 400},
      {"POST", "/resource_providers", "1.20", R"({"name": "x", "bogus": 1})", 400},
      {"POST", "/resource_providers", "1.20", R"({"uuid": "bad"})", 400},
      {"POST", "/resource_providers", "1.20", "{\"name\": \"" + std::string(201, 'a') + "\"}", 400},
      {"POST", "/resource_providers", "1.13", R"({"name": "x", "parent_provider_uuid": null})",
       400},
      {"PUT", "/resource_providers/" + rp, "1.20", R"({"name": null})", 400},
      {"PUT", "/resource_providers/" + rp + "/inventories", "1.20", R"({"inventories": {}})", 400},
      {"PUT", "/resource_providers/" + rp + "/inventories", "1.20",
       R"({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 0}}})", 400},
      {"PUT", "/resource_providers/" + rp + "/inventories", "1.20",
       R"({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 9999999999}}})",
       400},
      {"PUT", "/resource_providers/" + rp + "/inventories", "1.20",
       R"({"resource_provider_generation": 0, "inventories": {"vcpu": {"total": 1}}})", 400},
      {"PUT", "/resource_providers/" + rp + "/inventories", "1.20",
       R"({"resource_provider_generation": "0", "inventories": {}})", 400},
      {"PUT", "/allocations/" + uuid4(), "1.12", R"({"allocations": []})", 400},
      {"PUT", "/allocations/" + uuid4(), "1.12",
       R"({"allocations": {"x": {}}, "project_id": "p", "user_id": "u"})", 400},
      {"PUT", "/allocations/" + uuid4(), "1.12",
       "{\"allocations\": {\"" + rp +
           "\": {\"resources\": {\"VCPU\": -1}}}, \"project_id\": \"p\", \"user_id\": \"u\"}",
       400},
      {"PUT", "/allocations/" + uuid4(), "1.12",
       "{\"allocations\": {\"" + rp +
           "\": {\"resources\": {\"VCPU\": 1.5}}}, \"project_id\": \"p\", \"user_id\": \"u\"}",
       400},
      {"POST", "/allocations", "1.13", R"({})", 400},
      {"POST", "/allocations", "1.13", R"({"not-a-uuid": {}})", 400},
      {"POST", "/allocations", "1.13",
       "{\"aaaaaaaa-0000-0000-0000-000000000001\": " +
           json::serialize(allocation_body({{rp, {{"VCPU", 1}}}})) +
           ", \"AAAAAAAA-0000-0000-0000-000000000001\": " +
           json::serialize(allocation_body({{rp, {{"VCPU", 1}}}})) + "}",
       400},
      {"GET", "/resource_providers?bogus=1", "1.39", "", 400},
      {"GET", "/resource_providers?uuid=nope", "1.39", "", 400},
      {"GET", "/resource_providers?member_of=a,b", "1.39", "", 400},
      {"GET", "/resource_providers?member_of=!" + uuid4(), "1.31", "", 400},
      {"GET", "/resource_providers?required=", "1.39", "", 400},
      {"GET", "/resource_providers?resources=VCPU", "1.39", "", 400},
      {"GET", "/resource_providers?resources=VCPU:x", "1.39", "", 400},
      {"GET", "/allocation_candidates?resources1=VCPU:1", "1.24", "", 400},
      {"GET", "/allocation_candidates?resources1=VCPU:1&required2=CUSTOM_X", "1.39", "", 400},
      {"GET", "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1", "1.39", "", 400},
      {"GET", "/allocation_candidates?resources1=VCPU:1&group_policy=maybe", "1.39", "", 400},
      {"GET", "/allocation_candidates?resources_A=VCPU:1", "1.32", "", 400},
      {"GET", "/allocation_candidates?resources01=VCPU:1", "1.32", "", 400},
      {"GET", "/allocation_candidates?resources=VCPU:1&in_tree=nope", "1.39", "", 400},
      {"GET", "/traits?associated=maybe", "1.39", "", 400},
      {"PUT", "/resource_providers/" + rp + "/traits", "1.6",
       R"({"traits": "x", "resource_provider_generation": 0})", 400},
      {"PUT", "/resource_providers/" + rp + "/traits", "1.6",
       R"({"traits": ["CUSTOM_A", "CUSTOM_A"], "resource_provider_generation": 0})", 400},
  };
  for (auto& k : cases) {
    auto r = c.call(k.method, k.path, k.version, k.body);
    SCOPED_TRACE(k.method + " " + k.path + " " + k.body);
    expect_error(r, k.status);
  }
  // A body without the JSON media type is refused with 415.
  auto plain = c.call("POST", "/resource_providers", "1.20", std::string());
  expect_error(plain, 415);
}

// The scheduler's client: providers made idempotently, candidates, claims, moves and releases.
TEST(PlacementClient, LocalClientServesTheScheduler) {
  Cloud c;
  placement::LocalPlacementClient client(c.service_ptr_placement());
  placement::ProviderInventory node{uuid4(), "host-1",        8, 4096, 100, 4.0, 1.0, 1.0, 512,
                                    0,       {"COMPUTE_NODE"}};
  client.ensure_provider(node);
  auto g = c.generation(node.uuid);
  client.ensure_provider(node);  // nothing to change: the generation stays
  EXPECT_EQ(c.generation(node.uuid), g);
  node.vcpus = 16;
  client.ensure_provider(node);
  EXPECT_EQ(c.call("GET", "/resource_providers/" + node.uuid + "/inventories/VCPU", "1.0")
                .body.at("total"),
            16);
  placement::ProviderInventory other{
      uuid4(), "host-2", 2, 2048, 10, 1.0, 1.0, 1.0, 512, 0, {"COMPUTE_NODE", "CUSTOM_SSD"}};
  client.ensure_provider(other);

  placement::CandidateRequest want;
  want.resources = {{"VCPU", 2}, {"MEMORY_MB", 1024}};
  auto cands = client.allocation_candidates(want);
  ASSERT_EQ(cands.size(), 2u);
  for (auto& cand : cands) {
    EXPECT_EQ(cand.requested.at("VCPU"), 2);
    if (cand.provider_uuid == node.uuid) {
      EXPECT_EQ(cand.capacity.at("VCPU"), 64);  // 16 × 4.0
      EXPECT_EQ(cand.capacity.at("MEMORY_MB"), 3584);
      EXPECT_EQ(cand.used.at("VCPU"), 0);
    }
  }
  want.required_traits = {"CUSTOM_SSD"};
  ASSERT_EQ(client.allocation_candidates(want).size(), 1u);
  want.required_traits.clear();
  auto agg = uuid4();
  client.set_provider_aggregates(other.uuid, {agg});
  want.member_of = {{agg}};
  ASSERT_EQ(client.allocation_candidates(want).size(), 1u);
  EXPECT_EQ(client.allocation_candidates(want)[0].provider_uuid, other.uuid);
  want.member_of.clear();

  placement::Consumer server{uuid4(), "proj", kUser};
  EXPECT_TRUE(client.claim(server, {{other.uuid, {{"VCPU", 2}, {"MEMORY_MB", 1024}}}}));
  EXPECT_FALSE(client.claim({uuid4(), "proj", kUser}, {{other.uuid, {{"VCPU", 1}}}}));  // full
  EXPECT_EQ(client.allocations(server.uuid).at(other.uuid).at("VCPU"), 2);
  auto after = client.allocation_candidates(want);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].provider_uuid, node.uuid);
  // A claim replaces: moving the server to the other host frees the first.
  EXPECT_TRUE(client.claim(server, {{node.uuid, {{"VCPU", 2}, {"MEMORY_MB", 1024}}}}));
  EXPECT_EQ(client.allocations(server.uuid).count(other.uuid), 0u);
  // A resize keeps the old allocation under a migration record.
  auto migration = uuid4();
  client.move_allocations(server.uuid, migration, {migration, "proj", kUser});
  EXPECT_TRUE(client.allocations(server.uuid).empty());
  EXPECT_EQ(client.allocations(migration).at(node.uuid).at("MEMORY_MB"), 1024);
  client.move_allocations(migration, migration,
                          {migration, "proj", kUser});  // onto itself: nothing
  EXPECT_EQ(client.allocations(migration).at(node.uuid).at("MEMORY_MB"), 1024);
  client.release(migration);
  EXPECT_TRUE(client.allocations(migration).empty());
  EXPECT_EQ(c.call("GET", "/resource_providers/" + node.uuid + "/usages", "1.0")
                .body.at("usages")
                .at("VCPU"),
            0);
  client.release(migration);  // releasing nothing is fine
}

// Many threads claiming on one small provider never exceed its capacity.
TEST(PlacementClient, ConcurrentClaimsNeverOvercommit) {
  Cloud c;
  placement::LocalPlacementClient client(c.service_ptr_placement());
  placement::ProviderInventory node{uuid4(), "tiny", 8, 0, 0, 1.0, 1.0, 1.0, 0, 0, {}};
  client.ensure_provider(node);
  std::atomic<int> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 6; ++i) {
        if (client.claim({uuid4(), "proj", kUser}, {{node.uuid, {{"VCPU", 1}}}}))
          ++granted;
        else
          ++refused;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 8);
  EXPECT_EQ(refused.load(), 40);
  auto usage = c.call("GET", "/resource_providers/" + node.uuid + "/usages", "1.0");
  EXPECT_EQ(usage.body.at("usages").at("VCPU"), 8);
  auto allocations = c.call("GET", "/resource_providers/" + node.uuid + "/allocations", "1.0");
  EXPECT_EQ(allocations.body.at("allocations").as_object().size(), 8u);
}

// Two placement processes on one PostgreSQL database (each its own writer connection): the
// provider generation compare-and-swap keeps claims within capacity.
TEST(PlacementClient, TwoProcessesOnOnePostgresqlNeverOvercommit) {
  const char* url = std::getenv("NUBO_TEST_DATABASE");
  if (!url || std::string(url).rfind("postgres", 0) != 0)
    GTEST_SKIP() << "needs NUBO_TEST_DATABASE (PostgreSQL)";
  Cloud c;
  auto other_dir = fs::temp_directory_path() / ("nubo-placement-second-" + uuid4_hex());
  auto config = Config::parse("");
  config.set("database", "placement_connection", url);
  auto second = placement::open_placement_service(config, other_dir.string());
  placement::LocalPlacementClient one(c.service_ptr_placement()), two(second);
  placement::ProviderInventory node{uuid4(), "shared", 8, 0, 0, 1.0, 1.0, 1.0, 0, 0, {}};
  one.ensure_provider(node);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      auto& client = t % 2 ? one : two;
      for (int i = 0; i < 4; ++i)
        if (client.claim({uuid4(), "proj", kUser}, {{node.uuid, {{"VCPU", 1}}}})) ++granted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 8);
  auto usage = c.call("GET", "/resource_providers/" + node.uuid + "/usages", "1.0");
  EXPECT_EQ(usage.body.at("usages").at("VCPU"), 8);
  auto allocations = c.call("GET", "/resource_providers/" + node.uuid + "/allocations", "1.0");
  EXPECT_EQ(allocations.body.at("allocations").as_object().size(), 8u);
  second.reset();
  fs::remove_all(other_dir);
}

}  // namespace
