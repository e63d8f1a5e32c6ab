// SPDX-License-Identifier: MIT
#include "session.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ga::mqtt
{
namespace
{

constexpr std::size_t kPubackSize = 4;

const char* connack_text(std::uint8_t code)
{
    switch (code)
    {
    case 0:
        return "connection accepted";
    case 1:
        return "connection refused: unacceptable protocol version";
    case 2:
        return "connection refused: identifier rejected";
    case 3:
        return "connection refused: server unavailable";
    case 4:
        return "connection refused: bad user name or password";
    case 5:
        return "connection refused: not authorized";
    default:
        return "connection refused";
    }
}

const char* type_name(PacketType t)
{
    switch (t)
    {
    case PacketType::Connack:
        return "CONNACK";
    case PacketType::Publish:
        return "PUBLISH";
    case PacketType::Puback:
        return "PUBACK";
    case PacketType::Suback:
        return "SUBACK";
    case PacketType::Unsuback:
        return "UNSUBACK";
    case PacketType::Pingresp:
        return "PINGRESP";
    default:
        return "packet"; // the splitter lets no other type through
    }
}

// "N s" for whole seconds, else "N ms", so a configured timeout reads as configured.
void format_duration(char* out, std::size_t size, const char* what, std::int64_t ms)
{
    if (ms % 1000 == 0)
    {
        (void)std::snprintf(out, size, "%s %" PRId64 " s", what, ms / 1000);
    }
    else
    {
        (void)std::snprintf(out, size, "%s %" PRId64 " ms", what, ms);
    }
}

} // namespace

Session::Session(std::span<std::uint8_t> rx, std::span<std::uint8_t> tx, const SessionConfig& cfg)
    : cfg_(cfg), rx_(rx, std::min(cfg.max_packet, rx.size()), true), tx_(tx)
{
    cfg_.max_packet = std::min(cfg_.max_packet, rx.size());
    cfg_.window = std::min(cfg_.window, kMaxWindow);
    cfg_.max_inbound_pending = std::min(cfg_.max_inbound_pending, kMaxWindow);
}

bool Session::begin(const ConnectParams& p, std::int64_t now_ms)
{
    close();
    if (!queue(encode_connect(p, tx_)))
    {
        return false;
    }
    state_ = State::AwaitConnack;
    began_ms_ = now_ms;
    last_tx_ms_ = now_ms;
    last_rx_ms_ = now_ms;
    return true;
}

void Session::close()
{
    rx_.reset();
    tx_begin_ = 0;
    tx_end_ = 0;
    state_ = State::Idle;
    slots_.fill(Slot{});
    inflight_count_ = 0;
    inbound_head_ = 0;
    inbound_count_ = 0;
    last_packet_id_ = 0;
    subs_.fill(PendingSubscribe{});
    ping_sent_ms_ = -1;
    error_[0] = '\0';
}

// ---- sending ----

std::span<std::uint8_t> Session::tx_tail(bool use_reserve) const
{
    const std::size_t reserve = use_reserve ? 0 : kPingReserve;
    const std::size_t free = tx_.size() - (tx_end_ - tx_begin_);
    if (free <= reserve)
    {
        return {};
    }
    return tx_.subspan(tx_end_, std::min(tx_.size() - tx_end_, free - reserve));
}

std::span<std::uint8_t> Session::tx_room(std::size_t n, bool use_reserve)
{
    std::span<std::uint8_t> tail = tx_tail(use_reserve);
    if (tail.size() < n && tx_begin_ > 0)
    {
        // Move unwritten bytes to the front only when the tail is too short for this packet.
        std::memmove(tx_.data(), tx_.data() + tx_begin_, tx_end_ - tx_begin_);
        tx_end_ -= tx_begin_;
        tx_begin_ = 0;
        tail = tx_tail(use_reserve);
    }
    if (tail.size() < n)
    {
        return {};
    }
    return tail.first(n);
}

bool Session::queue(std::size_t n)
{
    if (n == 0)
    {
        return false;
    }
    tx_end_ += n;
    return true;
}

bool Session::id_in_use(std::uint16_t id) const
{
    const auto window = std::span(slots_).first(cfg_.window);
    return std::any_of(window.begin(), window.end(),
                       [id](const Slot& s) { return s.packet_id == id; }) ||
           std::any_of(subs_.begin(), subs_.end(),
                       [id](const PendingSubscribe& s) { return s.packet_id == id; });
}

std::uint16_t Session::next_packet_id()
{
    // At most kMaxWindow + kMaxSubscribes ids are in use, so this ends well before wrapping.
    do
    {
        ++last_packet_id_;
    } while (last_packet_id_ == 0 || id_in_use(last_packet_id_));
    return last_packet_id_;
}

bool Session::publish(std::string_view topic,
                      std::string_view payload,
                      std::uint8_t qos,
                      std::uint64_t tag)
{
    if (state_ != State::Open || qos > 1U || (qos == 1U && inflight_count_ >= cfg_.window))
    {
        return false;
    }
    const std::size_t size = publish_size(topic.size(), payload.size(), qos);
    const std::span<std::uint8_t> room =
        size == 0 ? std::span<std::uint8_t>{} : tx_room(size, false);
    if (room.empty())
    {
        return false;
    }
    if (qos == 0U)
    {
        return queue(encode_publish(topic, payload, 0, 0, false, room));
    }
    const auto window = std::span(slots_).first(cfg_.window);
    auto slot =
        std::find_if(window.begin(), window.end(), [](const Slot& s) { return s.packet_id == 0; });
    const std::uint16_t id = next_packet_id();
    if (slot == window.end() || !queue(encode_publish(topic, payload, 1, id, false, room)))
    {
        return false;
    }
    slot->packet_id = id;
    slot->tag = tag;
    ++inflight_count_;
    return true;
}

bool Session::subscribe(std::span<const Subscription> subs, std::uint16_t& packet_id)
{
    auto* pending = std::find_if(subs_.begin(), subs_.end(),
                                 [](const PendingSubscribe& s) { return s.packet_id == 0; });
    if (state_ != State::Open || pending == subs_.end())
    {
        return false;
    }
    const std::uint16_t id = next_packet_id();
    std::size_t n = encode_subscribe(id, subs, tx_tail(false));
    if (n == 0 && tx_begin_ > 0)
    {
        // Perhaps only the tail was short: ask for the whole free space and try once more.
        (void)tx_room(tx_.size(), false);
        n = encode_subscribe(id, subs, tx_tail(false));
    }
    if (!queue(n))
    {
        return false;
    }
    pending->packet_id = id;
    pending->filters = subs.size();
    packet_id = id;
    return true;
}

bool Session::ack_inbound(std::size_t n)
{
    if (state_ != State::Open || n > inbound_count_)
    {
        return false;
    }
    if (n == 0)
    {
        return true;
    }
    const std::span<std::uint8_t> room = tx_room(n * kPubackSize, false);
    if (room.empty())
    {
        return false;
    }
    for (std::size_t k = 0; k < n; ++k)
    {
        (void)encode_puback(inbound_[inbound_head_], room.subspan(k * kPubackSize));
        inbound_head_ = (inbound_head_ + 1) % kMaxWindow;
        --inbound_count_;
    }
    return queue(room.size());
}

void Session::leave_inbound_after(std::size_t keep)
{
    if (keep < inbound_count_)
    {
        inbound_count_ = keep;
    }
}

bool Session::disconnect()
{
    if (state_ != State::Open)
    {
        return false;
    }
    return queue(encode_disconnect(tx_room(2, true)));
}

std::span<const std::uint8_t> Session::pending_output() const
{
    return std::span<const std::uint8_t>(tx_).subspan(tx_begin_, tx_end_ - tx_begin_);
}

void Session::output_written(std::size_t n, std::int64_t now_ms)
{
    n = std::min(n, tx_end_ - tx_begin_);
    if (n == 0)
    {
        return;
    }
    tx_begin_ += n;
    last_tx_ms_ = now_ms;
    if (tx_begin_ == tx_end_)
    {
        tx_begin_ = 0; // empty: start over without moving anything
        tx_end_ = 0;
    }
}

// ---- receiving ----

std::span<std::uint8_t> Session::rx_space()
{
    if (state_ != State::AwaitConnack && state_ != State::Open)
    {
        return {};
    }
    return rx_.free_space();
}

void Session::rx_received(std::size_t n, std::int64_t now_ms)
{
    if ((state_ != State::AwaitConnack && state_ != State::Open) || n == 0)
    {
        return;
    }
    rx_.received(n);
    last_rx_ms_ = now_ms;
}

Event Session::fail(const char* why)
{
    state_ = State::Failed;
    Event ev;
    ev.kind = EventKind::Error;
    ev.error = why;
    return ev;
}

Event Session::malformed(const char* what, DecodeError e)
{
    (void)std::snprintf(error_, sizeof error_, "malformed %s from the broker: %s", what,
                        describe(e));
    return fail(error_);
}

Event Session::poll(std::int64_t now_ms)
{
    if (state_ != State::AwaitConnack && state_ != State::Open)
    {
        return {};
    }
    for (;;)
    {
        Frame f;
        DecodeError e = DecodeError::None;
        const FrameSplitter::Status st = rx_.next(f, e);
        if (st == FrameSplitter::Status::NeedMore)
        {
            break;
        }
        if (st == FrameSplitter::Status::Error)
        {
            return malformed("packet", e);
        }
        const Event ev = handle(f);
        if (ev.kind != EventKind::None)
        {
            return ev;
        }
    }
    return on_clock(now_ms);
}

Event Session::handle(const Frame& f)
{
    if (state_ == State::AwaitConnack)
    {
        if (f.type != PacketType::Connack)
        {
            (void)std::snprintf(error_, sizeof error_, "expected CONNACK, the broker sent %s",
                                type_name(f.type));
            return fail(error_);
        }
        Event ev;
        const DecodeError e = decode_connack(f, ev.connack);
        if (e != DecodeError::None)
        {
            return malformed("CONNACK", e);
        }
        if (ev.connack.return_code != 0U)
        {
            state_ = State::Failed;
            ev.kind = EventKind::Refused;
            ev.error = connack_text(ev.connack.return_code);
            return ev;
        }
        state_ = State::Open;
        ev.kind = EventKind::Connected;
        return ev;
    }
    switch (f.type)
    {
    case PacketType::Publish:
        return handle_publish(f);
    case PacketType::Puback:
        return handle_puback(f);
    case PacketType::Suback:
        return handle_suback(f);
    case PacketType::Pingresp:
        return handle_pingresp(f);
    default:
        (void)std::snprintf(error_, sizeof error_, "unexpected %s from the broker",
                            type_name(f.type));
        return fail(error_);
    }
}

Event Session::handle_publish(const Frame& f)
{
    Event ev;
    const DecodeError e = decode_publish(f, ev.message);
    if (e != DecodeError::None)
    {
        return malformed("PUBLISH", e);
    }
    if (ev.message.qos == 1U)
    {
        const std::uint16_t id = ev.message.packet_id;
        for (std::size_t k = 0; k < inbound_count_; ++k)
        {
            if (inbound_[(inbound_head_ + k) % kMaxWindow] == id)
            {
                // §2.3.1: the broker may not reuse an id before we acknowledged it.
                (void)std::snprintf(error_, sizeof error_,
                                    "broker reused packet id %u before it was acknowledged",
                                    static_cast<unsigned>(id));
                return fail(error_);
            }
        }
        if (inbound_count_ >= cfg_.max_inbound_pending)
        {
            (void)std::snprintf(error_, sizeof error_,
                                "broker sent more than %zu unacknowledged QoS 1 messages (it "
                                "ignores the in-flight window)",
                                cfg_.max_inbound_pending);
            return fail(error_);
        }
        inbound_[(inbound_head_ + inbound_count_) % kMaxWindow] = id;
        ++inbound_count_;
    }
    ev.kind = EventKind::Message;
    return ev;
}

Event Session::handle_puback(const Frame& f)
{
    std::uint16_t id = 0;
    const DecodeError e = decode_puback(f, id);
    if (e != DecodeError::None)
    {
        return malformed("PUBACK", e);
    }
    const auto window = std::span(slots_).first(cfg_.window);
    auto slot = std::find_if(window.begin(), window.end(),
                             [id](const Slot& s) { return s.packet_id == id; });
    if (slot == window.end())
    {
        (void)std::snprintf(error_, sizeof error_,
                            "PUBACK for packet id %u, which is not in flight",
                            static_cast<unsigned>(id));
        return fail(error_);
    }
    Event ev;
    ev.kind = EventKind::PublishAcked;
    ev.tag = slot->tag;
    ev.packet_id = id;
    *slot = Slot{};
    --inflight_count_;
    return ev;
}

Event Session::handle_suback(const Frame& f)
{
    Suback s;
    const DecodeError e = decode_suback(f, s);
    if (e != DecodeError::None)
    {
        return malformed("SUBACK", e);
    }
    auto* pending =
        std::find_if(subs_.begin(), subs_.end(),
                     [&s](const PendingSubscribe& p) { return p.packet_id == s.packet_id; });
    if (pending == subs_.end())
    {
        (void)std::snprintf(error_, sizeof error_,
                            "SUBACK for packet id %u, which matches no SUBSCRIBE",
                            static_cast<unsigned>(s.packet_id));
        return fail(error_);
    }
    if (pending->filters != s.return_codes.size())
    {
        // §3.9.3: one return code per filter, in order.
        (void)std::snprintf(
            error_, sizeof error_, "SUBACK for packet id %u has %zu return codes for %zu filters",
            static_cast<unsigned>(s.packet_id), s.return_codes.size(), pending->filters);
        return fail(error_);
    }
    *pending = PendingSubscribe{};
    Event ev;
    ev.kind = EventKind::Subscribed;
    ev.packet_id = s.packet_id;
    ev.granted = s.return_codes;
    return ev;
}

Event Session::handle_pingresp(const Frame& f)
{
    const DecodeError e = decode_pingresp(f);
    if (e != DecodeError::None)
    {
        return malformed("PINGRESP", e);
    }
    if (ping_sent_ms_ < 0)
    {
        return fail("PINGRESP from the broker without a PINGREQ");
    }
    ping_sent_ms_ = -1;
    return {};
}

Event Session::on_clock(std::int64_t now_ms)
{
    if (state_ == State::AwaitConnack)
    {
        if (now_ms - began_ms_ >= cfg_.connack_timeout_ms)
        {
            format_duration(error_, sizeof error_, "no CONNACK within", cfg_.connack_timeout_ms);
            return fail(error_);
        }
        return {};
    }
    if (ping_sent_ms_ >= 0)
    {
        if (now_ms - ping_sent_ms_ >= cfg_.ping_timeout_ms)
        {
            format_duration(error_, sizeof error_, "no PINGRESP within", cfg_.ping_timeout_ms);
            return fail(error_);
        }
        return {};
    }
    const std::int64_t keepalive_ms = std::int64_t{cfg_.keepalive_s} * 1000;
    if (keepalive_ms > 0 &&
        (now_ms - last_tx_ms_ >= keepalive_ms || now_ms - last_rx_ms_ >= keepalive_ms) &&
        queue(encode_pingreq(tx_room(2, true))))
    {
        ping_sent_ms_ = now_ms;
    }
    return {};
}

std::int64_t Session::next_deadline_ms() const
{
    if (state_ == State::AwaitConnack)
    {
        return began_ms_ + cfg_.connack_timeout_ms;
    }
    if (state_ != State::Open)
    {
        return -1;
    }
    if (ping_sent_ms_ >= 0)
    {
        return ping_sent_ms_ + cfg_.ping_timeout_ms;
    }
    // A PINGREQ that cannot be queued now is retried after output was written, not by the clock.
    if (cfg_.keepalive_s == 0 || tx_.size() - (tx_end_ - tx_begin_) < 2)
    {
        return -1;
    }
    const std::int64_t idle_since = std::min(last_tx_ms_, last_rx_ms_);
    return idle_since + std::int64_t{cfg_.keepalive_s} * 1000;
}

} // namespace ga::mqtt
