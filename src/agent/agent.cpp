// SPDX-License-Identifier: MIT
#include "agent.h"

#include "alert_log.h"
#include "buf_writer.h"
#include "event_loop.h"
#include "input_filter.h"
#include "input_pipeline.h"
#include "mqtt_link.h"
#include "port.h"
#include "sas.h"
#include "sources.h"
#include "topics.h"
#include "twin.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <strings.h>

namespace ga
{
namespace
{
constexpr std::int64_t kTickMs = 100;
constexpr std::int64_t kBackoffBaseMs = 1000;
constexpr std::int64_t kBackoffCapMs = 60000;
constexpr std::int64_t kStableAfterMs = 60000;
constexpr std::int64_t kAuthRetryMs = 60000;
constexpr std::int64_t kSubscribeTimeoutMs = 30000;
constexpr std::int64_t kDrainMs = 2000; // in-flight alerts get this long before a planned close
constexpr std::size_t kHubRxBytes = std::size_t{160} * 1024U; // method payloads up to 128 KiB
constexpr std::size_t kHubTxBytes = std::size_t{256} * 1024U;
constexpr std::size_t kHeldBytes = std::size_t{1024} * 1024U;
constexpr std::uint64_t kKeyHub = 1;
constexpr std::uint64_t kKeyMqttSource = 2;
constexpr std::uint64_t kKeyUdp = 3;

enum class LinkState
{
    Waiting, // backoff before the next connect
    Connecting,
    Subscribing,
    Online,
    Draining, // a planned close (token renewal, simulated reboot, stop): in-flight alerts first
};

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

AlertLogLimits log_limits(const Config& cfg)
{
    AlertLogLimits l;
    l.max_bytes = cfg.queue_max_bytes;
    l.max_age_s = cfg.queue_max_age;
    // Segments small enough that acknowledged ones free room soon, large enough to keep the
    // number of files small.
    l.segment_bytes = std::clamp<std::uint64_t>(cfg.queue_max_bytes / 8, 1024, 1U << 20U);
    // An alert that could never fit under the bound is refused at the input, not held forever.
    l.max_record =
        static_cast<std::size_t>(std::min<std::uint64_t>(l.max_record, cfg.queue_max_bytes / 2));
    l.max_inflight = std::max<std::size_t>(cfg.max_inflight, 1);
    return l;
}

class Agent final : public MqttLink::Handler
{
  public:
    explicit Agent(const AgentOptions& o);
    int run();

    // MqttLink::Handler (the hub link)
    void on_connected(bool session_present) override;
    void on_message(const mqtt::Publish& m) override;
    void on_acked(std::uint64_t tag) override;
    void on_subscribed(std::span<const std::uint8_t> granted) override;
    void on_batch_end() override;
    void on_down(const char* why, int connack, bool requested) override;

  private:
    bool start(std::string& err);
    void stop();
    void dispatch(const port::EventLoop::Wakeup& w, std::span<port::EventLoop::Ready> ready);
    void tick();
    void connect_now();
    void schedule_reconnect(bool auth_refused);
    void begin_drain(const char* why, bool reconnect);
    void on_online();
    void on_offline();
    void pump_alerts();
    void send_acks();
    void leave_inputs_with_broker();
    void after_store_room();
    bool publish0(std::string_view topic, std::string_view payload);
    void send_twin_get();
    void send_reported(std::string_view doc, bool is_reboot_report);
    void on_hub_message(std::string_view topic, std::string_view payload);
    void on_twin_response(const TwinResponse& r, std::string_view payload);
    void on_desired_patch(const DesiredPatchTopic& t, std::string_view payload);
    void apply_desired(const DesiredUpdate& u, const char* source);
    void on_method(const MethodRequest& m, std::string_view payload);
    void respond_method(int status, std::string_view rid, std::string_view body);
    void reboot_now();
    void check_reboot_completed();
    std::string effective_boot_id();
    void report_stats(bool log_line);
    Stats snapshot();
    std::string state_path(const char* name) const { return cfg_.state_dir + "/" + name; }
    [[nodiscard]] bool online() const { return state_ == LinkState::Online; }

    const AgentOptions& opt_;
    const Config& cfg_;
    Identity id_{};
    FieldPath path_{};
    bool running_ = true;

    port::EventLoop loop_;
    std::unique_ptr<AlertLog> store_;
    std::unique_ptr<InputFilter> filter_;
    std::unique_ptr<InputPipeline> hub_inputs_; // module input: can wait
    std::unique_ptr<InputPipeline> src_inputs_; // the other sources
    std::unique_ptr<MqttLink> link_;
    std::unique_ptr<UdpSource> udp_;
    std::unique_ptr<MqttSource> mqtt_;
    std::unique_ptr<SimulatedSensor> sim_;
    std::unique_ptr<char[]> sim_buf_;
    std::int64_t next_sim_ms_ = 0;

