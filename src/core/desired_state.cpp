// SPDX-License-Identifier: MIT
#include "desired_state.h"

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

namespace ga
{
namespace
{

constexpr std::string_view kHeaderPrefix = "gateway-agent desired-threshold ";
constexpr std::string_view kFormat = "1";

// Takes the next '\n'-terminated line; false when there is none (a missing final newline means
// the file was cut, which an atomic write never leaves behind).
bool next_line(std::string_view& text, std::string_view& line)
{
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos)
        return false;
    line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    return true;
}

// "key=value" with exactly this key; the value is everything after '='.
bool field(std::string_view line, std::string_view key, std::string_view& value)
{
    if (line.size() <= key.size() || !line.starts_with(key) || line[key.size()] != '=')
        return false;
    value = line.substr(key.size() + 1);
    return true;
}

bool parse_version(std::string_view s, std::int64_t& v)
{
    // Digits only: from_chars would also take a '-' sign.
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string_view::npos)
        return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && ptr == s.data() + s.size();
}

bool parse_number(std::string_view s, double& v)
{
    if (s.empty())
        return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    // from_chars also reads "inf" and "nan"; a threshold must be a finite JSON-like number.
    return ec == std::errc{} && ptr == s.data() + s.size() && std::isfinite(v);
}

} // namespace

const char* origin_name(DesiredOrigin o)
{
    return o == DesiredOrigin::TwinPatch ? "twin patch" : "twin GET";
}

bool serialize_desired_state(const StoredDesired& s, BufWriter& out)
{
    if (s.version < 0 || (s.has_threshold && !std::isfinite(s.threshold)))
        return false;
    out.append(kHeaderPrefix).append(kFormat).append('\n');
    out.append("version=").append_int(s.version).append('\n');
    out.append("threshold=");
    if (s.has_threshold)
    {
        // Shortest text that reads back as the same double: the threshold survives exactly.
        std::array<char, 32> num{};
        auto [end, ec] = std::to_chars(num.data(), num.data() + num.size(), s.threshold);
        if (ec != std::errc{})
            return false;
        out.append(std::string_view(num.data(), static_cast<std::size_t>(end - num.data())));
    }
    else
    {
        out.append("none");
    }
    out.append('\n');
    out.append("from=").append(origin_name(s.origin)).append('\n');
    return out.ok();
}

const char* parse_desired_state(std::string_view text, StoredDesired& out)
{
    if (text.size() > kDesiredStateMaxBytes)
        return "too large";
    std::string_view line;
    if (!next_line(text, line) || !line.starts_with(kHeaderPrefix))
        return "bad header";
    if (line.substr(kHeaderPrefix.size()) != kFormat)
        return "unknown format (written by a newer agent?)";
    StoredDesired s;
    std::string_view value;
    if (!next_line(text, line) || !field(line, "version", value) ||
        !parse_version(value, s.version))
        return "bad version line";
    if (!next_line(text, line) || !field(line, "threshold", value))
        return "bad threshold line";
    if (value != "none")
    {
        if (!parse_number(value, s.threshold))
            return "bad threshold line";
        s.has_threshold = true;
    }
    if (!next_line(text, line) || !field(line, "from", value))
        return "bad from line";
    if (value == origin_name(DesiredOrigin::TwinGet))
        s.origin = DesiredOrigin::TwinGet;
    else if (value == origin_name(DesiredOrigin::TwinPatch))
        s.origin = DesiredOrigin::TwinPatch;
    else
        return "bad from line";
    if (!text.empty())
        return "unexpected text after the last line";
    out = s;
    return nullptr;
}

void describe_threshold_source(const StoredDesired* stored, bool conf_set, BufWriter& out)
{
    if (stored != nullptr && stored->has_threshold)
        out.append("twin ($version ").append_int(stored->version).append(", stored)");
    else
        out.append(conf_set ? "conf" : "default");
}

} // namespace ga
