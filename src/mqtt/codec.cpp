// SPDX-License-Identifier: MIT
#include "codec.h"

#include <algorithm>
#include <cstring>

namespace ga::mqtt
{
namespace
{

constexpr std::size_t kMaxString = 65535U;
constexpr std::size_t kMaxRemaining = 268435455U; // 4 length bytes (§2.2.3)
constexpr std::size_t kMaxLengthBytes = 4U;
constexpr std::uint8_t kConnectUser = 0x80U;
constexpr std::uint8_t kConnectPassword = 0x40U;
constexpr std::uint8_t kConnectClean = 0x02U;
constexpr std::uint8_t kPublishDup = 0x08U;
constexpr std::uint8_t kPublishRetain = 0x01U;
constexpr std::uint8_t kProtocolLevel = 4U; // 3.1.1
constexpr std::uint8_t kMaxConnackCode = 5U;
constexpr std::uint8_t kSubackFailure = 0x80U;

constexpr std::uint8_t fixed_byte(PacketType t, std::uint8_t flags)
{
    return static_cast<std::uint8_t>((static_cast<unsigned>(t) << 4U) | flags);
}

std::size_t length_bytes(std::size_t remaining)
{
    std::size_t n = 1;
    while (remaining >= 128U)
    {
        remaining >>= 7U;
        ++n;
    }
    return n;
}

// Appends to a fixed span; the caller sizes the packet first, so a short buffer is caught once,
// up front, and the writes below cannot overrun.
class Writer
{
  public:
    explicit Writer(std::span<std::uint8_t> out) : out_(out) {}

    void byte(std::uint8_t b) { out_[pos_++] = b; }
    void u16(std::uint16_t v)
    {
        byte(static_cast<std::uint8_t>(v >> 8U));
        byte(static_cast<std::uint8_t>(v & 0xFFU));
    }
    void bytes(std::string_view s)
    {
        if (!s.empty())
        {
            std::memcpy(out_.data() + pos_, s.data(), s.size());
            pos_ += s.size();
        }
    }
    void str(std::string_view s)
    {
        u16(static_cast<std::uint16_t>(s.size()));
        bytes(s);
    }
    void remaining(std::size_t v)
    {
        do
        {
            auto b = static_cast<std::uint8_t>(v & 0x7FU);
            v >>= 7U;
            if (v != 0)
            {
                b = static_cast<std::uint8_t>(b | 0x80U);
            }
            byte(b);
        } while (v != 0);
    }
    [[nodiscard]] std::size_t size() const { return pos_; }

