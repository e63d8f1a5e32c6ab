// SPDX-License-Identifier: MIT
// `gateway-agent check [--config PATH]`: diagnostics of everything the agent needs, with the
// agent's own code (port::Transport, MqttLink over mqtt::Session, the SAS and topic builders),
// so a check that passes means the agent's own connection works too.
//
// Output: one line per check, in this order, each name exactly once:
//
//   STATUS NAME        DETAIL[ -> fix: FIX]
//
//   STATUS  OK | WARN | FAIL | SKIP, left-aligned in 6 columns
//   NAME    clock | dns | tcp | [workload] | tls | connect | subscribe | twin | reboot | state,
//           in 12 columns
//
// then "result: N OK, N WARN, N FAIL, N SKIP". Exit 0 without FAIL (WARN does not fail), else
// kCheckFailedExit (1); a conf that does not parse exits 78 before any check, as at start-up.
// The network checks form a chain (dns, tcp, tls, connect, subscribe, twin): after a FAIL the
// rest of the chain is SKIP. clock, reboot and state always run; a wrong clock does not stop the
// chain, whose failures then mention the clock. Each step is bounded (10 s), all of them too
// (60 s). Details never hold the key or a token. An IoT Edge identity gets a "workload" line
// after tcp: the trust bundle and a test signature from the workload API over its socket; tls,
// connect, subscribe and twin are then WARN "not checked for an IoT Edge identity". " -> fix: "
// follows WARN and FAIL details (never OK or SKIP ones).
//
// The check connects as the agent's identity (same client id, CleanSession 0): a running agent
// is disconnected by the hub and reconnects. Messages that reach the check are not
// acknowledged, so the broker delivers them again to the agent.
#include "check.h"

