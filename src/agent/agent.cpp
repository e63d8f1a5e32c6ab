// SPDX-License-Identifier: MIT
// The agent: one event loop that owns all state and drives the rooms: the hub connection, twin
// sync, methods and reboot, the input pipelines (decide, group commit, backpressure), the alert
// store and the sources, and the counters.
#include "agent.h"

#include "acked_inputs.h"
#include "alert_log.h"
#include "alert_record.h"
#include "buf_writer.h"
#include "event_loop.h"
#include "hub_connection.h"
#include "input_filter.h"
#include "input_pipeline.h"
#include "methods.h"
#include "port.h"
#include "sources.h"
#include "store_id.h"
#include "topics.h"
#include "twin.h"
#include "twin_sync.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ga
{
namespace
{
constexpr std::int64_t kTickMs = 100;
// At a moderate rate, turns of the loop that handle sockets are at least this far apart, so
// the messages of a few ms share one wakeup, one read, one commit (fdatasync) and one write
// instead of each paying for its own. The added latency is bounded by it; an idle link adds
// none. A turn that handled kBusyTurnInputs or more inputs turns it off for the next one: a
// broker sends only so many unacknowledged inputs (mosquitto: 20), so at high rates spacing
// would cap the throughput instead of batching more.
constexpr std::int64_t kTurnSpacingUs = 2000;
constexpr std::uint64_t kBusyTurnInputs = 8;
constexpr std::size_t kHeldBytes = std::size_t{1024} * 1024U;
constexpr std::uint64_t kKeyHub = 1;
constexpr std::uint64_t kKeyMqttSource = 2;
constexpr std::uint64_t kKeyUdp = 3;

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

HubSettings hub_settings(const AgentOptions& o, const Identity& id)
{
    const Config& cfg = o.config;
    HubSettings s;
    s.connect_host = std::string(o.identity.connect_host());
    s.port = static_cast<std::uint16_t>(cfg.port);
    s.tls = cfg.transport == Transport::Tls;
    s.ca_file = o.ca_file.empty() ? cfg.ca_file : o.ca_file; // EdgeModuleCACertificateFile
    char buf[1024];
    BufWriter w(buf);
    append_client_id(id, w);
    s.client_id = std::string(w.view());
    w.clear();
    append_username(id, "gateway-agent/" GA_VERSION, cfg.model_id, w);
    s.username = std::string(w.view());
    if (cfg.source == SourceType::ModuleInput)
        s.input_filter = "devices/" + std::string(id.device_id) + "/modules/" +
                         std::string(id.module_id) + "/inputs/" + cfg.input + "/#";
    s.hub_host = std::string(id.hub_host);
    s.device_id = std::string(id.device_id);
    s.module_id = std::string(id.module_id);
    s.shared_access_key = o.identity.shared_access_key;
    s.workload = o.workload; // IoT Edge: tokens signed by the workload API
    s.sas_ttl_s = cfg.sas_ttl;
    s.keepalive_s = static_cast<std::uint16_t>(cfg.keepalive);
    s.window = cfg.max_inflight;
    return s;
}

class Agent final : public HubConnection::Client, public TwinSync::Listener
{
  public:
    explicit Agent(const AgentOptions& o);
    int run();

    // HubConnection::Client
    void on_online() override;
    void on_offline() override;
    void on_hub_message(const mqtt::Publish& m) override;
    void on_alert_acked(std::uint64_t tag) override;
    void on_burst_end() override;
    // TwinSync::Listener
    void on_reboot_time_reported() override { methods_->on_reboot_time_reported(); }

  private:
    bool start(std::string& err);
    void stop();
    void dispatch(const port::EventLoop::Wakeup& w, std::span<port::EventLoop::Ready> ready);
    void tick();
    void pump_alerts();
    void after_store_room();
    void report_stats(bool log_line);
    void report_depth();
    Stats snapshot();

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
    std::unique_ptr<HubConnection> hub_;
    std::unique_ptr<AckedInputs> hub_acked_;
    std::unique_ptr<TwinSync> twin_;
    std::unique_ptr<Methods> methods_;
    std::unique_ptr<UdpSource> udp_;
    std::unique_ptr<MqttSource> mqtt_;
    std::unique_ptr<SimulatedSensor> sim_;
    std::unique_ptr<char[]> sim_buf_;
    std::int64_t next_sim_ms_ = 0;

    std::string input_prefix_;
    std::unique_ptr<char[]> alert_buf_;
    std::unique_ptr<char[]> out_buf_;
    std::uint64_t pending_seq_ = 0; // an alert taken from the store that did not fit the link yet
    std::size_t pending_len_ = 0;
    bool has_pending_ = false;

    // Alert message ids: (store id, seq) names an alert for good, so re-sends carry the same id.
    std::uint64_t store_id_ = load_store_id(cfg_.state_dir);
    // The alert topic is built per alert (it carries the input's properties) into this buffer,
    // sized once for the identity path, the forwarded properties and the added ones ($.on
    // escaped at worst 3 bytes per byte, the defaults, MessageType and a generated $.mid).
    std::size_t alert_topic_cap_ = kMaxAlertHead + 1024 + 3 * cfg_.output.size() +
                                   opt_.identity.device_id.size() + opt_.identity.module_id.size();
    std::unique_ptr<char[]> alert_topic_buf_ =
        std::make_unique_for_overwrite<char[]>(alert_topic_cap_);
    std::uint64_t alerts_unreadable_ = 0; // stored records whose head does not hold together

    std::uint64_t alerts_resent_ = 0;
    std::uint64_t highest_sent_seq_ = 0;
    std::uint64_t alerts_sent_ = 0;
    std::int64_t next_stats_ms_ = 0;
    std::int64_t next_maintain_ms_ = 0;
    std::int64_t next_watchdog_ms_ = 0;
    std::int64_t watchdog_ms_ = 0;
    bool watchdog_withheld_ = false;
    std::uint64_t status_depth_ = ~std::uint64_t{0};
    std::array<char, 320> status_hub_{};
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
    alert_buf_ = std::make_unique_for_overwrite<char[]>(ScanLimits{}.max_bytes + 4096);
    out_buf_ = std::make_unique_for_overwrite<char[]>(4096);
    store_ = std::make_unique<AlertLog>(log_limits(cfg_));
    if (!store_->open(cfg_.state_dir, port::wall_time_s(), err))
    {
        port::log(port::Level::Err,
                  "store: %s; starting anyway: alerts that cannot wait are kept in memory (and "
                  "sent) until the state dir takes writes",
                  err.c_str());
        err.clear();
    }
    // Reloaded alerts may have been sent by the process before: sending them again is counted
    // as a re-send (an upper bound on the duplicates a restart causes).
    highest_sent_seq_ = store_->last_seq();
    if (store_->depth() > 0)
        port::log(port::Level::Info,
                  "store: %llu alert(s) not yet acknowledged reloaded from %s; sent once online",
                  static_cast<unsigned long long>(store_->depth()), cfg_.state_dir.c_str());
    filter_ = std::make_unique<InputFilter>(path_, cfg_.threshold);
    hub_inputs_ =
        std::make_unique<InputPipeline>(*filter_, *store_, AlertLog::Policy::Wait, kHeldBytes);
    const bool can_wait = cfg_.source == SourceType::Mqtt;
    src_inputs_ = std::make_unique<InputPipeline>(
        *filter_, *store_, can_wait ? AlertLog::Policy::Wait : AlertLog::Policy::DropOldest,
        can_wait ? kHeldBytes : 4096);

    if (cfg_.source == SourceType::ModuleInput)
        input_prefix_ = "devices/" + std::string(id_.device_id) + "/modules/" +
                        std::string(id_.module_id) + "/inputs/" + cfg_.input;
    if (cfg_.transport == Transport::Tcp)
        port::log(port::Level::Warning,
                  "hub link: transport = tcp: no TLS, for local test brokers only");

    hub_ = std::make_unique<HubConnection>(hub_settings(opt_, id_), loop_, kKeyHub, *this);
    hub_acked_ =
        std::make_unique<AckedInputs>(*hub_inputs_, *store_, hub_->session(), "module input");
    if (!hub_->configure(err))
        return false;
    // Loads the stored desired threshold into the filter before any input is decided.
    twin_ = std::make_unique<TwinSync>(*hub_, *filter_, cfg_, *this);
    methods_ = std::make_unique<Methods>(cfg_, *hub_, *twin_);

    switch (cfg_.source)
    {
    case SourceType::ModuleInput:
        break;
    case SourceType::Simulated:
        sim_ = std::make_unique<SimulatedSensor>(cfg_.source_seed);
        sim_buf_ = std::make_unique_for_overwrite<char[]>(ScanLimits{}.max_bytes);
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
        mqtt_ = std::make_unique<MqttSource>(loop_, kKeyMqttSource, *src_inputs_, *store_);
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
              "gateway-agent %s started: identity %s%s%s (from %s), hub %s, threshold %g (%s)",
              GA_VERSION, std::string(id_.device_id).c_str(), id_.module_id.empty() ? "" : "/",
              std::string(id_.module_id).c_str(), opt_.identity_origin, hub_->host(),
              filter_->threshold(), twin_->threshold_source());
    port::notify("READY=1");
    methods_->check_reboot_completed();
    hub_->connect_now();
    std::array<port::EventLoop::Ready, 8> ready{};
    while (running_)
    {
        const port::EventLoop::Wakeup w = loop_.wait(ready, -1);
        const std::uint64_t received = filter_->received();
        dispatch(w, std::span(ready.data(), w.ready));
        const bool busy = filter_->received() - received >= kBusyTurnInputs;
        loop_.set_turn_spacing_us(busy ? 0 : kTurnSpacingUs);
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
            hub_->on_ready(r.readable, r.writable, now);
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
    hub_->stop();
    store_->close();
    mqtt_.reset();
}

void Agent::tick()
{
    const std::int64_t now = port::monotonic_ms();
    hub_->tick(now);
    twin_->tick(now);
    if (mqtt_)
        mqtt_->tick(now);
    methods_->tick(now);
    if (hub_->online() && hub_acked_->should_refetch(now))
        hub_->reconnect("fetching inputs left with the broker");
    if (sim_ && now >= next_sim_ms_)
    {
        next_sim_ms_ = now + cfg_.source_interval_ms;
        const std::size_t n =
            sim_->next({sim_buf_.get(), ScanLimits{}.max_bytes}, port::wall_time_s());
        (void)src_inputs_->offer(std::string_view(sim_buf_.get(), n), port::wall_time_s(), false);
        (void)src_inputs_->commit();
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
        report_depth();
    }
    if (watchdog_ms_ > 0 && now >= next_watchdog_ms_)
    {
        next_watchdog_ms_ = now + watchdog_ms_ / 2;
        // A connection stuck in one state is a bug a restart clears: let the watchdog fire.
        if (hub_->stuck(now))
        {
            if (!watchdog_withheld_)
                port::log(port::Level::Err, "watchdog: the hub connection has been stuck in one "
                                            "state for over 10 minutes; not answering the "
                                            "watchdog, so systemd restarts the agent");
            watchdog_withheld_ = true;
        }
        else
        {
            port::notify("WATCHDOG=1");
        }
    }
    hub_acked_->send_acks();
    pump_alerts();
}

void Agent::on_online()
{
    // The twin is read after every connect: a desired change made while offline is applied.
    twin_->on_online();
    methods_->check_reboot_completed();
    report_stats(false);
    pump_alerts();
}

void Agent::on_offline()
{
    twin_->on_offline();
    hub_acked_->reset();
    has_pending_ = false;
    store_->rewind_unsent();
}

void Agent::on_hub_message(const mqtt::Publish& m)
{
    const bool is_input =
        !input_prefix_.empty() && m.topic.starts_with(input_prefix_) &&
        (m.topic.size() == input_prefix_.size() || m.topic[input_prefix_.size()] == '/');
    if (is_input)
    {
        // The bag after ".../inputs/{input}/" travels with the alert.
        std::string_view bag = m.topic.substr(input_prefix_.size());
        if (!bag.empty())
            bag.remove_prefix(1);
        hub_acked_->on_input(m, bag);
        return;
    }
    hub_acked_->on_other(m);
    if (m.oversize > 0)
    {
        methods_->refuse_too_large(m.topic, m.oversize);
        return;
    }
    if (twin_->handle(m.topic, m.payload) || methods_->handle(m.topic, m.payload))
        return;
    port::log(port::Level::Warning, "hub link: message on unexpected topic (%zu bytes) ignored",
              m.topic.size());
}

void Agent::on_alert_acked(std::uint64_t tag)
{
    store_->ack(tag);
    ++alerts_sent_;
}

void Agent::on_burst_end()
{
    hub_acked_->burst_end();
    if (hub_inputs_->held() > 0)
        after_store_room();
    pump_alerts();
}

void Agent::after_store_room()
{
    // Acknowledged alerts free whole segments; held inputs then get their turn.
    if (hub_inputs_->held() > 0)
    {
        store_->maintain(port::monotonic_ms(), port::wall_time_s());
        hub_acked_->retry();
    }
    if (mqtt_)
        mqtt_->retry(port::monotonic_ms());
}

void Agent::pump_alerts()
{
    if (!hub_->online())
        return;
    mqtt::Session& s = hub_->session();
    const std::size_t cap = ScanLimits{}.max_bytes + 4096;
    while (s.inflight() < s.window())
    {
        if (!has_pending_)
        {
            if (!store_->next_unsent(pending_seq_, {alert_buf_.get(), cap}, pending_len_))
                break;
            has_pending_ = true;
        }
        const auto rec = parse_alert_record(std::string_view(alert_buf_.get(), pending_len_));
        BufWriter topic({alert_topic_buf_.get(), alert_topic_cap_});
        if (rec)
        {
            // Computed, not stored: the same (store id, seq) gives the same id on every send.
            std::array<char, kMaxGeneratedIdLen> mid{};
            BufWriter mid_w(mid);
            append_alert_message_id(store_id_, pending_seq_, mid_w);
            append_alert_topic(id_, cfg_.output, {rec->forwarded, rec->present, mid_w.view()},
                               topic);
        }
        if (!rec || !topic.ok())
        {
            // Its CRC was good, so only a bug could write this; sending it would put garbage
            // in a topic or stall the queue behind it. Dropped (acknowledged in the store).
            ++alerts_unreadable_;
            port::log(port::Level::Err,
                      "store: alert %llu has an unreadable property head; dropped (%llu so far)",
                      static_cast<unsigned long long>(pending_seq_),
                      static_cast<unsigned long long>(alerts_unreadable_));
            store_->ack(pending_seq_);
            has_pending_ = false;
            continue;
        }
        if (!s.publish(topic.view(), rec->payload, 1, pending_seq_))
            break; // the send buffer is full: this alert goes first next time
        has_pending_ = false;
        // At least once: a re-send after a reconnect is counted, so duplicates are visible.
        if (pending_seq_ <= highest_sent_seq_)
            ++alerts_resent_;
        else
            highest_sent_seq_ = pending_seq_;
    }
    hub_->flush();
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
    s.rejected_bad_properties = filter_->bad_properties();
    s.twin_patches = twin_->patches();
    s.twin_patches_applied = twin_->patches_applied();
    s.threshold_changes = twin_->threshold_changes();
    s.reconnects = hub_->reconnects();
    s.queue_depth = store_->depth();
    s.queue_dropped = store_->dropped();
    s.queue_not_persisted = store_->not_persisted();
    s.alerts_resent = alerts_resent_;
    s.inputs_waited = hub_inputs_->waited() + src_inputs_->waited() + hub_acked_->deferred() +
                      (mqtt_ ? mqtt_->deferred() : 0);
    s.queue_corrupt = store_->corrupt();
    s.store_commits = store_->commits();
    return s;
}

void Agent::report_depth()
{
    // systemctl status shows the link's state and how many alerts wait: the line changes
    // only when the depth does (at most once a second).
    const std::uint64_t depth = store_->depth();
    if (depth == status_depth_ && std::strcmp(hub_->status_text(), status_hub_.data()) == 0)
        return;
    status_depth_ = depth;
    (void)std::snprintf(status_hub_.data(), status_hub_.size(), "%s", hub_->status_text());
    std::array<char, 400> line{};
    (void)std::snprintf(line.data(), line.size(), "STATUS=%s; %llu alert(s) waiting to be sent",
                        status_hub_.data(), static_cast<unsigned long long>(depth));
    port::notify(line.data());
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
            twin_->threshold_source(), static_cast<unsigned long long>(s.reconnects),
            static_cast<unsigned long long>(s.queue_depth),
            static_cast<unsigned long long>(s.queue_dropped),
            static_cast<unsigned long long>(s.queue_not_persisted),
            static_cast<unsigned long long>(s.alerts_resent));
    }
    if (!hub_->online())
        return;
    BufWriter w({out_buf_.get(), 4096});
    if (build_stats_report(s, w))
        twin_->send_reported(w.view());
}

} // namespace

int run_agent(const AgentOptions& options)
{
    Agent agent(options);
    return agent.run();
}

} // namespace ga
