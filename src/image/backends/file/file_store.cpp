#include "image/backends/file/file_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace nubo::image {

namespace {

constexpr const char* kScheme = "file://";

[[noreturn]] void throw_io_error(const std::string& what, const std::string& path, int err) {
  if (err == ENOSPC || err == EDQUOT)
    throw StorageFull("image store is full: " + what + " " + path);
  throw std::runtime_error(what + " " + path + ": " + std::strerror(err));
}

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Image ids name files: only UUID characters, so that no id can leave the directory.
bool safe_name(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  return true;
}

// Writes image data with O_DIRECT where the filesystem allows it: the data goes from an aligned
// buffer to the disk without the page-cache copy and writeback, which cost a CPU-bound upload
// (two hashes on two cores) about a fifth of its CPU. Elsewhere (tmpfs, some network
// filesystems) it writes through the page cache and starts writeback as it goes.
class FileWriter : public ImageWriter {
 public:
  FileWriter(std::string part, std::string final_path, std::string directory)
      : part_(std::move(part)), final_(std::move(final_path)), directory_(std::move(directory)) {
    constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    fd_ = ::open(part_.c_str(), kFlags | O_DIRECT, 0640);
    if (fd_ < 0 && errno == EINVAL) {
      fd_ = ::open(part_.c_str(), kFlags, 0640);
      direct_ = false;
    } else if (fd_ >= 0) {
      void* mem = nullptr;
      if (::posix_memalign(&mem, kAlign, kBuffer) == 0) buffer_.reset(static_cast<char*>(mem));
      else clear_direct();
    }
    if (fd_ < 0) throw_io_error("cannot create", part_, errno);
  }
  ~FileWriter() override {
    if (!done_) abort();
  }
  void write(std::string_view chunk) override {
    if (fd_ < 0) throw std::runtime_error("write after the image data was closed");
    if (!buffer_) {
      write_all(chunk.data(), chunk.size());
      start_writeback();
      return;
    }
    while (!chunk.empty()) {
      size_t n = std::min(chunk.size(), kBuffer - filled_);
      std::memcpy(buffer_.get() + filled_, chunk.data(), n);
      filled_ += n;
      chunk.remove_prefix(n);
      if (filled_ == kBuffer) flush_buffer(kBuffer);
    }
  }
  std::string commit() override {
    if (fd_ < 0) throw std::runtime_error("commit after the image data was closed");
    if (buffer_ && filled_ > 0) {
      // Whole blocks go direct; the unaligned tail through the page cache.
      size_t whole = filled_ & ~(kAlign - 1);
      if (whole > 0) flush_buffer(whole);
      if (filled_ > 0) {
        clear_direct();
        write_all(buffer_.get(), filled_);
        filled_ = 0;
      }
    }
    if (::fsync(fd_) != 0) {
      int err = errno;
      abort();
      throw_io_error("cannot fsync", part_, err);
    }
    ::close(fd_);
    fd_ = -1;
    if (::rename(part_.c_str(), final_.c_str()) != 0) {
      int err = errno;
      abort();
      throw_io_error("cannot rename", part_, err);
    }
    fsync_directory(directory_);
    done_ = true;
    return kScheme + final_;
  }
  void abort() noexcept override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!done_) ::unlink(part_.c_str());
    done_ = true;
  }

 private:
  static constexpr size_t kAlign = 4096;
  static constexpr size_t kBuffer = 4u << 20;
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };

  void write_all(const char* p, size_t left) {
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL && direct_) {  // the filesystem refused O_DIRECT after all
          clear_direct();
          continue;
        }
        int err = errno;
        abort();
        throw_io_error("cannot write", part_, err);
      }
      p += n;
      left -= static_cast<size_t>(n);
      written_ += static_cast<std::uint64_t>(n);
    }
  }

  // Writes the buffer's first `n` bytes (a multiple of the alignment) and keeps the rest.
  void flush_buffer(size_t n) {
    write_all(buffer_.get(), n);
    std::memmove(buffer_.get(), buffer_.get() + n, filled_ - n);
    filled_ -= n;
  }

  void clear_direct() noexcept {
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
    direct_ = false;
  }

  // Without O_DIRECT: starts writing each completed window to disk as soon as it is full, and
  // waits for the one before it, so the disk works while the data still arrives (instead of all
  // of it at the final fsync) and dirty pages stay bounded at two windows per upload.
  void start_writeback() {
    constexpr std::uint64_t kWindow = 16ull << 20;
    while (written_ - flushed_ >= kWindow) {
      ::sync_file_range(fd_, static_cast<off_t>(flushed_), kWindow, SYNC_FILE_RANGE_WRITE);
      if (flushed_ >= kWindow)
        ::sync_file_range(fd_, static_cast<off_t>(flushed_ - kWindow), kWindow,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER);
      flushed_ += kWindow;
    }
  }

  std::string part_, final_, directory_;
  int fd_ = -1;
  bool done_ = false;
  bool direct_ = true;
  std::unique_ptr<char, Free> buffer_;
  size_t filled_ = 0;
  std::uint64_t written_ = 0, flushed_ = 0;
};

