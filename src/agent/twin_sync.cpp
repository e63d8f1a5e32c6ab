// SPDX-License-Identifier: MIT
#include "twin_sync.h"

#include "buf_writer.h"
#include "port.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ga
{
namespace
{
// Without the twin the agent filters with a stale threshold, so a lost or refused GET is asked
// again; the backoff keeps a struggling hub from being hammered by every gateway at once.
constexpr std::int64_t kGetTimeoutMs = 10000;
constexpr std::int64_t kGetRetryBaseMs = 1000;
constexpr std::int64_t kGetRetryCapMs = 60000;
// 429 means the hub's twin-read quota is exhausted: asking again soon only extends it.
constexpr std::int64_t kGetThrottledMinMs = 30000;

// Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
std::int64_t get_retry_delay_ms(int attempt, int status)
{
    const int shift = std::clamp(attempt - 1, 0, 16);
    const std::int64_t ceiling = std::min(kGetRetryCapMs, kGetRetryBaseMs << shift);
    const auto jitter =
        static_cast<std::int64_t>(port::random_u64() % static_cast<std::uint64_t>(ceiling + 1));
    if (status == 429)
        return std::min(kGetRetryCapMs, kGetThrottledMinMs + jitter);
    return jitter;
}

void set_source(char (&buf)[48], const StoredDesired* stored, bool conf_set)
{
    BufWriter w(buf);
    describe_threshold_source(stored, conf_set, w);
    const std::size_t n = w.ok() ? w.size() : 0;
    buf[std::min(n, sizeof buf - 1)] = '\0';
}
} // namespace

StoredLoad load_stored_desired(const std::string& state_dir, StoredDesired& out, std::string& why)
{
    const std::string path = state_dir + "/" + std::string(kDesiredStateFile);
    std::string text;
    switch (port::read_file(path, text, kDesiredStateMaxBytes, why))
    {
    case port::ReadStatus::Missing:
        return StoredLoad::Missing;
    case port::ReadStatus::Error:
        return StoredLoad::Ignored;
    case port::ReadStatus::Ok:
        break;
    }
    if (const char* reason = parse_desired_state(text, out))
    {
        why = path + ": " + reason;
        return StoredLoad::Ignored;
    }
    return StoredLoad::Loaded;
}

TwinSync::TwinSync(HubConnection& hub, InputFilter& filter, const Config& cfg, Listener& listener)
    : hub_(hub), filter_(filter), listener_(listener),
      state_path_(cfg.state_dir + "/" + std::string(kDesiredStateFile))
{
    applied_.version = -1;
    set_source(source_, nullptr, cfg.threshold_set);
    StoredDesired stored;
    std::string why;
    switch (load_stored_desired(cfg.state_dir, stored, why))
    {
    case StoredLoad::Missing:
        break;
    case StoredLoad::Ignored:
        // Not fatal: the conf threshold filters until the twin GET answers.
        port::log(port::Level::Warning,
                  "twin: stored desired state ignored (%s); threshold %g (%s) until the twin is "
                  "read",
                  why.c_str(), filter_.threshold(), source_);
        break;
    case StoredLoad::Loaded:
        applied_ = stored;
        have_version_ = true;
        if (stored.has_threshold)
        {
            filter_.set_threshold(stored.threshold);
            set_source(source_, &stored, cfg.threshold_set);
        }
        port::log(port::Level::Info,
                  "twin: stored desired state: $version %lld from %s, threshold %g (%s)",
                  static_cast<long long>(stored.version), origin_name(stored.origin),
                  filter_.threshold(), source_);
        break;
    }
}

const char* TwinSync::next_rid(char (&buf)[24])
{
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf - 1, ++rid_);
    *end = '\0';
    return buf;
}

void TwinSync::on_online()
{
    get_attempt_ = 0;
    retry_pending_ = false;
    send_get(port::monotonic_ms());
}

void TwinSync::on_offline()
{
    // The next connect sends a fresh GET; nothing of this link's GET is waited for.
    get_rid_[0] = '\0';
    get_outstanding_ = false;
    retry_pending_ = false;
    get_attempt_ = 0;
}

