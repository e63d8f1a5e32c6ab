// SPDX-License-Identifier: MIT
#include "topics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>

namespace ga
{
namespace
{

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
    {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f')
    {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F')
    {
        return c - 'A' + 10;
    }
    return -1;
}

// Decodes the byte at s[i] (a literal or a %XX escape) and advances i. '+' stays '+': the hub
// spells a space %20, and reading '+' as a space would corrupt base64 values.
bool decode_next(std::string_view s, std::size_t& i, char& out)
{
    if (s[i] != '%')
    {
        out = s[i++];
        return true;
    }
    if (s.size() - i < 3)
    {
        return false;
    }
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0)
    {
        return false;
    }
    out = static_cast<char>((hi << 4) | lo);
    i += 3;
    return true;
}

enum class Match
{
    Equal,
    Different,
    Malformed,
};

// Compares the percent-decoding of `encoded` with `plain` without a scratch buffer. The whole of
// `encoded` is checked, so a bad escape is reported even after a mismatch.
Match decoded_equals(std::string_view encoded, std::string_view plain)
{
    std::size_t i = 0;
    std::size_t j = 0;
    bool equal = true;
    while (i < encoded.size())
    {
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return Match::Malformed;
        }
        if (equal && (j >= plain.size() || plain[j] != c))
        {
            equal = false;
        }
        ++j;
    }
    return equal && j == plain.size() ? Match::Equal : Match::Different;
}

bool decodes_cleanly(std::string_view encoded)
{
    std::size_t i = 0;
    while (i < encoded.size())
    {
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return false;
        }
    }
    return true;
}

// Writes nothing unless the whole value decodes, so a Malformed lookup leaves no partial text.
bool decode_into(std::string_view encoded, BufWriter& out)
{
    if (!decodes_cleanly(encoded))
    {
        return false;
    }
    std::size_t i = 0;
    while (i < encoded.size())
    {
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return false;
        }
        out.append(c);
    }
    return out.ok();
}

struct BagItem
{
    std::string_view key;   // encoded
    std::string_view value; // encoded; empty for a key without '=' (a null value)
    bool has_value = false; // false for a key without '=': a null value, not an empty one
};

// Walks an encoded bag item by item. Empty items ("a=1&&b=2", a trailing '&') are skipped.
class BagReader
{
  public:
    explicit BagReader(std::string_view bag)
    {
        if (!bag.empty() && bag.front() == '?')
        {
            bag.remove_prefix(1);
        }
        if (!bag.empty() && bag.back() == '/')
        {
            bag.remove_suffix(1);
        }
        rest_ = bag;
    }

    bool next(BagItem& item)
    {
        while (!rest_.empty())
        {
            const std::size_t amp = rest_.find('&');
            const std::string_view part = rest_.substr(0, amp);
            rest_ = amp == std::string_view::npos ? std::string_view{} : rest_.substr(amp + 1);
            if (part.empty())
            {
                continue;
            }
            const std::size_t eq = part.find('=');
            item.key = part.substr(0, eq);
            item.value = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
            item.has_value = eq != std::string_view::npos;
            return true;
        }
        return false;
    }

  private:
    std::string_view rest_;
};

// Decodes at most head.size() bytes of `encoded` into `head` and sets `len` to the length of the
// whole decoding, so a key can be classified without a scratch buffer as long as the key.
bool decode_head(std::string_view encoded, std::span<char> head, std::size_t& len)
{
    std::size_t i = 0;
    len = 0;
    while (i < encoded.size())
    {
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return false;
        }
        if (len < head.size())
        {
            head[len] = c;
        }
        ++len;
    }
    return true;
}

// Re-encodes an already validated encoded text in the one spelling we send (uppercase hex,
// everything but unreserved characters escaped), whatever spelling the input used.
void reencode(std::string_view encoded, BufWriter& out)
{
    std::size_t i = 0;
    while (i < encoded.size())
    {
        std::size_t j = i;
        while (j < encoded.size() && url_unreserved(encoded[j]))
            ++j;
        out.append(encoded.substr(i, j - i)); // already in the spelling we send
        i = j;
        if (i == encoded.size())
            return;
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return;
        }
        out.append_url_encoded(std::string_view(&c, 1));
    }
}