    std::string alert_topic_;
    std::string client_id_;
    std::string username_;
    std::string input_prefix_;
    std::string input_filter_;
    std::unique_ptr<char[]> alert_buf_;
    std::unique_ptr<char[]> out_buf_;
    std::uint64_t pending_seq_ = 0; // an alert taken from the store that did not fit the link yet
    std::size_t pending_len_ = 0;
    bool has_pending_ = false;
    std::size_t acks_owed_ = 0; // inputs durable but not yet acknowledged (send buffer full)
    bool inputs_left_with_broker_ = false;
    std::int64_t left_since_ms_ = 0;
    std::uint64_t inputs_deferred_ = 0; // left with the broker, fetched again after a reconnect

    LinkState state_ = LinkState::Waiting;
    std::int64_t next_connect_ms_ = 0;
    int attempt_ = 0;
    std::int64_t online_since_ms_ = 0;
    std::int64_t subscribing_since_ms_ = 0;
    std::int64_t renew_at_ms_ = 0;
    std::int64_t drain_until_ms_ = 0;
    const char* drain_why_ = "";
    bool reconnect_when_down_ = false;

    std::uint64_t rid_ = 0;
    char get_rid_[24] = {};
    char reboot_rid_[24] = {};
    std::int64_t desired_version_ = -1;
    const char* threshold_source_ = "default";
    std::uint64_t twin_patches_ = 0;
    std::uint64_t threshold_changes_ = 0;
    std::uint64_t reconnects_ = 0;
    std::uint64_t alerts_resent_ = 0;
    std::uint64_t highest_sent_seq_ = 0;
    std::uint64_t alerts_sent_ = 0;
    std::uint64_t connects_ = 0;

