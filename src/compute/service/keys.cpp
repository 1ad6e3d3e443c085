#include "compute/service/keys.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "common/ids.hpp"

namespace nubo::compute {

namespace {

std::string colon_hex(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    if (i) out += ':';
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string digest_hex(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return colon_hex(out, n);
}

void put_string(std::string& out, std::string_view s) {
  auto n = static_cast<std::uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  out += s;
}

// An SSH mpint: big-endian, with a leading zero when the top bit is set.
std::string mpint(const BIGNUM* bn) {
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  if (!bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80))
    bytes.insert(bytes.begin(), '\0');
  return bytes;
}

// Reads the SSH wire strings of a key blob; false when it is truncated.
bool read_strings(std::string_view blob, std::vector<std::string_view>& out) {
  while (!blob.empty()) {
    if (blob.size() < 4) return false;
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n = (n << 8) | static_cast<unsigned char>(blob[static_cast<size_t>(i)]);
    blob.remove_prefix(4);
    if (n > blob.size()) return false;
    out.push_back(blob.substr(0, n));
    blob.remove_prefix(n);
  }
  return true;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// The PEM text a PEM_write_bio_* call produces.
template <class Write>
std::string pem_text(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || !write(bio.get())) throw std::runtime_error("cannot write PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

GeneratedKey generate_ssh_key() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!key) throw std::runtime_error("RSA key generation failed");
  BIGNUM *n = nullptr, *e = nullptr;
  EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e);
  if (!n || !e) throw std::runtime_error("RSA key parameters unavailable");
  std::string blob;
  put_string(blob, "ssh-rsa");
  put_string(blob, mpint(e));
  put_string(blob, mpint(n));
  BN_free(n);
  BN_free(e);
  GeneratedKey out;
  out.private_key = pem_text([&](BIO* b) {
    return PEM_write_bio_PrivateKey_traditional(b, key.get(), nullptr, nullptr, 0, nullptr,
                                                nullptr);
  });
  out.public_key = "ssh-rsa " + base64_encode(blob) + " Generated-by-Nova";
  out.fingerprint = digest_hex(EVP_md5(), blob);
  return out;
}

GeneratedKey generate_x509_key(const std::string& common_name) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) throw std::runtime_error("x509 key generation failed");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  auto* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
    throw std::runtime_error("cannot sign the certificate");
  GeneratedKey out;
  out.private_key = pem_text([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  out.public_key = pem_text([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  out.fingerprint = *x509_fingerprint(out.public_key);
  return out;
}

std::optional<std::string> ssh_fingerprint(const std::string& public_key) {
  std::istringstream in(public_key);
  std::string type, encoded;
  if (!(in >> type >> encoded)) return std::nullopt;
  static const std::vector<std::string> known = {"ssh-rsa",
                                                 "ssh-dss",
                                                 "ssh-ed25519",
                                                 "ecdsa-sha2-nistp256",
                                                 "ecdsa-sha2-nistp384",
                                                 "ecdsa-sha2-nistp521"};
  bool ok = false;
  for (auto& k : known) ok = ok || k == type;
  if (!ok) return std::nullopt;
  auto blob = base64_decode(encoded);
  std::vector<std::string_view> parts;
  if (!blob || !read_strings(*blob, parts) || parts.empty() || parts[0] != type)
    return std::nullopt;
  size_t want = type == "ssh-rsa" ? 3 : type == "ssh-dss" ? 5 : type == "ssh-ed25519" ? 2 : 3;
  if (parts.size() != want) return std::nullopt;
  if (type == "ssh-ed25519" && parts[1].size() != 32) return std::nullopt;
  return digest_hex(EVP_md5(), *blob);
}

std::optional<std::string> x509_fingerprint(const std::string& certificate) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(certificate.data(), static_cast<int>(certificate.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return std::nullopt;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!X509_digest(cert.get(), EVP_sha1(), out, &n)) return std::nullopt;
  return colon_hex(out, n);
}

}  // namespace nubo::compute
