// SPDX-License-Identifier: MIT
// The alert store as a log on disk. Alerts are appended to segment files in the state dir and
// read back from there when they are sent; memory holds only a fixed window of what is in flight,
// so memory use does not grow with [queue] max_bytes. Segments whose every record is acknowledged
// are deleted whole; live data is never rewritten.
//
// Group commit: append() (no sync) any number of times, then one commit() (one fdatasync per
// touched segment, plus the directory when a segment was created). What a source acknowledges
// must wait for commit() to return true.
//
// Nothing is lost to a changed limit or a bad byte: open() reads every segment whatever today's
// limits; a backlog over a lowered bound is trimmed oldest-first, counted and logged; a record
// with a bad CRC is skipped and counted and reading goes on at the next valid record; a torn
// tail is cut; a segment of a newer format is kept untouched and refused with a clear error.
//
// Disk trouble (ENOSPC, EIO, EROFS, a missing dir): logged once with the path and errno. For
// DropOldest appends (sources that cannot wait, UDP) alerts are then kept in a small memory ring
// and counted as not persisted; Wait appends get Full, so the source withholds its acks. Every
// few seconds maintain() checks with a real write whether the disk takes writes again.
//
// One thread (the event loop) uses it; no locks.
#pragma once

#include "byte_ring.h"
#include "port.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ga
{

struct AlertLogLimits
{
    std::uint64_t max_bytes = 64ULL << 20;    // bytes on disk (segment headers + framed records)
    std::int64_t max_age_s = 0;               // 0: no age limit; older alerts dropped and counted
    std::uint64_t segment_bytes = 1ULL << 20; // a segment is closed once it reaches this size
    std::size_t max_record = 64U * 1024U + 4096U; // largest record accepted
    std::size_t memory_bytes = 256UL * 1024UL; // ring for not-durable alerts while the disk fails
    std::size_t max_inflight = 1024;           // handed out by next_unsent() and not acked
};

class AlertLog
{
  public:
    explicit AlertLog(const AlertLogLimits& limits);
    ~AlertLog();
    AlertLog(const AlertLog&) = delete;
    AlertLog& operator=(const AlertLog&) = delete;

    /// Loads every segment in `dir` (creating it if needed) and the acknowledgement watermark.
    /// False with `err` when the dir cannot be used; the log then runs in memory (see above) and
    /// maintain() keeps trying. An empty `dir` keeps the log in memory only (tests).
    [[nodiscard]] bool open(const std::string& dir, std::int64_t wall_s, std::string& err);
    /// Persists the watermark (clean stop).
    void close();

    enum class Policy : std::uint8_t
    {
        Wait,       // the source can wait (module input, mqtt): Full when at the bound
        DropOldest, // the source cannot wait (udp, simulated): the oldest are dropped, counted
    };
    enum class AppendResult : std::uint8_t
    {
        Appended,   // written (durable after the next commit())
        NotDurable, // DropOldest only: kept in memory, the disk takes no writes (counted)
        Full,       // Wait only: no room under max_bytes or the disk takes no writes
        TooLarge,   // over max_record: refused (the caller counts and logs)
    };
    /// `wall_s` is stored with the record for max_age. `seq` is set when Appended/NotDurable.
    [[nodiscard]] AppendResult
    append(std::string_view record, Policy policy, std::int64_t wall_s, std::uint64_t& seq);
    /// Makes every append so far durable. True when nothing failed (or nothing was pending).
    [[nodiscard]] bool commit();
    /// True when a Wait append of `bytes` would be refused now.
    [[nodiscard]] bool full(std::size_t bytes) const;

    /// Copies the next record not yet handed out for sending (oldest first); false when none,
    /// or when max_inflight are out and unacknowledged.
    [[nodiscard]] bool next_unsent(std::uint64_t& seq, std::span<char> out, std::size_t& len);
    /// After a disconnect: everything unacknowledged is handed out again (at least once).
    void rewind_unsent();
    /// The hub acknowledged `seq` (in any order within the in-flight window).
    void ack(std::uint64_t seq);
    /// About once a second: persists the watermark, deletes acknowledged segments, applies
    /// max_age, and retries the disk after a failure.
    void maintain(std::int64_t now_ms, std::int64_t wall_s);

    /// The highest sequence handed out so far (reloaded or appended); 0 when none.
    [[nodiscard]] std::uint64_t last_seq() const;
    [[nodiscard]] std::uint64_t depth() const;         // records not yet acknowledged
    [[nodiscard]] std::uint64_t dropped() const;       // dropped: bound, lowered bound, age
    [[nodiscard]] std::uint64_t corrupt() const;       // records skipped for a bad CRC
    [[nodiscard]] std::uint64_t not_persisted() const; // accepted while the disk failed
    [[nodiscard]] std::uint64_t disk_bytes() const;    // bytes of segment files
    [[nodiscard]] std::uint64_t commits() const;       // fdatasync calls made by commit()

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ga