    std::int64_t sim_reboot_at_ms_ = 0;
    std::int64_t next_stats_ms_ = 0;
    std::int64_t next_maintain_ms_ = 0;
    std::int64_t next_watchdog_ms_ = 0;
    std::int64_t watchdog_ms_ = 0;
};

Agent::Agent(const AgentOptions& o) : opt_(o), cfg_(o.config)
{
    id_.hub_host = o.identity.host_name;
    id_.device_id = o.identity.device_id;
    id_.module_id = o.identity.module_id;
    (void)parse_field_path(cfg_.field, path_);
}

bool Agent::start(std::string& err)
{
    if (!loop_.open(kTickMs, err))
    {
        err = "event loop: " + err;
        return false;
    }
    // Every buffer is sized once here; the per-message path allocates nothing of ours.
    alert_buf_ = std::make_unique<char[]>(ScanLimits{}.max_bytes + 4096);
    out_buf_ = std::make_unique<char[]>(4096);
    store_ = std::make_unique<AlertLog>(log_limits(cfg_));
    if (!store_->open(cfg_.state_dir, port::wall_time_s(), err))
    {
        port::log(port::Level::Err,
                  "store: %s; starting anyway: alerts that cannot wait are kept in memory (and "
                  "sent) until the state dir takes writes",
                  err.c_str());
        err.clear();
    }
    if (store_->depth() > 0)
        port::log(port::Level::Info,
                  "store: %llu alert(s) not yet acknowledged reloaded from %s; sent once online",
                  static_cast<unsigned long long>(store_->depth()), cfg_.state_dir.c_str());
    filter_ = std::make_unique<InputFilter>(path_, cfg_.threshold);
    threshold_source_ = cfg_.threshold == 25.0 ? "default" : "conf";
    hub_inputs_ =
        std::make_unique<InputPipeline>(*filter_, *store_, AlertLog::Policy::Wait, kHeldBytes);
    const bool can_wait = cfg_.source == SourceType::Mqtt;
    src_inputs_ = std::make_unique<InputPipeline>(
        *filter_, *store_, can_wait ? AlertLog::Policy::Wait : AlertLog::Policy::DropOldest,
        can_wait ? kHeldBytes : 4096);

    char buf[1024];
    BufWriter w(buf);
    append_alert_topic(id_, cfg_.output, w);
    alert_topic_ = std::string(w.view());
    w.clear();
    append_client_id(id_, w);
    client_id_ = std::string(w.view());
    w.clear();
    append_username(id_, "gateway-agent/" GA_VERSION, cfg_.model_id, w);
    username_ = std::string(w.view());
    if (cfg_.source == SourceType::ModuleInput)
    {
        w.clear();
        w.append("devices/").append(id_.device_id).append("/modules/").append(id_.module_id);
        w.append("/inputs/").append(cfg_.input);
        input_prefix_ = std::string(w.view());
        input_filter_ = input_prefix_ + "/#";
    }
    if (cfg_.transport == Transport::Tcp)
        port::log(port::Level::Warning,
                  "hub link: transport = tcp: no TLS, for local test brokers only");

    mqtt::SessionConfig sc;
    sc.keepalive_s = static_cast<std::uint16_t>(cfg_.keepalive);
    sc.ping_timeout_ms = std::min<std::int64_t>(cfg_.keepalive * 1000LL, 30000);
    sc.window = cfg_.max_inflight;
    sc.max_inbound_pending = mqtt::Session::kMaxWindow;
    sc.max_packet = kHubRxBytes;
    link_ = std::make_unique<MqttLink>(MqttLink::Buffers{kHubRxBytes, kHubTxBytes}, sc, loop_,
                                       kKeyHub, *this);
    port::TransportConfig tc;
    tc.host = std::string(opt_.identity.connect_host());
    tc.port = static_cast<std::uint16_t>(cfg_.port);
    tc.tls = cfg_.transport == Transport::Tls;
    tc.ca_file = cfg_.ca_file;
    if (!link_->configure(tc, err))
        return false;

    switch (cfg_.source)
    {
    case SourceType::ModuleInput:
        break;
    case SourceType::Simulated:
        sim_ = std::make_unique<SimulatedSensor>(cfg_.source_seed);
        sim_buf_ = std::make_unique<char[]>(ScanLimits{}.max_bytes);
        next_sim_ms_ = port::monotonic_ms() + cfg_.source_interval_ms;
        break;
    case SourceType::Udp:
        udp_ = std::make_unique<UdpSource>();
        if (!udp_->open(cfg_.source_bind, err))
            return false;
        if (!loop_.watch(udp_->fd(), false, kKeyUdp))
        {
            err = "udp source: cannot watch the socket";
            return false;
        }
        break;
    case SourceType::Mqtt:
        mqtt_ = std::make_unique<MqttSource>(loop_, kKeyMqttSource, *src_inputs_);
        if (!mqtt_->start(cfg_.source_broker, cfg_.source_topic,
                          "gateway-agent-" + std::string(id_.device_id), err))
            return false;
        break;
    }

    const std::int64_t now = port::monotonic_ms();
    next_stats_ms_ = cfg_.stats_interval > 0 ? now + cfg_.stats_interval * 1000LL : 0;
    next_maintain_ms_ = now + 1000;
    watchdog_ms_ = port::watchdog_interval_ms();
    next_watchdog_ms_ = now;
    return true;
}

int Agent::run()
{
    std::string err;
    if (!start(err))
    {
        port::log(port::Level::Err, "start-up failed: %s", err.c_str());
        return 1;
    }
    port::log(port::Level::Info,
              "gateway-agent %s started: identity %s%s%s, hub %s, threshold %g (%s)", GA_VERSION,
              std::string(id_.device_id).c_str(), id_.module_id.empty() ? "" : "/",
              std::string(id_.module_id).c_str(), std::string(opt_.identity.connect_host()).c_str(),
              filter_->threshold(), threshold_source_);
    port::notify("READY=1");
    check_reboot_completed();
    connect_now();
    std::array<port::EventLoop::Ready, 8> ready{};
    while (running_)
    {
        const port::EventLoop::Wakeup w = loop_.wait(ready, -1);
        dispatch(w, std::span(ready.data(), w.ready));
    }
    stop();
    return 0;
}

void Agent::dispatch(const port::EventLoop::Wakeup& w, std::span<port::EventLoop::Ready> ready)
{
    const std::int64_t now = port::monotonic_ms();
    for (const auto& r : ready)
    {
        if (r.key == kKeyHub)
            link_->on_ready(r.readable, r.writable, now);
        else if (r.key == kKeyMqttSource && mqtt_)
            mqtt_->on_ready(r.readable, r.writable, now);
        else if (r.key == kKeyUdp && udp_)
        {
            udp_->drain(*src_inputs_, port::wall_time_s());
            pump_alerts();
        }
    }
    if (w.signal != 0)
    {
        port::log(port::Level::Notice, "signal %d: stopping", w.signal);
        running_ = false;
    }
    if (w.tick)
        tick();
}

void Agent::stop()
{
    port::notify("STOPPING=1");
    report_stats(true);
    if (online() || state_ == LinkState::Draining)
    {
        // Bounded wait for in-flight alerts, then a clean DISCONNECT.
        begin_drain("stopping", false);
        std::array<port::EventLoop::Ready, 8> ready{};
        const std::int64_t until = port::monotonic_ms() + kDrainMs + 1000;
        while (state_ == LinkState::Draining && port::monotonic_ms() < until)
        {
            const port::EventLoop::Wakeup w = loop_.wait(ready, 50);
            const std::int64_t now = port::monotonic_ms();
            for (std::size_t i = 0; i < w.ready; ++i)
                if (ready[i].key == kKeyHub)
                    link_->on_ready(ready[i].readable, ready[i].writable, now);
            if (state_ == LinkState::Draining && link_->session().inflight() == 0)
                link_->close("stopping");
        }
        link_->close("stopping");
    }
    store_->close();
    mqtt_.reset();
    link_.reset();
}

void Agent::tick()
{
    const std::int64_t now = port::monotonic_ms();
    if (state_ == LinkState::Waiting && now >= next_connect_ms_)
        connect_now();
    link_->tick(now);
    if (mqtt_)
        mqtt_->tick(now);
    if (state_ == LinkState::Subscribing && now - subscribing_since_ms_ >= kSubscribeTimeoutMs)
        link_->fail("no SUBACK within 30 s");
    if (online() && renew_at_ms_ != 0 && now >= renew_at_ms_)
    {
        port::log(port::Level::Info, "hub link: SAS token renewal: reconnecting with a new token");
        renew_at_ms_ = 0;
        begin_drain("token renewal", true);
    }
    if (inputs_left_with_broker_ && online() &&
        (store_->depth() == 0 || now - left_since_ms_ >= 30000))
    {
        port::log(port::Level::Info,
                  "store: room again (%llu alert(s) queued); reconnecting to fetch the %llu "
                  "input(s) left with the broker",
                  static_cast<unsigned long long>(store_->depth()),
                  static_cast<unsigned long long>(inputs_deferred_));
        begin_drain("fetching inputs left with the broker", true);
    }
    if (state_ == LinkState::Draining &&
        (link_->session().inflight() == 0 || now >= drain_until_ms_))
        link_->close(drain_why_);
    if (sim_ && now >= next_sim_ms_)
    {
        next_sim_ms_ = now + cfg_.source_interval_ms;
        const std::size_t n =
            sim_->next({sim_buf_.get(), ScanLimits{}.max_bytes}, port::wall_time_s());
        (void)src_inputs_->offer(std::string_view(sim_buf_.get(), n), port::wall_time_s());
        (void)src_inputs_->commit();
    }
    if (sim_reboot_at_ms_ != 0 && now >= sim_reboot_at_ms_)
    {
        sim_reboot_at_ms_ = 0;
        reboot_now();
    }
    if (next_stats_ms_ != 0 && now >= next_stats_ms_)
    {
        next_stats_ms_ = now + cfg_.stats_interval * 1000LL;
        report_stats(true);
    }
    if (now >= next_maintain_ms_)
    {
        next_maintain_ms_ = now + 1000;
        store_->maintain(now, port::wall_time_s());
        after_store_room();
    }
    if (watchdog_ms_ > 0 && now >= next_watchdog_ms_)
    {
        next_watchdog_ms_ = now + watchdog_ms_ / 2;
        port::notify("WATCHDOG=1");
    }
    send_acks();
    pump_alerts();
}

void Agent::connect_now()
{
    char token[1024];
    BufWriter w(token);
    char resource[512];
    BufWriter r(resource);
    append_sas_resource(id_.hub_host, id_.device_id, id_.module_id, r);
    const std::int64_t expiry = port::wall_time_s() + static_cast<std::int64_t>(cfg_.sas_ttl);
    if (!r.ok() ||
        append_sas_token(r.view(), opt_.identity.shared_access_key,
                         static_cast<std::uint64_t>(expiry), w) != SasError::None ||
        !w.ok())
    {
        port::log(port::Level::Err, "hub link: cannot build a SAS token (bad key?)");
        schedule_reconnect(true);
        return;
    }
    // Renew at 80 % of the lifetime: MQTT cannot re-authenticate in place, so renewal is a
    // reconnect with the new token.
    renew_at_ms_ = port::monotonic_ms() + static_cast<std::int64_t>(cfg_.sas_ttl) * 800;
    state_ = LinkState::Connecting;
    // CleanSession 0: the hub keeps subscriptions and undelivered inputs across reconnects.
    link_->connect(client_id_, username_, w.view(), false, port::monotonic_ms());
    explicit_bzero(token, sizeof token);
}

void Agent::schedule_reconnect(bool auth_refused)
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
    state_ = LinkState::Waiting;
    port::log(port::Level::Info, "hub link: next connect attempt in %lld ms (attempt %d)",
              static_cast<long long>(delay), attempt_);
}

void Agent::begin_drain(const char* why, bool reconnect)
{
    if (!link_->up())
        return;
    state_ = LinkState::Draining;
    drain_why_ = why;
    reconnect_when_down_ = reconnect;
    drain_until_ms_ = port::monotonic_ms() + kDrainMs;
    if (link_->session().inflight() == 0)
        link_->close(why);
}

void Agent::on_connected(bool /*session_present*/)
{
    if (state_ != LinkState::Connecting)
        return;
    ++connects_;
    if (connects_ > 1)
        ++reconnects_;
    port::log(port::Level::Info, "hub link: connected to %s:%u",
              std::string(opt_.identity.connect_host()).c_str(), cfg_.port);
    state_ = LinkState::Subscribing;
    subscribing_since_ms_ = port::monotonic_ms();
    std::array<mqtt::Subscription, 4> subs{};
    std::size_t n = 0;
    if (!input_filter_.empty())
        subs[n++] = {input_filter_, 1};
    subs[n++] = {kTwinResponseFilter, 0};
    subs[n++] = {kTwinDesiredFilter, 0};
    subs[n++] = {kMethodsFilter, 0};
    std::uint16_t id = 0;
    if (!link_->session().subscribe(std::span(subs.data(), n), id))
        link_->fail("SUBSCRIBE does not fit the send buffer");
}

void Agent::on_subscribed(std::span<const std::uint8_t> granted)
{
    if (state_ != LinkState::Subscribing)
        return;
    const auto refused = std::count(granted.begin(), granted.end(), std::uint8_t{0x80});
    if (refused != 0)
    {
        port::log(port::Level::Err, "hub link: %d subscription(s) refused; reconnecting",
                  static_cast<int>(refused));
        link_->fail("subscription refused");
        return;
    }
    on_online();
}

void Agent::on_message(const mqtt::Publish& m)
{
    const bool is_input =
        !input_prefix_.empty() && m.topic.starts_with(input_prefix_) &&
        (m.topic.size() == input_prefix_.size() || m.topic[input_prefix_.size()] == '/');
    if (inputs_left_with_broker_ && m.qos == 1)
    {
        // Not acknowledged, and forgotten: the broker redelivers after the planned reconnect.
        link_->session().leave_inbound_after(acks_owed_);
        if (is_input)
        {
            ++inputs_deferred_;
            return;
        }
    }
    else if (is_input && m.oversize > 0)
    {
        // Discarded by the link for its size: counted like any rejection, acknowledged in order.
        hub_inputs_->reject_oversize(m.oversize);
        if (m.qos == 1 && hub_inputs_->offer_other() == InputPipeline::Offer::Overflow)
            leave_inputs_with_broker();
        return;
    }
    else if (is_input)
    {
        // Decided now, appended without sync; acknowledged after the burst's one commit.
        if (hub_inputs_->offer(m.payload, port::wall_time_s(), m.qos == 1) ==
            InputPipeline::Offer::Overflow)
            leave_inputs_with_broker();
        return;
    }
    else if (m.qos == 1 && hub_inputs_->offer_other() == InputPipeline::Offer::Overflow)
        leave_inputs_with_broker();
    if (m.oversize > 0)
    {
        if (auto mr = parse_method_request(m.topic))
        {
            port::log(port::Level::Warning, "methods: payload of %zu bytes is too large: 413",
                      m.oversize);
            respond_method(413, mr->rid, R"({"error":"payload too large"})");
            return;
        }
        port::log(port::Level::Warning, "hub link: message of %zu bytes is too large: ignored",
                  m.oversize);
        return;
    }
    on_hub_message(m.topic, m.payload);
}

void Agent::leave_inputs_with_broker()
{
    // The store is full and the broker sends more than the hold ring takes (it does not stop at
    // an in-flight window). What is durable is acknowledged; everything after it is left with
    // the broker, unacknowledged, and fetched again by a planned reconnect once the store drained.
    acks_owed_ += hub_inputs_->commit();
    send_acks();
    hub_inputs_->reset();
    link_->session().leave_inbound_after(acks_owed_);
    inputs_left_with_broker_ = true;
    left_since_ms_ = port::monotonic_ms();
    port::log(port::Level::Warning,
              "store: full and the broker keeps sending; inputs are left with the broker until "
              "the alerts in the store are delivered, then fetched again by a reconnect");
}

void Agent::on_acked(std::uint64_t tag)
{
    store_->ack(tag);
    ++alerts_sent_;
}

void Agent::on_batch_end()
{
    const std::size_t n = hub_inputs_->commit();
    acks_owed_ += n;
    send_acks();
    if (hub_inputs_->held() > 0)
        after_store_room();
    pump_alerts();
}

void Agent::send_acks()
{
    if (acks_owed_ == 0 || !link_->up())
        return;
    if (link_->session().ack_inbound(acks_owed_))
        acks_owed_ = 0;
}

void Agent::after_store_room()
{
    // Acknowledged alerts free whole segments; held inputs then get their turn.
    if (hub_inputs_->held() > 0)
    {
        store_->maintain(port::monotonic_ms(), port::wall_time_s());
        hub_inputs_->retry(port::wall_time_s());
        acks_owed_ += hub_inputs_->commit();
        send_acks();
    }
    if (mqtt_)
        mqtt_->retry(port::monotonic_ms());
}

void Agent::on_down(const char* why, int connack, bool requested)
{
    const LinkState was = state_;
    if (connack >= 0)
        port::log(connack >= 4 ? port::Level::Err : port::Level::Warning,
                  "hub link: connect to %s:%u failed: %s",
                  std::string(opt_.identity.connect_host()).c_str(), cfg_.port,
                  connack_reason(connack));
    else if (was == LinkState::Connecting)
        port::log(port::Level::Warning, "hub link: connect to %s:%u failed: %s",
                  std::string(opt_.identity.connect_host()).c_str(), cfg_.port, why);
    else if (!requested)
        port::log(port::Level::Warning, "hub link: connection lost (%s)", why);
    on_offline(); // resets the backoff only after a stable Online period
    if (!running_)
        return;
    if (requested && reconnect_when_down_)
    {
        reconnect_when_down_ = false;
        connect_now();
        return;
    }
    schedule_reconnect(connack == 4 || connack == 5);
}

void Agent::on_online()
{
    state_ = LinkState::Online;
    online_since_ms_ = port::monotonic_ms();
    // The twin is read after every connect: a desired change made while offline is applied.
    send_twin_get();
    check_reboot_completed();
    report_stats(false);
    pump_alerts();
}

void Agent::on_offline()
{
    if (state_ == LinkState::Online && port::monotonic_ms() - online_since_ms_ >= kStableAfterMs)
        attempt_ = 0;
    state_ = LinkState::Waiting;
    get_rid_[0] = '\0';
    hub_inputs_->reset();
    acks_owed_ = 0;
    inputs_left_with_broker_ = false;
    has_pending_ = false;
    store_->rewind_unsent();
}

void Agent::pump_alerts()
{
    if (!online())
        return;
    mqtt::Session& s = link_->session();
    const std::size_t cap = ScanLimits{}.max_bytes + 4096;
    while (s.inflight() < s.window())
    {
        if (!has_pending_)
        {
            if (!store_->next_unsent(pending_seq_, {alert_buf_.get(), cap}, pending_len_))
                break;
            has_pending_ = true;
        }
        if (!s.publish(alert_topic_, std::string_view(alert_buf_.get(), pending_len_), 1,
                       pending_seq_))
            break; // the send buffer is full: this alert goes first next time
        has_pending_ = false;
        // At least once: a re-send after a reconnect is counted, so duplicates are visible.
        if (pending_seq_ <= highest_sent_seq_)
            ++alerts_resent_;
        else
            highest_sent_seq_ = pending_seq_;
    }
    link_->flush(port::monotonic_ms());
}

bool Agent::publish0(std::string_view topic, std::string_view payload)
{
    if (!link_->up())
        return false;
    const bool ok = link_->session().publish(topic, payload, 0, 0);
    link_->flush(port::monotonic_ms());
    return ok;
}

void Agent::send_twin_get()
{
    char topic[128];
    BufWriter w(topic);
    auto [end, ec] = std::to_chars(get_rid_, get_rid_ + sizeof get_rid_ - 1, ++rid_);
    *end = '\0';
    append_twin_get_topic(get_rid_, w);
    w.append('\0');
    if (!publish0(topic, {}))
        port::log(port::Level::Warning, "twin: GET could not be sent");
}

void Agent::send_reported(std::string_view doc, bool is_reboot_report)
{
    char rid[24];
    auto [end, ec] = std::to_chars(rid, rid + sizeof rid - 1, ++rid_);
    *end = '\0';
    if (is_reboot_report)
        std::memcpy(reboot_rid_, rid, sizeof rid);
    char topic[128];
    BufWriter w(topic);
    append_twin_reported_topic(rid, w);
    w.append('\0');
    if (!publish0(topic, doc))
        port::log(port::Level::Warning, "twin: reported patch could not be sent");
}

void Agent::on_hub_message(std::string_view topic, std::string_view payload)
{
    if (auto r = parse_twin_response(topic))
    {
        on_twin_response(*r, payload);
        return;
    }
    if (auto d = parse_desired_patch_topic(topic))
    {
        on_desired_patch(*d, payload);
        return;
    }
    if (auto m = parse_method_request(topic))
    {
        on_method(*m, payload);
        return;
    }
    port::log(port::Level::Warning, "hub link: message on unexpected topic (%zu bytes) ignored",
              topic.size());
}

void Agent::on_twin_response(const TwinResponse& r, std::string_view payload)
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
        {
            port::remove_file(state_path("reboot-pending"));
            port::log(port::Level::Info, "reboot: rebootTime reported");
        }
        return;
    }
    if (r.status >= 400)
        port::log(port::Level::Warning, "twin: request %.*s answered %d",
                  static_cast<int>(r.rid.size()), r.rid.data(), r.status);
}

