// SPDX-License-Identifier: MIT
// The conf parser. One static table (kKeys) lists every key with its section, type, default,
// bounds, help text and setter; parsing, defaults, --help and the --check-config summary all read
// it, so a key cannot be accepted without also being documented.
//
// Syntax notes beyond contract.md:
// - '#' or ';' starts a comment only at the start of a line (after whitespace). A value may end
//   with " # comment": a '#' preceded by a space or tab ends the value. ';' never does, because
//   connection strings are full of ';' and '='.
// - Only the first '=' splits key from value, so values may contain '='.
// - A UTF-8 byte order mark at the start of the file is ignored; CRLF line ends are accepted.
// - Lines must be valid UTF-8 without NUL or other control characters (tab is whitespace).
// - An empty connection_string / connection_string_file counts as not set.
#include "conf.h"

#include "host_port.h"
#include "json_scan.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace ga
{
namespace
{

enum class Kind
{
    String,
    Path,
    Uint,
    Double,
    Enum,
};

// A value after conversion; the setter picks the member that matches the key's kind.
struct Value
{
    std::string_view text;
    std::uint64_t u = 0;
    double d = 0.0;
    std::size_t index = 0; // Enum: position in names
};

using Setter = void (*)(Config&, const Value&);
// Extra validation for strings: nullptr when fine, else what was expected (plain words).
using Check = const char* (*)(std::string_view);

struct KeyDef
{
    std::string_view section;
    std::string_view key;
    Kind kind = Kind::String;
    std::string_view def;
    std::uint64_t min = 0;
    std::uint64_t max = 0;
    std::span<const std::string_view> names = {};
    Check check = nullptr;
    std::string_view help;
    bool secret = false;
    Setter set = nullptr;
};

// Names in enum order: to_string() indexes these, so the conf spelling is the only spelling.
constexpr std::array<std::string_view, 2> kTransportNames{"tls", "tcp"};
constexpr std::array<std::string_view, 4> kSourceNames{"module-input", "mqtt", "udp", "simulated"};
constexpr std::array<std::string_view, 3> kIdentityNames{"auto", "connection-string",
                                                         "edge-environment"};
constexpr std::array<std::string_view, 3> kRebootNames{"request-file", "simulate", "disabled"};

const char* check_broker(std::string_view s)
{
    std::string host;
    std::uint16_t port = 0;
    return split_host_port(s, 1, host, port) ? nullptr : "expected host:port with a port 1..65535";
}

// Port 0 lets the kernel choose, which tests use. The UDP source binds IPv4 only.
const char* check_bind(std::string_view s)
{
    std::string host;
    std::uint16_t port = 0;
    return split_host_port(s, 0, host, port) && is_ipv4_literal(host)
               ? nullptr
               : "expected an IPv4 address:port with a port 0..65535 (e.g. 127.0.0.1:5683)";
}

const char* check_field(std::string_view s)
{
    FieldPath path;
    return parse_field_path(s, path)
               ? nullptr
               : "expected a dotted path like machine.temperature (no empty segments, at most 8)";
}

// Input and output names become topic segments (inputs/<name>/#, $.on=<name>).
const char* check_name(std::string_view s)
{
    if (s.empty() || s.find_first_of("/+#") != std::string_view::npos)
    {
        return "expected a non-empty name without '/', '+' or '#'";
    }
    return nullptr;
}

const char* check_non_empty(std::string_view s)
{
    return s.empty() ? "expected a non-empty value" : nullptr;
}

const char* check_topic(std::string_view s)
{
    // Empty is allowed here; the whole-file check requires it for type = mqtt.
    return s.find(' ') != std::string_view::npos ? "expected a topic filter without spaces"
                                                 : nullptr;
}

std::uint32_t u32(const Value& v)
{
    return static_cast<std::uint32_t>(v.u); // the table's bounds keep it in range
}

// clang-format off
constexpr std::array kKeys{
    // [hub]
    KeyDef{.section = "hub", .key = "connection_string", .kind = Kind::String, .def = "",
           .help = "HostName=...;DeviceId=...;[ModuleId=...;][GatewayHostName=...;]SharedAccessKey=...; "
                   "secret, never printed; at most one of this and connection_string_file; the conf then must not be "
                   "readable by others (0640 root:gateway-agent)",
           .secret = true,
           .set = [](Config& c, const Value& v) { c.connection_string = std::string(v.text); }},
    KeyDef{.section = "hub", .key = "connection_string_file", .kind = Kind::Path, .def = "",
           .help = "file holding the connection string instead (0640 root:gateway-agent or stricter; never readable by others)",
           .set = [](Config& c, const Value& v) { c.connection_string_file = std::string(v.text); }},
    KeyDef{.section = "hub", .key = "identity", .kind = Kind::Enum, .def = "auto", .names = kIdentityNames,
           .help = "auto: the connection string if one is set, else the IoT Edge module environment "
                   "(IOTEDGE_* variables, tokens signed by the workload API) | connection-string | edge-environment",
           .set = [](Config& c, const Value& v) { c.identity = static_cast<IdentitySource>(v.index); }},
    KeyDef{.section = "hub", .key = "port", .kind = Kind::Uint, .def = "8883", .min = 1, .max = 65535,
           .help = "TCP port of the hub or of the IoT Edge gateway",
           .set = [](Config& c, const Value& v) { c.port = u32(v); }},
    KeyDef{.section = "hub", .key = "ca_file", .kind = Kind::Path, .def = "",
           .help = "PEM trust anchors; empty: the system bundle",
           .set = [](Config& c, const Value& v) { c.ca_file = std::string(v.text); }},
    KeyDef{.section = "hub", .key = "transport", .kind = Kind::Enum, .def = "tls", .names = kTransportNames,
           .help = "tls, or tcp for local test brokers only (logs a warning)",
           .set = [](Config& c, const Value& v) { c.transport = static_cast<Transport>(v.index); }},
    KeyDef{.section = "hub", .key = "sas_ttl", .kind = Kind::Uint, .def = "3600", .min = 10, .max = 604800,
           .help = "seconds a SAS token is valid; a new one is used before it expires",
           .set = [](Config& c, const Value& v) { c.sas_ttl = u32(v); }},
    KeyDef{.section = "hub", .key = "keepalive", .kind = Kind::Uint, .def = "240", .min = 10, .max = 1177,
           .help = "MQTT keep-alive seconds (IoT Hub allows at most 1177; keep <= 400 behind edgeHub)",
           .set = [](Config& c, const Value& v) { c.keepalive = u32(v); }},
    KeyDef{.section = "hub", .key = "model_id", .kind = Kind::String, .def = "",
           .help = "optional IoT Plug and Play model id announced at connect",
           .set = [](Config& c, const Value& v) { c.model_id = std::string(v.text); }},
    KeyDef{.section = "hub", .key = "max_inflight", .kind = Kind::Uint, .def = "64", .min = 1, .max = 1024,
           .help = "alerts sent and not yet acknowledged by the hub (the QoS 1 window)",
           .set = [](Config& c, const Value& v) { c.max_inflight = u32(v); }},
    // [filter]
    KeyDef{.section = "filter", .key = "field", .kind = Kind::String, .def = "machine.temperature",
           .check = check_field,
           .help = "dotted path into the sensor JSON whose number is compared",
           .set = [](Config& c, const Value& v) { c.field = std::string(v.text); }},
    KeyDef{.section = "filter", .key = "threshold", .kind = Kind::Double, .def = "25",
           .help = "alerts need a value strictly greater; the twin's desired TemperatureThreshold overrides it",
           .set = [](Config& c, const Value& v) { c.threshold = v.d; c.threshold_set = true; }},
    KeyDef{.section = "filter", .key = "input", .kind = Kind::String, .def = "input1", .check = check_name,
           .help = "module mode: the edgeHub input that is filtered",
           .set = [](Config& c, const Value& v) { c.input = std::string(v.text); }},
    KeyDef{.section = "filter", .key = "output", .kind = Kind::String, .def = "output1", .check = check_name,
           .help = "module mode: the output alerts are sent to",
           .set = [](Config& c, const Value& v) { c.output = std::string(v.text); }},
    // [source]
    KeyDef{.section = "source", .key = "type", .kind = Kind::Enum, .def = "module-input", .names = kSourceNames,
           .help = "where sensor JSON comes from: module-input | mqtt | udp | simulated",
           .set = [](Config& c, const Value& v) { c.source = static_cast<SourceType>(v.index); }},
    KeyDef{.section = "source", .key = "broker", .kind = Kind::String, .def = "127.0.0.1:1883",
           .check = check_broker, .help = "mqtt: host:port of the local broker",
           .set = [](Config& c, const Value& v) { c.source_broker = std::string(v.text); }},
    KeyDef{.section = "source", .key = "topic", .kind = Kind::String, .def = "", .check = check_topic,
           .help = "mqtt: topic filter to subscribe to (required for type = mqtt)",
           .set = [](Config& c, const Value& v) { c.source_topic = std::string(v.text); }},
    KeyDef{.section = "source", .key = "bind", .kind = Kind::String, .def = "127.0.0.1:5683",
           .check = check_bind, .help = "udp: address:port to receive datagrams on",
           .set = [](Config& c, const Value& v) { c.source_bind = std::string(v.text); }},
    KeyDef{.section = "source", .key = "interval_ms", .kind = Kind::Uint, .def = "5000", .min = 10,
           .max = 3600000, .help = "simulated: milliseconds between readings",
           .set = [](Config& c, const Value& v) { c.source_interval_ms = u32(v); }},
    KeyDef{.section = "source", .key = "seed", .kind = Kind::Uint, .def = "1", .min = 0,
           .max = std::numeric_limits<std::uint64_t>::max(),
           .help = "simulated: seed of the deterministic readings",
           .set = [](Config& c, const Value& v) { c.source_seed = v.u; }},
    // [reboot]
    KeyDef{.section = "reboot", .key = "mode", .kind = Kind::Enum, .def = "request-file", .names = kRebootNames,
           .help = "request-file (a systemd path unit reboots) | simulate | disabled",
           .set = [](Config& c, const Value& v) { c.reboot_mode = static_cast<RebootMode>(v.index); }},
    KeyDef{.section = "reboot", .key = "simulate_delay", .kind = Kind::Uint, .def = "0", .min = 0, .max = 3600,
           .help = "simulate mode: seconds before the simulated reboot completes",
           .set = [](Config& c, const Value& v) { c.reboot_simulate_delay = u32(v); }},
    // [queue]
    KeyDef{.section = "queue", .key = "max_bytes", .kind = Kind::Uint, .def = "67108864", .min = 4096,
           .max = 1U << 30U,
           .help = "bound on the alert log on disk (memory use does not grow with it); when full, inputs "
                   "that can wait are not acknowledged, UDP/simulated readings drop the oldest (counted)",
           .set = [](Config& c, const Value& v) { c.queue_max_bytes = v.u; }},
    KeyDef{.section = "queue", .key = "max_age", .kind = Kind::Uint, .def = "0", .min = 0, .max = 31536000,
           .help = "seconds after which an unsent alert is dropped and counted; 0 = never",
           .set = [](Config& c, const Value& v) { c.queue_max_age = u32(v); }},
    // [state]
    KeyDef{.section = "state", .key = "dir", .kind = Kind::Path, .def = "/var/lib/gateway-agent",
           .check = check_non_empty, .help = "writable directory for persisted state (reboot, twin version)",
           .set = [](Config& c, const Value& v) { c.state_dir = std::string(v.text); }},
    // [log]
    KeyDef{.section = "log", .key = "stats_interval", .kind = Kind::Uint, .def = "300", .min = 0, .max = 86400,
           .help = "seconds between counter log lines and agentStats reports; 0 = off",
           .set = [](Config& c, const Value& v) { c.stats_interval = u32(v); }},
};
// clang-format on

constexpr std::size_t kKeyCount = kKeys.size();

const KeyDef* find_key(std::string_view section, std::string_view key)
{
    for (const auto& k : kKeys)
    {
        if (k.section == section && k.key == key)
        {
            return &k;
        }
    }
    return nullptr;
}

bool known_section(std::string_view section)
{
    return std::ranges::any_of(kKeys, [section](const auto& k) { return k.section == section; });
}

std::size_t key_index(const KeyDef* k)
{
    return static_cast<std::size_t>(k - kKeys.data());
}

bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && is_space(s.front()))
    {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back()))
    {
        s.remove_suffix(1);
    }
    return s;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid (overlong, surrogate,
// above U+10FFFF or truncated).
std::size_t utf8_sequence(std::string_view s, std::size_t i)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80)
    {
        return 1;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF)
    {
        len = 2;
    }
    else if (b0 >= 0xE0 && b0 <= 0xEF)
    {
        len = 3;
        lo = b0 == 0xE0 ? 0xA0 : 0x80; // no overlongs
        hi = b0 == 0xED ? 0x9F : 0xBF; // no surrogates
    }
    else if (b0 >= 0xF0 && b0 <= 0xF4)
    {
        len = 4;
        lo = b0 == 0xF0 ? 0x90 : 0x80;
        hi = b0 == 0xF4 ? 0x8F : 0xBF;
    }
    else
    {
        return 0;
    }
    if (s.size() - i < len)
    {
        return 0;
    }
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi)
    {
        return 0;
    }
    for (std::size_t k = 2; k < len; ++k)
    {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (b < 0x80 || b > 0xBF)
        {
            return 0;
        }
    }
    return len;
}

