// SPDX-License-Identifier: MIT
#include "alert_log.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace
{
namespace fs = std::filesystem;
using ga::AlertLog;
using ga::AlertLogLimits;
using Policy = AlertLog::Policy;
using Result = AlertLog::AppendResult;

// A fresh directory per test under the system temp dir.
class AlertLogTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               ("ga-alog-" + std::to_string(::getpid()) + "-" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    [[nodiscard]] std::string dir() const { return dir_.string(); }
    [[nodiscard]] std::vector<fs::path> segments() const
    {
        std::vector<fs::path> out;
        for (const auto& e : fs::directory_iterator(dir_))
            if (e.path().extension() == ".log")
                out.push_back(e.path());
        std::sort(out.begin(), out.end());
        return out;
    }

    fs::path dir_;
};

std::string alert(int i, std::size_t pad = 0)
{
    return R"({"machine":{"temperature":30},"seq":)" + std::to_string(i) + "}" +
           std::string(pad, ' ');
}

std::uint64_t
add(AlertLog& log, const std::string& a, Policy p = Policy::Wait, std::int64_t wall = 0)
{
    std::uint64_t seq = 0;
    const auto r = log.append(a, p, wall, seq);
    EXPECT_TRUE(r == Result::Appended || r == Result::NotDurable) << static_cast<int>(r);
    return seq;
}

// Everything the log hands out now (acknowledging nothing).
std::vector<std::string> unsent(AlertLog& log, std::vector<std::uint64_t>* seqs = nullptr)
{
    std::vector<std::string> out;
    std::vector<char> buf(70000);
    std::uint64_t seq = 0;
    std::size_t len = 0;
    while (log.next_unsent(seq, buf, len))
    {
        out.emplace_back(buf.data(), len);
        if (seqs != nullptr)
            seqs->push_back(seq);
    }
    return out;
}

// Everything the log hands out, each acknowledged once handed out (no window limit).
std::vector<std::string> unsent_acking(AlertLog& log)
{
    std::vector<std::string> out;
    std::vector<char> buf(70000);
    std::uint64_t seq = 0;
    std::size_t len = 0;
    while (log.next_unsent(seq, buf, len))
    {
        out.emplace_back(buf.data(), len);
        log.ack(seq);
    }
    return out;
}

std::vector<std::string> alerts(int from, int to)
{
    std::vector<std::string> v;
    for (int i = from; i < to; ++i)
        v.push_back(alert(i));
    return v;
}

AlertLogLimits small_limits()
{
    AlertLogLimits l;
    l.max_bytes = 1ULL << 20;
    l.segment_bytes = 4096;
    l.max_record = 4096;
    return l;
}

TEST_F(AlertLogTest, AppendCommitSendAckRoundTrip)
{
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(add(log, alert(i)), static_cast<std::uint64_t>(i + 1));
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(log.depth(), 5U);
    std::vector<std::uint64_t> seqs;
    EXPECT_EQ(unsent(log, &seqs), alerts(0, 5));
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
    for (const auto s : seqs)
        log.ack(s);
    EXPECT_EQ(log.depth(), 0U);
    EXPECT_TRUE(unsent(log).empty());
    EXPECT_GT(log.disk_bytes(), 0U);
}

TEST_F(AlertLogTest, ReopenContinuesSeqAndResendsOnlyUnacknowledged)
{
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 10; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
        std::vector<std::uint64_t> seqs;
        (void)unsent(log, &seqs);
        for (int i = 0; i < 4; ++i)
            log.ack(seqs[static_cast<std::size_t>(i)]);
        log.maintain(1000000, 0);
        EXPECT_TRUE(fs::exists(dir_ / "alerts-acked"));
    }
    AlertLog again(small_limits());
    std::string err;
    ASSERT_TRUE(again.open(dir(), 0, err)) << err;
    EXPECT_EQ(again.depth(), 6U);
    std::vector<std::uint64_t> seqs;
    EXPECT_EQ(unsent(again, &seqs), alerts(4, 10));
    EXPECT_EQ(seqs.front(), 5U);
    EXPECT_EQ(add(again, alert(10)), 11U);
}

