// SPDX-License-Identifier: MIT
// The Linux transport and event loop against loopback peers only: `openssl s_server` with a
// throwaway CA made here for TLS, plain sockets opened by the test for TCP. Every wait is bounded.
#include "event_loop.h"
#include "port.h"
#include "transport.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace
{
namespace fs = std::filesystem;
using ga::port::EventLoop;
using ga::port::Transport;
using ga::port::TransportConfig;
using Status = Transport::Status;

std::int64_t now_ms()
{
    return ga::port::monotonic_ms();
}

bool sh(const std::string& cmd)
{
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; // NOLINT(cert-env33-c)
}

// A CA with a server certificate for gw.test, and an unrelated CA; made once per run.
struct Pki
{
    fs::path dir;
    bool ok = false;
    Pki()
    {
        dir = fs::temp_directory_path() / ("ga-transport-" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
        const std::string d = dir.string();
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        std::ofstream(dir / "ext.cnf") << "subjectAltName=DNS:gw.test\n";
        ok =
            sh("openssl req -x509" + ec + " -keyout " + d + "/ca.key -out " + d +
               "/ca.pem -days 2 -subj /CN=ga-test-ca") &&
            sh("openssl req -x509" + ec + " -keyout " + d + "/other.key -out " + d +
               "/other.pem -days 2 -subj /CN=ga-other-ca") &&
            sh("openssl req" + ec + " -keyout " + d + "/srv.key -out " + d +
               "/srv.csr -subj /CN=gw.test") &&
            sh("openssl x509 -req -in " + d + "/srv.csr -CA " + d + "/ca.pem -CAkey " + d +
               "/ca.key -CAcreateserial -out " + d + "/srv.pem -days 2 -extfile " + d + "/ext.cnf");
    }
    ~Pki() { fs::remove_all(dir); }
    Pki(const Pki&) = delete;
    Pki& operator=(const Pki&) = delete;
    [[nodiscard]] std::string path(const char* name) const { return (dir / name).string(); }
};

Pki& pki()
{
    static Pki p;
    return p;
}

std::uint16_t free_port()
{
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

// A listening socket on 127.0.0.1 or ::1 (port 0: any); fd -1 when the address is unavailable.
struct Listener
{
    int fd = -1;
    std::uint16_t port = 0;
    explicit Listener(bool v6, std::uint16_t want = 0)
    {
        fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return;
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (v6)
        {
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            a->sin6_port = htons(want);
            len = sizeof *a;
        }
        else
        {
            auto* a = reinterpret_cast<sockaddr_in*>(&ss);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a->sin_port = htons(want);
            len = sizeof *a;
        }
        if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4) != 0)
        {
            ::close(fd);
            fd = -1;
            return;
        }
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    ~Listener()
    {
        if (fd >= 0)
            ::close(fd);
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Accepts one connection within `ms`, or -1.
    [[nodiscard]] int accept_within(int ms) const
    {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1)
            return -1;
        return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
};

// `openssl s_server` on 127.0.0.1 with the test's server cert; stdout to a file, stdin a pipe we
// keep open (so it never sees end of input), killed on destruction.
struct TlsServer
{
    pid_t pid = -1;
    int stdin_w = -1;
    std::uint16_t port = 0;
    fs::path out;

    explicit TlsServer(const std::string& mode)
    {
        port = free_port();
        out = pki().dir / ("s_server-" + std::to_string(port) + ".out");
        std::array<int, 2> p{};
        if (::pipe2(p.data(), O_CLOEXEC) != 0)
            return;
        stdin_w = p[1];
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[0], 0);
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        // The event loop test blocks SIGTERM/SIGINT in this process; do not pass that on.
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        const std::string accept = "127.0.0.1:" + std::to_string(port);
        const std::string cert = pki().path("srv.pem");
        const std::string key = pki().path("srv.key");
        std::vector<std::string> args{"openssl", "s_server", "-accept", accept, "-cert",
                                      cert,      "-key",     key,       mode};
        std::vector<char*> argv;
        argv.reserve(args.size() + 1);
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawnp(&pid, "openssl", &fa, &attr, argv.data(), environ) != 0)
            pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        ::close(p[0]);
    }
    ~TlsServer()
    {
        if (pid > 0)
        {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
        if (stdin_w >= 0)
            ::close(stdin_w);
        fs::remove(out);
    }
    TlsServer(const TlsServer&) = delete;
    TlsServer& operator=(const TlsServer&) = delete;

    // Waits (bounded) until the port accepts; the probe connection is closed at once, which
    // s_server treats as a failed handshake and keeps accepting.
    [[nodiscard]] bool ready() const
    {
        const std::int64_t deadline = now_ms() + 10000;
        while (pid > 0 && now_ms() < deadline)
        {
            const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(port);
            const bool up = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            ::close(s);
            if (up)
                return true;
            ::usleep(20000);
        }
        return false;
    }
};

TransportConfig tls_cfg(std::uint16_t port, const std::string& ca = pki().path("ca.pem"))
{
    TransportConfig c;
    c.host = "127.0.0.1";
    c.port = port;
    c.tls = true;
    c.ca_file = ca;
    c.server_name = "gw.test";
    c.connect_timeout_ms = 5000;
    return c;
}

TransportConfig tcp_cfg(const std::string& host, std::uint16_t port)
{
    TransportConfig c;
    c.host = host;
    c.port = port;
    c.tls = false;
    c.connect_timeout_ms = 5000;
    return c;
}

// Drives start/progress with poll() until the transport leaves InProgress (bounded).
Status connect(Transport& t, int limit_ms = 10000)
{
    Status st = t.start(now_ms());
    const std::int64_t deadline = now_ms() + limit_ms;
    while (st == Status::InProgress && now_ms() < deadline)
    {
        if (t.fd() >= 0)
        {
            pollfd p{t.fd(), static_cast<short>(POLLIN | (t.wants_write() ? POLLOUT : 0)), 0};
            ::poll(&p, 1, 20);
        }
        else
        {
            ::usleep(5000); // resolving: poll on a tick
        }
        st = t.progress(now_ms());
    }
    return st;
}

// Reads (bounded) until `want` bytes arrived or the transport fails.
std::string read_some(Transport& t, std::size_t want, int limit_ms = 5000)
{
    std::string got;
    std::array<std::uint8_t, 4096> buf{};
    const std::int64_t deadline = now_ms() + limit_ms;
    while (got.size() < want && now_ms() < deadline)
    {
        pollfd p{t.fd(), static_cast<short>(POLLIN | (t.wants_write() ? POLLOUT : 0)), 0};
        ::poll(&p, 1, 20);
        long n = 0;
        while ((n = t.read(buf)) > 0)
            got.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n));
        if (n < 0)
            break;
    }
    return got;
}

