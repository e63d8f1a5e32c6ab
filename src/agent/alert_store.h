// SPDX-License-Identifier: MIT
// The bounded, durable store of accepted alerts. An alert is appended (and fsynced) before the
// input that produced it is acknowledged to the broker, and leaves the store only when the hub has
// acknowledged it. When full, the oldest alerts are dropped and counted.
//
// Thread use: append() runs on the MQTT receive thread (so the PUBACK of an input follows the
// durable decision); everything else runs on the event loop. One mutex guards the ring.
#pragma once

#include "byte_ring.h"

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

    /// Opens (creating) the journal in `dir` and reloads alerts not yet acknowledged.
    /// An empty dir keeps the store in memory only.
    [[nodiscard]] bool open(const std::string& dir, std::string& err);

    enum class AppendResult
    {
        Stored,     // in memory and on disk
        NotDurable, // in memory only: the journal write failed (disk full, read-only, ...)
        TooLarge,   // bigger than the whole store
    };
    [[nodiscard]] AppendResult append(std::string_view alert, std::uint64_t& seq, int& err_no);

    /// Copies the next alert not yet handed out for sending; false when none.
    [[nodiscard]] bool next_unsent(std::uint64_t& seq, std::span<char> out, std::size_t& len);
    /// After a disconnect everything unacknowledged is sent again (at least once).
    void rewind_unsent();
    /// The hub acknowledged `seq`; matching uses the low 32 bits (paho carries a 32-bit context).
    void ack(std::uint32_t seq_low);
    /// Persists the acknowledgement watermark and compacts the journal when it is all acked.
    void flush_acks();

    [[nodiscard]] std::uint64_t depth();
    [[nodiscard]] std::uint64_t dropped();
    [[nodiscard]] std::uint64_t write_errors();

  private:
    struct RecordHeader
    {
        std::uint64_t seq;
        std::uint32_t len;
        std::uint32_t acked;
    };
    void drop_front_locked();
    void pop_acked_front_locked();
    bool journal_append_locked(std::uint64_t seq, std::string_view alert, int& err_no);
    void reload(const std::string& journal, std::uint64_t acked_through);

    std::mutex mu_;
    ByteRing ring_;
    std::size_t count_ = 0;
    std::size_t send_cursor_ = 0; // bytes after the ring head of the next unsent record
    std::uint64_t next_seq_ = 1;
    std::uint64_t acked_through_ = 0; // every seq <= this is acknowledged
    std::uint64_t persisted_ack_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint64_t write_errors_ = 0;
    std::string dir_;
    int fd_ = -1;
    std::uint64_t journal_bytes_ = 0;
};

} // namespace ga
