// SPDX-License-Identifier: MIT
#include "alert_store.h"

#include "port.h"

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ga
{
namespace
{
constexpr std::uint32_t kMagic = 0x4C414147U; // "GAAL"
constexpr std::uint64_t kCompactBytes = std::uint64_t{256} * 1024U;

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

std::string journal_path(const std::string& dir)
{
    return dir + "/alerts.journal";
}
} // namespace

AlertStore::~AlertStore()
{
    flush_acks();
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
    reload(journal_path(dir), acked);
    const std::lock_guard<std::mutex> lock(mu_);
    if (!journal_in_sync_ || !journal_.open(journal_path(dir), err))
    {
        if (err.empty())
            err = "cannot read the alert journal " + journal_path(dir);
        journal_in_sync_ = false;
        return false;
    }
    // Anything past the last good record is a torn tail: cut it so appends start on a boundary.
    if (journal_.size() > journal_good_bytes_)
        (void)journal_.truncate(journal_good_bytes_);
    return true;
}

// Start-up only: reads the journal back, stops at the first torn or corrupt record.
void AlertStore::reload(const std::string& journal, std::uint64_t acked_through)
{
    acked_through_ = acked_through;
    persisted_ack_ = acked_through;
    next_seq_ = acked_through + 1;
    std::string data;
    std::string err;
    // The journal is rewritten at twice the bound; allow for a bigger bound configured before.
    const std::size_t max = 8 * ring_.capacity() + kCompactBytes;
    const port::ReadStatus st = port::read_file(journal, data, max, err);
    if (st == port::ReadStatus::Missing)
        return;
    if (st == port::ReadStatus::Error)
    {
        port::log(port::Level::Err, "store: %s; alerts stay in memory until it can be rewritten",
                  err.c_str());
        journal_in_sync_ = false;
        return;
    }
    std::size_t at = 0;
    while (data.size() - at >= sizeof(JournalHeader))
    {
        JournalHeader h{};
        std::memcpy(&h, data.data() + at, sizeof h);
        if (h.magic != kMagic || h.len > ring_.capacity() || data.size() - at - sizeof h < h.len)
            break;
        const std::string_view payload(data.data() + at + sizeof h, h.len);
        if (crc32(payload) != h.crc)
            break;
        at += sizeof h + h.len;
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
    journal_good_bytes_ = at;
    if (count_ > 0)
        port::log(port::Level::Notice, "store: %zu unacknowledged alert(s) reloaded from %s",
                  count_, journal.c_str());
}

// Writes every unacknowledged alert in memory to a new journal and swaps it in (atomic rename).
bool AlertStore::rewrite_journal_locked(std::string& err)
{
    std::string blob;
    blob.reserve(ring_.size() + count_ * sizeof(JournalHeader));
    std::size_t off = 0;
    std::string payload;
    while (off < ring_.size())
    {
        RecordHeader rh{};
        ring_.read(off, &rh, sizeof rh);
        if (rh.acked == 0)
        {
            payload.resize(rh.len);
            ring_.read(off + sizeof rh, payload.data(), rh.len);
            const JournalHeader h{kMagic, rh.len, rh.seq, crc32(payload), 0};
            blob.append(reinterpret_cast<const char*>(&h), sizeof h);
            blob.append(payload);
        }
        off += sizeof rh + rh.len;
    }
    journal_.close();
    if (!port::write_file_atomic(journal_path(dir_), blob, err))
    {
        // The old journal (if any) is still in place; appends resume only after a rewrite.
        journal_in_sync_ = false;
        return false;
    }
    if (!journal_.open(journal_path(dir_), err))
    {
        journal_in_sync_ = false;
        return false;
    }
    journal_in_sync_ = true;
    return true;
}

AlertStore::AppendResult
AlertStore::append(std::string_view alert, std::uint64_t& seq, int& err_no, bool sync)
{
    const std::lock_guard<std::mutex> lock(mu_);
    if (sizeof(RecordHeader) + alert.size() > ring_.capacity())
        return AppendResult::TooLarge;
    seq = next_seq_++;
    bool durable = dir_.empty();
    if (!durable && journal_in_sync_)
    {
        const JournalHeader h{kMagic, static_cast<std::uint32_t>(alert.size()), seq, crc32(alert),
                              0};
        durable =
            journal_.append({reinterpret_cast<const char*>(&h), sizeof h}, alert, err_no, sync);
        if (durable)
            unsynced_ = sync ? 0 : unsynced_ + 1;
        if (!durable)
        {
            // From here on the journal misses records: appends stop until maintain() rewrites it.
            journal_in_sync_ = false;
            next_repair_ms_ = 0;
            port::log(port::Level::Err,
                      "store: cannot write the alert journal in %s: %s; alerts are kept in "
                      "memory only (and sent) until it can be written again",
                      dir_.c_str(), std::strerror(err_no));
        }
    }
    else if (!durable)
    {
        err_no = EIO;
    }
    if (!durable)
        ++not_persisted_;
    while (ring_.free_space() < sizeof(RecordHeader) + alert.size())
        drop_front_locked();
    const RecordHeader rh{seq, static_cast<std::uint32_t>(alert.size()), 0};
    ring_.push(&rh, sizeof rh);
    ring_.push(alert.data(), alert.size());
    ++count_;
    return durable ? AppendResult::Stored : AppendResult::NotDurable;
}

void AlertStore::commit()
{
    const std::lock_guard<std::mutex> lock(mu_);
    if (unsynced_ == 0 || !journal_in_sync_)
        return;
    int err_no = 0;
    if (!journal_.sync(err_no))
    {
        // What was written may not be on disk: count it and rewrite the journal from memory.
        not_persisted_ += unsynced_;
        journal_in_sync_ = false;
        next_repair_ms_ = 0;
        port::log(port::Level::Err, "store: cannot sync the alert journal in %s: %s", dir_.c_str(),
                  std::strerror(err_no));
    }
    unsynced_ = 0;
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
    {
        const std::lock_guard<std::mutex> lock(mu_);
        if (acked_through_ == persisted_ack_ || dir_.empty())
            return;
        watermark = acked_through_;
    }
    char text[24];
    auto [end, ec] = std::to_chars(text, text + sizeof text, watermark);
    std::string err;
    if (!port::write_file_atomic(dir_ + "/alerts.ack",
                                 std::string_view(text, static_cast<std::size_t>(end - text)), err))
    {
        // Harmless for delivery (a crash would re-send acknowledged alerts), so said once.
        if (!ack_write_failing_)
            port::log(port::Level::Warning,
                      "store: %s (acknowledged alerts may be sent again "
                      "after a restart)",
                      err.c_str());
        ack_write_failing_ = true;
        return;
    }
    ack_write_failing_ = false;
    const std::lock_guard<std::mutex> lock(mu_);
    persisted_ack_ = watermark;
}

void AlertStore::maintain(std::int64_t now_ms)
{
    flush_acks();
    if (dir_.empty())
        return;
    const std::lock_guard<std::mutex> lock(mu_);
    if (journal_in_sync_ && count_ == 0 && journal_.size() > kCompactBytes)
    {
        // Everything is acknowledged: empty the journal in place (needs no free space).
        if (journal_.truncate(0))
            return;
    }
    const bool too_big = journal_.size() > kCompactBytes + 2 * ring_.capacity();
    if ((journal_in_sync_ && !too_big) || now_ms < next_repair_ms_)
        return;
    const bool repairing = !journal_in_sync_;
    std::string err;
    // A repair needs proof that the disk takes data again: an empty journal alone can be
    // created on a full file system.
    const bool takes_writes =
        !repairing || port::ensure_writable_dir(dir_, err) == port::DirStatus::Writable;
    if (takes_writes && rewrite_journal_locked(err))
    {
        if (repairing)
            port::log(port::Level::Notice,
                      "store: alert journal writable again; %zu alert(s) in memory written to it "
                      "(%llu accepted while it was not writable)",
                      count_, static_cast<unsigned long long>(not_persisted_));
        return;
    }
    if (!repairing)
        port::log(port::Level::Err, "store: cannot compact the alert journal: %s", err.c_str());
    // Retry every 10 s; the error is logged once a minute, not every try.
    next_repair_ms_ = now_ms + 10000;
    if (now_ms >= next_repair_log_ms_)
    {
        next_repair_log_ms_ = now_ms + 60000;
        port::log(port::Level::Err,
                  "store: alert journal still not writable: %s; %llu alert(s) not persisted so "
                  "far, %zu in memory",
                  err.c_str(), static_cast<unsigned long long>(not_persisted_), count_);
    }
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
std::uint64_t AlertStore::not_persisted()
{
    const std::lock_guard<std::mutex> lock(mu_);
    return not_persisted_;
}
std::uint64_t AlertStore::journal_bytes()
{
    const std::lock_guard<std::mutex> lock(mu_);
    return journal_.size();
}

} // namespace ga
