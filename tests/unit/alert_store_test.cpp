// SPDX-License-Identifier: MIT
#include "alert_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace
{
namespace fs = std::filesystem;

// A fresh directory per test under the system temp dir.
class AlertStoreTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               ("ga-store-" + std::to_string(::getpid()) + "-" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    [[nodiscard]] std::string dir() const { return dir_.string(); }

    fs::path dir_;
};

std::string alert(int i)
{
    return R"({"machine":{"temperature":30},"seq":)" + std::to_string(i) + "}";
}

ga::AlertStore::AppendResult
append(ga::AlertStore& s, const std::string& a, std::uint64_t* seq_out = nullptr)
{
    std::uint64_t seq = 0;
    int err_no = 0;
    const auto r = s.append(a, seq, err_no);
    if (seq_out != nullptr)
        *seq_out = seq;
    return r;
}

// Drains everything the store would send now, acknowledging nothing.
std::vector<std::string> unsent(ga::AlertStore& s, std::vector<std::uint64_t>* seqs = nullptr)
{
    std::vector<std::string> out;
    char buf[4096];
    std::uint64_t seq = 0;
    std::size_t len = 0;
    while (s.next_unsent(seq, buf, len))
    {
        out.emplace_back(buf, len);
        if (seqs != nullptr)
            seqs->push_back(seq);
    }
    return out;
}

TEST_F(AlertStoreTest, UnacknowledgedAlertsSurviveADropOfTheStoreInOrder)
{
    {
        ga::AlertStore s(64 * 1024);
        std::string err;
        ASSERT_TRUE(s.open(dir(), err)) << err;
        for (int i = 0; i < 5; ++i)
            ASSERT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::Stored);
        EXPECT_EQ(s.depth(), 5U);
    }
    ga::AlertStore again(64 * 1024);
    std::string err;
    ASSERT_TRUE(again.open(dir(), err)) << err;
    EXPECT_EQ(unsent(again),
              (std::vector<std::string>{alert(0), alert(1), alert(2), alert(3), alert(4)}));
}

TEST_F(AlertStoreTest, ABatchCommittedWithOneSyncIsReloadedLikeSingleAppends)
{
    {
        ga::AlertStore s(64 * 1024);
        std::string err;
        ASSERT_TRUE(s.open(dir(), err)) << err;
        std::uint64_t seq = 0;
        int err_no = 0;
        for (int i = 0; i < 3; ++i)
            ASSERT_EQ(s.append(alert(i), seq, err_no, false), ga::AlertStore::AppendResult::Stored);
        s.commit();
        ASSERT_EQ(append(s, alert(3)), ga::AlertStore::AppendResult::Stored);
        EXPECT_EQ(s.not_persisted(), 0U);
    }
    ga::AlertStore again(64 * 1024);
    std::string err;
    ASSERT_TRUE(again.open(dir(), err)) << err;
    EXPECT_EQ(unsent(again), (std::vector<std::string>{alert(0), alert(1), alert(2), alert(3)}));
}

TEST_F(AlertStoreTest, AcknowledgedAlertsAreNotReloaded)
{
    {
        ga::AlertStore s(64 * 1024);
        std::string err;
        ASSERT_TRUE(s.open(dir(), err)) << err;
        std::vector<std::uint64_t> seqs;
        for (int i = 0; i < 4; ++i)
            ASSERT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::Stored);
        ASSERT_EQ(unsent(s, &seqs).size(), 4U);
        s.ack(static_cast<std::uint32_t>(seqs[0]));
        s.ack(static_cast<std::uint32_t>(seqs[1]));
        s.ack(static_cast<std::uint32_t>(seqs[3])); // out of order: 2 is still owed
        s.maintain(0);
        EXPECT_EQ(s.depth(), 2U);
    }
    ga::AlertStore again(64 * 1024);
    std::string err;
    ASSERT_TRUE(again.open(dir(), err)) << err;
    // seq 3 was acknowledged but sits behind 2; sending it again is within at-least-once.
    const auto got = unsent(again);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front(), alert(2));
    EXPECT_LE(got.size(), 2U);
}

TEST_F(AlertStoreTest, RewindSendsEverythingUnacknowledgedAgain)
{
    ga::AlertStore s(64 * 1024);
    std::string err;
    ASSERT_TRUE(s.open(dir(), err)) << err;
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::Stored);
    ASSERT_EQ(unsent(s, &seqs).size(), 3U);
    EXPECT_TRUE(unsent(s).empty());
    s.ack(static_cast<std::uint32_t>(seqs[0]));
    s.rewind_unsent();
    EXPECT_EQ(unsent(s), (std::vector<std::string>{alert(1), alert(2)}));
}

