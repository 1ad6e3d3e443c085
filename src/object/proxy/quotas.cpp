// Container and account quotas as Swift enforces them.
#include "object/proxy/quotas.hpp"

#include <algorithm>
#include <charconv>

#include "object/swift_http.hpp"

namespace nubo::object::proxy::quotas {

namespace {

bool digits(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::uint64_t> number(const http::Headers& h, std::string_view name) {
  auto v = h.get(name);
  if (!v || !digits(*v)) return std::nullopt;
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc()) return std::nullopt;
  return n;
}

std::uint64_t count(const http::Headers& h, std::string_view name) {
  return number(h, name).value_or(0);
}

// The stored metadata behind each quota, with its new-style header name.
struct Quota {
  const char* header;  // X-Account-Quota-Bytes
  const char* stored;  // X-Account-Meta-Quota-Bytes
};
constexpr Quota kAccountQuotas[] = {
    {"X-Account-Quota-Bytes", "X-Account-Meta-Quota-Bytes"},
    {"X-Account-Quota-Count", "X-Account-Meta-Quota-Count"},
    {"X-Account-Quota-Bytes-Policy-Policy-0", "X-Account-Meta-Quota-Bytes-Policy-0"},
    {"X-Account-Quota-Count-Policy-Policy-0", "X-Account-Meta-Quota-Count-Policy-0"},
};

[[noreturn]] void exceeded(const char* message) { throw swift_error(413, message); }

}  // namespace

void check_container_update(const http::Request& r) {
  if (auto v = r.headers.get("X-Container-Meta-Quota-Bytes"); v && !v->empty() && !digits(*v))
    throw swift_error(400, "Invalid bytes quota.");
  if (auto v = r.headers.get("X-Container-Meta-Quota-Count"); v && !v->empty() && !digits(*v))
    throw swift_error(400, "Invalid count quota.");
}

void check_account_update(Request& q) {
  auto& h = q.r().headers;
  // The legacy names (metadata) stand for the new ones when those are not given.
  for (auto& quota : kAccountQuotas) {
    std::string legacy = quota.stored, header = quota.header;
    for (auto [from, to] : {std::pair(legacy, header), std::pair("X-Remove-" + legacy.substr(2),
                                                                 "X-Remove-" + header.substr(2))})
      if (auto v = h.get(from); v && h.get_or(to).empty()) h.set(to, std::string(*v));
  }
  std::vector<std::pair<const Quota*, std::string>> updates;
  for (auto& quota : kAccountQuotas) {
    std::string header = quota.header;
    auto value = h.get(header);
    std::optional<std::string> v =
        value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
    if (!h.get_or("X-Remove-" + header.substr(2)).empty()) v = "";
    if (v) updates.emplace_back(&quota, *v);
  }
  if (updates.empty()) return;
  if (!is_reseller(q.proxy, q.ctx)) throw swift_error(403);
  for (auto& [quota, value] : updates)
    if (!value.empty() && !digits(value)) throw swift_error(400);
  for (auto& [quota, value] : updates) {
    std::string header = quota->header;
    h.remove(header);
    h.remove("X-Remove-" + header.substr(2));
    h.set(quota->stored, value);
  }
}

void add_account_headers(http::Response& out) {
  for (auto& quota : kAccountQuotas)
    if (auto v = out.headers.get(quota.stored)) out.headers.set(quota.header, std::string(*v));
}

void check_object_put(Request& q, std::uint64_t length) {
  auto info = container_info(q.proxy, q.path);
  auto has_quota = [](const http::Headers& h, std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(),
                       [&](const char* n) { return h.get(n).has_value(); });
  };
  if (info.status == 204 &&
      has_quota(info.headers, {"X-Container-Meta-Quota-Bytes", "X-Container-Meta-Quota-Count"})) {
    // Usage changes with every write: a quota is checked against fresh counts.
    info = container_info(q.proxy, q.path, true);
    if (auto quota = number(info.headers, "X-Container-Meta-Quota-Bytes");
        quota && count(info.headers, "X-Container-Bytes-Used") + length > *quota)
      exceeded("Upload exceeds quota.");
    if (auto quota = number(info.headers, "X-Container-Meta-Quota-Count");
        quota && count(info.headers, "X-Container-Object-Count") + 1 > *quota)
      exceeded("Upload exceeds quota.");
  }
  if (is_reseller(q.proxy, q.ctx)) return;
  auto account = account_info(q.proxy, q.path.account);
  bool any = false;
  for (auto& quota : kAccountQuotas) any |= account.headers.get(quota.stored).has_value();
  if (account.status != 204 || !any) return;
  account = account_info(q.proxy, q.path.account, true);
  auto bytes = count(account.headers, "X-Account-Bytes-Used");
  auto objects = count(account.headers, "X-Account-Object-Count");
  if (auto quota = number(account.headers, "X-Account-Meta-Quota-Bytes");
      quota && bytes + length > *quota)
    exceeded("Upload exceeds quota.");
  if (auto quota = number(account.headers, "X-Account-Meta-Quota-Count");
      quota && objects + 1 > *quota)
    exceeded("Upload exceeds quota.");
  // One storage policy: its usage is the account's.
  if (auto quota = number(account.headers, "X-Account-Meta-Quota-Bytes-Policy-0");
      quota && bytes + length > *quota)
    exceeded("Upload exceeds policy quota.");
  if (auto quota = number(account.headers, "X-Account-Meta-Quota-Count-Policy-0");
      quota && objects + 1 > *quota)
    exceeded("Upload exceeds policy quota.");
}

}  // namespace nubo::object::proxy::quotas
