#include "identity/token/fernet.hpp"

#include "common/ids.hpp"
#include "identity/token/msgpack.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace nubo::identity {

namespace {
const char* kMethods[] = {"external", "password", "token", "oauth1", "mapped", "application_credential"};

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool is_uuid_hex(std::string_view s) {
  if (s.size() != 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string hex_to_bytes(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

msgpack::Value str(std::string s) { return msgpack::Value{std::move(s)}; }
msgpack::Value bin(std::string s) { return msgpack::Value{msgpack::Bin{std::move(s)}}; }

// keystone's attempt_convert_uuid_hex_to_bytes: (True, bytes) for uuid hex, else (False, str).
msgpack::Value id_value(const std::string& id) {
  if (is_uuid_hex(id)) return msgpack::Value{msgpack::Array{msgpack::Value{true}, bin(hex_to_bytes(id))}};
  return msgpack::Value{msgpack::Array{msgpack::Value{false}, str(id)}};
}

std::optional<std::string> id_from(const msgpack::Value& v) {
  auto* a = v.array();
  if (!a || a->size() != 2) return std::nullopt;
  auto flag = (*a)[0].boolean();
  if (!flag) return std::nullopt;
  if (*flag) {
    auto* b = (*a)[1].bin();
    if (!b || b->bytes.size() != 16) return std::nullopt;
    return hex_encode(b->bytes);
  }
  if (auto* s = (*a)[1].str()) return *s;
  if (auto* b = (*a)[1].bin()) return b->bytes;
  return std::nullopt;
}

// Domain and trust ids are packed as raw uuid bytes (the default domain as its string).
msgpack::Value raw_id_value(const std::string& id) {
  if (is_uuid_hex(id)) return bin(hex_to_bytes(id));
  return str(id);
}
std::optional<std::string> raw_id_from(const msgpack::Value& v) {
  if (auto* b = v.bin()) return b->bytes.size() == 16 ? hex_encode(b->bytes) : b->bytes;
  if (auto* s = v.str()) return *s;
  return std::nullopt;
}

msgpack::Value audit_value(const std::vector<std::string>& ids) {
  msgpack::Array a;
  for (auto& id : ids) a.push_back(bin(base64url_decode(id).value_or(std::string())));
  return msgpack::Value{std::move(a)};
}
std::optional<std::vector<std::string>> audit_from(const msgpack::Value& v) {
  auto* a = v.array();
  if (!a) return std::nullopt;
  std::vector<std::string> out;
  for (auto& x : *a) {
    if (auto* b = x.bin())
      out.push_back(base64url_encode(b->bytes));
    else if (auto* s = x.str())
      out.push_back(base64url_encode(*s));
    else
      return std::nullopt;
  }
  return out;
}
}  // namespace

int methods_to_int(const std::vector<std::string>& methods) {
  int bits = 0;
  for (auto& m : methods)
    for (int i = 0; i < 6; ++i)
      if (m == kMethods[i]) bits |= 1 << i;
  return bits;
}

std::vector<std::string> int_to_methods(int bits) {
  std::vector<std::string> out;
  for (int i = 0; i < 6; ++i)
    if (bits & (1 << i)) out.emplace_back(kMethods[i]);
  return out;
}

FernetKeyRepository::FernetKeyRepository(std::string directory, int max_active_keys)
    : dir_(std::move(directory)), max_active_(std::max(2, max_active_keys)) {}

std::vector<int> FernetKeyRepository::indexes() const {
  std::vector<int> out;
  if (!fs::exists(dir_)) return out;
  for (auto& e : fs::directory_iterator(dir_)) {
    auto name = e.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) out.push_back(std::stoi(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FernetKeyRepository::write_key(int index) {
  auto key = base64url_encode(random_bytes(32), true);
  auto tmp = fs::path(dir_) / (".tmp." + std::to_string(index));
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << key;
    f.flush();
    if (!f) throw std::runtime_error("cannot write fernet key in " + dir_);
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
  fs::rename(tmp, fs::path(dir_) / std::to_string(index));
}

void FernetKeyRepository::setup() {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all);
  auto idx = indexes();
  if (idx.empty()) {
    write_key(0);
    rotate();
    return;
  }
  load();
}

void FernetKeyRepository::rotate() {
  auto idx = indexes();
  if (idx.empty() || idx.front() != 0) write_key(0);
  idx = indexes();
  int next = idx.back() + 1;
  fs::rename(fs::path(dir_) / "0", fs::path(dir_) / std::to_string(next));
  write_key(0);
  idx = indexes();
  // Keep the staged key and the newest max_active-1 others.
  std::vector<int> numbered(idx.begin() + 1, idx.end());
  while (static_cast<int>(numbered.size()) + 1 > max_active_) {
    fs::remove(fs::path(dir_) / std::to_string(numbered.front()));
    numbered.erase(numbered.begin());
  }
  load();
}

void FernetKeyRepository::load() {
  auto idx = indexes();
  std::vector<std::string> keys;
  // Primary (highest) first, then the others, then staged (0): all can validate.
  std::sort(idx.begin(), idx.end(), [](int a, int b) {
    if (a == 0) return false;
    if (b == 0) return true;
    return a > b;
  });
  for (int i : idx) {
    std::ifstream f(fs::path(dir_) / std::to_string(i));
    std::stringstream ss;
    ss << f.rdbuf();
    auto text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto raw = base64url_decode(text);
    if (!raw || raw->size() != 32) throw std::runtime_error("invalid fernet key " + std::to_string(i) + " in " + dir_);
    keys.push_back(*raw);
  }
  if (keys.empty()) throw std::runtime_error("no fernet keys in " + dir_);
  std::unique_lock lock(mu_);
  keys_ = std::move(keys);
}

std::vector<std::string> FernetKeyRepository::keys() const {
  std::shared_lock lock(mu_);
  return keys_;
}

std::string fernet_encrypt(std::string_view key, std::string_view plaintext, std::uint64_t timestamp) {
  auto signing = key.substr(0, 16);
  auto encryption = key.substr(16, 16);
  auto iv = random_bytes(16);
  std::string ct(plaintext.size() + 16, '\0');
  int len1 = 0, len2 = 0;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), nullptr, reinterpret_cast<const unsigned char*>(encryption.data()),
                     reinterpret_cast<const unsigned char*>(iv.data()));
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(ct.data()), &len1,
                    reinterpret_cast<const unsigned char*>(plaintext.data()), static_cast<int>(plaintext.size()));
  EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(ct.data()) + len1, &len2);
  EVP_CIPHER_CTX_free(ctx);
  ct.resize(static_cast<size_t>(len1 + len2));
  std::string msg;
  msg += '\x80';
  for (int i = 7; i >= 0; --i) msg += static_cast<char>((timestamp >> (8 * i)) & 0xff);
  msg += iv;
  msg += ct;
  msg += hmac_sha256(signing, msg);
  return base64url_encode(msg, true);
}

std::optional<std::pair<std::string, std::uint64_t>> fernet_decrypt(const std::vector<std::string>& keys,
                                                                    std::string_view token) {
  auto raw = base64url_decode(token);
  if (!raw || raw->size() < 1 + 8 + 16 + 16 + 32 || (*raw)[0] != '\x80') return std::nullopt;
  auto& d = *raw;
  std::string_view body(d.data(), d.size() - 32);
  std::string_view mac(d.data() + d.size() - 32, 32);
  std::uint64_t ts = 0;
  for (int i = 1; i <= 8; ++i) ts = (ts << 8) | static_cast<unsigned char>(d[i]);
  std::string_view iv(d.data() + 9, 16);
  std::string_view ct(d.data() + 25, d.size() - 25 - 32);
  if (ct.size() % 16 != 0) return std::nullopt;
  for (auto& key : keys) {
    auto expected = hmac_sha256(std::string_view(key).substr(0, 16), body);
    if (CRYPTO_memcmp(expected.data(), mac.data(), 32) != 0) continue;
    std::string pt(ct.size() + 16, '\0');
    int len1 = 0, len2 = 0;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex(ctx, EVP_aes_128_cbc(), nullptr, reinterpret_cast<const unsigned char*>(key.data() + 16),
                       reinterpret_cast<const unsigned char*>(iv.data()));
    bool ok = EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(pt.data()), &len1,
                                reinterpret_cast<const unsigned char*>(ct.data()), static_cast<int>(ct.size())) == 1 &&
              EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(pt.data()) + len1, &len2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) return std::nullopt;
    pt.resize(static_cast<size_t>(len1 + len2));
    return std::make_pair(std::move(pt), ts);
  }
  return std::nullopt;
}

