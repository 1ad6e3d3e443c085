// The `nubo` multi-call binary: subcommands only; the services hold the logic.
#include "common/config.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/runtime.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/setup.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

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
  {
    std::ofstream f(path, std::ios::trunc);
    f << secret << "\n";
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  return secret;
}

void write_client_files(const fs::path& dir, const std::string& auth_url, const std::string& password,
                        const std::string& region) {
  auto clouds = dir / "clouds.yaml";
  {
    std::ofstream f(clouds, std::ios::trunc);
    f << "clouds:\n  nubo:\n    auth:\n      auth_url: " << auth_url << "/v3\n"
      << "      username: admin\n      password: " << password << "\n"
      << "      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n"
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

identity::BootstrapOptions bootstrap_options(const Config& c, const std::string& password, const std::string& url) {
  identity::BootstrapOptions o;
  o.admin_username = c.get_string("bootstrap", "admin_username", "admin");
  o.admin_password = password;
  o.admin_project = c.get_string("bootstrap", "admin_project", "admin");
  o.region = c.get_string("DEFAULT", "region", "RegionOne");
  o.catalog.push_back({"identity", "keystone", url + "/v3"});
  return o;
}

ServerOptions server_options(const Config& c, const std::string& section, uint16_t default_port) {
  ServerOptions o;
  o.name = section;
  o.host = c.get_string(section, "bind_host", c.get_string("DEFAULT", "bind_host", "127.0.0.1"));
  o.port = static_cast<uint16_t>(c.get_int(section, "port", default_port));
  o.body_limit = static_cast<size_t>(c.get_int(section, "max_request_body_size", 114688));
  o.header_limit = static_cast<size_t>(c.get_int("DEFAULT", "max_header_size", 16384));
  o.read_timeout = std::chrono::seconds(c.get_int("DEFAULT", "client_socket_timeout", 30));
  o.idle_timeout = std::chrono::seconds(c.get_int("DEFAULT", "keepalive_timeout", 75));
  o.tls_cert_file = c.get_string(section, "tls_cert_file", c.get_string("DEFAULT", "tls_cert_file", ""));
  o.tls_key_file = c.get_string(section, "tls_key_file", c.get_string("DEFAULT", "tls_key_file", ""));
  o.render_error = [](int status, const std::string& message) { return render_keystone_error(ApiError(status, message)); };
  return o;
}

int run_services(const Config& config, const std::string& state_dir, bool print_banner) {
  auto svc = identity::open_identity_service(config, state_dir);
  auto password = config.get("bootstrap", "admin_password").value_or(read_or_create_secret(fs::path(state_dir) / "admin-password"));
  identity::bootstrap(*svc, bootstrap_options(config, password, svc->settings().public_url));
  write_client_files(state_dir, svc->settings().public_url, password, svc->settings().region);

  Runtime runtime(static_cast<unsigned>(config.get_int("DEFAULT", "io_threads", 2)),
                  static_cast<unsigned>(config.get_int("DEFAULT", "worker_threads", 16)));
  auto pipeline = std::make_shared<Pipeline>(identity::api::make_service_spec(
      svc, config.get_string("identity", "policy_file", state_dir + "/policy.yaml")));
  auto port = runtime.listen(server_options(config, "identity", 5000),
                             [pipeline](http::Request& r) { return pipeline->handle(r); },
                             [pipeline](http::Request& r) { return pipeline->try_fast(r); });
  // Other processes may rotate keys or, on a shared database, write: re-read keys and revocation
  // events and drop caches every second with PostgreSQL, every 30 seconds with SQLite.
  runtime.every(std::chrono::seconds(svc->database().is_postgresql() ? 1 : 30), [svc] { svc->refresh(); });
  runtime.start();
  spdlog::info("identity listening on port {}", port);
  if (print_banner) {
    std::ifstream clouds(fs::path(state_dir) / "clouds.yaml");
    std::cout << "Nubo is running.\n  identity: " << svc->settings().public_url << "/v3\n"
              << "  clouds.yaml: " << state_dir << "/clouds.yaml (cloud name: nubo)\n"
              << "  openrc:      " << state_dir << "/openrc\n\n"
              << clouds.rdbuf() << "\n"
              << "Try: OS_CLIENT_CONFIG_FILE=" << state_dir << "/clouds.yaml openstack --os-cloud nubo token issue\n"
              << std::flush;
  }
  runtime.wait_for_signal();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Nubo: an OpenStack-compatible cloud in one binary"};
  app.require_subcommand(1);
  std::string config_file, state_dir = default_state_dir();
  app.add_option("--config", config_file, "oslo-style INI configuration file");
  app.add_option("--state-dir", state_dir, "directory for databases, keys and client files");

  auto* aio = app.add_subcommand("all-in-one", "every service in one process");
  auto* api = app.add_subcommand("api", "chosen API services");
  std::string services = "identity";
  api->add_option("--services", services, "comma-separated services (identity)");
  auto* boot = app.add_subcommand("bootstrap", "create the admin user, project, roles and catalog");
  std::string boot_password;
  boot->add_option("--bootstrap-password", boot_password, "the admin's password");
  auto* dbcmd = app.add_subcommand("db", "database tasks");
  dbcmd->add_subcommand("sync", "apply migrations");
  dbcmd->require_subcommand(1);
  auto* token = app.add_subcommand("token", "token key tasks");
  token->add_subcommand("rotate", "rotate the Fernet keys");
  token->require_subcommand(1);
  CLI11_PARSE(app, argc, argv);

  try {
    Config config = config_file.empty() ? Config() : Config::load(config_file);
    if (auto s = config.get("DEFAULT", "state_dir"); s && state_dir == default_state_dir()) state_dir = *s;
    setup_logging(config);
    if (aio->parsed()) return run_services(config, state_dir, true);
    if (api->parsed()) {
      if (services != "identity") throw std::runtime_error("only the identity service exists yet: " + services);
      return run_services(config, state_dir, false);
    }
    if (boot->parsed()) {
      auto svc = identity::open_identity_service(config, state_dir);
      auto pw = boot_password.empty() ? read_or_create_secret(fs::path(state_dir) / "admin-password") : boot_password;
      identity::bootstrap(*svc, bootstrap_options(config, pw, svc->settings().public_url));
      return 0;
    }
    if (dbcmd->parsed()) {
      identity::open_identity_service(config, state_dir);  // applies the migrations
      std::cout << "identity database is up to date\n";
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
