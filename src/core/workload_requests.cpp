// SPDX-License-Identifier: MIT
#include "workload_requests.h"

#include "sas.h"

#include <mbedtls/base64.h>

#include <array>

namespace ga
{
namespace
{
constexpr std::size_t kDigestB64 = 44; // base64 of 32 bytes
constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
} // namespace

void append_trust_bundle_target(std::string_view api_version, BufWriter& out)
{
    out.append("/trust-bundle?api-version=").append_url_encoded(api_version);
}

void append_sign_target(std::string_view module_id,
                        std::string_view generation_id,
                        std::string_view api_version,
                        BufWriter& out)
{
    out.append("/modules/")
        .append_url_encoded(module_id)
        .append("/genid/")
        .append_url_encoded(generation_id)
        .append("/sign?api-version=")
        .append_url_encoded(api_version);
}

bool append_sign_body(std::string_view encoded_resource,
                      std::uint64_t expiry_epoch_s,
                      BufWriter& out)
{
    std::array<char, 600> plain{};
    BufWriter p(plain);
    p.append(encoded_resource).append('\n').append_uint(expiry_epoch_s);
    if (!p.ok())
        return false;
    std::array<unsigned char, 820> b64{}; // 4/3 of 600 and the NUL
    std::size_t n = 0;
    if (mbedtls_base64_encode(b64.data(), b64.size(), &n,
                              reinterpret_cast<const unsigned char*>(plain.data()), p.size()) != 0)
        return false;
    // base64 needs no JSON escaping.
    out.append(R"({"keyId":"primary","algo":"HMACSHA256","data":")")
        .append(std::string_view(reinterpret_cast<const char*>(b64.data()), n))
        .append("\"}");
    return out.ok();
}

bool append_sas_token_from_digest(std::string_view encoded_resource,
                                  std::string_view digest_base64,
                                  std::uint64_t expiry_epoch_s,
                                  BufWriter& out)
{
    // The key check is the strict base64 check; the length pins an HMAC-SHA256.
    if (digest_base64.size() != kDigestB64 || !sas_key_is_valid(digest_base64))
        return false;
    out.append("SharedAccessSignature sr=")
        .append(encoded_resource)
        .append("&sig=")
        .append_url_encoded(digest_base64)
        .append("&se=")
        .append_uint(expiry_epoch_s);
    return out.ok();
}

std::size_t count_pem_certificates(std::string_view pem)
{
    std::size_t n = 0;
    std::size_t pos = 0;
    for (;;)
    {
        const std::size_t b = pem.find(kBegin, pos);
        if (b == std::string_view::npos)
            return n;
        const std::size_t e = pem.find(kEnd, b + kBegin.size());
        if (e == std::string_view::npos)
            return n;
        ++n;
        pos = e + kEnd.size();
    }
}

} // namespace ga
