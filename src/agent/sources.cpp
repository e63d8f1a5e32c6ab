// SPDX-License-Identifier: MIT
#include "sources.h"

#include "host_port.h"

#include "buf_writer.h"
#include "port.h"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ga
{
namespace
{
void append_fixed(BufWriter& w, double v, int decimals)
{
    char tmp[32];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v, std::chars_format::fixed, decimals);
    w.append(std::string_view(tmp, static_cast<std::size_t>(end - tmp)));
}
} // namespace

double SimulatedSensor::uniform(double lo, double hi)
{
    // xorshift64*: small, deterministic, good enough for demo readings.
    state_ ^= state_ >> 12U;
    state_ ^= state_ << 25U;
    state_ ^= state_ >> 27U;
    const std::uint64_t r = state_ * 2685821657736338717ULL;
    return lo + (hi - lo) * static_cast<double>(r >> 11U) / 9007199254740992.0;
}

std::size_t SimulatedSensor::next(std::span<char> out, std::int64_t epoch_s)
{
    machine_ += machine_ < 100.0 ? uniform(-0.25, 1.25) : uniform(-0.5, 0.5);
    const double pressure = 1.0 + (machine_ - 21.0) * 9.0 / 79.0;
    const double ambient = 21.0 + uniform(-0.5, 0.5);
    const int humidity = 24 + static_cast<int>(uniform(0.0, 3.0));
    char when[32];
    port::format_iso8601_utc(epoch_s, when, sizeof when);
    BufWriter w(out);
    w.append(R"({"machine":{"temperature":)");
    append_fixed(w, machine_, 4);
    w.append(R"(,"pressure":)");
    append_fixed(w, pressure, 4);
    w.append(R"(},"ambient":{"temperature":)");
    append_fixed(w, ambient, 4);
    w.append(R"(,"humidity":)").append_int(humidity);
    w.append(R"(},"timeCreated":")").append(when).append(R"("})");
    return w.ok() ? w.size() : 0;
}

UdpSource::~UdpSource()
{
    if (fd_ >= 0)
        ::close(fd_);
}

bool UdpSource::open(const std::string& bind, std::string& err)
{
    std::string host;
    std::uint16_t port = 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (!split_host_port(bind, 0, host, port) ||
        inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    {
        err = "udp source: bind '" + bind + "' is not an IPv4 address:port";
        return false;
    }
    addr.sin_port = htons(port);
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    {
        err = "udp source: cannot bind " + bind + ": " + std::strerror(errno);
        return false;
    }
    // Room for bursts while an alert is being fsynced (the kernel caps it at net.core.rmem_max),
    // and the kernel's drop count delivered with each datagram.
    const int rcvbuf = 1 << 20;
    const int on = 1;
    (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on) != 0)
        port::log(port::Level::Warning,
                  "udp source: the kernel's drop count is unavailable here (%s); sourceDropped "
                  "stays 0",
                  std::strerror(errno));
    buf_ = std::make_unique_for_overwrite<char[]>(ScanLimits{}.max_bytes + 1);
    return true;
}

void UdpSource::drain(InputPipeline& pipeline, std::int64_t wall_s)
{
    // A UDP sender gets no acknowledgement, so a batch of alerts shares one journal sync (made
    // before any of them is sent). The batch is bounded to keep the loop responsive.
    constexpr int kBatch = 256;
    const std::size_t cap = ScanLimits{}.max_bytes + 1;
    for (int k = 0; k < kBatch; ++k)
    {
        // MSG_TRUNC returns the datagram's real length, so an oversized one is seen as too large
        // rather than as truncated JSON.
        iovec iov{buf_.get(), cap};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint32_t))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_, &msg, MSG_TRUNC);
        if (n < 0)
            break;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
        {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
                continue;
            std::uint32_t total = 0; // the kernel's running count for this socket
            std::memcpy(&total, CMSG_DATA(c), sizeof total);
            if (total > dropped_)
            {
                const std::int64_t now = port::monotonic_ms();
                if (now >= next_drop_log_ms_)
                {
                    next_drop_log_ms_ = now + 60000;
                    port::log(port::Level::Warning,
                              "udp source: %llu datagram(s) dropped by the kernel so far (socket "
                              "buffer full: the sender bursts faster than they are handled)",
                              static_cast<unsigned long long>(total));
                }
                dropped_ = total;
            }
        }
        const auto len = static_cast<std::size_t>(n);
        (void)pipeline.offer(std::string_view(buf_.get(), len < cap ? len : cap), wall_s, false);
    }
    (void)pipeline.commit();
}

