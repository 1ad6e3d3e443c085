#include "compute/metadata/relay.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <istream>
#include <ostream>
#include <sstream>

#include "common/error.hpp"
#include "common/http/client.hpp"
#include "compute/metadata/content.hpp"

namespace nubo::compute::metadata {

namespace {

void answer(std::ostream& out, int status, const std::string& type, const std::string& body) {
  out << "HTTP/1.1 " << status << " " << status_reason(status) << "\r\nContent-Type: " << type
      << "\r\nContent-Length: " << body.size() << "\r\nConnection: close\r\n\r\n"
      << body;
  out.flush();
}

// Answers 400 (with why, when there is more to say) and returns the relay's exit code.
int bad_request(std::ostream& out, const std::string& why = {}) {
  answer(out, 400, "text/plain", "400 Bad Request\n" + (why.empty() ? "" : "\n" + why + "\n"));
  return 1;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  auto start = s.find_first_not_of(" \t");
  return start == std::string::npos ? std::string() : s.substr(start);
}

// One line of at most `max` bytes (a guest may send an endless one); false at its end or limit.
bool read_line(std::istream& in, std::string& line, std::size_t max) {
  line.clear();
  for (int c; (c = in.get()) != std::char_traits<char>::eof();) {
    if (c == '\n') return true;
    if (line.size() >= max) return false;
    line += static_cast<char>(c);
  }
  return !line.empty();
}

}  // namespace

int relay(std::istream& in, std::ostream& out, const RelaySettings& settings) {
  std::string line;
  if (!read_line(in, line, 8192)) return 0;
  std::istringstream request_line(trim(line));
  std::string method, target, version;
  request_line >> method >> target >> version;
  if (method.empty() || target.empty() || target.front() != '/' || version.rfind("HTTP/", 0)) {
    return bad_request(out);
  }
  std::size_t content_length = 0;
  std::size_t header_bytes = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  for (;;) {
    if (!read_line(in, line, 8192)) {
      return bad_request(out);
    }
    line = trim(line);
    if (line.empty()) break;
    header_bytes += line.size();
    if (header_bytes > 16384) {
      return bad_request(out, "Headers too large.");
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-length" &&
        std::from_chars(value.data(), value.data() + value.size(), content_length).ec !=
            std::errc{}) {
      return bad_request(out);
    }
    // Only what the service reads: a guest cannot name another instance or forge a signature.
    if (lower == "content-type" || lower == "accept") headers.emplace_back(name, value);
  }
  if (content_length > kMaxPassword + 1024) {
    return bad_request(out, "Request is too large.");
  }
  std::string body(content_length, '\0');
  if (content_length && !in.read(body.data(), static_cast<std::streamsize>(content_length))) {
    return bad_request(out);
  }
  headers.emplace_back("X-Instance-ID", settings.instance_id);
  headers.emplace_back("X-Tenant-ID", settings.project_id);
  headers.emplace_back("X-Instance-ID-Signature",
                       sign(settings.shared_secret, settings.instance_id));
  try {
    http::Client client(std::chrono::seconds(20));
    auto r = client.request(method, settings.url + target, headers, body);
    answer(out, r.status, r.headers.get_or("Content-Type", "text/plain"), r.body);
  } catch (const std::exception& e) {
    answer(
        out, 502, "text/plain",
        std::string("502 Bad Gateway\n\nThe metadata service does not answer: ") + e.what() + "\n");
    return 1;
  }
  return 0;
}

bool take_relay_slot(const std::filesystem::path& dir, int slots) {
  if (!std::filesystem::is_directory(dir)) return true;
  for (int i = 0; i < slots; ++i) {
    auto lock = dir / ("relay." + std::to_string(i) + ".lock");
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return true;  // nothing to count with: not a reason to fail the guest
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;  // kept open: held until exit
    ::close(fd);
  }
  return false;
}

}  // namespace nubo::compute::metadata
