// SPDX-License-Identifier: MIT
#include "input_pipeline.h"

#include "port.h"

#include <cstring>

namespace ga
{
namespace
{
// A held entry: [u32 length][u8 kind][bytes].
enum : std::uint8_t
{
    kHeldNew = 0,      // not decided yet
    kHeldCounted = 1,  // decided (counted) once, then the store was full
    kHeldOther = 2,    // not a sensor message: only its place in the ack order
    kHeldNoAck = 0x80, // flag: the source expects no acknowledgement for it
};
constexpr std::size_t kHeldHeader = 5;
} // namespace

InputPipeline::InputPipeline(InputFilter& filter,
                             AlertLog& log,
                             AlertLog::Policy policy,
                             std::size_t held_bytes)
    : filter_(filter), log_(log), policy_(policy), held_(held_bytes),
      scratch_(std::make_unique<char[]>(ScanLimits{}.max_bytes + 1))
{
}

InputPipeline::Result
InputPipeline::decide(std::string_view message, std::int64_t wall_s, bool counted)
{
    // An input decided once before the store turned out full is not counted again.
    const Verdict v = counted ? filter_.rescan(message) : filter_.decide(message);
    if (v != Verdict::Above)
        return Result::Done;
    std::uint64_t seq = 0;
    switch (log_.append(message, policy_, wall_s, seq))
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
                  message.size(), static_cast<unsigned long long>(too_large_));
    }
    return Result::Done;
}

InputPipeline::Offer InputPipeline::offer(std::string_view message, std::int64_t wall_s, bool ack)
{
    if (held_count_ == 0 && !(policy_ == AlertLog::Policy::Wait && log_.full(message.size())))
    {
        if (decide(message, wall_s, false) == Result::Done)
        {
            ready_ += ack ? 1U : 0U;
            return Offer::Decided;
        }
        ++waited_;
        return hold(message, kHeldCounted, ack) ? Offer::Held : Offer::Overflow;
    }
    ++waited_;
    return hold(message, kHeldNew, ack) ? Offer::Held : Offer::Overflow;
}

InputPipeline::Offer InputPipeline::offer_other()
{
    if (held_count_ == 0)
    {
        ++ready_;
        return Offer::Decided;
    }
    return hold({}, kHeldOther, true) ? Offer::Held : Offer::Overflow;
}

bool InputPipeline::hold(std::string_view message, std::uint8_t kind, bool ack)
{
    if (held_.free_space() < kHeldHeader + message.size())
        return false;
    const auto len = static_cast<std::uint32_t>(message.size());
    unsigned char head[kHeldHeader];
    std::memcpy(head, &len, sizeof len);
    head[4] = static_cast<std::uint8_t>(kind | (ack ? 0U : unsigned{kHeldNoAck}));
    held_.push(head, sizeof head);
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
        const bool ack = (head[4] & kHeldNoAck) == 0;
        const auto kind = static_cast<std::uint8_t>(head[4] & ~kHeldNoAck);
        if (kind != kHeldOther)
        {
            if (policy_ == AlertLog::Policy::Wait && log_.full(len))
                return;
            held_.read(kHeldHeader, scratch_.get(), len);
            if (decide({scratch_.get(), len}, wall_s, kind == kHeldCounted) != Result::Done)
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
