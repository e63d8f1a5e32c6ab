// SPDX-License-Identifier: MIT
#include "input_filter.h"

#include "port.h"

namespace ga
{
namespace
{
constexpr std::int64_t kRejectLogIntervalMs = 60000;
}

Verdict InputFilter::decide(std::string_view message)
{
    const ScanResult r = scan_sensor_message(message, path_, threshold_);
    if (is_rejection(r.verdict))
        reject(r.verdict, message.size());
    else
        ++received_;
    return r.verdict;
}

void InputFilter::reject(Verdict v, std::size_t bytes)
{
    ++received_;
    const auto k = static_cast<std::size_t>(v);
    const std::uint64_t n = ++rejected_[k];
    // Once per kind per interval, with the running count, so a noisy sensor cannot flood the
    // journal.
    const std::int64_t now = port::monotonic_ms();
    if (n == 1 || now - last_logged_ms_[k] >= kRejectLogIntervalMs)
    {
        last_logged_ms_[k] = now;
        port::log(port::Level::Warning,
                  "filter: message rejected (%s, %zu bytes); %llu rejected as %s so far",
                  verdict_name(v), bytes, static_cast<unsigned long long>(n), verdict_name(v));
    }
}

void InputFilter::reject_properties(const char* why, std::size_t bag_bytes)
{
    ++received_;
    const std::uint64_t n = ++bad_properties_;
    // Same rate limit as the scan rejections: a sensor with a broken bag cannot flood the journal.
    const std::int64_t now = port::monotonic_ms();
    if (n == 1 || now - bad_properties_logged_ms_ >= kRejectLogIntervalMs)
    {
        bad_properties_logged_ms_ = now;
        port::log(port::Level::Warning,
                  "filter: message rejected (bad_properties: %s, property bag of %zu bytes); %llu "
                  "rejected as bad_properties so far",
                  why, bag_bytes, static_cast<unsigned long long>(n));
    }
}

} // namespace ga
