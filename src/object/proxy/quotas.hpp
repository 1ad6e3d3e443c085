// Swift's container_quotas and account_quotas middleware: quotas kept as container and account
// metadata, checked on every object PUT (413 "Upload exceeds quota."); an account's quotas are
// the reseller admin's to set.
#pragma once

#include <cstdint>

#include "object/proxy/core.hpp"

namespace nubo::object::proxy::quotas {

// Container PUT or POST: quota values must be digits.
void check_container_update(const http::Request& r);
// Account PUT or POST: only the reseller admin sets quotas (403 for anyone else); the new-style
// headers (X-Account-Quota-Bytes, X-Account-Quota-Count, per policy) become the stored metadata.
void check_account_update(Request& q);
// Account GET and HEAD: the quotas under their new-style names too.
void add_account_headers(http::Response& out);
// An object PUT (or copy) of `length` bytes.
void check_object_put(Request& q, std::uint64_t length);

}  // namespace nubo::object::proxy::quotas