TEST_F(AlertLogTest, CloseWithoutMaintainPersistsTheWatermark)
{
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 3; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
        std::vector<std::uint64_t> seqs;
        (void)unsent(log, &seqs);
        log.ack(seqs[0]);
        log.close();
    }
    AlertLog again(small_limits());
    std::string err;
    ASSERT_TRUE(again.open(dir(), 0, err)) << err;
    EXPECT_EQ(unsent(again), alerts(1, 3));
}

TEST_F(AlertLogTest, OutOfOrderAcksMoveTheWatermarkOnlyOverAContiguousPrefix)
{
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 6; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
        EXPECT_EQ(unsent(log).size(), 6U);
        log.ack(3);
        log.ack(5);
        EXPECT_EQ(log.depth(), 4U);
        log.ack(1);
        log.ack(2);  // the watermark is now 3: 1, 2, 3 acknowledged; 5 waits for 4
        log.ack(2);  // a duplicate is harmless
        log.ack(99); // unknown too
        EXPECT_EQ(log.depth(), 2U);
        log.close();
    }
    AlertLog again(small_limits());
    std::string err;
    ASSERT_TRUE(again.open(dir(), 0, err)) << err;
    std::vector<std::uint64_t> seqs;
    EXPECT_EQ(unsent(again, &seqs), alerts(3, 6)); // 5 again: at least once
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST_F(AlertLogTest, RewindHandsOutEverythingUnacknowledgedAgain)
{
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 5; ++i)
        (void)add(log, alert(i));
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(unsent(log).size(), 5U);
    log.ack(1);
    log.ack(3);
    log.rewind_unsent();
    std::vector<std::uint64_t> seqs;
    (void)unsent(log, &seqs);
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{2, 3, 4, 5}));
    EXPECT_EQ(log.depth(), 4U);
    for (const auto s : seqs)
        log.ack(s);
    EXPECT_EQ(log.depth(), 0U);
}

TEST_F(AlertLogTest, TheInFlightWindowIsBounded)
{
    AlertLogLimits l = small_limits();
    l.max_inflight = 3;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 5; ++i)
        (void)add(log, alert(i));
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(unsent(log).size(), 3U);
    log.ack(2); // out of order: the window stays full until 1 is acknowledged
    EXPECT_TRUE(unsent(log).empty());
    log.ack(1);
    std::vector<std::uint64_t> seqs;
    (void)unsent(log, &seqs);
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{4, 5}));
}

TEST_F(AlertLogTest, AcknowledgedSegmentsAreDeletedWhole)
{
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 200; ++i)
        (void)add(log, alert(i, 60));
    ASSERT_TRUE(log.commit());
    const auto before = segments();
    ASSERT_GE(before.size(), 4U);
    const std::uint64_t bytes_before = log.disk_bytes();
    std::vector<std::uint64_t> seqs;
    (void)unsent(log, &seqs);
    for (std::size_t i = 0; i < 100; ++i)
        log.ack(seqs[i]);
    log.maintain(1000000, 0);
    const auto after = segments();
    EXPECT_LT(after.size(), before.size());
    EXPECT_LT(log.disk_bytes(), bytes_before);
    // The survivors are the newest files, untouched.
    for (const auto& p : after)
        EXPECT_NE(std::find(before.begin(), before.end(), p), before.end());
    EXPECT_EQ(after.back(), before.back());
    for (std::size_t i = 100; i < seqs.size(); ++i)
        log.ack(seqs[i]);
    log.maintain(2000000, 0);
    EXPECT_EQ(segments().size(), 1U); // the appendable tail stays
    EXPECT_EQ(log.depth(), 0U);
}

