// SPDX-License-Identifier: MIT
// Shared access signature tokens for IoT Hub device and module identities (protocol.md section 2).
#pragma once

#include "buf_writer.h"

#include <cstdint>
#include <string_view>

namespace ga
{

/// Appends the URL-encoded audience: {host}%2Fdevices%2F{d}[%2Fmodules%2F{m}]. The audience host
/// is always the hub host name, also behind a gateway.
void append_sas_resource(std::string_view hub_host,
                         std::string_view device_id,
                         std::string_view module_id,
                         BufWriter& out);

enum class SasError
{
    None,
    BadKey,  // key is not base64 or decodes to nothing
    TooLong, // output buffer too small
};

/// Appends `SharedAccessSignature sr={sr}&sig={urlenc(base64(hmac))}&se={expiry}` where sr is
/// the already URL-encoded resource and the HMAC-SHA256 is over sr + "\n" + expiry.
[[nodiscard]] SasError append_sas_token(std::string_view encoded_resource,
                                        std::string_view key_base64,
                                        std::uint64_t expiry_epoch_s,
                                        BufWriter& out);

/// True when `key_base64` is non-empty, strictly valid base64.
[[nodiscard]] bool sas_key_is_valid(std::string_view key_base64);

} // namespace ga
