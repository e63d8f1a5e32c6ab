// SPDX-License-Identifier: MIT
// The Linux port.
#include "port.h"

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

namespace ga::port
{
namespace
{
Level g_max_level = Level::Info;

std::string errno_text(const char* what, const std::string& path)
{
    return std::string(what) + " " + path + ": " + std::strerror(errno);
}

bool write_all(int fd, std::string_view data)
{
    while (!data.empty())
    {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string dir_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash == 0 ? 1 : slash);
}
} // namespace

std::int64_t monotonic_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::int64_t wall_time_s()
{
    return static_cast<std::int64_t>(::time(nullptr));
}

std::int64_t boot_time_s()
{
    struct sysinfo si
    {
    };
    if (sysinfo(&si) != 0)
        return wall_time_s();
    return wall_time_s() - static_cast<std::int64_t>(si.uptime);
}

std::size_t format_iso8601_utc(std::int64_t epoch_s, char* out, std::size_t cap)
{
    const auto t = static_cast<time_t>(epoch_s);
    tm utc{};
    gmtime_r(&t, &utc);
    return std::strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

std::uint64_t random_u64()
{
    std::uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v))
        v = static_cast<std::uint64_t>(monotonic_ms()) * 6364136223846793005ULL +
            1442695040888963407ULL;
    return v;
}

std::string boot_id()
{
    std::string out;
    std::string err;
    if (read_file("/proc/sys/kernel/random/boot_id", out, 64, err) != ReadStatus::Ok)
        return {};
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    return out;
}

ReadStatus
read_file(const std::string& path, std::string& out, std::size_t max_bytes, std::string& err)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
    {
        if (errno == ENOENT)
            return ReadStatus::Missing;
        err = errno_text("cannot open", path);
        return ReadStatus::Error;
    }
    out.clear();
    char buf[4096];
    for (;;)
    {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
        {
            err = errno_text("cannot read", path);
            ::close(fd);
            return ReadStatus::Error;
        }
        if (n == 0)
            break;
        if (out.size() + static_cast<std::size_t>(n) > max_bytes)
        {
            err = path + ": larger than " + std::to_string(max_bytes) + " bytes";
            ::close(fd);
            return ReadStatus::Error;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return ReadStatus::Ok;
}

bool write_file_atomic(const std::string& path, std::string_view data, std::string& err)
{
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
    {
        err = errno_text("cannot create", tmp);
        return false;
    }
    const bool ok = write_all(fd, data) && ::fsync(fd) == 0;
    if (!ok)
        err = errno_text("cannot write", tmp);
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    {
        if (ok)
            err = errno_text("cannot rename onto", path);
        ::unlink(tmp.c_str());
        return false;
    }
    const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
    {
        (void)::fsync(dfd);
        ::close(dfd);
    }
    return true;
}

namespace
{
// A group commit of a few hundred alerts fits; a larger record is written on its own.
constexpr std::size_t kSegmentBuffer = std::size_t{32} * 1024U;
} // namespace

SegmentFile::~SegmentFile()
{
    close();
}

bool SegmentFile::open(const std::string& path, bool writable, bool create, int& err_no)
{
    close();
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (writable && create)
        flags |= O_CREAT;
    fd_ = ::open(path.c_str(), flags, 0600);
    struct stat st
    {
    };
    if (fd_ < 0 || ::fstat(fd_, &st) != 0)
    {
        err_no = errno;
        close();
        return false;
    }
    writable_ = writable;
    written_ = static_cast<std::uint64_t>(st.st_size);
    return true;
}

void SegmentFile::close()
{
    if (fd_ >= 0 && buf_len_ > 0)
    {
        int ignored = 0;
        (void)flush(ignored);
    }
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
    writable_ = false;
    written_ = 0;
    buf_len_ = 0;
}

bool SegmentFile::read_at(std::uint64_t offset, void* out, std::size_t n, int& err_no) const
{
    auto* p = static_cast<char*>(out);
    // Bytes past the buffered ones' start come from the buffer. Without buffered bytes the file
    // is read as it is now: another handle may have appended to it since this one was opened.
    const std::uint64_t from_file = buf_len_ > 0 ? written_ : UINT64_MAX;
    while (n > 0 && offset < from_file)
    {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, from_file - offset));
        const ssize_t got = ::pread(fd_, p, want, static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
        {
            err_no = got < 0 ? errno : EIO; // end of file before `n` bytes: the file shrank
            return false;
        }
        p += got;
        n -= static_cast<std::size_t>(got);
        offset += static_cast<std::uint64_t>(got);
    }
    if (n == 0)
        return true;
    if (offset - written_ > buf_len_ || buf_len_ - (offset - written_) < n)
    {
        err_no = EIO; // past the end
        return false;
    }
    std::memcpy(p, buf_.get() + (offset - written_), n);
    return true;
}

