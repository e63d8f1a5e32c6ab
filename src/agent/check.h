// SPDX-License-Identifier: MIT
// `gateway-agent check`: on-site diagnostics of everything the agent needs (clock, name
// resolution, TCP, TLS, authentication, subscriptions, twin, reboot path unit, state dir), one
// line per check with the fix. The output format is described at the top of check.cpp.
#pragma once

#include "agent.h"

#include <cstdio>

namespace ga
{

/// Exit code when at least one check failed (0 when none did; WARN does not fail).
inline constexpr int kCheckFailedExit = 1;

/// Runs every check in order and writes one line each to `out`. Bounded in time (each step at
/// most 10 s, all of them at most 60 s). Never prints the key or a token. Returns 0 or
/// kCheckFailedExit.
[[nodiscard]] int run_check(const AgentOptions& opt, std::FILE* out);

} // namespace ga
