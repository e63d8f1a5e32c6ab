// SPDX-License-Identifier: MIT
#include "hub_connection.h"

#include "buf_writer.h"
#include "port.h"
#include "sas.h"
#include "topics.h"
#include "workload_requests.h"

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
constexpr std::int64_t kStuckAfterMs = 600000;
constexpr std::size_t kRxBytes = std::size_t{160} * 1024U; // method payloads up to 128 KiB
constexpr std::size_t kTxBytes = std::size_t{256} * 1024U;
constexpr std::size_t kMaxWorkloadBody = port::WorkloadClient::kMaxResponse;

const char* step_name(bool bundle)
{
    return bundle ? "trust bundle" : "token signing";
}

// A whole reply in `raw` (so a server that keeps the connection open is not waited for).
bool reply_complete(std::string_view raw)
{
    HttpResponse r;
    return parse_http_response(raw, false, kMaxWorkloadBody, r) != HttpParse::Incomplete;
}

// The reason the workload API gave: its {"message": ...}, else the start of the body.
std::string reply_message(const HttpResponse& r)
{
    std::string m;
    if (json_string_member(r.body, "message", m))
        return m.substr(0, 200);
    std::string out;
    for (const char c : std::string_view(r.body).substr(0, 80))
        out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    return out.empty() ? "(no message)" : "'" + out + "'";
}

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
    if (s_.workload.enabled())
    {
        workload_ = std::make_unique<port::WorkloadClient>(loop, key, s_.workload.socket_path);
        // Without TLS (a local test broker) there is nothing to trust.
        bundle_loaded_ = !s_.tls;
    }
}

bool HubConnection::configure(std::string& err)
{
    // IoT Edge: the trust anchors are the workload API's trust bundle, fetched before the first
    // connect (the runtime may not answer yet at start, so that is retried, not fatal).
    if (workload_ && s_.tls)
        return true;
    port::TransportConfig tc;
    tc.host = s_.connect_host;
    tc.port = s_.port;
    tc.tls = s_.tls;
    tc.ca_file = s_.ca_file;
    return link_->configure(tc, err);
}

void HubConnection::connect_now()
{
    if (workload_)
    {
        start_edge(port::monotonic_ms());
        return;
    }
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
    connect_with(w.view());
    explicit_bzero(token, sizeof token);
}

void HubConnection::connect_with(std::string_view token)
{
    // Renew at 80 % of the lifetime.
    renew_at_ms_ = port::monotonic_ms() + static_cast<std::int64_t>(s_.sas_ttl_s) * 800;
    set_state(State::Connecting);
    status("connecting to %s:%u", s_.connect_host.c_str(), static_cast<unsigned>(s_.port));
    // CleanSession 0: the hub keeps subscriptions and undelivered inputs across reconnects.
    link_->connect(s_.client_id, s_.username, token, false, port::monotonic_ms());
}

void HubConnection::start_edge(std::int64_t now_ms)
{
    set_state(State::Preparing);
    if (bundle_loaded_)
    {
        start_sign(now_ms);
        return;
    }
    status("%s", "fetching the trust bundle from the IoT Edge workload API");
    edge_step_ = EdgeStep::TrustBundle;
    char target[256];
    BufWriter t(target);
    append_trust_bundle_target(s_.workload.api_version, t);
    workload_->start("GET", t.view(), {}, reply_complete, now_ms);
    progress_edge(now_ms);
}

void HubConnection::start_sign(std::int64_t now_ms)
{
    edge_step_ = EdgeStep::Sign;
    char resource[512];
    BufWriter r(resource);
    append_sas_resource(s_.hub_host, s_.device_id, s_.module_id, r);
    sign_expiry_ = port::wall_time_s() + static_cast<std::int64_t>(s_.sas_ttl_s);
    char target[512];
    BufWriter t(target);
    append_sign_target(s_.workload.module_id, s_.workload.generation_id, s_.workload.api_version,
                       t);
    char body[1024];
    BufWriter b(body);
    if (!r.ok() || !t.ok() ||
        !append_sign_body(r.view(), static_cast<std::uint64_t>(sign_expiry_), b))
    {
        edge_failed("the sign request does not fit its buffer", true);
        return;
    }
    status("%s", "getting a token signed by the IoT Edge workload API");
    workload_->start("POST", t.view(), b.view(), reply_complete, now_ms);
    progress_edge(now_ms);
}

void HubConnection::progress_edge(std::int64_t now_ms)
{
    if (state_ != State::Preparing)
        return;
    switch (workload_->progress(now_ms))
    {
    case port::WorkloadClient::Status::Idle:
    case port::WorkloadClient::Status::InProgress:
        return;
    case port::WorkloadClient::Status::Failed:
        edge_failed(workload_->error(), false);
        return;
    case port::WorkloadClient::Status::Done:
        break;
    }
    HttpResponse reply;
    const HttpParse p = parse_http_response(workload_->received(), true, kMaxWorkloadBody, reply);
    workload_->cancel();
    if (p == HttpParse::TooLarge)
    {
        edge_failed("reply body larger than " + std::to_string(kMaxWorkloadBody / 1024) + " KiB",
                    false);
        return;
    }
    if (p != HttpParse::Complete)
    {
        edge_failed("unreadable HTTP reply: " + reply.error, false);
        return;
    }
    edge_reply(reply, now_ms);
}