TEST_F(AlertLogTest, WaitAppendsGetFullAtTheBoundAndRoomReturnsAfterAcks)
{
    AlertLogLimits l = small_limits();
    l.max_bytes = 64 * 1024;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    std::uint64_t seq = 0;
    int n = 0;
    while (log.append(alert(n, 100), Policy::Wait, 0, seq) == Result::Appended)
        ++n;
    EXPECT_GT(n, 300);
    EXPECT_LE(log.disk_bytes(), l.max_bytes);
    EXPECT_TRUE(log.full(alert(0, 100).size()));
    EXPECT_EQ(log.dropped(), 0U);
    EXPECT_EQ(log.depth(), static_cast<std::uint64_t>(n));
    ASSERT_TRUE(log.commit());
    std::vector<std::uint64_t> seqs;
    (void)unsent(log, &seqs);
    for (std::size_t i = 0; i < 100; ++i)
        log.ack(seqs[i]);
    log.maintain(1000000, 0);
    EXPECT_FALSE(log.full(alert(0, 100).size()));
    EXPECT_EQ(log.append(alert(n, 100), Policy::Wait, 0, seq), Result::Appended);
}

TEST_F(AlertLogTest, DropOldestDeletesTheOldestSegmentsAndCountsThem)
{
    AlertLogLimits l = small_limits();
    l.max_bytes = 64 * 1024;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    const int n = 3000;
    for (int i = 0; i < n; ++i)
    {
        std::uint64_t seq = 0;
        ASSERT_EQ(log.append(alert(i, 100), Policy::DropOldest, 0, seq), Result::Appended);
    }
    ASSERT_TRUE(log.commit());
    EXPECT_LE(log.disk_bytes(), l.max_bytes);
    EXPECT_GT(log.dropped(), 0U);
    EXPECT_EQ(log.dropped() + log.depth(), static_cast<std::uint64_t>(n));
    std::vector<std::uint64_t> seqs;
    const auto got = unsent(log, &seqs);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(seqs.front(), log.dropped() + 1); // the oldest went
    EXPECT_EQ(got.back(), alert(n - 1, 100));
}

TEST_F(AlertLogTest, ALoweredBoundOnReopenTrimsTheOldestCountsAndKeepsTheRest)
{
    const std::string big(60000, 'x');
    {
        AlertLogLimits l;
        l.max_bytes = 4ULL << 20;
        l.segment_bytes = 64 * 1024;
        AlertLog log(l);
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 20000; ++i)
            (void)add(log, alert(i, 100));
        (void)add(log, big);
        ASSERT_TRUE(log.commit());
        EXPECT_GT(log.disk_bytes(), 2ULL << 20);
    }
    AlertLogLimits lowered;
    lowered.max_bytes = 256 * 1024;
    AlertLog log(lowered);
    std::string err;
    ::testing::internal::CaptureStderr();
    ASSERT_TRUE(log.open(dir(), 0, err)) << err; // far over the bound: loads and trims
    const std::string said = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("[queue] max_bytes lowered to 262144"), std::string::npos) << said;
    EXPECT_LE(log.disk_bytes(), lowered.max_bytes);
    EXPECT_GT(log.dropped(), 0U);
    EXPECT_GT(log.depth(), 0U); // not emptied
    EXPECT_EQ(log.dropped() + log.depth(), 20001U);
    const std::uint64_t depth = log.depth();
    const auto got = unsent_acking(log);
    ASSERT_FALSE(got.empty());
    EXPECT_TRUE(got.back() == big); // the big record survives
    EXPECT_EQ(got.size(), depth);
}

// Offset of record `i` (0-based) in a segment of equal-size records.
// Where the records of a segment file end (the first offset that does not hold a record magic).
std::uint64_t records_end(const fs::path& seg)
{
    std::ifstream in(seg, std::ios::binary);
    std::uint64_t off = 32;
    for (;;)
    {
        std::uint32_t head[2] = {};
        in.seekg(static_cast<std::streamoff>(off));
        if (!in.read(reinterpret_cast<char*>(head), sizeof head) || head[0] != 0x52414147U)
            return off;
        off += 32 + head[1];
    }
}

std::uint64_t record_offset(std::size_t i, std::size_t payload)
{
    return 32 + i * (32 + payload);
}

void flip_byte(const fs::path& p, std::uint64_t off)
{
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(off));
    f.put(static_cast<char>(c ^ 0x5A));
}

