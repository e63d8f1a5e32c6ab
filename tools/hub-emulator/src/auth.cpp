#include "auth.h"

#include "codec.h"

#include <charconv>

namespace hubemu
{
namespace
{
std::vector<std::string_view> split(std::string_view s, char sep)
{
    std::vector<std::string_view> out;
    size_t start = 0;
    while (true)
    {
        size_t pos = s.find(sep, start);
        if (pos == std::string_view::npos)
        {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, pos - start));
        start = pos + 1;
    }
}

bool parse_query(std::string_view q, std::map<std::string, std::string>* out)
{
    if (q.empty())
        return true;
    for (auto part : split(q, '&'))
    {
        if (part.empty())
            continue;
        size_t eq = part.find('=');
        auto k = url_decode(part.substr(0, eq));
        auto v =
            url_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
        if (!k || !v)
            return false;
        out->emplace(*k, *v); // keeps the first of duplicates
    }
    return true;
}

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}
} // namespace

std::optional<Identity> parse_client_id(std::string_view client_id)
{
    auto parts = split(client_id, '/');
    if (parts.size() == 1 && !parts[0].empty())
        return Identity{std::string(parts[0]), {}};
    if (parts.size() == 2 && !parts[0].empty() && !parts[1].empty())
        return Identity{std::string(parts[0]), std::string(parts[1])};
    return std::nullopt;
}

std::optional<Username> parse_username(std::string_view username, std::string* why)
{
    std::string_view path = username;
    std::string_view query;
    size_t q = username.find('?');
    if (q != std::string_view::npos)
    {
        path = username.substr(0, q);
        query = username.substr(q + 1);
    }
    auto segs = split(path, '/');
    if (!segs.empty() && segs.back().empty())
        segs.pop_back();
    if (q == std::string_view::npos)
    {
        // "host/dev/api-version=..." form: the last segment carries the parameters.
        if (segs.empty() || segs.back().find('=') == std::string_view::npos)
        {
            *why = "username has no parameters (api-version missing)";
            return std::nullopt;
        }
        query = segs.back();
        segs.pop_back();
    }
    if (segs.size() < 2 || segs.size() > 3)
    {
        *why = "username is not {host}/{device}[/{module}]/?api-version=...";
        return std::nullopt;
    }
    for (auto s : segs)
    {
        if (s.empty())
        {
            *why = "username has an empty segment";
            return std::nullopt;
        }
    }
    Username u;
    u.host = std::string(segs[0]);
    u.identity.device = std::string(segs[1]);
    if (segs.size() == 3)
        u.identity.module = std::string(segs[2]);
    if (!parse_query(query, &u.params))
    {
        *why = "username parameters are not URL-encoded correctly";
        return std::nullopt;
    }
    auto it = u.params.find("api-version");
    if (it == u.params.end() || it->second.empty())
    {
        *why = "username has no api-version";
        return std::nullopt;
    }
    return u;
}

std::optional<SasToken> parse_sas(std::string_view password, std::string* why)
{
    constexpr std::string_view kPrefix = "SharedAccessSignature ";
    if (password.substr(0, kPrefix.size()) != kPrefix)
    {
        *why = "password is not a SharedAccessSignature";
        return std::nullopt;
    }
    std::string_view fields = password.substr(kPrefix.size());
    if (fields.find(' ') != std::string_view::npos)
    {
        *why = "SAS has more than one field list";
        return std::nullopt;
    }
    SasToken t;
    bool have_sr = false;
    bool have_sig = false;
    bool have_se = false;
    for (auto part : split(fields, '&'))
    {
        size_t eq = part.find('=');
        if (eq == std::string_view::npos)
        {
            *why = "SAS field without '='";
            return std::nullopt;
        }
        std::string key = lower(part.substr(0, eq));
        std::string_view value = part.substr(eq + 1);
        if (key == "sr" && !have_sr)
        {
            auto d = url_decode(value);
            if (!d)
            {
                *why = "SAS sr is not URL-encoded correctly";
                return std::nullopt;
            }
            t.sr_raw = std::string(value);
            t.sr_decoded = *d;
            have_sr = true;
        }
        else if (key == "sig" && !have_sig)
        {
            auto d = url_decode(value);
            if (!d)
            {
                *why = "SAS sig is not URL-encoded correctly";
                return std::nullopt;
            }
            t.sig = *d;
            have_sig = true;
        }
        else if (key == "se" && !have_se)
        {
            t.se_text = std::string(value);
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), t.se);
            if (ec != std::errc() || p != value.data() + value.size() || value.empty())
            {
                *why = "SAS se is not a decimal number";
                return std::nullopt;
            }
            have_se = true;
        }
        else if (key == "skn")
        {
            t.skn = std::string(value);
        }
    }
    if (!have_sr || !have_sig || !have_se)
    {
        *why = "SAS lacks sr, sig or se";
        return std::nullopt;
    }
    return t;
}

bool verify_sas(std::string_view password,
                std::string_view key_b64,
                const Identity& who,
                const SasPolicy& policy,
                int64_t now,
                std::string* why,
                int64_t* expiry)
{
    auto tok = parse_sas(password, why);
    if (!tok)
        return false;
    if (tok->skn)
    {
        *why = "SAS signed with a shared access policy (skn); only registry keys are emulated";
        return false;
    }
    // Audience: {host}/devices/{d}[/modules/{m}]
    auto segs = split(tok->sr_decoded, '/');
    bool shape_ok = (segs.size() == 3 && segs[1] == "devices") ||
                    (segs.size() == 5 && segs[1] == "devices" && segs[3] == "modules");
    if (!shape_ok)
    {
        *why = "SAS audience is not {host}/devices/{d}[/modules/{m}]";
        return false;
    }
    bool host_ok = false;
    for (const auto& h : policy.audience_hosts)
        host_ok = host_ok || iequals(h, segs[0]);
    if (!host_ok)
    {
        *why = "SAS audience host '" + std::string(segs[0]) + "' is not this hub";
        return false;
    }
    std::string_view aud_module = segs.size() == 5 ? segs[4] : std::string_view{};
    if (!iequals(segs[2], who.device) || !iequals(aud_module, who.module))
    {
        *why = "SAS audience '" + tok->sr_decoded + "' is not the connecting identity";
        return false;
    }
    auto key = base64_decode(key_b64);
    if (!key)
    {
        *why = "identity key is not base64";
        return false;
    }
    std::string expect = hmac_sha256(*key, tok->sr_raw + "\n" + tok->se_text);
    auto got = base64_decode(tok->sig);
    if (!got || !equal_constant_time(*got, expect))
    {
        *why = "SAS signature does not verify";
        return false;
    }
    if (tok->se + policy.clock_skew_s < now)
    {
        *why = "SAS expired at " + std::to_string(tok->se);
        return false;
    }
    if (expiry)
        *expiry = tok->se;
    return true;
}

std::string
make_sas(std::string_view host, const Identity& who, std::string_view key_b64, int64_t se)
{
    std::string resource = std::string(host) + "/devices/" + who.device;
    if (who.is_module())
        resource += "/modules/" + who.module;
    std::string sr = url_encode(resource);
    std::string se_text = std::to_string(se);
    auto key = base64_decode(key_b64).value_or(std::string{});
    std::string sig = base64_encode(hmac_sha256(key, sr + "\n" + se_text));
    return "SharedAccessSignature sr=" + sr + "&sig=" + url_encode(sig) + "&se=" + se_text;
}

} // namespace hubemu
