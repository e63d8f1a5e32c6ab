// SPDX-License-Identifier: MIT
// The event loop's OS primitives: epoll over the caller's sockets, a periodic tick (timerfd) and
// SIGTERM/SIGINT as an event (signalfd; the signals are blocked for the process).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace ga::port
{

class EventLoop
{
  public:
    EventLoop() = default;
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Creates epoll, the tick timer (every `tick_ms`) and the signal fd. False with `err`.
    [[nodiscard]] bool open(std::int64_t tick_ms, std::string& err);

    /// Spaces out the turns that handle the caller's fds: a wait() that starts less than
    /// `us` after the previous one returned ready fds first sleeps for the rest, so what
    /// arrives meanwhile is handled in one turn (one read, one commit, one write for many
    /// messages). Adds at most `us` of latency, and only while fds keep being ready. 0: off.
    void set_turn_spacing_us(std::int64_t us) { spacing_ns_ = us * 1000; }

    /// Watches `fd` for readability (always) and writability (when `writable`); `key` comes back
    /// in Ready. Calling it again for the same fd changes the interest. False with errno kept.
    [[nodiscard]] bool watch(int fd, bool writable, std::uint64_t key);
    /// Stops watching `fd` (before it is closed); unknown fds are ignored.
    void unwatch(int fd);

    struct Ready
    {
        std::uint64_t key = 0;
        bool readable = false; // also set on hang-up or error, so a read sees it
        bool writable = false;
    };
    struct Wakeup
    {
        std::size_t ready = 0; // entries filled in `out`
        bool tick = false;     // the tick timer fired (once per wait, however many periods)
        int signal = 0;        // SIGTERM or SIGINT received, else 0
    };
    /// Waits until something is ready (at most `timeout_ms`, -1 for no limit).
    [[nodiscard]] Wakeup wait(std::span<Ready> out, int timeout_ms);

  private:
    std::int64_t spacing_ns_ = 0;
    std::int64_t last_ready_ns_ = -1; // when the last wait() returned a caller's fd; -1: never
    int epfd_ = -1;
    int timerfd_ = -1;
    int sigfd_ = -1;
};

} // namespace ga::port
