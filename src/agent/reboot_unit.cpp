// SPDX-License-Identifier: MIT
#include "reboot_unit.h"

#include "port.h"
#include "process.h"

namespace ga
{

RebootUnit query_reboot_unit(std::string& detail)
{
    if (port::env("INVOCATION_ID").empty())
    {
        detail = "not started by systemd";
        return RebootUnit::NotManaged;
    }
    int code = 0;
    switch (port::run_command({"systemctl", "is-active", "--quiet", kRebootPathUnit}, 2000, code))
    {
    case port::RunStatus::Exited:
        // 0 active; 3 inactive or failed; 4 no such unit; 1 could not ask (e.g. no system bus).
        if (code == 0)
        {
            detail = "active";
            return RebootUnit::Active;
        }
        detail = "systemctl is-active " + std::string(kRebootPathUnit) + ": exit " +
                 std::to_string(code);
        return code == 1 ? RebootUnit::Unknown : RebootUnit::Inactive;
    case port::RunStatus::NotFound:
        detail = "systemctl not found";
        return RebootUnit::Unknown;
    case port::RunStatus::TimedOut:
        detail = "systemctl is-active timed out";
        return RebootUnit::Unknown;
    case port::RunStatus::Signaled:
    case port::RunStatus::Failed:
        break;
    }
    detail = "systemctl is-active could not run";
    return RebootUnit::Unknown;
}

} // namespace ga
