// Streaming tar reading with zlib and libbz2 for the compressed forms.
#include "object/proxy/tar_reader.hpp"

#include <bzlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace nubo::object::proxy {

namespace {
constexpr size_t kBlock = 512;

// An octal field (NUL or space terminated) or GNU's base-256 form.
std::uint64_t number_field(std::string_view f) {
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80)) {
    std::uint64_t n = static_cast<unsigned char>(f[0]) & 0x7f;
    for (size_t i = 1; i < f.size(); ++i) n = (n << 8) | static_cast<unsigned char>(f[i]);
    return n;
  }
  std::uint64_t n = 0;
  size_t i = 0;
  while (i < f.size() && (f[i] == ' ' || f[i] == '\0')) ++i;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i)
    n = n * 8 + static_cast<unsigned>(f[i] - '0');
  return n;
}

std::string string_field(std::string_view f) { return std::string(f.substr(0, f.find('\0'))); }
}  // namespace

struct TarReader::Decompressor {
  virtual ~Decompressor() = default;
  virtual void feed(std::string_view in, const std::function<void(std::string_view)>& out) = 0;
  virtual void finish() {}
};

namespace {

struct Gzip : TarReader::Decompressor {
  Gzip() {
    std::memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 16);
  }
  ~Gzip() override { inflateEnd(&z); }
  void feed(std::string_view in, const std::function<void(std::string_view)>& out) override {
    if (ended) return;
    if (!checked) {
      head.append(in.substr(0, std::min(in.size(), 2 - head.size())));
      if (head.size() == 2) {
        if (head != "\x1f\x8b") throw TarError("not a gzip file");
        checked = true;
      }
    }
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    char buf[65536];
    while (z.avail_in > 0) {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw TarError("invalid compressed data");
      out(std::string_view(buf, sizeof buf - z.avail_out));
      if (rc == Z_STREAM_END) {
        ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR) break;
    }
  }
  void finish() override {
    if (!checked) throw TarError(head.empty() ? "empty file" : "not a gzip file");
  }
  z_stream z;
  std::string head;
  bool checked = false, ended = false;
};

struct Bzip2 : TarReader::Decompressor {
  Bzip2() {
    std::memset(&b, 0, sizeof b);
    BZ2_bzDecompressInit(&b, 0, 0);
  }
  ~Bzip2() override { BZ2_bzDecompressEnd(&b); }
  void feed(std::string_view in, const std::function<void(std::string_view)>& out) override {
    if (ended) return;
    b.next_in = const_cast<char*>(in.data());
    b.avail_in = static_cast<unsigned>(in.size());
    char buf[65536];
    while (b.avail_in > 0) {
      b.next_out = buf;
      b.avail_out = sizeof buf;
      int rc = BZ2_bzDecompress(&b);
      if (rc != BZ_OK && rc != BZ_STREAM_END) throw TarError("invalid compressed data");
      out(std::string_view(buf, sizeof buf - b.avail_out));
      if (rc == BZ_STREAM_END) {
        ended = true;
        break;
      }
    }
  }
  bz_stream b;
  bool ended = false;
};

}  // namespace

TarReader::TarReader(std::string compression, Handler handler) : handler_(std::move(handler)) {
  if (compression == "gz") decompressor_ = std::make_unique<Gzip>();
  if (compression == "bz2") decompressor_ = std::make_unique<Bzip2>();
}

TarReader::~TarReader() = default;

void TarReader::write(std::string_view bytes) {
  if (done_) return;
  if (decompressor_)
    decompressor_->feed(bytes, [this](std::string_view d) { decompressed(d); });
  else
    decompressed(bytes);
}

void TarReader::finish() {
  if (decompressor_) decompressor_->finish();
  if (done_) return;
  if (offset_ == 0 && pending_.empty()) throw TarError("empty file");
  if (stage_ == Stage::header && offset_ == 0) throw TarError("truncated header");
  if (stage_ != Stage::header && (remaining_ > 0 || padding_ > 0)) {
    // Python's tarfile reads an entry's data only when asked: a cut archive ends the last file
    // short, which the object PUT notices.
    if (stage_ == Stage::data && handler_.end) handler_.end();
  }
  done_ = true;
}

