#include "identity/token/msgpack.hpp"

#include <cstring>

namespace nubo::identity::msgpack {

std::optional<std::int64_t> Value::integer() const {
  if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
  return std::nullopt;
}
std::optional<double> Value::number() const {
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}
std::optional<bool> Value::boolean() const {
  if (auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

namespace {

void put_be(std::string& out, std::uint64_t x, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((x >> (8 * i)) & 0xff);
}

void pack_into(std::string& out, const Value& value) {
  struct Visitor {
    std::string& out;
    void operator()(std::monostate) { out += '\xc0'; }
    void operator()(bool b) { out += b ? '\xc3' : '\xc2'; }
    void operator()(std::int64_t i) {
      if (i >= 0 && i < 128) {
        out += static_cast<char>(i);
      } else if (i < 0 && i >= -32) {
        out += static_cast<char>(static_cast<std::int8_t>(i));
      } else if (i >= 0 && i <= 0xff) {
        out += '\xcc';
        put_be(out, static_cast<std::uint64_t>(i), 1);
      } else if (i >= 0 && i <= 0xffff) {
        out += '\xcd';
        put_be(out, static_cast<std::uint64_t>(i), 2);
      } else if (i >= 0 && i <= 0xffffffffLL) {
        out += '\xce';
        put_be(out, static_cast<std::uint64_t>(i), 4);
      } else if (i >= 0) {
        out += '\xcf';
        put_be(out, static_cast<std::uint64_t>(i), 8);
      } else {
        out += '\xd3';
        put_be(out, static_cast<std::uint64_t>(i), 8);
      }
    }
    void operator()(double d) {
      out += '\xcb';
      std::uint64_t bits;
      static_assert(sizeof bits == sizeof d);
      std::memcpy(&bits, &d, sizeof d);
      put_be(out, bits, 8);
    }
    void operator()(const std::string& s) {
      auto n = s.size();
      if (n < 32) {
        out += static_cast<char>(0xa0 | n);
      } else if (n <= 0xff) {
        out += '\xd9';
        put_be(out, n, 1);
      } else if (n <= 0xffff) {
        out += '\xda';
        put_be(out, n, 2);
      } else {
        out += '\xdb';
        put_be(out, n, 4);
      }
      out += s;
    }
    void operator()(const Bin& b) {
      auto n = b.bytes.size();
      if (n <= 0xff) {
        out += '\xc4';
        put_be(out, n, 1);
      } else if (n <= 0xffff) {
        out += '\xc5';
        put_be(out, n, 2);
      } else {
        out += '\xc6';
        put_be(out, n, 4);
      }
      out += b.bytes;
    }
    void operator()(const Array& a) {
      auto n = a.size();
      if (n < 16) {
        out += static_cast<char>(0x90 | n);
      } else if (n <= 0xffff) {
        out += '\xdc';
        put_be(out, n, 2);
      } else {
        out += '\xdd';
        put_be(out, n, 4);
      }
      for (auto& x : a) pack_into(out, x);
    }
  };
  std::visit(Visitor{out}, value.v);
}

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return pos_ == d_.size(); }
  std::optional<Value> read(int depth = 0) {
    if (depth > 16 || pos_ >= d_.size()) return std::nullopt;
    auto b = static_cast<unsigned char>(d_[pos_++]);
    Value v;
    if (b < 0x80) {
      v.v = static_cast<std::int64_t>(b);
    } else if (b >= 0xe0) {
      v.v = static_cast<std::int64_t>(static_cast<std::int8_t>(b));
    } else if ((b & 0xe0) == 0xa0) {
      return str(b & 0x1f);
    } else if ((b & 0xf0) == 0x90) {
      return array(b & 0x0f, depth);
    } else {
      switch (b) {
        case 0xc0: break;
        case 0xc2: v.v = false; break;
        case 0xc3: v.v = true; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf: {
          auto n = uint(1 << (b - 0xcc));
          if (!n) return std::nullopt;
          v.v = static_cast<std::int64_t>(*n);
          break;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
          int bytes = 1 << (b - 0xd0);
          auto n = uint(bytes);
          if (!n) return std::nullopt;
          std::int64_t s = static_cast<std::int64_t>(*n);
          if (bytes < 8 && (*n >> (8 * bytes - 1))) s -= (std::int64_t{1} << (8 * bytes));
          v.v = s;
          break;
        }
        case 0xca: {
          auto n = uint(4);
          if (!n) return std::nullopt;
          auto bits = static_cast<std::uint32_t>(*n);
          float f;
          std::memcpy(&f, &bits, 4);
          v.v = static_cast<double>(f);
          break;
        }
        case 0xcb: {
          auto n = uint(8);
          if (!n) return std::nullopt;
          double d;
          std::memcpy(&d, &*n, 8);
          v.v = d;
          break;
        }
        case 0xd9: case 0xda: case 0xdb: {
          auto n = uint(1 << (b - 0xd9));
          if (!n) return std::nullopt;
          return str(*n);
        }
        case 0xc4: case 0xc5: case 0xc6: {
          auto n = uint(1 << (b - 0xc4));
          if (!n || *n > d_.size() - pos_) return std::nullopt;
          v.v = Bin{std::string(d_.substr(pos_, *n))};
          pos_ += *n;
          break;
        }
        case 0xdc: case 0xdd: {
          auto n = uint(b == 0xdc ? 2 : 4);
          if (!n) return std::nullopt;
          return array(*n, depth);
        }
        default:
          return std::nullopt;  // maps and extensions never appear in token payloads
      }
    }
    return v;
  }

 private:
  std::optional<std::uint64_t> uint(int bytes) {
    if (d_.size() - pos_ < static_cast<size_t>(bytes)) return std::nullopt;
    std::uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) x = (x << 8) | static_cast<unsigned char>(d_[pos_++]);
    return x;
  }
  std::optional<Value> str(std::uint64_t n) {
    if (n > d_.size() - pos_) return std::nullopt;
    Value v;
    v.v = std::string(d_.substr(pos_, n));
    pos_ += n;
    return v;
  }
  std::optional<Value> array(std::uint64_t n, int depth) {
    if (n > d_.size() - pos_) return std::nullopt;
    Array a;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto x = read(depth + 1);
      if (!x) return std::nullopt;
      a.push_back(std::move(*x));
    }
    Value v;
    v.v = std::move(a);
    return v;
  }
  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace

std::string pack(const Value& value) {
  std::string out;
  pack_into(out, value);
  return out;
}

std::optional<Value> unpack(std::string_view data) {
  Reader r(data);
  auto v = r.read();
  if (!v || !r.done()) return std::nullopt;
  return v;
}

}  // namespace nubo::identity::msgpack
