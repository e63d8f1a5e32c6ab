// SPDX-License-Identifier: MIT
// MQTT session state machine: scripted byte exchanges with a pretend broker, the clock passed in.
#include "session.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace
{

using ga::mqtt::ConnectParams;
using ga::mqtt::Event;
using ga::mqtt::EventKind;
using ga::mqtt::Session;
using ga::mqtt::SessionConfig;
using ga::mqtt::Subscription;
using Bytes = std::vector<std::uint8_t>;
using State = Session::State;

// ---- what the broker sends ----

Bytes connack(std::uint8_t code, bool session_present = false)
{
    return {0x20, 0x02, static_cast<std::uint8_t>(session_present ? 1 : 0), code};
}
Bytes puback(std::uint16_t id)
{
    return {0x40, 0x02, static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id & 0xFF)};
}
Bytes suback(std::uint16_t id, const Bytes& codes)
{
    Bytes b = {0x90, static_cast<std::uint8_t>(2 + codes.size()),
               static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id & 0xFF)};
    b.insert(b.end(), codes.begin(), codes.end());
    return b;
}
Bytes pingresp()
{
    return {0xD0, 0x00};
}
Bytes publish(std::string_view topic,
              std::string_view payload,
              std::uint8_t qos,
              std::uint16_t id,
              bool dup = false)
{
    Bytes b(1024);
    b.resize(ga::mqtt::encode_publish(topic, payload, qos, id, dup, b));
    EXPECT_FALSE(b.empty());
    return b;
}
Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const Bytes& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

// ---- what the client sent: a minimal parser of client packets ----

struct Packet
{
    std::uint8_t first = 0;
    Bytes body;
    [[nodiscard]] int type() const { return first >> 4; }
    [[nodiscard]] std::uint16_t u16(std::size_t at) const
    {
        return static_cast<std::uint16_t>((body.at(at) << 8) | body.at(at + 1));
    }
};

std::vector<Packet> packets(const Bytes& out)
{
    std::vector<Packet> list;
    std::size_t i = 0;
    while (i < out.size())
    {
        Packet p;
        p.first = out[i++];
        std::size_t len = 0;
        std::size_t mult = 1;
        for (;;)
        {
            const std::uint8_t b = out.at(i++);
            len += (b & 0x7FU) * mult;
            mult *= 128;
            if ((b & 0x80U) == 0)
                break;
        }
        EXPECT_LE(i + len, out.size());
        p.body.assign(out.begin() + static_cast<std::ptrdiff_t>(i),
                      out.begin() + static_cast<std::ptrdiff_t>(i + len));
        i += len;
        list.push_back(p);
    }
    return list;
}

// Publish packet id from a client PUBLISH at QoS 1.
std::uint16_t publish_id(const Packet& p)
{
    return p.u16(2U + p.u16(0));
}

SessionConfig small_config()
{
    SessionConfig c;
    c.keepalive_s = 10;
    c.ping_timeout_ms = 3000;
    c.connack_timeout_ms = 5000;
    c.window = 4;
    c.max_inbound_pending = 4;
    c.max_packet = 1024;
    return c;
}

class Harness
{
  public:
    explicit Harness(const SessionConfig& cfg = small_config(), std::size_t tx_size = 4096)
        : rx_(cfg.max_packet), tx_(tx_size), s(rx_, tx_, cfg)
    {
    }

    // Takes everything queued, as if the transport wrote it all at `now`.
    Bytes take(std::int64_t now = 0)
    {
        const auto out = s.pending_output();
        Bytes copy(out.begin(), out.end());
        s.output_written(copy.size(), now);
        return copy;
    }
    void feed(const Bytes& in, std::int64_t now = 0)
    {
        std::size_t fed = 0;
        while (fed < in.size())
        {
            const auto space = s.rx_space();
            ASSERT_FALSE(space.empty());
            const std::size_t n = std::min(space.size(), in.size() - fed);
            std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
            s.rx_received(n, now);
            fed += n;
        }
    }
    Event poll(std::int64_t now = 0) { return s.poll(now); }
    // begin() + CONNACK 0, everything written, at time `now`.
    void open(std::int64_t now = 0)
    {
        ConnectParams p;
        p.client_id = "dev";
        p.keepalive_s = 10;
        ASSERT_TRUE(s.begin(p, now));
        ASSERT_EQ(s.state(), State::AwaitConnack);
        const auto sent = packets(take(now));
        ASSERT_EQ(sent.size(), 1U);
        ASSERT_EQ(sent[0].type(), 1);
        feed(connack(0), now);
        const Event ev = poll(now);
        ASSERT_EQ(ev.kind, EventKind::Connected);
        ASSERT_EQ(s.state(), State::Open);
        ASSERT_EQ(poll(now).kind, EventKind::None);
    }

  private:
    std::vector<std::uint8_t> rx_;
    std::vector<std::uint8_t> tx_;

  public:
    Session s;
};

std::string error_of(const Event& ev)
{
    return ev.kind == EventKind::Error && ev.error != nullptr ? std::string(ev.error) : "";
}

// ---- connect, subscribe ----

