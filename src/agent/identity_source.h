// SPDX-License-Identifier: MIT
// Where the agent's identity comes from: the conf's connection string (inline or in a private
// file), or, when the conf has none, the IoT Edge module environment (docs/iot-edge.md): the
// IOTEDGE_* variables with SAS tokens signed by the workload API, or the SDKs' local-debugging
// fallback EdgeHubConnectionString + EdgeModuleCACertificateFile. One home, shared by start-up
// and --check-config.
#pragma once

#include "agent.h"
#include "edge_env.h"

#include <string>

namespace ga
{

/// Fills opt.connection_string / opt.identity (and for IoT Edge opt.edge, opt.workload,
/// opt.ca_file) from opt.config ([hub] identity says which source) and the process environment. On
/// failure returns false with a message that names the conf file and key, or each bad environment
/// variable (never a secret).
[[nodiscard]] bool load_identity(const std::string& conf_path, AgentOptions& opt, std::string& err);

/// The same with the environment given (tests).
[[nodiscard]] bool load_identity(const std::string& conf_path,
                                 AgentOptions& opt,
                                 const EnvLookup& env,
                                 std::string& err);

/// Whether the conf or the environment names an identity at all ([hub] identity says where to
/// look): false only on a gateway not configured yet, as with the packaged conf. Whether what is
/// named is usable is load_identity's question.
[[nodiscard]] bool identity_named(const Config& cfg, const EnvLookup& env);

/// The trust bundle file the hub connection writes in the state dir.
inline constexpr const char* kTrustBundleFile = "edge-trust-bundle.pem";

} // namespace ga
