// SPDX-License-Identifier: MIT
// The workload API client (port/workload_api.h) against a scripted Unix-socket server in a thread:
// the request it writes, retries on connections closed without a reply, the response bound, a
// missing socket, and a server that keeps the connection open after a whole reply. Every wait is
// bounded.
#include "event_loop.h"
#include "port.h"
#include "workload_api.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace
{
namespace fs = std::filesystem;
using ga::port::WorkloadClient;
using Status = WorkloadClient::Status;

enum class Act
{
    Reply,        // the canned reply, then close
    Close,        // read the request, close without a word
    Stream70KiB,  // 200 without a length, 70 KiB of body, then close
    ReplyAndHold, // the canned reply, connection left open until the test ends
};

constexpr const char* kReply =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n"
    "{\"digest\":\"x\"}";

// One connection per entry of `script` (the last one repeats).
class Server
{
  public:
    explicit Server(std::vector<Act> script) : script_(std::move(script))
    {
        path_ = (fs::temp_directory_path() / ("ga-wl-test-" + std::to_string(::getpid()) + ".sock"))
                    .string();
        ::unlink(path_.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd_, 8), 0);
        thread_ = std::thread([this] { run(); });
    }
    ~Server()
    {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        for (const int h : held_)
            ::close(h);
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] int accepted() const { return accepted_; }
    std::string first_request()
    {
        const std::lock_guard<std::mutex> l(mu_);
        return requests_.empty() ? std::string() : requests_.front();
    }

  private:
    void run()
    {
        while (!stop_)
        {
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                return;
            const std::size_t i = static_cast<std::size_t>(accepted_++);
            const Act act = script_[std::min(i, script_.size() - 1)];
            timeval tv{2, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            const std::string req = read_request(c);
            {
                const std::lock_guard<std::mutex> l(mu_);
                requests_.push_back(req);
            }
            if (act == Act::Reply || act == Act::ReplyAndHold)
                (void)!::send(c, kReply, std::strlen(kReply), MSG_NOSIGNAL);
            if (act == Act::Stream70KiB)
            {
                const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
                (void)!::send(c, head.data(), head.size(), MSG_NOSIGNAL);
                const std::string chunk(1024, 'a');
                for (int k = 0; k < 70; ++k)
                    if (::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0)
                        break;
            }
            if (act == Act::ReplyAndHold)
                held_.push_back(c);
            else
                ::close(c);
        }
    }
    static std::string read_request(int c)
    {
        std::string got;
        std::array<char, 4096> buf{};
        while (got.find("\r\n\r\n") == std::string::npos)
        {
            const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
            if (n <= 0)
                return got;
            got.append(buf.data(), static_cast<std::size_t>(n));
        }
        const auto at = got.find("Content-Length: ");
        const std::size_t len = at == std::string::npos ? 0 : std::stoul(got.substr(at + 16));
        while (got.size() < got.find("\r\n\r\n") + 4 + len)
        {
            const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
            if (n <= 0)
                break;
            got.append(buf.data(), static_cast<std::size_t>(n));
        }
        return got;
    }

    std::vector<Act> script_;
    std::string path_;
    int fd_ = -1;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::mutex mu_;
    std::vector<std::string> requests_;
    std::vector<int> held_;
};

// Drives the client with the event loop until it is done (bounded).
Status drive(ga::port::EventLoop& loop, WorkloadClient& c, std::int64_t limit_ms = 8000)
{
    std::array<ga::port::EventLoop::Ready, 4> ready{};
    const std::int64_t until = ga::port::monotonic_ms() + limit_ms;
    while (c.progress(ga::port::monotonic_ms()) == Status::InProgress &&
           ga::port::monotonic_ms() < until)
        (void)loop.wait(ready, 20);
    return c.status();
}

bool whole(std::string_view r)
{
    return r.find("{\"digest\":\"x\"}") != std::string_view::npos;
}

struct Fixture : ::testing::Test
{
    ga::port::EventLoop loop;
    void SetUp() override
    {
        std::string err;
        ASSERT_TRUE(loop.open(20, err)) << err;
    }
};

using WorkloadClientTest = Fixture;

TEST_F(WorkloadClientTest, PostsJsonWithConnectionCloseAndReadsTheReply)
{
    Server s({Act::Reply});
    WorkloadClient c(loop, 7, s.path());
    c.start("POST", "/modules/m/genid/1/sign?api-version=2018-06-28", R"({"a":1})", nullptr,
            ga::port::monotonic_ms());
    ASSERT_EQ(drive(loop, c), Status::Done) << c.error();
    EXPECT_EQ(c.received(), kReply);
    const std::string req = s.first_request();
    EXPECT_TRUE(req.starts_with("POST /modules/m/genid/1/sign?api-version=2018-06-28 HTTP/1.1\r\n"))
        << req;
    EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos);
    EXPECT_NE(req.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
    EXPECT_NE(req.find("\r\nContent-Length: 7\r\n"), std::string::npos);
    EXPECT_TRUE(req.ends_with("\r\n\r\n{\"a\":1}"));
    EXPECT_EQ(c.retries(), 0);
}

TEST_F(WorkloadClientTest, ConnectionsClosedWithoutAReplyAreRetried)
{
    Server s({Act::Close, Act::Close, Act::Reply});
    WorkloadClient c(loop, 7, s.path());
    c.start("GET", "/trust-bundle?api-version=2018-06-28", {}, nullptr, ga::port::monotonic_ms());
    ASSERT_EQ(drive(loop, c), Status::Done) << c.error();
    EXPECT_EQ(c.received(), kReply);
    EXPECT_EQ(c.retries(), 2);
    EXPECT_EQ(s.accepted(), 3);
}

TEST_F(WorkloadClientTest, RetriesAreBounded)
{
    Server s({Act::Close});
    WorkloadClient c(loop, 7, s.path());
    c.start("GET", "/trust-bundle?api-version=2018-06-28", {}, nullptr, ga::port::monotonic_ms());
    ASSERT_EQ(drive(loop, c), Status::Failed);
    EXPECT_NE(c.error().find("without a reply (3 attempts)"), std::string::npos) << c.error();
    EXPECT_EQ(s.accepted(), WorkloadClient::kMaxAttempts);
}

TEST_F(WorkloadClientTest, ReplyIsBounded)
{
    Server s({Act::Stream70KiB});
    WorkloadClient c(loop, 7, s.path());
    c.start("GET", "/trust-bundle?api-version=2018-06-28", {}, nullptr, ga::port::monotonic_ms());
    ASSERT_EQ(drive(loop, c), Status::Failed);
    EXPECT_NE(c.error().find("larger than 64 KiB"), std::string::npos) << c.error();
}

TEST_F(WorkloadClientTest, MissingSocketFailsAtOnceNamingIt)
{
    WorkloadClient c(loop, 7, "/nonexistent/ga-workload.sock");
    c.start("GET", "/trust-bundle?api-version=2018-06-28", {}, nullptr, ga::port::monotonic_ms());
    ASSERT_EQ(c.status(), Status::Failed);
    EXPECT_NE(c.error().find("/nonexistent/ga-workload.sock"), std::string::npos) << c.error();
    EXPECT_NE(c.error().find("No such file"), std::string::npos) << c.error();
}

TEST_F(WorkloadClientTest, AWholeReplyEndsTheRequestEvenIfTheServerKeepsTheConnection)
{
    Server s({Act::ReplyAndHold});
    WorkloadClient c(loop, 7, s.path());
    const std::int64_t t0 = ga::port::monotonic_ms();
    c.start("GET", "/trust-bundle?api-version=2018-06-28", {}, whole, t0);
    ASSERT_EQ(drive(loop, c), Status::Done) << c.error();
    EXPECT_LT(ga::port::monotonic_ms() - t0, 2000);
    EXPECT_EQ(c.received(), kReply);
}

TEST_F(WorkloadClientTest, OversizedRequestIsRefusedBeforeConnecting)
{
    WorkloadClient c(loop, 7, "/nonexistent/ga-workload.sock");
    c.start("POST", "/x", std::string(WorkloadClient::kMaxRequest, 'a'), nullptr,
            ga::port::monotonic_ms());
    ASSERT_EQ(c.status(), Status::Failed);
    EXPECT_NE(c.error().find("request larger than"), std::string::npos) << c.error();
}

} // namespace