TEST(MqttSession, ConnectConnackSubscribeSuback)
{
    Harness h;
    EXPECT_EQ(h.s.state(), State::Idle);
    EXPECT_EQ(h.poll().kind, EventKind::None);
    ConnectParams p;
    p.client_id = "dev";
    p.username = "user";
    p.password = "pw";
    p.keepalive_s = 10;
    ASSERT_TRUE(h.s.begin(p, 0));
    Bytes connect(128);
    connect.resize(ga::mqtt::encode_connect(p, connect));
    EXPECT_EQ(h.take(), connect);
    EXPECT_EQ(h.poll().kind, EventKind::None);

    h.feed(connack(0, true));
    Event ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Connected);
    EXPECT_TRUE(ev.connack.session_present);
    EXPECT_EQ(h.s.state(), State::Open);

    const std::array subs{Subscription{"a/#", 1}, Subscription{"b", 0}};
    std::uint16_t id = 0;
    ASSERT_TRUE(h.s.subscribe(subs, id));
    EXPECT_NE(id, 0);
    Bytes sub(128);
    sub.resize(ga::mqtt::encode_subscribe(id, subs, sub));
    EXPECT_EQ(h.take(), sub);

    h.feed(suback(id, {0x01, 0x80}));
    ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Subscribed);
    EXPECT_EQ(ev.packet_id, id);
    EXPECT_EQ(Bytes(ev.granted.begin(), ev.granted.end()), (Bytes{0x01, 0x80}));
    EXPECT_EQ(h.poll().kind, EventKind::None);
}

TEST(MqttSession, TwoSubscribesOutstanding)
{
    Harness h;
    h.open();
    const std::array a{Subscription{"a", 1}};
    const std::array b{Subscription{"b", 1}, Subscription{"c", 1}};
    std::uint16_t ida = 0;
    std::uint16_t idb = 0;
    ASSERT_TRUE(h.s.subscribe(a, ida));
    ASSERT_TRUE(h.s.subscribe(b, idb));
    EXPECT_NE(ida, idb);
    (void)h.take();
    h.feed(cat({suback(idb, {1, 1}), suback(ida, {0})}));
    Event ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Subscribed);
    EXPECT_EQ(ev.packet_id, idb);
    ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Subscribed);
    EXPECT_EQ(ev.packet_id, ida);
}

TEST(MqttSession, SubackMismatches)
{
    {
        Harness h;
        h.open();
        std::uint16_t id = 0;
        const std::array subs{Subscription{"a", 1}};
        ASSERT_TRUE(h.s.subscribe(subs, id));
        h.feed(suback(static_cast<std::uint16_t>(id + 1), {0}));
        EXPECT_NE(error_of(h.poll()).find("matches no SUBSCRIBE"), std::string::npos);
        EXPECT_EQ(h.s.state(), State::Failed);
    }
    {
        Harness h;
        h.open();
        std::uint16_t id = 0;
        const std::array subs{Subscription{"a", 1}};
        ASSERT_TRUE(h.s.subscribe(subs, id));
        h.feed(suback(id, {0, 1}));
        EXPECT_NE(error_of(h.poll()).find("2 return codes for 1 filters"), std::string::npos);
    }
}

TEST(MqttSession, Refused)
{
    Harness h;
    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 0));
    (void)h.take();
    h.feed(connack(5));
    const Event ev = h.poll();
    EXPECT_EQ(ev.kind, EventKind::Refused);
    EXPECT_EQ(ev.connack.return_code, 5);
    EXPECT_EQ(h.s.state(), State::Failed);
    EXPECT_EQ(h.poll().kind, EventKind::None);
    EXPECT_EQ(h.s.next_deadline_ms(), -1);
    EXPECT_TRUE(h.s.rx_space().empty());
}

TEST(MqttSession, PacketBeforeConnackIsAnError)
{
    Harness h;
    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 0));
    h.feed(publish("t", "x", 0, 0));
    EXPECT_EQ(error_of(h.poll()), "expected CONNACK, the broker sent PUBLISH");
    EXPECT_EQ(h.s.state(), State::Failed);
    EXPECT_EQ(h.poll().kind, EventKind::None);
}

TEST(MqttSession, SecondConnackIsAnError)
{
    Harness h;
    h.open();
    h.feed(connack(0));
    EXPECT_EQ(error_of(h.poll()), "unexpected CONNACK from the broker");
}

TEST(MqttSession, MalformedPacketIsAnError)
{
    Harness h;
    h.open();
    h.feed({0x40, 0x03, 0x00, 0x01, 0x00}); // PUBACK with 3 body bytes
    const std::string e = error_of(h.poll());
    EXPECT_EQ(e, std::string("malformed PUBACK from the broker: ") +
                     describe(ga::mqtt::DecodeError::BadLength));
    EXPECT_EQ(h.s.state(), State::Failed);
    EXPECT_EQ(h.poll().kind, EventKind::None);

    Harness g;
    g.open();
    g.feed({0x60, 0x02, 0x00, 0x01}); // PUBREL: the QoS 2 flow
    EXPECT_EQ(error_of(g.poll()), std::string("malformed packet from the broker: ") +
                                      describe(ga::mqtt::DecodeError::BadType));

    Harness u;
    u.open();
    u.feed({0xB0, 0x02, 0x00, 0x01}); // UNSUBACK: we never unsubscribe
    EXPECT_EQ(error_of(u.poll()), "unexpected UNSUBACK from the broker");
}

TEST(MqttSession, TooLargeIsAnError)
{
    // Any packet but a PUBLISH over max_packet is fatal: 1024 body bytes announced.
    for (const int first : {0x90, 0x40, 0x20, 0xD0})
    {
        Harness h; // max_packet 1024
        h.open();
        h.feed({static_cast<std::uint8_t>(first), 0x80, 0x08});
        EXPECT_EQ(error_of(h.poll()), std::string("malformed packet from the broker: ") +
                                          describe(ga::mqtt::DecodeError::TooLarge))
            << first;
        EXPECT_EQ(h.s.state(), State::Failed);
    }
}