TEST_F(AlertLogTest, ACorruptRecordIsSkippedCountedAndLaterRecordsStillDelivered)
{
    const std::size_t payload = alert(0).size();
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 10; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
    }
    ASSERT_EQ(segments().size(), 1U);
    flip_byte(segments()[0], record_offset(4, payload) + 32 + 5); // payload of the 5th
    flip_byte(segments()[0], record_offset(7, payload) + 4);      // length of the 8th
    AlertLog log(small_limits());
    std::string err;
    ::testing::internal::CaptureStderr();
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    (void)::testing::internal::GetCapturedStderr();
    EXPECT_EQ(log.corrupt(), 2U);
    std::vector<std::string> want = alerts(0, 10);
    want.erase(want.begin() + 7);
    want.erase(want.begin() + 4);
    EXPECT_EQ(unsent(log), want);
    EXPECT_EQ(add(log, alert(10)), 11U);
}

// Records are handed out from a window of recent segment bytes in memory (appends copied in,
// misses filled by one read of up to 16 KiB): records of every size, read while appending and
// from a backlog many windows long, after a rewind, come out whole and in order.
TEST_F(AlertLogTest, RecordsReadThroughTheMemoryWindowComeOutWholeInEveryPattern)
{
    AlertLogLimits l;
    l.max_bytes = 8ULL << 20;
    l.segment_bytes = 1ULL << 20;
    l.max_inflight = 1024;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    std::vector<std::string> want;
    std::vector<char> buf(70000);
    std::uint64_t seq = 0;
    std::size_t len = 0;
    // Caught up: each record read right after its append (sizes up to 20 KiB, over the window).
    for (int i = 0; i < 200; ++i)
    {
        want.push_back(alert(i, static_cast<std::size_t>((i * 977) % 20000)));
        (void)add(log, want.back());
        ASSERT_TRUE(log.next_unsent(seq, buf, len));
        EXPECT_EQ(seq, static_cast<std::uint64_t>(i + 1));
        ASSERT_EQ(std::string(buf.data(), len), want.back()) << i;
        log.ack(seq);
    }
    // A backlog of about 40 windows, then read in one go.
    std::vector<std::string> backlog;
    for (int i = 200; i < 900; ++i)
    {
        backlog.push_back(alert(i, static_cast<std::size_t>((i * 131) % 1500)));
        (void)add(log, backlog.back());
    }
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(unsent(log), backlog);
    // Everything unacknowledged again after a rewind (reads start far behind the window).
    log.rewind_unsent();
    EXPECT_EQ(unsent_acking(log), backlog);
    EXPECT_EQ(log.depth(), 0U);
}

// A record damaged on disk after it left the memory window is caught by its CRC when read
// back, not handed out.
TEST_F(AlertLogTest, ARecordDamagedOnDiskIsNotHandedOutWhenReadBack)
{
    AlertLogLimits l;
    l.max_bytes = 8ULL << 20;
    l.segment_bytes = 1ULL << 20;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    const std::size_t payload = alert(0, 400).size();
    std::vector<std::string> want;
    for (int i = 0; i < 200; ++i) // 200 * 432 bytes: the first records are out of the window
    {
        want.push_back(alert(i, 400 - (std::to_string(i).size() - 1)));
        ASSERT_EQ(want.back().size(), payload);
        (void)add(log, want.back());
    }
    ASSERT_TRUE(log.commit());
    ASSERT_EQ(segments().size(), 1U);
    flip_byte(segments()[0], record_offset(4, payload) + 32 + 5); // payload of the 5th
    std::vector<std::uint64_t> seqs;
    const std::vector<std::string> got = unsent(log, &seqs);
    ASSERT_EQ(got.size(), seqs.size());
    EXPECT_EQ(std::find(seqs.begin(), seqs.end(), 5U), seqs.end());
    EXPECT_EQ(got.size(), want.size() - 1);
    for (std::size_t k = 0; k < got.size(); ++k)
        EXPECT_EQ(got[k], want[static_cast<std::size_t>(seqs[k] - 1)]) << seqs[k];
}