// nullptr when the line is clean, else the problem.
const char* check_line_bytes(std::string_view line)
{
    for (std::size_t i = 0; i < line.size();)
    {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c == 0)
        {
            return "contains a NUL byte";
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F)
        {
            return "contains a control character";
        }
        const std::size_t n = utf8_sequence(line, i);
        if (n == 0)
        {
            return "is not valid UTF-8";
        }
        i += n;
    }
    return nullptr;
}

// A value quoted in an error, shortened so a stray megabyte does not end up in a log line.
std::string quote(std::string_view v)
{
    constexpr std::size_t kMax = 64;
    std::string out = "'";
    if (v.size() <= kMax)
    {
        out += v;
    }
    else
    {
        std::size_t cut = kMax;
        while (cut > 0 && (static_cast<unsigned char>(v[cut]) & 0xC0U) == 0x80U)
        {
            --cut; // do not split a UTF-8 sequence
        }
        out += v.substr(0, cut);
        out += "...";
    }
    out += "'";
    return out;
}

std::string range_text(const KeyDef& k)
{
    return std::to_string(k.min) + ".." + std::to_string(k.max);
}

std::string enum_text(const KeyDef& k)
{
    std::string out;
    for (std::size_t i = 0; i < k.names.size(); ++i)
    {
        if (i > 0)
        {
            out += i + 1 == k.names.size() ? " or " : ", ";
        }
        out += k.names[i];
    }
    return out;
}

