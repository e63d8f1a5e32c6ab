// SPDX-License-Identifier: MIT
#include "hub_connection.h"

#include "buf_writer.h"
#include "port.h"
#include "sas.h"
#include "topics.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace ga
{
namespace
{
constexpr std::int64_t kBackoffBaseMs = 1000;
constexpr std::int64_t kBackoffCapMs = 60000;
constexpr std::int64_t kStableAfterMs = 60000;
constexpr std::int64_t kAuthRetryMs = 60000;
constexpr std::int64_t kSubscribeTimeoutMs = 30000;
constexpr std::int64_t kDrainMs = 2000;
constexpr std::size_t kRxBytes = std::size_t{160} * 1024U; // method payloads up to 128 KiB
constexpr std::size_t kTxBytes = std::size_t{256} * 1024U;

const char* connack_reason(int code)
{
    switch (code)
    {
    case 1:
        return "protocol version refused (CONNACK 1)";
    case 2:
        return "client id refused (CONNACK 2)";
    case 3:
        return "server unavailable (CONNACK 3)";
    case 4:
        return "bad user name or password (CONNACK 4): check the key";
    case 5:
        return "not authorized (CONNACK 5): wrong key, expired token or unknown identity";
    default:
        return "refused with an unknown CONNACK code";
    }
}
/// systemd's STATUS= line, so `systemctl status` says online or offline and why.
template <typename... Args> void status(const char* fmt, Args... args)
{
    char line[320] = "STATUS=";
    (void)std::snprintf(line + 7, sizeof line - 7, fmt, args...);
    port::notify(line);
}
} // namespace

HubConnection::HubConnection(const HubSettings& s,
                             port::EventLoop& loop,
                             std::uint64_t key,
                             Client& client)
    : s_(s), loop_(loop), client_(client), key_(key)
{
    mqtt::SessionConfig sc;
    sc.keepalive_s = s.keepalive_s;
    // The silent-peer bound: a PINGRESP this late means the link is gone.
    sc.ping_timeout_ms = std::min<std::int64_t>(s.keepalive_s * 1000LL, 30000);
    sc.window = s.window;
    sc.max_inbound_pending = mqtt::Session::kMaxWindow;
    sc.max_packet = kRxBytes;
    link_ = std::make_unique<MqttLink>(MqttLink::Buffers{kRxBytes, kTxBytes}, sc, loop, key, *this);
}

bool HubConnection::configure(std::string& err)
{
    port::TransportConfig tc;
    tc.host = s_.connect_host;
    tc.port = s_.port;
    tc.tls = s_.tls;
    tc.ca_file = s_.ca_file;
    return link_->configure(tc, err);
}

void HubConnection::connect_now()
{
    char token[1024];
    BufWriter w(token);
    char resource[512];
    BufWriter r(resource);
    append_sas_resource(s_.hub_host, s_.device_id, s_.module_id, r);
    const std::int64_t expiry = port::wall_time_s() + static_cast<std::int64_t>(s_.sas_ttl_s);
    if (!r.ok() ||
        append_sas_token(r.view(), s_.shared_access_key, static_cast<std::uint64_t>(expiry), w) !=
            SasError::None ||
        !w.ok())
    {
        port::log(port::Level::Err, "hub link: cannot build a SAS token (bad key?)");
        schedule_reconnect(true);
        return;
    }
    // Renew at 80 % of the lifetime.
    renew_at_ms_ = port::monotonic_ms() + static_cast<std::int64_t>(s_.sas_ttl_s) * 800;
    state_ = State::Connecting;
    status("connecting to %s:%u", s_.connect_host.c_str(), static_cast<unsigned>(s_.port));
    // CleanSession 0: the hub keeps subscriptions and undelivered inputs across reconnects.
    link_->connect(s_.client_id, s_.username, w.view(), false, port::monotonic_ms());
    explicit_bzero(token, sizeof token);
}

void HubConnection::schedule_reconnect(bool auth_refused)
{
    std::int64_t delay = 0;
    if (auth_refused)
    {
        delay = kAuthRetryMs + static_cast<std::int64_t>(port::random_u64() % 30000U);
    }
    else
    {
        // Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)].
        const int shift = std::min(attempt_, 16);
        const std::int64_t ceiling = std::min(kBackoffCapMs, kBackoffBaseMs << shift);
        delay =
            static_cast<std::int64_t>(port::random_u64() % static_cast<std::uint64_t>(ceiling + 1));
        delay = std::max<std::int64_t>(delay, 100);
    }
    ++attempt_;
    next_connect_ms_ = port::monotonic_ms() + delay;
    state_ = State::Waiting;
    port::log(port::Level::Info, "hub link: next connect attempt in %lld ms (attempt %d)",
              static_cast<long long>(delay), attempt_);
}

void HubConnection::begin_drain(const char* why, bool reconnect)
{
    if (state_ == State::Subscribing || state_ == State::Connecting)
    {
        reconnect_when_down_ = reconnect;
        link_->close(why);
        return;
    }
    if (!link_->up())
        return;
    state_ = State::Draining;
    drain_why_ = why;
    reconnect_when_down_ = reconnect;
    drain_until_ms_ = port::monotonic_ms() + kDrainMs;
    if (link_->session().inflight() == 0)
        link_->close(why);
}

void HubConnection::reconnect(const char* why)
{
    begin_drain(why, true);
}

void HubConnection::tick(std::int64_t now_ms)
{
    if (state_ == State::Waiting && now_ms >= next_connect_ms_ && !stopping_)
        connect_now();
    link_->tick(now_ms);
    if (state_ == State::Subscribing && now_ms - subscribing_since_ms_ >= kSubscribeTimeoutMs)
        link_->fail("no SUBACK within 30 s");
    if (state_ == State::Online && renew_at_ms_ != 0 && now_ms >= renew_at_ms_)
    {
        port::log(port::Level::Info, "hub link: SAS token renewal: reconnecting with a new token");
        renew_at_ms_ = 0;
        begin_drain("token renewal", true);
    }
    if (state_ == State::Draining &&
        (link_->session().inflight() == 0 || now_ms >= drain_until_ms_))
        link_->close(drain_why_);
}

void HubConnection::on_ready(bool readable, bool writable, std::int64_t now_ms)
{
    link_->on_ready(readable, writable, now_ms);
}

void HubConnection::stop()
{
    stopping_ = true;
    if (state_ != State::Online && state_ != State::Draining)
    {
        link_->close("stopping");
        return;
    }
    // Bounded wait for in-flight alerts, then a clean DISCONNECT.
    begin_drain("stopping", false);
    std::array<port::EventLoop::Ready, 8> ready{};
    const std::int64_t until = port::monotonic_ms() + kDrainMs + 1000;
    while (state_ == State::Draining && port::monotonic_ms() < until)
    {
        const port::EventLoop::Wakeup w = loop_.wait(ready, 50);
        const std::int64_t now = port::monotonic_ms();
        for (std::size_t i = 0; i < w.ready; ++i)
            if (ready[i].key == key_)
                link_->on_ready(ready[i].readable, ready[i].writable, now);
        tick(now);
    }
    link_->close("stopping");
}

void HubConnection::flush()
{
    link_->flush(port::monotonic_ms());
}

bool HubConnection::publish0(std::string_view topic, std::string_view payload)
{
    if (!link_->up())
        return false;
    const bool ok = link_->session().publish(topic, payload, 0, 0);
    flush();
    return ok;
}

void HubConnection::on_connected(bool /*session_present*/)
{
    if (state_ != State::Connecting)
        return;
    ++connects_;
    if (connects_ > 1)
        ++reconnects_;
    port::log(port::Level::Info, "hub link: connected to %s:%u", s_.connect_host.c_str(),
              static_cast<unsigned>(s_.port));
    state_ = State::Subscribing;
    subscribing_since_ms_ = port::monotonic_ms();
    std::array<mqtt::Subscription, 4> subs{};
    std::size_t n = 0;
    if (!s_.input_filter.empty())
        subs[n++] = {s_.input_filter, 1};
    subs[n++] = {kTwinResponseFilter, 0};
    subs[n++] = {kTwinDesiredFilter, 0};
    subs[n++] = {kMethodsFilter, 0};
    std::uint16_t id = 0;
    if (!link_->session().subscribe(std::span(subs.data(), n), id))
        link_->fail("SUBSCRIBE does not fit the send buffer");
}

void HubConnection::on_subscribed(std::span<const std::uint8_t> granted)
{
    if (state_ != State::Subscribing)
        return;
    const auto refused = std::count(granted.begin(), granted.end(), std::uint8_t{0x80});
    if (refused != 0)
    {
        port::log(port::Level::Err, "hub link: %d subscription(s) refused; reconnecting",
                  static_cast<int>(refused));
        link_->fail("subscription refused");
        return;
    }
    state_ = State::Online;
    online_since_ms_ = port::monotonic_ms();
    status("online: connected to %s:%u", s_.connect_host.c_str(), static_cast<unsigned>(s_.port));
    client_.on_online();
}

void HubConnection::on_message(const mqtt::Publish& m)
{
    client_.on_hub_message(m);
}

void HubConnection::on_acked(std::uint64_t tag)
{
    client_.on_alert_acked(tag);
}

void HubConnection::on_batch_end()
{
    client_.on_burst_end();
}

void HubConnection::on_down(const char* why, int connack, bool requested)
{
    const State was = state_;
    if (connack >= 0)
        port::log(connack >= 4 ? port::Level::Err : port::Level::Warning,
                  "hub link: connect to %s:%u failed: %s", s_.connect_host.c_str(),
                  static_cast<unsigned>(s_.port), connack_reason(connack));
    else if (was == State::Connecting)
        port::log(port::Level::Warning, "hub link: connect to %s:%u failed: %s",
                  s_.connect_host.c_str(), static_cast<unsigned>(s_.port), why);
    else if (!requested)
        port::log(port::Level::Warning, "hub link: connection lost (%s)", why);
    // The backoff starts again only after a stable Online period, so a hub that accepts and
    // then drops is not hammered.
    if ((was == State::Online || was == State::Draining) &&
        port::monotonic_ms() - online_since_ms_ >= kStableAfterMs)
        attempt_ = 0;
    state_ = State::Waiting;
    if (!requested)
    {
        char when[32];
        port::format_iso8601_utc(port::wall_time_s(), when, sizeof when);
        status("offline since %s: %s", when, connack >= 0 ? connack_reason(connack) : why);
    }
    client_.on_offline();
    if (stopping_)
        return;
    if (requested && reconnect_when_down_)
    {
        reconnect_when_down_ = false;
        connect_now();
        return;
    }
    schedule_reconnect(connack == 4 || connack == 5);
}

} // namespace ga