TEST_F(AlertLogTest, ATornTailIsCutAndAppendsContinueAfterIt)
{
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 5; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
    }
    const fs::path seg = segments().at(0);
    const auto good = fs::file_size(seg);
    {
        // Half of a sixth record: its header says more bytes than the file has.
        std::ifstream in(seg, std::ios::binary);
        std::string head(40, '\0');
        in.seekg(32);
        in.read(head.data(), 40);
        std::ofstream out(seg, std::ios::binary | std::ios::app);
        out.write(head.data(), 40);
    }
    {
        AlertLog log(small_limits());
        std::string err;
        ::testing::internal::CaptureStderr();
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        EXPECT_NE(::testing::internal::GetCapturedStderr().find("torn tail"), std::string::npos);
        EXPECT_EQ(fs::file_size(seg), good);
        EXPECT_EQ(log.corrupt(), 0U);
        EXPECT_EQ(add(log, alert(5)), 6U);
        ASSERT_TRUE(log.commit());
    }
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    EXPECT_EQ(unsent(log), alerts(0, 6));
    EXPECT_EQ(log.corrupt(), 0U);
}

TEST_F(AlertLogTest, AppendsReachTheFileAtCommitAndReadBackBeforeIt)
{
    AlertLogLimits l = small_limits();
    l.segment_bytes = 1ULL << 20;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    // ~26 KiB: more than the log's own cache of recent bytes, less than the write buffer.
    std::vector<std::string> want;
    for (int i = 0; i < 200; ++i)
    {
        want.push_back(alert(i, 60));
        (void)add(log, want.back());
    }
    ASSERT_EQ(segments().size(), 1U);
    EXPECT_EQ(fs::file_size(segments()[0]), 0U); // not even the header is written yet
    EXPECT_EQ(unsent(log), want);                // read back from the buffer
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(log.commits(), 1U);
    EXPECT_EQ(records_end(segments()[0]), fs::file_size(segments()[0])); // all of it, whole
    EXPECT_GT(fs::file_size(segments()[0]), 200U * 100U);
    log.rewind_unsent();
    EXPECT_EQ(unsent(log), want); // now from the file
    log.close();
    AlertLog again(l);
    ASSERT_TRUE(again.open(dir(), 0, err)) << err;
    EXPECT_EQ(unsent(again), want);
}

// CRC-32 (IEEE) one bit at a time: the reference the log's table-driven CRC must match.
std::uint32_t crc32_bitwise(std::string_view bytes)
{
    std::uint32_t c = 0xFFFFFFFFU;
    for (const char ch : bytes)
    {
        c ^= static_cast<unsigned char>(ch);
        for (int k = 0; k < 8; ++k)
            c = (c >> 1U) ^ (0xEDB88320U & (0U - (c & 1U)));
    }
    return ~c;
}

