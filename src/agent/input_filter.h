// SPDX-License-Identifier: MIT
// The edge filter: decides each sensor message against the threshold and stores accepted alerts.
// decide() runs on whichever thread delivers the message (the MQTT receive thread for module and
// mqtt sources, the loop for udp and simulated), so the acknowledgement of an input can follow the
// durable decision. Its state is atomics and the thread-safe store; the loop owns the threshold and
// publishes it here.
#pragma once

#include "alert_store.h"
#include "inbox.h"
#include "json_scan.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ga
{

class InputFilter
{
  public:
    InputFilter(const FieldPath& path, double threshold, AlertStore& store, Inbox& inbox)
        : path_(path), threshold_(threshold), store_(store), inbox_(inbox)
    {
    }

    /// Scans, counts, and appends an alert to the store when above the threshold; durable on
    /// return unless `batched`, where commit() makes a batch durable with one sync.
    Verdict decide(std::string_view message, bool batched = false);
    void commit() { store_.commit(); }

    void set_threshold(double t) { threshold_.store(t, std::memory_order_relaxed); }
    [[nodiscard]] double threshold() const { return threshold_.load(std::memory_order_relaxed); }

    [[nodiscard]] std::uint64_t received() const { return received_.load(); }
    [[nodiscard]] std::uint64_t accepted() const { return accepted_.load(); }
    [[nodiscard]] std::uint64_t rejected(Verdict v) const
    {
        return rejected_[static_cast<std::size_t>(v)].load();
    }

  private:
    FieldPath path_;
    std::atomic<double> threshold_;
    AlertStore& store_;
    Inbox& inbox_;
    std::atomic<std::uint64_t> received_{0};
    std::atomic<std::uint64_t> accepted_{0};
    std::array<std::atomic<std::uint64_t>, kVerdictCount> rejected_{};
    std::array<std::atomic<std::int64_t>, kVerdictCount> last_logged_ms_{};
};

} // namespace ga
