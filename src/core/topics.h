// SPDX-License-Identifier: MIT
// IoT Hub / edgeHub MQTT identity strings and topics (protocol.md sections 1, 4, 5, 7, 8).
// Builders append to a BufWriter; parsers return views into the topic they were given.
#pragma once

#include "buf_writer.h"

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

} // namespace ga
