#include "image/backends/file/file_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

class FileWriter : public ImageWriter {
 public:
  FileWriter(std::string part, std::string final_path, std::string directory)
      : part_(std::move(part)), final_(std::move(final_path)), directory_(std::move(directory)) {
    fd_ = ::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd_ < 0) throw_io_error("cannot create", part_, errno);
  }
  ~FileWriter() override {
    if (!done_) abort();
  }
  void write(std::string_view chunk) override {
    if (fd_ < 0) throw std::runtime_error("write after the image data was closed");
    const char* p = chunk.data();
    size_t left = chunk.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        abort();
        throw_io_error("cannot write", part_, err);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  std::string commit() override {
    if (fd_ < 0) throw std::runtime_error("commit after the image data was closed");
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
  std::string part_, final_, directory_;
  int fd_ = -1;
  bool done_ = false;
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
