// SPDX-License-Identifier: MIT
#include "agent.h"

#include "alert_store.h"
#include "buf_writer.h"
#include "hub_link.h"
#include "inbox.h"
#include "input_filter.h"
#include "port.h"
#include "sas.h"
#include "sources.h"
#include "topics.h"
#include "twin.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <memory>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace ga
{
namespace
{
constexpr std::int64_t kTickMs = 100;
constexpr std::int64_t kBackoffBaseMs = 1000;
constexpr std::int64_t kBackoffCapMs = 60000;
constexpr std::int64_t kStableAfterMs = 60000;
constexpr std::int64_t kAuthRetryMs = 60000;
constexpr std::size_t kPayloadBytes = std::size_t{128} * 1024U; // twin docs, method payloads
constexpr std::size_t kTopicBytes = 1024U;

enum class LinkState
{
    Waiting, // backoff before the next connect
    Connecting,
    Subscribing,
    Online,
    Disconnecting, // asked for a disconnect (token renewal, simulated reboot)
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
        return nullptr;
    }
}

class Agent
{
  public:
    explicit Agent(const AgentOptions& o);
    int run();

  private:
    bool start(std::string& err);
    void stop();
    void handle_events();
    void tick();
    void connect_now();
    void schedule_reconnect(bool auth_refused);
    void on_online();
    void on_offline();
    void pump_alerts();
    void send_twin_get();
    void send_reported(std::string_view doc, bool is_reboot_report);
    void on_message(std::string_view topic, std::string_view payload, bool truncated);
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

    const AgentOptions& opt_;
    const Config& cfg_;
    Identity id_{};
    FieldPath path_{};
    int epfd_ = -1;
    int wakefd_ = -1;
    int timerfd_ = -1;
    int sigfd_ = -1;
    bool running_ = true;

    std::unique_ptr<Inbox> inbox_;
    std::unique_ptr<AlertStore> store_;
    std::unique_ptr<InputFilter> filter_;
    std::unique_ptr<HubLink> link_;
    std::unique_ptr<UdpSource> udp_;
    std::unique_ptr<MqttSource> mqtt_;
    std::unique_ptr<SimulatedSensor> sim_;
    std::int64_t next_sim_ms_ = 0;

    std::string alert_topic_;
    std::string input_filter_;
    std::unique_ptr<char[]> topic_buf_;
    std::unique_ptr<char[]> payload_buf_;
    std::unique_ptr<char[]> alert_buf_;
    std::unique_ptr<char[]> out_buf_;

    LinkState state_ = LinkState::Waiting;
    std::int64_t next_connect_ms_ = 0;
    int attempt_ = 0;
    std::int64_t online_since_ms_ = 0;
    std::int64_t renew_at_ms_ = 0;
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
    std::int64_t next_ack_flush_ms_ = 0;
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
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    sigfd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (epfd_ < 0 || wakefd_ < 0 || timerfd_ < 0 || sigfd_ < 0)
    {
        err = std::string("event loop: ") + std::strerror(errno);
        return false;
    }
    const itimerspec its{{0, kTickMs * 1000000}, {0, kTickMs * 1000000}};
    timerfd_settime(timerfd_, 0, &its, nullptr);
    for (int fd : {wakefd_, timerfd_, sigfd_})
    {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }

    // Every buffer is sized once here; the per-message path allocates nothing of ours.
    topic_buf_ = std::make_unique<char[]>(kTopicBytes);
    payload_buf_ = std::make_unique<char[]>(kPayloadBytes);
    alert_buf_ = std::make_unique<char[]>(ScanLimits{}.max_bytes);
    out_buf_ = std::make_unique<char[]>(4096);
    inbox_ = std::make_unique<Inbox>(512U * 1024U, wakefd_);
    store_ = std::make_unique<AlertStore>(static_cast<std::size_t>(cfg_.queue_max_bytes));
    if (!store_->open(cfg_.state_dir, err))
    {
        port::log(port::Level::Err,
                  "store: %s; alerts are kept in memory only (and sent) until it can be written",
                  err.c_str());
        err.clear();
    }
    filter_ = std::make_unique<InputFilter>(path_, cfg_.threshold, *store_, *inbox_);
    threshold_source_ = cfg_.threshold == 25.0 ? "default" : "conf";

    char buf[1024];
    BufWriter w(buf);
    append_alert_topic(id_, cfg_.output, w);
    alert_topic_ = std::string(w.view());
    w.clear();
    append_client_id(id_, w);
    HubLinkSettings s;
    s.client_id = std::string(w.view());
    w.clear();
    append_username(id_, "gateway-agent/" GA_VERSION, cfg_.model_id, w);
    s.username = std::string(w.view());
    s.ca_file = cfg_.ca_file;
    s.keepalive_s = static_cast<int>(cfg_.keepalive);
    s.server_uri = std::string(cfg_.transport == Transport::Tls ? "ssl://" : "tcp://") +
                   std::string(opt_.identity.connect_host()) + ":" + std::to_string(cfg_.port);
    if (cfg_.source == SourceType::ModuleInput)
    {
        w.clear();
        w.append("devices/").append(id_.device_id).append("/modules/").append(id_.module_id);
        w.append("/inputs/").append(cfg_.input);
        s.input_prefix = std::string(w.view());
        input_filter_ = s.input_prefix + "/#";
    }
    if (cfg_.transport == Transport::Tcp)
        port::log(port::Level::Warning,
                  "hub link: transport = tcp: no TLS, for local test brokers only");
    link_ = std::make_unique<HubLink>(*inbox_, *filter_);
    if (!link_->create(s, err))
        return false;

    switch (cfg_.source)
    {
    case SourceType::ModuleInput:
        break;
    case SourceType::Simulated:
        sim_ = std::make_unique<SimulatedSensor>(cfg_.source_seed);
        next_sim_ms_ = port::monotonic_ms() + cfg_.source_interval_ms;
        break;
    case SourceType::Udp:
    {
        udp_ = std::make_unique<UdpSource>();
        if (!udp_->open(cfg_.source_bind, err))
            return false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = udp_->fd();
        epoll_ctl(epfd_, EPOLL_CTL_ADD, udp_->fd(), &ev);
        break;
    }
    case SourceType::Mqtt:
        mqtt_ = std::make_unique<MqttSource>(*filter_);
        if (!mqtt_->start(cfg_.source_broker, cfg_.source_topic,
                          "gateway-agent-" + std::string(id_.device_id), err))
            return false;
        break;
    }

    const std::int64_t now = port::monotonic_ms();
    next_stats_ms_ = cfg_.stats_interval > 0 ? now + cfg_.stats_interval * 1000LL : 0;
    next_ack_flush_ms_ = now + 1000;
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
    epoll_event evs[8];
    while (running_)
    {
        const int n = epoll_wait(epfd_, evs, 8, -1);
        for (int i = 0; i < n; ++i)
        {
            const int fd = evs[i].data.fd;
            if (fd == wakefd_)
            {
                std::uint64_t v = 0;
                (void)::read(wakefd_, &v, sizeof v);
                handle_events();
            }
            else if (fd == timerfd_)
            {
                std::uint64_t v = 0;
                (void)::read(timerfd_, &v, sizeof v);
                handle_events(); // also catches events whose wake-up was coalesced
                tick();
            }
            else if (fd == sigfd_)
            {
                signalfd_siginfo si{};
                (void)::read(sigfd_, &si, sizeof si);
                port::log(port::Level::Notice, "signal %u: stopping", si.ssi_signo);
                running_ = false;
            }
            else if (udp_ && fd == udp_->fd())
            {
                udp_->drain(*filter_);
                pump_alerts();
            }
        }
    }
    stop();
    return 0;
}

void Agent::stop()
{
    port::notify("STOPPING=1");
    report_stats(true);
    if (state_ == LinkState::Online || state_ == LinkState::Subscribing)
    {
        link_->disconnect();
        // Bounded wait for the clean disconnect so the session ends with a DISCONNECT packet.
        const std::int64_t until = port::monotonic_ms() + 3000;
        Event ev;
        while (port::monotonic_ms() < until)
        {
            if (inbox_->pop(ev, {topic_buf_.get(), kTopicBytes},
                            {payload_buf_.get(), kPayloadBytes}))
            {
                if (ev.type == EventType::PublishAcked)
                    store_->ack(static_cast<std::uint32_t>(ev.seq));
                if (ev.type == EventType::ConnectionLost)
                    break;
                continue;
            }
            ::usleep(20000);
        }
    }
    store_->maintain(port::monotonic_ms());
    mqtt_.reset();
    link_.reset();
}

void Agent::handle_events()
{
    Event ev;
    while (inbox_->pop(ev, {topic_buf_.get(), kTopicBytes}, {payload_buf_.get(), kPayloadBytes}))
    {
        const std::string_view topic(topic_buf_.get(), ev.topic_len);
        const std::string_view payload(payload_buf_.get(), ev.payload_len);
        switch (ev.type)
        {
        case EventType::Connected:
            if (state_ != LinkState::Connecting)
                break;
            ++connects_;
            if (connects_ > 1)
                ++reconnects_;
            port::log(port::Level::Info, "hub link: connected to %s:%u",
                      std::string(opt_.identity.connect_host()).c_str(), cfg_.port);
            state_ = LinkState::Subscribing;
            {
                const char* filters[4];
                int qos[4];
                int n = 0;
                if (!input_filter_.empty())
                {
                    filters[n] = input_filter_.c_str();
                    qos[n++] = 1;
                }
                filters[n] = kTwinResponseFilter.data();
                qos[n++] = 0;
                filters[n] = kTwinDesiredFilter.data();
                qos[n++] = 0;
                filters[n] = kMethodsFilter.data();
                qos[n++] = 0;
                if (!link_->subscribe(filters, qos, n))
                    link_->disconnect();
            }
            break;
        case EventType::Subscribed:
            if (state_ != LinkState::Subscribing)
                break;
            if (ev.code != 0)
            {
                port::log(port::Level::Err, "hub link: %d subscription(s) refused; reconnecting",
                          ev.code);
                state_ = LinkState::Disconnecting;
                reconnect_when_down_ = false;
                link_->disconnect();
                break;
            }
            on_online();
            break;
        case EventType::ConnectFailed:
        {
            const char* reason = connack_reason(ev.code);
            const std::string detail(payload);
            port::log(reason != nullptr && ev.code >= 4 ? port::Level::Err : port::Level::Warning,
                      "hub link: connect to %s:%u failed: %s",
                      std::string(opt_.identity.connect_host()).c_str(), cfg_.port,
                      reason != nullptr ? reason : (detail.empty() ? "no answer" : detail.c_str()));
            state_ = LinkState::Waiting;
            schedule_reconnect(ev.code == 4 || ev.code == 5);
            break;
        }
        case EventType::ConnectionLost:
        {
            const bool requested = ev.code == -1;
            if (!requested)
                port::log(port::Level::Warning, "hub link: connection lost (%.*s)",
                          static_cast<int>(payload.size()), payload.data());
            on_offline(); // resets the backoff only after a stable Online period
            if (requested && reconnect_when_down_)
            {
                reconnect_when_down_ = false;
                connect_now();
            }
            else if (state_ != LinkState::Connecting)
            {
                state_ = LinkState::Waiting;
                schedule_reconnect(false);
            }
            break;
        }
        case EventType::Message:
            on_message(topic, payload, ev.truncated);
            break;
        case EventType::InputDecided:
        case EventType::StoreError:
            break;
        case EventType::PublishAcked:
            store_->ack(static_cast<std::uint32_t>(ev.seq));
            ++alerts_sent_;
            break;
        case EventType::PublishFailed:
            port::log(port::Level::Warning,
                      "hub link: alert %llu not acknowledged (paho code %d); "
                      "it stays queued",
                      static_cast<unsigned long long>(ev.seq), ev.code);
            break;
        }
    }
    pump_alerts();
}

void Agent::tick()
{
    const std::int64_t now = port::monotonic_ms();
    if (state_ == LinkState::Waiting && now >= next_connect_ms_)
        connect_now();
    if (state_ == LinkState::Online && renew_at_ms_ != 0 && now >= renew_at_ms_)
    {
        port::log(port::Level::Info, "hub link: SAS token renewal: reconnecting with a new token");
        renew_at_ms_ = 0;
        state_ = LinkState::Disconnecting;
        reconnect_when_down_ = true;
        link_->disconnect();
    }
    if (sim_ && now >= next_sim_ms_)
    {
        next_sim_ms_ = now + cfg_.source_interval_ms;
        const std::size_t n =
            sim_->next({alert_buf_.get(), ScanLimits{}.max_bytes}, port::wall_time_s());
        (void)filter_->decide(std::string_view(alert_buf_.get(), n));
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
    if (now >= next_ack_flush_ms_)
    {
        next_ack_flush_ms_ = now + 1000;
        store_->maintain(now);
    }
    if (watchdog_ms_ > 0 && now >= next_watchdog_ms_)
    {
        next_watchdog_ms_ = now + watchdog_ms_ / 2;
        port::notify("WATCHDOG=1");
    }
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
    if (!link_->connect(std::string(w.view())))
    {
        state_ = LinkState::Waiting;
        schedule_reconnect(false);
    }
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
    port::log(port::Level::Info, "hub link: next connect attempt in %lld ms (attempt %d)",
              static_cast<long long>(delay), attempt_);
}

void Agent::on_online()
{
    state_ = LinkState::Online;
    online_since_ms_ = port::monotonic_ms();
    store_->rewind_unsent();
    // The twin is read after every connect: a desired change made while offline is applied.
    send_twin_get();
    check_reboot_completed();
    report_stats(false);
}

void Agent::on_offline()
{
    if (state_ == LinkState::Online && port::monotonic_ms() - online_since_ms_ >= kStableAfterMs)
        attempt_ = 0;
    state_ = LinkState::Waiting;
    get_rid_[0] = '\0';
    store_->rewind_unsent();
}

void Agent::pump_alerts()
{
    if (state_ != LinkState::Online)
        return;
    std::uint64_t seq = 0;
    std::size_t len = 0;
    while (link_->inflight() < HubLink::kWindow &&
           store_->next_unsent(seq, {alert_buf_.get(), ScanLimits{}.max_bytes}, len))
    {
        if (!link_->publish_alert(alert_topic_.c_str(), std::string_view(alert_buf_.get(), len),
                                  seq))
        {
            store_->rewind_unsent();
            return;
        }
        // At least once: a re-send after a reconnect is counted, so duplicates are visible.
        if (seq <= highest_sent_seq_)
            ++alerts_resent_;
        else
            highest_sent_seq_ = seq;
    }
}

void Agent::send_twin_get()
{
    char topic[128];
    BufWriter w(topic);
    auto [end, ec] = std::to_chars(get_rid_, get_rid_ + sizeof get_rid_ - 1, ++rid_);
    *end = '\0';
    append_twin_get_topic(get_rid_, w);
    w.append('\0');
    if (!link_->publish0(topic, {}))
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
    if (!link_->publish0(topic, doc))
        port::log(port::Level::Warning, "twin: reported patch could not be sent");
}

void Agent::on_message(std::string_view topic, std::string_view payload, bool truncated)
{
    if (auto r = parse_twin_response(topic))
    {
        on_twin_response(*r, truncated ? std::string_view{} : payload);
        return;
    }
    if (auto d = parse_desired_patch_topic(topic))
    {
        if (truncated)
        {
            port::log(port::Level::Warning, "twin: desired patch larger than %zu bytes ignored",
                      kPayloadBytes);
            return;
        }
        on_desired_patch(*d, payload);
        return;
    }
    if (auto m = parse_method_request(topic))
    {
        on_method(*m, truncated ? std::string_view("\x01") : payload);
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
    if (!w.ok() || !link_->publish0(topic, body))
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
    if (state_ == LinkState::Online || state_ == LinkState::Subscribing)
    {
        state_ = LinkState::Disconnecting;
        reconnect_when_down_ = true;
        link_->disconnect();
    }
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
