// SPDX-License-Identifier: MIT
// A client for the IoT Edge workload API (docs/iot-edge.md): one HTTP/1.1 request at a time over
// the runtime's Unix socket, with Connection: close, bounded request and response sizes and a
// deadline. Non-blocking: driven by progress() when the loop reports `key` ready and on every
// tick, so it never holds the event loop. The edge runtime closes connections beyond its
// concurrency limit without a reply: those (and a full listen backlog) are retried a few times,
// a short pause apart. Parsing the reply is the caller's (src/core/http_response.h).
#pragma once

#include "event_loop.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ga::port
{

/// The process environment (the edge runtime's IOTEDGE_* variables): nullopt when unset.
[[nodiscard]] std::optional<std::string> environment_variable(std::string_view name);

class WorkloadClient
{
  public:
    static constexpr std::size_t kMaxRequest = std::size_t{8} * 1024U;
    static constexpr std::size_t kMaxResponse = std::size_t{64} * 1024U;
    static constexpr std::int64_t kAttemptTimeoutMs = 5000;
    static constexpr int kMaxAttempts = 3;

    /// `complete` says whether the bytes received so far are a whole reply (so a server that
    /// keeps the connection open is not waited for); the end of the connection always ends it.
    using CompleteFn = std::function<bool(std::string_view received)>;

    WorkloadClient(EventLoop& loop, std::uint64_t key, std::string socket_path);
    ~WorkloadClient();
    WorkloadClient(const WorkloadClient&) = delete;
    WorkloadClient& operator=(const WorkloadClient&) = delete;

    enum class Status : std::uint8_t
    {
        Idle,
        InProgress,
        Done,   // received() holds the reply's bytes
        Failed, // error() says why (no reply, or a reply larger than kMaxResponse)
    };

    /// Starts a request (abandoning any earlier one). `body` is sent as application/json when
    /// not empty.
    void start(std::string_view method,
               std::string_view target,
               std::string_view body,
               CompleteFn complete,
               std::int64_t now_ms);
    /// Advances the request; returns its status after the step.
    Status progress(std::int64_t now_ms);
    [[nodiscard]] Status status() const { return status_; }
    [[nodiscard]] std::string_view received() const { return rx_; }
    [[nodiscard]] const std::string& error() const { return error_; }
    /// Connections the server closed without a reply in the last request (for tests and logs).
    [[nodiscard]] int retries() const { return attempt_ - 1; }
    /// Drops the request and its socket.
    void cancel();

  private:
    enum class Phase : std::uint8_t
    {
        Pause, // between attempts
        Sending,
        Receiving,
    };
    void begin_attempt(std::int64_t now_ms);
    void retry_or_fail(const std::string& why, std::int64_t now_ms);
    void fail(const std::string& why);
    void close_socket();
    void watch(bool writable);

    EventLoop& loop_;
    std::uint64_t key_;
    std::string path_;
    std::string request_;
    std::string rx_;
    std::string error_;
    CompleteFn complete_;
    Status status_ = Status::Idle;
    Phase phase_ = Phase::Pause;
    int fd_ = -1;
    std::size_t sent_ = 0;
    int attempt_ = 0;
    std::int64_t deadline_ms_ = 0;
    std::int64_t resume_ms_ = 0;
};

} // namespace ga::port
