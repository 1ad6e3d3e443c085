// An md5 taken as the bytes arrive (Swift's ETags, the replicators' hashes), on OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace nubo {

class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(std::string_view bytes);
  // The hex digest of the bytes so far (more may follow).
  std::string hex() const;
  static std::string of(std::string_view bytes);

 private:
  void* ctx_;  // EVP_MD_CTX*
};

}  // namespace nubo
