// SPDX-License-Identifier: MIT
#include "alert_store.h"

#include "port.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

namespace ga
{
namespace
{
constexpr std::uint32_t kMagic = 0x4C414147U; // "GAAL"
constexpr std::uint64_t kCompactBytes = 256U * 1024U;

struct JournalHeader
{
    std::uint32_t magic;
    std::uint32_t len;
    std::uint64_t seq;
    std::uint32_t crc;
    std::uint32_t reserved;
};

std::uint32_t crc32(std::string_view data)
{
    std::uint32_t c = 0xFFFFFFFFU;
    for (const char ch : data)
    {
        c ^= static_cast<unsigned char>(ch);
        for (int k = 0; k < 8; ++k)
            c = (c >> 1U) ^ (0xEDB88320U & (0U - (c & 1U)));
    }
    return ~c;
}
} // namespace

AlertStore::~AlertStore()
{
    if (fd_ >= 0)
    {
        flush_acks();
        ::close(fd_);
    }
}

bool AlertStore::open(const std::string& dir, std::string& err)
{
    dir_ = dir;
    if (dir.empty())
        return true;
    std::string text;
    std::uint64_t acked = 0;
    if (port::read_file(dir + "/alerts.ack", text, 64, err) == port::ReadStatus::Ok)
        (void)std::from_chars(text.data(), text.data() + text.size(), acked);
    err.clear();
    const std::string journal = dir + "/alerts.journal";
    reload(journal, acked);
    fd_ = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0)
    {
        err = "cannot open alert journal " + journal + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

// Start-up only: reads the journal back, stops at the first torn or corrupt record.
void AlertStore::reload(const std::string& journal, std::uint64_t acked_through)
{
    acked_through_ = acked_through;
    persisted_ack_ = acked_through;
    next_seq_ = acked_through + 1;
    const int fd = ::open(journal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    std::vector<char> payload;
    off_t good_end = 0;
    for (;;)
    {
        JournalHeader h{};
        if (::read(fd, &h, sizeof h) != static_cast<ssize_t>(sizeof h) || h.magic != kMagic ||
            h.len > ring_.capacity())
            break;
        payload.resize(h.len);
        if (::read(fd, payload.data(), h.len) != static_cast<ssize_t>(h.len) ||
            crc32({payload.data(), h.len}) != h.crc)
            break;
        good_end += static_cast<off_t>(sizeof h + h.len);
        if (h.seq >= next_seq_)
            next_seq_ = h.seq + 1;
        if (h.seq <= acked_through)
            continue;
        while (ring_.free_space() < sizeof(RecordHeader) + h.len && count_ > 0)
            drop_front_locked();
        const RecordHeader rh{h.seq, h.len, 0};
        ring_.push(&rh, sizeof rh);
        ring_.push(payload.data(), h.len);
        ++count_;
    }
    ::close(fd);
    journal_bytes_ = static_cast<std::uint64_t>(good_end);
    // Cut a torn tail so the next append starts on a record boundary.
    (void)::truncate(journal.c_str(), good_end);
    if (count_ > 0)
        port::log(port::Level::Notice, "store: %zu unacknowledged alert(s) reloaded from %s",
                  count_, journal.c_str());
}

bool AlertStore::journal_append_locked(std::uint64_t seq, std::string_view alert, int& err_no)
{
    if (fd_ < 0)
        return dir_.empty();
    JournalHeader h{kMagic, static_cast<std::uint32_t>(alert.size()), seq, crc32(alert), 0};
    iovec iov[2] = {{&h, sizeof h}, {const_cast<char*>(alert.data()), alert.size()}};
    const ssize_t want = static_cast<ssize_t>(sizeof h + alert.size());
    const ssize_t n = ::writev(fd_, iov, 2);
    if (n != want || ::fdatasync(fd_) != 0)
    {
        err_no = n < 0 ? errno : (errno != 0 ? errno : ENOSPC);
        if (n > 0)
            (void)::ftruncate(fd_,
                              static_cast<off_t>(journal_bytes_)); // no torn record left behind
        return false;
    }
    journal_bytes_ += static_cast<std::uint64_t>(n);
    return true;
}

AlertStore::AppendResult AlertStore::append(std::string_view alert, std::uint64_t& seq, int& err_no)
{
    const std::lock_guard<std::mutex> lock(mu_);
    if (sizeof(RecordHeader) + alert.size() > ring_.capacity())
        return AppendResult::TooLarge;
    seq = next_seq_++;
    const bool durable = journal_append_locked(seq, alert, err_no);
    if (!durable)
        ++write_errors_;
    while (ring_.free_space() < sizeof(RecordHeader) + alert.size())
        drop_front_locked();
    const RecordHeader rh{seq, static_cast<std::uint32_t>(alert.size()), 0};
    ring_.push(&rh, sizeof rh);
    ring_.push(alert.data(), alert.size());
    ++count_;
    return durable ? AppendResult::Stored : AppendResult::NotDurable;
}

void AlertStore::drop_front_locked()
{
    RecordHeader rh{};
    ring_.read(0, &rh, sizeof rh);
    const std::size_t n = sizeof rh + rh.len;
    ring_.pop(n);
    --count_;
    send_cursor_ = send_cursor_ > n ? send_cursor_ - n : 0;
    if (rh.acked == 0)
        ++dropped_;
    if (rh.seq > acked_through_)
        acked_through_ = rh.seq; // dropped alerts count as done for the journal watermark
}

void AlertStore::pop_acked_front_locked()
{
    while (count_ > 0)
    {
        RecordHeader rh{};
        ring_.read(0, &rh, sizeof rh);
        if (rh.acked == 0)
            return;
        const std::size_t n = sizeof rh + rh.len;
        ring_.pop(n);
        --count_;
        send_cursor_ = send_cursor_ > n ? send_cursor_ - n : 0;
        if (rh.seq > acked_through_)
            acked_through_ = rh.seq;
    }
}

bool AlertStore::next_unsent(std::uint64_t& seq, std::span<char> out, std::size_t& len)
{
    const std::lock_guard<std::mutex> lock(mu_);
    while (send_cursor_ < ring_.size())
    {
        RecordHeader rh{};
        ring_.read(send_cursor_, &rh, sizeof rh);
        const std::size_t at = send_cursor_;
        send_cursor_ += sizeof rh + rh.len;
        if (rh.acked != 0 || rh.len > out.size())
            continue;
        ring_.read(at + sizeof rh, out.data(), rh.len);
        seq = rh.seq;
        len = rh.len;
        return true;
    }
    return false;
}

void AlertStore::rewind_unsent()
{
    const std::lock_guard<std::mutex> lock(mu_);
    send_cursor_ = 0;
}

void AlertStore::ack(std::uint32_t seq_low)
{
    const std::lock_guard<std::mutex> lock(mu_);
    std::size_t off = 0;
    while (off < ring_.size())
    {
        RecordHeader rh{};
        ring_.read(off, &rh, sizeof rh);
        if (static_cast<std::uint32_t>(rh.seq) == seq_low)
        {
            rh.acked = 1;
            ring_.write(off, &rh, sizeof rh);
            break;
        }
        off += sizeof rh + rh.len;
    }
    pop_acked_front_locked();
    if (count_ == 0)
        acked_through_ = next_seq_ - 1;
}

void AlertStore::flush_acks()
{
    std::uint64_t watermark = 0;
    bool compact = false;
    {
        const std::lock_guard<std::mutex> lock(mu_);
        if (acked_through_ == persisted_ack_ || dir_.empty())
            return;
        watermark = acked_through_;
        compact = count_ == 0 && journal_bytes_ > kCompactBytes;
    }
    char text[24];
    auto [end, ec] = std::to_chars(text, text + sizeof text, watermark);
    std::string err;
    if (!port::write_file_atomic(dir_ + "/alerts.ack",
                                 std::string_view(text, static_cast<std::size_t>(end - text)), err))
    {
        port::log(port::Level::Warning, "store: %s", err.c_str());
        return;
    }
    const std::lock_guard<std::mutex> lock(mu_);
    persisted_ack_ = watermark;
    if (compact && count_ == 0 && fd_ >= 0 && ::ftruncate(fd_, 0) == 0)
        journal_bytes_ = 0;
}

std::uint64_t AlertStore::depth()
{
    const std::lock_guard<std::mutex> lock(mu_);
    return count_;
}
std::uint64_t AlertStore::dropped()
{
    const std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
}
std::uint64_t AlertStore::write_errors()
{
    const std::lock_guard<std::mutex> lock(mu_);
    return write_errors_;
}

} // namespace ga