void Agent::on_desired_patch(const DesiredPatchTopic& t, std::string_view payload)
{
    ++twin_patches_;
    DesiredUpdate u;
    const TwinError e = parse_desired_patch(payload, u);
    if (e != TwinError::None)
    {
        port::log(port::Level::Warning, "twin: desired patch rejected: %s (%llu patches so far)",
                  describe(e), static_cast<unsigned long long>(twin_patches_));
        return;
    }
    (void)t;
    port::log(port::Level::Info,
              "twin: desired patch $version %lld with %d propert%s (%llu patches so far)",
              static_cast<long long>(u.version), u.property_count,
              u.property_count == 1 ? "y" : "ies", static_cast<unsigned long long>(twin_patches_));
    apply_desired(u, "twin patch");
}

void Agent::apply_desired(const DesiredUpdate& u, const char* source)
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
    const double current = filter_->threshold();
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
        filter_->set_threshold(u.value);
        ++threshold_changes_;
        threshold_source_ = "twin";
        port::log(port::Level::Notice, "threshold: %g -> %g (from %s, $version %lld)", current,
                  u.value, source, static_cast<long long>(u.version));
    }
    if (build_threshold_ack(u.value, 200, u.version, "applied", w))
        send_reported(w.view(), false);
}

void Agent::respond_method(int status, std::string_view rid, std::string_view body)
{
    char topic[160];
    BufWriter w(topic);
    append_method_response_topic(status, rid, w);
    w.append('\0');
    if (!w.ok() || !publish0(topic, body))
        port::log(port::Level::Warning, "methods: response could not be sent");
}