// Converts and validates `text` for key `k`; on failure returns the problem in plain words
// (never containing the value when the key is secret).
bool convert(const KeyDef& k, std::string_view text, Value& v, std::string& problem)
{
    v = Value{};
    v.text = text;
    const auto got = [&]
    { return k.secret ? std::string(" (value not shown)") : ", got " + quote(text); };
    const char* end = text.data() + text.size();
    switch (k.kind)
    {
    case Kind::String:
    case Kind::Path:
        break;
    case Kind::Uint:
    {
        auto [ptr, ec] = std::from_chars(text.data(), end, v.u);
        if (ec == std::errc::result_out_of_range && ptr == end)
        {
            problem = "value out of range: expected " + range_text(k) + got();
            return false;
        }
        if (text.empty() || ec != std::errc{} || ptr != end)
        {
            problem = "expected an integer " + range_text(k) + got();
            return false;
        }
        if (v.u < k.min || v.u > k.max)
        {
            problem = "value out of range: expected " + range_text(k) + got();
            return false;
        }
        break;
    }
    case Kind::Double:
    {
        auto [ptr, ec] = std::from_chars(text.data(), end, v.d);
        if (text.empty() || ec != std::errc{} || ptr != end || !std::isfinite(v.d))
        {
            problem = "expected a finite decimal number" + got();
            return false;
        }
        break;
    }
    case Kind::Enum:
    {
        bool found = false;
        for (std::size_t i = 0; i < k.names.size(); ++i)
        {
            if (k.names[i] == text)
            {
                v.index = i;
                found = true;
            }
        }
        if (!found)
        {
            problem = "expected " + enum_text(k) + got();
            return false;
        }
        break;
    }
    }
    if (k.check != nullptr)
    {
        if (const char* why = k.check(text))
        {
            problem = std::string(why) + got();
            return false;
        }
    }
    return true;
}

