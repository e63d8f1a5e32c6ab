#include "auth.h"
#include "codec.h"

#include <gtest/gtest.h>

using namespace hubemu;

TEST(Codec, Base64RoundTripAndStrictness)
{
    EXPECT_EQ(base64_encode("password"), "cGFzc3dvcmQ=");
    EXPECT_EQ(base64_decode("cGFzc3dvcmQ=").value(), "password");
    EXPECT_EQ(base64_decode("cGFzc3dvcmQ").value(), "password");
    EXPECT_FALSE(base64_decode("cGF*c3dvcmQ="));
    EXPECT_EQ(base64_decode("key=").value(), std::string("\x91\xec", 2));
}

TEST(Codec, UrlEncodeDecode)
{
    EXPECT_EQ(url_encode("a/b+c=d$.e~"), "a%2Fb%2Bc%3Dd%24.e~");
    EXPECT_EQ(url_decode("a%2fb%2Bc+d").value(), "a/b+c+d");
    EXPECT_FALSE(url_decode("bad%2"));
    EXPECT_FALSE(url_decode("bad%zz"));
}

TEST(Codec, Utf8)
{
    EXPECT_TRUE(is_valid_utf8("plain \xc3\xa9 \xe2\x82\xac"));
    EXPECT_FALSE(is_valid_utf8("\xff"));
    EXPECT_FALSE(is_valid_utf8("\xc3"));
    EXPECT_FALSE(is_valid_utf8("\xc0\x80")); // overlong
}

// protocol.md 2.2 V1: HMAC and token from the Node SDK tests.
TEST(Sas, NodeVectorV1)
{
    std::string key = base64_decode("cGFzc3dvcmQ=").value();
    EXPECT_EQ(base64_encode(hmac_sha256(key, "string-to-sign")),
              "o1n1hiIVgzVA2+krq9ty1Z4xsIJKJZP3dYT8MOi65Y4=");
    EXPECT_EQ(base64_encode(hmac_sha256(key, "uri\n12345")),
              "kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk=");
}

// protocol.md 2.2 V2/V3 (lenient keys padded) and V5.
TEST(Sas, MakeMatchesVectors)
{
    EXPECT_EQ(make_sas("host", {"device", {}}, "key=", 12345),
              "SharedAccessSignature sr=host%2Fdevices%2Fdevice&sig="
              "wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT%2BkKHc%3D&se=12345");
    EXPECT_EQ(make_sas("fake.host.name", {"fakeDeviceId", {}}, "fakeKey=", 10),
              "SharedAccessSignature sr=fake.host.name%2Fdevices%2FfakeDeviceId&sig="
              "bYz5R2IFTaejB6pgYOxns2mw6lcuA4VSy8kJbYQp0Sc%3D&se=10");
    const char* k = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";
    EXPECT_EQ(make_sas("myiothub.azure-devices.net", {"my_device", "my_module"}, k, 1578941692),
              "SharedAccessSignature sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device%2Fmodules"
              "%2Fmy_module&sig=iAQRxkGTvQpFKsLRYZsj0xf8UcgKBbNZhWDb5pCSK9o%3D&se=1578941692");
}

namespace
{
const char* kKey = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";
SasPolicy policy()
{
    return SasPolicy{{"myhub.azure-devices.net"}, 0};
}
} // namespace

TEST(Sas, VerifyAcceptsAndRejects)
{
    Identity m{"edgedev", "filter"};
    std::string why;
    int64_t exp = 0;
    auto tok = make_sas("myhub.azure-devices.net", m, kKey, 2000);
    EXPECT_TRUE(verify_sas(tok, kKey, m, policy(), 1000, &why, &exp)) << why;
    EXPECT_EQ(exp, 2000);
    EXPECT_FALSE(verify_sas(tok, kKey, m, policy(), 2001, &why));
    EXPECT_NE(why.find("expired"), std::string::npos);
    SasPolicy skew = policy();
    skew.clock_skew_s = 300;
    EXPECT_TRUE(verify_sas(tok, kKey, m, skew, 2200, &why));
    EXPECT_FALSE(verify_sas(tok, "AAAA", m, policy(), 1000, &why));
    EXPECT_NE(why.find("signature"), std::string::npos);
    EXPECT_FALSE(verify_sas(tok, kKey, Identity{"edgedev", "other"}, policy(), 1000, &why));
    EXPECT_FALSE(verify_sas(make_sas("other.net", m, kKey, 2000), kKey, m, policy(), 1000, &why));
    EXPECT_FALSE(verify_sas(tok + "&skn=iothubowner", kKey, m, policy(), 1000, &why));
    EXPECT_FALSE(verify_sas("Bearer x", kKey, m, policy(), 1000, &why));
    // ids in the audience compare case-insensitively, host too
    auto upper = make_sas("MYHUB.azure-devices.net", {"EDGEDEV", "Filter"}, kKey, 2000);
    EXPECT_TRUE(verify_sas(upper, kKey, m, policy(), 1000, &why)) << why;
}

TEST(Sas, FieldOrderAndLowercaseHexAccepted)
{
    Identity d{"dev1", {}};
    std::string good = make_sas("myhub.azure-devices.net", d, kKey, 5000);
    // Reorder to Node's sr,sig,se -> se,sr,sig: parse by name.
    auto sr = good.substr(good.find("sr="), good.find("&sig=") - good.find("sr="));
    auto sig = good.substr(good.find("sig="), good.find("&se=") - good.find("sig="));
    std::string reordered = "SharedAccessSignature se=5000&" + sr + "&" + sig;
    std::string why;
    EXPECT_TRUE(verify_sas(reordered, kKey, d, policy(), 10, &why)) << why;
}

TEST(Username, Forms)
{
    std::string why;
    auto u = parse_username(
        "myhub.azure-devices.net/edgedev/filter/?api-version=2021-04-12&DeviceClientType=x%2F1",
        &why);
    ASSERT_TRUE(u) << why;
    EXPECT_EQ(u->identity.id(), "edgedev/filter");
    EXPECT_EQ(u->params["DeviceClientType"], "x/1");
    u = parse_username("h/dev1/?api-version=2020-09-30", &why);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->identity.id(), "dev1");
    u = parse_username("h/dev1/api-version=2018-06-30", &why);
    ASSERT_TRUE(u) << why;
    EXPECT_FALSE(parse_username("h/dev1/", &why));
    EXPECT_FALSE(parse_username("h/dev1/?DeviceClientType=x", &why));
    EXPECT_FALSE(parse_username("h/a/b/c/?api-version=1", &why));
}

TEST(ClientId, Parse)
{
    EXPECT_EQ(parse_client_id("d")->id(), "d");
    EXPECT_EQ(parse_client_id("d/m")->module, "m");
    EXPECT_FALSE(parse_client_id(""));
    EXPECT_FALSE(parse_client_id("a/b/c"));
    EXPECT_FALSE(parse_client_id("a/"));
}
