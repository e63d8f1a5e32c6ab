// SPDX-License-Identifier: MIT
// The workload API client on Linux: a non-blocking AF_UNIX stream socket, one request per
// connection (Connection: close), read until the reply is whole or the server closes.
#include "workload_api.h"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ga::port
{
namespace
{
constexpr std::int64_t kRetryPauseMs = 200;

std::string errno_text(const char* what, int err)
{
    return std::string(what) + ": " + std::strerror(err);
}
} // namespace

std::optional<std::string> environment_variable(std::string_view name)
{
    const std::string n(name);
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start-up, before any thread exists
    const char* v = std::getenv(n.c_str());
    if (v == nullptr)
        return std::nullopt;
    return std::string(v);
}

WorkloadClient::WorkloadClient(EventLoop& loop, std::uint64_t key, std::string socket_path)
    : loop_(loop), key_(key), path_(std::move(socket_path))
{
}

WorkloadClient::~WorkloadClient()
{
    close_socket();
}

void WorkloadClient::start(std::string_view method,
                           std::string_view target,
                           std::string_view body,
                           CompleteFn complete,
                           std::int64_t now_ms)
{
    cancel();
    request_.clear();
    request_.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    // The runtime's HTTP server wants a Host header; it names nothing on a Unix socket.
    request_.append("Host: localhost\r\nConnection: close\r\n");
    if (!body.empty())
        request_.append("Content-Type: application/json\r\n");
    request_.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
    request_.append(body);
    complete_ = std::move(complete);
    attempt_ = 0;
    error_.clear();
    if (request_.size() > kMaxRequest)
    {
        fail("request larger than " + std::to_string(kMaxRequest) + " bytes");
        return;
    }
    status_ = Status::InProgress;
    begin_attempt(now_ms);
}

void WorkloadClient::cancel()
{
    close_socket();
    status_ = Status::Idle;
    rx_.clear();
}

void WorkloadClient::close_socket()
{
    if (fd_ >= 0)
    {
        loop_.unwatch(fd_);
        ::close(fd_);
        fd_ = -1;
    }
}

void WorkloadClient::watch(bool writable)
{
    if (!loop_.watch(fd_, writable, key_))
        fail(errno_text("cannot watch the workload socket", errno));
}

void WorkloadClient::fail(const std::string& why)
{
    close_socket();
    error_ = why;
    status_ = Status::Failed;
}

void WorkloadClient::retry_or_fail(const std::string& why, std::int64_t now_ms)
{
    close_socket();
    if (attempt_ >= kMaxAttempts)
    {
        fail(why + " (" + std::to_string(attempt_) + " attempts)");
        return;
    }
    phase_ = Phase::Pause;
    resume_ms_ = now_ms + kRetryPauseMs * attempt_;
}

void WorkloadClient::begin_attempt(std::int64_t now_ms)
{
    ++attempt_;
    rx_.clear();
    sent_ = 0;
    deadline_ms_ = now_ms + kAttemptTimeoutMs;
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
    {
        fail(errno_text("workload socket", errno));
        return;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
    {
        fail("workload socket path too long");
        return;
    }
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    {
        const int e = errno;
        // A full listen backlog: the server is busy, like a connection closed without a reply.
        if (e == EAGAIN)
        {
            retry_or_fail("workload API busy (listen backlog full)", now_ms);
            return;
        }
        fail(errno_text(("cannot connect to " + path_).c_str(), e));
        return;
    }
    phase_ = Phase::Sending;
    watch(true);
}

WorkloadClient::Status WorkloadClient::progress(std::int64_t now_ms)
{
    if (status_ != Status::InProgress)
        return status_;
    if (phase_ == Phase::Pause)
    {
        if (now_ms >= resume_ms_)
            begin_attempt(now_ms);
        return status_;
    }
    if (now_ms >= deadline_ms_)
    {
        fail("no reply from the workload API within " + std::to_string(kAttemptTimeoutMs) + " ms");
        return status_;
    }
    if (phase_ == Phase::Sending)
    {
        while (sent_ < request_.size())
        {
            const ssize_t n = ::send(fd_, request_.data() + sent_, request_.size() - sent_,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0)
            {
                const int e = errno;
                if (e == EAGAIN || e == EINTR)
                    return status_;
                // Closed by the server before it read the request: no reply, retried.
                retry_or_fail(errno_text("workload API closed the connection", e), now_ms);
                return status_;
            }
            sent_ += static_cast<std::size_t>(n);
        }
        phase_ = Phase::Receiving;
        watch(false);
        if (status_ != Status::InProgress)
            return status_;
    }
    std::array<char, 4096> buf{};
    for (;;)
    {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0)
        {
            if (rx_.size() + static_cast<std::size_t>(n) > kMaxResponse)
            {
                fail("reply larger than " + std::to_string(kMaxResponse / 1024) + " KiB");
                return status_;
            }
            rx_.append(buf.data(), static_cast<std::size_t>(n));
            if (complete_ && complete_(rx_))
            {
                close_socket();
                status_ = Status::Done;
                return status_;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return status_;
        const int e = n < 0 ? errno : 0;
        if (rx_.empty())
        {
            // The runtime closes connections beyond its limit without a word: try again.
            retry_or_fail(e != 0
                              ? errno_text("workload API closed the connection without a reply", e)
                              : "workload API closed the connection without a reply",
                          now_ms);
            return status_;
        }
        if (e != 0)
        {
            fail(errno_text("workload API connection failed inside the reply", e));
            return status_;
        }
        close_socket();
        status_ = Status::Done; // end of the connection ends the reply; the parser judges it
        return status_;
    }
}

} // namespace ga::port