void TwinSync::tick(std::int64_t now_ms)
{
    if (get_outstanding_ && now_ms - get_sent_ms_ >= kGetTimeoutMs)
    {
        // The rid stays valid: a late answer before the retry is still taken.
        get_outstanding_ = false;
        retry_get(now_ms, 0);
    }
    if (retry_pending_ && now_ms >= next_get_ms_)
    {
        retry_pending_ = false;
        send_get(now_ms);
    }
}

void TwinSync::send_get(std::int64_t now_ms)
{
    if (!hub_.online())
        return; // on_online sends it
    char topic[128];
    BufWriter w(topic);
    append_twin_get_topic(next_rid(get_rid_), w);
    w.append('\0');
    if (!hub_.publish0(topic, {}))
    {
        get_rid_[0] = '\0';
        retry_get(now_ms, -1);
        return;
    }
    get_outstanding_ = true;
    get_sent_ms_ = now_ms;
}

void TwinSync::retry_get(std::int64_t now_ms, int status)
{
    ++get_attempt_;
    const std::int64_t delay = get_retry_delay_ms(get_attempt_, status);
    next_get_ms_ = now_ms + delay;
    retry_pending_ = true;
    if (status > 0)
        port::log(port::Level::Warning, "twin: GET answered %d; retrying in %lld ms (attempt %d)",
                  status, static_cast<long long>(delay), get_attempt_);
    else if (status == 0)
        port::log(port::Level::Warning,
                  "twin: GET not answered within %lld s; retrying in %lld ms (attempt %d)",
                  static_cast<long long>(kGetTimeoutMs / 1000), static_cast<long long>(delay),
                  get_attempt_);
    else
        port::log(port::Level::Warning,
                  "twin: GET could not be sent; retrying in %lld ms (attempt %d)",
                  static_cast<long long>(delay), get_attempt_);
}

void TwinSync::send_reported(std::string_view doc, bool is_reboot_report)
{
    char rid[24];
    next_rid(rid);
    if (is_reboot_report)
        std::memcpy(reboot_rid_, rid, sizeof rid);
    char topic[128];
    BufWriter w(topic);
    append_twin_reported_topic(rid, w);
    w.append('\0');
    if (!hub_.publish0(topic, doc))
        port::log(port::Level::Warning, "twin: reported patch could not be sent");
}

bool TwinSync::handle(std::string_view topic, std::string_view payload)
{
    if (auto r = parse_twin_response(topic))
    {
        on_response(*r, payload);
        return true;
    }
    if (parse_desired_patch_topic(topic))
    {
        on_desired_patch(payload);
        return true;
    }
    return false;
}

void TwinSync::on_response(const TwinResponse& r, std::string_view payload)
{
    if (r.rid == std::string_view(get_rid_) && get_rid_[0] != '\0')
    {
        get_rid_[0] = '\0';
        get_outstanding_ = false;
        if (r.status != 200)
        {
            retry_get(port::monotonic_ms(), r.status);
            return;
        }
        // Answered (even late, during a backoff): no retry is due any more.
        retry_pending_ = false;
        get_attempt_ = 0;
        DesiredUpdate u;
        const TwinError e = parse_twin_document(payload, u);
        if (e != TwinError::None)
        {
            port::log(port::Level::Warning, "twin: GET document rejected: %s", describe(e));
            return;
        }
        (void)apply_desired(u, DesiredOrigin::TwinGet);
        return;
    }
    if (r.rid == std::string_view(reboot_rid_) && reboot_rid_[0] != '\0')
    {
        reboot_rid_[0] = '\0';
        if (r.status == 204)
            listener_.on_reboot_time_reported();
        return;
    }
    if (r.status >= 400)
        port::log(port::Level::Warning, "twin: request %.*s answered %d",
                  static_cast<int>(r.rid.size()), r.rid.data(), r.status);
}