// ---- oversized PUBLISH: skipped, not fatal ----

Bytes big_publish(std::string_view topic, std::size_t payload, std::uint8_t qos, std::uint16_t id)
{
    const std::string body(payload, 'p');
    Bytes b(payload + topic.size() + 16);
    b.resize(ga::mqtt::encode_publish(topic, body, qos, id, false, b));
    EXPECT_FALSE(b.empty());
    return b;
}

// An event with copies of what its views showed (they are gone after the next rx_space()).
struct Got
{
    EventKind kind = EventKind::None;
    std::string topic;
    std::string payload;
    ga::mqtt::Publish message; // views cleared
    std::uint64_t tag = 0;
    std::string error;
};

// The owner's loop: copy at most `chunk` bytes into rx_space(), then poll() until None.
std::vector<Got> drive(Harness& h, const Bytes& in, std::size_t chunk, std::int64_t now = 0)
{
    std::vector<Got> events;
    std::size_t fed = 0;
    for (;;)
    {
        for (Event ev = h.poll(now); ev.kind != EventKind::None; ev = h.poll(now))
        {
            Got g;
            g.kind = ev.kind;
            g.topic = ev.message.topic;
            g.payload = ev.message.payload;
            g.message = ev.message;
            g.message.topic = {};
            g.message.payload = {};
            g.tag = ev.tag;
            g.error = error_of(ev);
            events.push_back(g);
            if (ev.kind == EventKind::Error)
                return events;
        }
        if (fed == in.size())
            return events;
        const auto space = h.s.rx_space();
        if (space.empty())
        {
            ADD_FAILURE() << "no rx space after poll() at " << fed << " of " << in.size();
            return events;
        }
        const std::size_t n = std::min({chunk, space.size(), in.size() - fed});
        std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
        h.s.rx_received(n, now);
        fed += n;
    }
}

TEST(MqttSession, OversizedQos1PublishIsSkipped)
{
    constexpr std::size_t kPayload = 200000; // a 200 KB message against max_packet 1024
    const Bytes big = big_publish("in/sensor/big", kPayload, 1, 7);
    ASSERT_EQ(big.size(), 1U + 3U + 2U + 13U + 2U + kPayload);
    for (const std::size_t chunk :
         {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{1024}, big.size() + 100})
    {
        Harness h;
        h.open();
        ASSERT_TRUE(h.s.publish("up", "x", 1, 42));
        const auto sent = packets(h.take());
        ASSERT_EQ(sent.size(), 1U);
        const std::uint16_t out_id = publish_id(sent[0]);
        const Bytes in = cat({big, publish("in/small", "hello", 1, 8), puback(out_id)});
        const std::vector<Got> ev = drive(h, in, chunk);
        ASSERT_EQ(ev.size(), 3U) << chunk;
        ASSERT_EQ(ev[0].kind, EventKind::Message) << ev[0].error;
        EXPECT_EQ(ev[0].topic, "in/sensor/big");
        EXPECT_EQ(ev[0].payload, "");
        EXPECT_EQ(ev[0].message.oversize, kPayload);
        EXPECT_EQ(ev[0].message.qos, 1);
        EXPECT_EQ(ev[0].message.packet_id, 7);
        EXPECT_FALSE(ev[0].message.dup);
        EXPECT_FALSE(ev[0].message.retain);
        ASSERT_EQ(ev[1].kind, EventKind::Message) << ev[1].error;
        EXPECT_EQ(ev[1].topic, "in/small");
        EXPECT_EQ(ev[1].payload, "hello");
        EXPECT_EQ(ev[1].message.oversize, 0U);
        EXPECT_EQ(ev[1].message.packet_id, 8);
        ASSERT_EQ(ev[2].kind, EventKind::PublishAcked);
        EXPECT_EQ(ev[2].tag, 42U);
        EXPECT_EQ(h.s.state(), State::Open);
        EXPECT_EQ(h.s.inbound_pending(), 2U);
        ASSERT_TRUE(h.s.ack_inbound(2));
        EXPECT_EQ(h.take(), cat({puback(7), puback(8)}));
    }
}

TEST(MqttSession, OversizedQos0PublishAndFlags)
{
    Harness h;
    h.open();
    Bytes big = big_publish("t", 5000, 0, 0);
    big[0] |= 0x01U; // RETAIN
    const std::vector<Got> ev = drive(h, cat({big, publish("t", "after", 0, 0)}), 100);
    ASSERT_EQ(ev.size(), 2U);
    ASSERT_EQ(ev[0].kind, EventKind::Message);
    EXPECT_EQ(ev[0].topic, "t");
    EXPECT_EQ(ev[0].payload, "");
    EXPECT_EQ(ev[0].message.oversize, 5000U);
    EXPECT_EQ(ev[0].message.qos, 0);
    EXPECT_EQ(ev[0].message.packet_id, 0);
    EXPECT_TRUE(ev[0].message.retain);
    EXPECT_EQ(h.s.inbound_pending(), 0U);
    ASSERT_EQ(ev[1].kind, EventKind::Message);
    EXPECT_EQ(ev[1].payload, "after");

    // A DUP redelivery of an oversized QoS 1 message is the same: skipped again.
    Bytes dup = big_publish("t", 3000, 1, 9);
    dup[0] |= 0x08U;
    const std::vector<Got> again = drive(h, dup, 4096);
    ASSERT_EQ(again.size(), 1U);
    EXPECT_TRUE(again[0].message.dup);
    EXPECT_EQ(again[0].message.oversize, 3000U);
    EXPECT_EQ(h.s.inbound_pending(), 1U);
}