// IoT Hub's message-id: up to 128 ASCII alphanumerics and -:.+%_#*?!(),=@;$' (messages-construct
// doc). A $.mid outside that would make every send of the alert fail, so it is refused at the
// input rather than stored.
bool valid_message_id(std::string_view encoded)
{
    constexpr std::string_view kPunct = "-:.+%_#*?!(),=@;$'";
    std::size_t i = 0;
    std::size_t n = 0;
    while (i < encoded.size())
    {
        char c = 0;
        if (!decode_next(encoded, i, c))
        {
            return false;
        }
        const bool alnum =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && kPunct.find(c) == std::string_view::npos)
        {
            return false;
        }
        ++n;
    }
    return n > 0 && n <= kMaxMessageIdLen;
}

std::uint8_t forwarded_flag(std::string_view key)
{
    if (key == "$.mid")
    {
        return kForwardedMid;
    }
    if (key == "$.cid")
    {
        return kForwardedCid;
    }
    if (key == "$.ct")
    {
        return kForwardedCt;
    }
    if (key == "$.ce")
    {
        return kForwardedCe;
    }
    return 0;
}

// Looks up a system property such as "$rid" and returns its raw (still encoded) text, which
// for the ids we mint is the same as the decoded text. nullopt: absent or a malformed key.
std::optional<std::string_view> raw_property(std::string_view bag, std::string_view key)
{
    BagReader reader(bag);
    BagItem item;
    while (reader.next(item))
    {
        switch (decoded_equals(item.key, key))
        {
        case Match::Equal:
            return item.value;
        case Match::Malformed:
            return std::nullopt;
        case Match::Different:
            break;
        }
    }
    return std::nullopt;
}

template <typename Int> std::optional<Int> parse_decimal(std::string_view s)
{
    // Digits only: from_chars alone would accept a leading '-'.
    if (s.empty() || s.size() > 19)
    {
        return std::nullopt;
    }
    for (char c : s)
    {
        if (c < '0' || c > '9')
        {
            return std::nullopt;
        }
    }
    Int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
    {
        return std::nullopt;
    }
    return v;
}

// Reads an optional "$version" from a bag. Outer nullopt: present but not a decimal.
std::optional<std::optional<std::int64_t>> version_property(std::string_view bag)
{
    const auto raw = raw_property(bag, "$version");
    if (!raw)
    {
        return std::optional<std::int64_t>{};
    }
    const auto v = parse_decimal<std::int64_t>(*raw);
    if (!v)
    {
        return std::nullopt;
    }
    return std::optional<std::int64_t>{*v};
}

bool consume(std::string_view& s, std::string_view prefix)
{
    if (!s.starts_with(prefix))
    {
        return false;
    }
    s.remove_prefix(prefix.size());
    return true;
}

void append_identity_path(const Identity& id, BufWriter& out)
{
    out.append("devices/").append(id.device_id);
    if (!id.module_id.empty())
    {
        out.append("/modules/").append(id.module_id);
    }
}

} // namespace

void append_client_id(const Identity& id, BufWriter& out)
{
    out.append(id.device_id);
    if (!id.module_id.empty())
    {
        out.append('/').append(id.module_id);
    }
}

void append_username(const Identity& id,
                     std::string_view client_type,
                     std::string_view model_id,
                     BufWriter& out)
{
    out.append(id.hub_host).append('/');
    append_client_id(id, out);
    out.append("/?api-version=").append(kApiVersion);
    if (!client_type.empty())
    {
        out.append("&DeviceClientType=").append_url_encoded(client_type);
    }
    if (!model_id.empty())
    {
        out.append("&model-id=").append_url_encoded(model_id);
    }
}

