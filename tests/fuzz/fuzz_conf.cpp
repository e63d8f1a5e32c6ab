// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to parse_conf. Invariants: a failure always explains itself and names the
// file; the connection string's value never appears in an error; a success yields a summary that
// does not contain the connection string.
#include "conf.h"
#include "fuzz_check.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace
{

constexpr std::string_view kMarker = "SECRETMARKERb64ZmFrZWtleQ==";

void check_one(std::string_view text, std::string_view secret)
{
    ga::Config cfg;
    std::string error;
    const bool ok = ga::parse_conf(text, "f.conf", cfg, error);
    if (!ok)
    {
        FUZZ_CHECK(error.starts_with("f.conf"));
        FUZZ_CHECK(error.size() > 8);
        if (!secret.empty())
        {
            FUZZ_CHECK(error.find(secret) == std::string::npos);
        }
        return;
    }
    FUZZ_CHECK(error.empty());
    // Never both; exactly one with identity = connection-string, none with edge-environment
    // (auto may have either one or none: the identity may come from the IoT Edge environment).
    const int sources = static_cast<int>(!cfg.connection_string.empty()) +
                        static_cast<int>(!cfg.connection_string_file.empty());
    FUZZ_CHECK(sources <= 1);
    FUZZ_CHECK(cfg.identity != ga::IdentitySource::ConnectionString || sources == 1);
    FUZZ_CHECK(cfg.identity != ga::IdentitySource::EdgeEnvironment || sources == 0);
    const std::string summary = ga::conf_summary(cfg, "dev/mod", "host.example");
    FUZZ_CHECK(summary.starts_with("identity=dev/mod host=host.example:"));
    if (!secret.empty())
    {
        FUZZ_CHECK(summary.find(secret) == std::string::npos);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_one(text, {});
    // Again behind a [hub] section that sets a known secret: whatever follows, no message may
    // echo it (unless the input itself contains the marker, which could be echoed legitimately).
    const bool has_marker = text.find(kMarker) != std::string_view::npos;
    const std::string prefixed =
        "[hub]\nconnection_string = HostName=h;DeviceId=d;SharedAccessKey=" + std::string(kMarker) +
        "\n" + std::string(text);
    check_one(prefixed, has_marker ? std::string_view() : kMarker);
    return 0;
}