template <typename T> void put(std::string& out, T v)
{
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

TEST_F(AlertLogTest, AReloadedTailReadBeforeAppendsIsReadWholeAfterThem)
{
    {
        AlertLog log(small_limits());
        std::string err;
        ASSERT_TRUE(log.open(dir(), 0, err)) << err;
        for (int i = 0; i < 5; ++i)
            (void)add(log, alert(i));
        ASSERT_TRUE(log.commit());
    }
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    std::vector<char> buf(70000);
    std::uint64_t seq = 0;
    std::size_t len = 0;
    // One reloaded record handed out: the segment is read through its own read handle.
    ASSERT_TRUE(log.next_unsent(seq, buf, len));
    EXPECT_EQ(std::string(buf.data(), len), alert(0));
    // Appends grow the same segment through the write handle, then roll over to new ones.
    for (int i = 5; i < 120; ++i)
        (void)add(log, alert(i, 60));
    ASSERT_TRUE(log.commit());
    ASSERT_GE(segments().size(), 3U);
    std::vector<std::string> want = alerts(1, 5);
    for (int i = 5; i < 120; ++i)
        want.push_back(alert(i, 60));
    EXPECT_EQ(unsent(log), want);
    EXPECT_EQ(log.corrupt(), 0U);
}

TEST_F(AlertLogTest, ASegmentFramedByHandWithPlainCrc32Loads)
{
    ASSERT_EQ(crc32_bitwise("123456789"), 0xCBF43926U); // the check value of CRC-32
    // The layout at the top of alert_log.cpp, built here without the log's code, so files
    // written by any version stay readable whatever the CRC's implementation.
    std::string seg;
    put<std::uint64_t>(seg, 0x3147455341414147ULL);
    put<std::uint32_t>(seg, 1);
    put<std::uint32_t>(seg, 32);
    put<std::uint64_t>(seg, 1);
    put<std::uint32_t>(seg, 0);
    put<std::uint32_t>(seg, crc32_bitwise(seg));
    const std::vector<std::string> want = {
        "a", "bc", "def", "ghij", "klmno", R"({"machine":{"temperature":31.5},"seq":7})"};
    std::uint64_t seq = 1;
    for (const auto& w : want)
    {
        std::string covered;
        put<std::uint32_t>(covered, static_cast<std::uint32_t>(w.size()));
        put<std::uint64_t>(covered, seq++);
        put<std::int64_t>(covered, 0);
        put<std::uint32_t>(covered, 0);
        put<std::uint32_t>(seg, 0x52414147U);
        seg += covered;
        put<std::uint32_t>(seg, crc32_bitwise(covered + w));
        seg += w;
    }
    {
        std::ofstream out(dir_ / "alerts-0000000000000001.log", std::ios::binary);
        out.write(seg.data(), static_cast<std::streamsize>(seg.size()));
    }
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    EXPECT_EQ(log.corrupt(), 0U);
    EXPECT_EQ(unsent(log), want);
}

TEST_F(AlertLogTest, ASegmentOfANewerFormatIsKeptUntouchedAndRefused)
{
    // Our magic, version 2, first seq 1000, then bytes this agent cannot read.
    const fs::path newer = dir_ / "alerts-00000000000003e8.log";
    std::string content(32, '\0');
    const std::uint64_t magic = 0x3147455341414147ULL;
    const std::uint32_t version = 2;
    const std::uint64_t first = 1000;
    std::memcpy(content.data(), &magic, 8);
    std::memcpy(content.data() + 8, &version, 4);
    std::memcpy(content.data() + 16, &first, 8);
    content += std::string(500, '\x42');
    {
        std::ofstream out(newer, std::ios::binary);
        out << content;
    }
    AlertLog log(small_limits());
    std::string err;
    ::testing::internal::CaptureStderr();
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    const std::string said = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("alerts-00000000000003e8.log"), std::string::npos) << said;
    EXPECT_NE(said.find("version 2"), std::string::npos) << said;
    EXPECT_EQ(log.depth(), 0U);
    const std::uint64_t seq = add(log, alert(0));
    EXPECT_GT(seq, 1000U); // numbering continues above anything it may hold
    ASSERT_TRUE(log.commit());
    std::vector<std::uint64_t> seqs;
    (void)unsent(log, &seqs);
    for (const auto s : seqs)
        log.ack(s);
    log.maintain(1000000, 0);
    log.close();
    ASSERT_TRUE(fs::exists(newer));
    std::ifstream in(newer, std::ios::binary);
    const std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(now, content);
}

TEST_F(AlertLogTest, ARecordOverMaxRecordIsRefusedWithoutSideEffects)
{
    AlertLog log(small_limits());
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    std::uint64_t seq = 77;
    EXPECT_EQ(log.append(std::string(4097, 'x'), Policy::DropOldest, 0, seq), Result::TooLarge);
    EXPECT_EQ(seq, 77U);
    EXPECT_EQ(log.disk_bytes(), 0U);
    EXPECT_EQ(log.depth(), 0U);
    EXPECT_EQ(add(log, std::string(4096, 'y')), 1U);
}

TEST_F(AlertLogTest, AlertsOlderThanMaxAgeAreDroppedAndCounted)
{
    AlertLogLimits l = small_limits();
    l.max_age_s = 10;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 100; ++i) // many segments, wholly expired
        (void)add(log, alert(i, 60), Policy::Wait, 100);
    for (int i = 100; i < 105; ++i) // the tail segment: partly expired
        (void)add(log, alert(i), Policy::Wait, 150);
    for (int i = 105; i < 110; ++i)
        (void)add(log, alert(i), Policy::Wait, 200);
    ASSERT_TRUE(log.commit());
    std::vector<std::uint64_t> seqs;
    ASSERT_EQ(unsent(log, &seqs).size(), 110U);
    log.ack(seqs[102]); // acknowledged: not counted as dropped
    log.maintain(1000, 205);
    EXPECT_EQ(log.dropped(), 104U);
    EXPECT_EQ(log.depth(), 5U);
    log.rewind_unsent();
    EXPECT_EQ(unsent(log), alerts(105, 110));
    EXPECT_LE(segments().size(), 2U);
}

