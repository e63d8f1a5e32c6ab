// SPDX-License-Identifier: MIT
// The IoT Edge module environment (docs/iot-edge.md): the IOTEDGE_* variables the edge runtime
// sets for every module, and the EdgeHubConnectionString fallback the SDKs accept for local
// debugging. Pure: variables come from a lookup function, never from the process here.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ga
{

/// Returns a variable's value, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The workload API of the edge runtime, as the hub connection needs it.
struct WorkloadSettings
{
    std::string socket_path; // empty: not an edge identity (no workload API)
    std::string module_id;
    std::string generation_id;
    std::string api_version;
    std::string trust_bundle_file; // where the fetched trust bundle is written (state dir)
    [[nodiscard]] bool enabled() const { return !socket_path.empty(); }
};

struct EdgeEnv
{
    std::string workload_socket; // the absolute path from IOTEDGE_WORKLOADURI=unix://PATH
    std::string generation_id;
    std::string hub_host;
    std::string gateway_host;
    std::string device_id;
    std::string module_id;
    std::string api_version;
    std::string runtime_log_level; // empty when unset
};

/// One bad variable: its name and what is wrong (values are not secrets here, but are cut short).
struct EnvProblem
{
    std::string name;
    std::string what;
};

/// The variables of the set, in the order they are checked and reported.
inline constexpr std::string_view kEdgeVariables[] = {
    "IOTEDGE_WORKLOADURI",    "IOTEDGE_AUTHSCHEME",      "IOTEDGE_MODULEGENERATIONID",
    "IOTEDGE_IOTHUBHOSTNAME", "IOTEDGE_GATEWAYHOSTNAME", "IOTEDGE_DEVICEID",
    "IOTEDGE_MODULEID",       "IOTEDGE_APIVERSION",
};
/// The oldest workload API version with the sign and trust-bundle calls used here.
inline constexpr std::string_view kMinWorkloadApiVersion = "2018-06-28";

/// True when any IOTEDGE_* variable of the set is present (then the whole set must be valid).
[[nodiscard]] bool edge_env_present(const EnvLookup& env);

/// Parses and validates the whole set; every bad variable is reported, not only the first.
/// Returns true when `problems` is empty.
[[nodiscard]] bool
parse_edge_env(const EnvLookup& env, EdgeEnv& out, std::vector<EnvProblem>& problems);

/// The SDKs' local-debugging fallback: EdgeHubConnectionString (a module connection string with
/// GatewayHostName) and EdgeModuleCACertificateFile (the CA the gateway's certificate chains to).
struct EdgeHubFallback
{
    std::string connection_string; // secret: never printed
    std::string ca_file;
};
[[nodiscard]] bool edge_hub_fallback_present(const EnvLookup& env);
/// Checks the connection string (module identity with a gateway) and that the CA file is named.
[[nodiscard]] bool parse_edge_hub_fallback(const EnvLookup& env,
                                           EdgeHubFallback& out,
                                           std::vector<EnvProblem>& problems);

/// "NAME: what; NAME: what" for a start-up error line.
[[nodiscard]] std::string describe(const std::vector<EnvProblem>& problems);

/// RuntimeLogLevel (the edge runtime's names, any case) as a syslog level 3..7; false for an
/// unknown name.
[[nodiscard]] bool runtime_log_level(std::string_view name, int& syslog_level);

} // namespace ga