  private:
    std::span<std::uint8_t> out_;
    std::size_t pos_ = 0;
};

// Total packet size for a body of `remaining` bytes, or 0 when it cannot be encoded.
std::size_t packet_size(std::size_t remaining)
{
    if (remaining > kMaxRemaining)
    {
        return 0;
    }
    return 1U + length_bytes(remaining) + remaining;
}

// Reads a big-endian u16 at `p` (the caller checked the length).
std::uint16_t read_u16(const std::uint8_t* p)
{
    return static_cast<std::uint16_t>((static_cast<unsigned>(p[0]) << 8U) | p[1]);
}

bool has_wildcard(std::string_view s)
{
    // Not find_first_of("+#"): libstdc++ calls memchr on the set once per byte of `s`.
    return std::any_of(s.begin(), s.end(), [](char c) { return c == '+' || c == '#'; });
}

// §4.7.1: '#' only as the whole last level, '+' only as a whole level.
bool valid_filter(std::string_view f)
{
    if (f.empty() || f.size() > kMaxString || !is_mqtt_utf8(f))
    {
        return false;
    }
    for (std::size_t i = 0; i < f.size(); ++i)
    {
        const char c = f[i];
        if (c != '+' && c != '#')
        {
            continue;
        }
        const bool starts_level = i == 0 || f[i - 1] == '/';
        const bool ends_level = i + 1 == f.size() || f[i + 1] == '/';
        if (!starts_level || !ends_level || (c == '#' && i + 1 != f.size()))
        {
            return false;
        }
    }
    return true;
}

bool valid_publish_topic(std::string_view t)
{
    return !t.empty() && t.size() <= kMaxString && !has_wildcard(t) && is_mqtt_utf8(t);
}

// §2.2.2 for the packets a client accepts; QoS 2 and the types only a client sends are refused.
DecodeError check_fixed_header(std::uint8_t type, std::uint8_t flags)
{
    switch (type)
    {
    case static_cast<std::uint8_t>(PacketType::Publish):
    {
        const auto qos = static_cast<std::uint8_t>((flags >> 1U) & 3U);
        if (qos > 1U || (qos == 0U && (flags & kPublishDup) != 0U))
        {
            return DecodeError::BadQos;
        }
        return DecodeError::None;
    }
    case static_cast<std::uint8_t>(PacketType::Connack):
    case static_cast<std::uint8_t>(PacketType::Puback):
    case static_cast<std::uint8_t>(PacketType::Suback):
    case static_cast<std::uint8_t>(PacketType::Unsuback):
    case static_cast<std::uint8_t>(PacketType::Pingresp):
        return flags == 0U ? DecodeError::None : DecodeError::BadFlags;
    default:
        // 0, 15, client-to-server types, and the QoS 2 flow (PUBREC/PUBREL/PUBCOMP).
        return DecodeError::BadType;
    }
}

struct Header
{
    DecodeError error = DecodeError::None;
    std::size_t header = 0; // fixed header size; 0 while length bytes are missing
    std::size_t remaining = 0;
};

// Parses the fixed header at the start of `data`: §2.2.2 type and flags, then the remaining
// length (7 bits a byte, least significant first, at most 4 bytes, minimal encoding).
// With `oversize_publish`, a PUBLISH may be longer than `max_packet` (the caller skips it).
Header
parse_header(std::span<const std::uint8_t> data, std::size_t max_packet, bool oversize_publish)
{
    Header h;
    if (data.empty())
    {
        return h;
    }
    const auto type = static_cast<std::uint8_t>(data[0] >> 4U);
    h.error = check_fixed_header(type, static_cast<std::uint8_t>(data[0] & 0x0FU));
    if (oversize_publish && type == static_cast<std::uint8_t>(PacketType::Publish))
    {
        max_packet = kMaxLengthBytes + 1U + kMaxRemaining; // any length that can be encoded
    }
    std::size_t multiplier = 1;
    for (std::size_t i = 0; h.error == DecodeError::None && h.header == 0; ++i)
    {
        if (i == kMaxLengthBytes)
        {
            h.error = DecodeError::BadRemainingLength;
        }
        else if (1U + i >= data.size())
        {
            // Length bytes missing: refuse early when even the smallest completion is too big,
            // so a partial header can never fill the buffer.
            if (i > 0 && 1U + i + 1U + h.remaining + multiplier > max_packet)
            {
                h.error = DecodeError::TooLarge;
            }
            return h;
        }
        else
        {
            const std::uint8_t b = data[1U + i];
            h.remaining += static_cast<std::size_t>(b & 0x7FU) * multiplier;
            multiplier <<= 7U;
            if ((b & 0x80U) == 0U)
            {
                if (b == 0U && i > 0)
                {
                    h.error = DecodeError::BadRemainingLength; // e.g. 0x80 0x00
                }
                h.header = 2U + i;
            }
        }
    }
    if (h.error == DecodeError::None && h.header + h.remaining > max_packet)
    {
        h.error = DecodeError::TooLarge;
    }
    return h;
}

DecodeError check_frame(const Frame& f, PacketType want)
{
    if (f.type != want)
    {
        return DecodeError::BadType;
    }
    return check_fixed_header(static_cast<std::uint8_t>(f.type), f.flags);
}

} // namespace

const char* describe(DecodeError e)
{
    switch (e)
    {
    case DecodeError::None:
        return "no error";
    case DecodeError::BadType:
        return "packet type not accepted by a client";
    case DecodeError::BadFlags:
        return "reserved flags set";
    case DecodeError::BadRemainingLength:
        return "malformed remaining length";
    case DecodeError::TooLarge:
        return "packet larger than the maximum";
    case DecodeError::BadLength:
        return "packet length does not match its fields";
    case DecodeError::ZeroPacketId:
        return "packet id 0";
    case DecodeError::BadTopic:
        return "invalid PUBLISH topic";
    case DecodeError::BadQos:
        return "invalid QoS";
    case DecodeError::BadReturnCode:
        return "invalid return code";
    }
    return "unknown error";
}

bool is_mqtt_utf8(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size())
    {
        // Topics are mostly ASCII: eight bytes at a time while none is 0 or >= 0x80.
        constexpr std::uint64_t kLow = 0x0101010101010101U;
        constexpr std::uint64_t kHigh = 0x8080808080808080U;
        while (s.size() - i >= 8)
        {
            std::uint64_t w = 0;
            std::memcpy(&w, s.data() + i, sizeof w);
            if (((w | ((w - kLow) & ~w)) & kHigh) != 0)
                break; // a byte >= 0x80, or a zero byte, in this word
            i += 8;
        }
        if (i == s.size())
            break;
        const auto b0 = static_cast<std::uint8_t>(s[i]);
        if (b0 < 0x80U)
        {
            if (b0 == 0U)
            {
                return false;
            }
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if ((b0 & 0xE0U) == 0xC0U)
        {
            len = 2;
            cp = b0 & 0x1FU;
            min = 0x80U;
        }
        else if ((b0 & 0xF0U) == 0xE0U)
        {
            len = 3;
            cp = b0 & 0x0FU;
            min = 0x800U;
        }
        else if ((b0 & 0xF8U) == 0xF0U)
        {
            len = 4;
            cp = b0 & 0x07U;
            min = 0x10000U;
        }
        else
        {
            return false; // a continuation byte or 0xF8..0xFF as a lead byte
        }
        if (s.size() - i < len)
        {
            return false;
        }
        for (std::size_t k = 1; k < len; ++k)
        {
            const auto b = static_cast<std::uint8_t>(s[i + k]);
            if ((b & 0xC0U) != 0x80U)
            {
                return false;
            }
            cp = (cp << 6U) | (b & 0x3FU);
        }
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
        if (cp < min || (cp >= 0xD800U && cp <= 0xDFFFU) || cp > 0x10FFFFU)
        {
            return false;
        }
        i += len;
    }
    return true;
}

// ---- encoders ----

std::size_t encode_connect(const ConnectParams& p, std::span<std::uint8_t> out)
{
    // §3.1.2.9: a password without a user name is not allowed in 3.1.1.
    if (p.client_id.size() > kMaxString || p.username.size() > kMaxString ||
        p.password.size() > kMaxString || (p.username.empty() && !p.password.empty()))
    {
        return 0;
    }
    constexpr std::string_view kProtocol = "MQTT";
    std::size_t remaining = 2U + kProtocol.size() + 1U + 1U + 2U + 2U + p.client_id.size();
    std::uint8_t flags = p.clean_session ? kConnectClean : 0U;
    if (!p.username.empty())
    {
        remaining += 2U + p.username.size();
        flags = static_cast<std::uint8_t>(flags | kConnectUser);
    }
    if (!p.password.empty())
    {
        remaining += 2U + p.password.size();
        flags = static_cast<std::uint8_t>(flags | kConnectPassword);
    }
    const std::size_t total = packet_size(remaining);
    if (total == 0 || total > out.size())
    {
        return 0;
    }
    Writer w(out);
    w.byte(fixed_byte(PacketType::Connect, 0));
    w.remaining(remaining);
    w.str(kProtocol);
    w.byte(kProtocolLevel);
    w.byte(flags);
    w.u16(p.keepalive_s);
    w.str(p.client_id);
    if (!p.username.empty())
    {
        w.str(p.username);
    }
    if (!p.password.empty())
    {
        w.str(p.password);
    }
    return w.size();
}

std::size_t publish_size(std::size_t topic_len, std::size_t payload_len, std::uint8_t qos)
{
    if (topic_len > kMaxString || payload_len > kMaxRemaining)
    {
        return 0;
    }
    return packet_size(2U + topic_len + (qos > 0U ? 2U : 0U) + payload_len);
}

std::size_t encode_publish(std::string_view topic,
                           std::string_view payload,
                           std::uint8_t qos,
                           std::uint16_t packet_id,
                           bool dup,
                           std::span<std::uint8_t> out)
{
    // We never publish at QoS 2; DUP is meaningless (and forbidden) at QoS 0.
    if (qos > 1U || (qos == 1U && packet_id == 0U) || (qos == 0U && dup) ||
        !valid_publish_topic(topic))
    {
        return 0;
    }
    const std::size_t total = publish_size(topic.size(), payload.size(), qos);
    if (total == 0 || total > out.size())
    {
        return 0;
    }
    const std::size_t remaining = 2U + topic.size() + (qos > 0U ? 2U : 0U) + payload.size();
    auto flags = static_cast<std::uint8_t>(qos << 1U);
    if (dup)
    {
        flags = static_cast<std::uint8_t>(flags | kPublishDup);
    }
    Writer w(out);
    w.byte(fixed_byte(PacketType::Publish, flags));
    w.remaining(remaining);
    w.str(topic);
    if (qos > 0U)
    {
        w.u16(packet_id);
    }
    w.bytes(payload);
    return w.size();
}

std::size_t encode_puback(std::uint16_t packet_id, std::span<std::uint8_t> out)
{
    if (packet_id == 0U || out.size() < 4U)
    {
        return 0;
    }
    Writer w(out);
    w.byte(fixed_byte(PacketType::Puback, 0));
    w.remaining(2);
    w.u16(packet_id);
    return w.size();
}

std::size_t encode_subscribe(std::uint16_t packet_id,
                             std::span<const Subscription> subs,
                             std::span<std::uint8_t> out)
{
    // §3.8.3-3: at least one filter. QoS 2 is refused because we refuse QoS 2 deliveries.
    if (packet_id == 0U || subs.empty())
    {
        return 0;
    }
    std::size_t remaining = 2;
    for (const Subscription& s : subs)
    {
        if (s.qos > 1U || !valid_filter(s.filter))
        {
            return 0;
        }
        remaining += 2U + s.filter.size() + 1U;
        if (remaining > kMaxRemaining)
        {
            return 0;
        }
    }
    const std::size_t total = packet_size(remaining);
    if (total == 0 || total > out.size())
    {
        return 0;
    }
    Writer w(out);
    w.byte(fixed_byte(PacketType::Subscribe, 0x02U)); // §3.8.1: reserved flags 0010
    w.remaining(remaining);
    w.u16(packet_id);
    for (const Subscription& s : subs)
    {
        w.str(s.filter);
        w.byte(s.qos);
    }
    return w.size();
}

std::size_t encode_pingreq(std::span<std::uint8_t> out)
{
    if (out.size() < 2U)
    {
        return 0;
    }
    out[0] = fixed_byte(PacketType::Pingreq, 0);
    out[1] = 0;
    return 2;
}

std::size_t encode_disconnect(std::span<std::uint8_t> out)
{
    if (out.size() < 2U)
    {
        return 0;
    }
    out[0] = fixed_byte(PacketType::Disconnect, 0);
    out[1] = 0;
    return 2;
}

// ---- frame splitter ----

FrameSplitter::FrameSplitter(std::span<std::uint8_t> buffer,
                             std::size_t max_packet,
                             bool skip_oversize)
    : buf_(buffer), max_packet_(std::min(max_packet, buffer.size())), skip_oversize_(skip_oversize)
{
}

std::span<std::uint8_t> FrameSplitter::free_space()
{
    if (failed_)
    {
        return {};
    }
    if (begin_ == end_)
    {
        begin_ = 0;
        end_ = 0;
    }
    else if (begin_ > 0 && buf_.size() - end_ < max_packet_)
    {
        // Only the partial frame moves, and only when the tail could not hold a whole packet.
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    return buf_.subspan(end_);
}

void FrameSplitter::received(std::size_t n)
{
    end_ += std::min(n, buf_.size() - end_);
    drop_skipped();
}

void FrameSplitter::drop_skipped()
{
    // While bytes are to be dropped nothing else is buffered, so they are the first ones.
    const std::size_t n = std::min(skip_, end_ - begin_);
    begin_ += n;
    skip_ -= n;
}

FrameSplitter::Status FrameSplitter::fail(DecodeError e, DecodeError& error)
{
    // The bytes that failed stay in place, so asking again gives the same answer.
    failed_ = true;
    error_ = e;
    error = e;
    return Status::Error;
}

FrameSplitter::Status FrameSplitter::next(Frame& f, DecodeError& error)
{
    const std::span<const std::uint8_t> data = buf_.subspan(begin_, end_ - begin_);
    if (failed_)
    {
        return fail(error_, error);
    }
    const Header h = parse_header(data, max_packet_, skip_oversize_);
    error = h.error;
    if (h.error != DecodeError::None)
    {
        return fail(h.error, error);
    }
    if (h.header == 0)
    {
        // A header that fills the whole buffer can never complete (a buffer of a few bytes).
        return data.size() == buf_.size() ? fail(DecodeError::TooLarge, error) : Status::NeedMore;
    }
    if (h.header + h.remaining <= max_packet_)
    {
        if (data.size() - h.header < h.remaining)
        {
            return Status::NeedMore;
        }
        f.type = static_cast<PacketType>(data[0] >> 4U);
        f.flags = static_cast<std::uint8_t>(data[0] & 0x0FU);
        f.body = data.subspan(h.header, h.remaining);
        f.discarded = 0;
        begin_ += h.header + h.remaining;
        return Status::Frame;
    }
    // An oversized PUBLISH (parse_header lets no other packet through): hand out its variable
    // header once it is buffered, and drop the payload.
    const std::span<const std::uint8_t> body = data.subspan(h.header);
    if (body.size() < 2U)
    {
        return h.header + 2U > buf_.size() ? fail(DecodeError::TooLarge, error) : Status::NeedMore;
    }
    const auto qos = static_cast<std::uint8_t>((data[0] >> 1U) & 3U);
    const std::size_t head = 2U + read_u16(body.data()) + (qos > 0U ? 2U : 0U);
    if (head > h.remaining)
    {
        return fail(DecodeError::BadLength, error);
    }
    if (h.header + head > buf_.size())
    {
        return fail(DecodeError::TooLarge, error); // even the topic does not fit the buffer
    }
    if (body.size() < head)
    {
        return Status::NeedMore;
    }
    f.type = PacketType::Publish;
    f.flags = static_cast<std::uint8_t>(data[0] & 0x0FU);
    f.body = body.first(head);
    f.discarded = h.remaining - head;
    begin_ += h.header + head;
    skip_ = f.discarded;
    drop_skipped();
    return Status::Frame;
}

void FrameSplitter::reset()
{
    begin_ = 0;
    end_ = 0;
    skip_ = 0;
    failed_ = false;
    error_ = DecodeError::None;
}

// ---- decoders ----

DecodeError decode_connack(const Frame& f, Connack& out)
{
    DecodeError e = check_frame(f, PacketType::Connack);
    if (e != DecodeError::None)
    {
        return e;
    }
    if (f.body.size() != 2U)
    {
        return DecodeError::BadLength;
    }
    const std::uint8_t ack_flags = f.body[0];
    const std::uint8_t code = f.body[1];
    // §3.2.2.1: bits 7-1 reserved; §3.2.2.2: a refusal never claims a session.
    if ((ack_flags & 0xFEU) != 0U || (code != 0U && ack_flags != 0U))
    {
        e = DecodeError::BadFlags;
    }
    else if (code > kMaxConnackCode)
    {
        e = DecodeError::BadReturnCode;
    }
    else
    {
        out.session_present = ack_flags != 0U;
        out.return_code = code;
    }
    return e;
}

DecodeError decode_publish(const Frame& f, Publish& out)
{
    const DecodeError e = check_frame(f, PacketType::Publish);
    if (e != DecodeError::None)
    {
        return e;
    }
    const auto qos = static_cast<std::uint8_t>((f.flags >> 1U) & 3U);
    const std::span<const std::uint8_t> b = f.body;
    if (b.size() < 2U)
    {
        return DecodeError::BadLength;
    }
    const std::size_t topic_len = read_u16(b.data());
    const std::size_t id_len = qos > 0U ? 2U : 0U;
    if (b.size() - 2U < topic_len + id_len)
    {
        return DecodeError::BadLength;
    }
    const std::string_view topic(reinterpret_cast<const char*>(b.data() + 2), topic_len);
    if (!valid_publish_topic(topic))
    {
        return DecodeError::BadTopic;
    }
    std::uint16_t id = 0;
    if (qos > 0U)
    {
        id = read_u16(b.data() + 2U + topic_len);
        if (id == 0U)
        {
            return DecodeError::ZeroPacketId;
        }
    }
    const std::size_t head = 2U + topic_len + id_len;
    if (f.discarded > 0U && b.size() != head)
    {
        return DecodeError::BadLength; // an oversized PUBLISH carries its variable header alone
    }
    out.topic = topic;
    out.payload = std::string_view(reinterpret_cast<const char*>(b.data() + head), b.size() - head);
    out.qos = qos;
    out.dup = (f.flags & kPublishDup) != 0U;
    out.retain = (f.flags & kPublishRetain) != 0U;
    out.packet_id = id;
    out.oversize = f.discarded;
    return DecodeError::None;
}

DecodeError decode_puback(const Frame& f, std::uint16_t& packet_id)
{
    const DecodeError e = check_frame(f, PacketType::Puback);
    if (e != DecodeError::None)
    {
        return e;
    }
    if (f.body.size() != 2U)
    {
        return DecodeError::BadLength;
    }
    const std::uint16_t id = read_u16(f.body.data());
    if (id == 0U)
    {
        return DecodeError::ZeroPacketId;
    }
    packet_id = id;
    return DecodeError::None;
}

DecodeError decode_suback(const Frame& f, Suback& out)
{
    const DecodeError e = check_frame(f, PacketType::Suback);
    if (e != DecodeError::None)
    {
        return e;
    }
    if (f.body.size() < 3U)
    {
        return DecodeError::BadLength;
    }
    const std::uint16_t id = read_u16(f.body.data());
    if (id == 0U)
    {
        return DecodeError::ZeroPacketId;
    }
    const std::span<const std::uint8_t> codes = f.body.subspan(2);
    const bool valid = std::all_of(codes.begin(), codes.end(),
                                   [](std::uint8_t c) { return c <= 2U || c == kSubackFailure; });
    if (!valid)
    {
        return DecodeError::BadReturnCode;
    }
    out.packet_id = id;
    out.return_codes = codes;
    return DecodeError::None;
}

DecodeError decode_pingresp(const Frame& f)
{
    const DecodeError e = check_frame(f, PacketType::Pingresp);
    if (e != DecodeError::None)
    {
        return e;
    }
    return f.body.empty() ? DecodeError::None : DecodeError::BadLength;
}

} // namespace ga::mqtt