void append_telemetry_topic(const Identity& id, std::span<const Property> props, BufWriter& out)
{
    append_identity_path(id, out);
    out.append("/messages/events/");
    bool first = true;
    for (const Property& p : props)
    {
        if (!first)
        {
            out.append('&');
        }
        first = false;
        out.append_url_encoded(p.key).append('=').append_url_encoded(p.value);
    }
}

void append_alert_topic(const Identity& id, std::string_view output, BufWriter& out)
{
    append_alert_topic(id, output, AlertProperties{}, out);
}

ForwardResult copy_forwarded_properties(std::string_view bag, BufWriter& out, std::uint8_t& present)
{
    present = 0;
    BagReader reader(bag);
    BagItem item;
    bool first = true;
    while (reader.next(item))
    {
        // Long enough for every name we classify by ("MessageType", "iothub-", "$.").
        std::array<char, 16> head{};
        std::size_t key_len = 0;
        if (!decode_head(item.key, head, key_len) || key_len == 0 || !decodes_cleanly(item.value))
        {
            return ForwardResult::Malformed;
        }
        const std::string_view key(head.data(), std::min(key_len, head.size()));
        const std::uint8_t flag = key_len <= head.size() ? forwarded_flag(key) : 0;
        if (flag != 0)
        {
            // An empty or null system property means none, as the SDKs read it.
            if (item.value.empty())
            {
                continue;
            }
            // Two of them would leave it to the hub which one counts.
            if ((present & flag) != 0 || (flag == kForwardedMid && !valid_message_id(item.value)))
            {
                return ForwardResult::BadSystemProperty;
            }
            present = static_cast<std::uint8_t>(present | flag);
        }
        else if ((key_len == 11 && key == "MessageType") || key.starts_with("$.") ||
                 key.starts_with("iothub-"))
        {
            continue;
        }
        if (!first)
        {
            out.append('&');
        }
        first = false;
        reencode(item.key, out);
        if (item.has_value)
        {
            out.append('=');
            reencode(item.value, out);
        }
    }
    return out.ok() ? ForwardResult::Ok : ForwardResult::TooLarge;
}

void append_alert_topic(const Identity& id,
                        std::string_view output,
                        const AlertProperties& props,
                        BufWriter& out)
{
    append_identity_path(id, out);
    out.append("/messages/events/").append(props.forwarded);
    bool first = props.forwarded.empty();
    const auto add = [&](std::string_view key, std::string_view value)
    {
        if (!first)
        {
            out.append('&');
        }
        first = false;
        out.append_url_encoded(key).append('=').append_url_encoded(value);
    };
    // A device has no outputs, so $.on is for modules only.
    if (!id.module_id.empty())
    {
        add("$.on", output);
    }
    if ((props.present & kForwardedCt) == 0)
    {
        add("$.ct", "application/json");
    }
    if ((props.present & kForwardedCe) == 0)
    {
        add("$.ce", "utf-8");
    }
    add("MessageType", "Alert");
    if ((props.present & kForwardedMid) == 0 && !props.message_id.empty())
    {
        add("$.mid", props.message_id);
    }
}

void append_input_filter(const Identity& id, std::string_view input, BufWriter& out)
{
    append_identity_path(id, out);
    out.append("/inputs/").append(input).append("/#");
}

std::optional<InputTopic> parse_input_topic(const Identity& id, std::string_view topic)
{
    if (id.device_id.empty() || id.module_id.empty())
    {
        return std::nullopt;
    }
    std::string_view rest = topic;
    if (!consume(rest, "devices/") || !consume(rest, id.device_id) || !consume(rest, "/modules/") ||
        !consume(rest, id.module_id) || !consume(rest, "/inputs/"))
    {
        return std::nullopt;
    }
    const std::size_t slash = rest.find('/');
    InputTopic result;
    result.input = rest.substr(0, slash);
    if (result.input.empty())
    {
        return std::nullopt;
    }
    if (slash != std::string_view::npos)
    {
        result.bag = rest.substr(slash + 1);
    }
    return result;
}

