// CONNECT-time rules: username parsing and SAS token verification (protocol.md sections 1-2).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubemu
{

/// A device ({device}) or module ({device}/{module}) identity.
struct Identity
{
    std::string device;
    std::string module;
    [[nodiscard]] std::string id() const { return module.empty() ? device : device + "/" + module; }
    [[nodiscard]] bool is_module() const { return !module.empty(); }
};

/// Splits a client id "d" or "d/m". nullopt when empty or with more than one '/'.
std::optional<Identity> parse_client_id(std::string_view client_id);

struct Username
{
    std::string host;
    Identity identity;
    std::map<std::string, std::string> params; // URL-decoded, first of duplicates kept
};

/// Parses "{host}/{d}/?k=v&...", "{host}/{d}/{m}/?k=v&..." and the forms without '?'.
/// Requires a non-empty api-version (as edgeHub does). nullopt with *why set otherwise.
std::optional<Username> parse_username(std::string_view username, std::string* why);

struct SasToken
{
    std::string sr_raw;     // exactly as sent (the HMAC input)
    std::string sr_decoded; // URL-decoded audience
    std::string sig;        // URL-decoded base64 signature
    std::string se_text;    // as sent
    int64_t se = 0;
    std::optional<std::string> skn;
};

/// Parses "SharedAccessSignature sr=..&sig=..&se=..[&skn=..]" (field names case-insensitive).
std::optional<SasToken> parse_sas(std::string_view password, std::string* why);

struct SasPolicy
{
    std::vector<std::string> audience_hosts; // accepted hosts, compared case-insensitively
    int64_t clock_skew_s = 0;                // token accepted while now <= se + skew
};

/// Verifies a SAS password for `who` with base64 key `key_b64` at time `now` (unix seconds).
/// Returns true, or false with *why naming the failed check.
bool verify_sas(std::string_view password,
                std::string_view key_b64,
                const Identity& who,
                const SasPolicy& policy,
                int64_t now,
                std::string* why,
                int64_t* expiry = nullptr);

/// Builds a token (used by tests and the CLI helpers).
std::string
make_sas(std::string_view host, const Identity& who, std::string_view key_b64, int64_t se);

} // namespace hubemu
