// SPDX-License-Identifier: MIT
// MQTT 3.1.1 codec: exact bytes of every encoder, remaining-length boundaries, and every kind of
// malformed packet a broker could send, through both the splitter and the decoders.
#include "codec.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace
{

using ga::mqtt::Connack;
using ga::mqtt::ConnectParams;
using ga::mqtt::decode_connack;
using ga::mqtt::decode_pingresp;
using ga::mqtt::decode_puback;
using ga::mqtt::decode_publish;
using ga::mqtt::decode_suback;
using ga::mqtt::DecodeError;
using ga::mqtt::describe;
using ga::mqtt::encode_connect;
using ga::mqtt::encode_publish;
using ga::mqtt::encode_subscribe;
using ga::mqtt::Frame;
using ga::mqtt::FrameSplitter;
using ga::mqtt::PacketType;
using ga::mqtt::Publish;
using ga::mqtt::Suback;
using ga::mqtt::Subscription;
using Bytes = std::vector<std::uint8_t>;

Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const Bytes& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

template <typename F> Bytes encoded(F&& f, std::size_t cap = 1024)
{
    Bytes buf(cap);
    const std::size_t n = f(std::span<std::uint8_t>(buf));
    buf.resize(n);
    return buf;
}

struct Split
{
    FrameSplitter::Status status = FrameSplitter::Status::NeedMore;
    DecodeError error = DecodeError::None;
    Frame frame;
};

// Feeds `in` to a fresh splitter in one piece and returns the first result.
class OneShot
{
  public:
    explicit OneShot(const Bytes& in, std::size_t max_packet = 4096)
        : buf_(std::max<std::size_t>(max_packet, 8)), split_(buf_, max_packet)
    {
        std::span<std::uint8_t> space = split_.free_space();
        const std::size_t n = std::min(space.size(), in.size());
        std::copy_n(in.begin(), n, space.begin());
        split_.received(n);
        result_.status = split_.next(result_.frame, result_.error);
    }
    const Split& result() const { return result_; }

  private:
    std::vector<std::uint8_t> buf_;
    FrameSplitter split_;
    Split result_;
};

Frame frame(PacketType t, std::uint8_t flags, const Bytes& body)
{
    Frame f;
    f.type = t;
    f.flags = flags;
    f.body = body;
    return f;
}

// ---- encoders ----

TEST(MqttEncode, ConnectMinimal)
{
    ConnectParams p;
    p.client_id = "dev";
    p.keepalive_s = 60;
    p.clean_session = false;
    const Bytes want = {0x10, 15,   0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                        0x00, 0x00, 60,   0x00, 0x03, 'd', 'e', 'v'};
    EXPECT_EQ(encoded([&](auto out) { return encode_connect(p, out); }), want);
}

TEST(MqttEncode, ConnectUserPasswordClean)
{
    ConnectParams p;
    p.client_id = "c";
    p.username = "u";
    p.password = "pw";
    p.keepalive_s = 0x1234;
    p.clean_session = true;
    const Bytes want = {0x10, 20,   0x00, 0x04, 'M',  'Q', 'T', 'T',  0x04, 0xC2, 0x12,
                        0x34, 0x00, 0x01, 'c',  0x00, 1,   'u', 0x00, 0x02, 'p',  'w'};
    EXPECT_EQ(encoded([&](auto out) { return encode_connect(p, out); }), want);
}

TEST(MqttEncode, ConnectUserOnlyAndRefusals)
{
    ConnectParams p;
    p.client_id = "c";
    p.username = "u";
    const Bytes got = encoded([&](auto out) { return encode_connect(p, out); });
    ASSERT_EQ(got.size(), 18U);
    EXPECT_EQ(got[9], 0x80); // user name flag only
    // A password without a user name is not allowed in 3.1.1.
    ConnectParams q;
    q.client_id = "c";
    q.password = "pw";
    EXPECT_EQ(encoded([&](auto out) { return encode_connect(q, out); }).size(), 0U);
    // Too small a buffer, by one byte.
    EXPECT_EQ(encoded([&](auto out) { return encode_connect(p, out); }, 17).size(), 0U);
    const std::string huge(65536, 'x');
    ConnectParams r;
    r.client_id = huge;
    EXPECT_EQ(encoded([&](auto out) { return encode_connect(r, out); }, 70000).size(), 0U);
}

TEST(MqttEncode, PublishQos0)
{
    const Bytes want = {0x30, 7, 0x00, 0x02, 'a', '/', 'h', 'i', '!'};
    EXPECT_EQ(encoded([](auto out) { return encode_publish("a/", "hi!", 0, 0, false, out); }),
              want);
    EXPECT_EQ(ga::mqtt::publish_size(2, 3, 0), want.size());
}

TEST(MqttEncode, PublishQos1AndDup)
{
    const Bytes want = {0x32, 7, 0x00, 0x01, 't', 0xAB, 0xCD, 'x', 'y'};
    EXPECT_EQ(encoded([](auto out) { return encode_publish("t", "xy", 1, 0xABCD, false, out); }),
              want);
    const Bytes dup = {0x3A, 7, 0x00, 0x01, 't', 0x00, 0x07, 'x', 'y'};
    EXPECT_EQ(encoded([](auto out) { return encode_publish("t", "xy", 1, 7, true, out); }), dup);
    EXPECT_EQ(ga::mqtt::publish_size(1, 2, 1), dup.size());
    // Empty payload is fine.
    const Bytes empty = {0x32, 5, 0x00, 0x01, 't', 0x00, 0x01};
    EXPECT_EQ(encoded([](auto out) { return encode_publish("t", "", 1, 1, false, out); }), empty);
}

TEST(MqttEncode, PublishRefusals)
{
    auto size = [](std::string_view topic, std::uint8_t qos, std::uint16_t id, bool dup,
                   std::size_t cap = 64)
    {
        return encoded([&](auto out) { return encode_publish(topic, "p", qos, id, dup, out); }, cap)
            .size();
    };
    EXPECT_EQ(size("t", 1, 0, false), 0U);         // QoS 1 needs an id
    EXPECT_EQ(size("t", 2, 1, false), 0U);         // no QoS 2
    EXPECT_EQ(size("t", 0, 0, true), 0U);          // DUP at QoS 0
    EXPECT_EQ(size("", 0, 0, false), 0U);          // empty topic
    EXPECT_EQ(size("a/+", 0, 0, false), 0U);       // wildcards
    EXPECT_EQ(size("a/#", 0, 0, false), 0U);       // wildcards
    EXPECT_EQ(size("a\xC0\x80", 0, 0, false), 0U); // overlong NUL
    EXPECT_EQ(size("t", 1, 1, false, 7), 0U);      // one byte short
    EXPECT_EQ(size("t", 1, 1, false, 8), 8U);
}

TEST(MqttEncode, PubackPingDisconnect)
{
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_puback(0x0102, out); }),
              (Bytes{0x40, 0x02, 0x01, 0x02}));
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_puback(0, out); }).size(), 0U);
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_puback(1, out); }, 3).size(), 0U);
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_pingreq(out); }), (Bytes{0xC0, 0x00}));
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_disconnect(out); }),
              (Bytes{0xE0, 0x00}));
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_pingreq(out); }, 1).size(), 0U);
    EXPECT_EQ(encoded([](auto out) { return ga::mqtt::encode_disconnect(out); }, 1).size(), 0U);
}