std::string where(std::string_view filename, std::size_t line)
{
    return std::string(filename) + ":" + std::to_string(line) + ": ";
}

std::string format_double(double d)
{
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
    if (ec != std::errc{})
    {
        return "?";
    }
    return {buf, ptr};
}

// The value part of a `key = value` line: trimmed, with a trailing " # comment" removed.
std::string_view value_part(std::string_view raw)
{
    for (std::size_t i = 1; i < raw.size(); ++i)
    {
        if (raw[i] == '#' && is_space(raw[i - 1]))
        {
            raw = raw.substr(0, i);
            break;
        }
    }
    return trim(raw);
}

bool plausible_key(std::string_view key)
{
    constexpr std::size_t kMaxKeyLength = 40;
    if (key.size() > kMaxKeyLength)
    {
        return false;
    }
    return std::ranges::all_of(
        key, [](char c)
        { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

struct ParseState
{
    std::string_view filename;
    std::array<std::size_t, kKeyCount> set_on_line{}; // 0: not set in the file
};

bool parse_line(ParseState& st,
                std::string_view line,
                std::size_t lineno,
                std::string_view& section,
                Config& out,
                std::string& error)
{
    if (const char* bad = check_line_bytes(line))
    {
        error = where(st.filename, lineno) + "line " + bad;
        return false;
    }
    line = trim(line);
    if (line.empty() || line.front() == '#' || line.front() == ';')
    {
        return true;
    }
    if (line.front() == '[')
    {
        const auto close = line.find(']');
        if (close == std::string_view::npos)
        {
            error = where(st.filename, lineno) + "section header without a closing ']'";
            return false;
        }
        const auto rest = trim(line.substr(close + 1));
        if (!rest.empty() && rest.front() != '#' && rest.front() != ';')
        {
            error = where(st.filename, lineno) + "unexpected text after the section header";
            return false;
        }
        const auto name = trim(line.substr(1, close - 1));
        if (!known_section(name))
        {
            error = where(st.filename, lineno) + "unknown section " +
                    quote("[" + std::string(name) + "]");
            return false;
        }
        section = name;
        return true;
    }
    const auto eq = line.find('=');
    const std::string sect = section.empty() ? std::string() : "[" + std::string(section) + "] ";
    if (eq == std::string_view::npos)
    {
        // The line is not echoed: it may be a connection string without its key.
        error =
            where(st.filename, lineno) + sect + "expected 'key = value' but the line has no '='";
        return false;
    }
    const auto key = trim(line.substr(0, eq));
    if (key.empty())
    {
        error = where(st.filename, lineno) + sect + "a line with '=' but no key";
        return false;
    }
    // A name that cannot be a key is not echoed: it may be a pasted secret (base64 "...==").
    if (!plausible_key(key))
    {
        error = where(st.filename, lineno) + sect +
                "unknown key (name not shown; key names are lowercase letters, digits and '_')";
        return false;
    }
    if (section.empty())
    {
        error = where(st.filename, lineno) + std::string(key) +
                ": key outside any section (add a [section] line above it)";
        return false;
    }
    const KeyDef* k = find_key(section, key);
    if (k == nullptr)
    {
        error = where(st.filename, lineno) + sect + std::string(key) + ": unknown key";
        for (const auto& other : kKeys)
        {
            if (other.key == key)
            {
                error += " (there is a " + std::string(key) + " in [" + std::string(other.section) +
                         "])";
                break;
            }
        }
        return false;
    }
    const std::string head = where(st.filename, lineno) + sect + std::string(key) + ": ";
    const std::size_t idx = key_index(k);
    if (st.set_on_line[idx] != 0)
    {
        error =
            head + "duplicate key (first set on line " + std::to_string(st.set_on_line[idx]) + ")";
        return false;
    }
    st.set_on_line[idx] = lineno;
    Value v;
    std::string problem;
    if (!convert(*k, value_part(line.substr(eq + 1)), v, problem))
    {
        error = head + problem;
        return false;
    }
    k->set(out, v);
    return true;
}

bool whole_file_checks(std::string_view filename, const Config& cfg, std::string& error)
{
    const std::string head = std::string(filename) + ": ";
    const bool has_cs = !cfg.connection_string.empty();
    const bool has_file = !cfg.connection_string_file.empty();
    if (!has_cs && !has_file && cfg.identity == IdentitySource::ConnectionString)
    {
        error =
            head + "[hub] connection_string or connection_string_file is required (neither is set)";
        return false;
    }
    if ((has_cs || has_file) && cfg.identity == IdentitySource::EdgeEnvironment)
    {
        error = head + "[hub] identity = edge-environment takes no connection_string or "
                       "connection_string_file; remove them";
        return false;
    }
    if (has_cs && has_file)
    {
        error =
            head + "[hub] connection_string and connection_string_file are both set; use only one";
        return false;
    }
    if (cfg.source == SourceType::Mqtt && cfg.source_topic.empty())
    {
        error = head + "[source] topic is required when type = mqtt";
        return false;
    }
    return true;
}

} // namespace

namespace
{
// GATEWAY_AGENT_<SECTION>_<KEY>, upper case: the environment name of a conf key.
std::string env_name(const KeyDef& k)
{
    std::string name = "GATEWAY_AGENT_";
    for (const std::string_view part : {k.section, std::string_view("_"), k.key})
        for (const char c : part)
            name += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return name;
}

// The environment after the file: conf < environment < twin.
bool apply_env(const EnvLookup& lookup,
               const ParseState& st,
               Config& cfg,
               ConfOrigins* origins,
               std::string& error)
{
    for (const auto& k : kKeys)
    {
        const std::string name = env_name(k);
        const std::optional<std::string> text = lookup(name);
        if (!text)
        {
            const std::size_t line = st.set_on_line[key_index(&k)];
            if (origins != nullptr && line != 0)
                origins->push_back(
                    {.section = std::string(k.section),
                     .key = std::string(k.key),
                     .origin = std::string(st.filename) + ":" + std::to_string(line)});
            continue;
        }
        Value v;
        std::string problem;
        if (!convert(k, *text, v, problem))
        {
            error = "environment ";
            error.append(name).append(" ([").append(k.section).append("] ").append(k.key);
            error.append("): ").append(problem);
            return false;
        }
        k.set(cfg, v);
        if (origins != nullptr)
            origins->push_back({.section = std::string(k.section),
                                .key = std::string(k.key),
                                .origin = "environment " + name});
    }
    return true;
}
} // namespace

bool parse_conf(std::string_view text, std::string_view filename, Config& out, std::string& error)
{
    return parse_conf(text, filename, nullptr, nullptr, out, error);
}

bool parse_conf(std::string_view text,
                std::string_view filename,
                const EnvLookup* env,
                ConfOrigins* origins,
                Config& out,
                std::string& error)
{
    error.clear();
    Config cfg;
    // The table's defaults are applied through the same conversion as file values.
    for (const auto& k : kKeys)
    {
        Value v;
        std::string problem;
        if (!convert(k, k.def, v, problem))
        {
            error = std::string(filename) + ": internal: bad default for [" +
                    std::string(k.section) + "] " + std::string(k.key);
            return false;
        }
        k.set(cfg, v);
    }
    cfg.threshold_set = false; // the defaults above went through the setter too
    if (text.starts_with("\xEF\xBB\xBF"))
    {
        text.remove_prefix(3);
    }
    ParseState st;
    st.filename = filename;
    std::string_view section;
    std::size_t lineno = 0;
    while (!text.empty())
    {
        ++lineno;
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.ends_with('\r'))
        {
            line.remove_suffix(1);
        }
        if (!parse_line(st, line, lineno, section, cfg, error))
        {
            return false;
        }
    }
    if (env != nullptr && !apply_env(*env, st, cfg, origins, error))
    {
        return false;
    }
    if (!whole_file_checks(filename, cfg, error))
    {
        return false;
    }
    out = std::move(cfg);
    return true;
}

std::string conf_help()
{
    std::string out =
        "Conf file: INI with [section] and key = value; '#' or ';' starts a comment line,\n"
        "and ' # text' after a value is a comment. Every key can also be set in the\n"
        "environment as GATEWAY_AGENT_<SECTION>_<KEY> (e.g. GATEWAY_AGENT_FILTER_THRESHOLD=30),\n"
        "which overrides the file; the twin's desired TemperatureThreshold overrides both.\n"
        "Keys, defaults and meaning:\n";
    std::string_view section;
    for (const auto& k : kKeys)
    {
        if (k.section != section)
        {
            section = k.section;
            out += "\n[" + std::string(section) + "]\n";
        }
        out += "  " + std::string(k.key) + " = " + std::string(k.def);
        switch (k.kind)
        {
        case Kind::Uint:
            out += "    (integer " + range_text(k) + ")";
            break;
        case Kind::Double:
            out += "    (number)";
            break;
        case Kind::Enum:
            out += "    (" + enum_text(k) + ")";
            break;
        case Kind::Path:
            out += "    (path)";
            break;
        case Kind::String:
            break;
        }
        if (k.secret)
        {
            out += "    (secret)";
        }
        out += "\n      " + std::string(k.help) + "\n";
    }
    return out;
}

std::string conf_summary(const Config& cfg, std::string_view identity, std::string_view host)
{
    std::string out = "identity=" + std::string(identity);
    out += " host=" + std::string(host) + ":" + std::to_string(cfg.port);
    out += identity.find('/') != std::string_view::npos ? " mode=module" : " mode=device";
    out += " transport=" + std::string(to_string(cfg.transport));
    out += " threshold=" + format_double(cfg.threshold);
    out += " field=" + cfg.field;
    out += " source=" + std::string(to_string(cfg.source)) + "(";
    switch (cfg.source)
    {
    case SourceType::ModuleInput:
        out += cfg.input + "->" + cfg.output;
        break;
    case SourceType::Mqtt:
        out += cfg.source_broker + " " + cfg.source_topic;
        break;
    case SourceType::Udp:
        out += cfg.source_bind;
        break;
    case SourceType::Simulated:
        out += "every " + std::to_string(cfg.source_interval_ms) + "ms seed " +
               std::to_string(cfg.source_seed);
        break;
    }
    out += ")";
    out += " reboot=" + std::string(to_string(cfg.reboot_mode));
    out += " state=" + cfg.state_dir;
    return out;
}

namespace
{
template <std::size_t N> const char* name_of(const std::array<std::string_view, N>& names, auto e)
{
    const auto i = static_cast<std::size_t>(e);
    // The arrays hold string literals, so data() is NUL-terminated.
    return i < N ? names[i].data() : "?";
}
} // namespace

const char* to_string(SourceType t)
{
    return name_of(kSourceNames, t);
}
const char* to_string(RebootMode m)
{
    return name_of(kRebootNames, m);
}
const char* to_string(IdentitySource i)
{
    return name_of(kIdentityNames, i);
}
const char* to_string(Transport t)
{
    return name_of(kTransportNames, t);
}

} // namespace ga
