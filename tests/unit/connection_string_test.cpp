// SPDX-License-Identifier: MIT
#include "connection_string.h"

#include <gtest/gtest.h>

#include <string>

namespace
{

using ga::ConnectionString;
using ga::ConnStrError;
using ga::parse_connection_string;

constexpr std::string_view kKey = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";

// True when `part` is a view into `whole` (parsers must not copy).
bool inside(std::string_view part, std::string_view whole)
{
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

TEST(ConnectionString, DeviceFromProtocolDoc)
{
    const std::string text =
        "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + std::string(kKey);
    ConnectionString cs;
    const auto r = parse_connection_string(text, cs);
    ASSERT_TRUE(r.ok()) << ga::describe(r.error);
    EXPECT_EQ(cs.host_name, "myhub.azure-devices.net");
    EXPECT_EQ(cs.device_id, "dev1");
    EXPECT_EQ(cs.module_id, "");
    EXPECT_EQ(cs.gateway_host_name, "");
    EXPECT_EQ(cs.shared_access_key, kKey); // keeps the '=' padding after the first '='
    EXPECT_FALSE(cs.is_module());
    EXPECT_EQ(cs.connect_host(), "myhub.azure-devices.net");
    EXPECT_TRUE(inside(cs.host_name, text));
    EXPECT_TRUE(inside(cs.shared_access_key, text));
}

TEST(ConnectionString, ModuleBehindGateway)
{
    const std::string text =
        "HostName=myhub.azure-devices.net;DeviceId=edgedev;ModuleId=filtermodule;"
        "GatewayHostName=edge.local;SharedAccessKey=" +
        std::string(kKey);
    ConnectionString cs;
    ASSERT_TRUE(parse_connection_string(text, cs).ok());
    EXPECT_EQ(cs.device_id, "edgedev");
    EXPECT_EQ(cs.module_id, "filtermodule");
    EXPECT_EQ(cs.gateway_host_name, "edge.local");
    EXPECT_TRUE(cs.is_module());
    EXPECT_EQ(cs.connect_host(), "edge.local");
}

TEST(ConnectionString, OrderDoesNotMatterAndTrailingSemicolonIsFine)
{
    const std::string text =
        "SharedAccessKey=" + std::string(kKey) + ";ModuleId=m;DeviceId=d;HostName=h;";
    ConnectionString cs;
    ASSERT_TRUE(parse_connection_string(text, cs).ok());
    EXPECT_EQ(cs.host_name, "h");
    EXPECT_EQ(cs.device_id, "d");
    EXPECT_EQ(cs.module_id, "m");
}

TEST(ConnectionString, IdsMayUseEveryAllowedPunctuation)
{
    // IoT Hub's own set minus '+' and '#' (MQTT wildcards in our subscriptions, refused below).
    const std::string id = "a-:.%_*?!(),=@$'Z9";
    const std::string text =
        "HostName=h_1.x-y;DeviceId=" + id + ";SharedAccessKey=" + std::string(kKey);
    ConnectionString cs;
    ASSERT_TRUE(parse_connection_string(text, cs).ok());
    EXPECT_EQ(cs.device_id, id); // '=' inside a value is kept: only the first '=' splits
    EXPECT_EQ(cs.host_name, "h_1.x-y");
}

TEST(ConnectionString, IdLengthLimitIs128)
{
    ConnectionString cs;
    const std::string ok =
        "HostName=h;DeviceId=" + std::string(128, 'd') + ";SharedAccessKey=" + std::string(kKey);
    EXPECT_TRUE(parse_connection_string(ok, cs).ok());
    const std::string bad =
        "HostName=h;DeviceId=" + std::string(129, 'd') + ";SharedAccessKey=" + std::string(kKey);
    const auto r = parse_connection_string(bad, cs);
    EXPECT_EQ(r.error, ConnStrError::BadId);
    EXPECT_EQ(r.detail, "DeviceId");
}

struct TopicCharCase
{
    std::string device;
    std::string module; // empty: no ModuleId
    std::string key;
    char bad;
};

class ConnectionStringTopicChars : public testing::TestWithParam<TopicCharCase>
{
};

// '+' and '#' are MQTT wildcards and '/' a topic level: in an id they would widen the agent's
// subscriptions to other identities' topics. The error names the key and the character.
TEST_P(ConnectionStringTopicChars, IdsWithWildcardsOrSlashAreRefusedNamingKeyAndCharacter)
{
    const auto& c = GetParam();
    std::string text = "HostName=h;DeviceId=" + c.device;
    if (!c.module.empty())
        text += ";ModuleId=" + c.module;
    text += ";SharedAccessKey=" + std::string(kKey);
    ConnectionString cs;
    const auto r = parse_connection_string(text, cs);
    EXPECT_EQ(r.error, ConnStrError::TopicCharInId) << text;
    EXPECT_EQ(r.detail, c.key) << text;
    EXPECT_EQ(r.bad_char, c.bad) << text;
    EXPECT_NE(std::string(ga::describe(r.error)).find("wildcard"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(All,
                         ConnectionStringTopicChars,
                         testing::Values(TopicCharCase{"dev+1", "", "DeviceId", '+'},
                                         TopicCharCase{"#", "", "DeviceId", '#'},
                                         TopicCharCase{"a/b", "", "DeviceId", '/'},
                                         TopicCharCase{"edge", "filter+", "ModuleId", '+'},
                                         TopicCharCase{"edge", "fil#ter", "ModuleId", '#'},
                                         TopicCharCase{"edge", "modules/x", "ModuleId", '/'},
                                         // The first offending character is the one named.
                                         TopicCharCase{"a#b+c", "", "DeviceId", '#'}));

TEST(ConnectionString, OtherErrorsNameNoCharacter)
{
    ConnectionString cs;
    const auto r =
        parse_connection_string("HostName=h;DeviceId=a b;SharedAccessKey=" + std::string(kKey), cs);
    EXPECT_EQ(r.error, ConnStrError::BadId);
    EXPECT_EQ(r.bad_char, '\0');
    // Host names never had these characters: still the plain BadId.
    EXPECT_EQ(
        parse_connection_string("HostName=h+x;DeviceId=d;SharedAccessKey=" + std::string(kKey), cs)
            .error,
        ConnStrError::BadId);
}

struct ErrorCase
{
    std::string text;
    ConnStrError error;
    std::string detail;
};

class ConnectionStringErrors : public testing::TestWithParam<ErrorCase>
{
};

TEST_P(ConnectionStringErrors, ReportsKindAndKeyButNeverTheValue)
{
    const auto& c = GetParam();
    ConnectionString cs;
    cs.host_name = "stale";
    const auto r = parse_connection_string(c.text, cs);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error, c.error) << c.text;
    EXPECT_EQ(r.detail, c.detail) << c.text;
    EXPECT_EQ(cs.host_name, "") << "out is reset on failure";
    EXPECT_EQ(r.detail.find("secret"), std::string_view::npos);
    EXPECT_NE(std::string(ga::describe(r.error)), "");
}

const std::string K = std::string(kKey);

INSTANTIATE_TEST_SUITE_P(
    All,
    ConnectionStringErrors,
    testing::Values(
        ErrorCase{"", ConnStrError::Empty, ""},
        ErrorCase{";", ConnStrError::Empty, ""},
        ErrorCase{"HostName=h;;DeviceId=d;SharedAccessKey=" + K, ConnStrError::Malformed, ""},
        ErrorCase{"HostName=h;DeviceId=d;SharedAccessKey=" + K + ";;", ConnStrError::Malformed, ""},
        ErrorCase{"HostName=h;secret;DeviceId=d", ConnStrError::Malformed, ""},
        ErrorCase{"HostName=h;=secret;DeviceId=d", ConnStrError::Malformed, ""},
        ErrorCase{"HostName=h;Foo=secret;DeviceId=d", ConnStrError::UnknownKey, "Foo"},
        ErrorCase{"hostname=h;DeviceId=d", ConnStrError::UnknownKey, "hostname"},
        ErrorCase{"HostName=h;HostName=secret", ConnStrError::DuplicateKey, "HostName"},
        ErrorCase{"HostName=h;DeviceId=d;DeviceId=d", ConnStrError::DuplicateKey, "DeviceId"},
        ErrorCase{"HostName=h;DeviceId=", ConnStrError::EmptyValue, "DeviceId"},
        ErrorCase{"HostName=h;DeviceId=d;ModuleId=;SharedAccessKey=" + K, ConnStrError::EmptyValue,
                  "ModuleId"},
        ErrorCase{"DeviceId=d;SharedAccessKey=" + K, ConnStrError::MissingHostName, "HostName"},
        ErrorCase{"HostName=h;SharedAccessKey=" + K, ConnStrError::MissingDeviceId, "DeviceId"},
        ErrorCase{"HostName=h;DeviceId=d", ConnStrError::MissingKey, "SharedAccessKey"},
        ErrorCase{"HostName=h;DeviceId=d;x509=true", ConnStrError::Unsupported, "x509"},
        ErrorCase{"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + K,
                  ConnStrError::Unsupported, "SharedAccessKeyName"},
        ErrorCase{"HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=secret",
                  ConnStrError::Unsupported, "SharedAccessSignature"},
        ErrorCase{"HostName=h;DeviceId=d;SharedAccessKey=secret", ConnStrError::BadKey,
                  "SharedAccessKey"},
        ErrorCase{"HostName=h;DeviceId=d;SharedAccessKey=sec=ret=", ConnStrError::BadKey,
                  "SharedAccessKey"},
        ErrorCase{"HostName=h;DeviceId=d;SharedAccessKey=====", ConnStrError::BadKey,
                  "SharedAccessKey"},
        ErrorCase{"HostName=h/secret;DeviceId=d", ConnStrError::BadId, "HostName"},
        ErrorCase{"HostName=h:8883;DeviceId=d", ConnStrError::BadId, "HostName"},
        ErrorCase{"HostName=h;GatewayHostName=edge local", ConnStrError::BadId, "GatewayHostName"},
        ErrorCase{"HostName=h;DeviceId=se/cret", ConnStrError::TopicCharInId, "DeviceId"},
        ErrorCase{"HostName=h;DeviceId=d;ModuleId=se cret", ConnStrError::BadId, "ModuleId"},
        ErrorCase{"HostName=h;DeviceId=secret\xc3\xa9", ConnStrError::BadId, "DeviceId"},
        ErrorCase{std::string("HostName=h;DeviceId=d\0x", 23), ConnStrError::BadId, "DeviceId"},
        ErrorCase{" HostName=h;DeviceId=d", ConnStrError::UnknownKey, " HostName"}));

TEST(ConnectionString, HugeInputIsRejectedWithoutEchoingIt)
{
    std::string text = "HostName=h;DeviceId=" + std::string(100000, 'x') + ";SharedAccessKey=" + K;
    ConnectionString cs;
    const auto r = parse_connection_string(text, cs);
    EXPECT_EQ(r.error, ConnStrError::BadId);
    EXPECT_EQ(r.detail, "DeviceId");
}

TEST(ConnectionString, DescribeCoversEveryError)
{
    for (int i = 0; i <= static_cast<int>(ConnStrError::BadId); ++i)
    {
        const std::string s = ga::describe(static_cast<ConnStrError>(i));
        EXPECT_FALSE(s.empty());
        EXPECT_NE(s, "unknown connection string error");
    }
}

} // namespace