TEST_F(AlertLogTest, OneFdatasyncPerTouchedSegmentPerCommit)
{
    AlertLogLimits l = small_limits();
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    for (int i = 0; i < 20; ++i)
        (void)add(log, alert(i));
    EXPECT_EQ(log.commits(), 0U);
    ASSERT_TRUE(log.commit());
    EXPECT_EQ(log.commits(), 1U);
    ASSERT_TRUE(log.commit()); // nothing pending: no sync
    EXPECT_EQ(log.commits(), 1U);
    const std::size_t segs_before = segments().size();
    for (int i = 0; i < 200; ++i) // ~16 KiB over 4 KiB segments
        (void)add(log, alert(i, 30));
    ASSERT_TRUE(log.commit());
    const std::size_t touched = segments().size() - segs_before + 1;
    EXPECT_EQ(log.commits(), 1U + touched);
}

TEST_F(AlertLogTest, AnEmptyDirKeepsTheLogInMemory)
{
    AlertLogLimits l = small_limits();
    l.memory_bytes = 8192;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open("", 0, err));
    std::uint64_t seq = 0;
    int n = 0;
    while (log.append(alert(n), Policy::Wait, 0, seq) == Result::Appended)
        ++n;
    EXPECT_GT(n, 50);
    EXPECT_EQ(log.depth(), static_cast<std::uint64_t>(n));
    EXPECT_EQ(log.append(alert(n), Policy::DropOldest, 0, seq), Result::Appended);
    EXPECT_EQ(log.dropped(), 1U);
    EXPECT_TRUE(log.commit());
    const auto got = unsent(log);
    EXPECT_EQ(got.front(), alert(1));
    EXPECT_EQ(got.back(), alert(n));
    EXPECT_EQ(log.not_persisted(), 0U);
}

TEST_F(AlertLogTest, AnUnusableDirRunsInMemoryCountsAndRecovers)
{
    const fs::path blocker = dir_ / "state";
    {
        std::ofstream out(blocker); // a file where the dir should be
    }
    AlertLog log(small_limits());
    std::string err;
    EXPECT_FALSE(log.open(blocker.string(), 0, err));
    EXPECT_FALSE(err.empty());
    std::uint64_t seq = 0;
    EXPECT_EQ(log.append(alert(0), Policy::Wait, 0, seq), Result::Full);
    EXPECT_TRUE(log.full(10));
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(log.append(alert(i), Policy::DropOldest, 0, seq), Result::NotDurable);
    EXPECT_EQ(log.not_persisted(), 5U);
    EXPECT_FALSE(log.commit());
    std::vector<std::uint64_t> seqs;
    EXPECT_EQ(unsent(log, &seqs), alerts(0, 5));
    log.ack(seqs[0]);
    // Repaired: the next probe (about 5 s later) finds the dir usable.
    fs::remove(blocker);
    ::testing::internal::CaptureStderr();
    log.maintain(0, 0);
    log.maintain(6000, 0);
    const std::string said = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("alert log: the state dir takes writes again"), std::string::npos) << said;
    EXPECT_EQ(segments().size(), 0U); // the dir is blocker, not dir_
    EXPECT_EQ(log.append(alert(5), Policy::Wait, 0, seq), Result::Appended);
    EXPECT_TRUE(log.commit());
    (void)unsent(log, &seqs);
    EXPECT_EQ(seqs.back(), seq);
    log.close();
    AlertLog again(small_limits());
    ASSERT_TRUE(again.open(blocker.string(), 0, err)) << err;
    EXPECT_EQ(unsent(again), alerts(1, 6)); // the memory-held ones became durable
}