TEST(MqttSession, OversizedPublishFromTheFirstByte)
{
    // Just over the limit: max_packet 1024, the PUBLISH is 1025 bytes in all.
    Harness h;
    h.open();
    const Bytes fits = big_publish("t", 1016, 1, 1);
    ASSERT_EQ(fits.size(), 1024U);
    const Bytes over = big_publish("t", 1017, 1, 2);
    ASSERT_EQ(over.size(), 1025U);
    const std::vector<Got> ev = drive(h, cat({fits, over}), 1);
    ASSERT_EQ(ev.size(), 2U);
    EXPECT_EQ(ev[0].payload.size(), 1016U);
    EXPECT_EQ(ev[0].message.oversize, 0U);
    EXPECT_EQ(ev[1].payload, "");
    EXPECT_EQ(ev[1].message.oversize, 1017U);
}

TEST(MqttSession, OversizedPublishKeepsKeepaliveAccounting)
{
    Harness h; // keepalive 10 s
    h.open(0);
    const Bytes big = big_publish("t", 50000, 1, 3);
    // Head and the start of the payload at 4 s, more payload at 8 s: still discarding.
    EXPECT_EQ(drive(h, Bytes(big.begin(), big.begin() + 2000), 2000, 4000).size(), 1U);
    EXPECT_TRUE(drive(h, Bytes(big.begin() + 2000, big.begin() + 30000), 512, 8000).empty());
    ASSERT_TRUE(h.s.publish("up", "x", 0, 0));
    (void)h.take(9000);
    // Idle since the last bytes received (8 s), not since the CONNACK.
    EXPECT_EQ(h.s.next_deadline_ms(), 18000);
    EXPECT_EQ(h.poll(17999).kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty());
    // The rest of the payload, then a PINGRESP is still understood.
    EXPECT_TRUE(drive(h, Bytes(big.begin() + 30000, big.end()), 4096, 17999).empty());
    EXPECT_EQ(h.poll(28000).kind, EventKind::None);
    const auto sent = packets(h.take(28000));
    ASSERT_EQ(sent.size(), 1U);
    EXPECT_EQ(sent[0].type(), 12); // PINGREQ
    EXPECT_TRUE(drive(h, pingresp(), 2, 28100).empty());
    EXPECT_EQ(h.s.state(), State::Open);
    EXPECT_EQ(h.poll(60000).kind, EventKind::None); // no ping timeout: the PINGRESP counted
}

TEST(MqttSession, OversizedPublishErrors)
{
    const std::string malformed = "malformed PUBLISH from the broker: ";
    {
        // A wildcard in the topic, after a good one.
        Harness h;
        h.open();
        const std::vector<Got> ev = drive(h, big_publish("x", 2000, 1, 1), 64);
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].kind, EventKind::Message);
        Bytes bad = big_publish("a/b", 2000, 1, 2);
        bad[7] = '+'; // "a/+"
        const std::vector<Got> e2 = drive(h, bad, 64);
        ASSERT_EQ(e2.size(), 1U);
        EXPECT_EQ(e2[0].error, malformed + describe(ga::mqtt::DecodeError::BadTopic));
        EXPECT_EQ(h.s.state(), State::Failed);
    }
    {
        // Not UTF-8, and U+0000.
        for (const int c : {0xFF, 0x00})
        {
            Harness h;
            h.open();
            Bytes bad = big_publish("abc", 2000, 0, 0);
            bad[7] = static_cast<std::uint8_t>(
                c); // "ab?"; the topic starts at 5, after 3 header and 2 length bytes
            const std::vector<Got> ev = drive(h, bad, 4096);
            ASSERT_EQ(ev.size(), 1U);
            EXPECT_EQ(ev[0].error, malformed + describe(ga::mqtt::DecodeError::BadTopic));
        }
    }
    {
        // Packet id 0.
        Harness h;
        h.open();
        Bytes bad = big_publish("abc", 2000, 1, 1);
        bad[9] = 0; // id 0x0001 -> 0
        const std::vector<Got> ev = drive(h, bad, 4096);
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].error, malformed + describe(ga::mqtt::DecodeError::ZeroPacketId));
    }
    {
        // A topic that cannot fit the 1024-byte rx buffer: refused as soon as its length is in.
        Harness h;
        h.open();
        const Bytes bad = big_publish(std::string(1100, 't'), 10, 0, 0);
        const std::vector<Got> ev = drive(h, Bytes(bad.begin(), bad.begin() + 5), 1);
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].error, std::string("malformed packet from the broker: ") +
                                   describe(ga::mqtt::DecodeError::TooLarge));
    }
    {
        // A topic length past the end of the packet.
        Harness h;
        h.open();
        const std::vector<Got> ev = drive(h, {0x30, 0xD0, 0x0F, 0x07, 0xD1}, 16); // 2000 < 2003
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].error, std::string("malformed packet from the broker: ") +
                                   describe(ga::mqtt::DecodeError::BadLength));
    }
    {
        // QoS 2 stays refused, whatever the size.
        Harness h;
        h.open();
        const std::vector<Got> ev = drive(h, {0x34, 0xD0, 0x0F, 0x00, 0x01, 't'}, 16);
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].error, std::string("malformed packet from the broker: ") +
                                   describe(ga::mqtt::DecodeError::BadQos));
    }
    {
        // An oversized SUBACK in the middle of a stream of oversized PUBLISHes.
        Harness h;
        h.open();
        Bytes suback_big = {0x90, 0xD0, 0x0F, 0x00, 0x01};
        suback_big.resize(2003, 0x00);
        const std::vector<Got> ev = drive(h, cat({big_publish("t", 3000, 0, 0), suback_big}), 256);
        ASSERT_EQ(ev.size(), 2U);
        EXPECT_EQ(ev[0].message.oversize, 3000U);
        EXPECT_EQ(ev[1].error, std::string("malformed packet from the broker: ") +
                                   describe(ga::mqtt::DecodeError::TooLarge));
    }
    {
        // Before the CONNACK an oversized PUBLISH is as wrong as any PUBLISH.
        Harness h;
        ConnectParams p;
        p.client_id = "dev";
        ASSERT_TRUE(h.s.begin(p, 0));
        const std::vector<Got> ev = drive(h, big_publish("t", 3000, 0, 0), 512);
        ASSERT_EQ(ev.size(), 1U);
        EXPECT_EQ(ev[0].error, "expected CONNACK, the broker sent PUBLISH");
    }
}

