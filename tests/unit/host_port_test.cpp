// SPDX-License-Identifier: MIT
#include "host_port.h"

#include <gtest/gtest.h>

namespace
{

TEST(HostPort, SplitsAtTheLastColon)
{
    std::string host;
    std::uint16_t port = 0;
    ASSERT_TRUE(ga::split_host_port("127.0.0.1:1883", 1, host, port));
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(port, 1883);
    ASSERT_TRUE(ga::split_host_port("[::1]:8883", 1, host, port));
    EXPECT_EQ(host, "[::1]");
    EXPECT_EQ(port, 8883);
}

TEST(HostPort, PortZeroOnlyWhenAllowed)
{
    std::string host;
    std::uint16_t port = 7;
    EXPECT_TRUE(ga::split_host_port("127.0.0.1:0", 0, host, port));
    EXPECT_EQ(port, 0);
    EXPECT_FALSE(ga::split_host_port("127.0.0.1:0", 1, host, port));
}

TEST(HostPort, RefusesWhatIsNotHostColonPort)
{
    std::string host;
    std::uint16_t port = 0;
    for (const char* bad :
         {"", ":1883", "host", "host:", "host:65536", "host:-1", "host:12a", "host: 1883"})
        EXPECT_FALSE(ga::split_host_port(bad, 0, host, port)) << bad;
}

TEST(HostPort, Ipv4Literal)
{
    EXPECT_TRUE(ga::is_ipv4_literal("0.0.0.0"));
    EXPECT_TRUE(ga::is_ipv4_literal("127.0.0.1"));
    EXPECT_FALSE(ga::is_ipv4_literal("localhost"));
    EXPECT_FALSE(ga::is_ipv4_literal("::1"));
    EXPECT_FALSE(ga::is_ipv4_literal("127.0.0.256"));
}

} // namespace
