// SPDX-License-Identifier: MIT
// The agent: one event loop thread that owns all agent state (connection state machine with
// backoff and SAS renewal, twin threshold, methods and reboot, counters) and drives the hub link,
// the sources and the alert store.
#pragma once

#include "conf.h"
#include "connection_string.h"
#include "edge_env.h"

#include <string>

namespace ga
{

struct AgentOptions
{
    Config config;
    std::string connection_string; // the text the ConnectionString views point into
    ConnectionString identity;
    // IoT Edge module identity (docs/iot-edge.md): the IOTEDGE_* set the identity's views point
    // into, and the workload API that signs the SAS tokens (enabled() only for that identity).
    EdgeEnv edge;
    WorkloadSettings workload;
    /// Overrides [hub] ca_file when set (EdgeModuleCACertificateFile of the fallback).
    std::string ca_file;
    /// Where the identity came from, for the start-up log line.
    const char* identity_origin = "conf";
};

/// Runs until SIGTERM/SIGINT. Returns the process exit code (0 clean stop, 1 fatal start-up error).
int run_agent(const AgentOptions& options);

} // namespace ga
