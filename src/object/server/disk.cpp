#include "object/server/disk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/digest.hpp"
#include "common/ids.hpp"

namespace nubo::object::disk {

namespace {

constexpr char kMagic[8] = {'N', 'U', 'B', 'O', 'O', 'B', 'J', '1'};

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string Location::partition_dir() const {
  return root + "/" + device + "/objects/" + std::to_string(partition);
}

std::string Location::dir() const {
  return partition_dir() + "/" + hash.substr(hash.size() - 3) + "/" + hash;
}

std::optional<File> parse_file_name(const std::string& dir, std::string_view name) {
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  auto ext = name.substr(dot + 1);
  if (ext != "data" && ext != "ts" && ext != "meta") return std::nullopt;
  auto t = Timestamp::parse(name.substr(0, dot));
  // Only the canonical spelling: a peer's "1.5.data" must not become a second name for 1.50000.
  if (!t || t->internal() != name.substr(0, dot)) return std::nullopt;
  return File{*t, std::string(ext), dir + "/" + std::string(name)};
}

std::vector<File> files_of(const std::string& dir) {
  std::vector<File> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d))
    if (auto f = parse_file_name(dir, e->d_name)) out.push_back(std::move(*f));
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return a.timestamp != b.timestamp ? a.timestamp > b.timestamp : a.extension < b.extension;
  });
  return out;
}

std::optional<std::pair<json::object, std::uint64_t>> read_metadata(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<std::pair<json::object, std::uint64_t>> out;
  if (::fstat(fd, &st) == 0 && st.st_size >= 16) {
    char footer[16];
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (::pread(fd, footer, 16, static_cast<off_t>(size - 16)) == 16 &&
        std::memcmp(footer + 8, kMagic, 8) == 0) {
      std::uint64_t length = 0;
      std::memcpy(&length, footer, 8);
      if (length <= size - 16) {
        std::string text(length, '\0');
        if (::pread(fd, text.data(), length, static_cast<off_t>(size - 16 - length)) ==
            static_cast<ssize_t>(length)) {
          boost::system::error_code ec;
          auto v = json::parse(text, ec);
          if (!ec && v.is_object()) out.emplace(std::move(v.as_object()), size - 16 - length);
        }
      }
    }
  }
  ::close(fd);
  return out;
}

namespace {

// Swift's rules: the newest tombstone hides everything at or before it; the newest data file
// wins over older data; a .meta counts only when newer than the data.
struct Resolved {
  const File* data = nullptr;
  const File* tombstone = nullptr;
  const File* meta = nullptr;
};

Resolved resolve(const std::vector<File>& files) {
  Resolved r;
  for (auto& f : files) {  // newest first
    if (f.extension == "meta") {
      if (!r.meta && !r.data && !r.tombstone) r.meta = &f;
      continue;
    }
    if (f.extension == "ts") {
      if (!r.data && !r.tombstone) r.tombstone = &f;
    } else if (!r.data && !r.tombstone) {
      r.data = &f;
    }
  }
  if (!r.data) r.meta = nullptr;
  return r;
}

}  // namespace

Current open(const Location& at) {
  Current c;
  auto files = files_of(at.dir());
  auto r = resolve(files);
  if (r.tombstone) {
    c.kind = Current::tombstone;
    c.timestamp = c.data_timestamp = r.tombstone->timestamp;
    return c;
  }
  if (!r.data) return c;
  auto data = read_metadata(r.data->path);
  if (!data) return c;  // malformed: as missing (the auditor quarantines it)
  c.kind = Current::data;
  c.data_path = r.data->path;
  c.body_length = data->second;
  c.metadata = std::move(data->first);
  c.timestamp = c.data_timestamp = r.data->timestamp;
  if (r.meta) {
    if (auto meta = read_metadata(r.meta->path)) {
      // A POST replaces the user metadata and the headers it may set; size and etag stay.
      for (auto it = c.metadata.begin(); it != c.metadata.end();) {
        std::string key(it->key());
        bool replaced = key.starts_with("X-Object-Meta-") || key == "Content-Disposition" ||
                        key == "Content-Encoding" || key == "X-Delete-At" ||
                        key == "X-Object-Manifest" || key == "Cache-Control" ||
                        key == "Content-Language" || key == "Expires" || key == "X-Robots-Tag";
        it = replaced ? c.metadata.erase(it) : std::next(it);
      }
      for (auto& kv : meta->first)
        if (kv.key() != "name" && kv.key() != "X-Timestamp") c.metadata[kv.key()] = kv.value();
      c.timestamp = r.meta->timestamp;
    }
  }
  c.metadata["X-Timestamp"] = c.timestamp.normal();
  return c;
}