// Writes all of `data` (bounded), keeping the unsent bytes at the front as the contract asks.
bool write_all(Transport& t, std::span<const std::uint8_t> data, int limit_ms = 20000)
{
    const std::int64_t deadline = now_ms() + limit_ms;
    std::array<std::uint8_t, 4096> sink{};
    while (!data.empty() && now_ms() < deadline)
    {
        const long n = t.write(data);
        if (n < 0)
            return false;
        data = data.subspan(static_cast<std::size_t>(n));
        if (data.empty())
            break;
        pollfd p{t.fd(), POLLIN | POLLOUT, 0};
        ::poll(&p, 1, 50);
        if (t.read(sink) < 0) // keep TLS housekeeping moving; the servers send nothing here
            return false;
    }
    return data.empty();
}

TEST(TransportTest, TlsRoundTripWithEventLoop)
{
    ASSERT_TRUE(pki().ok);
    TlsServer srv("-rev");
    ASSERT_TRUE(srv.ready());
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tls_cfg(srv.port), err)) << err;

    // Driven the way the agent does: epoll on fd(), re-watched as fd() and wants_write() change.
    EventLoop loop;
    ASSERT_TRUE(loop.open(50, err)) << err;
    Status st = t.start(now_ms());
    int watched = -1;
    std::array<EventLoop::Ready, 4> ready{};
    const std::int64_t deadline = now_ms() + 10000;
    while (st == Status::InProgress && now_ms() < deadline)
    {
        if (t.fd() != watched)
        {
            if (watched >= 0)
                loop.unwatch(watched);
            watched = t.fd();
        }
        if (watched >= 0)
        {
            ASSERT_TRUE(loop.watch(watched, t.wants_write(), 7));
        }
        const auto w = loop.wait(ready, 100);
        for (std::size_t i = 0; i < w.ready; ++i)
        {
            EXPECT_EQ(ready.at(i).key, 7U);
        }
        st = t.progress(now_ms());
    }
    ASSERT_EQ(st, Status::Open) << t.error();
    EXPECT_NE(t.peer().find("127.0.0.1:" + std::to_string(srv.port)), std::string::npos)
        << t.peer();

    const std::string line = "hello transport\n";
    ASSERT_TRUE(write_all(t, {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()}));
    const std::string got = read_some(t, 15);
    EXPECT_EQ(got.substr(0, 15), "tropsnart olleh");
    loop.unwatch(t.fd());
    t.close();
    EXPECT_EQ(t.status(), Status::Closed);
    EXPECT_EQ(t.fd(), -1);
}

