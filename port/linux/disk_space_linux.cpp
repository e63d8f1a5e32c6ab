// SPDX-License-Identifier: MIT
#include "disk_space.h"

#include <cerrno>
#include <sys/statvfs.h>

namespace ga::port
{

bool available_bytes(const std::string& path, std::uint64_t& bytes, int& err_no)
{
    struct statvfs st
    {
    };
    if (::statvfs(path.c_str(), &st) != 0)
    {
        err_no = errno;
        return false;
    }
    // f_bavail, not f_bfree: the blocks reserved for root are not the agent's to use.
    bytes = static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_frsize);
    return true;
}

} // namespace ga::port
