#include "common/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "common/ids.hpp"

namespace nubo {

Md5::Md5() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_md5(), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    throw std::runtime_error("md5 unavailable");
  }
}

Md5::~Md5() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Md5::update(std::string_view bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

std::string Md5::hex() const {
  auto* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, static_cast<EVP_MD_CTX*>(ctx_));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(copy, digest, &n);
  EVP_MD_CTX_free(copy);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), n));
}

std::string Md5::of(std::string_view bytes) {
  Md5 m;
  m.update(bytes);
  return m.hex();
}

}  // namespace nubo
