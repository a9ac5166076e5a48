// Files: reading a whole file (never blocking on a FIFO), and atomic writes (format.hpp).
#include "io/checkpoint/format.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <random>

namespace rnnbptt::checkpoint_format {

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) throw CheckpointError(valid_utf8(detail::concat("no such file: ", name)));
    fail(name, "cannot open the file (", system_error_text(error), ")");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) fail(name, "cannot read the file (fstat: ", system_error_text(errno), ")");
  if (S_ISDIR(info.st_mode)) fail_is(name, "is a directory, not a checkpoint file");
  if (!S_ISREG(info.st_mode)) fail_is(name, "is not a regular file");
  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(info.st_size));
  } catch (const std::bad_alloc&) {
    fail(name, "cannot allocate ", info.st_size, " bytes to read the file");
  } catch (const std::length_error&) {
    fail(name, "cannot allocate ", info.st_size, " bytes to read the file");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(name, "cannot read the file (", system_error_text(errno), ")");
    if (got == 0) fail(name, "truncated: the file shrank to ", done, " bytes while being read");
    done += static_cast<std::size_t>(got);
  }
  return bytes;
}

namespace {

// The permissions open(path, "w") would leave: the existing file's, else 0666 minus the umask
// (read from /proc when possible: setting the umask to read it is not thread-safe).
mode_t creation_mode(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return info.st_mode & 07777;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) {
      try {
        const unsigned long umask_value = std::stoul(line.substr(6), nullptr, 8);
        return static_cast<mode_t>(0666 & ~umask_value);
      } catch (const std::exception&) {
        break;
      }
    }
  }
  const mode_t mask = ::umask(022);
  ::umask(mask);
  return 0666 & ~mask;
}

std::uint64_t random_bits() {
  try {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  } catch (const std::exception&) {
    static std::uint64_t counter = 0;
    const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return (now * 0x9E3779B97F4A7C15ULL) ^ (static_cast<std::uint64_t>(::getpid()) << 32) ^ ++counter;
  }
}

bool is_temp_of(const std::string& entry, const std::string& target) {
  // .<target>.<16 lower-case hex digits>.tmp
  const std::string head = "." + target + ".";
  if (entry.size() != head.size() + 16 + 4 || entry.compare(0, head.size(), head) != 0 ||
      entry.compare(entry.size() - 4, 4, ".tmp") != 0)
    return false;
  for (std::size_t i = head.size(); i < head.size() + 16; ++i)
    if (!((entry[i] >= '0' && entry[i] <= '9') || (entry[i] >= 'a' && entry[i] <= 'f'))) return false;
  return true;
}

void remove_stale_temps(const std::filesystem::path& folder, const std::string& target) {
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir))
    if (is_temp_of(entry->d_name, target)) stale.emplace_back(entry->d_name);
  ::closedir(dir);
  for (const std::string& entry : stale) ::unlink((folder / entry).c_str());
}

void sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_atomically(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  const std::string name = path.string();
  const std::string target = path.filename().string();
  if (target.empty() || target == "." || target == "..") fail(name, "cannot save: expected a file name, got a folder");
  std::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) fail(name, "cannot save: cannot create the folder ", folder.string(), " (", ec.message(), ")");
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) fail(name, "cannot save: the path is a directory");
  const mode_t mode = creation_mode(path);

  std::filesystem::path temp;
  int fd = -1;
  for (;;) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random_bits()));
    temp = folder / ("." + target + "." + hex + ".tmp");
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) break;
    if (errno == EEXIST || errno == EINTR) continue;
    fail(name, "cannot save: cannot create the temporary file ", temp.string(), " (", system_error_text(errno), ")");
  }
  const auto abandon = [&](const char* what, int error) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    fail(name, "cannot save: ", what, " failed on the temporary file ", temp.string(), " (", system_error_text(error),
         ")");
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) abandon("write", errno);
    if (wrote == 0) abandon("write", EIO);
    done += static_cast<std::size_t>(wrote);
  }
  if (::fchmod(fd, mode) != 0) abandon("fchmod", errno);
  if (::fsync(fd) != 0) abandon("fsync", errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) abandon("close", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) abandon("rename to the target", errno);
  sync_folder(folder);
  remove_stale_temps(folder, target);
}

}  // namespace rnnbptt::checkpoint_format

namespace rnnbptt {

using namespace checkpoint_format;

template <class Scalar>
void save_checkpoint(const std::filesystem::path& path, const Checkpoint<Scalar>& checkpoint) {
  const std::string name = path.string();
  guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = serialize(checkpoint, name);
    write_atomically(path, bytes);
  });
}

template <class Scalar>
Checkpoint<Scalar> load_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  return guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return to_checkpoint<Scalar>(
        validate(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())), name), name);
  });
}

AnyCheckpoint load_any_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  return guarded(name, [&]() -> AnyCheckpoint {
    const std::vector<std::uint8_t> bytes = read_file(path);
    Validated v = validate(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())), name);
    if (v.dtype == ScalarType::float32) return to_checkpoint<float>(std::move(v), name);
    return to_checkpoint<double>(std::move(v), name);
  });
}

ScalarType checkpoint_dtype(const std::filesystem::path& path) {
  const std::string name = path.string();
  return guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return validate(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())), name).dtype;
  });
}

template RNNBPTT_EXPORT void save_checkpoint<float>(const std::filesystem::path&, const Checkpoint<float>&);
template RNNBPTT_EXPORT void save_checkpoint<double>(const std::filesystem::path&, const Checkpoint<double>&);
template RNNBPTT_EXPORT Checkpoint<float> load_checkpoint<float>(const std::filesystem::path&);
template RNNBPTT_EXPORT Checkpoint<double> load_checkpoint<double>(const std::filesystem::path&);

}  // namespace rnnbptt
