// SPDX-License-Identifier: MIT
// Running a short-lived helper command (e.g. `systemctl is-active UNIT`) with a hard time bound,
// for diagnostics. Not for the agent's event loop: the call blocks until the command ends or the
// bound is reached.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ga::port
{

enum class RunStatus : std::uint8_t
{
    Exited,   // `exit_code` is the command's exit status
    NotFound, // argv[0] names no executable file (searched in PATH when it has no '/')
    TimedOut, // still running at the bound: killed (SIGKILL) and reaped
    Signaled, // ended by a signal: `exit_code` is the signal number
    Failed,   // could not be started for another reason: `exit_code` is the errno
};

/// Runs argv (argv[0] searched in PATH) with stdin on /dev/null and default signal handling, and
/// waits at most `timeout_ms`. With `output`, stdout and stderr together (the first 4 KiB) are
/// captured there; without, they go to /dev/null.
[[nodiscard]] RunStatus run_command(const std::vector<std::string>& argv,
                                    std::int64_t timeout_ms,
                                    int& exit_code,
                                    std::string* output = nullptr);

} // namespace ga::port