void Agent::on_method(const MethodRequest& m, std::string_view payload)
{
    if (!payload.empty() && !is_valid_json(payload))
    {
        port::log(port::Level::Warning, "methods: %.*s: payload is not JSON: 400",
                  static_cast<int>(m.name.size()), m.name.data());
        respond_method(400, m.rid, R"({"error":"payload is not JSON"})");
        return;
    }
    if (m.name != "rebootDevice")
    {
        port::log(port::Level::Warning, "methods: unknown method '%.*s': 404",
                  static_cast<int>(std::min<std::size_t>(m.name.size(), 64)), m.name.data());
        char body[256];
        BufWriter b(body);
        b.append(R"({"error":"unknown method","method":")");
        for (char c : m.name.substr(0, 64))
            b.append(c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ? '_' : c);
        b.append("\"}");
        respond_method(404, m.rid, b.view());
        return;
    }
    if (cfg_.reboot_mode == RebootMode::Disabled)
    {
        port::log(port::Level::Warning, "methods: rebootDevice refused: [reboot] mode = disabled");
        respond_method(403, m.rid, R"({"error":"reboot disabled on this gateway"})");
        return;
    }
    const std::string pending = effective_boot_id();
    std::string err;
    if (!port::write_file_atomic(state_path("reboot-pending"), pending, err))
    {
        port::log(port::Level::Err, "reboot: %s", err.c_str());
        respond_method(500, m.rid, R"({"error":"cannot record the reboot in the state dir"})");
        return;
    }
    char body[160];
    BufWriter b(body);
    b.append(R"({"result":"reboot scheduled","mode":")")
        .append(to_string(cfg_.reboot_mode))
        .append("\"}");
    respond_method(200, m.rid, b.view());
    port::log(port::Level::Notice, "methods: rebootDevice accepted (mode %s)",
              to_string(cfg_.reboot_mode));
    if (cfg_.reboot_mode == RebootMode::Simulate)
        sim_reboot_at_ms_ = port::monotonic_ms() + cfg_.reboot_simulate_delay * 1000LL + 1;
    else
        reboot_now();
}

