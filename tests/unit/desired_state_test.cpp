// SPDX-License-Identifier: MIT
#include "desired_state.h"

#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <string>
#include <string_view>

namespace
{

using ga::DesiredOrigin;
using ga::StoredDesired;

std::string serialize(const StoredDesired& s)
{
    std::array<char, 256> buf{};
    ga::BufWriter w(buf);
    EXPECT_TRUE(ga::serialize_desired_state(s, w));
    return std::string(w.view());
}

TEST(DesiredState, SerializesTheDocumentedFormat)
{
    StoredDesired s;
    s.version = 7;
    s.has_threshold = true;
    s.threshold = 30;
    s.origin = DesiredOrigin::TwinPatch;
    EXPECT_EQ(serialize(s),
              "gateway-agent desired-threshold 1\nversion=7\nthreshold=30\nfrom=twin patch\n");
    s.has_threshold = false;
    s.origin = DesiredOrigin::TwinGet;
    EXPECT_EQ(serialize(s),
              "gateway-agent desired-threshold 1\nversion=7\nthreshold=none\nfrom=twin GET\n");
}

TEST(DesiredState, RoundTripsExactly)
{
    for (const double t : {30.0, 25.0001, -3.5, 0.1, 1e300, -0.0, 4.9e-324})
    {
        StoredDesired s;
        s.version = 9'000'000'000;
        s.has_threshold = true;
        s.threshold = t;
        s.origin = DesiredOrigin::TwinGet;
        StoredDesired back;
        ASSERT_EQ(ga::parse_desired_state(serialize(s), back), nullptr) << t;
        EXPECT_EQ(back.version, s.version);
        EXPECT_TRUE(back.has_threshold);
        EXPECT_EQ(back.threshold, t);
        EXPECT_EQ(back.origin, DesiredOrigin::TwinGet);
    }
    StoredDesired none;
    none.version = 0;
    StoredDesired back;
    back.has_threshold = true;
    ASSERT_EQ(ga::parse_desired_state(serialize(none), back), nullptr);
    EXPECT_FALSE(back.has_threshold);
    EXPECT_EQ(back.version, 0);
}

TEST(DesiredState, RefusesWhatCannotBeStoredFaithfully)
{
    std::array<char, 256> buf{};
    ga::BufWriter w(buf);
    StoredDesired s;
    s.version = -1;
    EXPECT_FALSE(ga::serialize_desired_state(s, w));
    s.version = 1;
    s.has_threshold = true;
    s.threshold = std::numeric_limits<double>::infinity();
    EXPECT_FALSE(ga::serialize_desired_state(s, w));
    std::array<char, 20> small{};
    ga::BufWriter sw(small);
    s.threshold = 1;
    EXPECT_FALSE(ga::serialize_desired_state(s, sw));
}

TEST(DesiredState, ParsesStrictly)
{
    const std::string good =
        "gateway-agent desired-threshold 1\nversion=7\nthreshold=30\nfrom=twin patch\n";
    StoredDesired out;
    ASSERT_EQ(ga::parse_desired_state(good, out), nullptr);
    const std::pair<std::string, std::string_view> bad[] = {
        {"", "bad header"},
        {"garbage\n", "bad header"},
        {"gateway-agent desired-threshold 2\nversion=7\n",
         "unknown format (written by a newer agent?)"},
        {good.substr(0, good.size() - 1), "bad from line"}, // cut: no final newline
        {"gateway-agent desired-threshold 1\nversion=-7\nthreshold=30\nfrom=twin GET\n",
         "bad version line"},
        {"gateway-agent desired-threshold 1\nversion=\nthreshold=30\nfrom=twin GET\n",
         "bad version line"},
        {"gateway-agent desired-threshold 1\nversion=7 \nthreshold=30\nfrom=twin GET\n",
         "bad version line"},
        {"gateway-agent desired-threshold 1\nversion=99999999999999999999\nthreshold=30\n"
         "from=twin GET\n",
         "bad version line"},
        {"gateway-agent desired-threshold 1\nthreshold=30\nversion=7\nfrom=twin GET\n",
         "bad version line"},
        {"gateway-agent desired-threshold 1\nversion=7\nthreshold=nan\nfrom=twin GET\n",
         "bad threshold line"},
        {"gateway-agent desired-threshold 1\nversion=7\nthreshold=inf\nfrom=twin GET\n",
         "bad threshold line"},
        {"gateway-agent desired-threshold 1\nversion=7\nthreshold=30x\nfrom=twin GET\n",
         "bad threshold line"},
        {"gateway-agent desired-threshold 1\nversion=7\nthreshold=\nfrom=twin GET\n",
         "bad threshold line"},
        {"gateway-agent desired-threshold 1\nversion=7\nthreshold=30\nfrom=conf\n",
         "bad from line"},
        {"gateway-agent desired-threshold 1\r\nversion=7\nthreshold=30\nfrom=twin GET\n",
         "unknown format (written by a newer agent?)"},
        {good + "extra\n", "unexpected text after the last line"},
        {good + std::string(600, 'x'), "too large"},
    };
    for (const auto& [text, why] : bad)
    {
        StoredDesired untouched;
        untouched.version = 42;
        const char* r = ga::parse_desired_state(text, untouched);
        ASSERT_NE(r, nullptr) << text;
        EXPECT_EQ(std::string_view(r), why) << text;
        EXPECT_EQ(untouched.version, 42) << "output written on failure";
    }
}

TEST(DesiredState, DescribesTheThresholdSource)
{
    std::array<char, 64> buf{};
    ga::BufWriter w(buf);
    ga::describe_threshold_source(nullptr, false, w);
    EXPECT_EQ(w.view(), "default");
    w.clear();
    ga::describe_threshold_source(nullptr, true, w);
    EXPECT_EQ(w.view(), "conf");
    StoredDesired s;
    s.version = 12;
    w.clear();
    ga::describe_threshold_source(&s, true, w); // a version without a twin threshold
    EXPECT_EQ(w.view(), "conf");
    s.has_threshold = true;
    s.threshold = 30;
    w.clear();
    ga::describe_threshold_source(&s, false, w);
    EXPECT_EQ(w.view(), "twin ($version 12, stored)");
}

} // namespace
