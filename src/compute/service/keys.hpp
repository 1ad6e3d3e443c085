// Keypair material as Nova handles it: generated RSA keys, and the fingerprints (and validity) of
// imported OpenSSH public keys and X.509 certificates.
#pragma once

#include <optional>
#include <string>

namespace nubo::compute {

struct GeneratedKey {
  std::string private_key;  // PEM, "BEGIN RSA PRIVATE KEY" as Nova's generated keys
  std::string public_key;   // "ssh-rsa AAAA... Generated-by-Nova"
  std::string fingerprint;
};

GeneratedKey generate_ssh_key();
// A self-signed certificate (the public key) and its key, for a generated x509 keypair.
GeneratedKey generate_x509_key(const std::string& common_name);
// MD5 of the key blob as colon-separated hex (OpenSSH's legacy form, as Nova shows it); nullopt
// when the text is not a well-formed public key of a known type.
std::optional<std::string> ssh_fingerprint(const std::string& public_key);
// SHA-1 of the certificate's DER as colon-separated hex; nullopt when it is not a PEM certificate.
std::optional<std::string> x509_fingerprint(const std::string& certificate);

}  // namespace nubo::compute