TEST(MqttSession, OversizedPublishCountsAgainstInboundPending)
{
    Harness h; // max_inbound_pending 4
    h.open();
    Bytes in;
    for (std::uint16_t id = 1; id <= 5; ++id)
        in = cat({in, big_publish("t", 1500, 1, id)});
    const std::vector<Got> ev = drive(h, in, 700);
    ASSERT_EQ(ev.size(), 5U);
    EXPECT_EQ(ev[3].message.packet_id, 4);
    EXPECT_EQ(ev[4].error, "broker sent more than 4 unacknowledged QoS 1 messages (it ignores the "
                           "in-flight window)");
}

TEST(MqttSession, CloseWhileDiscardingForgetsTheRest)
{
    Harness h;
    h.open();
    const Bytes big = big_publish("t", 5000, 0, 0);
    EXPECT_EQ(drive(h, Bytes(big.begin(), big.begin() + 1500), 1500).size(), 1U);
    h.s.close();
    h.open(); // the new connection starts with a CONNACK, not with the old payload's bytes
    const std::vector<Got> ev = drive(h, publish("t", "fresh", 0, 0), 64);
    ASSERT_EQ(ev.size(), 1U);
    EXPECT_EQ(ev[0].payload, "fresh");
}

// ---- outbound QoS 1 ----

TEST(MqttSession, WindowFull)
{
    Harness h;
    h.open();
    EXPECT_EQ(h.s.window(), 4U);
    for (std::uint64_t tag = 0; tag < 4; ++tag)
        ASSERT_TRUE(h.s.publish("t", "x", 1, tag));
    EXPECT_EQ(h.s.inflight(), 4U);
    const std::size_t queued = h.s.pending_output().size();
    EXPECT_FALSE(h.s.publish("t", "x", 1, 99));
    EXPECT_EQ(h.s.pending_output().size(), queued);
    EXPECT_TRUE(h.s.publish("t", "x", 0, 0)); // QoS 0 does not use the window
    EXPECT_EQ(h.s.inflight(), 4U);
    EXPECT_FALSE(h.s.publish("t", "x", 2, 0));   // no QoS 2
    EXPECT_FALSE(h.s.publish("a/+", "x", 0, 0)); // not a topic name
}

TEST(MqttSession, PubackTagsInAnyOrder)
{
    Harness h;
    h.open();
    ASSERT_TRUE(h.s.publish("t/1", "a", 1, 100));
    ASSERT_TRUE(h.s.publish("t/2", "b", 1, 101));
    ASSERT_TRUE(h.s.publish("t/3", "c", 1, 102));
    const auto sent = packets(h.take());
    ASSERT_EQ(sent.size(), 3U);
    std::array<std::uint16_t, 3> ids{};
    for (std::size_t i = 0; i < 3; ++i)
    {
        EXPECT_EQ(sent[i].first, 0x32);
        ids[i] = publish_id(sent[i]);
        EXPECT_NE(ids[i], 0);
    }
    EXPECT_NE(ids[0], ids[1]);
    EXPECT_NE(ids[1], ids[2]);
    EXPECT_NE(ids[0], ids[2]);

    h.feed(cat({puback(ids[1]), puback(ids[2]), puback(ids[0])}));
    for (const std::uint64_t want : {101U, 102U, 100U})
    {
        const Event ev = h.poll();
        ASSERT_EQ(ev.kind, EventKind::PublishAcked);
        EXPECT_EQ(ev.tag, want);
    }
    EXPECT_EQ(h.poll().kind, EventKind::None);
    EXPECT_EQ(h.s.inflight(), 0U);
}

TEST(MqttSession, PubackUnknownId)
{
    Harness h;
    h.open();
    ASSERT_TRUE(h.s.publish("t", "a", 1, 1));
    const std::uint16_t id = publish_id(packets(h.take())[0]);
    const auto other = static_cast<std::uint16_t>(id + 100);
    h.feed(puback(other));
    EXPECT_EQ(error_of(h.poll()),
              "PUBACK for packet id " + std::to_string(other) + ", which is not in flight");
    EXPECT_EQ(h.s.state(), State::Failed);
}

TEST(MqttSession, PubackTwiceIsAnError)
{
    Harness h;
    h.open();
    ASSERT_TRUE(h.s.publish("t", "a", 1, 1));
    const std::uint16_t id = publish_id(packets(h.take())[0]);
    h.feed(cat({puback(id), puback(id)}));
    EXPECT_EQ(h.poll().kind, EventKind::PublishAcked);
    EXPECT_EQ(h.poll().kind, EventKind::Error);
}

