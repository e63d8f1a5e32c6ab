// SPDX-License-Identifier: MIT
#include "event_loop.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace
{
using Clock = std::chrono::steady_clock;
using ga::port::EventLoop;

class EventLoopTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        std::string err;
        ASSERT_TRUE(loop_.open(60000, err)) << err; // no tick during a test
        ASSERT_EQ(::pipe2(fds_.data(), O_NONBLOCK | O_CLOEXEC), 0);
        ASSERT_TRUE(loop_.watch(fds_[0], false, 7));
    }
    void TearDown() override
    {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    void poke() { ASSERT_EQ(::write(fds_[1], "x", 1), 1); }
    void drain()
    {
        char c = 0;
        while (::read(fds_[0], &c, 1) == 1)
        {
        }
    }
    // Waits (bounded) for the pipe; returns the time the wait took.
    Clock::duration wait_ready()
    {
        std::array<EventLoop::Ready, 4> ready{};
        const auto t0 = Clock::now();
        const EventLoop::Wakeup w = loop_.wait(ready, 2000);
        const auto took = Clock::now() - t0;
        EXPECT_EQ(w.ready, 1U);
        EXPECT_EQ(ready[0].key, 7U);
        EXPECT_TRUE(ready[0].readable);
        return took;
    }

    EventLoop loop_;
    std::array<int, 2> fds_{-1, -1};
};

// No timing claims that a busy machine (ASan, qemu-arm) could break: a held turn is checked with a
// lower bound only, and "not held" against a spacing of 10 s, which a busy machine does not reach.
constexpr std::int64_t kSpacingUs = 200000;
constexpr std::int64_t kLongSpacingUs = 10'000'000;
constexpr auto kHeldAtLeast = std::chrono::milliseconds(150);
constexpr auto kAtOnce = std::chrono::seconds(5);

TEST_F(EventLoopTest, WithoutSpacingAReadyFdComesBackAtOnce)
{
    poke();
    (void)wait_ready();
    drain();
    poke();
    EXPECT_LT(wait_ready(), kAtOnce);
}

TEST_F(EventLoopTest, TheFirstTurnIsNotHeld)
{
    loop_.set_turn_spacing_us(kLongSpacingUs);
    poke();
    EXPECT_LT(wait_ready(), kAtOnce); // none came before it
}

TEST_F(EventLoopTest, SpacingHoldsTheNextTurnAndThenReportsWhatCameMeanwhile)
{
    loop_.set_turn_spacing_us(kSpacingUs);
    poke();
    (void)wait_ready();
    drain();
    const auto turn = Clock::now();
    poke();
    poke();
    (void)wait_ready();
    EXPECT_GE(Clock::now() - turn, kHeldAtLeast);
    char c[4] = {};
    EXPECT_EQ(::read(fds_[0], c, sizeof c), 2); // both bytes in one turn
}

TEST_F(EventLoopTest, SpacingAddsNothingOnceItsTimeHasPassed)
{
    loop_.set_turn_spacing_us(2'000'000);
    poke();
    (void)wait_ready();
    drain();
    ::usleep(2'100'000); // the loop was busy for longer than the spacing
    poke();
    EXPECT_LT(wait_ready(), std::chrono::milliseconds(1500));
}

TEST_F(EventLoopTest, SpacingTurnedOffHoldsNothing)
{
    loop_.set_turn_spacing_us(kLongSpacingUs);
    poke();
    (void)wait_ready();
    drain();
    loop_.set_turn_spacing_us(0);
    poke();
    EXPECT_LT(wait_ready(), kAtOnce);
}

} // namespace
