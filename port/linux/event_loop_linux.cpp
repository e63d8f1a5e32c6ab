// SPDX-License-Identifier: MIT
// The Linux event loop primitives: epoll (level-triggered) over the caller's fds plus two fds of
// our own, a timerfd for the tick and a signalfd for SIGTERM/SIGINT. Both are drained here so the
// caller only sees `tick` and `signal`.
#include "event_loop.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace ga::port
{
namespace
{

// epoll keys of our own fds; watch() refuses them so a caller's key cannot be mistaken.
constexpr std::uint64_t kTimerKey = ~std::uint64_t{0};
constexpr std::uint64_t kSignalKey = ~std::uint64_t{0} - 1;
// Events taken per wait: more ready fds simply come back on the next wait (level-triggered).
constexpr std::size_t kMaxEvents = 64;

std::int64_t monotonic_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void close_fd(int& fd)
{
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

} // namespace

// watch/unwatch/wait change kernel state behind the fds, so they are not const.
EventLoop::~EventLoop()
{
    close_fd(sigfd_);
    close_fd(timerfd_);
    close_fd(epfd_);
}

bool EventLoop::open(std::int64_t tick_ms, std::string& err)
{
    if (epfd_ >= 0)
    {
        err = "event loop: already open";
        return false;
    }
    if (tick_ms <= 0)
    {
        err = "event loop: tick must be positive";
        return false;
    }
    const auto fail = [&](const char* what)
    {
        err = std::string("event loop: ") + what + ": " + std::strerror(errno);
        close_fd(sigfd_);
        close_fd(timerfd_);
        close_fd(epfd_);
        return false;
    };

    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0)
        return fail("epoll_create1");

    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timerfd_ < 0)
        return fail("timerfd_create");
    itimerspec spec{};
    spec.it_interval.tv_sec = static_cast<time_t>(tick_ms / 1000);
    spec.it_interval.tv_nsec = static_cast<long>((tick_ms % 1000) * 1000000);
    spec.it_value = spec.it_interval;
    if (timerfd_settime(timerfd_, 0, &spec, nullptr) != 0)
        return fail("timerfd_settime");

    // Blocked signals are only delivered through the signalfd, so shutdown is an ordinary event.
    // Threads created after this inherit the mask.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0)
        return fail("sigprocmask");
    sigfd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd_ < 0)
        return fail("signalfd");

    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTimerKey;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, timerfd_, &ev) != 0)
        return fail("epoll_ctl(timerfd)");
    ev.data.u64 = kSignalKey;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, sigfd_, &ev) != 0)
        return fail("epoll_ctl(signalfd)");
    return true;
}

// NOLINTNEXTLINE(readability-make-member-function-const)
bool EventLoop::watch(int fd, bool writable, std::uint64_t key)
{
    if (key == kTimerKey || key == kSignalKey || fd < 0 || fd == timerfd_ || fd == sigfd_)
    {
        errno = EINVAL;
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (writable ? EPOLLOUT : 0U);
    ev.data.u64 = key;
    // Most calls change the interest of a watched fd, so MOD first; ENOENT means not added yet.
    if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0)
        return true;
    if (errno != ENOENT)
        return false;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

// NOLINTNEXTLINE(readability-make-member-function-const)
void EventLoop::unwatch(int fd)
{
    if (fd < 0 || fd == timerfd_ || fd == sigfd_)
        return;
    // ENOENT/EBADF: not watched (or already closed, which removed it); nothing to do.
    (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

// NOLINTNEXTLINE(readability-make-member-function-const)
EventLoop::Wakeup EventLoop::wait(std::span<Ready> out, int timeout_ms)
{
    Wakeup w;
    if (last_ready_ns_ >= 0)
    {
        const std::int64_t left =
            spacing_ns_ > 0 ? last_ready_ns_ + spacing_ns_ - monotonic_ns() : 0;
        if (left > 0)
        {
            // Signals are blocked (they come through the signalfd), so this sleeps its time.
            const timespec ts{static_cast<time_t>(left / 1000000000),
                              static_cast<long>(left % 1000000000)};
            (void)::nanosleep(&ts, nullptr);
        }
        last_ready_ns_ = -1;
    }
    std::array<epoll_event, kMaxEvents> events{};
    // Room for every caller slot plus our two fds, so ours never crowd out a caller's.
    const std::size_t room = std::min(events.size(), out.size() + 2);
    const int n = epoll_wait(epfd_, events.data(), static_cast<int>(room), timeout_ms);
    if (n <= 0)
        return w; // timeout, or EINTR (e.g. a stop signal not in our mask): nothing to report
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
    {
        const epoll_event& ev = events.at(i);
        if (ev.data.u64 == kTimerKey)
        {
            std::uint64_t expirations = 0;
            // Non-blocking: EAGAIN if another wait already drained it; the tick counts once.
            if (::read(timerfd_, &expirations, sizeof expirations) ==
                static_cast<ssize_t>(sizeof expirations))
                w.tick = true;
            continue;
        }
        if (ev.data.u64 == kSignalKey)
        {
            signalfd_siginfo si{};
            while (::read(sigfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si))
            {
                if (w.signal == 0)
                    w.signal = static_cast<int>(si.ssi_signo);
            }
            continue;
        }
        if (w.ready >= out.size())
            continue; // level-triggered: it is reported again by the next wait
        if (last_ready_ns_ < 0)
            last_ready_ns_ = monotonic_ns();
        Ready& r = out[w.ready++];
        r.key = ev.data.u64;
        r.readable = (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;
        r.writable = (ev.events & EPOLLOUT) != 0;
    }
    return w;
}

} // namespace ga::port
