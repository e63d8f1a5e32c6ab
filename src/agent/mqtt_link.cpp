// SPDX-License-Identifier: MIT
#include "mqtt_link.h"

#include "port.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <strings.h>

namespace ga
{
namespace
{
constexpr std::size_t kBurstInputs = 256;
// Bytes asked of the transport per read: frames are handled between reads, so the receive
// buffer's pages beyond a partial frame plus this much are never touched (resident memory).
constexpr std::size_t kReadChunk = 16384;

std::size_t copy_into(char* dst, std::size_t cap, std::string_view src)
{
    const std::size_t n = std::min(cap, src.size());
    if (n != 0) // an empty view may carry a null pointer
        std::memcpy(dst, src.data(), n);
    return n;
}
} // namespace

MqttLink::MqttLink(const Buffers& buffers,
                   const mqtt::SessionConfig& cfg,
                   port::EventLoop& loop,
                   std::uint64_t key,
                   Handler& handler)
    : loop_(loop), key_(key), handler_(handler),
      rx_(std::make_unique_for_overwrite<std::uint8_t[]>(buffers.rx_bytes)),
      tx_(std::make_unique_for_overwrite<std::uint8_t[]>(buffers.tx_bytes)),
      session_(std::make_unique<mqtt::Session>(
          std::span(rx_.get(), buffers.rx_bytes), std::span(tx_.get(), buffers.tx_bytes), cfg)),
      keepalive_s_(cfg.keepalive_s)
{
}

MqttLink::~MqttLink()
{
    explicit_bzero(password_, sizeof password_);
    if (watched_fd_ >= 0)
        loop_.unwatch(watched_fd_);
}

bool MqttLink::configure(const port::TransportConfig& cfg, std::string& err)
{
    return transport_.configure(cfg, err);
}

void MqttLink::connect(std::string_view client_id,
                       std::string_view username,
                       std::string_view password,
                       bool clean_session,
                       std::int64_t now_ms)
{
    if (phase_ != Phase::Idle)
        close("reconnecting");
    client_id_len_ = copy_into(client_id_, sizeof client_id_, client_id);
    username_len_ = copy_into(username_, sizeof username_, username);
    password_len_ = copy_into(password_, sizeof password_, password);
    clean_ = clean_session;
    failure_ = nullptr;
    session_->close();
    phase_ = Phase::Transport;
    (void)transport_.start(now_ms);
    tick(now_ms);
}

void MqttLink::tick(std::int64_t now_ms)
{
    if (phase_ == Phase::Idle)
        return;
    if (phase_ == Phase::Transport)
    {
        const auto st = transport_.progress(now_ms);
        if (st == port::Transport::Status::Failed || st == port::Transport::Status::Closed)
        {
            down(transport_.error().c_str(), -1, false);
            return;
        }
        if (st == port::Transport::Status::Open)
        {
            mqtt::ConnectParams p;
            p.client_id = {client_id_, client_id_len_};
            p.username = {username_, username_len_};
            p.password = {password_, password_len_};
            p.keepalive_s = keepalive_s_;
            p.clean_session = clean_;
            const bool ok = session_->begin(p, now_ms);
            explicit_bzero(password_, sizeof password_);
            password_len_ = 0;
            if (!ok)
            {
                down("CONNECT does not fit the send buffer", -1, false);
                return;
            }
            phase_ = Phase::Mqtt;
            write_out(now_ms);
            if (phase_ == Phase::Idle)
                return;
        }
        update_watch();
        return;
    }
    // Keep-alive and timeouts come out of poll() as events.
    if (!dispatch(now_ms))
        return;
    write_out(now_ms);
}

void MqttLink::on_ready(bool readable, bool writable, std::int64_t now_ms)
{
    if (phase_ == Phase::Transport)
    {
        tick(now_ms);
        return;
    }
    if (phase_ == Phase::Idle)
        return;
    if (writable)
        write_out(now_ms);
    if (readable && phase_ != Phase::Idle)
        read_all(now_ms);
    if (phase_ != Phase::Idle)
        write_out(now_ms);
}

void MqttLink::read_all(std::int64_t now_ms)
{
    // Read everything the socket (and TLS) holds, handling frames as the buffer fills, then let
    // the owner commit once for the whole burst before any acknowledgement is written.
    for (int rounds = 0; rounds < 1024; ++rounds)
    {
        std::span<std::uint8_t> space = session_->rx_space();
        space = space.first(std::min(space.size(), kReadChunk));
        long n = 0;
        if (!space.empty())
        {
            n = transport_.read(space);
            if (n < 0)
            {
                if (!dispatch(now_ms)) // frames already received are still handled
                    return;
                handler_.on_batch_end();
                down(transport_.error().c_str(), -1, false);
                return;
            }
            if (n > 0)
                session_->rx_received(static_cast<std::size_t>(n), now_ms);
        }
        if (!dispatch(now_ms))
            return;
        if (n == 0 && !space.empty())
            break;
    }
    in_handler_ = true;
    handler_.on_batch_end();
    in_handler_ = false;
    if (failure_ != nullptr)
        down(failure_, -1, false);
}

bool MqttLink::dispatch(std::int64_t now_ms)
{
    for (;;)
    {
        const mqtt::Event ev = session_->poll(now_ms);
        in_handler_ = true;
        switch (ev.kind)
        {
        case mqtt::EventKind::None:
            in_handler_ = false;
            return true;
        case mqtt::EventKind::Connected:
            phase_ = Phase::Up;
            handler_.on_connected(ev.connack.session_present);
            break;
        case mqtt::EventKind::Refused:
            in_handler_ = false;
            down("connection refused", ev.connack.return_code, false);
            return false;
        case mqtt::EventKind::Message:
            handler_.on_message(ev.message);
            // A long burst is committed in parts, so the inputs awaiting their acknowledgement
            // stay far below the session's bound.
            if (session_->inbound_pending() >= kBurstInputs)
                handler_.on_batch_end();
            break;
        case mqtt::EventKind::PublishAcked:
            handler_.on_acked(ev.tag);
            break;
        case mqtt::EventKind::Subscribed:
            handler_.on_subscribed(ev.granted);
            break;
        case mqtt::EventKind::Error:
            in_handler_ = false;
            (void)std::snprintf(why_, sizeof why_, "%s", ev.error != nullptr ? ev.error : "error");
            down(why_, -1, false);
            return false;
        }
        in_handler_ = false;
        if (failure_ != nullptr)
        {
            down(failure_, -1, false);
            return false;
        }
        if (phase_ == Phase::Idle) // the handler closed the link
            return false;
    }
}

void MqttLink::flush(std::int64_t now_ms)
{
    if (phase_ == Phase::Mqtt || phase_ == Phase::Up)
        write_out(now_ms);
}

void MqttLink::write_out(std::int64_t now_ms)
{
    for (;;)
    {
        const auto out = session_->pending_output();
        if (out.empty())
            break;
        const long n = transport_.write(out);
        if (n < 0)
        {
            down(transport_.error().c_str(), -1, false);
            return;
        }
        if (n == 0)
            break;
        session_->output_written(static_cast<std::size_t>(n), now_ms);
    }
    update_watch();
}

void MqttLink::update_watch()
{
    const int fd = transport_.fd();
    const bool want_write = transport_.wants_write() || !session_->pending_output().empty();
    if (fd != watched_fd_)
    {
        if (watched_fd_ >= 0)
            loop_.unwatch(watched_fd_);
        watched_fd_ = -1;
        if (fd >= 0 && loop_.watch(fd, want_write, key_))
        {
            watched_fd_ = fd;
            watched_write_ = want_write;
        }
        return;
    }
    if (fd >= 0 && want_write != watched_write_ && loop_.watch(fd, want_write, key_))
        watched_write_ = want_write;
}

void MqttLink::close(const char* why)
{
    if (phase_ == Phase::Idle)
        return;
    if (phase_ == Phase::Up && session_->disconnect())
    {
        // Best effort: a DISCONNECT tells the broker the end is clean.
        const auto out = session_->pending_output();
        (void)transport_.write(out);
    }
    down(why, -1, true);
}

void MqttLink::fail(const char* why)
{
    if (in_handler_)
    {
        failure_ = why;
        return;
    }
    down(why, -1, false);
}

void MqttLink::down(const char* why, int connack, bool requested)
{
    if (phase_ == Phase::Idle)
        return;
    if (why != why_)
        (void)std::snprintf(why_, sizeof why_, "%s", why);
    phase_ = Phase::Idle;
    failure_ = nullptr;
    if (watched_fd_ >= 0)
        loop_.unwatch(watched_fd_);
    watched_fd_ = -1;
    transport_.close();
    session_->close();
    explicit_bzero(password_, sizeof password_);
    password_len_ = 0;
    handler_.on_down(why_, connack, requested);
}

} // namespace ga