TEST_F(AlertStoreTest, FullStoreDropsTheOldestAndCountsThem)
{
    ga::AlertStore s(4096);
    std::string err;
    ASSERT_TRUE(s.open(dir(), err)) << err;
    for (int i = 0; i < 200; ++i)
        ASSERT_NE(append(s, alert(i)), ga::AlertStore::AppendResult::TooLarge);
    const auto got = unsent(s);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), alert(199));
    EXPECT_NE(got.front(), alert(0));
    EXPECT_EQ(s.dropped() + got.size(), 200U);
    EXPECT_EQ(append(s, std::string(5000, 'x')), ga::AlertStore::AppendResult::TooLarge);
}

TEST_F(AlertStoreTest, ATornTailIsCutAndAppendsContinueAfterIt)
{
    {
        ga::AlertStore s(64 * 1024);
        std::string err;
        ASSERT_TRUE(s.open(dir(), err)) << err;
        for (int i = 0; i < 3; ++i)
            ASSERT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::Stored);
    }
    {
        // A power cut in the middle of a record: a whole header, then half of its payload.
        const std::uint32_t head[6] = {0x4C414147U, 48, 99, 0, 0, 0}; // magic "GAAL", len, seq
        std::ofstream f(dir_ / "alerts.journal", std::ios::binary | std::ios::app);
        f.write(reinterpret_cast<const char*>(head), sizeof head);
        f.write("{\"machine\":{\"tem", 17);
    }
    {
        ga::AlertStore s(64 * 1024);
        std::string err;
        ASSERT_TRUE(s.open(dir(), err)) << err;
        EXPECT_EQ(s.depth(), 3U);
        ASSERT_EQ(append(s, alert(3)), ga::AlertStore::AppendResult::Stored);
    }
    ga::AlertStore again(64 * 1024);
    std::string err;
    ASSERT_TRUE(again.open(dir(), err)) << err;
    EXPECT_EQ(unsent(again), (std::vector<std::string>{alert(0), alert(1), alert(2), alert(3)}));
}

TEST_F(AlertStoreTest, TheJournalStaysBoundedThroughALongOutage)
{
    ga::AlertStore s(8192);
    std::string err;
    ASSERT_TRUE(s.open(dir(), err)) << err;
    std::uint64_t largest = 0;
    for (int i = 0; i < 6000; ++i)
    {
        ASSERT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::Stored);
        if (i % 100 == 0)
            s.maintain(i);
        largest = std::max<std::uint64_t>(largest, fs::file_size(dir_ / "alerts.journal"));
    }
    // 6000 alerts of ~45 bytes are ~400 KB appended; the journal is rewritten well before that.
    EXPECT_LT(largest, 256U * 1024U + 2U * 8192U + 100U * 80U);
    s.maintain(1'000'000);
    ga::AlertStore again(8192);
    ASSERT_TRUE(again.open(dir(), err)) << err;
    const auto got = unsent(again);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), alert(5999)); // the newest survive the rewrite, in order
    EXPECT_EQ(got.size(), s.depth());
}

TEST_F(AlertStoreTest, AnUnwritableStateDirKeepsAlertsInMemoryCountsThemAndRecovers)
{
    // A regular file where a directory should be: nothing can be created below it.
    const fs::path blocker = dir_ / "blocker";
    std::ofstream(blocker) << "x";
    const std::string missing = (blocker / "state").string();
    ga::AlertStore s(64 * 1024);
    std::string err;
    EXPECT_FALSE(s.open(missing, err));
    EXPECT_NE(err.find("blocker/state"), std::string::npos) << err; // the error names the place
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(append(s, alert(i)), ga::AlertStore::AppendResult::NotDurable);
    EXPECT_EQ(s.not_persisted(), 3U);
    EXPECT_EQ(unsent(s).size(), 3U); // still sent

    s.maintain(0); // still failing: nothing written, nothing lost
    EXPECT_EQ(s.depth(), 3U);
    fs::remove(blocker);
    fs::create_directories(blocker);
    s.maintain(5'000); // within the 10 s retry delay: not yet
    EXPECT_FALSE(fs::exists(fs::path(missing) / "alerts.journal"));
    s.maintain(20'000); // the state dir is created again and the journal written from memory
    ASSERT_TRUE(fs::exists(fs::path(missing) / "alerts.journal"));
    EXPECT_EQ(append(s, alert(3)), ga::AlertStore::AppendResult::Stored);

    ga::AlertStore again(64 * 1024);
    ASSERT_TRUE(again.open(missing, err)) << err;
    EXPECT_EQ(unsent(again), (std::vector<std::string>{alert(0), alert(1), alert(2), alert(3)}));
}

} // namespace