TEST(MqttSession, PacketIdsNeverZeroAndSkipIdsInUse)
{
    SessionConfig cfg = small_config();
    cfg.window = 2;
    cfg.keepalive_s = 0;
    Harness h(cfg);
    h.open();
    ASSERT_TRUE(h.s.publish("t", "", 1, 0)); // stays in flight throughout
    const std::uint16_t held = publish_id(packets(h.take())[0]);
    std::vector<bool> seen(65536, false);
    for (int i = 0; i < 70000; ++i)
    {
        ASSERT_TRUE(h.s.publish("t", "", 1, 1));
        const std::uint16_t id = publish_id(packets(h.take())[0]);
        ASSERT_NE(id, 0);
        ASSERT_NE(id, held);
        seen[id] = true;
        h.feed(puback(id));
        const Event ev = h.poll();
        ASSERT_EQ(ev.kind, EventKind::PublishAcked);
        ASSERT_EQ(ev.tag, 1U);
    }
    // Wrapped around and used every other id.
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 65534);
}

TEST(MqttSession, PublishFalseWhenTxFull)
{
    SessionConfig cfg = small_config();
    cfg.window = 64;
    Harness h(cfg, 65);
    h.open();
    // Each QoS 1 PUBLISH below is 2 + 2 + 1 + 2 + 8 = 15 bytes; 65 bytes hold 4 of them.
    int queued = 0;
    while (h.s.publish("t", "12345678", 1, static_cast<std::uint64_t>(queued)))
        ++queued;
    EXPECT_EQ(queued, 4);
    const Bytes before(h.s.pending_output().begin(), h.s.pending_output().end());
    ASSERT_EQ(before.size(), 60U);
    EXPECT_FALSE(h.s.publish("t", "12345678", 1, 99));
    // 5 bytes are free, but 2 of them stay for a PINGREQ: a 5-byte PUBLISH does not fit.
    EXPECT_FALSE(h.s.publish("t", "", 0, 0));
    EXPECT_EQ(h.s.inflight(), 4U);
    EXPECT_EQ(Bytes(h.s.pending_output().begin(), h.s.pending_output().end()), before);

    // The PINGREQ fits while tx is full of publishes.
    EXPECT_EQ(h.poll(10000).kind, EventKind::None);
    Bytes with_ping = before;
    with_ping.push_back(0xC0);
    with_ping.push_back(0x00);
    EXPECT_EQ(Bytes(h.s.pending_output().begin(), h.s.pending_output().end()), with_ping);

    // A partial write frees the front; the next publish moves the rest and fits.
    h.s.output_written(20, 10001);
    ASSERT_TRUE(h.s.publish("t", "12345678", 1, 4));
    const Bytes after(h.s.pending_output().begin(), h.s.pending_output().end());
    ASSERT_EQ(after.size(), with_ping.size() - 20 + 15);
    EXPECT_TRUE(std::equal(with_ping.begin() + 20, with_ping.end(), after.begin()));
    const auto sent = packets(Bytes(after.begin() + 10, after.end()));
    ASSERT_EQ(sent.size(), 4U);
    EXPECT_EQ(sent[2].first, 0xC0);
    EXPECT_EQ(publish_id(sent[3]), 5);
}

TEST(MqttSession, PublishNotOpen)
{
    Harness h;
    EXPECT_FALSE(h.s.publish("t", "x", 0, 0));
    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 0));
    EXPECT_FALSE(h.s.publish("t", "x", 1, 0));
    std::uint16_t id = 0;
    const std::array subs{Subscription{"a", 1}};
    EXPECT_FALSE(h.s.subscribe(subs, id));
    EXPECT_FALSE(h.s.disconnect());
}

// ---- inbound QoS 1 ----

TEST(MqttSession, InboundAckInArrivalOrder)
{
    Harness h;
    h.open();
    h.feed(
        cat({publish("in/a", "1", 1, 9), publish("in/b", "2", 1, 3), publish("in/c", "3", 1, 5)}));
    for (const char* want : {"1", "2", "3"})
    {
        const Event ev = h.poll();
        ASSERT_EQ(ev.kind, EventKind::Message);
        EXPECT_EQ(ev.message.payload, want);
        EXPECT_EQ(ev.message.qos, 1);
    }
    EXPECT_EQ(h.poll().kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty()); // nothing acknowledged by itself
    EXPECT_EQ(h.s.inbound_pending(), 3U);

    ASSERT_TRUE(h.s.ack_inbound(2));
    EXPECT_EQ(h.take(), cat({puback(9), puback(3)}));
    EXPECT_EQ(h.s.inbound_pending(), 1U);
    EXPECT_FALSE(h.s.ack_inbound(2));
    EXPECT_TRUE(h.s.pending_output().empty());
    EXPECT_TRUE(h.s.ack_inbound(0));
    ASSERT_TRUE(h.s.ack_inbound(1));
    EXPECT_EQ(h.take(), puback(5));
    EXPECT_EQ(h.s.inbound_pending(), 0U);
}

TEST(MqttSession, InboundRingWrapsAround)
{
    Harness h;
    h.open();
    for (std::uint16_t id = 1; id < 3000; ++id)
    {
        h.feed(publish("t", "x", 1, id));
        ASSERT_EQ(h.poll().kind, EventKind::Message);
        if (id % 3 == 0)
        {
            ASSERT_TRUE(h.s.ack_inbound(3));
            ASSERT_EQ(h.take(), cat({puback(static_cast<std::uint16_t>(id - 2)),
                                     puback(static_cast<std::uint16_t>(id - 1)), puback(id)}));
        }
    }
}

