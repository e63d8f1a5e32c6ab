// SPDX-License-Identifier: MIT
#include "input_pipeline.h"

#include "alert_record.h"
#include "port.h"

#include <cstring>

namespace ga
{
namespace
{
// A held entry: [u32 record length][u8 kind][u16 head length][record]; the record is the alert
// record's head (forwarded properties) followed by the message, so a retry needs no re-parse.
enum : std::uint8_t
{
    kHeldNew = 0,      // not decided yet
    kHeldCounted = 1,  // decided (counted) once, then the store was full
    kHeldOther = 2,    // not a sensor message: only its place in the ack order
    kHeldNoAck = 0x80, // flag: the source expects no acknowledgement for it
};
constexpr std::size_t kHeldHeader = 7;
constexpr std::size_t kMaxMessage = ScanLimits{}.max_bytes;

const char* forward_problem(ForwardResult r)
{
    switch (r)
    {
    case ForwardResult::Malformed:
        return "bad percent-encoding or an empty name";
    case ForwardResult::TooLarge:
        return "the forwarded properties exceed 4 KiB";
    case ForwardResult::BadSystemProperty:
        return "a system property twice, or a $.mid IoT Hub does not accept";
    case ForwardResult::Ok:
        break;
    }
    return "ok";
}
} // namespace

InputPipeline::InputPipeline(InputFilter& filter,
                             AlertLog& log,
                             AlertLog::Policy policy,
                             std::size_t held_bytes)
    : filter_(filter), log_(log), policy_(policy), held_(held_bytes),
      record_(std::make_unique_for_overwrite<char[]>(kMaxAlertHead + kMaxMessage))
{
}

InputPipeline::Result InputPipeline::decide(std::size_t head_len,
                                            std::string_view message,
                                            std::int64_t wall_s,
                                            bool counted)
{
    // An input decided once before the store turned out full is not counted again.
    const Verdict v = counted ? filter_.rescan(message) : filter_.decide(message);
    if (v != Verdict::Above)
        return Result::Done;
    // Only an alert pays for the copy; a held one is already in place.
    char* const body = record_.get() + head_len;
    if (message.data() != body)
        std::memcpy(body, message.data(), message.size());
    const std::string_view record(record_.get(), head_len + message.size());
    std::uint64_t seq = 0;
    switch (log_.append(record, policy_, wall_s, seq))
    {
    case AlertLog::AppendResult::Appended:
    case AlertLog::AppendResult::NotDurable: // counted by the log
        filter_.count_accepted();
        return Result::Done;
    case AlertLog::AppendResult::Full:
        return Result::Full;
    case AlertLog::AppendResult::TooLarge:
        break;
    }
    ++too_large_;
    const std::int64_t now = port::monotonic_ms();
    if (now >= next_too_large_log_ms_)
    {
        next_too_large_log_ms_ = now + 60000;
        port::log(port::Level::Err,
                  "store: alert of %zu bytes refused: larger than a store record may be (%llu "
                  "refused so far)",
                  record.size(), static_cast<unsigned long long>(too_large_));
    }
    return Result::Done;
}

InputPipeline::Offer
InputPipeline::offer(std::string_view message, std::string_view bag, std::int64_t wall_s, bool ack)
{
    // The head is built into record_ first: it is both what a held entry keeps and the start of
    // the stored record. A held record is never in record_ at this point (retry() is done with
    // it before returning), so this cannot overwrite one.
    std::size_t head_len = 0;
    const ForwardResult fr = build_alert_head(bag, {record_.get(), kMaxAlertHead}, head_len);
    if (fr != ForwardResult::Ok || message.size() > kMaxMessage)
    {
        // Either way the verdict does not depend on the store: count it now and keep only the
        // input's place in the acknowledgement order.
        if (fr != ForwardResult::Ok)
            filter_.reject_properties(forward_problem(fr), bag.size());
        else
            (void)filter_.decide(message); // too large to scan: counted as too_large
        if (!ack)
            return Offer::Decided;
        return offer_other();
    }
    if (held_count_ == 0 &&
        !(policy_ == AlertLog::Policy::Wait && log_.full(head_len + message.size())))
    {
        if (decide(head_len, message, wall_s, false) == Result::Done)
        {
            ready_ += ack ? 1U : 0U;
            return Offer::Decided;
        }
        ++waited_;
        return hold(head_len, message, kHeldCounted, ack) ? Offer::Held : Offer::Overflow;
    }
    ++waited_;
    return hold(head_len, message, kHeldNew, ack) ? Offer::Held : Offer::Overflow;
}

InputPipeline::Offer InputPipeline::offer_other()
{
    if (held_count_ == 0)
    {
        ++ready_;
        return Offer::Decided;
    }
    return hold(0, {}, kHeldOther, true) ? Offer::Held : Offer::Overflow;
}

bool InputPipeline::hold(std::size_t head_len,
                         std::string_view message,
                         std::uint8_t kind,
                         bool ack)
{
    const std::size_t len = head_len + message.size();
    if (held_.free_space() < kHeldHeader + len)
        return false;
    const auto len32 = static_cast<std::uint32_t>(len);
    const auto head16 = static_cast<std::uint16_t>(head_len);
    unsigned char head[kHeldHeader];
    std::memcpy(head, &len32, sizeof len32);
    head[4] = static_cast<std::uint8_t>(kind | (ack ? 0U : unsigned{kHeldNoAck}));
    std::memcpy(head + 5, &head16, sizeof head16);
    held_.push(head, sizeof head);
    held_.push(record_.get(), head_len);
    held_.push(message.data(), message.size());
    ++held_count_;
    return true;
}

void InputPipeline::retry(std::int64_t wall_s)
{
    while (held_count_ > 0)
    {
        unsigned char head[kHeldHeader];
        held_.read(0, head, sizeof head);
        std::uint32_t len = 0;
        std::memcpy(&len, head, sizeof len);
        std::uint16_t head_len = 0;
        std::memcpy(&head_len, head + 5, sizeof head_len);
        const bool ack = (head[4] & kHeldNoAck) == 0;
        const auto kind = static_cast<std::uint8_t>(head[4] & ~kHeldNoAck);
        if (kind != kHeldOther)
        {
            if (policy_ == AlertLog::Policy::Wait && log_.full(len))
                return;
            held_.read(kHeldHeader, record_.get(), len);
            const std::string_view message(record_.get() + head_len, len - head_len);
            if (decide(head_len, message, wall_s, kind == kHeldCounted) != Result::Done)
            {
                head[4] = static_cast<std::uint8_t>(kHeldCounted | (head[4] & kHeldNoAck));
                held_.write(0, head, sizeof head);
                return;
            }
        }
        held_.pop(kHeldHeader + len);
        --held_count_;
        ready_ += ack ? 1U : 0U;
    }
}

std::size_t InputPipeline::commit()
{
    if (!log_.commit())
        return 0;
    const std::size_t n = ready_;
    ready_ = 0;
    return n;
}

void InputPipeline::reset()
{
    held_.clear();
    held_count_ = 0;
    ready_ = 0;
}

} // namespace ga