bool SegmentFile::flush(int& err_no)
{
    std::size_t done = 0;
    while (done < buf_len_)
    {
        const ssize_t n =
            ::pwrite(fd_, buf_.get() + done, buf_len_ - done, static_cast<off_t>(written_ + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
        {
            // A short write sets no errno: the usual cause is a full file system.
            err_no = n < 0 ? errno : ENOSPC;
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    // What was written is in the file; the rest stays buffered for the next try.
    written_ += done;
    buf_len_ -= done;
    if (buf_len_ > 0 && done > 0)
        std::memmove(buf_.get(), buf_.get() + done, buf_len_);
    return buf_len_ == 0;
}

bool SegmentFile::append(std::string_view head, std::string_view body, int& err_no)
{
    if (fd_ < 0 || !writable_)
    {
        err_no = EBADF;
        return false;
    }
    const std::size_t n = head.size() + body.size();
    if (!buf_)
        buf_ = std::make_unique_for_overwrite<char[]>(kSegmentBuffer);
    if (buf_len_ + n > kSegmentBuffer && !flush(err_no))
        return false;
    if (n <= kSegmentBuffer)
    {
        std::memcpy(buf_.get() + buf_len_, head.data(), head.size());
        if (!body.empty())
            std::memcpy(buf_.get() + buf_len_ + head.size(), body.data(), body.size());
        buf_len_ += n;
        return true;
    }
    // Larger than the buffer (which is empty now): one write of its own.
    iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                    {const_cast<char*>(body.data()), body.size()}};
    ssize_t w = 0;
    do
        w = ::pwritev(fd_, iov, 2, static_cast<off_t>(written_));
    while (w < 0 && errno == EINTR);
    if (w == static_cast<ssize_t>(n))
    {
        written_ += n;
        return true;
    }
    err_no = w < 0 ? errno : ENOSPC;
    if (w > 0) [[maybe_unused]]
        const int truncated = ::ftruncate(fd_, static_cast<off_t>(written_));
    return false;
}

bool SegmentFile::sync(int& err_no)
{
    if (fd_ < 0)
    {
        err_no = EBADF;
        return false;
    }
    if (!flush(err_no))
        return false;
    if (::fdatasync(fd_) == 0)
        return true;
    err_no = errno;
    return false;
}

bool SegmentFile::truncate(std::uint64_t bytes, int& err_no)
{
    if (fd_ < 0)
    {
        err_no = EBADF;
        return false;
    }
    // Buffered bytes before the cut are written first; those after it are dropped.
    buf_len_ = bytes <= written_
                   ? 0
                   : static_cast<std::size_t>(std::min<std::uint64_t>(buf_len_, bytes - written_));
    if (!flush(err_no))
        return false;
    if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0)
    {
        err_no = errno;
        return false;
    }
    written_ = bytes;
    return true;
}

bool list_dir(const std::string& dir,
              std::string_view prefix,
              std::string_view suffix,
              std::vector<std::string>& names,
              int& err_no)
{
    names.clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
    {
        err_no = errno;
        return false;
    }
    for (;;)
    {
        errno = 0;
        // readdir_r is deprecated; readdir is safe for a DIR only this call uses.
        // cppcheck-suppress readdirCalled
        const dirent* e = ::readdir(d);
        if (e == nullptr)
            break;
        const std::string_view name(e->d_name);
        if (name.size() >= prefix.size() + suffix.size() && name.starts_with(prefix) &&
            name.ends_with(suffix))
            names.emplace_back(name);
    }
    err_no = errno;
    ::closedir(d);
    return err_no == 0;
}

bool sync_dir(const std::string& dir, int& err_no)
{
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
    {
        err_no = errno;
        return false;
    }
    const bool ok = ::fsync(fd) == 0;
    err_no = ok ? 0 : errno;
    ::close(fd);
    return ok;
}

bool make_dir(const std::string& dir, int& err_no)
{
    if (::mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST)
        return true;
    err_no = errno;
    return false;
}

bool unlink_file(const std::string& path, int& err_no)
{
    if (::unlink(path.c_str()) == 0 || errno == ENOENT)
        return true;
    err_no = errno;
    return false;
}

const char* error_text(int err_no)
{
    return std::strerror(err_no);
}

void remove_file(const std::string& path)
{
    (void)::unlink(path.c_str());
}

DirStatus ensure_writable_dir(const std::string& dir, std::string& err)
{
    const auto space_error = [] { return errno == ENOSPC || errno == EROFS || errno == EDQUOT; };
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    {
        err = errno_text("cannot create state dir", dir);
        return DirStatus::Unusable;
    }
    const std::string probe = dir + "/.write-probe";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
    {
        err = errno_text("state dir not writable:", dir);
        return space_error() ? DirStatus::NoSpace : DirStatus::Unusable;
    }
    // One block of data, synced: a full file system often still lets an empty file be created.
    char block[512] = {};
    const bool wrote = ::write(fd, block, sizeof block) == static_cast<ssize_t>(sizeof block) &&
                       ::fdatasync(fd) == 0;
    const int write_errno = errno;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!wrote)
    {
        errno = write_errno == 0 ? ENOSPC : write_errno;
        err = errno_text("state dir not writable:", dir);
        return space_error() ? DirStatus::NoSpace : DirStatus::Unusable;
    }
    return DirStatus::Writable;
}

bool is_private_file(const std::string& path, std::string& err)
{
    struct stat st
    {
    };
    if (::stat(path.c_str(), &st) != 0)
    {
        err = errno_text("cannot stat", path);
        return false;
    }
    // One rule for every file that holds the secret: root and the service group may read it,
    // nobody else may read it and only the owner may change it.
    if ((st.st_mode & 0027) != 0)
    {
        char mode[8];
        (void)std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        err = path + ": mode " + mode +
              ((st.st_mode & 0007) != 0 ? " lets other users read or change the secret in it"
                                        : " lets the group change the secret in it") +
              " (fix: chown root:gateway-agent " + path + " && chmod 0640 " + path + ")";
        return false;
    }
    return true;
}

std::string env(const char* name)
{
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

std::optional<std::string> env_if_set(std::string_view name)
{
    const char* v = std::getenv(std::string(name).c_str());
    return v == nullptr ? std::nullopt : std::optional<std::string>(v);
}

bool running_as_root()
{
    return ::geteuid() == 0;
}

void notify(std::string_view state)
{
    const char* sock = std::getenv("NOTIFY_SOCKET");
    if (sock == nullptr || (sock[0] != '/' && sock[0] != '@'))
        return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(sock);
    if (len >= sizeof addr.sun_path)
        return;
    std::memcpy(addr.sun_path, sock, len);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0'; // abstract socket
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    const auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                   alen);
    ::close(fd);
}

std::int64_t watchdog_interval_ms()
{
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (usec == nullptr)
        return 0;
    return std::strtoll(usec, nullptr, 10) / 1000;
}

void set_log_level(Level max_level)
{
    g_max_level = max_level;
}

// C varargs on purpose: the printf format attribute in port.h lets the compiler check every call.
void log(Level level, const char* fmt, ...) // NOLINT(cert-dcl50-cpp)
{
    if (static_cast<int>(level) > static_cast<int>(g_max_level))
        return;
    char line[1024];
    int n = std::snprintf(line, sizeof line, "<%d>", static_cast<int>(level));
    va_list ap;
    va_start(ap, fmt);
    const int m = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, fmt, ap);
    va_end(ap);
    std::size_t total = static_cast<std::size_t>(n) + (m < 0 ? 0U : static_cast<std::size_t>(m));
    if (total > sizeof line - 2)
        total = sizeof line - 2;
    // One event, one line: newlines inside the text would split it in the journal.
    for (auto i = static_cast<std::size_t>(n); i < total; ++i)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[total] = '\n';
    (void)write_all(STDERR_FILENO, std::string_view(line, total + 1));
}

} // namespace ga::port
