// SPDX-License-Identifier: MIT
#include "connection_string.h"

#include "sas.h"

#include <algorithm>
#include <cstddef>

namespace ga
{
namespace
{

// Ids as IoT Hub's own client validates them (protocol.md section 3), minus ';', which cannot
// survive the split anyway.
bool is_id_char(char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
    {
        return true;
    }
    switch (c)
    {
    case '-':
    case ':':
    case '.':
    case '+':
    case '%':
    case '_':
    case '#':
    case '*':
    case '?':
    case '!':
    case '(':
    case ')':
    case ',':
    case '=':
    case '@':
    case '$':
    case '\'':
        return true;
    default:
        return false;
    }
}

bool is_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

bool valid_id(std::string_view v)
{
    if (v.empty() || v.size() > 128)
    {
        return false;
    }
    return std::ranges::all_of(v, is_id_char);
}

bool valid_host(std::string_view v)
{
    if (v.empty())
    {
        return false;
    }
    return std::ranges::all_of(v, is_host_char);
}

ConnStrResult fail(ConnStrError e, std::string_view key = {})
{
    return ConnStrResult{e, key};
}

// The ids go into our topic filters (devices/{d}/modules/{m}/inputs/...): IoT Hub allows '+' and
// '#' in ids, but in a filter they are MQTT wildcards and '/' adds levels, so the agent would
// subscribe to other identities' topics. Refused, naming the character.
constexpr std::string_view kTopicChars = "+#/";

} // namespace

ConnStrResult parse_connection_string(std::string_view text, ConnectionString& out)
{
    out = ConnectionString{};
    if (text.empty())
    {
        return fail(ConnStrError::Empty);
    }
    // One trailing ';' is common in copied strings; an empty element anywhere else is an error.
    if (text.back() == ';')
    {
        text.remove_suffix(1);
        if (text.empty())
        {
            return fail(ConnStrError::Empty);
        }
    }

    ConnectionString cs;
    // Presence flags separate from the views so that "seen" does not depend on the value.
    bool seen_host = false;
    bool seen_device = false;
    bool seen_module = false;
    bool seen_gateway = false;
    bool seen_key = false;

    std::size_t pos = 0;
    while (pos <= text.size())
    {
        const std::size_t semi = text.find(';', pos);
        const std::size_t end = semi == std::string_view::npos ? text.size() : semi;
        const std::string_view element = text.substr(pos, end - pos);
        pos = end + 1;

        const std::size_t eq = element.find('=');
        if (eq == std::string_view::npos || eq == 0)
        {
            // No key to name, and the element may be a fragment of a secret: no detail.
            return fail(ConnStrError::Malformed);
        }
        const std::string_view key = element.substr(0, eq);
        const std::string_view value = element.substr(eq + 1);

        if (key == "x509" || key == "SharedAccessKeyName" || key == "SharedAccessSignature")
        {
            return fail(ConnStrError::Unsupported, key);
        }

        std::string_view* slot = nullptr;
        bool* seen = nullptr;
        bool is_host = false;
        if (key == "HostName")
        {
            slot = &cs.host_name;
            seen = &seen_host;
            is_host = true;
        }
        else if (key == "DeviceId")
        {
            slot = &cs.device_id;
            seen = &seen_device;
        }
        else if (key == "ModuleId")
        {
            slot = &cs.module_id;
            seen = &seen_module;
        }
        else if (key == "GatewayHostName")
        {
            slot = &cs.gateway_host_name;
            seen = &seen_gateway;
            is_host = true;
        }
        else if (key == "SharedAccessKey")
        {
            slot = &cs.shared_access_key;
            seen = &seen_key;
        }
        else
        {
            return fail(ConnStrError::UnknownKey, key);
        }

        if (*seen)
        {
            return fail(ConnStrError::DuplicateKey, key);
        }
        *seen = true;
        if (value.empty())
        {
            return fail(ConnStrError::EmptyValue, key);
        }
        if (slot == &cs.shared_access_key)
        {
            if (!sas_key_is_valid(value))
            {
                return fail(ConnStrError::BadKey, key);
            }
        }
        else if (const std::size_t at = value.find_first_of(kTopicChars);
                 (slot == &cs.device_id || slot == &cs.module_id) && at != std::string_view::npos)
        {
            ConnStrResult r = fail(ConnStrError::TopicCharInId, key);
            r.bad_char = value[at];
            return r;
        }
        else if (is_host ? !valid_host(value) : !valid_id(value))
        {
            return fail(ConnStrError::BadId, key);
        }
        *slot = value;
    }

    if (!seen_host)
    {
        return fail(ConnStrError::MissingHostName, "HostName");
    }
    if (!seen_device)
    {
        return fail(ConnStrError::MissingDeviceId, "DeviceId");
    }
    if (!seen_key)
    {
        return fail(ConnStrError::MissingKey, "SharedAccessKey");
    }
    out = cs;
    return {};
}

const char* describe(ConnStrError e)
{
    switch (e)
    {
    case ConnStrError::None:
        return "no error";
    case ConnStrError::Empty:
        return "the connection string is empty";
    case ConnStrError::Malformed:
        return "an element of the connection string is not key=value";
    case ConnStrError::UnknownKey:
        return "the connection string has an unknown key";
    case ConnStrError::DuplicateKey:
        return "the connection string repeats a key";
    case ConnStrError::EmptyValue:
        return "a key in the connection string has an empty value";
    case ConnStrError::MissingHostName:
        return "the connection string has no HostName";
    case ConnStrError::MissingDeviceId:
        return "the connection string has no DeviceId";
    case ConnStrError::MissingKey:
        return "the connection string has no SharedAccessKey";
    case ConnStrError::Unsupported:
        return "the connection string uses an authentication method this agent does not support "
               "(only SharedAccessKey of a device or module)";
    case ConnStrError::BadKey:
        return "SharedAccessKey is not valid base64";
    case ConnStrError::BadId:
        return "a host name or id in the connection string has characters that are not allowed";
    case ConnStrError::TopicCharInId:
        return "an id in the connection string has a character that would change the agent's MQTT "
               "topics ('+' and '#' are wildcards, '/' a topic level)";
    }
    return "unknown connection string error";
}

} // namespace ga