class FileReader : public ImageReader {
 public:
  FileReader(const std::string& path, std::uint64_t offset) : offset_(offset) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw std::runtime_error("cannot open image data " + path + ": " + std::strerror(errno));
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~FileReader() override {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string read(size_t max_bytes) override {
    std::string buf(max_bytes, '\0');
    for (;;) {
      ssize_t n = ::pread(fd_, buf.data(), max_bytes, static_cast<off_t>(offset_));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("cannot read image data: ") + std::strerror(errno));
      }
      buf.resize(static_cast<size_t>(n));
      offset_ += static_cast<std::uint64_t>(n);
      return buf;
    }
  }

  std::optional<FilePosition> file_position() const override { return FilePosition{fd_, offset_}; }

 private:
  int fd_ = -1;
  std::uint64_t offset_;
};

}  // namespace

FileStore::FileStore(std::string id, std::string directory) : id_(std::move(id)) {
  fs::create_directories(directory);
  directory_ = fs::canonical(directory).string();
}

std::string FileStore::path_of(const std::string& location) const {
  if (location.rfind(kScheme, 0) != 0)
    throw std::invalid_argument("not a file location: " + location);
  fs::path p(location.substr(std::string(kScheme).size()));
  if (p.parent_path().string() != directory_ || !safe_name(p.filename().string()))
    throw std::invalid_argument("location outside the " + id_ + " store: " + location);
  return p.string();
}

std::unique_ptr<ImageWriter> FileStore::open_writer(const std::string& image_id) {
  if (!safe_name(image_id)) throw std::invalid_argument("bad image id for the file store");
  auto final_path = directory_ + "/" + image_id;
  return std::make_unique<FileWriter>(final_path + ".part", final_path, directory_);
}

std::unique_ptr<ImageReader> FileStore::open_reader(const std::string& location,
                                                    std::uint64_t offset) {
  return std::make_unique<FileReader>(path_of(location), offset);
}

std::int64_t FileStore::size(const std::string& location) {
  struct stat st {};
  if (::stat(path_of(location).c_str(), &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_size);
}

void FileStore::remove(const std::string& location) {
  auto path = path_of(location);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error("cannot remove " + path + ": " + std::strerror(errno));
}

void FileStore::recover(const std::function<bool(const std::string& location)>& keep) {
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(directory_, ec)) {
    auto name = entry.path().filename().string();
    if (!entry.is_regular_file()) continue;
    if (name.size() > 5 && name.ends_with(".part")) {
      fs::remove(entry.path(), ec);
      continue;
    }
    if (!safe_name(name)) continue;
    if (!keep(kScheme + entry.path().string())) fs::remove(entry.path(), ec);
  }
}

}  // namespace nubo::image