std::vector<File> current_files(const std::vector<File>& files) {
  auto r = resolve(files);
  std::vector<File> out;
  for (auto& f : files)
    if (&f == r.data || &f == r.tombstone || &f == r.meta) out.push_back(f);
  return out;
}

Check check_file(const File& file) {
  int fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Check::missing : Check::corrupt;
  ::close(fd);
  auto meta = read_metadata(file.path);
  if (!meta) return ::access(file.path.c_str(), F_OK) == 0 ? Check::corrupt : Check::missing;
  if (file.extension != "data") return Check::ok;
  auto& [metadata, length] = *meta;
  auto* etag = metadata.if_contains("ETag");
  auto* size = metadata.if_contains("Content-Length");
  if (!etag || !etag->is_string() || !size || !size->is_string() ||
      size->as_string() != std::to_string(length))
    return Check::corrupt;
  fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Check::missing;
  Md5 md5;
  std::string buffer(1 << 16, '\0');
  std::uint64_t done = 0;
  bool short_read = false;
  while (done < length) {
    auto want = std::min<std::uint64_t>(buffer.size(), length - done);
    auto n = ::pread(fd, buffer.data(), want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      short_read = true;
      break;
    }
    md5.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    done += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  if (short_read || md5.hex() != etag->as_string()) return Check::corrupt;
  return Check::ok;
}

void cleanup(const std::string& dir) {
  auto files = files_of(dir);
  auto r = resolve(files);
  for (auto& f : files)
    if (&f != r.data && &f != r.tombstone && &f != r.meta) ::unlink(f.path.c_str());
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("open", dir);
  ::fsync(fd);
  ::close(fd);
}

bool write_file_durably(const std::string& path, std::string_view text) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fdatasync(fd) == 0;
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) {
    fsync_dir(path.substr(0, path.rfind('/')));
    return true;
  }
  ::unlink(tmp.c_str());
  return false;
}

namespace {
// Creates dir and its missing parents; adds each directory that gained an entry to `grown`.
void make_dirs(const std::string& dir, std::vector<std::string>& grown) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return;
  auto slash = dir.rfind('/');
  if (slash == std::string::npos || slash == 0) fail("mkdir", dir);
  auto parent = dir.substr(0, slash);
  make_dirs(parent, grown);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) fail("mkdir", dir);
  grown.push_back(parent);
}
}  // namespace

void make_dirs_durable(const std::string& dir) {
  std::vector<std::string> grown;
  make_dirs(dir, grown);
  for (auto& d : grown) fsync_dir(d);
}

Writer::Writer(const std::string& root, const std::string& device) {
  auto tmp = root + "/" + device + "/tmp";
  tmp_path_ = tmp + "/" + uuid4_hex();
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd_ < 0 && errno == ENOENT) {
    make_dirs_durable(tmp);
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  }
  if (fd_ < 0) fail("create", tmp_path_);
}

Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
  std::free(stage_);
}

void Writer::skip_md5() { md5_.reset(); }

namespace {
constexpr std::uint64_t kDirectFrom = 8u << 20;  // a multiple of kAlign
constexpr size_t kStage = 4u << 20, kAlign = 4096;
}  // namespace

void Writer::write(std::string_view bytes) {
  if (md5_) md5_->update(bytes);
  put(bytes);
}