std::string Agent::effective_boot_id()
{
    std::string id = port::boot_id();
    if (cfg_.reboot_mode == RebootMode::Simulate)
    {
        std::string count;
        std::string err;
        if (port::read_file(state_path("simulated-boots"), count, 64, err) == port::ReadStatus::Ok)
            id += "+sim" + count.substr(0, count.find(' '));
    }
    return id;
}

void Agent::reboot_now()
{
    std::string err;
    if (cfg_.reboot_mode == RebootMode::RequestFile)
    {
        // The systemd path unit (gateway-agent-reboot.path) sees this file and reboots as root.
        char when[32];
        port::format_iso8601_utc(port::wall_time_s(), when, sizeof when);
        if (!port::write_file_atomic(state_path("reboot-request"),
                                     std::string("requested ") + when + "\n", err))
            port::log(port::Level::Err, "reboot: request not written: %s", err.c_str());
        else
            port::log(port::Level::Notice, "reboot: request written to %s",
                      state_path("reboot-request").c_str());
        return;
    }
    // Simulated: count a new "boot", drop the link and come back as a rebooted gateway would.
    std::string text;
    std::uint64_t boots = 0;
    if (port::read_file(state_path("simulated-boots"), text, 64, err) == port::ReadStatus::Ok)
        (void)std::from_chars(text.data(), text.data() + text.size(), boots);
    ++boots;
    const std::string record = std::to_string(boots) + " " + std::to_string(port::wall_time_s());
    if (!port::write_file_atomic(state_path("simulated-boots"), record, err))
        port::log(port::Level::Err, "reboot: %s", err.c_str());
    port::log(port::Level::Notice, "reboot: simulated reboot #%llu",
              static_cast<unsigned long long>(boots));
    if (state_ == LinkState::Subscribing)
        link_->fail("simulated reboot");
    else
        begin_drain("simulated reboot", true);
}

