#include "common/policy.hpp"

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <vector>

namespace nubo {

struct PolicyNode {
  enum Kind { True, False, And, Or, Not, Rule, Role, Generic } kind = True;
  std::vector<std::shared_ptr<PolicyNode>> children;
  std::string key, value;
};

namespace {

using NodePtr = std::shared_ptr<PolicyNode>;
using Rules = std::map<std::string, std::shared_ptr<PolicyNode>, std::less<>>;

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Tokens: "(", ")", "and", "or", "not", or a check "kind:match", "@", "!". As oslo.policy does,
// split on whitespace, then peel parentheses off the ends of each piece, so "%(x)s" stays whole.
std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    char quote = 0;
    while (j < text.size()) {
      char d = text[j];
      if (quote) {
        if (d == quote) quote = 0;
      } else if (d == '\'' || d == '"') {
        quote = d;
      } else if (std::isspace(static_cast<unsigned char>(d))) {
        break;
      }
      ++j;
    }
    std::string_view piece = text.substr(i, j - i);
    i = j;
    while (!piece.empty() && piece.front() == '(') {
      out.emplace_back("(");
      piece.remove_prefix(1);
    }
    int closing = 0;
    while (!piece.empty() && piece.back() == ')') {
      ++closing;
      piece.remove_suffix(1);
    }
    if (!piece.empty()) out.emplace_back(piece);
    for (int k = 0; k < closing; ++k) out.emplace_back(")");
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<std::string> t) : tokens_(std::move(t)) {}
  NodePtr parse() {
    if (tokens_.empty()) return std::make_shared<PolicyNode>();
    auto n = parse_or();
    if (pos_ != tokens_.size()) throw std::runtime_error("unexpected token '" + tokens_[pos_] + "'");
    return n;
  }

 private:
  bool at(std::string_view word) const { return pos_ < tokens_.size() && lower(tokens_[pos_]) == word; }
  NodePtr parse_or() {
    auto left = parse_and();
    while (at("or")) {
      ++pos_;
      auto n = std::make_shared<PolicyNode>();
      n->kind = PolicyNode::Or;
      n->children = {left, parse_and()};
      left = n;
    }
    return left;
  }
  NodePtr parse_and() {
    auto left = parse_not();
    while (at("and")) {
      ++pos_;
      auto n = std::make_shared<PolicyNode>();
      n->kind = PolicyNode::And;
      n->children = {left, parse_not()};
      left = n;
    }
    return left;
  }
  NodePtr parse_not() {
    if (at("not")) {
      ++pos_;
      auto n = std::make_shared<PolicyNode>();
      n->kind = PolicyNode::Not;
      n->children = {parse_not()};
      return n;
    }
    return parse_atom();
  }
  NodePtr parse_atom() {
    if (pos_ >= tokens_.size()) throw std::runtime_error("unexpected end of rule");
    auto tok = tokens_[pos_++];
    if (tok == "(") {
      auto n = parse_or();
      if (pos_ >= tokens_.size() || tokens_[pos_] != ")") throw std::runtime_error("missing ')'");
      ++pos_;
      return n;
    }
    auto n = std::make_shared<PolicyNode>();
    if (tok == "@") return n;
    if (tok == "!") {
      n->kind = PolicyNode::False;
      return n;
    }
    auto colon = tok.find(':');
    if (colon == std::string::npos) throw std::runtime_error("bad check '" + tok + "'");
    n->key = tok.substr(0, colon);
    n->value = tok.substr(colon + 1);
    if (n->value.size() >= 2 && (n->value.front() == '\'' || n->value.front() == '"') &&
        n->value.back() == n->value.front())
      n->value = n->value.substr(1, n->value.size() - 2);
    if (n->key == "rule")
      n->kind = PolicyNode::Rule;
    else if (n->key == "role")
      n->kind = PolicyNode::Role;
    else
      n->kind = PolicyNode::Generic;
    return n;
  }
  std::vector<std::string> tokens_;
  size_t pos_ = 0;
};

NodePtr parse_rule(std::string_view text) { return Parser(tokenize(text)).parse(); }

// Replaces %(name)s with the target's value; nullopt when the target lacks the key.
std::optional<std::string> substitute(const std::string& value, const std::map<std::string, std::string>& target) {
  if (value.rfind("%(", 0) != 0) return value;
  auto end = value.find(")s");
  if (end == std::string::npos) return value;
  auto key = value.substr(2, end - 2);
  auto it = target.find(key);
  if (it == target.end()) return std::nullopt;
  return it->second + value.substr(end + 2);
}