TEST(MqttSession, InboundQos0NeedsNoAck)
{
    Harness h;
    h.open();
    h.feed(publish("t", "zero", 0, 0));
    const Event ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Message);
    EXPECT_EQ(ev.message.topic, "t");
    EXPECT_EQ(ev.message.payload, "zero");
    EXPECT_EQ(ev.message.qos, 0);
    EXPECT_EQ(h.s.inbound_pending(), 0U);
}

TEST(MqttSession, DuplicateInboundIdIsAnError)
{
    Harness h;
    h.open();
    h.feed(cat({publish("t", "1", 1, 7), publish("t", "2", 1, 7, true)}));
    EXPECT_EQ(h.poll().kind, EventKind::Message);
    EXPECT_EQ(error_of(h.poll()), "broker reused packet id 7 before it was acknowledged");
    EXPECT_EQ(h.s.state(), State::Failed);
}

TEST(MqttSession, SameIdAfterAckIsFine)
{
    Harness h;
    h.open();
    h.feed(publish("t", "1", 1, 7));
    EXPECT_EQ(h.poll().kind, EventKind::Message);
    ASSERT_TRUE(h.s.ack_inbound(1));
    h.feed(publish("t", "2", 1, 7));
    EXPECT_EQ(h.poll().kind, EventKind::Message);
}

TEST(MqttSession, InboundOverflow)
{
    Harness h; // max_inbound_pending 4
    h.open();
    for (std::uint16_t id = 1; id <= 4; ++id)
        h.feed(publish("t", "x", 1, id));
    for (int i = 0; i < 4; ++i)
        ASSERT_EQ(h.poll().kind, EventKind::Message);
    h.feed(publish("t", "x", 1, 5));
    EXPECT_EQ(error_of(h.poll()), "broker sent more than 4 unacknowledged QoS 1 messages (it "
                                  "ignores the in-flight window)");
    EXPECT_EQ(h.s.state(), State::Failed);
}

TEST(MqttSession, DupRedeliveryIsJustAMessage)
{
    Harness h;
    h.open();
    h.feed(publish("t", "again", 1, 42, true));
    const Event ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Message);
    EXPECT_TRUE(ev.message.dup);
    EXPECT_EQ(ev.message.packet_id, 42);
    EXPECT_EQ(h.s.inbound_pending(), 1U);
}

TEST(MqttSession, AckInboundFalseWhenTxFull)
{
    SessionConfig cfg = small_config();
    Harness h(cfg, 64);
    h.open();
    h.feed(cat({publish("t", "1", 1, 1), publish("t", "2", 1, 2)}));
    ASSERT_EQ(h.poll().kind, EventKind::Message);
    ASSERT_EQ(h.poll().kind, EventKind::Message);
    // Fill tx: 64 - 2 reserved = 62; leave 7 bytes, less than two PUBACKs.
    ASSERT_TRUE(h.s.publish("t", std::string(62 - 7 - 7, 'p'), 1, 0));
    EXPECT_EQ(h.s.pending_output().size(), 55U);
    EXPECT_FALSE(h.s.ack_inbound(2));
    EXPECT_EQ(h.s.inbound_pending(), 2U);
    EXPECT_EQ(h.s.pending_output().size(), 55U);
    ASSERT_TRUE(h.s.ack_inbound(1));
    EXPECT_EQ(h.s.inbound_pending(), 1U);
}

TEST(MqttSession, FramesArrivingByteByByte)
{
    Harness h;
    h.open();
    const Bytes in = cat({publish("a/b", "hello", 1, 3), pingresp()});
    const std::size_t last = in.size() - 3; // the last byte of the PUBLISH
    for (std::size_t i = 0; i < last; ++i)
    {
        h.feed({in[i]});
        ASSERT_EQ(h.poll().kind, EventKind::None) << i;
    }
    h.feed({in[last]});
    const Event ev = h.poll();
    ASSERT_EQ(ev.kind, EventKind::Message);
    EXPECT_EQ(ev.message.topic, "a/b");
    EXPECT_EQ(ev.message.payload, "hello");
}

// ---- keep-alive and timeouts ----

TEST(MqttSession, PingAfterIdleTx)
{
    Harness h; // keepalive 10 s
    h.open(0);
    EXPECT_EQ(h.s.next_deadline_ms(), 10000);
    h.feed(publish("t", "x", 0, 0), 5000); // rx busy, tx idle since 0
    EXPECT_EQ(h.poll(5000).kind, EventKind::Message);
    EXPECT_EQ(h.s.next_deadline_ms(), 10000);
    EXPECT_EQ(h.poll(9999).kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty());
    EXPECT_EQ(h.poll(10000).kind, EventKind::None);
    EXPECT_EQ(h.take(10000), (Bytes{0xC0, 0x00}));
    EXPECT_EQ(h.s.next_deadline_ms(), 13000); // the PINGRESP deadline
    EXPECT_EQ(h.poll(11000).kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty()); // only one ping outstanding
    h.feed(pingresp(), 11000);
    EXPECT_EQ(h.poll(11000).kind, EventKind::None);
    EXPECT_EQ(h.s.state(), State::Open);
    EXPECT_EQ(h.s.next_deadline_ms(), 20000); // tx at 10000, rx at 11000
}

TEST(MqttSession, PingAfterIdleRx)
{
    Harness h;
    h.open(0);
    ASSERT_TRUE(h.s.publish("t", "x", 0, 0));
    (void)h.take(6000); // tx busy at 6000, rx idle since 0
    EXPECT_EQ(h.s.next_deadline_ms(), 10000);
    EXPECT_EQ(h.poll(9999).kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty());
    EXPECT_EQ(h.poll(10000).kind, EventKind::None);
    EXPECT_EQ(h.take(10000), (Bytes{0xC0, 0x00}));
}

