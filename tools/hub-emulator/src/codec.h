// Small text codecs used by the hub emulator: base64, percent-encoding, HMAC-SHA256.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hubemu
{

/// Standard base64 (RFC 4648) with padding.
std::string base64_encode(std::string_view bytes);
/// Strict standard base64; padding optional. nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text);
/// Percent-encodes everything except A-Z a-z 0-9 - _ . ~ (uppercase hex), like
/// Uri.EscapeDataString.
std::string url_encode(std::string_view text);
/// Percent-decodes %XX (either hex case). '+' is kept as '+'. nullopt on a broken escape.
std::optional<std::string> url_decode(std::string_view text);
/// Raw 32-byte HMAC-SHA256 (OpenSSL).
std::string hmac_sha256(std::string_view key, std::string_view message);
/// Constant-time equality of two byte strings.
bool equal_constant_time(std::string_view a, std::string_view b);
/// True when bytes are well-formed UTF-8.
bool is_valid_utf8(std::string_view bytes);
/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);

} // namespace hubemu
