#include "common/ids.hpp"
#include "identity/token/fernet.hpp"
#include "identity/token/msgpack.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace nubo;
using namespace nubo::identity;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("nubo-test-" + uuid4_hex());
  ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST(Msgpack, RoundTripsPayloadShapes) {
  msgpack::Value v{msgpack::Array{msgpack::Value{std::int64_t{2}},
                                  msgpack::Value{msgpack::Array{msgpack::Value{true}, msgpack::Value{msgpack::Bin{"0123456789abcdef"}}}},
                                  msgpack::Value{std::int64_t{70000}}, msgpack::Value{1.5e9},
                                  msgpack::Value{std::string(40, 's')}, msgpack::Value{std::int64_t{-5}}}};
  auto packed = msgpack::pack(v);
  auto back = msgpack::unpack(packed);
  ASSERT_TRUE(back);
  EXPECT_EQ(msgpack::pack(*back), packed);
  EXPECT_FALSE(msgpack::unpack(packed.substr(0, packed.size() - 1)));
  EXPECT_FALSE(msgpack::unpack(packed + "x"));
}

TEST(Fernet, EncryptDecryptAndTamper) {
  auto key = random_bytes(32);
  auto token = fernet_encrypt(key, "hello", 1234);
  auto out = fernet_decrypt({key}, token);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->first, "hello");
  EXPECT_EQ(out->second, 1234u);
  EXPECT_FALSE(fernet_decrypt({random_bytes(32)}, token));
  auto tampered = token;
  tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(fernet_decrypt({key}, tampered));
  EXPECT_FALSE(fernet_decrypt({key}, "not-a-token"));
}

TEST(Fernet, PayloadsRoundTripForEveryScope) {
  TempDir dir;
  FernetKeyRepository keys(dir.path.string());
  keys.setup();
  TokenFormatter f(keys);
  TokenPayload p;
  p.user_id = uuid4_hex();
  p.methods = {"password", "token"};
  p.expires_at = 1900000000.5;
  p.audit_ids = {base64url_encode(random_bytes(16)), base64url_encode(random_bytes(16))};
  for (int scope = 0; scope < 5; ++scope) {
    TokenPayload q = p;
    if (scope == 1) q.project_id = uuid4_hex();
    if (scope == 2) q.domain_id = "default";
    if (scope == 3) q.system = true;
    if (scope == 4) {
      q.project_id = uuid4_hex();
      q.application_credential_id = uuid4_hex();
      q.user_id = "not-a-uuid-user";
    }
    auto token = f.create(q, 1800000000);
    EXPECT_EQ(token.find('='), std::string::npos);
    auto back = f.parse(token);
    ASSERT_TRUE(back) << scope;
    EXPECT_EQ(back->user_id, q.user_id);
    EXPECT_EQ(back->methods, q.methods);
    EXPECT_EQ(back->project_id, q.project_id);
    EXPECT_EQ(back->domain_id, q.domain_id);
    EXPECT_EQ(back->system, q.system);
    EXPECT_EQ(back->application_credential_id, q.application_credential_id);
    EXPECT_DOUBLE_EQ(back->expires_at, q.expires_at);
    EXPECT_EQ(back->audit_ids, q.audit_ids);
    EXPECT_EQ(back->issued_at, 1800000000);
  }
}

TEST(Fernet, RotationKeepsOldTokensValidUntilTheirKeyIsDropped) {
  TempDir dir;
  FernetKeyRepository keys(dir.path.string(), 3);
  keys.setup();
  TokenFormatter f(keys);
  TokenPayload p;
  p.user_id = uuid4_hex();
  p.methods = {"password"};
  p.expires_at = 1900000000;
  p.audit_ids = {base64url_encode(random_bytes(16))};
  auto token = f.create(p, 1);
  keys.rotate();
  EXPECT_TRUE(f.parse(token));  // old primary is now a secondary key
  keys.rotate();
  keys.rotate();
  EXPECT_FALSE(f.parse(token));  // dropped after max_active_keys rotations
  EXPECT_EQ(keys.keys().size(), 3u);
}
