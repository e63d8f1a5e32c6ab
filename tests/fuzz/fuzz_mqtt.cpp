// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to the MQTT frame splitter, every decoder and a whole Session (in chunks
// sized by the first input byte) and checks invariants: no crash, every view inside the receive
// buffer, every frame is exactly its slice of the stream, decoded PUBLISHes re-encode to the same
// bytes, and a PUBLISH built from fuzzed topic and payload encodes exactly when it is valid and
// then decodes back to what was encoded. Oversized PUBLISHes (skipped, not fatal) are exercised
// with a small maximum: the splitter accounts for every byte, and a session with a small maximum
// delivers the same messages as one with a large maximum (but for the payloads it discarded).
#include "codec.h"
#include "fuzz_check.h"
#include "session.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace
{

using namespace ga::mqtt;

constexpr std::size_t kMaxPacket = 512;

bool inside(const void* p, std::size_t n, std::span<const std::uint8_t> whole)
{
    const auto* b = static_cast<const std::uint8_t*>(p);
    return n == 0 || (b >= whole.data() && b + n <= whole.data() + whole.size());
}

bool inside(std::string_view s, std::span<const std::uint8_t> whole)
{
    return inside(s.data(), s.size(), whole);
}

std::string_view as_text(std::span<const std::uint8_t> b)
{
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Runs every decoder on one frame and checks what they hand back.
void check_frame(const Frame& f, std::span<const std::uint8_t> buffer)
{
    FUZZ_CHECK(inside(f.body.data(), f.body.size(), buffer));
    FUZZ_CHECK(f.body.size() <= kMaxPacket);

    Connack c;
    if (decode_connack(f, c) == DecodeError::None)
        FUZZ_CHECK(c.return_code <= 5 && (c.return_code == 0 || !c.session_present));
    std::uint16_t id = 0;
    if (decode_puback(f, id) == DecodeError::None)
        FUZZ_CHECK(id != 0 && f.body.size() == 2);
    Suback s;
    if (decode_suback(f, s) == DecodeError::None)
    {
        FUZZ_CHECK(s.packet_id != 0 && !s.return_codes.empty());
        FUZZ_CHECK(inside(s.return_codes.data(), s.return_codes.size(), f.body));
    }
    (void)decode_pingresp(f);
    Publish p;
    const DecodeError pe = decode_publish(f, p);
    FUZZ_CHECK(describe(pe) != nullptr);
    if (pe != DecodeError::None)
        return;
    FUZZ_CHECK(inside(p.topic, f.body) && inside(p.payload, f.body));
    FUZZ_CHECK(!p.topic.empty() && is_mqtt_utf8(p.topic));
    FUZZ_CHECK(p.qos <= 1 && (p.qos == 0) == (p.packet_id == 0));
    // Re-encoding gives the same packet (but for RETAIN, which a client never sets).
    std::array<std::uint8_t, kMaxPacket> out{};
    const std::size_t n = encode_publish(p.topic, p.payload, p.qos, p.packet_id, p.dup, out);
    FUZZ_CHECK(n > 0 && n == publish_size(p.topic.size(), p.payload.size(), p.qos));
    FUZZ_CHECK(n >= f.body.size() + 2);
    FUZZ_CHECK((out[0] & 0x0FU) == (f.flags & 0x0EU));
    FUZZ_CHECK(std::equal(f.body.begin(), f.body.end(), out.begin() + (n - f.body.size())));
}

std::size_t length_bytes(std::size_t remaining)
{
    std::size_t n = 1;
    for (; remaining >= 128U; remaining >>= 7U)
        ++n;
    return n;
}

// Splits `data` in chunks; with `skip`, PUBLISHes over `max_packet` are cut to their variable
// header. Every frame must be exactly the stream's bytes at the place the accounting says.
void split_all(std::span<const std::uint8_t> data,
               std::size_t chunk,
               std::size_t max_packet,
               bool skip)
{
    std::array<std::uint8_t, kMaxPacket> buf{};
    FrameSplitter split(buf, max_packet, skip);
    std::size_t fed = 0;
    std::size_t consumed = 0; // stream bytes of the frames handed out (discarded ones included)
    for (int rounds = 0; rounds < 100000; ++rounds)
    {
        Frame f;
        DecodeError e = DecodeError::None;
        const FrameSplitter::Status st = split.next(f, e);
        if (st == FrameSplitter::Status::Error)
        {
            FUZZ_CHECK(e != DecodeError::None);
            FUZZ_CHECK(split.free_space().empty());
            FUZZ_CHECK(split.discarding() == 0);
            return;
        }
        if (st == FrameSplitter::Status::Frame)
        {
            check_frame(f, buf);
            const std::size_t remaining = f.body.size() + f.discarded;
            const std::size_t header = 1U + length_bytes(remaining);
            FUZZ_CHECK(consumed + header + f.body.size() <= fed);
            FUZZ_CHECK(data[consumed] >> 4U == static_cast<unsigned>(f.type));
            FUZZ_CHECK((data[consumed] & 0x0FU) == f.flags);
            FUZZ_CHECK(std::equal(f.body.begin(), f.body.end(),
                                  data.begin() + static_cast<std::ptrdiff_t>(consumed + header)));
            // Only a PUBLISH may be over the maximum, and only when skipping: then the body is
            // its variable header alone (a PUBLISH with no payload may be over, and whole).
            const bool over = header + remaining > max_packet;
            FUZZ_CHECK(!over || (skip && f.type == PacketType::Publish));
            FUZZ_CHECK(f.discarded == 0 || over);
            Publish p;
            if (over && decode_publish(f, p) == DecodeError::None)
                FUZZ_CHECK(p.oversize == f.discarded && p.payload.empty());
            consumed += header + remaining;
            continue;
        }
        FUZZ_CHECK(e == DecodeError::None);
        // Everything received is handed out, buffered, or dropped; what is still to drop comes.
        FUZZ_CHECK(fed + split.discarding() == consumed + split.buffered());
        FUZZ_CHECK(split.discarding() == 0 || split.buffered() == 0);
        if (fed == data.size())
            return;
        const std::span<std::uint8_t> space = split.free_space();
        FUZZ_CHECK(!space.empty()); // a partial frame always leaves room for more
        FUZZ_CHECK(inside(space.data(), space.size(), buf));
        const std::size_t n = std::min({chunk, space.size(), data.size() - fed});
        std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
        split.received(n);
        fed += n;
    }
    FUZZ_CHECK(false); // no progress
}

// A PUBLISH from fuzzed parts encodes exactly when valid, and then round-trips.
void round_trip(std::span<const std::uint8_t> data)
{
    if (data.size() < 4)
        return;
    const std::size_t topic_len = std::min<std::size_t>(data[1], data.size() - 4);
    const std::string_view topic = as_text(data.subspan(4, topic_len));
    const std::string_view payload = as_text(data.subspan(4 + topic_len));
    const auto qos = static_cast<std::uint8_t>(data[2] & 1U);
    const bool dup = qos == 1 && (data[2] & 2U) != 0;
    const auto id = static_cast<std::uint16_t>(qos == 1 ? (data[3] | 1U) : 0U);
    std::array<std::uint8_t, 1024> out{};
    const std::size_t n = encode_publish(topic, payload, qos, id, dup, out);
    const bool valid = !topic.empty() && is_mqtt_utf8(topic) &&
                       topic.find_first_of("+#") == std::string_view::npos;
    // (An input over about 1 KiB makes a PUBLISH that does not fit `out`.)
    const bool fits = publish_size(topic.size(), payload.size(), qos) <= out.size();
    FUZZ_CHECK((n != 0) == (valid && fits));
    if (n == 0)
        return;
    FUZZ_CHECK(n == publish_size(topic.size(), payload.size(), qos));
    std::array<std::uint8_t, 1024> buf{};
    FrameSplitter split(buf, buf.size());
    std::copy_n(out.begin(), n, split.free_space().begin());
    split.received(n);
    Frame f;
    DecodeError e = DecodeError::None;
    FUZZ_CHECK(split.next(f, e) == FrameSplitter::Status::Frame);
    FUZZ_CHECK(split.buffered() == 0);
    Publish p;
    FUZZ_CHECK(decode_publish(f, p) == DecodeError::None);
    FUZZ_CHECK(p.topic == topic && p.payload == payload && p.qos == qos && p.dup == dup &&
               p.packet_id == id && !p.retain);
}

std::uint64_t fnv(std::string_view s)
{
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : s)
        h = (h ^ static_cast<std::uint8_t>(c)) * 1099511628211ULL;
    return h;
}

// What a session delivered, to compare two sessions' messages.
struct Delivered
{
    std::uint64_t topic = 0;
    std::uint64_t payload = 0; // hash; 0 when discarded
    std::size_t size = 0;      // payload size, discarded or not
    bool discarded = false;
    std::uint16_t id = 0;
    std::uint8_t qos = 0;
    bool dup = false;
    bool retain = false;
};
struct Log
{
    std::array<Delivered, 256> list{};
    std::size_t count = 0;
};

// Drives a Session with the input as the broker's byte stream.
void run_session(std::span<const std::uint8_t> data,
                 std::size_t chunk,
                 bool opened,
                 std::span<std::uint8_t> rx,
                 std::size_t max_packet,
                 Log& log)
{
    std::array<std::uint8_t, 256> tx{};
    SessionConfig cfg;
    cfg.keepalive_s = 1;
    cfg.ping_timeout_ms = 500;
    cfg.connack_timeout_ms = 2000;
    cfg.window = 4;
    cfg.max_inbound_pending = 4;
    cfg.max_packet = max_packet;
    max_packet = std::min(max_packet, rx.size());
    Session s(rx, tx, cfg);
    ConnectParams cp;
    cp.client_id = "fuzz";
    cp.keepalive_s = 1;
    FUZZ_CHECK(s.begin(cp, 0));
    std::int64_t now = 0;
    if (opened)
    {
        const std::array<std::uint8_t, 4> connack{0x20, 0x02, 0x00, 0x00};
        std::copy(connack.begin(), connack.end(), s.rx_space().begin());
        s.rx_received(connack.size(), now);
        FUZZ_CHECK(s.poll(now).kind == EventKind::Connected);
    }
    std::size_t fed = 0;
    std::uint64_t tag = 0;
    while (fed < data.size())
    {
        const std::span<std::uint8_t> space = s.rx_space();
        if (s.state() == Session::State::Failed)
        {
            FUZZ_CHECK(space.empty() && s.poll(now).kind == EventKind::None);
            FUZZ_CHECK(s.next_deadline_ms() == -1);
            return;
        }
        FUZZ_CHECK(!space.empty()); // all events were polled: room for more (or bytes to drop)
        const std::size_t n = std::min({chunk, space.size(), data.size() - fed});
        std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
        s.rx_received(n, now);
        fed += n;
        // The clock moves by an amount the input picks, so timeouts and pings happen too.
        now += data[fed - 1] % 8U == 0 ? 700 : 10;
        for (int i = 0; i < 1000; ++i)
        {
            const std::size_t pending = s.inbound_pending();
            const Event ev = s.poll(now);
            if (ev.kind == EventKind::None)
                break;
            if (ev.kind == EventKind::Message)
            {
                const Publish& m = ev.message;
                FUZZ_CHECK(inside(m.topic, rx) && inside(m.payload, rx));
                FUZZ_CHECK(!m.topic.empty() && is_mqtt_utf8(m.topic));
                FUZZ_CHECK(s.inbound_pending() <= cfg.max_inbound_pending);
                FUZZ_CHECK(s.inbound_pending() == pending + (m.qos == 1 ? 1U : 0U));
                if (m.oversize > 0)
                {
                    FUZZ_CHECK(m.payload.empty());
                    FUZZ_CHECK(publish_size(m.topic.size(), m.oversize, m.qos) > max_packet);
                }
                else
                {
                    // (A PUBLISH without payload may be over the maximum and still whole.)
                    FUZZ_CHECK(m.payload.empty() ||
                               publish_size(m.topic.size(), m.payload.size(), m.qos) <= max_packet);
                }
                if (log.count < log.list.size())
                {
                    Delivered& d = log.list[log.count++];
                    d.topic = fnv(m.topic);
                    d.discarded = m.oversize > 0;
                    d.size = d.discarded ? m.oversize : m.payload.size();
                    d.payload = d.discarded ? 0 : fnv(m.payload);
                    d.id = m.packet_id;
                    d.qos = m.qos;
                    d.dup = m.dup;
                    d.retain = m.retain;
                }
            }
            if (ev.kind == EventKind::Subscribed)
                FUZZ_CHECK(inside(ev.granted.data(), ev.granted.size(), rx));
            if (ev.kind == EventKind::Error || ev.kind == EventKind::Refused)
            {
                FUZZ_CHECK(ev.error != nullptr && s.state() == Session::State::Failed);
                break;
            }
        }
        if (s.state() != Session::State::Open)
            continue;
        // Act like an owner: acknowledge, publish, subscribe, write some output.
        const std::uint8_t act = data[fed - 1];
        if ((act & 1U) != 0)
            (void)s.ack_inbound(s.inbound_pending());
        if ((act & 2U) != 0)
        {
            const bool ok = s.publish("up/t", "payload", 1, ++tag);
            FUZZ_CHECK(s.inflight() <= s.window());
            (void)ok;
        }
        if ((act & 4U) != 0)
        {
            const std::array subs{Subscription{"down/#", 1}};
            std::uint16_t id = 0;
            if (s.subscribe(subs, id))
                FUZZ_CHECK(id != 0);
        }
        const std::span<const std::uint8_t> out = s.pending_output();
        FUZZ_CHECK(inside(out.data(), out.size(), tx));
        s.output_written((act & 8U) != 0 ? out.size() : out.size() / 2, now);
        const std::int64_t deadline = s.next_deadline_ms();
        FUZZ_CHECK(deadline == -1 || deadline >= 0);
    }
    s.close();
    FUZZ_CHECK(s.state() == Session::State::Idle && s.pending_output().empty());
}

// A session with a large maximum and one with a small maximum (and a small rx buffer) see the
// same stream: until either stops at an error, they deliver the same messages, but for the
// payloads the small one discarded (then of the same size).
void compare_sessions(std::span<const std::uint8_t> data, std::size_t chunk, bool opened)
{
    std::array<std::uint8_t, kMaxPacket> rx_large{};
    std::array<std::uint8_t, 64> rx_small{};
    Log large;
    Log small;
    run_session(data, chunk, opened, rx_large, kMaxPacket, large);
    run_session(data, chunk, opened, rx_small, 40, small);
    const std::size_t n = std::min(large.count, small.count);
    for (std::size_t i = 0; i < n; ++i)
    {
        const Delivered& a = large.list[i];
        const Delivered& b = small.list[i];
        FUZZ_CHECK(a.topic == b.topic && a.id == b.id && a.qos == b.qos && a.dup == b.dup &&
                   a.retain == b.retain && a.size == b.size);
        FUZZ_CHECK(!a.discarded || b.discarded); // what the large one discarded, so did the small
        if (!a.discarded && !b.discarded)
            FUZZ_CHECK(a.payload == b.payload);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::span<const std::uint8_t> in(data, size);
    const std::size_t chunk = 1U + (data[0] & 0x3FU);
    const std::span<const std::uint8_t> stream = in.subspan(1);
    split_all(stream, chunk, kMaxPacket, false);
    split_all(stream, stream.size() + 1, kMaxPacket, false);
    split_all(stream, chunk, 24, true);
    split_all(stream, stream.size() + 1, 24, true);
    round_trip(in);
    compare_sessions(stream, chunk, true);
    compare_sessions(stream, chunk, false);
    return 0;
}