TEST(MqttEncode, Subscribe)
{
    const std::array subs{Subscription{"a/#", 1}, Subscription{"b/+/c", 0}};
    const Bytes want = {0x82, 16,   0x00, 0x05, 0x00, 0x03, 'a', '/', '#',
                        0x01, 0x00, 0x05, 'b',  '/',  '+',  '/', 'c', 0x00};
    EXPECT_EQ(encoded([&](auto out) { return encode_subscribe(5, subs, out); }), want);
}

TEST(MqttEncode, SubscribeRefusals)
{
    auto size = [](std::uint16_t id, std::string_view filter, std::uint8_t qos)
    {
        const std::array subs{Subscription{filter, qos}};
        return encoded([&](auto out) { return encode_subscribe(id, subs, out); }).size();
    };
    EXPECT_EQ(size(0, "a", 0), 0U);
    EXPECT_EQ(size(1, "a", 2), 0U); // we refuse QoS 2 deliveries, so never ask for them
    EXPECT_EQ(size(1, "", 0), 0U);
    EXPECT_EQ(size(1, "a#", 0), 0U);
    EXPECT_EQ(size(1, "a/#/b", 0), 0U);
    EXPECT_EQ(size(1, "a+/b", 0), 0U);
    EXPECT_EQ(size(1, "#", 0), 8U);
    EXPECT_EQ(size(1, "+/+", 1), 10U);
    EXPECT_EQ(encoded([](auto out) { return encode_subscribe(1, {}, out); }).size(), 0U);
}

