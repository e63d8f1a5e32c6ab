// SPDX-License-Identifier: MIT
// Whether the systemd path unit that turns a reboot request into a reboot is active. Asked at
// start and before each rebootDevice in request-file mode: a 200 must not promise a reboot that
// nothing will carry out.
#pragma once

#include <string>

namespace ga
{

enum class RebootUnit
{
    Active,
    Inactive,   // systemctl says it is not active (or not installed)
    Unknown,    // systemctl could not be asked (missing, timed out, no bus)
    NotManaged, // not started by systemd: nothing to ask
};

inline constexpr const char* kRebootPathUnit = "gateway-agent-reboot.path";

/// Asks `systemctl is-active` (bounded, about 2 s at most) when started by systemd
/// (INVOCATION_ID set). `detail` says what was seen, for log lines.
[[nodiscard]] RebootUnit query_reboot_unit(std::string& detail);

} // namespace ga
