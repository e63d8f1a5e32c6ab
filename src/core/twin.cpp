// SPDX-License-Identifier: MIT
// Twin documents. Parsing uses cJSON with every allocation served from one static bump arena of
// kTwinArenaBytes, reset before each parse: a document too big for the arena fails cleanly
// (TwinError::TooLarge) instead of growing the heap, and nothing needs freeing afterwards.
//
// Consequences, by design:
// - The hooks are installed process-wide on first use and never restored, so in the agent
//   process cJSON must only be used through this module (another user's tree would live in the
//   arena and be overwritten by the next parse).
// - The parse functions share the arena and are not reentrant: call them from one thread.
// - Builders write by hand into a BufWriter; they never touch cJSON or the heap.
#include "twin.h"

#include <cjson/cJSON.h>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

namespace ga
{
namespace
{

alignas(std::max_align_t) unsigned char g_arena[kTwinArenaBytes];
std::size_t g_used = 0;
bool g_exhausted = false;

void* arena_alloc(std::size_t size)
{
    constexpr std::size_t kAlign = alignof(std::max_align_t);
    const std::size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
    if (rounded < size || rounded > kTwinArenaBytes - g_used)
    {
        g_exhausted = true; // remembered so the caller can tell TooLarge from NotJson
        return nullptr;
    }
    void* p = g_arena + g_used;
    g_used += rounded;
    return p;
}

void arena_free(void* p)
{
    const auto* b = static_cast<unsigned char*>(p);
    if (b >= g_arena && b < g_arena + kTwinArenaBytes)
    {
        return; // the whole arena is reset before the next parse
    }
    std::free(p); // a tree made with malloc before the hooks were installed
}

void install_hooks_once()
{
    static const bool installed = []
    {
        cJSON_Hooks hooks{arena_alloc, arena_free};
        cJSON_InitHooks(&hooks);
        return true;
    }();
    (void)installed;
}

// Parses `body` into a fresh arena. The body is copied with a terminating NUL so cJSON never
// reads past it, and require_null_terminated rejects text after the value.
TwinError parse_root(std::string_view body, const cJSON*& root)
{
    install_hooks_once();
    g_used = 0;
    g_exhausted = false;
    root = nullptr;
    if (body.empty() || std::memchr(body.data(), '\0', body.size()) != nullptr)
    {
        return TwinError::NotJson;
    }
    auto* copy = static_cast<char*>(arena_alloc(body.size() + 1));
    if (copy == nullptr)
    {
        return TwinError::TooLarge;
    }
    std::memcpy(copy, body.data(), body.size());
    copy[body.size()] = '\0';
    root = cJSON_ParseWithLengthOpts(copy, body.size() + 1, nullptr, 1);
    if (root == nullptr)
    {
        return g_exhausted ? TwinError::TooLarge : TwinError::NotJson;
    }
    if (!cJSON_IsObject(root))
    {
        return TwinError::NotJson;
    }
    return TwinError::None;
}

bool named(const cJSON* item, std::string_view name)
{
    return item->string != nullptr && name == item->string;
}

// Twin versions are integers; anything else (fraction, out of the exact-double range) is not a
// usable version. The range check also keeps the cast to int64 defined.
bool to_version(const cJSON* item, std::int64_t& version)
{
    constexpr double kMaxExact = 9007199254740992.0; // 2^53
    if (!cJSON_IsNumber(item))
    {
        return false;
    }
    const double d = item->valuedouble;
    if (!std::isfinite(d) || std::trunc(d) != d || d > kMaxExact || d < -kMaxExact)
    {
        return false;
    }
    version = static_cast<std::int64_t>(d);
    return true;
}

std::string_view type_reason(const cJSON* item)
{
    if (cJSON_IsString(item))
    {
        return "not a number (string)";
    }
    if (cJSON_IsNull(item))
    {
        return "not a number (null)";
    }
    if (cJSON_IsBool(item))
    {
        return "not a number (bool)";
    }
    if (cJSON_IsObject(item))
    {
        return "not a number (object)";
    }
    if (cJSON_IsArray(item))
    {
        return "not a number (array)";
    }
    return "not a number";
}

// Reads one desired object (the GET's "desired" or a patch). cJSON keeps duplicate members, so
// they are counted: a duplicated $version or threshold is ambiguous and not used.
TwinError read_desired(const cJSON* desired, DesiredUpdate& out)
{
    const cJSON* version = nullptr;
    const cJSON* threshold = nullptr;
    int versions = 0;
    int thresholds = 0;
    for (const cJSON* item = desired->child; item != nullptr; item = item->next)
    {
        if (named(item, "$version"))
        {
            version = item;
            ++versions;
            continue;
        }
        if (named(item, "$metadata"))
        {
            continue;
        }
        ++out.property_count;
        if (named(item, kThresholdProperty))
        {
            threshold = item;
            ++thresholds;
        }
    }
    if (versions != 1 || !to_version(version, out.version))
    {
        return TwinError::NoVersion;
    }
    if (thresholds == 0)
    {
        out.threshold = ThresholdState::Absent;
    }
    else if (thresholds > 1)
    {
        out.threshold = ThresholdState::Invalid;
        out.invalid_reason = "duplicate key";
    }
    else if (!cJSON_IsNumber(threshold))
    {
        out.threshold = ThresholdState::Invalid;
        out.invalid_reason = type_reason(threshold);
    }
    else if (!std::isfinite(threshold->valuedouble))
    {
        // cJSON turns 1e999 into infinity.
        out.threshold = ThresholdState::Invalid;
        out.invalid_reason = "not a finite number";
    }
    else
    {
        out.threshold = ThresholdState::Valid;
        out.value = threshold->valuedouble;
    }
    return TwinError::None;
}

// Length of the valid UTF-8 sequence at s[i], 0 when invalid (overlong, surrogate, > U+10FFFF,
// truncated).
std::size_t utf8_sequence(std::string_view s, std::size_t i)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80)
    {
        return 1;
    }
    std::size_t len = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF)
    {
        len = 2;
    }
    else if (b0 >= 0xE0 && b0 <= 0xEF)
    {
        len = 3;
        lo = b0 == 0xE0 ? 0xA0U : 0x80U;
        hi = b0 == 0xED ? 0x9FU : 0xBFU;
    }
    else if (b0 >= 0xF0 && b0 <= 0xF4)
    {
        len = 4;
        lo = b0 == 0xF0 ? 0x90U : 0x80U;
        hi = b0 == 0xF4 ? 0x8FU : 0xBFU;
    }
    else
    {
        return 0;
    }
    if (s.size() - i < len)
    {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k)
    {
        const unsigned b = static_cast<unsigned char>(s[i + k]);
        if (b < (k == 1 ? lo : 0x80U) || b > (k == 1 ? hi : 0xBFU))
        {
            return 0;
        }
    }
    return len;
}