TEST(MqttEncode, RemainingLengthBoundaries)
{
    // Body = 2 (topic length) + 1 (topic) + payload. Sizes at each length-byte boundary.
    struct Case
    {
        std::size_t remaining;
        Bytes header;
    };
    const std::array cases{
        Case{127, {0x30, 0x7F}},
        Case{128, {0x30, 0x80, 0x01}},
        Case{16383, {0x30, 0xFF, 0x7F}},
        Case{16384, {0x30, 0x80, 0x80, 0x01}},
        Case{2097151, {0x30, 0xFF, 0xFF, 0x7F}},
        Case{2097152, {0x30, 0x80, 0x80, 0x80, 0x01}},
    };
    for (const Case& c : cases)
    {
        const std::string payload(c.remaining - 3, 'p');
        Bytes buf(c.remaining + 8);
        const std::size_t n = ga::mqtt::encode_publish("t", payload, 0, 0, false, buf);
        ASSERT_EQ(n, c.header.size() + c.remaining) << c.remaining;
        EXPECT_EQ(ga::mqtt::publish_size(1, payload.size(), 0), n);
        EXPECT_TRUE(std::equal(c.header.begin(), c.header.end(), buf.begin())) << c.remaining;
        // And the splitter reads it back.
        buf.resize(n);
        OneShot s(buf, n);
        ASSERT_EQ(s.result().status, FrameSplitter::Status::Frame) << c.remaining;
        EXPECT_EQ(s.result().frame.body.size(), c.remaining);
        Publish p;
        ASSERT_EQ(decode_publish(s.result().frame, p), DecodeError::None);
        EXPECT_EQ(p.payload, payload);
    }
    EXPECT_EQ(ga::mqtt::publish_size(1, 268435455U, 0), 0U); // over 4 length bytes
    EXPECT_EQ(ga::mqtt::publish_size(65536, 0, 0), 0U);
}

// ---- UTF-8 ----

TEST(MqttUtf8, Rules)
{
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8(""));
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("plain/ascii"));
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("\xC3\xA9"));         // é
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("\xE2\x82\xAC"));     // €
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("\xF0\x9F\x98\x80")); // U+1F600
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("\xF4\x8F\xBF\xBF")); // U+10FFFF
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8("\xED\x9F\xBF"));     // U+D7FF
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8(std::string_view("a\0b", 3)));
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xC0\x80"));         // overlong NUL
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xC1\xBF"));         // overlong
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xE0\x80\xAF"));     // overlong '/'
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xF0\x8F\xBF\xBF")); // overlong
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xED\xA0\x80"));     // U+D800
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xED\xBF\xBF"));     // U+DFFF
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xF4\x90\x80\x80")); // past U+10FFFF
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\x80"));             // lone continuation
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xC3"));             // truncated
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xE2\x82"));         // truncated
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xC3("));            // bad continuation
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xF8\x88\x80\x80\x80"));
    EXPECT_FALSE(ga::mqtt::is_mqtt_utf8("\xFF"));
}

// ASCII is checked eight bytes at a time: a NUL or a bad sequence is found at every position
// of long strings, and good multi-byte characters anywhere are accepted.
TEST(MqttUtf8, LongStringsAtEveryPosition)
{
    const std::string base(40, 'a');
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8(base));
    for (std::size_t at = 0; at < base.size(); ++at)
    {
        std::string nul = base;
        nul[at] = '\0';
        EXPECT_FALSE(ga::mqtt::is_mqtt_utf8(nul)) << at;
        std::string lone = base;
        lone[at] = '\x80';
        EXPECT_FALSE(ga::mqtt::is_mqtt_utf8(lone)) << at;
        std::string good = base;
        good.insert(at, "\xE2\x82\xAC");
        EXPECT_TRUE(ga::mqtt::is_mqtt_utf8(good)) << at;
        std::string cut = base;
        cut.insert(at, "\xE2\x82");
        EXPECT_FALSE(ga::mqtt::is_mqtt_utf8(cut)) << at;
    }
    // 0x7F and 0x01 are valid ASCII, next to the word test's limits.
    EXPECT_TRUE(ga::mqtt::is_mqtt_utf8(std::string(17, '\x7F') + std::string(9, '\x01')));
}

// ---- splitter ----

TEST(MqttSplit, ByteByByteAndManyInOneRead)
{
    const Bytes connack = {0x20, 0x02, 0x01, 0x00};
    const Bytes pub = {0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x09, 'X'};
    const Bytes suback = {0x90, 0x03, 0x00, 0x02, 0x01};
    const Bytes ping = {0xD0, 0x00};
    const Bytes stream = cat({connack, pub, suback, ping, pub});
    const std::vector<Bytes> want_bodies = {
        Bytes(connack.begin() + 2, connack.end()), Bytes(pub.begin() + 2, pub.end()),
        Bytes(suback.begin() + 2, suback.end()), Bytes{}, Bytes(pub.begin() + 2, pub.end())};
    const std::vector<PacketType> want_types = {PacketType::Connack, PacketType::Publish,
                                                PacketType::Suback, PacketType::Pingresp,
                                                PacketType::Publish};

    for (const std::size_t chunk : {std::size_t{1}, std::size_t{3}, stream.size()})
    {
        // A buffer exactly one max packet long: compaction must keep it working.
        Bytes buf(12);
        FrameSplitter s(buf, 12);
        std::size_t fed = 0;
        std::size_t got = 0;
        while (fed < stream.size() || got < want_types.size())
        {
            Frame f;
            DecodeError e = DecodeError::None;
            const auto st = s.next(f, e);
            ASSERT_NE(st, FrameSplitter::Status::Error) << describe(e);
            if (st == FrameSplitter::Status::Frame)
            {
                ASSERT_LT(got, want_types.size());
                EXPECT_EQ(f.type, want_types[got]);
                EXPECT_EQ(Bytes(f.body.begin(), f.body.end()), want_bodies[got]);
                ++got;
                continue;
            }
            ASSERT_LT(fed, stream.size()) << "NeedMore with nothing left to feed";
            auto space = s.free_space();
            ASSERT_FALSE(space.empty());
            const std::size_t n = std::min({chunk, space.size(), stream.size() - fed});
            std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
            s.received(n);
            fed += n;
        }
        EXPECT_EQ(got, want_types.size());
        EXPECT_EQ(s.buffered(), 0U);
    }
}