void TarReader::decompressed(std::string_view bytes) {
  while (!bytes.empty() && !done_) {
    if (stage_ == Stage::header) {
      auto take = std::min(bytes.size(), kBlock - pending_.size());
      pending_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (pending_.size() < kBlock) return;
      std::string block;
      block.swap(pending_);
      header(block);
      continue;
    }
    if (remaining_ > 0) {
      auto take = static_cast<size_t>(std::min<std::uint64_t>(bytes.size(), remaining_));
      auto part = bytes.substr(0, take);
      if (stage_ == Stage::data) {
        if (handler_.data) handler_.data(part);
      } else {
        special_.append(part);
      }
      remaining_ -= take;
      offset_ += take;
      bytes.remove_prefix(take);
      if (remaining_ > 0) return;
    }
    auto skip = static_cast<size_t>(std::min<std::uint64_t>(bytes.size(), padding_));
    padding_ -= skip;
    offset_ += skip;
    bytes.remove_prefix(skip);
    if (padding_ > 0) return;
    auto stage = stage_;
    stage_ = Stage::header;
    if (stage == Stage::data) {
      if (handler_.end) handler_.end();
    } else if (stage == Stage::long_name) {
      long_name_ = special_.substr(0, special_.find('\0'));
    } else if (stage == Stage::pax) {
      // "<length> <key>=<value>\n" records.
      std::string_view records = special_;
      while (!records.empty()) {
        auto space = records.find(' ');
        if (space == std::string_view::npos) break;
        std::uint64_t length = 0;
        for (char c : records.substr(0, space))
          if (c >= '0' && c <= '9') length = length * 10 + static_cast<unsigned>(c - '0');
        if (length <= space || length > records.size()) break;
        auto record = records.substr(space + 1, length - space - 2);
        auto eq = record.find('=');
        if (eq != std::string_view::npos)
          pax_[std::string(record.substr(0, eq))] = std::string(record.substr(eq + 1));
        records.remove_prefix(length);
      }
    }
    special_.clear();
  }
}

void TarReader::header(std::string_view block) {
  bool first = offset_ == 0;
  offset_ += kBlock;
  if (std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; })) {
    if (first) throw TarError("end of file header");
    done_ = true;
    return;
  }
  std::uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i)
    sum += (i >= 148 && i < 156) ? 32 : static_cast<unsigned char>(block[i]);
  if (number_field(block.substr(148, 8)) != sum) {
    if (first) throw TarError("bad checksum");
    done_ = true;  // tarfile stops at a bad header after the first
    return;
  }
  char type = block[156];
  auto size = number_field(block.substr(124, 12));
  remaining_ = size;
  padding_ = (kBlock - size % kBlock) % kBlock;
  if (type == 'L') {
    stage_ = Stage::long_name;
    return;
  }
  if (type == 'x') {
    stage_ = Stage::pax;
    return;
  }
  if (type == 'g' || type == 'K') {
    stage_ = Stage::ignored;  // global headers and long link names: read and dropped
    return;
  }
  TarEntry entry;
  entry.name = string_field(block.substr(0, 100));
  auto magic = block.substr(257, 5);
  auto prefix = string_field(block.substr(345, 155));
  if (magic == "ustar" && !prefix.empty()) entry.name = prefix + "/" + entry.name;
  if (!long_name_.empty()) entry.name = long_name_;
  entry.pax = std::move(pax_);
  pax_.clear();
  long_name_.clear();
  if (auto it = entry.pax.find("path"); it != entry.pax.end()) entry.name = it->second;
  if (auto it = entry.pax.find("size"); it != entry.pax.end()) {
    remaining_ = std::strtoull(it->second.c_str(), nullptr, 10);
    padding_ = (kBlock - remaining_ % kBlock) % kBlock;
  }
  entry.size = remaining_;
  entry.regular =
      (type == '0' || type == '\0' || type == '7') && !(type == '\0' && entry.name.ends_with("/"));
  stage_ = Stage::data;
  if (handler_.begin) handler_.begin(entry);
  if (remaining_ == 0 && padding_ == 0) {
    stage_ = Stage::header;
    if (handler_.end) handler_.end();
  }
}

}  // namespace nubo::object::proxy