BagLookup bag_lookup(std::string_view bag, std::string_view key, BufWriter& value)
{
    BagReader reader(bag);
    BagItem item;
    while (reader.next(item))
    {
        switch (decoded_equals(item.key, key))
        {
        case Match::Equal:
            return decode_into(item.value, value) ? BagLookup::Found : BagLookup::Malformed;
        case Match::Malformed:
            // The key cannot be read, so it might have been the one asked for.
            return BagLookup::Malformed;
        case Match::Different:
            break;
        }
    }
    return BagLookup::Absent;
}

bool bag_is_well_formed(std::string_view bag)
{
    BagReader reader(bag);
    BagItem item;
    while (reader.next(item))
    {
        if (!decodes_cleanly(item.key) || !decodes_cleanly(item.value))
        {
            return false;
        }
    }
    return true;
}

void append_twin_get_topic(std::string_view rid, BufWriter& out)
{
    out.append("$iothub/twin/GET/?$rid=").append(rid);
}

void append_twin_reported_topic(std::string_view rid, BufWriter& out)
{
    out.append("$iothub/twin/PATCH/properties/reported/?$rid=").append(rid);
}

std::optional<TwinResponse> parse_twin_response(std::string_view topic)
{
    std::string_view rest = topic;
    if (!consume(rest, "$iothub/twin/res/"))
    {
        return std::nullopt;
    }
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos)
    {
        return std::nullopt;
    }
    // HTTP-like codes; more than 9 digits cannot be one and would overflow int.
    const std::string_view status_text = rest.substr(0, slash);
    const auto status = status_text.size() > 9 ? std::nullopt : parse_decimal<int>(status_text);
    rest.remove_prefix(slash + 1);
    if (!status || !rest.starts_with('?'))
    {
        return std::nullopt;
    }
    const auto rid = raw_property(rest, "$rid");
    if (!rid || rid->empty() || !bag_is_well_formed(rest))
    {
        return std::nullopt;
    }
    const auto version = version_property(rest);
    if (!version)
    {
        return std::nullopt;
    }
    TwinResponse result;
    result.status = *status;
    result.rid = *rid;
    result.version = *version;
    return result;
}

std::optional<DesiredPatchTopic> parse_desired_patch_topic(std::string_view topic)
{
    std::string_view rest = topic;
    if (!consume(rest, "$iothub/twin/PATCH/properties/desired/"))
    {
        return std::nullopt;
    }
    if (rest.empty())
    {
        return DesiredPatchTopic{};
    }
    if (!rest.starts_with('?') || !bag_is_well_formed(rest))
    {
        return std::nullopt;
    }
    const auto version = version_property(rest);
    if (!version)
    {
        return std::nullopt;
    }
    return DesiredPatchTopic{*version};
}

std::optional<MethodRequest> parse_method_request(std::string_view topic)
{
    std::string_view rest = topic;
    if (!consume(rest, "$iothub/methods/POST/"))
    {
        return std::nullopt;
    }
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0)
    {
        return std::nullopt;
    }
    MethodRequest result;
    result.name = rest.substr(0, slash);
    rest.remove_prefix(slash + 1);
    if (!rest.starts_with('?') || !bag_is_well_formed(rest))
    {
        return std::nullopt;
    }
    const auto rid = raw_property(rest, "$rid");
    if (!rid || rid->empty())
    {
        return std::nullopt;
    }
    result.rid = *rid;
    return result;
}

void append_method_response_topic(int status, std::string_view rid, BufWriter& out)
{
    out.append("$iothub/methods/res/").append_int(status).append("/?$rid=").append(rid);
}

bool is_safe_method_rid(std::string_view rid)
{
    if (rid.empty() || rid.size() > kMaxMethodRidBytes)
    {
        return false;
    }
    return std::ranges::all_of(rid,
                               [](char c)
                               {
                                   return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                                          (c >= 'a' && c <= 'z') || c == '-' || c == '_' ||
                                          c == '.';
                               });
}

} // namespace ga
