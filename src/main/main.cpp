// The `nubo` multi-call binary: subcommands only; the services hold the logic.
#include <fcntl.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <ext/stdio_filebuf.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "common/auth_remote.hpp"
#include "common/config.hpp"
#include "common/http/websocket_proxy.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/policy.hpp"
#include "common/process.hpp"
#include "common/runtime.hpp"
#include "common/serve.hpp"
#include "common/service.hpp"
#include "compute/api/service.hpp"
#include "compute/metadata/api.hpp"
#include "compute/metadata/relay.hpp"
#include "compute/placement/api/service.hpp"
#include "compute/placement/local_client.hpp"
#include "compute/placement/setup.hpp"
#include "compute/setup.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"
#include "image/api/common.hpp"
#include "image/api/service.hpp"
#include "image/setup.hpp"
#include "main/local_network_client.hpp"
#include "network/api/service.hpp"
#include "network/setup.hpp"
#include "object/proxy/proxy.hpp"
#include "object/replicator/replicator.hpp"
#include "object/ring/cli.hpp"
#include "object/server/storage_server.hpp"
#include "object/setup.hpp"
#include "object/swift_http.hpp"

namespace fs = std::filesystem;
using namespace nubo;

namespace {

std::string default_state_dir() {
  if (const char* x = std::getenv("NUBO_STATE_DIR")) return x;
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.local/state/nubo";
  return "/var/lib/nubo";
}

std::string read_or_create_secret(const fs::path& path) {
  if (fs::exists(path)) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    if (!s.empty()) return s;
  }
  auto secret = base64url_encode(random_bytes(18));
  // Readable by its owner only from the start.
  fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
  auto line = secret + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  return secret;
}

void write_client_files(const fs::path& dir, const std::string& auth_url,
                        const std::string& password, const std::string& region) {
  auto clouds = dir / "clouds.yaml";
  {
    std::ofstream f(clouds, std::ios::trunc);
    f << "clouds:\n  nubo:\n    auth:\n      auth_url: " << auth_url << "/v3\n"
      << "      username: admin\n      password: " << password << "\n"
      << "      project_name: admin\n      user_domain_name: Default\n      project_domain_name: "
         "Default\n"
      << "    region_name: " << region << "\n    identity_api_version: 3\n    interface: public\n";
  }
  fs::permissions(clouds, fs::perms::owner_read | fs::perms::owner_write);
  auto openrc = dir / "openrc";
  {
    std::ofstream f(openrc, std::ios::trunc);
    f << "export OS_AUTH_URL=" << auth_url << "/v3\nexport OS_IDENTITY_API_VERSION=3\n"
      << "export OS_USERNAME=admin\nexport OS_PASSWORD=" << password << "\n"
      << "export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\n"
      << "export OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME=" << region << "\n";
  }
  fs::permissions(openrc, fs::perms::owner_read | fs::perms::owner_write);
}

identity::BootstrapOptions bootstrap_options(const Config& c, const std::string& password,
                                             const std::string& url, const std::string& state_dir) {
  identity::BootstrapOptions o;
  o.admin_username = c.get_string("bootstrap", "admin_username", "admin");
  o.admin_password = password;
  o.admin_project = c.get_string("bootstrap", "admin_project", "admin");
  o.region = c.get_string("DEFAULT", "region", "RegionOne");
  o.catalog.push_back({"identity", "keystone", url + "/v3"});
  o.catalog.push_back({"image", "glance", image::settings_from_config(c, state_dir).public_url,
                       image::default_registered_limits()});
  o.catalog.push_back(
      {"compute", "nova", compute::settings_from_config(c, state_dir).public_url + "/v2.1"});
  // Placement's and Neutron's endpoints have no version suffix.
  o.catalog.push_back({"placement", "placement", placement::settings_from_config(c).public_url});
  o.catalog.push_back({"network", "neutron", network::settings_from_config(c).public_url});
  // Swift's endpoint names the project's account; tokens carry it filled in.
  o.catalog.push_back({"object-store", "swift", object::public_url(c)});
  o.roles.push_back(c.get_string("object", "reseller_admin_role", "ResellerAdmin"));
  return o;
}