TEST(MqttSplit, AllInOneBigBuffer)
{
    const Bytes ping = {0xD0, 0x00};
    Bytes stream;
    for (int i = 0; i < 100; ++i)
        stream.insert(stream.end(), ping.begin(), ping.end());
    OneShot first(stream, 4096);
    EXPECT_EQ(first.result().status, FrameSplitter::Status::Frame);

    Bytes buf(256);
    FrameSplitter s(buf, 256);
    auto space = s.free_space();
    std::copy_n(stream.begin(), 200, space.begin());
    s.received(200);
    int frames = 0;
    Frame f;
    DecodeError e = DecodeError::None;
    while (s.next(f, e) == FrameSplitter::Status::Frame)
        ++frames;
    EXPECT_EQ(frames, 100);
    EXPECT_EQ(e, DecodeError::None);
}

TEST(MqttSplit, FullBufferOfUnreadFramesHasNoSpace)
{
    Bytes buf(4);
    FrameSplitter s(buf, 4);
    auto space = s.free_space();
    ASSERT_EQ(space.size(), 4U);
    const Bytes two_pings = {0xD0, 0x00, 0xD0, 0x00};
    std::copy(two_pings.begin(), two_pings.end(), space.begin());
    s.received(4);
    EXPECT_TRUE(s.free_space().empty());
    Frame f;
    DecodeError e = DecodeError::None;
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(s.free_space().size(), 2U);
}

TEST(MqttSplit, TooLarge)
{
    // A PUBLISH of 11 bytes in all against a max of 10.
    const Bytes pub = {0x30, 0x09, 0x00, 0x01, 't', 'p', 'p', 'p', 'p', 'p', 'p'};
    EXPECT_EQ(OneShot(pub, 11).result().status, FrameSplitter::Status::Frame);
    const OneShot s(pub, 10);
    EXPECT_EQ(s.result().status, FrameSplitter::Status::Error);
    EXPECT_EQ(s.result().error, DecodeError::TooLarge);
    // Known from the header alone, before the body arrives.
    EXPECT_EQ(OneShot(Bytes{0x30, 0x09}, 10).result().error, DecodeError::TooLarge);
    // And from a partial length: 0x80 0x80 means at least 16384.
    EXPECT_EQ(OneShot(Bytes{0x30, 0x80, 0x80}, 100).result().error, DecodeError::TooLarge);
    EXPECT_EQ(OneShot(Bytes{0x30, 0x80}, 100).result().error, DecodeError::TooLarge);
    EXPECT_EQ(OneShot(Bytes{0x30, 0x80}, 200).result().status, FrameSplitter::Status::NeedMore);
}