void Agent::check_reboot_completed()
{
    std::string pending;
    std::string err;
    if (port::read_file(state_path("reboot-pending"), pending, 256, err) != port::ReadStatus::Ok)
        return;
    if (pending == effective_boot_id())
        return; // asked for, not happened yet
    std::int64_t when = port::boot_time_s();
    if (cfg_.reboot_mode == RebootMode::Simulate)
    {
        std::string text;
        if (port::read_file(state_path("simulated-boots"), text, 64, err) == port::ReadStatus::Ok)
        {
            const auto sp = text.find(' ');
            if (sp != std::string::npos)
                (void)std::from_chars(text.data() + sp + 1, text.data() + text.size(), when);
        }
    }
    if (state_ != LinkState::Online)
        return; // reported once online
    char iso[32];
    port::format_iso8601_utc(when, iso, sizeof iso);
    char doc[96];
    BufWriter w(doc);
    if (build_reboot_time_report(iso, w))
    {
        port::log(port::Level::Notice, "reboot: completed; reporting rebootTime %s", iso);
        send_reported(w.view(), true);
    }
}

Stats Agent::snapshot()
{
    Stats s;
    s.messages_received = filter_->received();
    s.source_dropped = udp_ ? udp_->dropped() : 0;
    s.alerts_accepted = filter_->accepted();
    s.alerts_sent = alerts_sent_;
    for (std::size_t k = 0; k < kVerdictCount; ++k)
        s.rejected[k] = filter_->rejected(static_cast<Verdict>(k));
    s.twin_patches = twin_patches_;
    s.threshold_changes = threshold_changes_;
    s.reconnects = reconnects_;
    s.queue_depth = store_->depth();
    s.queue_dropped = store_->dropped();
    s.queue_not_persisted = store_->not_persisted();
    s.alerts_resent = alerts_resent_;
    s.inputs_waited = hub_inputs_->waited() + src_inputs_->waited() + inputs_deferred_;
    s.queue_corrupt = store_->corrupt();
    s.store_commits = store_->commits();
    return s;
}

