// SPDX-License-Identifier: MIT
// The edge filter's decision and its counters: scans a sensor message and says whether it is an
// alert. Rejections are counted by kind and logged once per kind per minute. Pure of I/O except
// the rate-limited log line; storing and acknowledging belong to the InputPipeline.
#pragma once

#include "json_scan.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace ga
{

class InputFilter
{
  public:
    InputFilter(const FieldPath& path, double threshold) : path_(path), threshold_(threshold) {}

    /// Scans `message` against the threshold and counts it (received, and rejected by kind).
    Verdict decide(std::string_view message);
    /// The same decision without counting (an input decided before, retried).
    [[nodiscard]] Verdict rescan(std::string_view message) const
    {
        return scan_sensor_message(message, path_, threshold_).verdict;
    }
    /// Counts (and logs, rate-limited) a message rejected before it could be scanned, e.g. one
    /// the link had to discard for its size.
    void reject(Verdict v, std::size_t bytes);
    /// Counts (and logs, rate-limited) an input whose property bag cannot be forwarded with an
    /// alert (bad percent-encoding, too large, a duplicate or invalid system property); `why`
    /// names the cause in the log line. Such an input is not scanned.
    void reject_properties(const char* why, std::size_t bag_bytes);
    /// Counts an alert that was accepted into the store.
    void count_accepted() { ++accepted_; }

    void set_threshold(double t) { threshold_ = t; }
    [[nodiscard]] double threshold() const { return threshold_; }

    [[nodiscard]] std::uint64_t received() const { return received_; }
    [[nodiscard]] std::uint64_t accepted() const { return accepted_; }
    [[nodiscard]] std::uint64_t rejected(Verdict v) const
    {
        return rejected_[static_cast<std::size_t>(v)];
    }
    [[nodiscard]] std::uint64_t bad_properties() const { return bad_properties_; }

  private:
    FieldPath path_;
    double threshold_;
    std::uint64_t received_ = 0;
    std::uint64_t accepted_ = 0;
    std::array<std::uint64_t, kVerdictCount> rejected_{};
    std::array<std::int64_t, kVerdictCount> last_logged_ms_{};
    std::uint64_t bad_properties_ = 0;
    std::int64_t bad_properties_logged_ms_ = 0;
};

} // namespace ga