TEST(TransportTest, WrongCaFailsVerification)
{
    ASSERT_TRUE(pki().ok);
    TlsServer srv("-rev");
    ASSERT_TRUE(srv.ready());
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tls_cfg(srv.port, pki().path("other.pem")), err)) << err;
    ASSERT_EQ(connect(t), Status::Failed);
    EXPECT_NE(t.error().find("verification failed"), std::string::npos) << t.error();
    EXPECT_NE(t.error().find("not correctly signed"), std::string::npos) << t.error();
}

TEST(TransportTest, WrongServerNameFails)
{
    ASSERT_TRUE(pki().ok);
    TlsServer srv("-rev");
    ASSERT_TRUE(srv.ready());
    Transport t;
    std::string err;
    auto cfg = tls_cfg(srv.port);
    cfg.server_name = "other.test";
    ASSERT_TRUE(t.configure(cfg, err)) << err;
    ASSERT_EQ(connect(t), Status::Failed);
    EXPECT_NE(t.error().find("verification failed"), std::string::npos) << t.error();
    EXPECT_NE(t.error().find("other.test"), std::string::npos) << t.error();
    EXPECT_NE(t.error().find("Common Name"), std::string::npos) << t.error();
}

TEST(TransportTest, RefusedNamesTheAddress)
{
    const std::uint16_t port = free_port();
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tcp_cfg("127.0.0.1", port), err)) << err;
    ASSERT_EQ(connect(t), Status::Failed);
    EXPECT_NE(t.error().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << t.error();
    EXPECT_NE(t.error().find(std::strerror(ECONNREFUSED)), std::string::npos) << t.error();
    t.close();
    EXPECT_EQ(t.status(), Status::Closed);
}

// Whether `localhost` resolves to ::1 here (it does not where /etc/hosts only lists 127.0.0.1).
bool localhost_has_v6()
{
    addrinfo hints{};
    hints.ai_family = AF_INET6;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo("localhost", nullptr, &hints, &res) != 0)
        return false;
    freeaddrinfo(res);
    return true;
}

void localhost_connects(bool v6)
{
    Listener l(v6);
    if (l.fd < 0)
    {
        GTEST_SKIP() << (v6 ? "::1" : "127.0.0.1") << " unavailable";
    }
    if (v6 && !localhost_has_v6())
    {
        GTEST_SKIP() << "localhost does not resolve to ::1 on this host";
    }
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tcp_cfg("localhost", l.port), err)) << err;
    ASSERT_EQ(connect(t), Status::Open) << t.error();
    EXPECT_NE(t.peer().find(v6 ? "[::1]" : "127.0.0.1"), std::string::npos) << t.peer();
    const int peer = l.accept_within(2000);
    ASSERT_GE(peer, 0);
    const std::string ping = "ping";
    ASSERT_TRUE(write_all(t, {reinterpret_cast<const std::uint8_t*>(ping.data()), ping.size()}));
    std::array<char, 8> got{};
    pollfd p{peer, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    ASSERT_EQ(::recv(peer, got.data(), got.size(), 0), 4);
    EXPECT_EQ(std::string(got.data(), 4), "ping");
    ASSERT_EQ(::send(peer, "pong", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(read_some(t, 4), "pong");
    ::close(peer);
    // The peer's close shows as -1 with "closed by peer".
    std::array<std::uint8_t, 16> buf{};
    long n = 0;
    const std::int64_t deadline = now_ms() + 2000;
    while ((n = t.read(buf)) == 0 && now_ms() < deadline)
        ::usleep(5000);
    EXPECT_EQ(n, -1);
    EXPECT_NE(t.error().find("closed by peer"), std::string::npos) << t.error();
    EXPECT_EQ(t.status(), Status::Failed);
}

TEST(TransportTest, LocalhostReachesIpv4OnlyListener)
{
    localhost_connects(false);
}

TEST(TransportTest, LocalhostReachesIpv6OnlyListener)
{
    localhost_connects(true);
}

TEST(TransportTest, Ipv6LiteralConnects)
{
    Listener l(true);
    if (l.fd < 0)
    {
        GTEST_SKIP() << "::1 unavailable";
    }
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tcp_cfg("::1", l.port), err)) << err;
    ASSERT_EQ(connect(t), Status::Open) << t.error();
    EXPECT_NE(t.peer().find("[::1]:" + std::to_string(l.port)), std::string::npos) << t.peer();
}