TEST(MqttSession, PingTimeout)
{
    Harness h; // ping timeout 3 s
    h.open(0);
    EXPECT_EQ(h.poll(10000).kind, EventKind::None);
    (void)h.take(10000);
    EXPECT_EQ(h.poll(12999).kind, EventKind::None);
    const Event ev = h.poll(13000);
    EXPECT_EQ(error_of(ev), "no PINGRESP within 3 s");
    EXPECT_EQ(h.s.state(), State::Failed);
    EXPECT_EQ(h.poll(20000).kind, EventKind::None);
}

TEST(MqttSession, UnsolicitedPingrespIsAnError)
{
    Harness h;
    h.open(0);
    h.feed(pingresp());
    EXPECT_EQ(h.poll().kind, EventKind::Error);
}

TEST(MqttSession, ConnackTimeout)
{
    Harness h; // connack timeout 5 s
    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 1000));
    EXPECT_EQ(h.s.next_deadline_ms(), 6000);
    EXPECT_EQ(h.poll(5999).kind, EventKind::None);
    EXPECT_EQ(error_of(h.poll(6000)), "no CONNACK within 5 s");
    EXPECT_EQ(h.s.state(), State::Failed);
    EXPECT_EQ(h.s.next_deadline_ms(), -1);
}

TEST(MqttSession, TimeoutInMilliseconds)
{
    SessionConfig cfg = small_config();
    cfg.connack_timeout_ms = 1500;
    Harness h(cfg);
    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 0));
    EXPECT_EQ(error_of(h.poll(1500)), "no CONNACK within 1500 ms");
}

TEST(MqttSession, KeepaliveZeroDisablesPings)
{
    SessionConfig cfg = small_config();
    cfg.keepalive_s = 0;
    Harness h(cfg);
    h.open(0);
    EXPECT_EQ(h.s.next_deadline_ms(), -1);
    EXPECT_EQ(h.poll(1000000000).kind, EventKind::None);
    EXPECT_TRUE(h.s.pending_output().empty());
}

// ---- lifecycle ----

TEST(MqttSession, CloseAndBeginResetEverything)
{
    Harness h;
    h.open(0);
    ASSERT_TRUE(h.s.publish("t", "x", 1, 7));
    const std::uint16_t id = publish_id(packets(h.take())[0]);
    h.feed(publish("t", "in", 1, 3));
    ASSERT_EQ(h.poll().kind, EventKind::Message);
    ASSERT_TRUE(h.s.publish("t", "unsent", 1, 8));
    h.feed({0x30, 0x05}); // a partial frame
    EXPECT_EQ(h.s.inflight(), 2U);
    EXPECT_EQ(h.s.inbound_pending(), 1U);

    h.s.close();
    EXPECT_EQ(h.s.state(), State::Idle);
    EXPECT_EQ(h.s.inflight(), 0U);
    EXPECT_EQ(h.s.inbound_pending(), 0U);
    EXPECT_TRUE(h.s.pending_output().empty());
    EXPECT_EQ(h.s.next_deadline_ms(), -1);
    EXPECT_EQ(h.poll().kind, EventKind::None);
    EXPECT_FALSE(h.s.ack_inbound(1));

    ConnectParams p;
    p.client_id = "dev";
    ASSERT_TRUE(h.s.begin(p, 100));
    const auto sent = packets(h.take(100));
    ASSERT_EQ(sent.size(), 1U); // only CONNECT: nothing of the old connection
    EXPECT_EQ(sent[0].type(), 1);
    h.feed(connack(0), 100); // the partial frame was forgotten
    ASSERT_EQ(h.poll(100).kind, EventKind::Connected);
    h.feed(puback(id), 100); // the old in-flight publish is forgotten too
    EXPECT_EQ(h.poll(100).kind, EventKind::Error);
}

TEST(MqttSession, BeginAfterFailure)
{
    Harness h;
    h.open(0);
    h.feed(connack(0));
    ASSERT_EQ(h.poll().kind, EventKind::Error);
    ASSERT_EQ(h.s.state(), State::Failed);
    h.open(50);
    EXPECT_EQ(h.s.state(), State::Open);
}

TEST(MqttSession, BeginFailsWhenConnectDoesNotFit)
{
    SessionConfig cfg = small_config();
    Harness h(cfg, 8);
    ConnectParams p;
    p.client_id = "a-long-client-id";
    EXPECT_FALSE(h.s.begin(p, 0));
    EXPECT_EQ(h.s.state(), State::Idle);
    EXPECT_TRUE(h.s.pending_output().empty());
}

TEST(MqttSession, Disconnect)
{
    Harness h;
    h.open(0);
    ASSERT_TRUE(h.s.disconnect());
    EXPECT_EQ(h.take(), (Bytes{0xE0, 0x00}));
}

TEST(MqttSession, PartialWritesKeepOrder)
{
    Harness h;
    h.open(0);
    ASSERT_TRUE(h.s.publish("t", "abc", 0, 0));
    ASSERT_TRUE(h.s.publish("u", "def", 0, 0));
    const Bytes all(h.s.pending_output().begin(), h.s.pending_output().end());
    Bytes got;
    while (!h.s.pending_output().empty())
    {
        got.push_back(h.s.pending_output()[0]);
        h.s.output_written(1, 1);
    }
    EXPECT_EQ(got, all);
    h.s.output_written(5, 1); // nothing left: ignored
    EXPECT_TRUE(h.s.pending_output().empty());
}

} // namespace