void HubConnection::edge_reply(const HttpResponse& reply, std::int64_t now_ms)
{
    if (reply.status != 200)
    {
        // 4xx (403: not this module's container, 404: unknown module) will not heal by itself
        // soon: the long wait of a refused CONNECT. 5xx: the usual backoff.
        edge_failed("HTTP " + std::to_string(reply.status) + ": " + reply_message(reply),
                    reply.status >= 400 && reply.status < 500);
        return;
    }
    if (edge_step_ == EdgeStep::TrustBundle)
    {
        std::string pem;
        std::string err;
        if (!json_string_member(reply.body, "certificate", pem))
        {
            edge_failed("HTTP 200 without a \"certificate\" string in a JSON object", false);
            return;
        }
        if (!use_trust_bundle(pem, err))
        {
            edge_failed(err, false);
            return;
        }
        bundle_loaded_ = true;
        start_sign(now_ms);
        return;
    }
    std::string digest;
    if (!json_string_member(reply.body, "digest", digest))
    {
        edge_failed("HTTP 200 without a \"digest\" string in a JSON object", false);
        return;
    }
    char resource[512];
    BufWriter r(resource);
    append_sas_resource(s_.hub_host, s_.device_id, s_.module_id, r);
    char token[1024];
    BufWriter w(token);
    if (!r.ok() || !append_sas_token_from_digest(r.view(), digest,
                                                 static_cast<std::uint64_t>(sign_expiry_), w))
    {
        edge_failed("the digest is not base64 of an HMAC-SHA256", false);
        return;
    }
    ++tokens_signed_;
    port::log(port::Level::Info,
              "hub link: token signed by the IoT Edge workload API (%llu so far)",
              static_cast<unsigned long long>(tokens_signed_));
    connect_with(w.view());
    explicit_bzero(token, sizeof token);
}

bool HubConnection::use_trust_bundle(const std::string& pem, std::string& err)
{
    const std::size_t certs = count_pem_certificates(pem);
    if (certs == 0)
    {
        err = "the trust bundle has no PEM certificate";
        return false;
    }
    const std::string& path = s_.workload.trust_bundle_file;
    if (!port::write_file_atomic(path, pem, err))
    {
        err = "cannot write the trust bundle to " + path + ": " + err;
        return false;
    }
    port::TransportConfig tc;
    tc.host = s_.connect_host;
    tc.port = s_.port;
    tc.tls = s_.tls;
    tc.ca_file = path;
    if (!link_->configure(tc, err))
        return false;
    port::log(port::Level::Info,
              "hub link: IoT Edge trust bundle: %zu certificate(s), written to %s", certs,
              path.c_str());
    return true;
}

void HubConnection::edge_failed(const std::string& why, bool refused)
{
    workload_->cancel();
    port::log(port::Level::Err, "hub link: IoT Edge workload API (%s, %s): %s",
              step_name(edge_step_ == EdgeStep::TrustBundle), s_.workload.socket_path.c_str(),
              why.c_str());
    char when[32];
    port::format_iso8601_utc(port::wall_time_s(), when, sizeof when);
    status("offline since %s: IoT Edge workload API: %s", when, why.c_str());
    schedule_reconnect(refused);
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
    set_state(State::Waiting);
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
    set_state(State::Draining);
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
    if (state_ == State::Preparing)
        progress_edge(now_ms);
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
    // The workload socket shares the key: it is only open while the link is down.
    if (state_ == State::Preparing)
        progress_edge(now_ms);
    link_->on_ready(readable, writable, now_ms);
}

void HubConnection::stop()
{
    stopping_ = true;
    if (workload_)
        workload_->cancel();
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
    port::log(port::Level::Info, "hub link: connected to %s:%u (%s)", s_.connect_host.c_str(),
              static_cast<unsigned>(s_.port), link_->security().c_str());
    set_state(State::Subscribing);
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
    set_state(State::Online);
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
    {
        port::log(port::Level::Warning, "hub link: connect to %s:%u failed: %s",
                  s_.connect_host.c_str(), static_cast<unsigned>(s_.port), why);
        // IoT Edge: the runtime may have rotated its CA; fetch the bundle again next time.
        if (workload_ && s_.tls)
            bundle_loaded_ = false;
    }
    else if (!requested)
        port::log(port::Level::Warning, "hub link: connection lost (%s)", why);
    // The backoff starts again only after a stable Online period, so a hub that accepts and
    // then drops is not hammered.
    if ((was == State::Online || was == State::Draining) &&
        port::monotonic_ms() - online_since_ms_ >= kStableAfterMs)
        attempt_ = 0;
    set_state(State::Waiting);
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

void HubConnection::set_state(State next)
{
    state_ = next;
    state_since_ms_ = port::monotonic_ms();
}

bool HubConnection::stuck(std::int64_t now_ms) const
{
    // Every state but Online has its own bound (CONNACK and SUBACK 30 s, the drain 2 s, a
    // workload API request 15 s, a backoff at most 90 s); ten minutes in one of them is a bug.
    return state_ != State::Online && now_ms - state_since_ms_ > kStuckAfterMs;
}

template <typename... Args> void HubConnection::status(const char* fmt, Args... args)
{
    if constexpr (sizeof...(Args) == 0)
        (void)std::snprintf(status_.data(), status_.size(), "%s", fmt);
    else
        (void)std::snprintf(status_.data(), status_.size(), fmt, args...);
    std::array<char, 340> line{};
    (void)std::snprintf(line.data(), line.size(), "STATUS=%s", status_.data());
    port::notify(line.data());
}

} // namespace ga
