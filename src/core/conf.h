// SPDX-License-Identifier: MIT
// The conf file (contract.md): INI with [section] and key = value, driven by one declarative
// table of keys that also produces --help text and the --check-config summary.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ga
{

enum class Transport
{
    Tls,
    Tcp,
};
enum class SourceType
{
    ModuleInput,
    Mqtt,
    Udp,
    Simulated,
};
enum class IdentitySource
{
    Auto,             // the conf's connection string if set, else the IoT Edge environment
    ConnectionString, // [hub] connection_string or connection_string_file
    EdgeEnvironment,  // IOTEDGE_* variables set by the IoT Edge runtime (workload API signs)
};

enum class RebootMode
{
    RequestFile,
    Simulate,
    Disabled,
};

struct Config
{
    // [hub]
    std::string connection_string; // secret: never printed
    std::string connection_string_file;
    IdentitySource identity = IdentitySource::Auto;
    std::uint32_t port = 8883;
    std::string ca_file; // empty: the system bundle
    Transport transport = Transport::Tls;
    std::uint32_t sas_ttl = 3600;
    std::uint32_t keepalive = 240;
    std::string model_id;
    std::uint32_t max_inflight = 64; // alerts sent and not yet acknowledged
    // [filter]
    std::string field = "machine.temperature";
    double threshold = 25.0;
    std::string input = "input1";
    std::string output = "output1";
    // [source]
    SourceType source = SourceType::ModuleInput;
    std::string source_broker = "127.0.0.1:1883"; // mqtt: host:port of the local broker
    std::string source_topic;                     // mqtt: topic filter (required for mqtt)
    std::string source_bind = "127.0.0.1:5683";   // udp: address:port to bind
    std::uint32_t source_interval_ms = 5000;      // simulated: one reading per interval
    std::uint64_t source_seed = 1;                // simulated: deterministic readings
    // [reboot]
    RebootMode reboot_mode = RebootMode::RequestFile;
    std::uint32_t reboot_simulate_delay = 0;
    // [queue]
    std::uint64_t queue_max_bytes = 67108864;
    std::uint32_t queue_max_age = 0; // seconds; 0: alerts never expire
    // [state]
    std::string state_dir = "/var/lib/gateway-agent";
    // [log]
    std::uint32_t stats_interval = 300; // seconds between counter log lines and agentStats
    // Whether the file sets [filter] threshold (an explicit 25 is "conf", not "default"). Last, in
    // the padding after the last member.
    bool threshold_set = false;
};

/// Parses conf text. On error returns false and sets `error` to "file:line: [section] key: problem"
/// (or "file: problem" for whole-file problems such as a missing required key).
[[nodiscard]] bool
parse_conf(std::string_view text, std::string_view filename, Config& out, std::string& error);

/// Returns a variable's value, or nullopt when it is not set (the process environment in the
/// program, a map in tests). The same alias as edge_env.h's.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
/// Where a value that is not the default came from: "file:line" or "environment NAME".
struct ConfOrigin
{
    std::string section;
    std::string key;
    std::string origin;
};
using ConfOrigins = std::vector<ConfOrigin>;
/// parse_conf, then every GATEWAY_AGENT_<SECTION>_<KEY> variable `env` knows overrides the file
/// (conf < environment < twin), checked by the same rules; an error names the variable. With
/// `origins`, says where each value that is not the default came from.
[[nodiscard]] bool parse_conf(std::string_view text,
                              std::string_view filename,
                              const EnvLookup* env,
                              ConfOrigins* origins,
                              Config& out,
                              std::string& error);

/// The conf reference for --help: every section and key with its default and meaning.
[[nodiscard]] std::string conf_help();

/// One line for --check-config: identity, host, mode, threshold, source; never the key or a token.
/// `identity` and `host` come from the parsed connection string.
[[nodiscard]] std::string
conf_summary(const Config& cfg, std::string_view identity, std::string_view host);

[[nodiscard]] const char* to_string(SourceType t);
[[nodiscard]] const char* to_string(RebootMode m);
[[nodiscard]] const char* to_string(IdentitySource i);
[[nodiscard]] const char* to_string(Transport t);

} // namespace ga
