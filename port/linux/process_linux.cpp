// SPDX-License-Identifier: MIT
// A PATH lookup, posix_spawn (vfork-like, no copy of the agent's memory) and a bounded wait: the
// output pipe is drained with poll() until EOF or the bound, then the child is reaped, or killed
// and reaped when the bound is reached.
#include "process.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ; // NOLINT(readability-redundant-declaration): POSIX declares it nowhere

namespace ga::port
{
namespace
{
constexpr std::size_t kMaxOutput = 4096;

std::int64_t now_ms()
{
    timespec ts{};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int remaining_ms(std::int64_t deadline)
{
    return static_cast<int>(std::clamp<std::int64_t>(deadline - now_ms(), 0, 1000));
}

// Owns the spawn attributes and file actions so every return path frees them.
struct SpawnSetup
{
    posix_spawnattr_t attr{};
    posix_spawn_file_actions_t actions{};
    bool ok = false;

    SpawnSetup()
    {
        if (posix_spawnattr_init(&attr) != 0)
            return;
        if (posix_spawn_file_actions_init(&actions) != 0)
        {
            posix_spawnattr_destroy(&attr);
            return;
        }
        ok = true;
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
    SpawnSetup(SpawnSetup&&) = delete;
    SpawnSetup& operator=(SpawnSetup&&) = delete;
    ~SpawnSetup()
    {
        if (!ok)
            return;
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
};

// The caller may block signals (the event loop blocks SIGTERM/SIGINT) or ignore SIGPIPE; the
// command gets a clean slate.
bool set_clean_signals(posix_spawnattr_t& attr)
{
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (const int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD})
        sigaddset(&defaults, s);
    return posix_spawnattr_setsigmask(&attr, &none) == 0 &&
           posix_spawnattr_setsigdefault(&attr, &defaults) == 0 &&
           posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0;
}

// The executable `name` names, as execvp would find it; empty when there is none. Looked up here
// rather than left to posix_spawnp: where the spawn is emulated as fork + exec (qemu-user), a
// missing command is only an exit status 127, indistinguishable from a command's own.
std::string find_executable(const std::string& name)
{
    const auto usable = [](const std::string& p)
    {
        struct stat st
        {
        };
        return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
    };
    if (name.find('/') != std::string::npos)
        return usable(name) ? name : std::string();
    const char* env = std::getenv("PATH"); // NOLINT(concurrency-mt-unsafe): read-only use
    const std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
    std::size_t from = 0;
    for (;;)
    {
        const std::size_t colon = std::min(path.find(':', from), path.size());
        const std::string dir = path.substr(from, colon - from);
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (usable(candidate))
            return candidate;
        if (colon == path.size())
            return {};
        from = colon + 1;
    }
}

void drain(int fd, std::int64_t deadline, std::string* output)
{
    std::array<char, 512> buf{};
    while (now_ms() < deadline)
    {
        pollfd p{fd, POLLIN, 0};
        const int pr = ::poll(&p, 1, remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue; // the bound is checked by the loop
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return; // EOF: the command (and anything it started) closed its output
        if (output != nullptr && output->size() < kMaxOutput)
            output->append(buf.data(),
                           std::min(static_cast<std::size_t>(n), kMaxOutput - output->size()));
    }
}
} // namespace

RunStatus run_command(const std::vector<std::string>& argv,
                      std::int64_t timeout_ms,
                      int& exit_code,
                      std::string* output)
{
    exit_code = 0;
    if (output != nullptr)
        output->clear();
    if (argv.empty())
    {
        exit_code = EINVAL;
        return RunStatus::Failed;
    }
    const std::string exe = find_executable(argv.front());
    if (exe.empty())
    {
        exit_code = ENOENT;
        return RunStatus::NotFound;
    }
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str())); // NOLINT: exec takes char* const[]
    args.push_back(nullptr);

    std::array<int, 2> pipe_fds{-1, -1};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0)
    {
        exit_code = errno;
        return RunStatus::Failed;
    }
    SpawnSetup setup;
    int rc = setup.ok ? 0 : ENOMEM;
    if (rc == 0 && !set_clean_signals(setup.attr))
        rc = EINVAL;
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0 && output == nullptr)
        rc = posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    else if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&setup.actions, pipe_fds[1], 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&setup.actions, output == nullptr ? 1 : pipe_fds[1],
                                              2);
    pid_t pid = -1;
    if (rc == 0)
        rc = posix_spawn(&pid, exe.c_str(), &setup.actions, &setup.attr, args.data(), environ);
    ::close(pipe_fds[1]);
    if (rc != 0)
    {
        ::close(pipe_fds[0]);
        exit_code = rc;
        return rc == ENOENT || rc == EACCES || rc == ENOEXEC ? RunStatus::NotFound
                                                             : RunStatus::Failed;
    }

    const std::int64_t deadline = now_ms() + std::max<std::int64_t>(timeout_ms, 0);
    drain(pipe_fds[0], deadline, output);
    ::close(pipe_fds[0]);

    int status = 0;
    for (;;)
    {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
        {
            exit_code = errno;
            return RunStatus::Failed;
        }
        if (now_ms() >= deadline)
        {
            (void)::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR)
            {
            }
            return RunStatus::TimedOut;
        }
        const timespec pause{0, 10L * 1000 * 1000}; // 10 ms between polls of a short command
        (void)::nanosleep(&pause, nullptr);
    }
    if (WIFSIGNALED(status))
    {
        exit_code = WTERMSIG(status);
        return RunStatus::Signaled;
    }
    exit_code = WEXITSTATUS(status);
    return RunStatus::Exited;
}

} // namespace ga::port