// ENOSPC for real: a 64 KiB tmpfs in a private mount namespace, in a child process (root only).
TEST_F(AlertLogTest, ADiskFullAtRunTimeIsSaidOnceKeepsAlertsInMemoryAndRecovers)
{
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root for a private tmpfs";
    const std::string d = dir();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
    {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", d.c_str(), "tmpfs", 0, "size=64k") != 0)
            ::_exit(77);
        int code = 0;
        {
            AlertLogLimits l;
            l.max_record = 4096;
            l.segment_bytes = 8192;
            l.memory_bytes = 16 * 1024; // fits the tmpfs once it has room again
            AlertLog log(l);
            std::string err;
            if (!log.open(d, 0, err))
                ::_exit(10);
            std::uint64_t seq = 0;
            for (int i = 0; i < 3; ++i)
                if (log.append(alert(i), AlertLog::Policy::DropOldest, 0, seq) !=
                    AlertLog::AppendResult::Appended)
                    ::_exit(11);
            if (!log.commit())
                ::_exit(12);
            {
                std::ofstream fill(d + "/filler", std::ios::binary);
                const std::string block(4096, '\0');
                for (int i = 0; i < 64 && fill; ++i)
                    fill.write(block.data(), static_cast<std::streamsize>(block.size()));
            }
            int not_durable = 0;
            for (int i = 3; i < 1003; ++i)
            {
                const auto r = log.append(alert(i, 200), AlertLog::Policy::DropOldest, 0, seq);
                not_durable += r == AlertLog::AppendResult::NotDurable ? 1 : 0;
            }
            if (not_durable == 0 || log.not_persisted() == 0)
                ::_exit(13);
            if (log.append(alert(0), AlertLog::Policy::Wait, 0, seq) !=
                AlertLog::AppendResult::Full)
                ::_exit(14);
            // Disk records first, then the memory ones, in seq order.
            std::vector<std::uint64_t> seqs;
            const auto got = unsent(log, &seqs);
            if (got.size() < 4 || got[0] != alert(0) || !std::is_sorted(seqs.begin(), seqs.end()) ||
                got.back() != alert(1002, 200))
                ::_exit(15);
            fs::remove(d + "/filler");
            log.maintain(0, 0);
            log.maintain(6000, 0);
            if (log.append(alert(2000), AlertLog::Policy::Wait, 0, seq) !=
                    AlertLog::AppendResult::Appended ||
                !log.commit())
                ::_exit(16);
        }
        ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        GTEST_SKIP() << "no private mount namespace here";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "check that failed in the child";
}

std::uint64_t rss_kib()
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stoull(line.substr(6));
    return 0;
}

TEST_F(AlertLogTest, AMillionAlertsThroughAOneMebibyteBoundKeepMemoryFlat)
{
    AlertLogLimits l;
    l.max_bytes = 1ULL << 20;
    AlertLog log(l);
    std::string err;
    ASSERT_TRUE(log.open(dir(), 0, err)) << err;
    std::vector<char> buf(l.max_record);
    std::uint64_t rss_at_100k = 0;
    std::uint64_t seq = 0;
    std::size_t len = 0;
    std::string a = alert(0);
    for (int i = 1; i <= 1000000; ++i)
    {
        ASSERT_EQ(log.append(a, Policy::DropOldest, i / 1000, seq), Result::Appended);
        if (i % 4096 == 0)
        {
            ASSERT_TRUE(log.commit());
            // A slow consumer: some are sent and acknowledged, most are dropped.
            for (int k = 0; k < 256 && log.next_unsent(seq, buf, len); ++k)
                log.ack(seq);
            log.maintain(i * 4, i / 1000);
        }
        if (i == 100000)
            rss_at_100k = rss_kib();
    }
    ASSERT_TRUE(log.commit());
    const std::uint64_t rss_end = rss_kib();
    EXPECT_LE(log.disk_bytes(), l.max_bytes);
    EXPECT_GT(log.dropped(), 900000U);
#ifdef GA_UNDER_EMULATOR
    constexpr std::uint64_t kSlackKib = 4096; // qemu-user's own memory grows too
#else
    constexpr std::uint64_t kSlackKib = 2048;
#endif
    EXPECT_LT(rss_end, rss_at_100k + kSlackKib)
        << rss_at_100k << " KiB at 100k, " << rss_end << " KiB at 1M";
    EXPECT_LE(segments().size(), 10U);
}

} // namespace
