// SPDX-License-Identifier: MIT
// IoT Hub / edgeHub MQTT identity strings and topics (protocol.md sections 1, 4, 5, 7, 8).
// Builders append to a BufWriter; parsers return views into the topic they were given.
#pragma once

#include "buf_writer.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ga
{

struct Identity
{
    std::string_view hub_host;
    std::string_view device_id;
    std::string_view module_id; // empty: device
};

inline constexpr std::string_view kApiVersion = "2021-04-12";
inline constexpr std::string_view kTwinResponseFilter = "$iothub/twin/res/#";
inline constexpr std::string_view kTwinDesiredFilter = "$iothub/twin/PATCH/properties/desired/#";
inline constexpr std::string_view kMethodsFilter = "$iothub/methods/POST/#";

/// {d} or {d}/{m}
void append_client_id(const Identity& id, BufWriter& out);
/// {host}/{d}[/{m}]/?api-version=...&DeviceClientType={urlenc(client_type)}[&model-id={urlenc}]
void append_username(const Identity& id,
                     std::string_view client_type,
                     std::string_view model_id,
                     BufWriter& out);

/// An application or system property, unencoded; system ones are spelled "$.ct", "$.on", ...
struct Property
{
    std::string_view key;
    std::string_view value;
};

/// devices/{d}[/modules/{m}]/messages/events/ + percent-encoded bag of `props`.
void append_telemetry_topic(const Identity& id, std::span<const Property> props, BufWriter& out);
/// The alert topic: $.on={output} (modules only), $.ct=application/json, $.ce=utf-8,
/// MessageType=Alert.
void append_alert_topic(const Identity& id, std::string_view output, BufWriter& out);

/// Which of the system properties an alert keeps from its input were present (bit set).
enum ForwardedFlag : std::uint8_t
{
    kForwardedMid = 1U << 0U,
    kForwardedCid = 1U << 1U,
    kForwardedCt = 1U << 2U,
    kForwardedCe = 1U << 3U,
    kForwardedAll = 0x0FU,
};
inline constexpr std::size_t kMaxMessageIdLen = 128; // IoT Hub's bound on message-id

enum class ForwardResult : std::uint8_t
{
    Ok,
    Malformed,         // bad percent-encoding or an empty key
    TooLarge,          // the kept properties do not fit `out`
    BadSystemProperty, // a kept system property twice, or a $.mid the hub would not take
};
/// The properties an alert forwards from its input's encoded bag, as the seed's SDK forward does:
/// application properties and $.mid, $.cid, $.ct, $.ce in the input's order, re-encoded
/// (percent-encoding of everything but RFC 3986 unreserved characters; a null value stays a key
/// without '='). Dropped: MessageType (the alert sets its own), every other "$." property ($.on,
/// $.to, $.cdid, $.cmid, $.uid, $.exp, ...: set by the hub or edgeHub for the input's hop, not
/// ours to claim), "iothub-" properties (reserved), and empty or null system properties.
/// `present` gets the ForwardedFlag bits. On any result but Ok, `out` holds no usable text.
[[nodiscard]] ForwardResult
copy_forwarded_properties(std::string_view bag, BufWriter& out, std::uint8_t& present);

/// What an alert carries besides the defaults: the input's kept properties (the encoded text
/// copy_forwarded_properties wrote) with their ForwardedFlag bits, and the message id to use when
/// the input had none.
struct AlertProperties
{
    std::string_view forwarded;
    std::uint8_t present = 0;
    std::string_view message_id; // used only without kForwardedMid; empty: none
};
/// The alert topic: the forwarded properties in the input's order, then the added ones: $.on
/// (modules only), $.ct/$.ce defaults when the input had none, MessageType=Alert, and $.mid.
void append_alert_topic(const Identity& id,
                        std::string_view output,
                        const AlertProperties& props,
                        BufWriter& out);
/// devices/{d}/modules/{m}/inputs/{input}/#
void append_input_filter(const Identity& id, std::string_view input, BufWriter& out);

struct InputTopic
{
    std::string_view input; // the input name
    std::string_view bag;   // still percent-encoded; may be empty
};
/// Parses devices/{d}/modules/{m}/inputs/{input}[/{bag}] for this identity; nullopt otherwise.
[[nodiscard]] std::optional<InputTopic> parse_input_topic(const Identity& id,
                                                          std::string_view topic);

enum class BagLookup
{
    Found,
    Absent,
    Malformed, // bad percent-encoding, or the decoded value does not fit
};
/// Finds `key` (compared after percent-decoding) in an encoded bag `k=v&k2=v2` (a leading '?' and
/// a trailing '/' are tolerated) and writes its decoded value.
[[nodiscard]] BagLookup bag_lookup(std::string_view bag, std::string_view key, BufWriter& value);
/// True when every key and value in the bag percent-decodes cleanly.
[[nodiscard]] bool bag_is_well_formed(std::string_view bag);

/// $iothub/twin/GET/?$rid={rid}
void append_twin_get_topic(std::string_view rid, BufWriter& out);
/// $iothub/twin/PATCH/properties/reported/?$rid={rid}
void append_twin_reported_topic(std::string_view rid, BufWriter& out);

struct TwinResponse
{
    int status = 0;
    std::string_view rid;
    std::optional<std::int64_t> version;
};
/// Parses $iothub/twin/res/{status}/?$rid={rid}[&$version={n}]
[[nodiscard]] std::optional<TwinResponse> parse_twin_response(std::string_view topic);

struct DesiredPatchTopic
{
    std::optional<std::int64_t> version;
};
/// Parses $iothub/twin/PATCH/properties/desired/[?$version={n}]
[[nodiscard]] std::optional<DesiredPatchTopic> parse_desired_patch_topic(std::string_view topic);

struct MethodRequest
{
    std::string_view name;
    std::string_view rid;
};
/// Parses $iothub/methods/POST/{name}/?$rid={rid}
[[nodiscard]] std::optional<MethodRequest> parse_method_request(std::string_view topic);
/// $iothub/methods/res/{status}/?$rid={rid}
void append_method_response_topic(int status, std::string_view rid, BufWriter& out);
/// The longest request id we echo back; the hub's and edgeHub's are decimal numbers or GUIDs.
inline constexpr std::size_t kMaxMethodRidBytes = 64;
/// True when a method request id may be echoed into a response topic: 1..64 bytes of
/// [0-9A-Za-z-_.]. The rid comes from the broker; anything else (wildcards, '/', '&', '%',
/// control bytes) would change which topic the response goes to, so it is not answered.
[[nodiscard]] bool is_safe_method_rid(std::string_view rid);

} // namespace ga
