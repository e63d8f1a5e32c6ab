// SPDX-License-Identifier: MIT
// Where the agent's identity comes from: the conf's connection string (inline or in a private
// file). One home, shared by start-up and --check-config.
#pragma once

#include "agent.h"

#include <string>

namespace ga
{

/// Fills opt.connection_string and opt.identity from opt.config. On failure returns false with a
/// message that names the conf file and key (never the secret).
[[nodiscard]] bool load_identity(const std::string& conf_path, AgentOptions& opt, std::string& err);

} // namespace ga