TEST(MqttSplit, BadRemainingLength)
{
    auto err = [](const Bytes& in) { return OneShot(in, 4096).result().error; };
    EXPECT_EQ(err({0xD0, 0x80, 0x00}), DecodeError::BadRemainingLength);
    EXPECT_EQ(err({0xD0, 0x80, 0x80, 0x00}), DecodeError::BadRemainingLength);
    EXPECT_EQ(err({0xD0, 0xFF, 0x80, 0x80, 0x00}), DecodeError::BadRemainingLength);
    EXPECT_EQ(err({0xD0, 0x80, 0x80, 0x80, 0x80, 0x01}), DecodeError::BadRemainingLength);
    EXPECT_EQ(err({0xD0, 0xFF, 0xFF, 0xFF, 0xFF}), DecodeError::BadRemainingLength);
    // The largest legal length is well-formed, just too large.
    EXPECT_EQ(err({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), DecodeError::TooLarge);
}

TEST(MqttSplit, BadTypesAndFlags)
{
    auto err = [](int first) {
        return OneShot(Bytes{static_cast<std::uint8_t>(first), 0x00}).result().error;
    };
    // Types a server never sends, reserved types, and the QoS 2 flow we never use.
    for (const int t : {0x00, 0x10, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xC0, 0xE0, 0xF0})
        EXPECT_EQ(err(t), DecodeError::BadType) << t;
    // §2.2.2: reserved flags must be 0 for these.
    for (const int t : {0x21, 0x42, 0x94, 0xB8, 0xD1})
        EXPECT_EQ(err(t), DecodeError::BadFlags) << t;
    EXPECT_EQ(err(0x36), DecodeError::BadQos); // QoS 3
    EXPECT_EQ(err(0x34), DecodeError::BadQos); // QoS 2
    EXPECT_EQ(err(0x38), DecodeError::BadQos); // DUP at QoS 0
    // Reported as soon as the first byte is in, and again when asked again.
    Bytes buf(16);
    FrameSplitter s(buf, 16);
    s.free_space()[0] = 0xF0;
    s.received(1);
    Frame f;
    DecodeError e = DecodeError::None;
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Error);
    EXPECT_EQ(e, DecodeError::BadType);
    e = DecodeError::None;
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Error);
    EXPECT_EQ(e, DecodeError::BadType);
    EXPECT_TRUE(s.free_space().empty());
    s.reset();
    EXPECT_EQ(s.free_space().size(), 16U);
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::NeedMore);
}

TEST(MqttSplit, ErrorAfterGoodFramesKeepsTheGoodOnes)
{
    const Bytes in = {0xD0, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x00};
    Bytes buf(16);
    FrameSplitter s(buf, 16);
    std::copy(in.begin(), in.end(), s.free_space().begin());
    s.received(in.size());
    Frame f;
    DecodeError e = DecodeError::None;
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::Error);
    EXPECT_EQ(e, DecodeError::BadType);
}

TEST(MqttSplit, OversizedPublishSkipped)
{
    // With skip_oversize a PUBLISH over the maximum comes out as its variable header alone.
    const std::string payload(3000, 'p');
    Bytes big(4000);
    big.resize(encode_publish("a/b", payload, 1, 0x0102, true, big));
    ASSERT_EQ(big.size(), 1U + 2U + 2U + 3U + 2U + 3000U);
    const Bytes ping = {0xD0, 0x00};
    const Bytes small = {0x30, 0x04, 0x00, 0x01, 't', 'x'};
    const Bytes stream = cat({small, big, ping, big, small});
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{64}, stream.size()})
    {
        Bytes buf(64);
        FrameSplitter s(buf, 32, true);
        std::size_t fed = 0;
        std::vector<PacketType> types;
        std::vector<std::size_t> discarded;
        for (;;)
        {
            Frame f;
            DecodeError e = DecodeError::None;
            const auto st = s.next(f, e);
            ASSERT_NE(st, FrameSplitter::Status::Error) << describe(e);
            if (st == FrameSplitter::Status::Frame)
            {
                types.push_back(f.type);
                discarded.push_back(f.discarded);
                if (f.discarded > 0)
                {
                    Publish p;
                    ASSERT_EQ(decode_publish(f, p), DecodeError::None);
                    EXPECT_EQ(p.topic, "a/b");
                    EXPECT_TRUE(p.payload.empty());
                    EXPECT_EQ(p.oversize, 3000U);
                    EXPECT_EQ(p.packet_id, 0x0102);
                    EXPECT_TRUE(p.dup);
                    EXPECT_EQ(f.body.size(), 7U);
                }
                continue;
            }
            if (fed == stream.size())
                break;
            // Room is offered while the payload is dropped: it needs none.
            const auto space = s.free_space();
            ASSERT_FALSE(space.empty());
            const std::size_t n = std::min({chunk, space.size(), stream.size() - fed});
            std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(fed), n, space.begin());
            s.received(n);
            fed += n;
        }
        EXPECT_EQ(types, (std::vector<PacketType>{PacketType::Publish, PacketType::Publish,
                                                  PacketType::Pingresp, PacketType::Publish,
                                                  PacketType::Publish}))
            << chunk;
        EXPECT_EQ(discarded, (std::vector<std::size_t>{0, 3000, 0, 3000, 0})) << chunk;
        EXPECT_EQ(s.buffered(), 0U);
        EXPECT_EQ(s.discarding(), 0U);
    }
}

