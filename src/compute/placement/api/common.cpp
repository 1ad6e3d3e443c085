#include "compute/placement/api/common.hpp"

#include <charconv>
#include <cmath>
#include <ctime>
#include <sstream>

namespace nubo::placement::api {

namespace {

std::string http_date_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// webob's explanation of each status, which Placement's error detail starts with.
const char* explanation(int status) {
  switch (status) {
    case 400:
      return "The server could not comply with the request since it is either malformed or "
             "otherwise incorrect.";
    case 403:
      return "Access was denied to this resource.";
    case 404:
      return "The resource could not be found.";
    case 405:
      return "The method specified is not allowed for this resource.";
    case 409:
      return "There was a conflict when trying to complete your request.";
    case 500:
      return "The server has either erred or is incapable of performing the requested operation.";
    default:
      return "";
  }
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

}  // namespace

Route route(std::string method, std::string path, std::string rule, RouteHandler handler,
            int min_minor, int max_minor) {
  Route r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.handler = [rule = std::move(rule), handler = std::move(handler)](Context& ctx) {
    if (!ctx.allowed(rule, {{"project_id", ctx.auth ? ctx.auth->project_id : std::string()}}))
      throw placement_error(403, "Policy does not allow " + rule + " to be performed.");
    auto response = handler(ctx);
    if (at_least(ctx, 15) && !response.body.empty()) {
      response.headers.set("Cache-Control", "no-cache");
      response.headers.set("Last-Modified", http_date_now());
    }
    return response;
  };
  if (min_minor) r.min_version = Microversion{1, min_minor};
  if (max_minor) r.max_version = Microversion{1, max_minor};
  return r;
}

json::value body(const Context& ctx) {
  auto type = ctx.request.headers.get_or("Content-Type");
  auto semi = type.find(';');
  std::string bare = type.substr(0, semi);
  while (!bare.empty() && bare.back() == ' ') bare.pop_back();
  if (bare != "application/json")
    throw placement_error(415, "The media type " + (bare.empty() ? std::string("None") : bare) +
                                   " is not supported, use application/json");
  boost::system::error_code ec;
  auto v = json::parse(ctx.request.body, ec);
  if (ec) throw placement_error(400, "Malformed JSON: " + ec.message());
  return v;
}

void invalid(const std::string& why) {
  throw placement_error(400, "JSON does not validate: " + why);
}

std::string repr(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "None";
    case json::kind::bool_:
      return v.as_bool() ? "True" : "False";
    case json::kind::string: {
      std::string out = "'";
      for (char c : v.as_string()) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
      }
      return out + "'";
    }
    case json::kind::array: {
      std::string out = "[";
      for (auto& x : v.as_array()) out += (out.size() > 1 ? ", " : "") + repr(x);
      return out + "]";
    }
    case json::kind::object: {
      std::string out = "{";
      for (auto& kv : v.as_object())
        out += (out.size() > 1 ? ", '" : "'") + std::string(kv.key()) + "': " + repr(kv.value());
      return out + "}";
    }
    case json::kind::double_: {
      std::ostringstream s;
      s << v.as_double();
      auto t = s.str();
      return t.find_first_of(".e") == std::string::npos ? t + ".0" : t;
    }
    default:
      return json::serialize(v);
  }
}

const json::object& object_of(const json::value& v) {
  if (!v.is_object()) invalid(repr(v) + " is not of type 'object'");
  return v.as_object();
}

void only_keys(const json::object& o, std::initializer_list<std::string_view> keys) {
  std::string unexpected;
  for (auto& kv : o) {
    bool known = false;
    for (auto k : keys) known = known || kv.key() == k;
    if (!known) unexpected += (unexpected.empty() ? "'" : ", '") + std::string(kv.key()) + "'";
  }
  if (!unexpected.empty())
    invalid("Additional properties are not allowed (" + unexpected +
            (unexpected.find(',') == std::string::npos ? " was" : " were") + " unexpected)");
}

void require_keys(const json::object& o, std::initializer_list<std::string_view> keys) {
  for (auto k : keys)
    if (!o.contains(k)) invalid("'" + std::string(k) + "' is a required property");
}

std::string string_of(const json::value& v, std::size_t max_length, std::size_t min_length) {
  if (!v.is_string()) invalid(repr(v) + " is not of type 'string'");
  std::string s(v.as_string());
  if (max_length && s.size() > max_length) invalid(repr(v) + " is too long");
  if (s.size() < min_length)
    invalid(repr(v) + (min_length == 1 ? " should be non-empty" : " is too short"));
  return s;
}

