// Objects on a storage device, laid out as Swift lays them out:
// <root>/<device>/objects/<partition>/<suffix>/<hash>/<timestamp>.data|.ts|.meta, where the newest
// file decides (a newer tombstone hides older data; a .meta newer than the data replaces its user
// metadata). Each file is the body, then its metadata as JSON, then a 16-byte footer (metadata
// length, magic): one file, one fsync, no dependence on the filesystem's extended attributes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.hpp"
#include "common/json.hpp"
#include "object/timestamp.hpp"

namespace nubo::object::disk {

struct Location {
  std::string root;    // the devices directory
  std::string device;  // d1
  std::uint32_t partition = 0;
  std::string hash;  // hash_path() of /a/c/o
  std::string dir() const;
  std::string partition_dir() const;
};

struct File {
  Timestamp timestamp;
  std::string extension;  // data, ts, meta
  std::string path;
};

// What a hash directory holds once its files are resolved.
struct Current {
  enum Kind { none, data, tombstone } kind = none;
  Timestamp timestamp;       // X-Timestamp: the newest of data and meta (or the tombstone's)
  Timestamp data_timestamp;  // the data file's
  std::string data_path;
  std::uint64_t body_length = 0;
  json::object metadata;  // the data's, with a newer .meta's user metadata in place of its own
};

// The files of a hash directory, newest first (none when it does not exist).
std::vector<File> files_of(const std::string& dir);
Current open(const Location& at);
// Reads one file's metadata and body length; nullopt when the file is malformed.
std::optional<std::pair<json::object, std::uint64_t>> read_metadata(const std::string& path);
// Deletes the files the current state made obsolete (older data, tombstones and metadata).
void cleanup(const std::string& dir);

// "<timestamp>.data|.ts|.meta" in dir; nullopt for any other name.
std::optional<File> parse_file_name(const std::string& dir, std::string_view name);
// Of a hash directory's files (newest first), those its current state is made of: what cleanup()
// keeps. Replication pushes only these, so a peer never receives a file it would delete at once.
std::vector<File> current_files(const std::vector<File>& files);

// A file's integrity: its metadata footer parses, and for data its body has the stored length
// and md5 (ETag). missing: the file went away meanwhile (a newer write cleaned it up).
enum class Check { ok, corrupt, missing };
Check check_file(const File& file);

// A new file written to <device>/tmp and moved into place by commit(), durable before it
// returns (file fdatasync, rename, directory fsync); abandoned files are removed.
class Writer {
 public:
  Writer(const std::string& root, const std::string& device);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void write(std::string_view bytes);
  std::uint64_t size() const { return size_; }
  std::string etag();  // md5 hex of the bytes written so far (or the sender's)
  // From now on (before any write) the bytes are not hashed here: their sender hashes them and
  // gives the md5 with sender_md5() before etag() is asked.
  void skip_md5();
  void sender_md5(std::string hex) { sender_md5_ = std::move(hex); }
  const std::string& temp_path() const { return tmp_path_; }
  void commit(const Location& at, const Timestamp& t, std::string_view extension,
              const json::object& metadata);
  // The bytes written are a whole object file (body, metadata, footer) copied from a replica:
  // moved into dir as `name` unless a file of that name is there (false then; names are
  // timestamps, so the same name is the same content).
  bool commit_file(const std::string& dir, const std::string& name);

 private:
  // Past kDirectFrom bytes the body goes to the disk with O_DIRECT, in aligned blocks gathered in
  // `stage_`: copying a large body into the page cache (three replicas of it on one host) cost
  // more CPU than anything else in a large PUT, and the copies are never read back soon.
  void put(std::string_view bytes);
  void end_direct();  // the staged rest written, O_DIRECT off (before the footer)
  void write_all(std::string_view bytes);
  std::string tmp_path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::optional<Md5> md5_{std::in_place};
  std::string sender_md5_;
  bool committed_ = false;
  char* stage_ = nullptr;
  size_t staged_ = 0;
  bool direct_ = false, buffered_only_ = false;
};

// A tombstone for the object `name` (/a/c/o) at t, committed durably in its hash directory.
void write_tombstone(const Location& at, const Timestamp& t, const std::string& name);

// A small file written whole and durably: a temporary beside it, fdatasync, rename, directory
// fsync; false (nothing left behind) when it could not be.
bool write_file_durably(const std::string& path, std::string_view text);
// Creates dir and its missing parents, fsyncing each parent that gained an entry.
void make_dirs_durable(const std::string& dir);
void fsync_dir(const std::string& dir);

}  // namespace nubo::object::disk
