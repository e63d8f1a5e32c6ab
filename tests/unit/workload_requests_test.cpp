// SPDX-License-Identifier: MIT
// The workload API requests and the token built from the digest it returns: a token signed by the
// workload API with the module's key must equal the token the agent builds with that key itself.
#include "sas.h"
#include "workload_requests.h"

#include <gtest/gtest.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>

#include <array>
#include <string>

namespace
{

using ga::BufWriter;

constexpr std::string_view kKey = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";

std::string b64_decode(std::string_view s)
{
    std::array<unsigned char, 1024> out{};
    std::size_t n = 0;
    EXPECT_EQ(mbedtls_base64_decode(out.data(), out.size(), &n,
                                    reinterpret_cast<const unsigned char*>(s.data()), s.size()),
              0);
    return {reinterpret_cast<const char*>(out.data()), n};
}

std::string b64_encode(std::string_view s)
{
    std::array<unsigned char, 1024> out{};
    std::size_t n = 0;
    EXPECT_EQ(mbedtls_base64_encode(out.data(), out.size(), &n,
                                    reinterpret_cast<const unsigned char*>(s.data()), s.size()),
              0);
    return {reinterpret_cast<const char*>(out.data()), n};
}

// What the workload API does with the module's key: HMAC-SHA256 over the decoded data.
std::string workload_sign(std::string_view key_b64, std::string_view data_b64)
{
    const std::string key = b64_decode(key_b64);
    const std::string data = b64_decode(data_b64);
    std::array<unsigned char, 32> mac{};
    EXPECT_EQ(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                              reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                              mac.data()),
              0);
    return b64_encode({reinterpret_cast<const char*>(mac.data()), mac.size()});
}

std::string resource()
{
    char buf[256];
    BufWriter w(buf);
    ga::append_sas_resource("myhub.azure-devices.net", "edgedev", "filter", w);
    return std::string(w.view());
}

TEST(WorkloadRequests, Targets)
{
    char buf[256];
    BufWriter w(buf);
    ga::append_trust_bundle_target("2022-08-03", w);
    EXPECT_EQ(w.view(), "/trust-bundle?api-version=2022-08-03");
    w.clear();
    ga::append_sign_target("my module", "6378:99", "2018-06-28", w);
    EXPECT_EQ(w.view(), "/modules/my%20module/genid/6378%3A99/sign?api-version=2018-06-28");
}

TEST(WorkloadRequests, SignBodyCarriesTheStringToSign)
{
    char buf[1024];
    BufWriter w(buf);
    ASSERT_TRUE(ga::append_sign_body(resource(), 1700000000, w));
    const std::string body(w.view());
    const std::string head = R"({"keyId":"primary","algo":"HMACSHA256","data":")";
    ASSERT_TRUE(body.starts_with(head)) << body;
    ASSERT_TRUE(body.ends_with("\"}")) << body;
    const std::string data = body.substr(head.size(), body.size() - head.size() - 2);
    EXPECT_EQ(b64_decode(data), resource() + "\n1700000000");
}

TEST(WorkloadRequests, TokenFromTheDigestEqualsTheLocallySignedToken)
{
    const std::uint64_t expiry = 1700000000;
    char body_buf[1024];
    BufWriter body(body_buf);
    ASSERT_TRUE(ga::append_sign_body(resource(), expiry, body));
    const std::string b(body.view());
    const std::size_t at = b.find("\"data\":\"") + 8;
    const std::string digest = workload_sign(kKey, b.substr(at, b.size() - at - 2));

    char edge_buf[512];
    BufWriter edge(edge_buf);
    ASSERT_TRUE(ga::append_sas_token_from_digest(resource(), digest, expiry, edge));
    char local_buf[512];
    BufWriter local(local_buf);
    ASSERT_EQ(ga::append_sas_token(resource(), kKey, expiry, local), ga::SasError::None);
    EXPECT_EQ(edge.view(), local.view());
}

TEST(WorkloadRequests, DigestMustBeBase64OfAnHmacSha256)
{
    char buf[512];
    BufWriter w(buf);
    EXPECT_FALSE(ga::append_sas_token_from_digest(resource(), "", 1, w));
    EXPECT_FALSE(ga::append_sas_token_from_digest(resource(), "c2hvcnQ=", 1, w)); // 5 bytes
    EXPECT_FALSE(ga::append_sas_token_from_digest(
        resource(), "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=", 1, w));
    char small[16];
    BufWriter tiny(small);
    EXPECT_FALSE(ga::append_sas_token_from_digest(resource(), std::string(kKey), 1, tiny));
}

TEST(WorkloadRequests, CountsPemCertificates)
{
    const std::string one = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    EXPECT_EQ(ga::count_pem_certificates(""), 0U);
    EXPECT_EQ(ga::count_pem_certificates("garbage"), 0U);
    EXPECT_EQ(ga::count_pem_certificates(one), 1U);
    EXPECT_EQ(ga::count_pem_certificates(one + "junk\n" + one + one), 3U);
    EXPECT_EQ(ga::count_pem_certificates(one + "-----BEGIN CERTIFICATE-----\nMIIB"), 1U);
}

} // namespace