std::int64_t integer_of(const json::value& v, std::int64_t minimum, std::int64_t maximum) {
  std::int64_t n = 0;
  if (v.is_int64()) {
    n = v.as_int64();
  } else if (v.is_uint64()) {
    invalid(repr(v) + " is greater than the maximum of " + std::to_string(maximum));
  } else if (v.is_double() && std::trunc(v.as_double()) == v.as_double() &&
             std::abs(v.as_double()) < 9e15) {
    n = static_cast<std::int64_t>(v.as_double());  // 2.0 is an integer to jsonschema
  } else {
    invalid(repr(v) + " is not of type 'integer'");
  }
  if (n < minimum) invalid(repr(v) + " is less than the minimum of " + std::to_string(minimum));
  if (n > maximum) invalid(repr(v) + " is greater than the maximum of " + std::to_string(maximum));
  return n;
}

std::optional<std::string> canonical_uuid(std::string_view v) {
  if (v.rfind("urn:uuid:", 0) == 0) v.remove_prefix(9);
  if (v.size() >= 2 && v.front() == '{' && v.back() == '}') v = v.substr(1, v.size() - 2);
  std::string hex;
  for (char c : v) {
    if (c == '-') continue;
    if (!is_hex(c)) return std::nullopt;
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 32) return std::nullopt;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string uuid_of(const json::value& v) {
  auto s = string_of(v);
  auto u = canonical_uuid(s);
  if (!u) invalid(repr(v) + " is not a 'uuid'");
  return *u;
}

bool valid_class_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (!(std::isupper(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  return true;
}

bool valid_custom_name(std::string_view name) {
  return name.size() > 7 && name.rfind("CUSTOM_", 0) == 0 && valid_class_name(name);
}

void only_query(const Context& ctx, const std::set<std::string>& allowed) {
  for (auto& [k, v] : ctx.request.query)
    if (!allowed.count(k))
      throw placement_error(
          400, "Invalid query string parameters: Additional properties are not allowed ('" + k +
                   "' was unexpected)");
}

std::optional<std::string> query(const Context& ctx, const std::string& key) {
  std::optional<std::string> out;
  auto [b, e] = ctx.request.query.equal_range(key);
  for (auto it = b; it != e; ++it) out = it->second;
  return out;
}

std::vector<std::string> query_all(const Context& ctx, const std::string& key) {
  std::vector<std::string> out;
  auto [b, e] = ctx.request.query.equal_range(key);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

Amounts parse_resources(const std::string& value) {
  const std::string form =
      "Badly formed resources parameter. Expected resources query string parameter in form: "
      "?resources=VCPU:2,MEMORY_MB:1024. Got: ";
  if (value.find_first_not_of(" \t") == std::string::npos)
    throw placement_error(400, form + "empty string.");
  Amounts out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto colon = item.find(':');
    if (colon == std::string::npos || item.find(':', colon + 1) != std::string::npos)
      throw placement_error(400, form + item + ".");
    auto name = item.substr(0, colon), amount = item.substr(colon + 1);
    auto b = amount.find_first_not_of(' '), e = amount.find_last_not_of(' ');
    std::string trimmed = b == std::string::npos ? "" : amount.substr(b, e - b + 1);
    long long n = 0;
    auto [p, ec] = std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), n);
    if (trimmed.empty() || ec != std::errc() || p != trimmed.data() + trimmed.size())
      throw placement_error(400, "Requested resource " + name +
                                     " expected positive integer amount. Got: " + amount + ".");
    if (n < 1)
      throw placement_error(400, "Requested resource " + name +
                                     " requires amount >= 1. Got: " + std::to_string(n) + ".");
    out[name] = n;
  }
  return out;
}

namespace {

std::vector<std::string> split_trimmed(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
  }
  if (!s.empty() && s.back() == ',') out.push_back("");
  if (s.empty()) out.push_back("");
  return out;
}

}  // namespace

void parse_required(const Context& ctx, const std::string& key,
                    std::vector<std::set<std::string>>& required,
                    std::set<std::string>& forbidden) {
  bool allow_forbidden = at_least(ctx, 22), allow_any = at_least(ctx, 39);
  auto values = query_all(ctx, key);
  if (!allow_any && values.size() > 1) values.erase(values.begin(), values.end() - 1);
  const std::string bad = "Invalid query string parameters: ";
  for (auto& value : values) {
    if (value.rfind("in:", 0) == 0) {
      if (!allow_any)
        throw placement_error(
            400, bad +
                     "The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since "
                     "microversion 1.39. Got: " +
                     value);
      std::set<std::string> any;
      for (auto& t : split_trimmed(value.substr(3))) {
        if (t.empty())
          throw placement_error(400, bad +
                                         "Expected 'required' parameter value of the form: "
                                         "in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: " +
                                         value);
        if (t[0] == '!')
          throw placement_error(
              400, bad +
                       "The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden "
                       "traits. Got: " +
                       value);
        any.insert(t);
      }
      required.push_back(std::move(any));
      continue;
    }
    std::string form =
        allow_forbidden ? "HW_CPU_X86_VMX,!CUSTOM_MAGIC" : "HW_CPU_X86_VMX,CUSTOM_MAGIC";
    for (auto& t : split_trimmed(value)) {
      if (t.empty() || t == "!")
        throw placement_error(400, bad + "Expected 'required' parameter value of the form: " +
                                       form + ". Got an empty trait in: " + value);
      if (t[0] == '!') {
        if (!allow_forbidden)
          throw placement_error(400, bad +
                                         "Expected 'required' parameter value of the form: "
                                         "HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: " +
                                         value);
        forbidden.insert(t.substr(1));
      } else {
        required.push_back({t});
      }
    }
  }
}