void Agent::report_stats(bool log_line)
{
    const Stats s = snapshot();
    if (log_line)
    {
        std::uint64_t rejected = 0;
        for (auto v : s.rejected)
            rejected += v;
        port::log(
            port::Level::Info,
            "stats: received %llu, alerts accepted %llu, sent %llu, rejected %llu, twin patches "
            "%llu, threshold %g (%s), reconnects %llu, queue %llu, dropped %llu, not persisted "
            "%llu, resent %llu",
            static_cast<unsigned long long>(s.messages_received),
            static_cast<unsigned long long>(s.alerts_accepted),
            static_cast<unsigned long long>(s.alerts_sent),
            static_cast<unsigned long long>(rejected),
            static_cast<unsigned long long>(s.twin_patches), filter_->threshold(),
            threshold_source_, static_cast<unsigned long long>(s.reconnects),
            static_cast<unsigned long long>(s.queue_depth),
            static_cast<unsigned long long>(s.queue_dropped),
            static_cast<unsigned long long>(s.queue_not_persisted),
            static_cast<unsigned long long>(s.alerts_resent));
    }
    if (state_ != LinkState::Online)
        return;
    BufWriter w({out_buf_.get(), 4096});
    if (build_stats_report(s, w))
        send_reported(w.view(), false);
}

} // namespace

int run_agent(const AgentOptions& options)
{
    Agent agent(options);
    return agent.run();
}

} // namespace ga
