#include "config.h"

#include "codec.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace hubemu
{
namespace
{
std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> words(std::string_view s)
{
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size())
    {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t')
            ++i;
        if (i > start)
            out.push_back(s.substr(start, i - start));
    }
    return out;
}

bool valid_id(std::string_view id)
{
    if (id.empty() || id.size() > 128 || id[0] == '$')
        return false;
    return std::ranges::all_of(id,
                               [](char c)
                               {
                                   return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                          (c >= '0' && c <= '9') ||
                                          std::string_view("-:.+%_*?!(),=@'").find(c) !=
                                              std::string_view::npos;
                               });
}

std::string upper(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}
} // namespace

std::optional<Route> parse_route(std::string_view text, std::string* why)
{
    Route r;
    r.text = std::string(trim(text));
    auto w = words(r.text);
    if (w.size() < 4 || upper(w[0]) != "FROM")
    {
        *why = "route must be FROM <source> [WHERE <condition>] INTO <sink>";
        return std::nullopt;
    }
    r.source = std::string(w[1]);
    if (r.source.empty() || r.source[0] != '/')
    {
        *why = "route source must start with '/'";
        return std::nullopt;
    }
    size_t into = 0;
    for (size_t i = 2; i < w.size(); ++i)
        if (upper(w[i]) == "INTO")
            into = i;
    if (into == 0 || into + 2 != w.size())
    {
        *why = "route needs exactly one sink after INTO";
        return std::nullopt;
    }
    if (into > 2)
    {
        if (upper(w[2]) != "WHERE")
        {
            *why = "expected WHERE or INTO after the source";
            return std::nullopt;
        }
        std::string cond;
        for (size_t i = 3; i < into; ++i)
            cond += upper(w[i]);
        if (cond == "NOTIS_DEFINED($CONNECTIONMODULEID)")
            r.cond = Route::Cond::NoModule;
        else if (cond == "IS_DEFINED($CONNECTIONMODULEID)")
            r.cond = Route::Cond::HasModule;
        else
        {
            *why = "unsupported route condition (only [NOT] IS_DEFINED($connectionModuleId))";
            return std::nullopt;
        }
    }
    std::string_view sink = w[into + 1];
    if (sink == "$upstream")
    {
        r.upstream = true;
        return r;
    }
    constexpr std::string_view kBe = "BrokeredEndpoint(\"";
    if (sink.substr(0, kBe.size()) != kBe || sink.size() < kBe.size() + 2 ||
        sink.substr(sink.size() - 2) != "\")")
    {
        *why = "sink must be $upstream or BrokeredEndpoint(\"/modules/{m}/inputs/{i}\")";
        return std::nullopt;
    }
    std::string_view path = sink.substr(kBe.size(), sink.size() - kBe.size() - 2);
    while (!path.empty() && path.front() == '/')
        path.remove_prefix(1);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true)
    {
        size_t s = path.find('/', start);
        parts.push_back(
            path.substr(start, s == std::string_view::npos ? std::string_view::npos : s - start));
        if (s == std::string_view::npos)
            break;
        start = s + 1;
    }
    if (parts.size() != 4 || parts[0] != "modules" || parts[2] != "inputs" || parts[1].empty() ||
        parts[3].empty())
    {
        *why = "BrokeredEndpoint path must be /modules/{m}/inputs/{i}";
        return std::nullopt;
    }
    r.target_module = std::string(parts[1]);
    r.target_input = std::string(parts[3]);
    return r;
}

std::string message_source(const Identity& from, const std::optional<std::string>& output)
{
    if (!from.is_module())
        return "/messages";
    std::string s = "/messages/modules/" + from.module;
    if (output && !output->empty())
        s += "/outputs/" + *output;
    return s;
}

bool route_matches(const Route& route, std::string_view source, bool from_module)
{
    if (route.cond == Route::Cond::NoModule && from_module)
        return false;
    if (route.cond == Route::Cond::HasModule && !from_module)
        return false;
    std::string_view pat = route.source;
    if (pat == "/*")
        return true;
    if (pat.size() >= 2 && pat.substr(pat.size() - 2) == "/*")
    {
        std::string_view base = pat.substr(0, pat.size() - 2);
        return source == base ||
               (source.size() > base.size() && source.substr(0, base.size()) == base &&
                source[base.size()] == '/');
    }
    return source == pat;
}

const IdentityConf* Config::find(std::string_view id) const
{
    for (const auto& i : identities)
        if (i.identity.id() == id)
            return &i;
    return nullptr;
}

std::optional<Config> parse_config(std::string_view text, std::string* why)
{
    Config cfg;
    std::istringstream in{std::string(text)};
    std::string raw;
    int lineno = 0;
    auto fail = [&](const std::string& msg)
    {
        *why = "line " + std::to_string(lineno) + ": " + msg;
        return std::nullopt;
    };
    while (std::getline(in, raw))
    {
        ++lineno;
        std::string_view line = raw;
        std::string_view keyword = trim(line);
        if (keyword.empty() || keyword[0] == '#')
            continue;
        auto w = words(keyword);
        std::string_view kw = w[0];
        if (kw == "route")
        {
            std::string rwhy;
            auto r = parse_route(trim(keyword.substr(5)), &rwhy);
            if (!r)
                return fail(rwhy);
            cfg.routes.push_back(*r);
            continue;
        }
        // Other lines allow a trailing '#' comment.
        size_t hash = keyword.find(" #");
        if (hash != std::string_view::npos)
            w = words(keyword.substr(0, hash));
        if (kw == "hub" && w.size() == 2)
            cfg.hub = std::string(w[1]);
        else if (kw == "edge" && w.size() == 2)
        {
            if (!valid_id(w[1]))
                return fail("bad edge device id");
            cfg.edge = std::string(w[1]);
        }
        else if (kw == "gateway" && w.size() == 2)
            cfg.gateway_hosts.emplace_back(w[1]);
        else if (kw == "clock_skew" && w.size() == 2)
        {
            auto [p, ec] =
                std::from_chars(w[1].data(), w[1].data() + w[1].size(), cfg.clock_skew_s);
            if (ec != std::errc() || p != w[1].data() + w[1].size() || cfg.clock_skew_s < 0)
                return fail("clock_skew must be a number of seconds");
        }
        else if (kw == "device" && w.size() == 3)
        {
            if (!valid_id(w[1]))
                return fail("bad device id '" + std::string(w[1]) + "'");
            if (!base64_decode(w[2]))
                return fail("key is not base64");
            if (cfg.find(w[1]))
                return fail("duplicate identity " + std::string(w[1]));
            cfg.identities.push_back({{std::string(w[1]), {}}, std::string(w[2])});
        }
        else if (kw == "module" && w.size() == 4)
        {
            if (!valid_id(w[1]) || !valid_id(w[2]))
                return fail("bad device or module id");
            if (!base64_decode(w[3]))
                return fail("key is not base64");
            Identity id{std::string(w[1]), std::string(w[2])};
            if (cfg.find(id.id()))
                return fail("duplicate identity " + id.id());
            cfg.identities.push_back({id, std::string(w[3])});
        }
        else
            return fail("unknown or malformed line (expected hub|edge|gateway|clock_skew|device|"
                        "module|route)");
    }
    if (cfg.hub.empty())
    {
        lineno = 0;
        *why = "no 'hub <hostname>' line";
        return std::nullopt;
    }
    if (!cfg.routes.empty() && cfg.edge.empty())
    {
        *why = "routes need an 'edge <deviceid>' line";
        return std::nullopt;
    }
    return cfg;
}

} // namespace hubemu