void parse_member_of(const Context& ctx, const std::string& key,
                     std::vector<std::set<std::string>>& required,
                     std::set<std::string>& forbidden) {
  auto values = query_all(ctx, key);
  if (!at_least(ctx, 24) && values.size() > 1)
    throw placement_error(400, "Multiple " + key + " parameters are not supported");
  for (auto& value : values) {
    bool negative = false;
    std::string list = value;
    if (value.find(',') != std::string::npos && value.rfind("in:", 0) != 0 &&
        value.rfind("!in:", 0) != 0)
      throw placement_error(
          400,
          "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword "
          "using the valid microversion. Got: " +
              value);
    if (value.rfind("!in:", 0) == 0) {
      negative = true;
      list = value.substr(4);
    } else if (value.rfind("!", 0) == 0) {
      negative = true;
      list = value.substr(1);
    } else if (value.rfind("in:", 0) == 0) {
      list = value.substr(3);
    }
    std::set<std::string> uuids;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
      auto u = canonical_uuid(item);
      if (!u || item.empty())
        throw placement_error(
            400,
            "Invalid query string parameters: Expected 'member_of' parameter to contain valid "
            "UUID(s). Got: " +
                item);
      uuids.insert(*u);
    }
    if (uuids.empty())
      throw placement_error(
          400,
          "Invalid query string parameters: Expected 'member_of' parameter to contain valid "
          "UUID(s). Got: " +
              list);
    if (negative) {
      if (!at_least(ctx, 32))
        throw placement_error(
            400,
            "Forbidden " + key + " parameters are not supported in the specified microversion");
      forbidden.insert(uuids.begin(), uuids.end());
    } else {
      required.push_back(std::move(uuids));
    }
  }
}

std::string parse_in_tree(const std::string& value) {
  auto b = value.find_first_not_of(' '), e = value.find_last_not_of(' ');
  std::string trimmed = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  auto u = canonical_uuid(trimmed);
  if (!u)
    throw placement_error(
        400,
        "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. "
        "Got: " +
            value);
  return *u;
}

json::object provider_view(const Context& ctx, const Provider& p) {
  std::string self = "/resource_providers/" + p.uuid;
  json::array links{json::object{{"rel", "self"}, {"href", self}}};
  std::vector<const char*> rels{"inventories", "usages"};
  if (at_least(ctx, 1)) rels.push_back("aggregates");
  if (at_least(ctx, 6)) rels.push_back("traits");
  if (at_least(ctx, 11)) rels.push_back("allocations");
  for (auto* rel : rels) links.push_back(json::object{{"rel", rel}, {"href", self + "/" + rel}});
  json::object v{{"uuid", p.uuid},
                 {"name", p.name},
                 {"generation", p.generation},
                 {"links", std::move(links)}};
  if (at_least(ctx, 14)) {
    v["parent_provider_uuid"] = p.parent_uuid ? json::value(*p.parent_uuid) : json::value(nullptr);
    v["root_provider_uuid"] = p.root_uuid;
  }
  return v;
}

json::object inventory_view(const Inventory& inv) {
  return json::object{{"total", inv.total},         {"reserved", inv.reserved},
                      {"min_unit", inv.min_unit},   {"max_unit", inv.max_unit},
                      {"step_size", inv.step_size}, {"allocation_ratio", inv.allocation_ratio}};
}

http::Response json_ok(const json::value& body, int status) { return json_response(status, body); }

http::Response render_error(const ApiError& e, const Context& ctx) {
  // keystonemiddleware answers unauthenticated requests before Placement sees them.
  if (e.status() == 401) return render_keystone_error(e);
  std::string detail = e.what();
  if (auto* x = explanation(e.status()); *x) detail = std::string(x) + "\n\n " + detail + "  ";
  json::object err{
      {"status", e.status()}, {"title", status_reason(e.status())}, {"detail", detail}};
  if (e.status() == 406) {
    err["max_version"] = kMaxVersion.str();
    err["min_version"] = kMinVersion.str();
  } else if (at_least(ctx, 23)) {
    err["code"] = e.type().rfind("placement.", 0) == 0 ? e.type() : std::string(code::kDefault);
  }
  err["request_id"] = ctx.request_id;
  return json_response(e.status(), json::object{{"errors", json::array{std::move(err)}}});
}

}  // namespace nubo::placement::api
