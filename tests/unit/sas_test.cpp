// SPDX-License-Identifier: MIT
// Vectors V1-V5 from protocol.md section 2.2.
#include "sas.h"

#include <gtest/gtest.h>

#include <string>

namespace
{

using ga::BufWriter;
using ga::SasError;

std::string resource(std::string_view host, std::string_view device, std::string_view module)
{
    char buf[512];
    BufWriter w(buf);
    ga::append_sas_resource(host, device, module, w);
    EXPECT_TRUE(w.ok());
    return std::string(w.view());
}

std::string token(std::string_view sr, std::string_view key, std::uint64_t se)
{
    char buf[512];
    BufWriter w(buf);
    const SasError e = ga::append_sas_token(sr, key, se, w);
    EXPECT_EQ(e, SasError::None);
    return std::string(w.view());
}

TEST(Sas, V1NodeUriResource)
{
    EXPECT_EQ(
        token("uri", "cGFzc3dvcmQ=", 12345),
        "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345");
}

TEST(Sas, V2NodeDeviceWithPaddedKey)
{
    const std::string sr = resource("host", "device", "");
    EXPECT_EQ(sr, "host%2Fdevices%2Fdevice");
    EXPECT_EQ(
        token(sr, "key=", 12345),
        "SharedAccessSignature "
        "sr=host%2Fdevices%2Fdevice&sig=wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT%2BkKHc%3D&se=12345");
}

TEST(Sas, V3NodeAuthProviderWithPaddedKey)
{
    const std::string sr = resource("fake.host.name", "fakeDeviceId", "");
    EXPECT_EQ(token(sr, "fakeKey=", 10), "SharedAccessSignature "
                                         "sr=fake.host.name%2Fdevices%2FfakeDeviceId&sig="
                                         "bYz5R2IFTaejB6pgYOxns2mw6lcuA4VSy8kJbYQp0Sc%3D&se=10");
}

TEST(Sas, V4ResourceShapesForDeviceAndModule)
{
    // The string-to-sign is sr + "\n" + se; V5 checks the HMAC over exactly these sr values.
    EXPECT_EQ(resource("myiothub.azure-devices.net", "my_device", ""),
              "myiothub.azure-devices.net%2Fdevices%2Fmy_device");
    EXPECT_EQ(resource("myiothub.azure-devices.net", "my_device", "my_module"),
              "myiothub.azure-devices.net%2Fdevices%2Fmy_device%2Fmodules%2Fmy_module");
}

TEST(Sas, V4TokenLayoutIsSrSigSe)
{
    const std::string t = token("myiothub.azure-devices.net%2Fdevices%2Fmy_device",
                                "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=", 1578941692);
    EXPECT_TRUE(t.starts_with(
        "SharedAccessSignature sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device&sig="));
    EXPECT_TRUE(t.ends_with("&se=1578941692"));
    EXPECT_EQ(t.find("skn="), std::string::npos); // device keys never carry a key name
}

TEST(Sas, V5DeviceAndModuleSignatures)
{
    constexpr std::string_view key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";
    EXPECT_EQ(token(resource("myiothub.azure-devices.net", "my_device", ""), key, 1578941692),
              "SharedAccessSignature "
              "sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device&sig="
              "dIMMdDDBGFR8eqAfYkiMxoOphaFMPtMgj7Wg%2FYB1AvU%3D&se=1578941692");
    EXPECT_EQ(
        token(resource("myiothub.azure-devices.net", "my_device", "my_module"), key, 1578941692),
        "SharedAccessSignature "
        "sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device%2Fmodules%2Fmy_module&sig="
        "iAQRxkGTvQpFKsLRYZsj0xf8UcgKBbNZhWDb5pCSK9o%3D&se=1578941692");
}

TEST(Sas, ResourceEncodesReservedCharactersInIds)
{
    EXPECT_EQ(resource("h", "a+b", "c/d"), "h%2Fdevices%2Fa%2Bb%2Fmodules%2Fc%2Fd");
}

TEST(Sas, ExpiryExtremes)
{
    const std::string t0 = token("uri", "cGFzc3dvcmQ=", 0);
    EXPECT_TRUE(t0.ends_with("&se=0"));
    const std::string tmax = token("uri", "cGFzc3dvcmQ=", UINT64_MAX);
    EXPECT_TRUE(tmax.ends_with("&se=18446744073709551615"));
}

TEST(Sas, BufferTooSmall)
{
    const std::string full = token("uri", "cGFzc3dvcmQ=", 12345);
    for (std::size_t n : {std::size_t{0}, std::size_t{10}, full.size() - 1})
    {
        std::string buf(n, '\0');
        BufWriter w(buf);
        EXPECT_EQ(ga::append_sas_token("uri", "cGFzc3dvcmQ=", 12345, w), SasError::TooLong) << n;
        EXPECT_FALSE(w.ok());
    }
    std::string exact(full.size(), '\0');
    BufWriter w(exact);
    EXPECT_EQ(ga::append_sas_token("uri", "cGFzc3dvcmQ=", 12345, w), SasError::None);
    EXPECT_EQ(w.view(), full);
}

TEST(Sas, AppendsAfterExistingText)
{
    char buf[256];
    BufWriter w(buf);
    w.append("pw:");
    ASSERT_EQ(ga::append_sas_token("uri", "cGFzc3dvcmQ=", 12345, w), SasError::None);
    EXPECT_TRUE(w.view().starts_with("pw:SharedAccessSignature sr=uri&sig="));
}

TEST(Sas, BadKeysAreRejectedBeforeWriting)
{
    for (std::string_view key : {"", "key", "fakeKey", "====", "A===", "ab=c", "abc=d===", "ab c",
                                 "ab\ncd==", "abc-", "abc_"})
    {
        char buf[256];
        BufWriter w(buf);
        EXPECT_EQ(ga::append_sas_token("uri", key, 1, w), SasError::BadKey) << key;
        EXPECT_EQ(w.size(), 0U) << key;
        EXPECT_FALSE(ga::sas_key_is_valid(key)) << key;
    }
    const std::string with_nul("YWJj\0YWJj", 9);
    EXPECT_FALSE(ga::sas_key_is_valid(with_nul));
}

TEST(Sas, KeyValidity)
{
    EXPECT_TRUE(ga::sas_key_is_valid("cGFzc3dvcmQ="));
    EXPECT_TRUE(ga::sas_key_is_valid("key="));
    EXPECT_TRUE(ga::sas_key_is_valid("fakeKey="));
    EXPECT_TRUE(ga::sas_key_is_valid("AA=="));
    EXPECT_TRUE(ga::sas_key_is_valid("AAAA"));
    EXPECT_TRUE(ga::sas_key_is_valid("NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="));
    // 64-byte keys (some hub policies) and the 256-byte cap.
    EXPECT_TRUE(ga::sas_key_is_valid(std::string(88, 'A')));
    EXPECT_TRUE(ga::sas_key_is_valid(std::string(340, 'A') + "AA=="));
    EXPECT_FALSE(ga::sas_key_is_valid(std::string(344, 'A')));
    EXPECT_FALSE(ga::sas_key_is_valid(std::string(100000, 'A')));
}

TEST(Sas, LongestValidKeySigns)
{
    const std::string key = std::string(340, 'A') + "AA==";
    char buf[256];
    BufWriter w(buf);
    EXPECT_EQ(ga::append_sas_token("uri", key, 1, w), SasError::None);
}

} // namespace
