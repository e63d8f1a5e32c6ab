// SPDX-License-Identifier: MIT
// An MQTT 3.1.1 client session as a state machine: no I/O and no clock of its own (`now_ms` is
// passed in), no heap (the receive and send buffers belong to the caller). The owner moves bytes
// between the transport and rx_space()/pending_output(), and pulls events with poll().
//
// - Outbound QoS 1: publish() assigns a packet id and remembers the caller's tag (the store's
//   sequence); a PUBACK gives the tag back as a PublishAcked event. At most `window` in flight.
// - Inbound QoS 1: each received QoS 1 PUBLISH joins a FIFO of unacknowledged packet ids. The
//   owner acknowledges them with ack_inbound(n) once what they carried is durable: PUBACKs go out
//   in arrival order (MQTT 3.1.1 §4.6). A broker that sends more than `max_inbound_pending`
//   without waiting is a protocol error (it ignores its in-flight window).
// - Keep-alive: a PINGREQ when nothing was sent, or nothing received, for keepalive seconds; the
//   connection is dead when the PINGRESP is `ping_timeout_ms` late. No CONNACK within
//   `connack_timeout_ms` is dead too.
// - A PUBLISH larger than `max_packet` is not an error (it would come back after every
//   reconnect): it is a Message with its topic, QoS and packet id, an empty payload and
//   `oversize` set to the payload's size, acknowledged like any other; its payload is discarded
//   as it arrives. Only its topic must fit `rx`. Any other packet over `max_packet` is an Error.
#pragma once