MqttSource::MqttSource(port::EventLoop& loop,
                       std::uint64_t key,
                       InputPipeline& pipeline,
                       AlertLog& store)
{
    mqtt::SessionConfig sc;
    sc.keepalive_s = 60;
    sc.ping_timeout_ms = 30000;
    sc.window = 1; // we only receive
    sc.max_inbound_pending = mqtt::Session::kMaxWindow;
    sc.max_packet = ScanLimits{}.max_bytes + 4096;
    link_ =
        std::make_unique<MqttLink>(MqttLink::Buffers{sc.max_packet, 16384}, sc, loop, key, *this);
    inputs_ = std::make_unique<AckedInputs>(pipeline, store, link_->session(), "mqtt source");
}

bool MqttSource::start(const std::string& broker,
                       const std::string& topic,
                       const std::string& client_id,
                       std::string& err)
{
    topic_ = topic;
    client_id_ = client_id;
    broker_ = broker;
    port::TransportConfig tc;
    if (!split_host_port(broker, 1, tc.host, tc.port))
    {
        err = "mqtt source: broker '" + broker + "' is not host:port";
        return false;
    }
    tc.tls = false;
    if (!link_->configure(tc, err))
    {
        err = "mqtt source: " + err;
        return false;
    }
    // The local broker keeps QoS 1 readings for our persistent session while we restart.
    link_->connect(client_id_, {}, {}, false, port::monotonic_ms());
    return true;
}

void MqttSource::on_ready(bool readable, bool writable, std::int64_t now_ms)
{
    link_->on_ready(readable, writable, now_ms);
}

void MqttSource::tick(std::int64_t now_ms)
{
    if (link_->idle() && now_ms >= next_connect_ms_)
        link_->connect(client_id_, {}, {}, false, now_ms);
    link_->tick(now_ms);
    if (link_->up() && inputs_->should_refetch(now_ms))
    {
        refetch_ = true;
        link_->close("fetching inputs left with the broker");
        return;
    }
    inputs_->send_acks();
    link_->flush(now_ms);
}

void MqttSource::retry(std::int64_t now_ms)
{
    inputs_->retry();
    link_->flush(now_ms);
}

void MqttSource::on_connected(bool /*session_present*/)
{
    const std::array<mqtt::Subscription, 1> subs{mqtt::Subscription{topic_, 1}};
    std::uint16_t id = 0;
    const bool ok = link_->session().subscribe(subs, id);
    port::log(ok ? port::Level::Info : port::Level::Err,
              "mqtt source: connected to %s, subscribing to %s%s", broker_.c_str(), topic_.c_str(),
              ok ? "" : " failed");
    if (!ok)
        link_->fail("SUBSCRIBE does not fit the send buffer");
    up_since_ms_ = port::monotonic_ms();
}

void MqttSource::on_subscribed(std::span<const std::uint8_t> granted)
{
    if (!granted.empty() && granted[0] == 0x80)
    {
        port::log(port::Level::Err, "mqtt source: subscription to %s refused by the broker",
                  topic_.c_str());
        link_->fail("subscription refused");
    }
}

void MqttSource::on_message(const mqtt::Publish& m)
{
    inputs_->on_input(m, {});
}

void MqttSource::on_batch_end()
{
    inputs_->burst_end();
}

void MqttSource::on_down(const char* why, int connack, bool requested)
{
    inputs_->reset();
    if (requested)
    {
        if (refetch_) // planned: the broker delivers the inputs left with it again
            next_connect_ms_ = port::monotonic_ms();
        refetch_ = false;
        return;
    }
    const std::int64_t now = port::monotonic_ms();
    if (up_since_ms_ != 0 && now - up_since_ms_ >= 60000)
        attempt_ = 0;
    up_since_ms_ = 0;
    const int shift = std::min(attempt_++, 6);
    const std::int64_t delay = std::min<std::int64_t>(1000LL << shift, 60000);
    next_connect_ms_ = now + delay;
    if (connack >= 0)
        port::log(port::Level::Warning,
                  "mqtt source: %s refused the connection (CONNACK %d); retrying in %lld ms",
                  broker_.c_str(), connack, static_cast<long long>(delay));
    else
        port::log(port::Level::Warning,
                  "mqtt source: connection to %s lost (%s); retrying in %lld ms", broker_.c_str(),
                  why, static_cast<long long>(delay));
}

} // namespace ga
