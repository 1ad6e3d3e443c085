// Keystone-compatible Fernet tokens: the key repository (setup, rotation) and the
// versioned msgpack payloads, encrypted with AES-128-CBC and signed with HMAC-SHA256.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace nubo::identity {

struct TokenPayload {
  std::string user_id;
  std::vector<std::string> methods;
  std::string project_id;
  std::string domain_id;
  bool system = false;
  std::string trust_id;
  std::string application_credential_id;
  double expires_at = 0;             // unix seconds
  std::vector<std::string> audit_ids;  // urlsafe base64, unpadded (22 chars)
  std::int64_t issued_at = 0;        // unix seconds, from the Fernet timestamp
};

// A directory of keys named 0 (staged), 1..N (N is primary), as keystone-manage fernet_setup writes.
class FernetKeyRepository {
 public:
  FernetKeyRepository(std::string directory, int max_active_keys = 3);
  // Creates the directory and the first keys when it holds none.
  void setup();
  // Promotes the staged key to primary, stages a new key and drops the oldest beyond max_active_keys.
  void rotate();
  // Re-reads the keys from disk; keys()[0] is the primary.
  void load();
  std::vector<std::string> keys() const;

 private:
  std::vector<int> indexes() const;
  void write_key(int index);
  std::string dir_;
  int max_active_;
  mutable std::shared_mutex mu_;
  std::vector<std::string> keys_;  // raw 32-byte keys, primary first
};

std::string fernet_encrypt(std::string_view key32, std::string_view plaintext, std::uint64_t timestamp);
// Returns the plaintext and the token's timestamp, or nullopt when no key verifies it.
std::optional<std::pair<std::string, std::uint64_t>> fernet_decrypt(const std::vector<std::string>& keys,
                                                                    std::string_view token);

// Method names <-> keystone's bitmask (external, password, token, oauth1, mapped, application_credential).
int methods_to_int(const std::vector<std::string>& methods);
std::vector<std::string> int_to_methods(int bits);

class TokenFormatter {
 public:
  explicit TokenFormatter(FernetKeyRepository& keys) : keys_(keys) {}
  std::string create(const TokenPayload& payload, std::uint64_t now) const;
  std::optional<TokenPayload> parse(std::string_view token) const;

 private:
  FernetKeyRepository& keys_;
};

}  // namespace nubo::identity
