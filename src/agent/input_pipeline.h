// SPDX-License-Identifier: MIT
// From a source's message to a durable decision, in arrival order: decide with the InputFilter,
// append alerts to the AlertLog (no sync), and at the end of a burst commit once; only then may
// the source acknowledge the inputs, in the order they arrived (MQTT 3.1.1 §4.6).
//
// Backpressure: for a source that can wait, an input that finds the store full is held here (a
// fixed ring) with every input after it, unacknowledged, and decided when room comes back. The
// broker's in-flight window then stops the flow. A broker that keeps sending beyond the ring is
// told to go away (Overflow: the caller disconnects; the persistent session redelivers).
#pragma once

#include "alert_log.h"
#include "byte_ring.h"
#include "input_filter.h"

#include <cstdint>
#include <memory>
#include <string_view>

namespace ga
{

class InputPipeline
{
  public:
    InputPipeline(InputFilter& filter,
                  AlertLog& log,
                  AlertLog::Policy policy,
                  std::size_t held_bytes);

    enum class Offer : std::uint8_t
    {
        Decided,  // decided (and appended when an alert); acknowledge after commit()
        Held,     // the store is full: kept here, decided later by retry()
        Overflow, // the hold ring is full: nothing kept; the caller drops the connection
    };
    /// A sensor message from the source; `ack` false when the source expects no acknowledgement
    /// for it (QoS 0, UDP).
    Offer offer(std::string_view message, std::int64_t wall_s, bool ack = true)
    {
        return offer(message, {}, wall_s, ack);
    }
    /// The same for a message with a property bag (`bag`: still percent-encoded, as it came in
    /// the topic); its alert keeps the forwarded properties (see alert_record.h). A bag that
    /// cannot be forwarded is a counted rejection (bad_properties) of the input.
    Offer offer(std::string_view message, std::string_view bag, std::int64_t wall_s, bool ack);
    /// A QoS 1 message of the same connection that is not a sensor message: it needs no decision
    /// but its acknowledgement keeps its place in the arrival order.
    Offer offer_other();
    /// A sensor message the link discarded for its size: counted as too large.
    void reject_oversize(std::size_t bytes) { filter_.reject(Verdict::TooLarge, bytes); }
    /// Decides held inputs, oldest first, while the store has room.
    void retry(std::int64_t wall_s);
    /// Makes the burst's alerts durable (one commit) and returns how many inputs, oldest first,
    /// may now be acknowledged; 0 when the commit failed (they wait for the next one).
    [[nodiscard]] std::size_t commit();
    /// The connection ended: held inputs are forgotten (the broker redelivers them).
    void reset();

    [[nodiscard]] std::size_t held() const { return held_count_; }
    [[nodiscard]] std::uint64_t waited() const { return waited_; } // inputs that waited for room
    [[nodiscard]] std::uint64_t too_large() const { return too_large_; }

  private:
    enum class Result : std::uint8_t
    {
        Done,
        Full,
    };
    // The record being decided is in record_: its head at the start, then the message (copied
    // there only when it is appended or held).
    Result
    decide(std::size_t head_len, std::string_view message, std::int64_t wall_s, bool counted);
    bool hold(std::size_t head_len, std::string_view message, std::uint8_t kind, bool ack);

    InputFilter& filter_;
    AlertLog& log_;
    AlertLog::Policy policy_;
    ByteRing held_;
    std::unique_ptr<char[]> record_; // kMaxAlertHead + the largest message the filter scans
    std::size_t held_count_ = 0;
    std::size_t ready_ = 0; // decided since the last successful commit
    std::uint64_t waited_ = 0;
    std::uint64_t too_large_ = 0;
    std::int64_t next_too_large_log_ms_ = 0;
};

} // namespace ga
