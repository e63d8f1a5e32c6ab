// SPDX-License-Identifier: MIT
#include "sources.h"

#include "buf_writer.h"
#include "port.h"

#include <MQTTAsync.h>
#include <arpa/inet.h>
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

bool split_host_port(std::string_view hp, std::string& host, std::uint16_t& port)
{
    const auto colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    unsigned value = 0;
    const std::string_view p = hp.substr(colon + 1);
    const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || ptr != p.data() + p.size() || value == 0 || value > 65535)
        return false;
    host = std::string(hp.substr(0, colon));
    port = static_cast<std::uint16_t>(value);
    return true;
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
    if (!split_host_port(bind, host, port) || inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
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
    buf_ = std::make_unique<char[]>(ScanLimits{}.max_bytes + 1);
    return true;
}

void UdpSource::drain(InputFilter& filter)
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
        (void)filter.decide(std::string_view(buf_.get(), len < cap ? len : cap), true);
    }
    filter.commit();
}

MqttSource::~MqttSource()
{
    if (client_ != nullptr)
    {
        MQTTAsync handle = client_;
        MQTTAsync_destroy(&handle);
    }
}

bool MqttSource::start(const std::string& broker,
                       const std::string& topic,
                       const std::string& client_id,
                       std::string& err)
{
    topic_ = topic;
    const std::string uri = "tcp://" + broker;
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    copts.MQTTVersion = MQTTVERSION_3_1_1;
    MQTTAsync handle = nullptr;
    if (MQTTAsync_createWithOptions(&handle, uri.c_str(), client_id.c_str(),
                                    MQTTCLIENT_PERSISTENCE_NONE, nullptr,
                                    &copts) != MQTTASYNC_SUCCESS)
    {
        err = "mqtt source: cannot create client for " + broker;
        return false;
    }
    client_ = handle;
    (void)MQTTAsync_setCallbacks(
        handle, this, &MqttSource::on_lost,
        reinterpret_cast<MQTTAsync_messageArrived*>(&MqttSource::on_message), nullptr);
    (void)MQTTAsync_setConnected(handle, this, &MqttSource::on_connected);
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    opts.keepAliveInterval = 60;
    opts.cleansession = 0;       // the local broker keeps QoS 1 readings while we restart
    opts.automaticReconnect = 1; // a local broker: paho's own retry (1 s .. 60 s) is enough here
    opts.minRetryInterval = 1;
    opts.maxRetryInterval = 60;
    if (MQTTAsync_connect(handle, &opts) != MQTTASYNC_SUCCESS)
    {
        err = "mqtt source: cannot start connecting to " + broker;
        return false;
    }
    return true;
}

void MqttSource::on_connected(void* ctx, char* /*cause*/)
{
    auto* self = static_cast<MqttSource*>(ctx);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    const int rc = MQTTAsync_subscribe(self->client_, self->topic_.c_str(), 1, &ro);
    port::log(rc == MQTTASYNC_SUCCESS ? port::Level::Info : port::Level::Err,
              "mqtt source: connected, subscribing to %s%s", self->topic_.c_str(),
              rc == MQTTASYNC_SUCCESS ? "" : " failed");
}

// `char* cause`, not const: paho's MQTTAsync_connectionLost type fixes the signature.
void MqttSource::on_lost(void* /*ctx*/, char* cause) // NOLINT(readability-non-const-parameter)
{
    port::log(port::Level::Warning, "mqtt source: connection lost (%s); retrying",
              cause != nullptr ? cause : "no cause given");
}

int MqttSource::on_message(void* ctx, char* topic, int /*topic_len*/, void* message)
{
    auto* self = static_cast<MqttSource*>(ctx);
    auto* msg = static_cast<MQTTAsync_message*>(message);
    (void)self->filter_.decide(std::string_view(static_cast<const char*>(msg->payload),
                                                static_cast<std::size_t>(msg->payloadlen)));
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

} // namespace ga