#include "codec.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ga::mqtt
{

struct SessionConfig
{
    std::uint16_t keepalive_s = 240;
    std::int64_t ping_timeout_ms = 30000;
    std::int64_t connack_timeout_ms = 30000;
    std::size_t window = 64;              // outbound QoS 1 in flight, at most kMaxWindow
    std::size_t max_inbound_pending = 64; // inbound QoS 1 awaiting ack_inbound, at most kMaxWindow
    // Largest packet accepted from the server; a larger PUBLISH arrives without its payload.
    std::size_t max_packet = std::size_t{256U} * 1024U;
};

enum class EventKind : std::uint8_t
{
    None,         // nothing (more) to report now
    Connected,    // CONNACK 0: `connack`
    Refused,      // CONNACK != 0: `connack.return_code`; the connection must close
    Message,      // `message` (views valid until the next poll() or rx_space()); see oversize
    PublishAcked, // `tag` of the acknowledged publish()
    Subscribed,   // `packet_id` of the SUBSCRIBE, `granted` return codes
    Error,        // protocol violation or timeout: `error` says which; the connection must close
};

struct Event
{
    EventKind kind = EventKind::None;
    Connack connack{};
    Publish message{};
    std::uint64_t tag = 0;
    std::uint16_t packet_id = 0;
    std::span<const std::uint8_t> granted;
    const char* error = nullptr; // static text or the session's own buffer; valid until next call
};

class Session
{
  public:
    static constexpr std::size_t kMaxWindow = 1024;

    enum class State : std::uint8_t
    {
        Idle,         // before begin() or after close()
        AwaitConnack, // CONNECT queued or sent
        Open,         // CONNACK 0 received
        Failed,       // an Error or Refused event was returned; the owner closes the transport
    };

    /// `rx` must hold at least cfg.max_packet bytes; `tx` bounds what can be queued for sending.
    Session(std::span<std::uint8_t> rx, std::span<std::uint8_t> tx, const SessionConfig& cfg);

    /// A new connection: forgets all state of the previous one (nothing in flight, no pending
    /// acks, buffers empty) and queues CONNECT. False when CONNECT does not fit `tx`.
    [[nodiscard]] bool begin(const ConnectParams& p, std::int64_t now_ms);
    /// Forgets the connection (transport closed or lost). In-flight tags are simply forgotten:
    /// the store re-sends what was not acknowledged.
    void close();
    [[nodiscard]] State state() const { return state_; }

    // ---- sending ----
    /// QoS 0 or 1. False when the window is full (QoS 1), the session is not Open, or the packet
    /// does not fit the free part of `tx` (try again after some output was written).
    [[nodiscard]] bool
    publish(std::string_view topic, std::string_view payload, std::uint8_t qos, std::uint64_t tag);
    /// Queues SUBSCRIBE; `packet_id` is set. False when not Open or it does not fit.
    [[nodiscard]] bool subscribe(std::span<const Subscription> subs, std::uint16_t& packet_id);
    /// Queues PUBACKs for the oldest `n` unacknowledged inbound QoS 1 messages, in arrival order.
    /// False (nothing queued) when n > inbound_pending() or they do not fit `tx`.
    [[nodiscard]] bool ack_inbound(std::size_t n);
    /// Forgets every unacknowledged inbound QoS 1 message after the oldest `keep`, without
    /// acknowledging them: the broker redelivers them on the next connection (persistent session).
    /// For an owner that cannot take them now and must not acknowledge later ones first.
    void leave_inbound_after(std::size_t keep);
    /// Queues DISCONNECT (a clean end); the owner closes after writing it.
    [[nodiscard]] bool disconnect();

    /// Bytes waiting to be written to the transport. The view is valid until the next call that
    /// queues a packet or output_written() (queueing may move unwritten bytes to the front).
    [[nodiscard]] std::span<const std::uint8_t> pending_output() const;
    /// `n` bytes of pending_output() were written.
    void output_written(std::size_t n, std::int64_t now_ms);

    // ---- receiving ----
    /// Where the transport's next bytes go (empty when the buffer is full of unread frames:
    /// poll() first).
    [[nodiscard]] std::span<std::uint8_t> rx_space();
    void rx_received(std::size_t n, std::int64_t now_ms);
    /// The next event from received bytes, or from the clock (keep-alive, timeouts). Returns
    /// kind None when there is nothing to report. After Refused or Error, state() is Failed.
    [[nodiscard]] Event poll(std::int64_t now_ms);
    /// When poll() should next be called for the clock alone (keep-alive or a timeout), or -1.
    [[nodiscard]] std::int64_t next_deadline_ms() const;

    [[nodiscard]] std::size_t inflight() const { return inflight_count_; }
    [[nodiscard]] std::size_t window() const { return cfg_.window; }
    [[nodiscard]] std::size_t inbound_pending() const { return inbound_count_; }

  private:
    // Implementation detail, fixed-size state only.
    struct Slot
    {
        std::uint16_t packet_id = 0; // 0: free
        std::uint64_t tag = 0;
    };
    struct PendingSubscribe
    {
        std::uint16_t packet_id = 0; // 0: free
        std::size_t filters = 0;     // the SUBACK must carry one return code per filter
    };
    // Several SUBSCRIBEs may await their SUBACK at once; the agent needs far fewer.
    static constexpr std::size_t kMaxSubscribes = 8;
    // The last bytes of tx stay free for a PINGREQ, so keep-alive works while tx is busy.
    static constexpr std::size_t kPingReserve = 2;

    Event fail(const char* why);
    Event malformed(const char* what, DecodeError e);
    Event handle(const Frame& f);
    Event handle_publish(const Frame& f);
    Event handle_puback(const Frame& f);
    Event handle_suback(const Frame& f);
    Event handle_pingresp(const Frame& f);
    Event on_clock(std::int64_t now_ms);
    [[nodiscard]] bool id_in_use(std::uint16_t id) const;
    std::uint16_t next_packet_id();
    [[nodiscard]] std::span<std::uint8_t> tx_tail(bool use_reserve) const;
    std::span<std::uint8_t> tx_room(std::size_t n, bool use_reserve);
    bool queue(std::size_t n); // n bytes were encoded at the end of tx; false if it failed

    SessionConfig cfg_;
    FrameSplitter rx_;
    std::span<std::uint8_t> tx_;
    std::size_t tx_begin_ = 0;
    std::size_t tx_end_ = 0;
    State state_ = State::Idle;
    std::array<Slot, kMaxWindow> slots_{};
    std::size_t inflight_count_ = 0;
    std::array<std::uint16_t, kMaxWindow> inbound_{}; // FIFO ring of packet ids
    std::size_t inbound_head_ = 0;
    std::size_t inbound_count_ = 0;
    std::uint16_t last_packet_id_ = 0;
    std::array<PendingSubscribe, kMaxSubscribes> subs_{}; // SUBSCRIBEs awaiting their SUBACK
    std::int64_t began_ms_ = 0;
    std::int64_t last_tx_ms_ = 0;
    std::int64_t last_rx_ms_ = 0;
    std::int64_t ping_sent_ms_ = -1; // -1: no PINGREQ outstanding
    char error_[128] = {};
};

} // namespace ga::mqtt
