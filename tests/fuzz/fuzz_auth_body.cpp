// libFuzzer target: arbitrary POST /v3/auth/tokens bodies against a real identity service
// (in-memory SQLite, bootstrapped once). Any status is fine; crashes, hangs and 500s are not.
#include "common/db/database.hpp"
#include "common/service.hpp"
#include "identity/api/service.hpp"
#include "identity/bootstrap.hpp"
#include "identity/service/identity_service.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <filesystem>
#include <string>

static nubo::Pipeline& pipeline() {
  static auto service = [] {
    nubo::identity::IdentitySettings s;
    s.bcrypt_cost = 4;
    s.key_repository = (std::filesystem::temp_directory_path() / "nubo-fuzz-keys").string();
    auto svc = std::make_shared<nubo::identity::IdentityService>(nubo::db::Database::open("sqlite://:memory:"), s);
    nubo::identity::BootstrapOptions o;
    o.admin_password = "password";
    nubo::identity::bootstrap(*svc, o);
    return svc;
  }();
  static nubo::Pipeline p(nubo::identity::api::make_service_spec(service));
  return p;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // one access line per input would dominate the run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nubo::http::Request req;
  req.method = "POST";
  req.target = req.path = "/v3/auth/tokens";
  req.headers.add("Content-Type", "application/json");
  req.body.assign(reinterpret_cast<const char*>(data), size);
  auto r = pipeline().handle(req);
  if (r.status >= 500 && r.status != 501) __builtin_trap();
  return 0;
}