std::string TokenFormatter::create(const TokenPayload& p, std::uint64_t now) const {
  msgpack::Array a;
  auto methods = msgpack::Value{static_cast<std::int64_t>(methods_to_int(p.methods))};
  auto expires = msgpack::Value{p.expires_at};
  auto audit = audit_value(p.audit_ids);
  if (!p.application_credential_id.empty()) {
    a = {msgpack::Value{std::int64_t{9}}, id_value(p.user_id), methods, id_value(p.project_id), expires, audit,
         id_value(p.application_credential_id)};
  } else if (!p.trust_id.empty()) {
    a = {msgpack::Value{std::int64_t{3}}, id_value(p.user_id), methods, id_value(p.project_id), expires, audit,
         raw_id_value(p.trust_id)};
  } else if (!p.project_id.empty()) {
    a = {msgpack::Value{std::int64_t{2}}, id_value(p.user_id), methods, id_value(p.project_id), expires, audit};
  } else if (!p.domain_id.empty()) {
    a = {msgpack::Value{std::int64_t{1}}, id_value(p.user_id), methods, raw_id_value(p.domain_id), expires, audit};
  } else if (p.system) {
    a = {msgpack::Value{std::int64_t{8}}, id_value(p.user_id), methods, str("all"), expires, audit};
  } else {
    a = {msgpack::Value{std::int64_t{0}}, id_value(p.user_id), methods, expires, audit};
  }
  auto token = fernet_encrypt(keys_.keys().front(), msgpack::pack(msgpack::Value{std::move(a)}), now);
  // Keystone strips the base64 padding from its tokens.
  while (!token.empty() && token.back() == '=') token.pop_back();
  return token;
}

