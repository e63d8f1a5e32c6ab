// SPDX-License-Identifier: MIT
// The bounded, durable store of accepted alerts. An alert is appended (and fsynced) before the
// input that produced it is acknowledged to the broker, and leaves the store only when the hub has
// acknowledged it. When full, the oldest alerts are dropped and counted.
//
// On disk: an append-only journal of CRC'd records plus an acknowledgement watermark. The journal
// is rewritten from memory when it grows past twice the store's bound, so the disk use stays
// bounded by [queue] max_bytes even through a long outage. When the journal cannot be written
// (disk full, read-only or missing state dir) alerts are still kept in memory and sent, counted
// as not persisted, and the journal is rewritten from memory once the disk takes writes again.
//
// Thread use: append() runs on the MQTT receive thread (so the PUBACK of an input follows the
// durable decision); everything else runs on the event loop. One mutex guards the ring.
#pragma once

#include "byte_ring.h"
#include "port.h"

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

namespace ga
{

class AlertStore
{
  public:
    /// `max_bytes` bounds the alerts kept (payload plus a small header each).
    explicit AlertStore(std::size_t max_bytes) : ring_(max_bytes) {}
    ~AlertStore();
    AlertStore(const AlertStore&) = delete;
    AlertStore& operator=(const AlertStore&) = delete;

    /// Reloads alerts not yet acknowledged from the journal in `dir` and opens it for appending.
    /// An empty dir keeps the store in memory only. False (with `err`) when the journal cannot be
    /// opened: the store then works in memory and maintain() keeps trying.
    [[nodiscard]] bool open(const std::string& dir, std::string& err);

    enum class AppendResult
    {
        Stored,     // in memory and on disk
        NotDurable, // in memory only: the journal cannot be written (disk full, read-only, ...)
        TooLarge,   // bigger than the whole store
    };
    /// With `sync` false the alert is written but made durable only by the next commit() (or
    /// the next synced append): one fdatasync for a batch from a source that acknowledges nothing.
    [[nodiscard]] AppendResult
    append(std::string_view alert, std::uint64_t& seq, int& err_no, bool sync = true);
    /// Makes the alerts appended without sync durable.
    void commit();

    /// Copies the next alert not yet handed out for sending; false when none.
    [[nodiscard]] bool next_unsent(std::uint64_t& seq, std::span<char> out, std::size_t& len);
    /// After a disconnect everything unacknowledged is sent again (at least once).
    void rewind_unsent();
    /// The hub acknowledged `seq`; matching uses the low 32 bits (paho carries a 32-bit context).
    void ack(std::uint32_t seq_low);
    /// About once a second on the loop: persists the acknowledgement watermark, compacts the
    /// journal, and rewrites it from memory after a write failure once the disk allows.
    void maintain(std::int64_t now_ms);

    [[nodiscard]] std::uint64_t depth();
    [[nodiscard]] std::uint64_t dropped();
    /// Alerts that were accepted while the journal could not be written.
    [[nodiscard]] std::uint64_t not_persisted();
    [[nodiscard]] std::uint64_t journal_bytes();

  private:
    struct RecordHeader
    {
        std::uint64_t seq;
        std::uint32_t len;
        std::uint32_t acked;
    };
    void drop_front_locked();
    void pop_acked_front_locked();
    bool rewrite_journal_locked(std::string& err);
    void reload(const std::string& journal, std::uint64_t acked_through);
    void flush_acks();

    std::mutex mu_;
    ByteRing ring_;
    std::size_t count_ = 0;
    std::size_t send_cursor_ = 0; // bytes after the ring head of the next unsent record
    std::uint64_t next_seq_ = 1;
    std::uint64_t acked_through_ = 0; // every seq <= this is acknowledged
    std::uint64_t persisted_ack_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint64_t not_persisted_ = 0;
    std::string dir_;
    port::AppendFile journal_;
    bool journal_in_sync_ = true;          // every record in memory is also in the journal
    std::uint64_t unsynced_ = 0;           // appended without sync since the last fdatasync
    std::uint64_t journal_good_bytes_ = 0; // end of the last whole record found by reload()
    std::int64_t next_repair_ms_ = 0;
    std::int64_t next_repair_log_ms_ = 0;
    bool ack_write_failing_ = false;
};

} // namespace ga