std::vector<std::uint8_t> pattern(std::size_t n)
{
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::uint8_t>('a' + (i * 7 + i / 251) % 26); // printable, not periodic
    return v;
}

TEST(TransportTest, LargeTlsWriteArrivesWhole)
{
    ASSERT_TRUE(pki().ok);
    TlsServer srv("-quiet"); // writes what it receives to its stdout (our file)
    ASSERT_TRUE(srv.ready());
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tls_cfg(srv.port), err)) << err;
    ASSERT_EQ(connect(t), Status::Open) << t.error();
    const auto data = pattern(1U << 20U);
    // Stop the server so the socket fills: write() must return 0 (a TLS record half sent) and be
    // repeated with the same bytes at the front of a larger span.
    // A small send buffer makes that happen well within the 1 MiB.
    const int small = 16384;
    ASSERT_EQ(::setsockopt(t.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    ASSERT_EQ(::kill(srv.pid, SIGSTOP), 0);
    std::span<const std::uint8_t> rest(data);
    long n = 0;
    const std::int64_t fill_deadline = now_ms() + 10000;
    while ((n = t.write(rest)) > 0 && now_ms() < fill_deadline)
        rest = rest.subspan(static_cast<std::size_t>(n));
    EXPECT_EQ(n, 0) << t.error();
    EXPECT_TRUE(t.wants_write());
    EXPECT_FALSE(rest.empty());
    ASSERT_EQ(::kill(srv.pid, SIGCONT), 0);
    ASSERT_TRUE(write_all(t, rest)) << t.error();
    const std::int64_t deadline = now_ms() + 20000;
    while (fs::file_size(srv.out) < data.size() && now_ms() < deadline)
        ::usleep(20000);
    ASSERT_EQ(fs::file_size(srv.out), data.size());
    std::ifstream in(srv.out, std::ios::binary);
    const std::vector<std::uint8_t> got((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
    EXPECT_TRUE(got == data);
    t.close();
}

TEST(TransportTest, LargeTcpWriteArrivesWhole)
{
    Listener l(false);
    ASSERT_GE(l.fd, 0);
    const auto data = pattern(1U << 20U);
    std::vector<std::uint8_t> got;
    std::thread reader(
        [&]
        {
            const int s = l.accept_within(5000);
            if (s < 0)
                return;
            // Read slowly at first so the sender's socket fills and write() returns short.
            ::usleep(200000);
            std::array<std::uint8_t, 65536> buf{};
            const std::int64_t deadline = now_ms() + 20000;
            while (got.size() < data.size() && now_ms() < deadline)
            {
                pollfd p{s, POLLIN, 0};
                if (::poll(&p, 1, 100) != 1)
                    continue;
                const ssize_t n = ::recv(s, buf.data(), buf.size(), 0);
                if (n <= 0)
                    break;
                got.insert(got.end(), buf.begin(), buf.begin() + n);
            }
            ::close(s);
        });
    Transport t;
    std::string err;
    ASSERT_TRUE(t.configure(tcp_cfg("127.0.0.1", l.port), err)) << err;
    EXPECT_EQ(connect(t), Status::Open) << t.error();
    EXPECT_TRUE(write_all(t, data)) << t.error();
    reader.join();
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

TEST(TransportTest, SilentServerTimesOutInHandshake)
{
    ASSERT_TRUE(pki().ok);
    Listener l(false); // listens (the kernel completes TCP) but never accepts nor answers
    ASSERT_GE(l.fd, 0);
    Transport t;
    std::string err;
    auto cfg = tls_cfg(l.port);
    cfg.connect_timeout_ms = 500;
    ASSERT_TRUE(t.configure(cfg, err)) << err;
    const std::int64_t t0 = now_ms();
    ASSERT_EQ(connect(t, 5000), Status::Failed);
    const std::int64_t took = now_ms() - t0;
    EXPECT_GE(took, 450);
    EXPECT_LT(took, 3000);
    EXPECT_NE(t.error().find("timed out"), std::string::npos) << t.error();
    EXPECT_NE(t.error().find("TLS handshake"), std::string::npos) << t.error();
}

TEST(TransportTest, ConfigureReportsCaFileProblems)
{
    ASSERT_TRUE(pki().ok);
    Transport t;
    std::string err;
    const std::string missing = pki().path("missing.pem");
    EXPECT_FALSE(t.configure(tls_cfg(1, missing), err));
    EXPECT_NE(err.find(missing), std::string::npos) << err;
    EXPECT_NE(err.find(std::strerror(ENOENT)), std::string::npos) << err;

    const std::string junk = pki().path("junk.pem");
    std::ofstream(junk) << "this is not a certificate\n";
    err.clear();
    EXPECT_FALSE(t.configure(tls_cfg(1, junk), err));
    EXPECT_NE(err.find(junk), std::string::npos) << err;
    EXPECT_NE(err.find("not PEM"), std::string::npos) << err;

    // Without configure() a start fails cleanly.
    Transport fresh;
    EXPECT_EQ(fresh.start(now_ms()), Status::Failed);
}

TEST(EventLoopTest, TickFires)
{
    EventLoop loop;
    std::string err;
    ASSERT_TRUE(loop.open(20, err)) << err;
    std::array<EventLoop::Ready, 2> ready{};
    bool ticked = false;
    const std::int64_t deadline = now_ms() + 2000;
    while (!ticked && now_ms() < deadline)
        ticked = loop.wait(ready, 100).tick;
    EXPECT_TRUE(ticked);
}

TEST(EventLoopTest, WatchReportsReadableAndWritable)
{
    EventLoop loop;
    std::string err;
    ASSERT_TRUE(loop.open(60000, err)) << err;
    std::array<int, 2> sp{};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp.data()), 0);
    std::array<EventLoop::Ready, 4> ready{};

    ASSERT_TRUE(loop.watch(sp[0], false, 42));
    EXPECT_EQ(loop.wait(ready, 50).ready, 0U); // nothing to read, writability not asked
    ASSERT_EQ(::write(sp[1], "x", 1), 1);
    auto w = loop.wait(ready, 1000);
    ASSERT_EQ(w.ready, 1U);
    EXPECT_EQ(ready[0].key, 42U);
    EXPECT_TRUE(ready[0].readable);
    EXPECT_FALSE(ready[0].writable);

    ASSERT_TRUE(loop.watch(sp[0], true, 43)); // second call: changes the interest
    w = loop.wait(ready, 1000);
    ASSERT_EQ(w.ready, 1U);
    EXPECT_EQ(ready[0].key, 43U);
    EXPECT_TRUE(ready[0].writable);

    ::close(sp[1]); // hang-up shows as readable
    ASSERT_TRUE(loop.watch(sp[0], false, 44));
    std::array<char, 4> buf{};
    ASSERT_EQ(::read(sp[0], buf.data(), buf.size()), 1);
    w = loop.wait(ready, 1000);
    ASSERT_EQ(w.ready, 1U);
    EXPECT_TRUE(ready[0].readable);

    loop.unwatch(sp[0]);
    loop.unwatch(sp[0]); // unknown now: ignored
    EXPECT_EQ(loop.wait(ready, 50).ready, 0U);
    ::close(sp[0]);
    EXPECT_FALSE(loop.watch(-1, false, 1));
}

TEST(EventLoopTest, SigtermIsAnEvent)
{
    EventLoop loop;
    std::string err;
    ASSERT_TRUE(loop.open(60000, err)) << err;
    ASSERT_EQ(::raise(SIGTERM), 0); // blocked now: goes to the signalfd, not the default action
    std::array<EventLoop::Ready, 2> ready{};
    int sig = 0;
    const std::int64_t deadline = now_ms() + 2000;
    while (sig == 0 && now_ms() < deadline)
        sig = loop.wait(ready, 100).signal;
    EXPECT_EQ(sig, SIGTERM);
    ASSERT_EQ(::raise(SIGINT), 0);
    sig = 0;
    while (sig == 0 && now_ms() < deadline + 2000)
        sig = loop.wait(ready, 100).signal;
    EXPECT_EQ(sig, SIGINT);
}

} // namespace
