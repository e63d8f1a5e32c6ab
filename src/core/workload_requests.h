// SPDX-License-Identifier: MIT
// The IoT Edge workload API requests the agent makes (docs/iot-edge.md) and the SAS token built
// from a signature it returns. Pure: text in, text out.
#pragma once

#include "buf_writer.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ga
{

/// "/trust-bundle?api-version={v}"
void append_trust_bundle_target(std::string_view api_version, BufWriter& out);
/// "/modules/{m}/genid/{g}/sign?api-version={v}" (module and generation id URL-encoded).
void append_sign_target(std::string_view module_id,
                        std::string_view generation_id,
                        std::string_view api_version,
                        BufWriter& out);
/// The sign request's JSON body: {"keyId":"primary","algo":"HMACSHA256","data":"<base64>"} where
/// data is the base64 of `encoded_resource` + "\n" + expiry (the SAS string to sign). False when
/// it does not fit.
[[nodiscard]] bool
append_sign_body(std::string_view encoded_resource, std::uint64_t expiry_epoch_s, BufWriter& out);
/// `SharedAccessSignature sr={sr}&sig={urlenc(digest)}&se={expiry}`; false when the digest is not
/// strict base64 of a 32-byte HMAC-SHA256 or the token does not fit.
[[nodiscard]] bool append_sas_token_from_digest(std::string_view encoded_resource,
                                                std::string_view digest_base64,
                                                std::uint64_t expiry_epoch_s,
                                                BufWriter& out);
/// The number of PEM certificates ("-----BEGIN CERTIFICATE-----" blocks with an END) in `pem`.
[[nodiscard]] std::size_t count_pem_certificates(std::string_view pem);

} // namespace ga
