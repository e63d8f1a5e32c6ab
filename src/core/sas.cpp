// SPDX-License-Identifier: MIT
#include "sas.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include <cstddef>

namespace ga
{
namespace
{

// Hub keys are 32 or 64 bytes; the bound keeps the decoded key in a fixed stack buffer.
constexpr std::size_t kMaxKeyBytes = 256;
constexpr std::size_t kMaxKeyChars = (kMaxKeyBytes + 2) / 3 * 4;

bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// Wipes the decoded key on every exit path.
struct KeyBuffer
{
    unsigned char bytes[kMaxKeyBytes]{};
    std::size_t len = 0;
    KeyBuffer() = default;
    KeyBuffer(const KeyBuffer&) = delete;
    KeyBuffer& operator=(const KeyBuffer&) = delete;
    ~KeyBuffer() { mbedtls_platform_zeroize(bytes, sizeof bytes); }
};

} // namespace

void append_sas_resource(std::string_view hub_host,
                         std::string_view device_id,
                         std::string_view module_id,
                         BufWriter& out)
{
    out.append_url_encoded(hub_host).append("%2Fdevices%2F").append_url_encoded(device_id);
    if (!module_id.empty())
    {
        out.append("%2Fmodules%2F").append_url_encoded(module_id);
    }
}

bool sas_key_is_valid(std::string_view key_base64)
{
    // Strict: canonical alphabet, whole quads, at most two '=' and only at the end. Lenient
    // decoders (Node) accept more, but a key that only they accept is likely a paste error.
    const std::size_t n = key_base64.size();
    if (n == 0 || n % 4 != 0 || n > kMaxKeyChars)
    {
        return false;
    }
    std::size_t pad = 0;
    while (pad < 2 && key_base64[n - 1 - pad] == '=')
    {
        ++pad;
    }
    for (std::size_t i = 0; i < n - pad; ++i)
    {
        if (!is_b64_char(key_base64[i]))
        {
            return false;
        }
    }
    const std::size_t bytes = n / 4 * 3 - pad;
    return bytes > 0 && bytes <= kMaxKeyBytes;
}

SasError append_sas_token(std::string_view encoded_resource,
                          std::string_view key_base64,
                          std::uint64_t expiry_epoch_s,
                          BufWriter& out)
{
    if (!sas_key_is_valid(key_base64))
    {
        return SasError::BadKey;
    }
    KeyBuffer key;
    if (mbedtls_base64_decode(key.bytes, sizeof key.bytes, &key.len,
                              reinterpret_cast<const unsigned char*>(key_base64.data()),
                              key_base64.size()) != 0 ||
        key.len == 0)
    {
        return SasError::BadKey;
    }

    char expiry[24];
    BufWriter expiry_w(expiry);
    expiry_w.append_uint(expiry_epoch_s);

    unsigned char mac[32];
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    // Streaming avoids assembling the string-to-sign; md_free wipes the HMAC pads.
    int rc = info == nullptr ? -1 : mbedtls_md_setup(&ctx, info, 1);
    if (rc == 0)
    {
        rc = mbedtls_md_hmac_starts(&ctx, key.bytes, key.len);
    }
    if (rc == 0)
    {
        rc = mbedtls_md_hmac_update(&ctx,
                                    reinterpret_cast<const unsigned char*>(encoded_resource.data()),
                                    encoded_resource.size());
    }
    if (rc == 0)
    {
        rc = mbedtls_md_hmac_update(&ctx, reinterpret_cast<const unsigned char*>("\n"), 1);
    }
    if (rc == 0)
    {
        rc = mbedtls_md_hmac_update(&ctx, reinterpret_cast<const unsigned char*>(expiry),
                                    expiry_w.size());
    }
    if (rc == 0)
    {
        rc = mbedtls_md_hmac_finish(&ctx, mac);
    }
    mbedtls_md_free(&ctx);
    mbedtls_platform_zeroize(key.bytes, sizeof key.bytes);
    if (rc != 0)
    {
        // Only an allocation failure inside mbedtls_md_setup gets here; there is no better
        // SasError for it, and the caller retries signing on the next connect anyway.
        mbedtls_platform_zeroize(mac, sizeof mac);
        return SasError::BadKey;
    }

    unsigned char sig[48]; // base64 of 32 bytes is 44 chars plus the NUL mbedtls writes
    std::size_t sig_len = 0;
    rc = mbedtls_base64_encode(sig, sizeof sig, &sig_len, mac, sizeof mac);
    mbedtls_platform_zeroize(mac, sizeof mac);
    if (rc != 0)
    {
        return SasError::BadKey;
    }

    out.append("SharedAccessSignature sr=")
        .append(encoded_resource)
        .append("&sig=")
        .append_url_encoded(std::string_view(reinterpret_cast<const char*>(sig), sig_len))
        .append("&se=")
        .append(expiry_w.view());
    return out.ok() ? SasError::None : SasError::TooLong;
}

} // namespace ga
