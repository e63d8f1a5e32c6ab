// SPDX-License-Identifier: MIT
// Parses an IoT Hub connection string (HostName=...;DeviceId=...;[ModuleId=...;]
// [GatewayHostName=...;]SharedAccessKey=...). Results are views into the caller's text.
#pragma once

#include <string_view>

namespace ga
{

struct ConnectionString
{
    std::string_view host_name;
    std::string_view device_id;
    std::string_view module_id; // empty: device identity
    std::string_view gateway_host_name;
    std::string_view shared_access_key; // base64, validated to decode

    [[nodiscard]] bool is_module() const { return !module_id.empty(); }
    /// The host the agent dials: the gateway (edgeHub) when one is set, else the hub.
    [[nodiscard]] std::string_view connect_host() const
    {
        return gateway_host_name.empty() ? host_name : gateway_host_name;
    }
};

enum class ConnStrError
{
    None,
    Empty,
    Malformed,    // an element without '=' or with an empty key
    UnknownKey,   // detail: the key
    DuplicateKey, // detail: the key
    EmptyValue,   // detail: the key
    MissingHostName,
    MissingDeviceId,
    MissingKey,    // no SharedAccessKey
    Unsupported,   // x509, SharedAccessKeyName, SharedAccessSignature; detail: the key
    BadKey,        // SharedAccessKey is not valid base64 (the key itself is never echoed)
    BadId,         // an id or host with characters we do not allow; detail: the key
    TopicCharInId, // DeviceId/ModuleId with '+', '#' or '/'; detail: the key, bad_char: which
};

struct ConnStrResult
{
    ConnStrError error = ConnStrError::None;
    std::string_view detail; // the offending key name, never a value
    char bad_char = '\0';    // TopicCharInId: the character (one character, not a secret)
    [[nodiscard]] bool ok() const { return error == ConnStrError::None; }
};

[[nodiscard]] ConnStrResult parse_connection_string(std::string_view text, ConnectionString& out);
/// A sentence describing the error, for log lines; safe to print (no secrets).
[[nodiscard]] const char* describe(ConnStrError e);

} // namespace ga