ServerOptions server_options(const Config& c, const std::string& section, uint16_t default_port,
                             ErrorRenderer render = render_keystone_error) {
  ServerOptions o;
  o.name = section;
  o.host = c.get_string(section, "bind_host", c.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  o.port = static_cast<uint16_t>(c.get_int(section, "port", default_port));
  o.body_limit = static_cast<size_t>(c.get_int(section, "max_request_body_size", 114688));
  o.header_limit = static_cast<size_t>(c.get_int("DEFAULT", "max_header_size", 16384));
  o.read_timeout = std::chrono::seconds(c.get_int("DEFAULT", "client_socket_timeout", 30));
  o.idle_timeout = std::chrono::seconds(c.get_int("DEFAULT", "keepalive_timeout", 75));
  o.tls_cert_file =
      c.get_string(section, "tls_cert_file", c.get_string("DEFAULT", "tls_cert_file", ""));
  o.tls_key_file =
      c.get_string(section, "tls_key_file", c.get_string("DEFAULT", "tls_key_file", ""));
  o.render_error = [render](int status, const std::string& message) {
    return render(ApiError(status, message));
  };
  return o;
}

// The secret metadata proxies sign instance ids with (Nova's metadata_proxy_shared_secret):
// configured, or made once per state directory for one machine.
std::string metadata_secret(const Config& config, const std::string& state_dir) {
  if (auto configured = config.get("metadata", "shared_secret")) {
    // An empty key signs for anybody who can reach the port.
    if (configured->empty()) throw std::runtime_error("[metadata] shared_secret is empty");
    return *configured;
  }
  return read_or_create_secret(fs::path(state_dir) / "metadata-secret");
}

// The metadata service as this configuration serves it (a wildcard bind is reached on loopback).
std::string metadata_url(const Config& config) {
  auto bind = config.get_string("metadata", "bind_host",
                                config.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  if (bind == "0.0.0.0" || bind == "::") bind = "127.0.0.1";
  if (bind.find(':') != std::string::npos) bind = "[" + bind + "]";
  return config.get_string(
      "metadata", "url",
      "http://" + bind + ":" + std::to_string(config.get_int("metadata", "port", 8775)));
}

// The network agent's metadata proxies hand guests' connections here: the relay signs the
// instance for the metadata service, as for QEMU's guestfwd.
network::dataplane::MetadataForwarder metadata_forwarder(const Config& config,
                                                         const std::string& state_dir) {
  compute::metadata::RelaySettings base;
  base.url = metadata_url(config);
  base.shared_secret = metadata_secret(config, state_dir);
  return [base](int socket, const std::string& instance, const std::string& project) {
    __gnu_cxx::stdio_filebuf<char> in_buf(::dup(socket), std::ios::in);
    __gnu_cxx::stdio_filebuf<char> out_buf(::dup(socket), std::ios::out);
    std::istream in(&in_buf);
    std::ostream out(&out_buf);
    auto settings = base;
    settings.instance_id = instance;
    settings.project_id = project;
    compute::metadata::relay(in, out, settings);
  };
}

std::set<std::string> parse_services(const std::string& list) {
  std::set<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    if (item != "identity" && item != "image" && item != "compute" && item != "placement" &&
        item != "network" && item != "object")
      throw std::runtime_error("unknown service: " + item);
    out.insert(item);
  }
  if (out.empty()) throw std::runtime_error("no service named in --services");
  return out;
}

// Compute's image lookups when the image service runs in this process: called directly, under the
// image service's own policy. (An HTTP call to ourselves would queue for the very worker pool the
// calling request holds, and starve under load.)
class LocalImageClient : public compute::ImageClient {
 public:
  LocalImageClient(std::shared_ptr<image::ImageService> images, std::shared_ptr<Policy> policy)
      : images_(std::move(images)), policy_(std::move(policy)) {
    service_.roles = {"admin", "service"};
    service_.is_admin_project = true;
  }
  std::optional<compute::ImageInfo> show(const AuthContext& auth, const std::string& id) override {
    try {
      return compute::image_info(images_->show(as(auth), id));
    } catch (const ApiError& e) {
      if (e.status() == 404 || e.status() == 403) return std::nullopt;
      throw;
    }
  }
  json::object create(const AuthContext& auth, const json::object& body) override {
    return images_->create(as(auth), body);
  }
  void upload(const std::string& image_id, const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    auto upload = images_->begin_upload(service(), image_id, false);
    std::string chunk(1 << 20, '\0');
    try {
      while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
        upload->write(std::string_view(chunk.data(), static_cast<size_t>(in.gcount())));
      upload->finish();
    } catch (...) {
      upload->abort();
      throw;
    }
  }
  // Loads a file as a public image named `name` unless one has that name (the guest image
  // `make run` offers every new cloud).
  void import_if_absent(const std::string& name, const std::string& path,
                        const std::string& disk_format) {
    if (!all_pages(service(), {{"name", name}}, "all").empty()) return;
    auto image = images_->create(service(), json::object{{"name", name},
                                                         {"disk_format", disk_format},
                                                         {"container_format", "bare"},
                                                         {"visibility", "public"}});
    upload(std::string(image.at("id").as_string()), path);
    spdlog::info("image: {} loaded from {} as {}", name, path,
                 std::string(image.at("id").as_string()));
  }
  json::object download(const std::string& image_id, const std::string& path) override {
    auto image = images_->prepare_download(service(), image_id);
    if (image.at("location").is_null())
      throw std::runtime_error("image " + image_id + " has no data");
    auto reader = images_->open_data(image, 0);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (auto chunk = reader->read(1 << 20); !chunk.empty(); chunk = reader->read(1 << 20))
      if (!out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())))
        throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    return image;
  }
  std::vector<json::object> find(
      const std::vector<std::pair<std::string, std::string>>& properties) override {
    return all_pages(service(), properties, "all");
  }
  void remove(const std::string& image_id) override { images_->remove(service(), image_id); }
  std::string location(const std::string& image_id) const override {
    return images_->settings().public_url + "/images/" + image_id;
  }
  std::optional<json::object> get(const AuthContext& auth, const std::string& id) override {
    try {
      return images_->show(as(auth), id);
    } catch (const ApiError& e) {
      if (e.status() == 404) return std::nullopt;
      throw;
    }
  }
  std::vector<json::object> list(
      const AuthContext& auth,
      const std::vector<std::pair<std::string, std::string>>& filters) override {
    return all_pages(as(auth), filters);
  }
  void remove(const AuthContext& auth, const std::string& id) override {
    images_->remove(as(auth), id);
  }
  json::object set_properties(const AuthContext& auth, const std::string& id,
                              const json::object& set,
                              const std::vector<std::string>& unset) override {
    auto current = images_->show(as(auth), id);
    std::vector<image::PatchOp> changes;
    for (auto& kv : set)
      changes.push_back(image::PatchOp{
          current.contains(kv.key()) ? "replace" : "add", {std::string(kv.key())}, kv.value()});
    for (auto& k : unset)
      if (current.contains(k)) changes.push_back(image::PatchOp{"remove", {k}, nullptr});
    return images_->update(as(auth), id, changes);
  }

 private:
  // The caller under the image service's own policy.
  Caller as(const AuthContext& auth) {
    return Caller{auth, [this, credentials = auth.policy_credentials()](
                            const std::string& rule, const PolicyTarget& target) {
                    return !policy_ || policy_->enforce(rule, credentials, target);
                  }};
  }
  std::vector<json::object> all_pages(
      const Caller& c, const std::vector<std::pair<std::string, std::string>>& filters,
      const std::string& member_status = "accepted") {
    image::ListRequest request;
    request.filters = filters;
    request.member_status = member_status;
    std::vector<json::object> out;
    for (;;) {
      auto page = images_->list(c, request);
      for (auto& i : page.images) out.push_back(std::move(i));
      if (!page.next_marker) return out;
      request.marker = page.next_marker;
    }
  }
  // Compute itself: the service's own rights.
  Caller service() {
    return Caller{service_, [](const std::string&, const PolicyTarget&) { return true; }};
  }
  std::shared_ptr<image::ImageService> images_;
  std::shared_ptr<Policy> policy_;
  AuthContext service_;
};

