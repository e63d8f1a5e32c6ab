// SPDX-License-Identifier: MIT
// MQTT 3.1.1 wire format for a client: encoders for the packets a client sends, decoders for the
// packets it receives, and an incremental frame splitter over a caller-owned fixed buffer.
// Pure: no I/O, no clock, no heap. Everything received is checked; a violation is a DecodeError
// that names the rule, and the caller closes the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ga::mqtt
{

enum class PacketType : std::uint8_t
{
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
};

/// Why a received packet was refused.
enum class DecodeError : std::uint8_t
{
    None,
    BadType,            // type 0/15, or a packet a server never sends to a client
    BadFlags,           // reserved fixed-header flags not as §2.2.2 requires
    BadRemainingLength, // more than 4 length bytes, or a non-minimal encoding
    TooLarge,           // over the configured maximum packet size
    BadLength,          // the body is shorter or longer than its fields need
    ZeroPacketId,       // packet id 0 where one is required
    BadTopic,           // empty, not UTF-8, U+0000, or wildcard characters in a PUBLISH topic
    BadQos,             // QoS 3, or QoS 0 with DUP set
    BadReturnCode,      // CONNACK/SUBACK return code outside the spec
};
[[nodiscard]] const char* describe(DecodeError e);

struct ConnectParams
{
    std::string_view client_id;
    std::string_view username; // empty: no user name flag
    std::string_view password; // empty: no password flag
    std::uint16_t keepalive_s = 0;
    bool clean_session = false;
};

struct Subscription
{
    std::string_view filter;
    std::uint8_t qos = 0;
};

// Each encoder writes one whole packet at the start of `out` and returns its size, or 0 when it
// does not fit or a field is out of range (a string over 65535 bytes, packet id 0 for QoS 1).
[[nodiscard]] std::size_t encode_connect(const ConnectParams& p, std::span<std::uint8_t> out);
[[nodiscard]] std::size_t encode_publish(std::string_view topic,
                                         std::string_view payload,
                                         std::uint8_t qos,
                                         std::uint16_t packet_id,
                                         bool dup,
                                         std::span<std::uint8_t> out);
[[nodiscard]] std::size_t encode_puback(std::uint16_t packet_id, std::span<std::uint8_t> out);
[[nodiscard]] std::size_t encode_subscribe(std::uint16_t packet_id,
                                           std::span<const Subscription> subs,
                                           std::span<std::uint8_t> out);
[[nodiscard]] std::size_t encode_pingreq(std::span<std::uint8_t> out);
[[nodiscard]] std::size_t encode_disconnect(std::span<std::uint8_t> out);
/// The encoded size of a PUBLISH (fixed header included).
[[nodiscard]] std::size_t
publish_size(std::size_t topic_len, std::size_t payload_len, std::uint8_t qos);

/// One received control packet: its type, the low nibble of the fixed header, and the body
/// (variable header + payload).
struct Frame
{
    PacketType type = PacketType::Connack;
    std::uint8_t flags = 0;
    std::span<const std::uint8_t> body;
    // > 0: an oversized PUBLISH (see FrameSplitter): `body` is its variable header alone, and
    // this many payload bytes after it were discarded.
    std::size_t discarded = 0;
};

/// Splits a received byte stream into frames inside a caller-owned buffer (no copy of a body).
/// Usage: write received bytes into free_space(), call received(n), then call next() until it
/// says NeedMore. Views handed out by next() stay valid until the next call to free_space(),
/// which moves a partial frame to the front of the buffer.
///
/// With `skip_oversize`, a PUBLISH larger than `max_packet` is not an error: once its variable
/// header (topic, packet id) is buffered, next() hands it out as a Frame whose body is that
/// variable header alone and whose `discarded` counts its payload bytes; those are dropped as
/// they arrive (received() needs no room for them) and the frames after it follow normally.
/// The variable header must fit the buffer (else TooLarge). Any other packet over `max_packet`
/// is a TooLarge error.
class FrameSplitter
{
  public:
    /// `max_packet` (fixed header included) must not exceed buffer.size().
    FrameSplitter(std::span<std::uint8_t> buffer,
                  std::size_t max_packet,
                  bool skip_oversize = false);

    [[nodiscard]] std::span<std::uint8_t> free_space();
    void received(std::size_t n);

    enum class Status
    {
        Frame,
        NeedMore,
        Error, // `error` says why; the stream cannot continue (reset() before reuse)
    };
    [[nodiscard]] Status next(Frame& f, DecodeError& error);
    /// Forgets everything buffered (a new connection).
    void reset();
    [[nodiscard]] std::size_t buffered() const { return end_ - begin_; }
    /// Payload bytes of an oversized PUBLISH still to be dropped as they arrive.
    [[nodiscard]] std::size_t discarding() const { return skip_; }

  private:
    void drop_skipped();
    Status fail(DecodeError e, DecodeError& error);

    std::span<std::uint8_t> buf_;
    std::size_t max_packet_;
    bool skip_oversize_ = false;
    std::size_t begin_ = 0; // first byte not yet handed out as a frame
    std::size_t end_ = 0;   // one past the last received byte
    std::size_t skip_ = 0;  // bytes still to drop (the rest of an oversized PUBLISH)
    bool failed_ = false;
    DecodeError error_ = DecodeError::None; // why it failed
};

struct Connack
{
    bool session_present = false;
    std::uint8_t return_code = 0;
};
struct Publish
{
    std::string_view topic;
    std::string_view payload;
    std::uint8_t qos = 0;
    bool dup = false;
    bool retain = false;
    std::uint16_t packet_id = 0; // 0 for QoS 0
    std::size_t oversize = 0; // > 0: the payload had this many bytes, more than the maximum packet,
                              // and was discarded (payload is empty)
};
struct Suback
{
    std::uint16_t packet_id = 0;
    std::span<const std::uint8_t> return_codes; // 0, 1, 2 granted QoS or 0x80 failure
};

// Decoders check the frame's type, flags and every field. QoS 2 PUBLISH is refused (BadQos): we
// never subscribe at QoS 2. decode_publish copies Frame::discarded to Publish::oversize (such a
// frame must carry no payload bytes).
[[nodiscard]] DecodeError decode_connack(const Frame& f, Connack& out);
[[nodiscard]] DecodeError decode_publish(const Frame& f, Publish& out);
[[nodiscard]] DecodeError decode_puback(const Frame& f, std::uint16_t& packet_id);
[[nodiscard]] DecodeError decode_suback(const Frame& f, Suback& out);
[[nodiscard]] DecodeError decode_pingresp(const Frame& f);

/// True when `s` is well-formed UTF-8 with no U+0000 and no surrogates (MQTT §1.5.3).
[[nodiscard]] bool is_mqtt_utf8(std::string_view s);

} // namespace ga::mqtt