std::optional<TokenPayload> TokenFormatter::parse(std::string_view token) const {
  if (token.size() > 1024) return std::nullopt;
  auto dec = fernet_decrypt(keys_.keys(), token);
  if (!dec) return std::nullopt;
  auto v = msgpack::unpack(dec->first);
  if (!v || !v->array() || v->array()->empty()) return std::nullopt;
  auto& a = *v->array();
  auto version = a[0].integer();
  if (!version) return std::nullopt;
  TokenPayload p;
  p.issued_at = static_cast<std::int64_t>(dec->second);
  auto common = [&](size_t expires_index, size_t audit_index) -> bool {
    auto user = id_from(a[1]);
    auto methods = a[2].integer();
    auto expires = a[expires_index].number();
    auto audit = audit_from(a[audit_index]);
    if (!user || !methods || !expires || !audit) return false;
    p.user_id = *user;
    p.methods = int_to_methods(static_cast<int>(*methods));
    p.expires_at = *expires;
    p.audit_ids = *audit;
    return true;
  };
  switch (*version) {
    case 0:
      if (a.size() != 5 || !common(3, 4)) return std::nullopt;
      return p;
    case 1: {
      if (a.size() != 6 || !common(4, 5)) return std::nullopt;
      auto d = raw_id_from(a[3]);
      if (!d) return std::nullopt;
      p.domain_id = *d;
      return p;
    }
    case 2:
    case 3:
    case 9: {
      size_t want = *version == 2 ? 6 : 7;
      if (a.size() != want || !common(4, 5)) return std::nullopt;
      auto project = id_from(a[3]);
      if (!project) return std::nullopt;
      p.project_id = *project;
      if (*version == 3) {
        auto t = raw_id_from(a[6]);
        if (!t) return std::nullopt;
        p.trust_id = *t;
      } else if (*version == 9) {
        auto ac = id_from(a[6]);
        if (!ac) return std::nullopt;
        p.application_credential_id = *ac;
      }
      return p;
    }
    case 8:
      if (a.size() != 6 || !common(4, 5)) return std::nullopt;
      p.system = true;
      return p;
    default:
      return std::nullopt;
  }
}

}  // namespace nubo::identity