// A JSON string literal; invalid UTF-8 bytes become U+FFFD so the output is always valid JSON.
void append_json_string(BufWriter& out, std::string_view s)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out.append('"');
    for (std::size_t i = 0; i < s.size();)
    {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0)
        {
            out.append("\\ufffd");
            ++i;
            continue;
        }
        if (c == '"' || c == '\\')
        {
            out.append('\\').append(static_cast<char>(c));
        }
        else if (c == '\n')
        {
            out.append("\\n");
        }
        else if (c == '\r')
        {
            out.append("\\r");
        }
        else if (c == '\t')
        {
            out.append("\\t");
        }
        else if (c < 0x20)
        {
            const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4U], kHex[c & 0xFU]};
            out.append(std::string_view(esc, sizeof esc));
        }
        else
        {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    out.append('"');
}

// Shortest text that reads back as the same double; JSON has no NaN or infinity.
bool append_json_number(BufWriter& out, double v)
{
    if (!std::isfinite(v))
    {
        return false;
    }
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
    if (ec != std::errc{})
    {
        return false;
    }
    out.append(std::string_view(buf, static_cast<std::size_t>(ptr - buf)));
    return true;
}

void append_counter(BufWriter& out, std::string_view name, std::uint64_t n, bool first = false)
{
    if (!first)
    {
        out.append(',');
    }
    out.append('"').append(name).append("\":").append_uint(n);
}

} // namespace

