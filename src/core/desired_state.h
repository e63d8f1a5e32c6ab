// SPDX-License-Identifier: MIT
// The desired state kept across restarts (`<state dir>/desired-threshold`): the last applied
// desired $version, the TemperatureThreshold taken from the twin (if any) and where it came
// from. A small line format with a format number, parsed strictly: anything unexpected is a
// corrupt file, which the agent logs and ignores (conf or default then apply until the GET).
//
//     gateway-agent desired-threshold 1
//     version=7
//     threshold=30
//     from=twin patch
//
// `threshold=none` records a desired $version that carried no threshold from the twin yet.
#pragma once

#include "buf_writer.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ga
{

inline constexpr std::string_view kDesiredStateFile = "desired-threshold";
/// Far above any valid file; a larger file is corrupt and is not read whole.
inline constexpr std::size_t kDesiredStateMaxBytes = 512;

enum class DesiredOrigin
{
    TwinGet,
    TwinPatch,
};
/// "twin GET" or "twin patch".
[[nodiscard]] const char* origin_name(DesiredOrigin o);

struct StoredDesired
{
    std::int64_t version = 0;   // the last applied desired $version (>= 0)
    bool has_threshold = false; // a threshold from the twin is in effect
    double threshold = 0.0;     // finite when has_threshold
    DesiredOrigin origin = DesiredOrigin::TwinGet;
};

/// Writes the file text; false when it does not fit or the state cannot be stored faithfully
/// (negative version, non-finite threshold).
[[nodiscard]] bool serialize_desired_state(const StoredDesired& s, BufWriter& out);
/// Parses the file text. Returns nullptr on success, else a static reason ("bad header", ...);
/// `out` is only written on success.
[[nodiscard]] const char* parse_desired_state(std::string_view text, StoredDesired& out);

/// Where the threshold in use comes from, for the start-up line and --check-config:
/// "twin ($version N, stored)" when `stored` has a twin threshold, else "conf" when the conf
/// sets the key, else "default".
void describe_threshold_source(const StoredDesired* stored, bool conf_set, BufWriter& out);

} // namespace ga