void Writer::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", tmp_path_);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void Writer::put(std::string_view bytes) {
  auto before = size_;
  size_ += bytes.size();
  if (!direct_) {
    if (buffered_only_ || size_ <= kDirectFrom) return write_all(bytes);
    auto head = before < kDirectFrom ? static_cast<size_t>(kDirectFrom - before) : 0;
    write_all(bytes.substr(0, head));
    bytes.remove_prefix(head);
    // Filesystems without O_DIRECT (tmpfs) refuse it: those stay buffered.
    int flags = ::fcntl(fd_, F_GETFL);
    void* stage = nullptr;
    if (flags < 0 || ::posix_memalign(&stage, kAlign, kStage) != 0) {
      buffered_only_ = true;
      return write_all(bytes);
    }
    stage_ = static_cast<char*>(stage);
    if (::fcntl(fd_, F_SETFL, flags | O_DIRECT) != 0) {
      buffered_only_ = true;
      return write_all(bytes);
    }
    direct_ = true;
  }
  while (!bytes.empty()) {
    auto n = std::min(kStage - staged_, bytes.size());
    std::memcpy(stage_ + staged_, bytes.data(), n);
    staged_ += n;
    bytes.remove_prefix(n);
    if (staged_ == kStage) {
      write_all(std::string_view(stage_, kStage));
      staged_ = 0;
    }
  }
}

void Writer::end_direct() {
  if (!direct_) return;
  auto aligned = staged_ & ~(kAlign - 1);
  write_all(std::string_view(stage_, aligned));
  int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) fail("fcntl", tmp_path_);
  direct_ = false;
  buffered_only_ = true;
  write_all(std::string_view(stage_ + aligned, staged_ - aligned));
  staged_ = 0;
}

std::string Writer::etag() {
  if (md5_) return md5_->hex();
  if (sender_md5_.empty())
    throw std::logic_error("the md5 of " + tmp_path_ + " was to come from its sender and did not");
  return sender_md5_;
}

void Writer::commit(const Location& at, const Timestamp& t, std::string_view extension,
                    const json::object& metadata) {
  auto text = json::serialize(metadata);
  std::uint64_t length = text.size();
  char footer[16];
  std::memcpy(footer, &length, 8);
  std::memcpy(footer + 8, kMagic, 8);
  text.append(footer, 16);
  end_direct();
  write_all(text);
  auto dir = at.dir();
  auto final_path = dir + "/" + t.internal() + "." + std::string(extension);
  // The file is renamed into place before it is synced, then synced, then its directories: the
  // same syncs as the other order, all done before the write is acknowledged, but a journaling
  // filesystem (ext4, XFS) commits the data, the new directories and the rename in the first
  // one and finds the rest already on disk (one journal commit per replica instead of three).
  // A crash before the sync may leave the name pointing at a file without its footer, which
  // reads as missing (and the auditor quarantines); the write was not acknowledged.
  std::vector<std::string> grown;
  // The replicator removes empty directories: one may vanish between mkdir and rename.
  for (int attempt = 0;; ++attempt) {
    make_dirs(dir, grown);
    if (::rename(tmp_path_.c_str(), final_path.c_str()) == 0) break;
    if (errno != ENOENT || attempt == 3) fail("rename", final_path);
  }
  if (::fdatasync(fd_) != 0) {
    int err = errno;
    ::unlink(final_path.c_str());
    errno = err;
    fail("fdatasync", final_path);
  }
  ::close(fd_);
  fd_ = -1;
  committed_ = true;
  fsync_dir(dir);
  for (auto& d : grown) fsync_dir(d);
  cleanup(dir);
}

bool Writer::commit_file(const std::string& dir, const std::string& name) {
  end_direct();
  if (::fdatasync(fd_) != 0) fail("fdatasync", tmp_path_);
  ::close(fd_);
  fd_ = -1;
  // link() refuses an existing name atomically, where rename() would replace it.
  auto final_path = dir + "/" + name;
  for (int attempt = 0;; ++attempt) {
    make_dirs_durable(dir);
    if (::link(tmp_path_.c_str(), final_path.c_str()) == 0) break;
    if (errno == EEXIST) return false;
    if (errno != ENOENT || attempt == 3) fail("link", final_path);
  }
  fsync_dir(dir);
  ::unlink(tmp_path_.c_str());
  committed_ = true;
  cleanup(dir);
  return true;
}

void write_tombstone(const Location& at, const Timestamp& t, const std::string& name) {
  Writer w(at.root, at.device);
  w.commit(at, t, "ts", json::object{{"name", name}, {"X-Timestamp", t.internal()}});
}

}  // namespace nubo::object::disk