const char* describe(TwinError e)
{
    switch (e)
    {
    case TwinError::None:
        return "ok";
    case TwinError::NotJson:
        return "not a JSON object";
    case TwinError::TooLarge:
        return "twin document too large";
    case TwinError::NoVersion:
        return "desired properties without a numeric $version";
    }
    return "unknown twin error";
}

TwinError parse_twin_document(std::string_view body, DesiredUpdate& out)
{
    out = DesiredUpdate{};
    const cJSON* root = nullptr;
    if (const TwinError e = parse_root(body, root); e != TwinError::None)
    {
        return e;
    }
    const cJSON* desired = nullptr;
    int count = 0;
    for (const cJSON* item = root->child; item != nullptr; item = item->next)
    {
        if (named(item, "desired"))
        {
            desired = item;
            ++count;
        }
    }
    if (count != 1 || !cJSON_IsObject(desired))
    {
        return TwinError::NotJson;
    }
    return read_desired(desired, out);
}

TwinError parse_desired_patch(std::string_view body, DesiredUpdate& out)
{
    out = DesiredUpdate{};
    const cJSON* root = nullptr;
    if (const TwinError e = parse_root(body, root); e != TwinError::None)
    {
        return e;
    }
    return read_desired(root, out);
}

bool build_threshold_ack(
    double value, int ac, std::int64_t av, std::string_view description, BufWriter& out)
{
    out.append("{\"").append(kThresholdProperty).append(R"(":{"value":)");
    if (!append_json_number(out, value))
    {
        return false;
    }
    out.append(",\"ac\":").append_int(ac).append(",\"av\":").append_int(av).append(",\"ad\":");
    append_json_string(out, description);
    out.append("}}");
    return out.ok();
}

bool build_reboot_time_report(std::string_view iso8601_utc, BufWriter& out)
{
    out.append("{\"rebootTime\":");
    append_json_string(out, iso8601_utc);
    out.append('}');
    return out.ok();
}

bool build_stats_report(const Stats& stats, BufWriter& out)
{
    out.append("{\"agentStats\":{");
    append_counter(out, "messagesReceived", stats.messages_received, true);
    append_counter(out, "sourceDropped", stats.source_dropped);
    append_counter(out, "alertsAccepted", stats.alerts_accepted);
    append_counter(out, "alertsSent", stats.alerts_sent);
    out.append(",\"rejected\":{");
    bool first = true;
    for (std::size_t i = 0; i < kVerdictCount; ++i)
    {
        const auto v = static_cast<Verdict>(i);
        if (is_rejection(v))
        {
            append_counter(out, verdict_name(v), stats.rejected[i], first);
            first = false;
        }
    }
    // Not a scan verdict (the bag is checked before the body is scanned), but a rejection all
    // the same, so it is reported with them.
    append_counter(out, "bad_properties", stats.rejected_bad_properties);
    out.append('}');
    append_counter(out, "twinPatches", stats.twin_patches);
    append_counter(out, "twinPatchesApplied", stats.twin_patches_applied);
    append_counter(out, "thresholdChanges", stats.threshold_changes);
    append_counter(out, "reconnects", stats.reconnects);
    append_counter(out, "queueDepth", stats.queue_depth);
    append_counter(out, "queueDropped", stats.queue_dropped);
    append_counter(out, "queueNotPersisted", stats.queue_not_persisted);
    append_counter(out, "alertsResent", stats.alerts_resent);
    append_counter(out, "inputsWaited", stats.inputs_waited);
    append_counter(out, "queueCorrupt", stats.queue_corrupt);
    append_counter(out, "storeCommits", stats.store_commits);
    out.append("}}");
    return out.ok();
}

} // namespace ga
