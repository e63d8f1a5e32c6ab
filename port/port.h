// SPDX-License-Identifier: MIT
// The port layer: the only door to the OS for what differs per platform or must be controlled in
// tests (clocks, randomness, boot id, durable state files, readiness notification, log sink).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ga::port
{

[[nodiscard]] std::int64_t monotonic_ms();
[[nodiscard]] std::int64_t wall_time_s();
/// Seconds since the epoch when this boot started (now - uptime).
[[nodiscard]] std::int64_t boot_time_s();
/// Writes "YYYY-MM-DDThh:mm:ssZ" (NUL-terminated) and returns its length; cap must be >= 21.
std::size_t format_iso8601_utc(std::int64_t epoch_s, char* out, std::size_t cap);
/// A uniformly random 64-bit value from the kernel.
[[nodiscard]] std::uint64_t random_u64();

/// The kernel's boot id (changes at every boot); empty on failure.
[[nodiscard]] std::string boot_id();

enum class ReadStatus
{
    Ok,
    Missing,
    Error,
};
/// Reads a whole file of at most max_bytes; `err` names the cause on Error.
[[nodiscard]] ReadStatus
read_file(const std::string& path, std::string& out, std::size_t max_bytes, std::string& err);
/// Durable replace: temp file in the same dir, write, fsync, rename, fsync the dir.
[[nodiscard]] bool
write_file_atomic(const std::string& path, std::string_view data, std::string& err);
/// Removes a file; a missing file is fine.
void remove_file(const std::string& path);
enum class DirStatus
{
    Writable,
    NoSpace,  // exists but takes no writes now: file system full or read-only
    Unusable, // cannot be created, is not a directory, or permission denied
};
/// Creates `dir` if needed and checks a file can be created in it; `err` names the cause.
[[nodiscard]] DirStatus ensure_writable_dir(const std::string& dir, std::string& err);
/// True when the file exists and is readable by its owner and group at most (0640 or stricter):
/// the rule for any file holding the secret. `err` names the file, its mode and the fix.
[[nodiscard]] bool is_private_file(const std::string& path, std::string& err);
/// The value of an environment variable, empty when unset.
[[nodiscard]] std::string env(const char* name);
/// The value of an environment variable, nullopt when unset (set and empty is "").
[[nodiscard]] std::optional<std::string> env_if_set(std::string_view name);
enum class UserSwitch
{
    Switched,
    NoSuchUser,
    Failed,
};
/// Drops to the named user and its groups for good (--check-config run as root checks what the
/// service user can read and write).
[[nodiscard]] UserSwitch become_user(const std::string& name, std::string& err);
/// True when `path` is readable and holds only PEM certificates, parsed as the TLS transport will.
[[nodiscard]] bool check_ca_file(const std::string& path, std::string& err);
/// True when the process runs with effective uid 0.
[[nodiscard]] bool running_as_root();

/// A file read at any offset (pread) and appended to at its end. Appends collect in a write
/// buffer and reach the file in one write at the next sync() (or when the buffer is full), so
/// a group commit costs one write and one fdatasync however many records it holds; reads see
/// buffered bytes too. Used by the alert log's segments.
class SegmentFile
{
  public:
    SegmentFile() = default;
    ~SegmentFile();
    SegmentFile(const SegmentFile&) = delete;
    SegmentFile& operator=(const SegmentFile&) = delete;

    /// Opens read-only, or read-write (with `create`: created, mode 0600, when missing). On
    /// failure `err_no` is the errno.
    [[nodiscard]] bool open(const std::string& path, bool writable, bool create, int& err_no);
    /// Writes what is buffered (best effort; sync() is what reports errors), then closes.
    void close();
    [[nodiscard]] bool is_open() const { return fd_ >= 0; }
    [[nodiscard]] bool writable() const { return writable_; }
    /// Reads exactly `n` bytes at `offset` (written or buffered); false on an error or end of
    /// file first.
    [[nodiscard]] bool read_at(std::uint64_t offset, void* out, std::size_t n, int& err_no) const;
    /// Appends `head` then `body` at the end. False only when the buffer is full and writing
    /// it out failed, or a record larger than the buffer could not be written; then nothing
    /// of this record was appended.
    [[nodiscard]] bool append(std::string_view head, std::string_view body, int& err_no);
    /// Writes the buffer out, then fdatasync. On failure what was not written stays buffered
    /// (still readable) and the next sync() tries again.
    [[nodiscard]] bool sync(int& err_no);
    [[nodiscard]] bool truncate(std::uint64_t bytes, int& err_no);
    /// Bytes of the file including the buffered ones.
    [[nodiscard]] std::uint64_t size() const { return written_ + buf_len_; }

  private:
    bool flush(int& err_no);

    int fd_ = -1;
    bool writable_ = false;
    std::uint64_t written_ = 0;   // bytes in the file
    std::unique_ptr<char[]> buf_; // allocated by the first append, kept across close()/open()
    std::size_t buf_len_ = 0;     // bytes after written_ not yet in the file
};

/// Names (not paths) of the entries of `dir` that start with `prefix` and end with `suffix`.
/// False with `err_no` when the dir cannot be read.
[[nodiscard]] bool list_dir(const std::string& dir,
                            std::string_view prefix,
                            std::string_view suffix,
                            std::vector<std::string>& names,
                            int& err_no);
/// Makes the dir's entries (created, renamed, removed files) durable.
[[nodiscard]] bool sync_dir(const std::string& dir, int& err_no);
/// Creates `dir` (mode 0750) unless it exists; false with `err_no` otherwise.
[[nodiscard]] bool make_dir(const std::string& dir, int& err_no);
/// Removes a file; false with `err_no` unless it is gone (a missing file is fine).
[[nodiscard]] bool unlink_file(const std::string& path, int& err_no);
/// strerror for an errno value.
[[nodiscard]] const char* error_text(int err_no);

/// systemd readiness/watchdog notification ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...").
/// A no-op when not started by systemd.
void notify(std::string_view state);
/// Watchdog interval requested by systemd in ms (0 when none).
[[nodiscard]] std::int64_t watchdog_interval_ms();

enum class Level
{
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
};
/// One line per event to stderr with a "<N>" priority prefix journald understands.
/// Never pass secrets: callers format only identities, hosts, counts and reasons.
void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void set_log_level(Level max_level);

} // namespace ga::port
