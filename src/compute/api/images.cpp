// The proxy APIs removed in 2.36: the image proxy (/v2.1/images), Glance's images as Nova's v2.1
// API showed them, and the read-only network proxy (/v2.1/os-networks), Neutron's networks as
// Nova shows them since nova-network is gone; both fetched as the caller so that the other
// service's own rules decide what they see.
#include <algorithm>

#include "compute/api/common.hpp"

namespace nubo::compute::api {

namespace {

// Nova's image metadata: the image's properties (compute's own trimming of Glance's bookkeeping)
// without the attributes the view shows apart.
json::object properties(const json::object& image) {
  auto out = image_properties(image);
  for (auto* key : {"disk_format", "container_format", "min_disk", "min_ram"}) out.erase(key);
  return out;
}

// Nova's image status and progress from Glance's status.
std::pair<std::string, int> status_of(const std::string& glance) {
  if (glance == "active") return {"ACTIVE", 100};
  if (glance == "queued") return {"SAVING", 25};
  if (glance == "saving" || glance == "importing" || glance == "uploading") return {"SAVING", 50};
  if (glance == "deleted" || glance == "pending_delete") return {"DELETED", 0};
  if (glance == "killed") return {"ERROR", 0};
  return {"UNKNOWN", 0};
}

// "2026-11-21T20:00:00.123456Z" → "2026-11-21T20:00:00Z", as Nova renders image times.
json::value time_of(const json::object& image, const char* key) {
  auto t = string_or(image, key);
  if (t.size() < 19) return nullptr;
  return json::value(t.substr(0, 19) + "Z");
}

json::object image_view(const ComputeService& s, const json::object& image, bool detail) {
  auto id = string_or(image, "id");
  auto l = links(s, "images", id);
  l.push_back(json::object{{"rel", "alternate"},
                           {"type", "application/vnd.openstack.image"},
                           {"href", s.images()->location(id)}});
  json::object v{{"id", id},
                 {"name", image.contains("name") ? image.at("name") : nullptr},
                 {"links", std::move(l)}};
  if (!detail) return v;
  auto [status, progress] = status_of(string_or(image, "status"));
  v["minRam"] = int_or(image, "min_ram");
  v["minDisk"] = int_or(image, "min_disk");
  v["metadata"] = properties(image);
  v["created"] = time_of(image, "created_at");
  v["updated"] = time_of(image, "updated_at");
  v["status"] = status;
  v["progress"] = progress;
  v["OS-EXT-IMG-SIZE:size"] = image.contains("size") ? image.at("size") : nullptr;
  if (auto server = string_or(image, "instance_uuid"); !server.empty())
    v["server"] = json::object{{"id", server}, {"links", links(s, "servers", server)}};
  return v;
}

json::object image_or_404(ComputeService& s, Context& ctx, const std::string& id) {
  auto image = s.images()->get(caller(ctx).auth, id);
  if (!image) throw NotFound("Image not found.");
  return std::move(*image);
}

json::object string_values(const json::value& v, const char* key) {
  if (!v.is_object())
    throw BadRequest(invalid(key, v, json::serialize(v) + " is not of type 'object'"));
  for (auto& kv : v.as_object()) {
    if (kv.key().empty() || kv.key().size() > 255)
      throw BadRequest(invalid(key, v, "metadata keys must be 1 to 255 characters"));
    if (!kv.value().is_string() || kv.value().as_string().size() > 255)
      throw BadRequest(
          invalid(key, kv.value(), json::serialize(kv.value()) + " is not of type 'string'"));
  }
  return v.as_object();
}

Route proxy(const char* method, std::string path, RouteHandler handler) {
  Route r{method, std::move(path), std::move(handler)};
  r.max_version = {2, 35};
  return r;
}

}  // namespace

void add_image_routes(std::vector<Route>& routes, ComputeService& s) {
  auto list = [&s](bool detail) {
    return [&s, detail](Context& ctx) {
      // Nova's filters, as Glance names them; the rest is applied here.
      std::vector<std::pair<std::string, std::string>> filters;
      auto& q = ctx.request;
      if (auto v = q.query_param("name")) filters.push_back({"name", *v});
      if (auto v = q.query_param("status")) {
        std::string lower = *v;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        filters.push_back({"status", lower});
      }
      if (auto v = q.query_param("server"))  // an id or a server's URL
        filters.push_back({"instance_uuid", v->substr(v->rfind('/') + 1)});
      if (auto v = q.query_param("type")) filters.push_back({"image_type", *v});
      for (auto& [k, v] : q.query)
        if (k.rfind("property-", 0) == 0) filters.push_back({k.substr(9), v});
      auto min_ram = count_param(ctx, "minRam").value_or(0);
      auto min_disk = count_param(ctx, "minDisk").value_or(0);
      auto since = q.query_param("changes-since").value_or("");
      auto limit = count_param(ctx, "limit");
      auto marker = q.query_param("marker").value_or("");
      json::array out;
      bool past_marker = marker.empty(), full = false;
      std::string last;
      for (auto& image : s.images()->list(caller(ctx).auth, filters)) {
        if (int_or(image, "min_ram") < min_ram || int_or(image, "min_disk") < min_disk) continue;
        if (!since.empty() && string_or(image, "updated_at").substr(0, 19) < since.substr(0, 19))
          continue;
        if (!past_marker) {
          past_marker = string_or(image, "id") == marker;
          continue;
        }
        if (limit && static_cast<long>(out.size()) >= *limit) {
          full = true;
          break;
        }
        last = string_or(image, "id");
        out.push_back(image_view(s, image, detail));
      }
      if (!past_marker) throw BadRequest("marker [" + marker + "] not found");
      json::object body{{"images", std::move(out)}};
      if (full)
        body["images_links"] = next_links(s, ctx, detail ? "images/detail" : "images", last);
      return json_response(200, body);
    };
  };
  routes.push_back(proxy("GET", "/v2.1/images", list(false)));
  routes.push_back(proxy("GET", "/v2.1/images/detail", list(true)));
  routes.push_back(proxy("GET", "/v2.1/images/{id}", [&s](Context& ctx) {
    return json_response(
        200, json::object{{"image", image_view(s, image_or_404(s, ctx, ctx.param("id")), true)}});
  }));
  // DELETE /images/ (no id) is a 404 in Nova, not a 405.
  routes.push_back(proxy("DELETE", "/v2.1/images",
                         [](Context&) -> http::Response { throw NotFound("Image not found."); }));
  routes.push_back(proxy("DELETE", "/v2.1/images/{id}", [&s](Context& ctx) {
    auto c = caller(ctx);
    if (!s.images()->get(c.auth, ctx.param("id"))) throw NotFound("Image not found.");
    s.images()->remove(c.auth, ctx.param("id"));
    http::Response r;
    r.status = 204;
    return r;
  }));

  // Metadata: the image's properties.
  auto meta = "/v2.1/images/{id}/metadata";
  routes.push_back(proxy("GET", meta, [&s](Context& ctx) {
    return json_response(
        200, json::object{{"metadata", properties(image_or_404(s, ctx, ctx.param("id")))}});
  }));
  auto change_all = [&s](bool replace) {
    return [&s, replace](Context& ctx) {
      auto body = ctx.body();
      auto* m = body.if_contains("metadata");
      if (!m) throw BadRequest("Malformed request body");
      auto set = string_values(*m, "metadata");
      auto current = image_or_404(s, ctx, ctx.param("id"));
      std::vector<std::string> unset;
      if (replace)
        for (auto& kv : properties(current))
          if (!set.contains(kv.key())) unset.emplace_back(kv.key());
      auto image = s.images()->set_properties(caller(ctx).auth, ctx.param("id"), set, unset);
      return json_response(200, json::object{{"metadata", properties(image)}});
    };
  };
  routes.push_back(proxy("POST", meta, change_all(false)));
  routes.push_back(proxy("PUT", meta, change_all(true)));
  auto item = "/v2.1/images/{id}/metadata/{key}";
  routes.push_back(proxy("GET", item, [&s](Context& ctx) {
    auto props = properties(image_or_404(s, ctx, ctx.param("id")));
    auto* v = props.if_contains(ctx.param("key"));
    if (!v) throw NotFound("Image not found.");
    return json_response(200, json::object{{"meta", json::object{{ctx.param("key"), *v}}}});
  }));
  routes.push_back(proxy("PUT", item, [&s](Context& ctx) {
    auto body = ctx.body();
    auto* m = body.if_contains("meta");
    if (!m) throw BadRequest("Malformed request body");
    auto set = string_values(*m, "meta");
    if (set.size() != 1) throw BadRequest("Request body contains too many items");
    if (!set.contains(ctx.param("key"))) throw BadRequest("Request body and URI mismatch");
    image_or_404(s, ctx, ctx.param("id"));
    s.images()->set_properties(caller(ctx).auth, ctx.param("id"), set, {});
    return json_response(200, json::object{{"meta", set}});
  }));
  routes.push_back(proxy("DELETE", item, [&s](Context& ctx) {
    auto props = properties(image_or_404(s, ctx, ctx.param("id")));
    if (!props.contains(ctx.param("key"))) throw NotFound("Image not found.");
    s.images()->set_properties(caller(ctx).auth, ctx.param("id"), {}, {ctx.param("key")});
    http::Response r;
    r.status = 204;
    return r;
  }));
}

void add_network_proxy_routes(std::vector<Route>& routes, ComputeService& s) {
  // Nova's view: every field nova-network had, only id and label still filled (admins see more
  // of them, all null).
  auto view = [](Context& ctx, const json::object& n) {
    static const char* const fields[] = {"cidr", "netmask", "gateway",    "broadcast", "dns1",
                                         "dns2", "cidr_v6", "gateway_v6", "netmask_v6"};
    static const char* const admin_fields[] = {"created_at",
                                               "updated_at",
                                               "deleted_at",
                                               "deleted",
                                               "injected",
                                               "bridge",
                                               "vlan",
                                               "vpn_public_address",
                                               "vpn_public_port",
                                               "vpn_private_address",
                                               "dhcp_start",
                                               "project_id",
                                               "host",
                                               "bridge_interface",
                                               "multi_host",
                                               "priority",
                                               "rxtx_base",
                                               "mtu",
                                               "dhcp_server",
                                               "enable_dhcp",
                                               "share_address"};
    json::object v{{"id", n.at("id")}, {"label", n.at("name")}};
    for (auto* f : fields) v[f] = nullptr;
    if (ctx.allowed("context_is_admin", {}))
      for (auto* f : admin_fields) v[f] = nullptr;
    return v;
  };
  auto networks = [&s](Context& ctx, const NetworkFilters& filters) {
    ctx.authorize(
        filters.empty() ? "os_compute_api:os-networks:list" : "os_compute_api:os-networks:view",
        {{"project_id", ctx.auth->project_id}});
    if (!s.network()) return std::vector<json::object>{};
    return s.network()->list(&*ctx.auth, "networks", filters);
  };
  routes.push_back(proxy("GET", "/v2.1/os-networks", [networks, view](Context& ctx) {
    json::array out;
    for (auto& n : networks(ctx, {})) out.push_back(view(ctx, n));
    return json_response(200, json::object{{"networks", std::move(out)}});
  }));
  routes.push_back(proxy("GET", "/v2.1/os-networks/{id}", [networks, view](Context& ctx) {
    auto found = networks(ctx, {{"id", ctx.param("id")}});
    if (found.empty()) throw NotFound("Network could not be found.");
    return json_response(200, json::object{{"network", view(ctx, found.front())}});
  }));
  // nova-network's writes are gone (410), as in Nova.
  for (auto* path : {"/v2.1/os-networks", "/v2.1/os-networks/add", "/v2.1/os-networks/{id}",
                     "/v2.1/os-networks/{id}/action"}) {
    auto gone = [](Context&) -> http::Response { throw ApiError(410, "Gone", "Gone"); };
    if (std::string(path) == "/v2.1/os-networks/{id}")
      routes.push_back(proxy("DELETE", path, gone));
    else
      routes.push_back(proxy("POST", path, gone));
  }
}

}  // namespace nubo::compute::api
