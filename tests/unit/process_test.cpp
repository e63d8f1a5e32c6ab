// SPDX-License-Identifier: MIT
// port::run_command (exit status, output, missing command, time bound, signals) and
// port::available_bytes, against real processes and file systems.
#include "disk_space.h"
#include "port.h"
#include "process.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <string>

namespace
{

TEST(RunCommand, ReportsExitStatusAndCapturesOutput)
{
    int code = -1;
    std::string out;
    const auto st =
        ga::port::run_command({"sh", "-c", "echo active; echo oops >&2; exit 3"}, 5000, code, &out);
    EXPECT_EQ(st, ga::port::RunStatus::Exited);
    EXPECT_EQ(code, 3);
    EXPECT_EQ(out, "active\noops\n");
}

TEST(RunCommand, WithoutOutputStillReportsTheStatus)
{
    int code = -1;
    EXPECT_EQ(ga::port::run_command({"sh", "-c", "echo ignored; exit 0"}, 5000, code),
              ga::port::RunStatus::Exited);
    EXPECT_EQ(code, 0);
}

TEST(RunCommand, MissingCommandIsNotFound)
{
    int code = 0;
    EXPECT_EQ(ga::port::run_command({"gateway-agent-no-such-command"}, 5000, code),
              ga::port::RunStatus::NotFound);
    EXPECT_EQ(ga::port::run_command({"/nonexistent/dir/tool"}, 5000, code),
              ga::port::RunStatus::NotFound);
}

TEST(RunCommand, IsKilledAtTheBound)
{
    int code = 0;
    std::string out;
    const std::int64_t t0 = ga::port::monotonic_ms();
    EXPECT_EQ(ga::port::run_command({"sh", "-c", "echo started; exec sleep 30"}, 300, code, &out),
              ga::port::RunStatus::TimedOut);
    const std::int64_t took = ga::port::monotonic_ms() - t0;
    EXPECT_GE(took, 300);
    EXPECT_LT(took, 5000);
    EXPECT_EQ(out, "started\n");
}

TEST(RunCommand, CommandGetsDefaultSignalsEvenWhenTheCallerBlocksThem)
{
    // The event loop blocks SIGTERM for the process; a command must still die of it.
    sigset_t block;
    sigset_t old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    ASSERT_EQ(sigprocmask(SIG_BLOCK, &block, &old), 0);
    int code = 0;
    const auto st = ga::port::run_command({"sh", "-c", "kill -TERM $$; sleep 5"}, 5000, code);
    (void)sigprocmask(SIG_SETMASK, &old, nullptr);
    EXPECT_EQ(st, ga::port::RunStatus::Signaled);
    EXPECT_EQ(code, SIGTERM);
}

TEST(AvailableBytes, ForAnExistingDirAndAnError)
{
    std::uint64_t bytes = 0;
    int err_no = 0;
    EXPECT_TRUE(ga::port::available_bytes("/", bytes, err_no));
    EXPECT_FALSE(ga::port::available_bytes("/nonexistent/dir", bytes, err_no));
    EXPECT_EQ(err_no, ENOENT);
}

} // namespace
