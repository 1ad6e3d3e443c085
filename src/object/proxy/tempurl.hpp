// Swift's tempurl middleware: a request signed with an account's or container's Temp-URL-Key
// (temp_url_sig, temp_url_expires, optional temp_url_prefix and temp_url_ip_range) is allowed
// without a token until it expires; also the signature checks FormPost shares.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "object/proxy/core.hpp"

namespace nubo::object::proxy::tempurl {

// Whether the request carries temp_url_sig or temp_url_expires (tempurl then decides).
bool present(const http::Request& r);

// What an accepted TempURL changes in its response.
struct Accepted {
  std::int64_t expires = 0;
  std::optional<std::string> filename;
  bool inline_disposition = false;
};
// Checks the signature: on success the request holds a grant in place of its token, and its
// query and headers are cleaned as Swift cleans them; 401 "Temp URL invalid" otherwise.
Accepted authorize(Request& q);
// Drops X-Object-Meta-* (but X-Object-Meta-Public-*) and, on GET and HEAD success, sets
// Content-Disposition and Expires.
void filter_response(const Request& q, const Accepted& accepted, http::Response& out);

// The account's and the container's Temp-URL-Key and Temp-URL-Key-2, each with whether it is
// the account's.
std::vector<std::pair<std::string, bool>> keys(Proxy& proxy, const SwiftPath& path);
// "<hex>" (sha1, sha256 or sha512 by length) or "<digest>:<base64>" → (digest, hex); nullopt
// when malformed or not an allowed digest.
std::optional<std::pair<std::string, std::string>> parse_signature(std::string_view signature);
std::string hmac_hex(const std::string& digest, std::string_view key, std::string_view message);
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace nubo::object::proxy::tempurl
