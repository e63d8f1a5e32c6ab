#include "topics.h"

#include "codec.h"

#include <charconv>

namespace hubemu
{
namespace
{
bool starts_with(std::string_view s, std::string_view p)
{
    return s.substr(0, p.size()) == p;
}

std::optional<std::string> query_value(std::string_view query, std::string_view key)
{
    auto bag = parse_bag(query);
    if (!bag)
        return std::nullopt;
    auto v = bag_get(*bag, key);
    if (!v || v->empty())
        return std::nullopt;
    return v;
}

/// "?$rid=..." request suffix after a fixed prefix. Returns the rid or nullopt.
std::optional<std::string> request_rid(std::string_view topic, std::string_view prefix)
{
    if (!starts_with(topic, prefix))
        return std::nullopt;
    std::string_view rest = topic.substr(prefix.size());
    if (rest.empty() || rest[0] != '?')
        return std::nullopt;
    return query_value(rest.substr(1), "$rid");
}

bool valid_segment(std::string_view s)
{
    return !s.empty() && s.find_first_of("/+#") == std::string_view::npos;
}
} // namespace

std::optional<PropBag> parse_bag(std::string_view bag)
{
    if (!bag.empty() && bag.back() == '/')
        bag.remove_suffix(1);
    if (!bag.empty() && bag.front() == '?')
        bag.remove_prefix(1);
    PropBag out;
    size_t start = 0;
    while (start <= bag.size())
    {
        size_t amp = bag.find('&', start);
        std::string_view part =
            bag.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
        if (!part.empty())
        {
            size_t eq = part.find('=');
            auto k = url_decode(part.substr(0, eq));
            if (!k)
                return std::nullopt;
            Prop p{*k, std::nullopt};
            if (eq != std::string_view::npos)
            {
                auto v = url_decode(part.substr(eq + 1));
                if (!v)
                    return std::nullopt;
                p.value = *v;
            }
            out.push_back(std::move(p));
        }
        if (amp == std::string_view::npos)
            break;
        start = amp + 1;
    }
    return out;
}

std::string encode_bag(const PropBag& bag)
{
    std::string out;
    for (const auto& p : bag)
    {
        if (!out.empty())
            out += '&';
        out += url_encode(p.key);
        if (p.value)
        {
            out += '=';
            out += url_encode(*p.value);
        }
    }
    return out;
}

std::optional<std::string> bag_get(const PropBag& bag, std::string_view key)
{
    for (const auto& p : bag)
        if (p.key == key)
            return p.value.value_or(std::string{});
    return std::nullopt;
}

PubInfo classify_publish(std::string_view topic, const Identity& who)
{
    PubInfo info;
    std::string events = "devices/" + who.device + "/";
    if (who.is_module())
        events += "modules/" + who.module + "/";
    events += "messages/events";
    if (topic == events)
    {
        info.kind = PubKind::Telemetry;
        return info;
    }
    if (starts_with(topic, events + "/"))
    {
        std::string_view bag = topic.substr(events.size() + 1);
        if (!bag.empty() && bag.back() == '/')
            bag.remove_suffix(1);
        if (bag.find('/') != std::string_view::npos ||
            bag.find_first_of("+#") != std::string_view::npos)
            return info;
        info.kind = PubKind::Telemetry;
        info.bag = std::string(bag);
        return info;
    }
    if (auto rid = request_rid(topic, "$iothub/twin/GET/"))
    {
        info.kind = PubKind::TwinGet;
        info.rid = *rid;
        return info;
    }
    if (auto rid = request_rid(topic, "$iothub/twin/PATCH/properties/reported/"))
    {
        info.kind = PubKind::TwinReported;
        info.rid = *rid;
        return info;
    }
    constexpr std::string_view kRes = "$iothub/methods/res/";
    if (starts_with(topic, kRes))
    {
        std::string_view rest = topic.substr(kRes.size());
        size_t slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0)
            return info;
        std::string_view status = rest.substr(0, slash);
        int code = 0;
        auto [p, ec] = std::from_chars(status.data(), status.data() + status.size(), code);
        if (ec != std::errc() || p != status.data() + status.size())
            return info;
        auto rid = request_rid(rest.substr(slash), "/");
        if (!rid)
            return info;
        info.kind = PubKind::MethodResponse;
        info.status = code;
        info.rid = *rid;
        return info;
    }
    return info;
}

SubKind subscription_kind(std::string_view filter)
{
    if (filter == "$iothub/twin/res/#")
        return SubKind::TwinResponses;
    if (filter == "$iothub/twin/PATCH/properties/desired/#")
        return SubKind::DesiredPatches;
    if (filter == "$iothub/methods/POST/#")
        return SubKind::Methods;
    if (starts_with(filter, "devices/") &&
        filter.find("/messages/devicebound/") != std::string_view::npos)
        return SubKind::C2D;
    if (starts_with(filter, "devices/") && filter.find("/modules/") != std::string_view::npos)
        return SubKind::Inputs;
    return SubKind::None;
}

bool subscribe_allowed(std::string_view filter, const Identity& who)
{
    switch (subscription_kind(filter))
    {
    case SubKind::TwinResponses:
    case SubKind::DesiredPatches:
    case SubKind::Methods:
        return true;
    case SubKind::None:
        return false;
    case SubKind::C2D:
    {
        if (who.is_module())
            return false; // modules cannot receive C2D
        std::string own = "devices/" + who.device + "/messages/devicebound/#";
        return filter == own || filter == "devices/+/messages/devicebound/#";
    }
    case SubKind::Inputs:
    {
        if (!who.is_module())
            return false;
        std::string base = "devices/" + who.device + "/modules/" + who.module + "/";
        if (!starts_with(filter, base))
            return false;
        std::string_view rest = filter.substr(base.size());
        if (rest == "#" || rest == "inputs/#" || rest == "inputs/+/#")
            return true;
        if (starts_with(rest, "inputs/") && rest.size() > 9 && rest.substr(rest.size() - 2) == "/#")
            return valid_segment(rest.substr(7, rest.size() - 9));
        return false;
    }
    }
    return false;
}

bool read_allowed(std::string_view topic, const Identity& who)
{
    if (starts_with(topic, "$iothub/twin/res/") ||
        starts_with(topic, "$iothub/twin/PATCH/properties/desired/") ||
        starts_with(topic, "$iothub/methods/POST/"))
        return true; // only ever sent to one client id by the hub itself
    if (who.is_module())
        return starts_with(topic, "devices/" + who.device + "/modules/" + who.module + "/inputs/");
    return starts_with(topic, "devices/" + who.device + "/messages/devicebound/");
}

bool topic_matches(std::string_view filter, std::string_view topic)
{
    size_t fi = 0;
    size_t ti = 0;
    if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
        (filter[0] == '#' || filter[0] == '+'))
        return false;
    while (true)
    {
        size_t fe = filter.find('/', fi);
        size_t te = topic.find('/', ti);
        std::string_view f =
            filter.substr(fi, fe == std::string_view::npos ? std::string_view::npos : fe - fi);
        if (f == "#")
            return true;
        if (ti > topic.size())
            return false;
        std::string_view t =
            topic.substr(ti, te == std::string_view::npos ? std::string_view::npos : te - ti);
        if (f != "+" && f != t)
            return false;
        if (fe == std::string_view::npos && te == std::string_view::npos)
            return true;
        if (fe == std::string_view::npos)
            return false;
        if (te == std::string_view::npos)
        {
            // filter continues: only "/#" may match the parent level
            return filter.substr(fe + 1) == "#";
        }
        fi = fe + 1;
        ti = te + 1;
    }
}

} // namespace hubemu
