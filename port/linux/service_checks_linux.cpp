// SPDX-License-Identifier: MIT
// What --check-config needs from the OS beyond files: the service user's identity and a CA file
// parsed the way the TLS transport will parse it.
#include "port.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <mbedtls/x509_crt.h>
#include <pwd.h>
#include <unistd.h>

namespace ga::port
{

UserSwitch become_user(const std::string& name, std::string& err)
{
    passwd entry{};
    passwd* pw = nullptr;
    std::array<char, 4096> buf{};
    const int rc = ::getpwnam_r(name.c_str(), &entry, buf.data(), buf.size(), &pw);
    if (pw == nullptr)
    {
        err = rc != 0 ? "cannot look up user " + name + ": " + std::strerror(rc)
                      : "user " + name + " does not exist";
        return UserSwitch::NoSuchUser;
    }
    // Group list first, then the group, then the user: each step needs the privileges the next
    // one drops.
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
        ::setuid(pw->pw_uid) != 0)
    {
        err = "cannot switch to user " + name + ": " + std::strerror(errno);
        return UserSwitch::Failed;
    }
    return UserSwitch::Switched;
}

bool check_ca_file(const std::string& path, std::string& err)
{
    if (::access(path.c_str(), R_OK) != 0)
    {
        err = path + ": cannot read: " + std::strerror(errno);
        return false;
    }
    mbedtls_x509_crt chain;
    mbedtls_x509_crt_init(&chain);
    const int rc = mbedtls_x509_crt_parse_file(&chain, path.c_str());
    const bool any = chain.version != 0; // at least one certificate was parsed
    mbedtls_x509_crt_free(&chain);
    if (rc < 0 || !any)
    {
        err = path + ": no PEM certificate could be read from it";
        return false;
    }
    if (rc > 0)
    {
        err = path + ": " + std::to_string(rc) + " entries are not certificates";
        return false;
    }
    return true;
}

} // namespace ga::port
