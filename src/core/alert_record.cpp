// SPDX-License-Identifier: MIT
#include "alert_record.h"

namespace ga
{
namespace
{
constexpr char kHeadMagic = 0x01;

// What copy_forwarded_properties writes: unreserved characters, escapes and the separators.
bool bag_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '%' || c == '=' || c == '&';
}
} // namespace

ForwardResult build_alert_head(std::string_view input_bag, std::span<char> out, std::size_t& size)
{
    size = 0;
    if (out.size() < kMaxAlertHead)
    {
        return ForwardResult::TooLarge;
    }
    BufWriter w(out.subspan(kAlertHeadFixed, kMaxForwardedBag));
    std::uint8_t present = 0;
    const ForwardResult r = copy_forwarded_properties(input_bag, w, present);
    if (r != ForwardResult::Ok)
    {
        return r;
    }
    const std::size_t n = w.size();
    out[0] = kHeadMagic;
    out[1] = static_cast<char>(present);
    out[2] = static_cast<char>(n & 0xFFU);
    out[3] = static_cast<char>(n >> 8U);
    size = kAlertHeadFixed + n;
    return ForwardResult::Ok;
}

std::optional<AlertRecord> parse_alert_record(std::string_view record)
{
    AlertRecord r;
    if (record.empty() || record[0] != kHeadMagic)
    {
        r.payload = record;
        return r;
    }
    if (record.size() < kAlertHeadFixed)
    {
        return std::nullopt;
    }
    const auto present = static_cast<std::uint8_t>(record[1]);
    const std::size_t n = static_cast<std::uint8_t>(record[2]) |
                          (std::size_t{static_cast<std::uint8_t>(record[3])} << 8U);
    if ((present & ~unsigned{kForwardedAll}) != 0 || n > kMaxForwardedBag ||
        n > record.size() - kAlertHeadFixed)
    {
        return std::nullopt;
    }
    r.present = present;
    r.forwarded = record.substr(kAlertHeadFixed, n);
    r.payload = record.substr(kAlertHeadFixed + n);
    // The text goes into a topic as it is: it must be a bag we could have written.
    for (const char c : r.forwarded)
    {
        if (!bag_char(c))
        {
            return std::nullopt;
        }
    }
    if (!bag_is_well_formed(r.forwarded))
    {
        return std::nullopt;
    }
    return r;
}

void append_alert_message_id(std::uint64_t store_id, std::uint64_t seq, BufWriter& out)
{
    constexpr std::string_view kHex = "0123456789abcdef";
    out.append("ga-");
    for (int shift = 60; shift >= 0; shift -= 4)
    {
        out.append(kHex[(store_id >> static_cast<unsigned>(shift)) & 0xFU]);
    }
    out.append('-').append_uint(seq);
}

} // namespace ga