const json::value* credential(const json::object& creds, const std::string& key) {
  if (auto* v = find(creds, key)) return v;
  // Dotted keys walk nested objects: token.domain.id
  const json::object* obj = &creds;
  const json::value* v = nullptr;
  size_t start = 0;
  while (start <= key.size()) {
    auto dot = key.find('.', start);
    auto part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!obj) return nullptr;
    v = find(*obj, part);
    if (!v) return nullptr;
    obj = v->is_object() ? &v->as_object() : nullptr;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

std::string scalar_string(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "True" : "False";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_null()) return "None";
  return json::serialize(v);
}

bool evaluate(const PolicyNode& n, const Rules* rules, const json::object& creds,
              const std::map<std::string, std::string>& target, int depth) {
  if (depth > 50) return false;
  switch (n.kind) {
    case PolicyNode::True:
      return true;
    case PolicyNode::False:
      return false;
    case PolicyNode::And:
      return evaluate(*n.children[0], rules, creds, target, depth) &&
             evaluate(*n.children[1], rules, creds, target, depth);
    case PolicyNode::Or:
      return evaluate(*n.children[0], rules, creds, target, depth) ||
             evaluate(*n.children[1], rules, creds, target, depth);
    case PolicyNode::Not:
      return !evaluate(*n.children[0], rules, creds, target, depth);
    case PolicyNode::Rule: {
      if (!rules) return false;
      auto it = rules->find(n.value);
      return it != rules->end() && evaluate(*it->second, rules, creds, target, depth + 1);
    }
    case PolicyNode::Role: {
      auto wanted = substitute(n.value, target);
      if (!wanted) return false;
      auto* roles = find(creds, "roles");
      if (!roles || !roles->is_array()) return false;
      auto w = lower(*wanted);
      for (auto& r : roles->as_array())
        if (r.is_string() && lower(std::string(r.as_string())) == w) return true;
      return false;
    }
    case PolicyNode::Generic: {
      // "key:value": value is a literal or %(target)s; the key names a credential.
      std::optional<std::string> match;
      if (n.value.rfind("%(", 0) == 0) {
        match = substitute(n.value, target);
        if (!match) return false;
      } else {
        match = n.value;
      }
      auto* cred = credential(creds, n.key);
      if (!cred) {
        // A literal on the left ("'public':%(visibility)s", "True:%(enabled)s") compares with the
        // target value, as oslo.policy's literal_eval does.
        const auto& k = n.key;
        if (k.size() >= 2 && (k.front() == '\'' || k.front() == '"') && k.back() == k.front())
          return k.substr(1, k.size() - 2) == *match;
        if (k == "True" || k == "False") return lower(k) == lower(*match);
        if (!k.empty() && k.find_first_not_of("0123456789") == std::string::npos) return k == *match;
        return false;
      }
      if (cred->is_array()) {
        for (auto& v : cred->as_array())
          if (scalar_string(v) == *match) return true;
        return false;
      }
      auto have = scalar_string(*cred);
      if (cred->is_bool()) return lower(have) == lower(*match);
      return have == *match;
    }
  }
  return false;
}

}  // namespace

Policy::Policy(std::map<std::string, std::string> defaults) {
  for (auto& [k, v] : defaults) set_rule(k, v);
}
Policy::~Policy() = default;
Policy::Policy(Policy&&) noexcept = default;

void Policy::set_rule(const std::string& name, const std::string& text) {
  try {
    rules_[name] = parse_rule(text);
  } catch (const std::exception& e) {
    throw std::runtime_error("policy rule '" + name + "': " + e.what());
  }
}

bool Policy::has_rule(const std::string& name) const { return rules_.find(name) != rules_.end(); }

std::shared_ptr<Policy> Policy::with_overrides(std::map<std::string, std::string> defaults, const std::string& path) {
  auto policy = std::make_shared<Policy>(std::move(defaults));
  if (!path.empty() && std::filesystem::exists(path)) policy->load_overrides(path);
  return policy;
}

void Policy::load_overrides(const std::string& path) {
  YAML::Node doc = YAML::LoadFile(path);
  if (!doc.IsMap()) {
    if (doc.IsNull()) return;
    throw std::runtime_error("policy file " + path + " is not a mapping");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) set_rule(it->first.as<std::string>(), it->second.as<std::string>());
}

bool Policy::enforce(std::string_view rule, const json::object& credentials,
                     const std::map<std::string, std::string>& target) const {
  auto it = rules_.find(rule);
  if (it == rules_.end()) {
    // Unknown rules fall back to "default", as oslo.policy does; no default means deny.
    it = rules_.find("default");
    if (it == rules_.end()) return false;
  }
  return evaluate(*it->second, &rules_, credentials, target, 0);
}

bool Policy::check_expression(std::string_view expression, const json::object& credentials,
                              const std::map<std::string, std::string>& target) {
  auto n = parse_rule(expression);
  return evaluate(*n, nullptr, credentials, target, 0);
}

}  // namespace nubo