// `nubo object-server`: one storage host ([object] hash_path_suffix must be the cluster's).
int run_object_server(const Config& config, const std::string& state_dir) {
  Runtime runtime(static_cast<unsigned>(config.get_int("DEFAULT", "io_threads", 2)),
                  static_cast<unsigned>(config.get_int("object_server", "worker_threads", 64)));
  auto suffix = read_or_create_secret(fs::path(state_dir) / "object" / "hash-path-suffix");
  auto storage =
      object::make_storage_server(object::storage_settings_from_config(config, state_dir, suffix));
  auto options = server_options(config, "object_server", 6200, object::render_swift_error);
  options.body_limit = 1 << 20;
  auto port = listen_pipeline(runtime, options,
                              std::make_shared<Pipeline>(object::make_storage_spec(storage)));
  storage->settings.port = port;
  spdlog::info("object server listening on port {}", port);
  object::StorageDaemons daemons(storage);
  runtime.start();
  daemons.start();
  runtime.wait_for_signal();
  daemons.stop();
  return 0;
}

int run_services(const Config& config, const std::string& state_dir,
                 const std::set<std::string>& services, bool all_in_one) {
  bool print_banner = all_in_one;
  Runtime runtime(static_cast<unsigned>(config.get_int("DEFAULT", "io_threads", 2)),
                  static_cast<unsigned>(config.get_int("DEFAULT", "worker_threads", 16)));
  std::shared_ptr<identity::IdentityService> svc;
  std::shared_ptr<Pipeline> identity_pipeline, image_pipeline;
  std::shared_ptr<image::ImageService> images;
  std::shared_ptr<compute::ComputeService> compute_service;
  std::shared_ptr<Pipeline> compute_pipeline;
  std::shared_ptr<placement::PlacementService> placement_service;
  std::shared_ptr<Pipeline> placement_pipeline;
  std::unique_ptr<compute::ControlPlane> control_plane;
  std::unique_ptr<http::WebsocketProxy> serial_proxy;
  std::shared_ptr<network::NetworkService> network_service;
  std::shared_ptr<Pipeline> network_pipeline;
  std::shared_ptr<object::Proxy> object_proxy;
  std::unique_ptr<object::StorageDaemons> storage_daemons;
  std::unique_ptr<Runtime> object_runtime, storage_runtime;
  std::shared_ptr<void> storage_local;  // the storage server reached in-process
  std::shared_ptr<Bus> network_bus;
  std::unique_ptr<network::NetworkAgent> network_agent;
  std::string admin_project_id;
  auto password = config.get("bootstrap", "admin_password")
                      .value_or(read_or_create_secret(fs::path(state_dir) / "admin-password"));
  if (services.count("identity")) {
    svc = identity::open_identity_service(config, state_dir);
    admin_project_id =
        identity::bootstrap(
            *svc, bootstrap_options(config, password, svc->settings().public_url, state_dir))
            .admin_project_id;
    write_client_files(state_dir, svc->settings().public_url, password, svc->settings().region);
    identity_pipeline = std::make_shared<Pipeline>(identity::api::make_service_spec(
        svc, config.get_string("identity", "policy_file", state_dir + "/policy.yaml")));
    auto port =
        listen_pipeline(runtime, server_options(config, "identity", 5000), identity_pipeline);
    // Other processes may rotate keys or, on a shared database, write: re-read keys and revocation
    // events and drop caches every second with PostgreSQL, every 30 seconds with SQLite.
    runtime.every(std::chrono::seconds(svc->database().is_postgresql() ? 1 : 30),
                  [svc] { svc->refresh(); });
    spdlog::info("identity listening on port {}", port);
  }
  // Tokens are validated, and limits read, in-process when identity runs here, else through the
  // identity API.
  std::shared_ptr<TokenValidator> validator = svc;
  std::shared_ptr<LimitSource> limits = svc;
  // This process's own session with the identity API ([keystone_authtoken], defaulting to the
  // bootstrap admin), made when something here needs it: token validation and limits when
  // identity runs elsewhere, compute's own work on images when the image service does.
  std::shared_ptr<ServiceSession> session;
  auto service_session = [&] {
    if (session) return session;
    auto identity_url = identity::settings_from_config(config, state_dir).public_url;
    ServiceCredentials creds;
    creds.auth_url = config.get_string("keystone_authtoken", "auth_url", identity_url + "/v3");
    creds.username = config.get_string("keystone_authtoken", "username",
                                       config.get_string("bootstrap", "admin_username", "admin"));
    creds.password = config.get_string("keystone_authtoken", "password", password);
    creds.project_name =
        config.get_string("keystone_authtoken", "project_name",
                          config.get_string("bootstrap", "admin_project", "admin"));
    session = std::make_shared<ServiceSession>(creds);
    return session;
  };
  if (!validator &&
      (services.count("image") || services.count("compute") || services.count("placement") ||
       services.count("network") || services.count("object"))) {
    validator = std::make_shared<RemoteTokenValidator>(service_session());
    limits = std::make_shared<RemoteLimitSource>(service_session());
  }
  if (services.count("image")) {
    images = image::open_image_service(config, state_dir);
    images->set_limit_source(limits);
    image_pipeline = std::make_shared<Pipeline>(image::api::make_service_spec(
        images, validator,
        config.get_string("image", "policy_file", state_dir + "/image-policy.yaml")));
    auto port = listen_pipeline(
        runtime, server_options(config, "image", 9292, image::api::render_glance_error),
        image_pipeline);
    spdlog::info("image listening on port {}", port);
  }
  if (services.count("network")) {
    network_service = network::open_network_service(config, state_dir);
    if (!admin_project_id.empty())
      network::ensure_public_network(*network_service, config, admin_project_id);
    network_pipeline = std::make_shared<Pipeline>(network::api::make_service_spec(
        network_service, validator,
        config.get_string("network", "policy_file", state_dir + "/network-policy.yaml")));
    auto port = listen_pipeline(runtime,
                                server_options(config, "network", 9696, network::api::render_error),
                                network_pipeline);
    spdlog::info("network listening on port {}", port);
    // The agents' bus (in-process here). The all-in-one runs this host's agent beside the API.
    network_bus = make_in_process_bus(2);
    network::serve_agents(network_service, network_bus);
    if (all_in_one)
      network_agent = network::start_network_agent(config, state_dir, network_bus,
                                                   metadata_forwarder(config, state_dir));
  }
  if (services.count("object")) {
    auto suffix = read_or_create_secret(fs::path(state_dir) / "object" / "hash-path-suffix");
    // This host's storage server, and rings naming it when there are none yet; not when the
    // proxy fronts storage hosts of their own ([object_server] enabled = false).
    if (all_in_one && config.get_bool("object_server", "enabled", true)) {
      object::ensure_local_rings(config, state_dir);
      auto storage = object::make_storage_server(
          object::storage_settings_from_config(config, state_dir, suffix));
      auto options = server_options(config, "object_server", 6200, object::render_swift_error);
      options.body_limit = 1 << 20;
      // Their own worker pools: a proxy's request waits on storage servers, an object write on
      // its container update; in one shared pool, waiters could hold every worker.
      storage_runtime = std::make_unique<Runtime>(
          static_cast<unsigned>(config.get_int("object_server", "worker_threads", 64)), 0);
      auto pipeline = std::make_shared<Pipeline>(object::make_storage_spec(storage));
      auto port = listen_pipeline(*storage_runtime, options, pipeline);
      storage->settings.port = port;
      spdlog::info("object server listening on port {}", port);
      storage_local =
          object::serve_storage_locally(storage->settings, pipeline, *storage_runtime, options);
      storage_daemons = std::make_unique<object::StorageDaemons>(storage);
    }
    object_proxy =
        object::make_proxy(object::proxy_settings_from_config(config, state_dir, suffix));
    object_runtime = std::make_unique<Runtime>(
        static_cast<unsigned>(config.get_int("object", "worker_threads", 64)), 0);
    auto port = listen_pipeline(
        *object_runtime, server_options(config, "object", 8080, object::render_swift_error),
        std::make_shared<Pipeline>(object::make_proxy_spec(object_proxy, validator)));
    spdlog::info("object storage listening on port {}", port);
  }
  if (services.count("placement")) {
    placement_service = placement::open_placement_service(config, state_dir);
    placement_pipeline = std::make_shared<Pipeline>(placement::api::make_service_spec(
        placement_service, validator,
        config.get_string("placement", "policy_file", state_dir + "/placement-policy.yaml")));
    auto options = server_options(config, "placement", 8778);
    options.render_error = placement::api::render_transport_error;
    auto port = listen_pipeline(runtime, options, placement_pipeline);
    spdlog::info("placement listening on port {}", port);
  }
  if (services.count("compute")) {
    compute_service = compute::open_compute_service(config, state_dir);
    if (images) {
      auto client = std::make_shared<LocalImageClient>(images, image_pipeline->spec().policy);
      if (auto guest = config.get_string("bootstrap", "guest_image", ""); !guest.empty()) {
        if (fs::exists(guest))
          client->import_if_absent(config.get_string("bootstrap", "guest_image_name", "nubo-guest"),
                                   guest, "qcow2");
        else
          spdlog::warn("bootstrap: guest image {} does not exist (scripts/build-guest-image)",
                       guest);
      }
      compute_service->set_image_client(client);
    } else
      compute_service->set_image_client(std::make_shared<compute::RestImageClient>(
          config.get_string("compute", "image_url",
                            image::settings_from_config(config, state_dir).public_url),
          service_session()));
    // Servers' ports come from the network service when it runs here ([compute] networking =
    // none leaves servers without NICs from it: an API-only test cloud).
    if (network_service && config.get_string("compute", "networking", "auto") != "none") {
      compute_service->set_network_client(
          std::make_shared<LocalNetworkClient>(network_service, network_pipeline->spec().policy));
      network_service->set_compute_notifier([compute_service](const json::array& events) {
        compute_service->external_events(events);
      });
    }
    compute_pipeline = std::make_shared<Pipeline>(compute::api::make_service_spec(
        compute_service, validator,
        config.get_string("compute", "policy_file", state_dir + "/compute-policy.yaml")));
    auto port = listen_pipeline(runtime, server_options(config, "compute", 8774, render_nova_error),
                                compute_pipeline);
    spdlog::info("compute listening on port {}", port);
    // The metadata service, for the proxies (and relays) that vouch for their instances.
    auto metadata_port = listen_pipeline(
        runtime, server_options(config, "metadata", 8775, compute::metadata::render_error),
        std::make_shared<Pipeline>(compute::metadata::make_service_spec(
            compute_service, metadata_secret(config, state_dir))));
    spdlog::info("metadata listening on port {}", metadata_port);
    if (compute_service->settings().serial_console_enabled) {
      // The serial console proxy (nova-serialproxy): tokens from the compute service.
      http::WebsocketProxyOptions o;
      o.name = "serial console proxy";
      o.host = config.get_string("serial_console", "serialproxy_host",
                                 config.get_string("DEFAULT", "bind_host", "127.0.0.1"));
      o.port = static_cast<uint16_t>(config.get_int("serial_console", "serialproxy_port", 6083));
      o.allowed_origins = config.get_list("console", "allowed_origins", {});
      serial_proxy = std::make_unique<http::WebsocketProxy>(
          o, [compute_service](const std::string& token) -> std::optional<http::ProxyTarget> {
            auto t = compute_service->console_target(token);
            if (!t || t->console_type != "serial") return std::nullopt;
            return http::ProxyTarget{t->internal_access_path, t->host,
                                     static_cast<std::uint16_t>(t->port), t->instance_uuid};
          });
      serial_proxy->start();
      spdlog::info("serial console proxy listening on port {}", serial_proxy->port());
    }
    // The conductor, scheduler and agents run beside the API, claiming through placement
    // in-process.
    if (placement_service) {
      control_plane = compute::start_control_plane(
          config, state_dir, compute_service,
          std::make_shared<placement::LocalPlacementClient>(placement_service));
      auto* plane = control_plane.get();
      // Power states follow the VMs within seconds (a guest that powers itself off, a QEMU
      // killed): agents report on each tick, when something changed.
      runtime.every(std::chrono::milliseconds(static_cast<long>(
                        config.get_double("compute", "power_sync_seconds", 2) * 1000)),
                    [plane] { plane->tick(); });
    } else {
      spdlog::warn(
          "compute: placement does not run in this process; servers are accepted but not built "
          "here");
    }
    runtime.every(std::chrono::seconds(10), [compute_service] { compute_service->heartbeat(); });
  }
  runtime.start();
  if (storage_runtime) storage_runtime->start();
  if (object_runtime) object_runtime->start();
  if (storage_daemons) storage_daemons->start();
  if (print_banner) {
    std::ifstream clouds(fs::path(state_dir) / "clouds.yaml");
    std::cout << "Nubo is running.\n";
    if (svc) std::cout << "  identity: " << svc->settings().public_url << "/v3\n";
    if (images) std::cout << "  image:    " << images->settings().public_url << "\n";
    if (compute_service)
      std::cout << "  compute:  " << compute_service->settings().public_url << "/v2.1\n";
    if (placement_service)
      std::cout << "  placement: " << placement_service->settings().public_url << "\n";
    if (network_service)
      std::cout << "  network:  " << network_service->settings().public_url << "\n";
    if (object_proxy) std::cout << "  object:   " << object::public_url(config) << "\n";
    std::cout << "  clouds.yaml: " << state_dir << "/clouds.yaml (cloud name: nubo)\n"
              << "  openrc:      " << state_dir << "/openrc\n\n"
              << clouds.rdbuf() << "\n"
              << "Try: OS_CLIENT_CONFIG_FILE=" << state_dir
              << "/clouds.yaml openstack --os-cloud nubo token issue\n"
              << std::flush;
  }
  runtime.wait_for_signal();
  // The proxy's requests end before the storage server they call in-process stops.
  if (object_runtime) object_runtime->stop();
  if (storage_daemons) storage_daemons->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Streamed bodies move through 1 MiB buffers on many threads: keep such blocks mmapped (glibc's
  // adaptive threshold would otherwise park them in per-thread arenas and inflate RSS).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // The metadata relay's stdin, stdout and stderr are a guest's connection (QEMU's guestfwd):
  // nothing but the answer may reach it, and a guest that holds the connection open must not
  // hold the process.
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "metadata-relay") {
      if (int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
        ::dup2(null, STDERR_FILENO);
        ::close(null);
      }
      ::alarm(20);
    }
  CLI::App app{"Nubo: an OpenStack-compatible cloud in one binary"};
  app.require_subcommand(1);
  std::string config_file, state_dir = default_state_dir();
  app.add_option("--config", config_file, "oslo-style INI configuration file");
  app.add_option("--state-dir", state_dir, "directory for databases, keys and client files");

  auto* aio = app.add_subcommand("all-in-one", "every service in one process");
  long fake_hosts = -1;
  aio->add_option("--fake-hosts", fake_hosts,
                  "register N simulated hypervisors (the fake driver, for scale tests)");
  std::string guest_image;
  aio->add_option("--guest-image", guest_image,
                  "a qcow2 file loaded as the public image nubo-guest unless it exists");
  auto* object_server = app.add_subcommand(
      "object-server", "this storage host's account, container and object servers");
  auto* api = app.add_subcommand("api", "chosen API services");
  std::string services = "identity";
  api->add_option("--services", services,
                  "comma-separated services (identity, image, compute, placement, network, "
                  "object)");
  auto* boot = app.add_subcommand("bootstrap", "create the admin user, project, roles and catalog");
  std::string boot_password;
  boot->add_option("--bootstrap-password", boot_password, "the admin's password");
  auto* dbcmd = app.add_subcommand("db", "database tasks");
  dbcmd->add_subcommand("sync", "apply migrations");
  dbcmd->require_subcommand(1);
  auto* relay = app.add_subcommand(
      "metadata-relay",
      "relay one guest connection on stdin/stdout to the metadata service (run by QEMU)");
  compute::metadata::RelaySettings relay_settings;
  relay->add_option("--instance", relay_settings.instance_id, "the server's id")->required();
  relay->add_option("--project", relay_settings.project_id, "the server's project")->required();
  auto* token = app.add_subcommand("token", "token key tasks");
  token->add_subcommand("rotate", "rotate the Fernet keys");
  token->require_subcommand(1);
  auto* ring = app.add_subcommand(
      "ring",
      "build account, container and object rings: <builder_file> [command ...] as "
      "swift-ring-builder (`nubo ring` alone lists the commands)");
  ring->prefix_command();  // everything after `ring` is the ring command's own
  CLI11_PARSE(app, argc, argv);
  if (ring->parsed()) return object::ring_command(ring->remaining(), std::cout, std::cerr);

  try {
    Config config = config_file.empty() ? Config() : Config::load(config_file);
    if (auto s = config.get("DEFAULT", "state_dir"); s && state_dir == default_state_dir())
      state_dir = *s;
    setup_logging(config);
    if (fake_hosts >= 0) config.set("compute", "fake_hosts", std::to_string(fake_hosts));
    if (!guest_image.empty()) config.set("bootstrap", "guest_image", fs::absolute(guest_image));
    if (relay->parsed()) {
      relay_settings.url = metadata_url(config);
      relay_settings.shared_secret = metadata_secret(config, state_dir);
      auto instances =
          config.get_string("qemu", "instances_path", (fs::path(state_dir) / "instances").string());
      if (relay_settings.instance_id.find('/') != std::string::npos ||
          !compute::metadata::take_relay_slot(
              fs::path(instances) / relay_settings.instance_id,
              static_cast<int>(config.get_int("metadata", "relays_per_server", 8)))) {
        std::cout << "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 36\r\nConnection: close\r\n\r\n"
                     "Too many metadata requests at once.\n"
                  << std::flush;
        return 1;
      }
      return compute::metadata::relay(std::cin, std::cout, relay_settings);
    }
    // Guests on hosts without Nubo networking reach the metadata service through this binary,
    // run by QEMU with the same configuration.
    if (!config.get("qemu", "metadata_relay")) {
      std::string command = shell_quote(fs::read_symlink("/proc/self/exe").string());
      if (!config_file.empty()) command += " --config " + shell_quote(fs::absolute(config_file));
      command += " --state-dir " + shell_quote(fs::absolute(state_dir)) + " metadata-relay";
      config.set("qemu", "metadata_relay", command);
    }
    if (aio->parsed())
      return run_services(config, state_dir,
                          {"identity", "image", "compute", "placement", "network", "object"}, true);
    if (api->parsed()) return run_services(config, state_dir, parse_services(services), false);
    if (object_server->parsed()) return run_object_server(config, state_dir);
    if (boot->parsed()) {
      auto svc = identity::open_identity_service(config, state_dir);
      auto pw = boot_password.empty()
                    ? read_or_create_secret(fs::path(state_dir) / "admin-password")
                    : boot_password;
      identity::bootstrap(*svc,
                          bootstrap_options(config, pw, svc->settings().public_url, state_dir));
      return 0;
    }
    if (dbcmd->parsed()) {
      identity::open_identity_service(config, state_dir);  // applies the migrations
      image::open_image_service(config, state_dir,
                                false);  // a running server's uploads stay as they are
      placement::open_placement_service(config, state_dir);
      network::open_network_service(config, state_dir);
      std::cout << "identity, image, placement and network databases are up to date\n";
      return 0;
    }
    if (token->parsed()) {
      auto svc = identity::open_identity_service(config, state_dir);
      svc->keys().rotate();
      std::cout << "fernet keys rotated in " << svc->settings().key_repository << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "nubo: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