TEST(MqttSplit, OversizedPublishDiscardingAcrossReads)
{
    Bytes big(4000);
    big.resize(encode_publish("t", std::string(1000, 'p'), 0, 0, false, big));
    ASSERT_EQ(big.size(), 1U + 2U + 3U + 1000U);
    Bytes buf(32);
    FrameSplitter s(buf, 32, true);
    auto feed = [&s](const Bytes& in, std::size_t from, std::size_t to)
    {
        const auto space = s.free_space();
        ASSERT_GE(space.size(), to - from);
        std::copy(in.begin() + static_cast<std::ptrdiff_t>(from),
                  in.begin() + static_cast<std::ptrdiff_t>(to), space.begin());
        s.received(to - from);
    };
    Frame f;
    DecodeError e = DecodeError::None;
    feed(big, 0, 5); // header and the topic length, not the topic yet
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::NeedMore);
    feed(big, 5, 20);
    ASSERT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(f.discarded, 1000U);
    EXPECT_EQ(f.body.size(), 3U);
    EXPECT_EQ(s.buffered(), 0U); // the 14 payload bytes in are dropped already
    EXPECT_EQ(s.discarding(), 1000U - 14U);
    EXPECT_EQ(s.next(f, e), FrameSplitter::Status::NeedMore);
    for (std::size_t at = 20; at < big.size(); at += 32)
        feed(big, at, std::min(at + 32, big.size())); // no next() needed in between
    EXPECT_EQ(s.discarding(), 0U);
    EXPECT_EQ(s.buffered(), 0U);
    feed(Bytes{0xD0, 0x00}, 0, 2);
    ASSERT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(f.type, PacketType::Pingresp);
    EXPECT_EQ(f.discarded, 0U);
    // reset() forgets what was still to drop.
    feed(big, 0, 20);
    ASSERT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_GT(s.discarding(), 0U);
    s.reset();
    EXPECT_EQ(s.discarding(), 0U);
    feed(Bytes{0xD0, 0x00}, 0, 2);
    ASSERT_EQ(s.next(f, e), FrameSplitter::Status::Frame);
    EXPECT_EQ(f.type, PacketType::Pingresp);
}

TEST(MqttSplit, OversizedErrors)
{
    auto run = [](const Bytes& in, std::size_t buffer, std::size_t max_packet)
    {
        Bytes buf(buffer);
        FrameSplitter s(buf, max_packet, true);
        const auto space = s.free_space();
        const std::size_t n = std::min(space.size(), in.size());
        std::copy_n(in.begin(), n, space.begin());
        s.received(n);
        Split r;
        r.status = s.next(r.frame, r.error);
        if (r.status == FrameSplitter::Status::Error)
        {
            // Asked again, the same answer, and no more room.
            DecodeError again = DecodeError::None;
            EXPECT_EQ(s.next(r.frame, again), FrameSplitter::Status::Error);
            EXPECT_EQ(again, r.error);
            EXPECT_TRUE(s.free_space().empty());
        }
        return r;
    };
    // Other packets over the maximum stay TooLarge, even from a partial length.
    EXPECT_EQ(run({0x90, 0x40}, 64, 32).error, DecodeError::TooLarge);
    EXPECT_EQ(run({0x90, 0x80}, 64, 32).error, DecodeError::TooLarge);
    EXPECT_EQ(run({0x20, 0xFF, 0xFF, 0xFF, 0x7F}, 64, 32).error, DecodeError::TooLarge);
    // A PUBLISH of any encodable length waits for its topic; more length bytes are still wrong.
    EXPECT_EQ(run({0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 64, 32).status, FrameSplitter::Status::NeedMore);
    EXPECT_EQ(run({0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 't'}, 64, 32).frame.discarded,
              268435455U - 3U);
    EXPECT_EQ(run({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 64, 32).error,
              DecodeError::BadRemainingLength);
    EXPECT_EQ(run({0x30, 0x80, 0x80, 0x00}, 64, 32).error, DecodeError::BadRemainingLength);
    EXPECT_EQ(run({0x34, 0x80, 0x01}, 64, 32).error, DecodeError::BadQos);
    // The topic must fit the buffer (not the maximum): 3 + 2 + 59 = 64 fits, 65 does not.
    Bytes fits = {0x30, 0x80, 0x01, 0x00, 59};
    fits.resize(64, 't');
    EXPECT_EQ(run(fits, 64, 32).frame.body.size(), 61U);
    EXPECT_EQ(run({0x30, 0x80, 0x01, 0x00, 60}, 64, 32).error, DecodeError::TooLarge);
    EXPECT_EQ(run({0x32, 0x80, 0x01, 0x00, 58}, 64, 32).error, DecodeError::TooLarge); // + id
    // A topic (and packet id) longer than the packet.
    EXPECT_EQ(run({0x30, 0x21, 0x00, 0x20}, 64, 32).error, DecodeError::BadLength);
    EXPECT_EQ(run({0x32, 0x21, 0x00, 0x1F}, 64, 32).error, DecodeError::BadLength);
    // A buffer too small for the fixed header and topic length cannot go on.
    EXPECT_EQ(run({0x30, 0x80, 0x80, 0x01}, 4, 4).error, DecodeError::TooLarge);
    EXPECT_EQ(run({0x30, 0x80, 0x01, 0x00}, 4, 4).error, DecodeError::TooLarge);
    // Without skip_oversize nothing changed.
    EXPECT_EQ(OneShot(Bytes{0x30, 0x80, 0x01, 0x00, 0x01, 't'}, 32).result().error,
              DecodeError::TooLarge);
}

// ---- decoders ----

TEST(MqttDecode, Connack)
{
    Connack c;
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x01, 0x00}), c), DecodeError::None);
    EXPECT_TRUE(c.session_present);
    EXPECT_EQ(c.return_code, 0);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x00, 0x05}), c), DecodeError::None);
    EXPECT_FALSE(c.session_present);
    EXPECT_EQ(c.return_code, 5);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x00, 0x06}), c),
              DecodeError::BadReturnCode);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x02, 0x00}), c),
              DecodeError::BadFlags);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x01, 0x04}), c),
              DecodeError::BadFlags); // a refusal never has a session
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x00}), c), DecodeError::BadLength);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 0, {0x00, 0x00, 0x00}), c),
              DecodeError::BadLength);
    EXPECT_EQ(decode_connack(frame(PacketType::Connack, 1, {0x00, 0x00}), c),
              DecodeError::BadFlags);
    EXPECT_EQ(decode_connack(frame(PacketType::Puback, 0, {0x00, 0x01}), c), DecodeError::BadType);
}

