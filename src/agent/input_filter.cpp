// SPDX-License-Identifier: MIT
#include "input_filter.h"

#include "port.h"

#include <cstring>

namespace ga
{
namespace
{
constexpr std::int64_t kRejectLogIntervalMs = 60000;
}

Verdict InputFilter::decide(std::string_view message, bool batched)
{
    ++received_;
    const ScanResult r = scan_sensor_message(message, path_, threshold());
    const auto k = static_cast<std::size_t>(r.verdict);
    if (is_rejection(r.verdict))
    {
        const std::uint64_t n = ++rejected_[k];
        // Logged once per kind per interval, with the running count, so a noisy sensor cannot
        // flood the journal.
        const std::int64_t now = port::monotonic_ms();
        std::int64_t last = last_logged_ms_[k].load();
        if ((n == 1 || now - last >= kRejectLogIntervalMs) &&
            last_logged_ms_[k].compare_exchange_strong(last, now))
            port::log(port::Level::Warning,
                      "filter: message rejected (%s, %zu bytes); %llu rejected as %s so far",
                      verdict_name(r.verdict), message.size(), static_cast<unsigned long long>(n),
                      verdict_name(r.verdict));
        return r.verdict;
    }
    if (r.verdict != Verdict::Above)
        return r.verdict;
    ++accepted_;
    std::uint64_t seq = 0;
    int err_no = 0;
    switch (store_.append(message, seq, err_no, !batched))
    {
    case AlertStore::AppendResult::Stored:
    case AlertStore::AppendResult::NotDurable: // logged by the store, counted there
        break;
    case AlertStore::AppendResult::TooLarge:
        port::log(port::Level::Err, "store: alert of %zu bytes is larger than [queue] max_bytes",
                  message.size());
        break;
    }
    (void)inbox_.push(EventType::InputDecided, static_cast<std::int32_t>(r.verdict), seq, 0);
    return r.verdict;
}

} // namespace ga
