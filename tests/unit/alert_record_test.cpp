// SPDX-License-Identifier: MIT
#include "alert_record.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace
{

std::string head_for(std::string_view bag, ga::ForwardResult expect = ga::ForwardResult::Ok)
{
    std::array<char, ga::kMaxAlertHead> buf{};
    std::size_t n = 0;
    EXPECT_EQ(ga::build_alert_head(bag, buf, n), expect);
    return std::string(buf.data(), n);
}

TEST(AlertRecord, HeadThenPayloadRoundTrips)
{
    const std::string head = head_for("a=1&%24.mid=m%2D1&%24.cdid=edgedev&MessageType=x");
    const std::string payload = R"({"machine":{"temperature":30}})";
    const std::string record = head + payload;
    const auto rec = ga::parse_alert_record(record);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->forwarded, "a=1&%24.mid=m-1");
    EXPECT_EQ(rec->present, ga::kForwardedMid);
    EXPECT_EQ(rec->payload, payload);
}

TEST(AlertRecord, NoBagGivesAnEmptyHead)
{
    const std::string head = head_for("");
    EXPECT_EQ(head, std::string("\x01\x00\x00\x00", 4));
    const std::string record = head + "{}";
    const auto rec = ga::parse_alert_record(record);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->forwarded, "");
    EXPECT_EQ(rec->present, 0);
    EXPECT_EQ(rec->payload, "{}");
}

TEST(AlertRecord, ARecordWithoutHeadIsAPayload)
{
    // Stores written before properties travelled hold the payload alone.
    for (std::string_view old :
         {std::string_view(R"({"t":1})"), std::string_view(" {}"), std::string_view("")})
    {
        const auto rec = ga::parse_alert_record(old);
        ASSERT_TRUE(rec);
        EXPECT_EQ(rec->payload, old);
        EXPECT_EQ(rec->forwarded, "");
        EXPECT_EQ(rec->present, 0);
    }
}

TEST(AlertRecord, ABrokenHeadIsRefused)
{
    using namespace std::string_literals;
    EXPECT_FALSE(ga::parse_alert_record("\x01\x00\x00"s)); // short head
    EXPECT_FALSE(ga::parse_alert_record("\x01\x00\x05\x00"
                                        "a=1"s));                // length past the end
    EXPECT_FALSE(ga::parse_alert_record("\x01\x10\x00\x00{}"s)); // unknown flag
    EXPECT_FALSE(ga::parse_alert_record("\x01\x00\xFD\x0F"s + std::string(4093, 'a'))); // > max
    EXPECT_FALSE(ga::parse_alert_record("\x01\x00\x03\x00"
                                        "a/b{}"s)); // not our spelling
    EXPECT_FALSE(ga::parse_alert_record("\x01\x00\x03\x00"
                                        "a=%{}"s)); // bad escape
    EXPECT_TRUE(ga::parse_alert_record("\x01\x00\x03\x00"
                                       "a=b{}"s));
}

TEST(AlertRecord, BadBagsAreRefusedAtTheHead)
{
    (void)head_for("a=%G1", ga::ForwardResult::Malformed);
    (void)head_for("%24.cid=1&%24.cid=2", ga::ForwardResult::BadSystemProperty);
    (void)head_for("k=" + std::string(ga::kMaxForwardedBag, 'v'), ga::ForwardResult::TooLarge);
    // Exactly at the bound fits, and the head fits the 4 KiB beside the largest payload.
    const std::string at = head_for("k=" + std::string(ga::kMaxForwardedBag - 2, 'v'));
    EXPECT_EQ(at.size(), ga::kMaxAlertHead);
    EXPECT_EQ(ga::kMaxAlertHead, 4096U);
    // Dropped properties do not count against the bound.
    (void)head_for("%24.cdid=" + std::string(8000, 'd') + "&k=v");
    std::array<char, 10> small{};
    std::size_t n = 0;
    EXPECT_EQ(ga::build_alert_head("", small, n), ga::ForwardResult::TooLarge);
}

TEST(AlertRecord, GeneratedMessageIdIsStableAndValid)
{
    std::array<char, ga::kMaxGeneratedIdLen> buf{};
    ga::BufWriter w(buf);
    ga::append_alert_message_id(0x00c0ffee12345678ULL, 42, w);
    EXPECT_EQ(w.view(), "ga-00c0ffee12345678-42");
    ga::BufWriter w2(buf);
    ga::append_alert_message_id(~0ULL, ~0ULL, w2);
    ASSERT_TRUE(w2.ok());
    EXPECT_EQ(w2.view(), "ga-ffffffffffffffff-18446744073709551615");
    // The id is one IoT Hub takes as a $.mid, so forwarding it again keeps it.
    std::array<char, 128> out{};
    ga::BufWriter fw(out);
    std::uint8_t present = 0;
    EXPECT_EQ(ga::copy_forwarded_properties("%24.mid=" + std::string(w2.view()), fw, present),
              ga::ForwardResult::Ok);
    EXPECT_EQ(present, ga::kForwardedMid);
}

} // namespace