#include "buf_writer.h"
#include "disk_space.h"
#include "event_loop.h"
#include "http_response.h"
#include "mqtt_link.h"
#include "port.h"
#include "process.h"
#include "reboot_unit.h"
#include "sas.h"
#include "topics.h"
#include "transport.h"
#include "workload_api.h"
#include "workload_requests.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ga
{
namespace
{
constexpr std::int64_t kStepMs = 10000;
constexpr std::int64_t kTotalMs = 60000;
constexpr std::int64_t kTickMs = 20;
// The transport reports its own timeout first; this margin only bounds a transport that does not.
constexpr std::int64_t kGraceMs = 500;
// No certificate or token of ours is valid before this: a clock behind it was never set.
constexpr std::int64_t kClockFloorS = 1735689600; // 2025-01-01T00:00:00Z
constexpr const char* kClockFloorText = "2025-01-01";
constexpr const char* kTimesyncFlag = "/run/systemd/timesync/synchronized";
constexpr std::uint64_t kMiB = std::uint64_t{1024} * 1024U;
constexpr std::uint64_t kMinFreeBytes = 16 * kMiB;
constexpr std::uint64_t kKeyLink = 1;
constexpr std::uint64_t kKeyTransport = 2;
constexpr std::uint64_t kKeyWorkload = 3;
constexpr std::size_t kRxBytes = 16384; // a larger twin arrives without its payload
constexpr std::size_t kTxBytes = 8192;

enum class Verdict : std::uint8_t
{
    Ok,
    Warn,
    Fail,
    Skip,
};

class Report
{
  public:
    explicit Report(std::FILE* out) : out_(out) {}

    void line(Verdict v, const char* name, const std::string& detail, const std::string& fix = {})
    {
        static constexpr std::array<const char*, 4> kTags{"OK", "WARN", "FAIL", "SKIP"};
        const auto i = static_cast<std::size_t>(v);
        ++counts_.at(i);
        (void)std::fprintf(out_, "%-6s%-12s%s%s%s\n", kTags.at(i), name, detail.c_str(),
                           fix.empty() ? "" : " -> fix: ", fix.c_str());
        (void)std::fflush(out_); // a slow step should not hide the lines before it
    }
    [[nodiscard]] int count(Verdict v) const { return counts_.at(static_cast<std::size_t>(v)); }
    void summary()
    {
        (void)std::fprintf(out_, "result: %d OK, %d WARN, %d FAIL, %d SKIP\n", count(Verdict::Ok),
                           count(Verdict::Warn), count(Verdict::Fail), count(Verdict::Skip));
        (void)std::fflush(out_);
    }

  private:
    std::FILE* out_;
    std::array<int, 4> counts_{};
};

std::string clock_text()
{
    std::array<char, 32> buf{};
    (void)port::format_iso8601_utc(port::wall_time_s(), buf.data(), buf.size());
    return buf.data();
}

std::string mib_text(std::uint64_t bytes)
{
    return std::to_string(bytes / kMiB) + " MiB";
}

bool contains(std::string_view text, std::string_view what)
{
    return text.find(what) != std::string_view::npos;
}

bool is_numeric_host(std::string_view host)
{
    return contains(host, ":") ||
           std::all_of(host.begin(), host.end(),
                       [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// What the checks share: the time budget, the event loop and what earlier steps found.
struct Context
{
    Context(const AgentOptions& o, Report& r, std::int64_t budget_ms)
        : opt(o), report(r), host(o.identity.connect_host()),
          end_ms(port::monotonic_ms() + budget_ms)
    {
    }

    const AgentOptions& opt;
    Report& report;
    std::string host; // the host the agent dials
    std::int64_t end_ms = 0;
    port::EventLoop loop;
    bool loop_open = false;
    bool interrupted = false;
    bool clock_suspect = false; // the clock check did not say OK

    [[nodiscard]] std::int64_t step_end() const
    {
        return std::min(port::monotonic_ms() + kStepMs, end_ms);
    }
    [[nodiscard]] std::string clock_hint() const
    {
        return "clock says " + clock_text() + (clock_suspect ? ", see the clock check" : "");
    }
    /// One wait on the loop, at most until `until` and one tick; false on SIGTERM/SIGINT.
    bool wait(std::span<port::EventLoop::Ready> ready, std::int64_t until, std::size_t& n)
    {
        const std::int64_t left =
            std::clamp<std::int64_t>(until - port::monotonic_ms(), 0, kTickMs);
        const port::EventLoop::Wakeup w = loop.wait(ready, static_cast<int>(left));
        n = w.ready;
        if (w.signal != 0)
            interrupted = true;
        return !interrupted;
    }
};

// ---- clock ----

Verdict check_clock(Context& c)
{
    if (port::wall_time_s() < kClockFloorS)
    {
        c.clock_suspect = true;
        c.report.line(Verdict::Fail, "clock",
                      "clock says " + clock_text() + ", before " + kClockFloorText +
                          ": the time was never set (SAS tokens and certificates need it)",
                      "set the time: timedatectl set-ntp true (or timedatectl set-time)");
        return Verdict::Fail;
    }
    std::string text;
    std::string err;
    if (port::read_file(kTimesyncFlag, text, 64, err) == port::ReadStatus::Missing)
    {
        c.clock_suspect = true;
        c.report.line(Verdict::Warn, "clock",
                      "clock says " + clock_text() +
                          "; clock not known to be synchronised (timedatectl; SAS tokens need "
                          "the right time)",
                      "timedatectl set-ntp true, and let the gateway reach an NTP server");
        return Verdict::Warn;
    }
    c.report.line(Verdict::Ok, "clock", "clock says " + clock_text() + ", synchronised");
    return Verdict::Ok;
}

// ---- dns, tcp, tls: one port::Transport each, driven to Open or Failed ----

struct TransportRun
{
    port::Transport::Status status = port::Transport::Status::Closed;
    std::string error;
    std::string peer;
};

TransportRun drive(Context& c, bool tls, std::string& config_err)
{
    const Config& cfg = c.opt.config;
    TransportRun run;
    port::Transport t;
    port::TransportConfig tc;
    tc.host = c.host;
    tc.port = static_cast<std::uint16_t>(cfg.port);
    tc.tls = tls;
    tc.ca_file = cfg.ca_file;
    const std::int64_t until = c.step_end();
    tc.connect_timeout_ms = std::max<std::int64_t>(until - port::monotonic_ms(), 1);
    if (!t.configure(tc, config_err))
        return run;
    run.status = t.start(port::monotonic_ms());
    int watched = -1;
    std::array<port::EventLoop::Ready, 4> ready{};
    while (run.status == port::Transport::Status::InProgress &&
           port::monotonic_ms() < until + kGraceMs)
    {
        // Re-watched every round: the transport changes sockets while it tries addresses.
        const int fd = t.fd();
        if (watched >= 0 && fd != watched)
            c.loop.unwatch(watched);
        watched = fd >= 0 && c.loop.watch(fd, t.wants_write(), kKeyTransport) ? fd : -1;
        std::size_t n = 0;
        if (!c.wait(ready, until + kGraceMs, n))
            break;
        run.status = t.progress(port::monotonic_ms());
    }
    if (watched >= 0)
        c.loop.unwatch(watched);
    if (run.status == port::Transport::Status::InProgress)
        run.error = c.interrupted ? "interrupted"
                                  : "no progress within " + std::to_string(kStepMs / 1000) + " s";
    else
        run.error = t.error();
    run.peer = t.peer();
    t.close();
    return run;
}

Verdict check_dns_tcp(Context& c)
{
    std::string config_err;
    const TransportRun run = drive(c, false, config_err);
    const std::string target = c.host + ":" + std::to_string(c.opt.config.port);
    if (c.interrupted)
    {
        c.report.line(Verdict::Fail, "dns", "interrupted (SIGINT/SIGTERM)");
        c.report.line(Verdict::Skip, "tcp", "interrupted");
        return Verdict::Fail;
    }
    if (!config_err.empty())
    {
        c.report.line(Verdict::Fail, "dns", config_err, "check [hub] port and the host name");
        c.report.line(Verdict::Skip, "tcp", "needs dns");
        return Verdict::Fail;
    }
    // The transport's errors say "cannot resolve ..." or "timed out ... resolving ...".
    if (run.status != port::Transport::Status::Open && contains(run.error, "resolv"))
    {
        c.report.line(Verdict::Fail, "dns", run.error,
                      "check HostName/GatewayHostName in the connection string and the name "
                      "servers (/etc/resolv.conf; try: getent hosts " +
                          c.host + ")");
        c.report.line(Verdict::Skip, "tcp", "needs dns");
        return Verdict::Fail;
    }
    c.report.line(Verdict::Ok, "dns",
                  is_numeric_host(c.host) ? c.host + " is an address (no lookup)"
                                          : c.host + " resolved");
    if (run.status != port::Transport::Status::Open)
    {
        c.report.line(Verdict::Fail, "tcp", run.error,
                      "is the hub (or edgeHub) listening on " + target +
                          "? check [hub] port, that edgeHub runs, and firewalls (outbound TCP " +
                          std::to_string(c.opt.config.port) + ")");
        return Verdict::Fail;
    }
    c.report.line(Verdict::Ok, "tcp", "connected to " + run.peer);
    return Verdict::Ok;
}

Verdict check_tls(Context& c)
{
    const Config& cfg = c.opt.config;
    if (cfg.transport != Transport::Tls)
    {
        c.report.line(Verdict::Warn, "tls", "not used ([hub] transport = tcp): the link is plain",
                      "transport = tls, except with a local test broker");
        return Verdict::Warn;
    }
    const std::string anchors = cfg.ca_file.empty() ? "the system CA bundle" : cfg.ca_file;
    std::string config_err;
    const TransportRun run = drive(c, true, config_err);
    if (!config_err.empty())
    {
        c.report.line(Verdict::Fail, "tls", config_err,
                      "set [hub] ca_file to a readable PEM file holding the CA certificate");
        return Verdict::Fail;
    }
    if (c.interrupted)
    {
        c.report.line(Verdict::Fail, "tls", "interrupted (SIGINT/SIGTERM)");
        return Verdict::Fail;
    }
    if (run.status == port::Transport::Status::Open)
    {
        c.report.line(Verdict::Ok, "tls",
                      "handshake with " + run.peer + ", certificate for " + c.host +
                          " verified with " + anchors);
        return Verdict::Ok;
    }
    // mbedtls's verify reasons (mbedtls_x509_crt_verify_info) are in the transport's error.
    const std::string& e = run.error;
    std::string detail;
    std::string fix;
    if (contains(e, "not correctly signed by the trusted CA"))
    {
        detail = "certificate not trusted: is ca_file the hub's/edge's CA? (" + e + ")";
        fix = "set [hub] ca_file to the CA that signed the hub's certificate (now: " + anchors +
              "; for IoT Edge: the edge CA / root CA of the edge device)";
    }
    else if (contains(e, "validity starts in the future"))
    {
        detail =
            "certificate not valid yet: is the clock behind? " + c.clock_hint() + " (" + e + ")";
        fix = "set the clock: timedatectl set-ntp true";
    }
    else if (contains(e, "validity has expired"))
    {
        detail = "certificate expired, or the clock is ahead: " + c.clock_hint() + " (" + e + ")";
        fix = "renew the server certificate, or set the clock (timedatectl set-ntp true)";
    }
    else if (contains(e, "Common Name (CN) does not match"))
    {
        detail = "certificate is not for the name " + c.host + " (" + e + ")";
        fix = "connect with a name the certificate carries: HostName/GatewayHostName in the "
              "connection string (for IoT Edge: hostname in /etc/aziot/config.toml)";
    }
    else if (contains(e, "certificate"))
    {
        detail = "certificate rejected (" + e + ")";
        fix = "check [hub] ca_file (now: " + anchors + ") and the server's certificate";
    }
    else
    {
        detail = e;
        fix = "does " + c.host + ":" + std::to_string(cfg.port) +
              " speak MQTT over TLS? check [hub] port and transport";
    }
    c.report.line(Verdict::Fail, "tls", detail, fix);
    return Verdict::Fail;
}

// ---- connect, subscribe, twin: one MqttLink, as the agent's hub connection uses it ----

class LinkProbe final : public MqttLink::Handler
{
  public:
    void on_connected(bool session_present) override
    {
        connected = true;
        resumed = session_present;
    }
    void on_message(const mqtt::Publish& m) override
    {
        const auto r = parse_twin_response(m.topic);
        if (!r || twin_rid.empty() || r->rid != twin_rid)
            return;
        twin_answered = true;
        twin_status = r->status;
        twin_bytes = m.oversize != 0 ? m.oversize : m.payload.size();
    }
    void on_acked(std::uint64_t /*tag*/) override {}
    void on_subscribed(std::span<const std::uint8_t> codes) override
    {
        subscribed = true;
        granted.assign(codes.begin(), codes.end());
    }
    void on_batch_end() override {}
    void on_down(const char* why, int code, bool /*requested*/) override
    {
        down = true;
        connack = code;
        down_why = why;
    }

    bool connected = false;
    bool resumed = false;
    bool down = false;
    int connack = -1;
    std::string down_why;
    bool subscribed = false;
    std::vector<std::uint8_t> granted;
    std::string twin_rid;
    bool twin_answered = false;
    int twin_status = 0;
    std::size_t twin_bytes = 0;
};

// Drives the link until `done`, the link goes down, the step's time is up or a signal came.
template <typename Done> bool pump(Context& c, MqttLink& link, LinkProbe& probe, Done done)
{
    const std::int64_t until = c.step_end();
    std::array<port::EventLoop::Ready, 8> ready{};
    while (!done() && !probe.down && port::monotonic_ms() < until)
    {
        std::size_t n = 0;
        if (!c.wait(ready, until, n))
            return false;
        const std::int64_t now = port::monotonic_ms();
        for (std::size_t i = 0; i < n; ++i)
            if (ready.at(i).key == kKeyLink)
                link.on_ready(ready.at(i).readable, ready.at(i).writable, now);
        link.tick(now);
    }
    return done();
}

void connack_explained(int code, const Context& c, std::string& detail, std::string& fix)
{
    switch (code)
    {
    case 1:
        detail = "protocol version refused (CONNACK 1)";
        fix = "is [hub] port the hub's MQTT port (8883)?";
        return;
    case 2:
        detail = "client id refused (CONNACK 2)";
        fix = "check DeviceId/ModuleId in the connection string";
        return;
    case 3:
        detail = "server unavailable (CONNACK 3)";
        fix = "the hub or edgeHub is not ready: try again later; on IoT Edge: iotedge logs edgeHub";
        return;
    case 4:
        detail = "bad user name or password (CONNACK 4)";
        fix = "check SharedAccessKey in the connection string";
        return;
    case 5:
        detail = "not authorized (CONNACK 5): wrong key, unknown identity, or a token already "
                 "expired because the clock is behind (" +
                 c.clock_hint() + ")";
        fix = "check SharedAccessKey, DeviceId and ModuleId in the connection string against the "
              "hub, and the clock (timedatectl)";
        return;
    default:
        detail = "refused (CONNACK " + std::to_string(code) + ")";
        fix = "check the connection string and the hub's logs";
        return;
    }
}

void skip_mqtt(Report& r, const char* from, const char* why)
{
    const bool from_connect = std::strcmp(from, "connect") == 0;
    const bool from_subscribe = from_connect || std::strcmp(from, "subscribe") == 0;
    if (from_connect)
        r.line(Verdict::Skip, "connect", why);
    if (from_subscribe)
        r.line(Verdict::Skip, "subscribe", why);
    r.line(Verdict::Skip, "twin", why);
}

void check_mqtt(Context& c)
{
    const Config& cfg = c.opt.config;
    const ConnectionString& cs = c.opt.identity;
    const Identity id{cs.host_name, cs.device_id, cs.module_id};

    mqtt::SessionConfig sc;
    sc.keepalive_s = static_cast<std::uint16_t>(cfg.keepalive);
    sc.connack_timeout_ms = kStepMs;
    sc.ping_timeout_ms = kStepMs;
    sc.window = 1;
    sc.max_inbound_pending = mqtt::Session::kMaxWindow;
    sc.max_packet = kRxBytes;
    LinkProbe probe;
    MqttLink link(MqttLink::Buffers{kRxBytes, kTxBytes}, sc, c.loop, kKeyLink, probe);
    port::TransportConfig tc;
    tc.host = c.host;
    tc.port = static_cast<std::uint16_t>(cfg.port);
    tc.tls = cfg.transport == Transport::Tls;
    tc.ca_file = cfg.ca_file;
    tc.connect_timeout_ms = kStepMs;
    std::string err;
    if (!link.configure(tc, err))
    {
        c.report.line(Verdict::Fail, "connect", err, "check [hub] ca_file");
        skip_mqtt(c.report, "subscribe", "needs connect");
        return;
    }

    // The agent's CONNECT: same client id, user name and SAS token (HubConnection::connect_now).
    std::array<char, 256> client_id{};
    BufWriter cid(client_id);
    append_client_id(id, cid);
    std::array<char, 1024> username{};
    BufWriter user(username);
    append_username(id, "gateway-agent/" GA_VERSION, cfg.model_id, user);
    std::array<char, 512> resource{};
    BufWriter res(resource);
    append_sas_resource(id.hub_host, id.device_id, id.module_id, res);
    std::array<char, 1024> token{};
    BufWriter tok(token);
    const std::int64_t expiry = port::wall_time_s() + static_cast<std::int64_t>(cfg.sas_ttl);
    const bool built =
        cid.ok() && user.ok() && res.ok() &&
        append_sas_token(res.view(), cs.shared_access_key,
                         static_cast<std::uint64_t>(std::max<std::int64_t>(expiry, 0)),
                         tok) == SasError::None &&
        tok.ok();
    if (!built)
    {
        explicit_bzero(token.data(), token.size());
        c.report.line(Verdict::Fail, "connect", "cannot build a SAS token from the key",
                      "check SharedAccessKey in the connection string");
        skip_mqtt(c.report, "subscribe", "needs connect");
        return;
    }
    // CleanSession 0, as the agent: a clean session would drop the agent's subscriptions and
    // the inputs the broker keeps for it.
    link.connect(cid.view(), user.view(), tok.view(), false, port::monotonic_ms());
    explicit_bzero(token.data(), token.size());
    const std::string who(cid.view());

    if (!pump(c, link, probe, [&] { return probe.connected; }))
    {
        std::string detail;
        std::string fix;
        if (probe.connack > 0)
            connack_explained(probe.connack, c, detail, fix);
        else if (probe.down)
        {
            detail = "no CONNACK: " + probe.down_why;
            fix = "the server ended the connection: check the connection string (key, "
                  "identity) and the server's logs";
        }
        else
        {
            detail = c.interrupted ? "interrupted"
                                   : "no CONNACK within " + std::to_string(kStepMs / 1000) + " s";
            fix = "the server accepted TLS but does not answer MQTT: check the hub or edgeHub";
        }
        c.report.line(Verdict::Fail, "connect", detail, fix);
        skip_mqtt(c.report, "subscribe", "needs connect");
        link.close("check done");
        return;
    }
    c.report.line(Verdict::Ok, "connect",
                  "CONNACK 0 as " + who + " with a fresh SAS token (valid " +
                      std::to_string(cfg.sas_ttl) + " s)" +
                      (probe.resumed ? ", session resumed" : ", new session"));

    // The agent's subscriptions (HubConnection::on_connected).
    std::array<char, 512> input_filter{};
    BufWriter inw(input_filter);
    std::array<mqtt::Subscription, 4> subs{};
    std::size_t n = 0;
    if (cfg.source == SourceType::ModuleInput)
    {
        append_input_filter(id, cfg.input, inw);
        subs.at(n++) = {inw.view(), 1};
    }
    subs.at(n++) = {kTwinResponseFilter, 0};
    subs.at(n++) = {kTwinDesiredFilter, 0};
    subs.at(n++) = {kMethodsFilter, 0};
    std::uint16_t packet_id = 0;
    if (!inw.ok() || !link.session().subscribe(std::span(subs.data(), n), packet_id))
    {
        c.report.line(Verdict::Fail, "subscribe", "SUBSCRIBE does not fit the send buffer",
                      "use shorter identities or input names");
        skip_mqtt(c.report, "twin", "needs subscribe");
        link.close("check done");
        return;
    }
    link.flush(port::monotonic_ms());
    if (!pump(c, link, probe, [&] { return probe.subscribed; }))
    {
        c.report.line(Verdict::Fail, "subscribe",
                      probe.down ? "no SUBACK: " + probe.down_why
                                 : "no SUBACK within " + std::to_string(kStepMs / 1000) + " s",
                      "check the server's logs");
        skip_mqtt(c.report, "twin", "needs subscribe");
        link.close("check done");
        return;
    }
    std::string refused;
    std::string granted;
    for (std::size_t i = 0; i < n && i < probe.granted.size(); ++i)
    {
        const std::uint8_t g = probe.granted.at(i);
        if (g == 0x80)
            refused.append(refused.empty() ? "" : ", ").append(subs.at(i).filter);
        granted.append(granted.empty() ? "" : ",").append(g == 0x80 ? "x" : std::to_string(g));
    }
    if (!refused.empty() || probe.granted.size() != n)
    {
        c.report.line(Verdict::Fail, "subscribe",
                      "refused (SUBACK 0x80): " +
                          (refused.empty() ? std::string("wrong number of return codes") : refused),
                      "the identity may not use these topics: for module inputs, check the "
                      "edgeHub routes and that the identity is a module of this edge device");
        skip_mqtt(c.report, "twin", "needs subscribe");
        link.close("check done");
        return;
    }
    c.report.line(Verdict::Ok, "subscribe",
                  std::to_string(n) + " filters granted (QoS " + granted + ")");

    // A twin GET, as the agent sends after each connect (TwinSync).
    probe.twin_rid = "check" + std::to_string(port::random_u64() % 1000000000U);
    std::array<char, 128> topic{};
    BufWriter tw(topic);
    append_twin_get_topic(probe.twin_rid, tw);
    if (!tw.ok() || !link.session().publish(tw.view(), "", 0, 0))
    {
        c.report.line(Verdict::Fail, "twin", "cannot queue the twin GET", "check the link");
        link.close("check done");
        return;
    }
    link.flush(port::monotonic_ms());
    if (!pump(c, link, probe, [&] { return probe.twin_answered; }))
    {
        c.report.line(Verdict::Fail, "twin",
                      probe.down ? "no answer to the twin GET: " + probe.down_why
                                 : "no answer to the twin GET within " +
                                       std::to_string(kStepMs / 1000) + " s",
                      "the hub does not answer twin requests for this identity: check its logs");
        link.close("check done");
        return;
    }
    if (probe.twin_status != 200)
        c.report.line(Verdict::Fail, "twin",
                      "twin GET answered with status " + std::to_string(probe.twin_status),
                      "the hub refused the twin request (429: throttled; 404: unknown identity)");
    else
        c.report.line(Verdict::Ok, "twin",
                      "status 200 (" + std::to_string(probe.twin_bytes) + " bytes)");
    link.close("check done");
}

// ---- IoT Edge workload API ----

// One request to the workload API, driven on the check's loop within the step's bound.
bool workload_request(Context& c,
                      port::WorkloadClient& client,
                      std::string_view method,
                      std::string_view target,
                      std::string_view body,
                      HttpResponse& reply,
                      std::string& err)
{
    constexpr std::size_t kMaxBody = port::WorkloadClient::kMaxResponse;
    auto complete = [](std::string_view raw)
    {
        HttpResponse r;
        return parse_http_response(raw, false, kMaxBody, r) != HttpParse::Incomplete;
    };
    const std::int64_t until = c.step_end();
    client.start(method, target, body, complete, port::monotonic_ms());
    std::array<port::EventLoop::Ready, 4> ready{};
    std::size_t n = 0;
    while (client.progress(port::monotonic_ms()) == port::WorkloadClient::Status::InProgress)
    {
        if (port::monotonic_ms() >= until || !c.wait(ready, until, n))
        {
            client.cancel();
            err = c.interrupted ? "interrupted" : "no answer in time";
            return false;
        }
    }
    if (client.status() == port::WorkloadClient::Status::Failed)
    {
        err = client.error();
        return false;
    }
    const HttpParse p = parse_http_response(client.received(), true, kMaxBody, reply);
    client.cancel();
    if (p != HttpParse::Complete)
    {
        err = p == HttpParse::TooLarge ? "reply too large" : "malformed reply: " + reply.error;
        return false;
    }
    if (reply.status != 200)
    {
        std::string message;
        err = "HTTP " + std::to_string(reply.status) +
              (json_string_member(reply.body, "message", message) ? ": " + message.substr(0, 200)
                                                                  : "");
        return false;
    }
    return true;
}

void check_workload(Context& c)
{
    const WorkloadSettings& ws = c.opt.workload;
    const std::string fix = "is the module running under the IoT Edge runtime, with "
                            "IOTEDGE_WORKLOADURI pointing at its workload socket?";
    port::WorkloadClient client(c.loop, kKeyWorkload, ws.socket_path);
    HttpResponse reply;
    std::string err;
    std::array<char, 512> target_buf{};
    BufWriter target(target_buf);
    append_trust_bundle_target(ws.api_version, target);
    std::string pem;
    if (!workload_request(c, client, "GET", target.view(), {}, reply, err) ||
        !json_string_member(reply.body, "certificate", pem))
    {
        c.report.line(Verdict::Fail, "workload",
                      ws.socket_path + ": trust bundle: " +
                          (err.empty() ? "no \"certificate\" in the reply" : err),
                      fix);
        return;
    }
    const std::size_t certs = count_pem_certificates(pem);
    // A test signature of the string the agent will have signed, as at connect.
    std::array<char, 512> resource_buf{};
    BufWriter resource(resource_buf);
    append_sas_resource(c.opt.identity.host_name, c.opt.identity.device_id,
                        c.opt.identity.module_id, resource);
    const auto expiry = static_cast<std::uint64_t>(port::wall_time_s() + 60);
    std::array<char, 1024> body_buf{};
    BufWriter body(body_buf);
    target.clear();
    append_sign_target(ws.module_id, ws.generation_id, ws.api_version, target);
    std::string digest;
    std::array<char, 1024> token_buf{};
    BufWriter token(token_buf);
    if (!append_sign_body(resource.view(), expiry, body) ||
        !workload_request(c, client, "POST", target.view(), body.view(), reply, err) ||
        !json_string_member(reply.body, "digest", digest) ||
        !append_sas_token_from_digest(resource.view(), digest, expiry, token))
    {
        c.report.line(Verdict::Fail, "workload",
                      ws.socket_path + ": trust bundle with " + std::to_string(certs) +
                          " certificate(s), but signing failed: " +
                          (err.empty() ? "no valid \"digest\" in the reply" : err),
                      fix);
        return;
    }
    explicit_bzero(token_buf.data(), token_buf.size());
    c.report.line(certs == 0 ? Verdict::Fail : Verdict::Ok, "workload",
                  ws.socket_path + ": trust bundle with " + std::to_string(certs) +
                      " certificate(s); a token signed for " + std::string(ws.module_id) +
                      " (generation " + ws.generation_id + ")",
                  certs == 0 ? "the edge runtime's trust bundle holds no certificate" : "");
}

void check_network(Context& c)
{
    if (c.host.empty())
    {
        for (const char* name : {"dns", "tcp", "tls", "connect", "subscribe", "twin"})
            c.report.line(Verdict::Warn, name, "not supported for this identity yet");
        return;
    }
    if (!c.loop_open)
    {
        for (const char* name : {"dns", "tcp", "tls", "connect", "subscribe", "twin"})
            c.report.line(Verdict::Fail, name, "cannot set up the event loop");
        return;
    }
    if (check_dns_tcp(c) == Verdict::Fail)
    {
        c.report.line(Verdict::Skip, "tls", "needs tcp");
        skip_mqtt(c.report, "connect", "needs tls");
        return;
    }
    // An IoT Edge identity gets its trust anchors and its tokens from the workload API: that is
    // checked instead; the TLS and MQTT steps are the connection string's.
    if (c.opt.workload.enabled())
    {
        check_workload(c);
        for (const char* name : {"tls", "connect", "subscribe", "twin"})
            c.report.line(Verdict::Warn, name,
                          "not checked for an IoT Edge identity (see the workload check)");
        return;
    }
    if (c.opt.identity.shared_access_key.empty())
    {
        for (const char* name : {"tls", "connect", "subscribe", "twin"})
            c.report.line(Verdict::Warn, name, "not supported for this identity yet");
        return;
    }
    if (check_tls(c) == Verdict::Fail)
    {
        skip_mqtt(c.report, "connect", "needs tls");
        return;
    }
    check_mqtt(c);
}

// ---- reboot path unit ----

void check_reboot(Context& c)
{
    const Config& cfg = c.opt.config;
    if (cfg.reboot_mode != RebootMode::RequestFile)
    {
        c.report.line(Verdict::Ok, "reboot",
                      std::string("[reboot] mode = ") + to_string(cfg.reboot_mode) +
                          ": no path unit needed");
        return;
    }
    const std::int64_t left = std::max<std::int64_t>(c.step_end() - port::monotonic_ms(), 1);
    int code = 0;
    std::string output;
    const port::RunStatus st =
        port::run_command({"systemctl", "is-active", kRebootPathUnit}, left, code, &output);
    // is-active prints the unit's state ("active", "inactive", "failed", ...) as its first line.
    const std::string state = output.substr(0, output.find_first_of("\r\n"));
    const std::string fix = std::string("systemctl enable --now ") + kRebootPathUnit +
                            " (installed with the package), or [reboot] mode = disabled";
    switch (st)
    {
    case port::RunStatus::NotFound:
        c.report.line(Verdict::Warn, "reboot",
                      "systemctl not found: not under systemd, so nothing acts on the reboot "
                      "request file",
                      "run under systemd with " + std::string(kRebootPathUnit) +
                          ", or [reboot] mode = disabled");
        return;
    case port::RunStatus::TimedOut:
        c.report.line(Verdict::Warn, "reboot", "systemctl is-active did not answer in time",
                      "check systemd (systemctl status " + std::string(kRebootPathUnit) + ")");
        return;
    case port::RunStatus::Signaled:
    case port::RunStatus::Failed:
        c.report.line(Verdict::Warn, "reboot",
                      "cannot run systemctl (" + std::string(port::error_text(code)) + ")",
                      "check systemd (systemctl status " + std::string(kRebootPathUnit) + ")");
        return;
    case port::RunStatus::Exited:
        break;
    }
    if (code == 0)
    {
        c.report.line(Verdict::Ok, "reboot", std::string(kRebootPathUnit) + " is active");
        return;
    }
    const bool is_state = !state.empty() && state.find(' ') == std::string::npos;
    if (is_state)
    {
        c.report.line(Verdict::Fail, "reboot",
                      std::string(kRebootPathUnit) + " is " + state +
                          ": a rebootDevice request would never reboot",
                      fix);
        return;
    }
    // No state word: systemd itself is not reachable (e.g. a container without systemd).
    c.report.line(Verdict::Warn, "reboot",
                  "systemd not reachable (systemctl: " +
                      (state.empty() ? "exit " + std::to_string(code) : state) + ")",
                  "run under systemd with " + std::string(kRebootPathUnit) +
                      ", or [reboot] mode = disabled");
}

// ---- state dir ----

void check_state(Context& c)
{
    const Config& cfg = c.opt.config;
    const std::string& dir = cfg.state_dir;
    const std::string fix_access = "make " + dir +
                                   " a directory the agent's user can write (systemd: "
                                   "StateDirectory=gateway-agent), on a writable file system";
    std::vector<std::string> names;
    int err_no = 0;
    if (!port::list_dir(dir, "", "", names, err_no))
    {
        if (err_no == ENOENT)
            c.report.line(Verdict::Warn, "state",
                          dir + " does not exist yet (created at start: systemd's "
                                "StateDirectory= or the agent)",
                          "start the agent once (systemctl start gateway-agent), then check again");
        else
            c.report.line(Verdict::Fail, "state",
                          dir + ": " + std::string(port::error_text(err_no)), fix_access);
        return;
    }
    std::string err;
    const port::DirStatus ds = port::ensure_writable_dir(dir, err);
    if (ds != port::DirStatus::Writable)
    {
        c.report.line(Verdict::Fail, "state", err,
                      ds == port::DirStatus::NoSpace
                          ? "free space on (or remount read-write) the file system of " + dir
                          : fix_access);
        return;
    }
    std::uint64_t avail = 0;
    if (!port::available_bytes(dir, avail, err_no))
    {
        c.report.line(Verdict::Warn, "state",
                      dir +
                          " writable; free space unknown: " + std::string(port::error_text(err_no)),
                      "df " + dir);
        return;
    }
    const std::string as_root = port::running_as_root() ? " (checked as root)" : "";
    if (avail < kMinFreeBytes || avail < cfg.queue_max_bytes)
    {
        c.report.line(Verdict::Warn, "state",
                      dir + " writable" + as_root + ", " + mib_text(avail) + " free: below " +
                          (avail < kMinFreeBytes
                               ? mib_text(kMinFreeBytes)
                               : "[queue] max_bytes (" + mib_text(cfg.queue_max_bytes) + ")"),
                      "free space on that file system, or lower [queue] max_bytes");
        return;
    }
    c.report.line(Verdict::Ok, "state",
                  dir + " writable" + as_root + ", " + mib_text(avail) + " free");
}

} // namespace

int run_check(const AgentOptions& opt, std::FILE* out)
{
    Report report(out);
    Context c(opt, report, kTotalMs);
    std::string err;
    c.loop_open = c.loop.open(kTickMs, err);

    (void)check_clock(c);
    check_network(c);
    check_reboot(c);
    check_state(c);
    report.summary();
    return report.count(Verdict::Fail) > 0 || c.interrupted ? kCheckFailedExit : 0;
}

} // namespace ga
