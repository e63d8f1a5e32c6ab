// SPDX-License-Identifier: MIT
// The sensor JSON scanner: one pass, no heap. Validates the whole message as RFC 8259 JSON
// (UTF-8, escapes, numbers, depth, nothing after the value), finds the value at a dotted field
// path (keys compared after unescaping) and decides value > threshold.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ga
{

enum class Verdict : std::uint8_t
{
    Above,
    NotAbove,
    NotJson, // structure, escapes, numbers, trailing text, empty input
    BadUtf8, // invalid, overlong or surrogate encodings, also inside \u escapes (lone surrogates)
    TooDeep,
    TooLarge,
    PathAbsent,
    NotNumber,    // the value at the path is a string, bool, null, object or array
    DuplicateKey, // a key on the path appears twice in the same object: ambiguous
};
inline constexpr std::size_t kVerdictCount = 9;

/// A short stable name for logs and counters, e.g. "not_json".
[[nodiscard]] const char* verdict_name(Verdict v);
[[nodiscard]] inline bool is_rejection(Verdict v)
{
    return v != Verdict::Above && v != Verdict::NotAbove;
}

inline constexpr std::size_t kMaxPathSegments = 8;

/// A parsed dotted path; segments are views into the caller's string, which must outlive it.
struct FieldPath
{
    std::array<std::string_view, kMaxPathSegments> segments{};
    std::size_t count = 0;
};
/// Splits "machine.temperature" into segments; false on an empty path, an empty segment or
/// too many segments.
[[nodiscard]] bool parse_field_path(std::string_view dotted, FieldPath& out);

/// The nesting the scanner's fixed stack can hold; ScanLimits::max_depth is clamped to it.
inline constexpr std::size_t kMaxScanDepth = 128;

struct ScanLimits
{
    std::size_t max_bytes = std::size_t{64} * 1024U;
    std::size_t max_depth = 32;
};

struct ScanResult
{
    Verdict verdict = Verdict::NotJson;
    double value = 0.0; // the number at the path, when there was one
};

/// The decision is a correctly rounded double comparison: the number's text is converted to the
/// nearest double (std::from_chars), then compared with `threshold` using `>`. Out-of-range
/// magnitudes become +/-infinity or +/-0 as IEEE 754 rounding says.
[[nodiscard]] ScanResult scan_sensor_message(std::string_view message,
                                             const FieldPath& path,
                                             double threshold,
                                             const ScanLimits& limits = {});

/// True when `text` is one complete RFC 8259 JSON value with valid UTF-8 (same rules as above).
[[nodiscard]] bool is_valid_json(std::string_view text, const ScanLimits& limits = {});

} // namespace ga