void TwinSync::on_desired_patch(std::string_view payload)
{
    ++patches_;
    DesiredUpdate u;
    const TwinError e = parse_desired_patch(payload, u);
    if (e != TwinError::None)
    {
        port::log(port::Level::Warning, "twin: desired patch rejected: %s (%llu patches so far)",
                  describe(e), static_cast<unsigned long long>(patches_));
        return;
    }
    port::log(port::Level::Info,
              "twin: desired patch $version %lld with %d propert%s (%llu patches so far)",
              static_cast<long long>(u.version), u.property_count,
              u.property_count == 1 ? "y" : "ies", static_cast<unsigned long long>(patches_));
    if (apply_desired(u, DesiredOrigin::TwinPatch))
        ++patches_applied_;
}

bool TwinSync::apply_desired(const DesiredUpdate& u, DesiredOrigin origin)
{
    const char* source = origin_name(origin);
    const bool is_get = origin == DesiredOrigin::TwinGet;
    if (have_version_ && !is_newer_version(u.version, applied_.version))
    {
        // A GET is authoritative: a lower $version (a re-created twin), or the same $version with
        // another value, replaces what was applied. The same $version and value is a replay.
        const bool same_value = u.threshold != ThresholdState::Valid ||
                                (applied_.has_threshold && u.value == applied_.threshold);
        if (!is_get || (u.version == applied_.version && same_value))
        {
            port::log(port::Level::Info, "twin: %s $version %lld is not newer than %lld: ignored",
                      source, static_cast<long long>(u.version),
                      static_cast<long long>(applied_.version));
            return false;
        }
        if (u.version < applied_.version)
            port::log(port::Level::Notice,
                      "twin: GET $version %lld replaces the higher stored $version %lld (the twin "
                      "was re-created?)",
                      static_cast<long long>(u.version), static_cast<long long>(applied_.version));
        else
            port::log(port::Level::Notice,
                      "twin: GET $version %lld has another value than the one stored for it: "
                      "taken",
                      static_cast<long long>(u.version));
    }
    applied_.version = u.version;
    applied_.origin = origin;
    have_version_ = true;
    if (u.threshold == ThresholdState::Absent)
    {
        persist();
        return true;
    }
    char doc[512];
    BufWriter w(doc);
    const double current = filter_.threshold();
    if (u.threshold == ThresholdState::Invalid)
    {
        persist();
        char ad[160];
        BufWriter a(ad);
        a.append("rejected: ").append(u.invalid_reason).append("; threshold stays ");
        char num[32];
        auto [end, ec] = std::to_chars(num, num + sizeof num, current);
        a.append(std::string_view(num, static_cast<std::size_t>(end - num)));
        port::log(port::Level::Warning, "twin: desired TemperatureThreshold ($version %lld) %.*s",
                  static_cast<long long>(u.version), static_cast<int>(a.view().size()),
                  a.view().data());
        if (build_threshold_ack(current, 400, u.version, a.view(), w))
            send_reported(w.view(), false);
        return false;
    }
    if (u.value != current)
    {
        filter_.set_threshold(u.value);
        ++threshold_changes_;
        port::log(port::Level::Notice, "threshold: %g -> %g (from %s, $version %lld)", current,
                  u.value, source, static_cast<long long>(u.version));
    }
    applied_.has_threshold = true;
    applied_.threshold = u.value;
    BufWriter sw(source_);
    sw.append("twin ($version ").append_int(u.version).append(')');
    source_[std::min(sw.ok() ? sw.size() : 0, sizeof source_ - 1)] = '\0';
    // Stored before the ack: once the operator sees 200, a restart keeps the value.
    persist();
    if (build_threshold_ack(u.value, 200, u.version, "applied", w))
        send_reported(w.view(), false);
    return true;
}

void TwinSync::persist()
{
    char buf[256];
    BufWriter w(buf);
    std::string err;
    if (!serialize_desired_state(applied_, w))
        err = "cannot be encoded";
    else if (port::write_file_atomic(state_path_, w.view(), err))
        return;
    // The agent keeps filtering with the applied value; only a restart would fall back.
    port::log(port::Level::Warning,
              "twin: desired state ($version %lld) not stored: %s; after a restart the conf "
              "threshold applies until the twin is read",
              static_cast<long long>(applied_.version), err.c_str());
}

} // namespace ga
