// SPDX-License-Identifier: MIT
// Twin documents: desired TemperatureThreshold from a GET response or a desired patch, and the
// reported documents the agent sends (threshold ack, rebootTime, agentStats). cJSON is used with
// its allocations in a fixed arena, so a document that does not fit is a clean error.
#pragma once

#include "buf_writer.h"
#include "stats.h"

#include <cstdint>
#include <string_view>

namespace ga
{

inline constexpr std::string_view kThresholdProperty = "TemperatureThreshold";

enum class TwinError
{
    None,
    NotJson,   // not parseable, or not an object where one is required
    TooLarge,  // the document does not fit the arena
    NoVersion, // desired section without a numeric $version
};
[[nodiscard]] const char* describe(TwinError e);

enum class ThresholdState
{
    Absent,  // the document does not mention TemperatureThreshold
    Valid,   // a JSON number
    Invalid, // present but not a number (string, null, bool, object, array)
};

struct DesiredUpdate
{
    std::int64_t version = 0;
    ThresholdState threshold = ThresholdState::Absent;
    double value = 0.0;
    std::string_view invalid_reason; // static text when Invalid, e.g. "not a number (string)"
    int property_count = 0;          // desired members other than $version
};

/// Parses a full twin GET body {"desired":{...,"$version":n},"reported":{...}}.
[[nodiscard]] TwinError parse_twin_document(std::string_view body, DesiredUpdate& out);
/// Parses a desired patch body {...,"$version":n}.
[[nodiscard]] TwinError parse_desired_patch(std::string_view body, DesiredUpdate& out);

/// Versions only grow; a patch is applied only when newer than the last applied one.
[[nodiscard]] inline bool is_newer_version(std::int64_t candidate, std::int64_t last_applied)
{
    return candidate > last_applied;
}

/// {"TemperatureThreshold":{"value":v,"ac":ac,"av":av,"ad":"..."}}
[[nodiscard]] bool build_threshold_ack(
    double value, int ac, std::int64_t av, std::string_view description, BufWriter& out);
/// {"rebootTime":"2026-11-22T14:31:21Z"}
[[nodiscard]] bool build_reboot_time_report(std::string_view iso8601_utc, BufWriter& out);
/// {"agentStats":{...counters...}}
[[nodiscard]] bool build_stats_report(const Stats& stats, BufWriter& out);

/// Bytes of arena cJSON may use for one document (twin sections are at most 32 KB each).
inline constexpr std::size_t kTwinArenaBytes = std::size_t{256} * 1024U;

} // namespace ga