TEST(MqttDecode, Puback)
{
    std::uint16_t id = 0;
    EXPECT_EQ(decode_puback(frame(PacketType::Puback, 0, {0x12, 0x34}), id), DecodeError::None);
    EXPECT_EQ(id, 0x1234);
    EXPECT_EQ(decode_puback(frame(PacketType::Puback, 0, {0x00, 0x00}), id),
              DecodeError::ZeroPacketId);
    EXPECT_EQ(decode_puback(frame(PacketType::Puback, 0, {0x00}), id), DecodeError::BadLength);
    EXPECT_EQ(decode_puback(frame(PacketType::Puback, 0, {0x00, 0x01, 0x00}), id),
              DecodeError::BadLength);
    EXPECT_EQ(decode_puback(frame(PacketType::Puback, 2, {0x00, 0x01}), id), DecodeError::BadFlags);
    EXPECT_EQ(decode_puback(frame(PacketType::Pubrec, 0, {0x00, 0x01}), id), DecodeError::BadType);
    EXPECT_EQ(decode_puback(frame(PacketType::Pubcomp, 0, {0x00, 0x01}), id), DecodeError::BadType);
}

TEST(MqttDecode, Pingresp)
{
    EXPECT_EQ(decode_pingresp(frame(PacketType::Pingresp, 0, {})), DecodeError::None);
    EXPECT_EQ(decode_pingresp(frame(PacketType::Pingresp, 0, {0x00})), DecodeError::BadLength);
    EXPECT_EQ(decode_pingresp(frame(PacketType::Pingresp, 8, {})), DecodeError::BadFlags);
    EXPECT_EQ(decode_pingresp(frame(PacketType::Pingreq, 0, {})), DecodeError::BadType);
}

TEST(MqttDecode, Suback)
{
    Suback s;
    const Bytes body = {0x00, 0x07, 0x00, 0x01, 0x02, 0x80};
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 0, body), s), DecodeError::None);
    EXPECT_EQ(s.packet_id, 7);
    EXPECT_EQ(Bytes(s.return_codes.begin(), s.return_codes.end()), (Bytes{0x00, 0x01, 0x02, 0x80}));
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 0, {0x00, 0x07}), s), DecodeError::BadLength);
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 0, {0x00, 0x00, 0x00}), s),
              DecodeError::ZeroPacketId);
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 0, {0x00, 0x01, 0x03}), s),
              DecodeError::BadReturnCode);
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 0, {0x00, 0x01, 0x81}), s),
              DecodeError::BadReturnCode);
    EXPECT_EQ(decode_suback(frame(PacketType::Suback, 2, {0x00, 0x01, 0x00}), s),
              DecodeError::BadFlags);
    EXPECT_EQ(decode_suback(frame(PacketType::Unsuback, 0, {0x00, 0x01, 0x00}), s),
              DecodeError::BadType);
}

