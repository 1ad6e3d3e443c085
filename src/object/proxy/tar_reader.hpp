// A streaming reader of tar archives (ustar, GNU long names, pax headers), plain, gzip or bzip2,
// for bulk extraction: Debian's libarchive has no development package installed here, and the
// few formats Swift's extract-archive accepts need only zlib and libbz2.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nubo::object::proxy {

// Malformed input, worded as Python's tarfile words it ("bad checksum", "not a gzip file").
struct TarError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TarEntry {
  std::string name;
  std::uint64_t size = 0;
  bool regular = false;                    // a file (other kinds are skipped)
  std::map<std::string, std::string> pax;  // the entry's pax records
};

class TarReader {
 public:
  struct Handler {
    std::function<void(const TarEntry&)> begin;  // an entry's header
    std::function<void(std::string_view)> data;  // its bytes, in order
    std::function<void()> end;                   // after its last byte
  };
  // compression: "" (plain), "gz" or "bz2".
  TarReader(std::string compression, Handler handler);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;
  void write(std::string_view bytes);
  // After the last bytes; raises on a truncated archive.
  void finish();
  bool done() const { return done_; }
  struct Decompressor;  // gzip or bzip2

 private:
  void decompressed(std::string_view bytes);
  void header(std::string_view block);
  std::unique_ptr<Decompressor> decompressor_;
  Handler handler_;
  std::string pending_;  // bytes of the current block not yet complete
  std::uint64_t offset_ = 0;
  std::uint64_t remaining_ = 0, padding_ = 0;
  enum class Stage { header, data, long_name, pax, ignored } stage_ = Stage::header;
  std::string special_;  // a GNU long name's or a pax header's data
  std::string long_name_;
  std::map<std::string, std::string> pax_;
  TarEntry entry_;
  bool done_ = false;
};

}  // namespace nubo::object::proxy
