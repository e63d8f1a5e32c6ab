// SPDX-License-Identifier: MIT
#include "twin_sync.h"

#include "buf_writer.h"
#include "port.h"

#include <charconv>
#include <cstring>

namespace ga
{

TwinSync::TwinSync(HubConnection& hub,
                   InputFilter& filter,
                   double conf_threshold,
                   Listener& listener)
    : hub_(hub), filter_(filter), listener_(listener),
      threshold_source_(conf_threshold == 25.0 ? "default" : "conf")
{
}

const char* TwinSync::next_rid(char (&buf)[24])
{
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf - 1, ++rid_);
    *end = '\0';
    return buf;
}

void TwinSync::on_online()
{
    send_get();
}

void TwinSync::on_offline()
{
    get_rid_[0] = '\0';
}

void TwinSync::send_get()
{
    char topic[128];
    BufWriter w(topic);
    append_twin_get_topic(next_rid(get_rid_), w);
    w.append('\0');
    if (!hub_.publish0(topic, {}))
        port::log(port::Level::Warning, "twin: GET could not be sent");
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
        if (r.status != 200)
        {
            port::log(port::Level::Warning, "twin: GET answered %d", r.status);
            return;
        }
        DesiredUpdate u;
        const TwinError e = parse_twin_document(payload, u);
        if (e != TwinError::None)
        {
            port::log(port::Level::Warning, "twin: GET document rejected: %s", describe(e));
            return;
        }
        apply_desired(u, "twin GET");
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
    apply_desired(u, "twin patch");
}

void TwinSync::apply_desired(const DesiredUpdate& u, const char* source)
{
    if (!is_newer_version(u.version, desired_version_))
    {
        port::log(port::Level::Info, "twin: %s $version %lld is not newer than %lld: ignored",
                  source, static_cast<long long>(u.version),
                  static_cast<long long>(desired_version_));
        return;
    }
    desired_version_ = u.version;
    if (u.threshold == ThresholdState::Absent)
        return;
    char doc[512];
    BufWriter w(doc);
    const double current = filter_.threshold();
    if (u.threshold == ThresholdState::Invalid)
    {
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
        return;
    }
    if (u.value != current)
    {
        filter_.set_threshold(u.value);
        ++threshold_changes_;
        threshold_source_ = "twin";
        port::log(port::Level::Notice, "threshold: %g -> %g (from %s, $version %lld)", current,
                  u.value, source, static_cast<long long>(u.version));
    }
    if (build_threshold_ack(u.value, 200, u.version, "applied", w))
        send_reported(w.view(), false);
}

} // namespace ga