TEST(MqttDecode, PublishGood)
{
    Publish p;
    const Bytes body = {0x00, 0x03, 'a', '/', 'b', 0x01, 0x02, 'h', 'i'};
    ASSERT_EQ(decode_publish(frame(PacketType::Publish, 0x0B, body), p), DecodeError::None);
    EXPECT_EQ(p.topic, "a/b");
    EXPECT_EQ(p.payload, "hi");
    EXPECT_EQ(p.qos, 1);
    EXPECT_TRUE(p.dup);
    EXPECT_TRUE(p.retain);
    EXPECT_EQ(p.packet_id, 0x0102);
    // Views point into the body.
    EXPECT_EQ(static_cast<const void*>(p.topic.data()), static_cast<const void*>(&body[2]));
    EXPECT_EQ(static_cast<const void*>(p.payload.data()), static_cast<const void*>(&body[7]));

    const Bytes q0 = {0x00, 0x01, 't'};
    ASSERT_EQ(decode_publish(frame(PacketType::Publish, 0, q0), p), DecodeError::None);
    EXPECT_EQ(p.topic, "t");
    EXPECT_TRUE(p.payload.empty());
    EXPECT_EQ(p.qos, 0);
    EXPECT_FALSE(p.dup);
    EXPECT_FALSE(p.retain);
    EXPECT_EQ(p.packet_id, 0);
}

TEST(MqttDecode, PublishBad)
{
    Publish p;
    auto err = [&p](std::uint8_t flags, const Bytes& body)
    { return decode_publish(frame(PacketType::Publish, flags, body), p); };
    EXPECT_EQ(err(0x06, {0x00, 0x01, 't', 0x00, 0x01}), DecodeError::BadQos); // QoS 3
    EXPECT_EQ(err(0x04, {0x00, 0x01, 't', 0x00, 0x01}), DecodeError::BadQos); // QoS 2
    EXPECT_EQ(err(0x08, {0x00, 0x01, 't'}), DecodeError::BadQos);             // DUP at QoS 0
    EXPECT_EQ(err(0x00, {0x00}), DecodeError::BadLength);
    EXPECT_EQ(err(0x00, {0x00, 0x05, 't'}), DecodeError::BadLength);
    EXPECT_EQ(err(0x02, {0x00, 0x01, 't', 0x00}), DecodeError::BadLength); // id cut short
    EXPECT_EQ(err(0x02, {0x00, 0x01, 't', 0x00, 0x00}), DecodeError::ZeroPacketId);
    EXPECT_EQ(err(0x00, {0x00, 0x00, 'x'}), DecodeError::BadTopic);              // empty
    EXPECT_EQ(err(0x00, {0x00, 0x02, 'a', '+'}), DecodeError::BadTopic);         // wildcard
    EXPECT_EQ(err(0x00, {0x00, 0x01, '#'}), DecodeError::BadTopic);              // wildcard
    EXPECT_EQ(err(0x00, {0x00, 0x02, 'a', 0x00}), DecodeError::BadTopic);        // U+0000
    EXPECT_EQ(err(0x00, {0x00, 0x02, 0xC0, 0x80}), DecodeError::BadTopic);       // overlong
    EXPECT_EQ(err(0x00, {0x00, 0x03, 0xED, 0xA0, 0x80}), DecodeError::BadTopic); // surrogate
    EXPECT_EQ(err(0x00, {0x00, 0x01, 0xFF}), DecodeError::BadTopic);
    EXPECT_EQ(decode_publish(frame(PacketType::Puback, 0, {0x00, 0x01, 't'}), p),
              DecodeError::BadType);
    // An oversized PUBLISH frame carries its variable header alone.
    const Bytes body = {0x00, 0x01, 't', 'x'};
    Frame f = frame(PacketType::Publish, 0, body);
    f.discarded = 10;
    EXPECT_EQ(decode_publish(f, p), DecodeError::BadLength);
    f.body = std::span<const std::uint8_t>(body).first(3);
    ASSERT_EQ(decode_publish(f, p), DecodeError::None);
    EXPECT_EQ(p.oversize, 10U);
    EXPECT_TRUE(p.payload.empty());
}

TEST(MqttDecode, PublishRoundTrip)
{
    const std::string payload(300, '\x00');
    Bytes buf(512);
    const std::size_t n = ga::mqtt::encode_publish("x/\xC3\xA9", payload, 1, 42, true, buf);
    ASSERT_GT(n, 0U);
    buf.resize(n);
    OneShot s(buf, 512);
    ASSERT_EQ(s.result().status, FrameSplitter::Status::Frame);
    Publish p;
    ASSERT_EQ(decode_publish(s.result().frame, p), DecodeError::None);
    EXPECT_EQ(p.topic, "x/\xC3\xA9");
    EXPECT_EQ(p.payload, payload);
    EXPECT_EQ(p.packet_id, 42);
    EXPECT_TRUE(p.dup);
}

TEST(MqttDecode, DescribeEveryError)
{
    for (int e = 0; e <= static_cast<int>(DecodeError::BadReturnCode); ++e)
    {
        const char* text = describe(static_cast<DecodeError>(e));
        ASSERT_NE(text, nullptr);
        EXPECT_GT(std::string(text).size(), 3U);
    }
}

} // namespace
