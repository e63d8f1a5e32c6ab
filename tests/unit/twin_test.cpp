// SPDX-License-Identifier: MIT
#include "twin.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

namespace
{

using ga::DesiredUpdate;
using ga::ThresholdState;
using ga::TwinError;

TEST(TwinParse, GetDocumentFromProtocolDoc)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_twin_document(
                  R"J({"desired":{"telemetrySendFrequency":"5m","$version":12},
 "reported":{"telemetrySendFrequency":"5m","batteryLevel":55,"$version":123}})J",
                  u),
              TwinError::None);
    EXPECT_EQ(u.version, 12);
    EXPECT_EQ(u.threshold, ThresholdState::Absent);
    EXPECT_EQ(u.property_count, 1);
}

TEST(TwinParse, GetDocumentWithThreshold)
{
    DesiredUpdate u;
    ASSERT_EQ(
        ga::parse_twin_document(
            R"J({"desired":{"TemperatureThreshold":30.5,"$version":4,"$metadata":{"x":1}},)J"
            R"J("reported":{"TemperatureThreshold":{"value":25,"ac":200,"av":3},"$version":9}})J",
            u),
        TwinError::None);
    EXPECT_EQ(u.version, 4);
    EXPECT_EQ(u.threshold, ThresholdState::Valid);
    EXPECT_EQ(u.value, 30.5);
    EXPECT_EQ(u.property_count, 1); // $version and $metadata are not properties
}

TEST(TwinParse, GetDocumentErrors)
{
    DesiredUpdate u;
    EXPECT_EQ(ga::parse_twin_document(R"J({"reported":{"$version":1}})J", u), TwinError::NotJson);
    EXPECT_EQ(ga::parse_twin_document(R"J({"desired":5})J", u), TwinError::NotJson);
    EXPECT_EQ(
        ga::parse_twin_document(R"J({"desired":{"$version":1},"desired":{"$version":2}})J", u),
        TwinError::NotJson);
    EXPECT_EQ(ga::parse_twin_document(R"J({"desired":{"a":1}})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_twin_document(R"J([1,2])J", u), TwinError::NotJson);
    EXPECT_EQ(ga::parse_twin_document("", u), TwinError::NotJson);
    EXPECT_EQ(ga::parse_twin_document(" ", u), TwinError::NotJson);
}

TEST(TwinParse, PatchValidNumbers)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":27,"$version":8})J", u),
              TwinError::None);
    EXPECT_EQ(u.version, 8);
    EXPECT_EQ(u.threshold, ThresholdState::Valid);
    EXPECT_EQ(u.value, 27.0);
    EXPECT_EQ(u.property_count, 1);

    ASSERT_EQ(ga::parse_desired_patch(R"J({"$version":9,"TemperatureThreshold":-1.25e2})J", u),
              TwinError::None);
    EXPECT_EQ(u.value, -125.0);
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":0,"$version":10})J", u),
              TwinError::None);
    EXPECT_EQ(u.threshold, ThresholdState::Valid);
    EXPECT_EQ(u.value, 0.0);
}

TEST(TwinParse, PatchWithOtherPropertiesOnly)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_desired_patch(
                  R"J({"telemetrySendFrequency":"5m","route":null,"$version":8})J", u),
              TwinError::None);
    EXPECT_EQ(u.threshold, ThresholdState::Absent);
    EXPECT_EQ(u.property_count, 2);
    EXPECT_EQ(u.version, 8);
}

TEST(TwinParse, PatchInvalidValues)
{
    const std::array<std::pair<const char*, std::string_view>, 7> cases{{
        {R"J({"TemperatureThreshold":"hot","$version":2})J", "not a number (string)"},
        {R"J({"TemperatureThreshold":"30","$version":2})J", "not a number (string)"},
        {R"J({"TemperatureThreshold":null,"$version":2})J", "not a number (null)"},
        {R"J({"TemperatureThreshold":true,"$version":2})J", "not a number (bool)"},
        {R"J({"TemperatureThreshold":{"value":30},"$version":2})J", "not a number (object)"},
        {R"J({"TemperatureThreshold":[30],"$version":2})J", "not a number (array)"},
        {R"J({"TemperatureThreshold":1e999,"$version":2})J", "not a finite number"},
    }};
    for (const auto& [body, reason] : cases)
    {
        DesiredUpdate u;
        ASSERT_EQ(ga::parse_desired_patch(body, u), TwinError::None) << body;
        EXPECT_EQ(u.threshold, ThresholdState::Invalid) << body;
        EXPECT_EQ(u.invalid_reason, reason) << body;
        EXPECT_EQ(u.version, 2);
        EXPECT_EQ(u.property_count, 1);
    }
}

TEST(TwinParse, DuplicateThresholdIsInvalid)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_desired_patch(
                  R"J({"TemperatureThreshold":20,"TemperatureThreshold":40,"$version":2})J", u),
              TwinError::None);
    EXPECT_EQ(u.threshold, ThresholdState::Invalid);
    EXPECT_EQ(u.invalid_reason, "duplicate key");
}

TEST(TwinParse, KeysAreCaseSensitive)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_desired_patch(R"J({"temperatureThreshold":20,"$version":2})J", u),
              TwinError::None);
    EXPECT_EQ(u.threshold, ThresholdState::Absent);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":20,"$Version":2})J", u),
              TwinError::NoVersion);
}

TEST(TwinParse, VersionMustBeOneIntegerNumber)
{
    DesiredUpdate u;
    EXPECT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":20})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"$version":"3"})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"$version":null})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"$version":3.5})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"$version":1e300})J", u), TwinError::NoVersion);
    EXPECT_EQ(ga::parse_desired_patch(R"J({"$version":1,"$version":2})J", u), TwinError::NoVersion);
    ASSERT_EQ(ga::parse_desired_patch(R"J({"$version":4503599627370495})J", u), TwinError::None);
    EXPECT_EQ(u.version, 4503599627370495);
    EXPECT_EQ(u.property_count, 0);
}

TEST(TwinParse, NotJsonBodies)
{
    DesiredUpdate u;
    for (std::string_view body :
         {std::string_view(""), std::string_view("{"), std::string_view("null"),
          std::string_view("\"x\""), std::string_view("42"), std::string_view("[]"),
          std::string_view(R"J({"$version":1} trailing)J"),
          std::string_view(R"J({"$version":1}})J"), std::string_view("{\"$version\":1}\0junk", 18),
          std::string_view("{'a':1}")})
    {
        EXPECT_EQ(ga::parse_desired_patch(body, u), TwinError::NotJson) << body;
    }
    // Whitespace around the object is fine.
    EXPECT_EQ(ga::parse_desired_patch(" \r\n{\"$version\":1}\n ", u), TwinError::None);
}

TEST(TwinParse, OutputResetEachCall)
{
    DesiredUpdate u;
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":"hot","$version":5})J", u),
              TwinError::None);
    ASSERT_EQ(ga::parse_desired_patch(R"J({"$version":6})J", u), TwinError::None);
    EXPECT_EQ(u.threshold, ThresholdState::Absent);
    EXPECT_TRUE(u.invalid_reason.empty());
    EXPECT_EQ(u.version, 6);
}

TEST(TwinVersion, StalePatchesAreIgnored)
{
    // The GET's desired.$version is applied; later patches must be newer.
    DesiredUpdate got;
    ASSERT_EQ(
        ga::parse_twin_document(R"J({"desired":{"TemperatureThreshold":30,"$version":7}})J", got),
        TwinError::None);
    std::int64_t applied = got.version;
    DesiredUpdate p;
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":40,"$version":7})J", p),
              TwinError::None);
    EXPECT_FALSE(ga::is_newer_version(p.version, applied));
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":40,"$version":6})J", p),
              TwinError::None);
    EXPECT_FALSE(ga::is_newer_version(p.version, applied));
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":40,"$version":8})J", p),
              TwinError::None);
    EXPECT_TRUE(ga::is_newer_version(p.version, applied));
    applied = p.version;
    EXPECT_FALSE(ga::is_newer_version(8, applied));
    EXPECT_TRUE(ga::is_newer_version(9, applied));
}

TEST(TwinArena, HugeDocumentIsTooLargeNotACrash)
{
    // Bigger than the arena itself.
    std::string body = R"J({"$version":1,"big":")J" + std::string(ga::kTwinArenaBytes, 'x') + "\"}";
    DesiredUpdate u;
    EXPECT_EQ(ga::parse_desired_patch(body, u), TwinError::TooLarge);

    // Small in bytes but many nodes: the tree outgrows the arena while parsing.
    std::string many = R"J({"$version":1,"a":[)J";
    for (int i = 0; i < 60000; ++i)
    {
        many += "1,";
    }
    many += "1]}";
    ASSERT_LT(many.size(), ga::kTwinArenaBytes);
    EXPECT_EQ(ga::parse_desired_patch(many, u), TwinError::TooLarge);
    EXPECT_EQ(ga::parse_twin_document(R"J({"desired":)J" + many + "}", u), TwinError::TooLarge);

    // The arena is reset: a normal document parses right after.
    ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":21,"$version":3})J", u),
              TwinError::None);
    EXPECT_EQ(u.value, 21.0);
}

TEST(TwinArena, ManyParsesDoNotLeakTheArena)
{
    DesiredUpdate u;
    for (int i = 0; i < 10000; ++i)
    {
        ASSERT_EQ(ga::parse_desired_patch(R"J({"TemperatureThreshold":21,"$version":3,"pad":)J"
                                          R"J("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})J",
                                          u),
                  TwinError::None);
    }
}

TEST(TwinArena, DeepNesting)
{
    DesiredUpdate u;
    // Past cJSON's nesting limit: rejected, not a stack overflow.
    std::string deep = R"J({"$version":1,"a":)J";
    deep += std::string(5000, '[');
    deep += std::string(5000, ']');
    deep += "}";
    EXPECT_EQ(ga::parse_desired_patch(deep, u), TwinError::NotJson);
    // Within the limit it parses; the threshold at the top level is still found.
    std::string ok = R"J({"$version":2,"TemperatureThreshold":22,"a":)J";
    ok += std::string(500, '[');
    ok += std::string(500, ']');
    ok += "}";
    ASSERT_EQ(ga::parse_desired_patch(ok, u), TwinError::None);
    EXPECT_EQ(u.value, 22.0);
    // Unbalanced deep nesting.
    EXPECT_EQ(ga::parse_desired_patch(std::string(200000, '{'), u), TwinError::NotJson);
}

TEST(TwinDescribe, EveryError)
{
    EXPECT_STREQ(ga::describe(TwinError::None), "ok");
    EXPECT_STREQ(ga::describe(TwinError::NotJson), "not a JSON object");
    EXPECT_STREQ(ga::describe(TwinError::TooLarge), "twin document too large");
    EXPECT_STREQ(ga::describe(TwinError::NoVersion),
                 "desired properties without a numeric $version");
}

// Builders -------------------------------------------------------------------------------------

TEST(TwinBuild, ThresholdAckExact)
{
    char buf[256];
    ga::BufWriter w(buf);
    ASSERT_TRUE(ga::build_threshold_ack(25, 200, 3, "applied", w));
    EXPECT_EQ(w.view(),
              R"J({"TemperatureThreshold":{"value":25,"ac":200,"av":3,"ad":"applied"}})J");

    w.clear();
    ASSERT_TRUE(ga::build_threshold_ack(30.1, 400, 12, "not a number (string)", w));
    EXPECT_EQ(w.view(), R"J({"TemperatureThreshold":{"value":30.1,"ac":400,"av":12,)J"
                        R"J("ad":"not a number (string)"}})J");

    w.clear();
    ASSERT_TRUE(ga::build_threshold_ack(-0.5, 200, 0, "", w));
    EXPECT_EQ(w.view(), R"J({"TemperatureThreshold":{"value":-0.5,"ac":200,"av":0,"ad":""}})J");

    w.clear();
    ASSERT_TRUE(ga::build_threshold_ack(1e300, 200, 9007199254740993, "x", w));
    EXPECT_EQ(
        w.view(),
        R"J({"TemperatureThreshold":{"value":1e+300,"ac":200,"av":9007199254740993,"ad":"x"}})J");
}

TEST(TwinBuild, ThresholdAckEscapesDescription)
{
    char buf[256];
    ga::BufWriter w(buf);
    ASSERT_TRUE(ga::build_threshold_ack(1, 400, 1, "a\"b\\c\nd\te\x01\x1f caf\xC3\xA9 \xFF!", w));
    EXPECT_EQ(w.view(), R"J({"TemperatureThreshold":{"value":1,"ac":400,"av":1,)J"
                        R"J("ad":"a\"b\\c\nd\te\u0001\u001f café \ufffd!"}})J");
}

TEST(TwinBuild, ThresholdAckRefusesNonFiniteAndSmallBuffers)
{
    char buf[256];
    ga::BufWriter w(buf);
    EXPECT_FALSE(ga::build_threshold_ack(std::numeric_limits<double>::infinity(), 200, 1, "", w));
    w.clear();
    EXPECT_FALSE(ga::build_threshold_ack(std::nan(""), 200, 1, "", w));
    char small[20];
    ga::BufWriter s(small);
    EXPECT_FALSE(ga::build_threshold_ack(25, 200, 3, "applied", s));
}

double round_trip_value(std::string_view json)
{
    cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
    EXPECT_NE(root, nullptr) << json;
    if (root == nullptr)
    {
        return std::nan("");
    }
    const cJSON* t = cJSON_GetObjectItemCaseSensitive(root, "TemperatureThreshold");
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(t, "value");
    const double d = cJSON_IsNumber(v) ? v->valuedouble : std::nan("");
    cJSON_Delete(root);
    return d;
}

TEST(TwinBuild, ThresholdAckRoundTripsThroughCjson)
{
    for (double v : {25.0, 30.1, -40.0, 0.1 + 0.2, 1.0 / 3.0, 123456.789, 5e-324,
                     1.7976931348623157e308, -2.2250738585072014e-308})
    {
        char buf[256];
        ga::BufWriter w(buf);
        ASSERT_TRUE(ga::build_threshold_ack(v, 200, 7, "ok", w));
        EXPECT_EQ(round_trip_value(w.view()), v) << w.view();
        // And through our own parser, as a desired value.
        std::string patch = R"J({"$version":7,"TemperatureThreshold":)J";
        const auto vs = w.view();
        const auto start = vs.find(":{\"value\":") + 10;
        patch += std::string(vs.substr(start, vs.find(",\"ac\"") - start)) + "}";
        DesiredUpdate u;
        ASSERT_EQ(ga::parse_desired_patch(patch, u), TwinError::None) << patch;
        EXPECT_EQ(u.value, v) << patch;
    }
}

TEST(TwinBuild, RebootTime)
{
    char buf[64];
    ga::BufWriter w(buf);
    ASSERT_TRUE(ga::build_reboot_time_report("2026-11-22T14:31:21Z", w));
    EXPECT_EQ(w.view(), R"J({"rebootTime":"2026-11-22T14:31:21Z"})J");
    char tiny[10];
    ga::BufWriter t(tiny);
    EXPECT_FALSE(ga::build_reboot_time_report("2026-11-22T14:31:21Z", t));
}

TEST(TwinBuild, StatsExact)
{
    ga::Stats s;
    s.messages_received = 100;
    s.source_dropped = 5;
    s.alerts_accepted = 7;
    s.alerts_sent = 6;
    s.rejected[static_cast<std::size_t>(ga::Verdict::NotJson)] = 1;
    s.rejected[static_cast<std::size_t>(ga::Verdict::BadUtf8)] = 2;
    s.rejected[static_cast<std::size_t>(ga::Verdict::TooDeep)] = 3;
    s.rejected[static_cast<std::size_t>(ga::Verdict::TooLarge)] = 4;
    s.rejected[static_cast<std::size_t>(ga::Verdict::PathAbsent)] = 5;
    s.rejected[static_cast<std::size_t>(ga::Verdict::NotNumber)] = 6;
    s.rejected[static_cast<std::size_t>(ga::Verdict::DuplicateKey)] = 7;
    s.twin_patches = 3;
    s.twin_patches_applied = 2;
    s.threshold_changes = 2;
    s.reconnects = 1;
    s.queue_depth = 0;
    s.queue_dropped = 18446744073709551615ULL;
    s.queue_not_persisted = 9;
    s.alerts_resent = 11;
    s.inputs_waited = 12;
    s.queue_corrupt = 13;
    s.store_commits = 14;
    char buf[700];
    ga::BufWriter w(buf);
    ASSERT_TRUE(ga::build_stats_report(s, w));
    EXPECT_EQ(
        w.view(),
        R"J({"agentStats":{"messagesReceived":100,"sourceDropped":5,"alertsAccepted":7,"alertsSent":6,)J"
        R"J("rejected":{"not_json":1,"bad_utf8":2,"too_deep":3,"too_large":4,)J"
        R"J("path_absent":5,"not_number":6,"duplicate_key":7,"bad_properties":0},)J"
        R"J("twinPatches":3,)J"
        R"J("twinPatchesApplied":2,"thresholdChanges":2,"reconnects":1,"queueDepth":0,)J"
        R"J("queueDropped":18446744073709551615,"queueNotPersisted":9,"alertsResent":11,)J"
        R"J("inputsWaited":12,"queueCorrupt":13,"storeCommits":14}})J");

    cJSON* root = cJSON_ParseWithLength(w.view().data(), w.view().size());
    ASSERT_NE(root, nullptr);
    const cJSON* stats = cJSON_GetObjectItemCaseSensitive(root, "agentStats");
    EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(stats, "alertsSent")->valuedouble, 6.0);
    EXPECT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stats, "rejected")), 8);
    cJSON_Delete(root);

    char small[100];
    ga::BufWriter sw(small);
    EXPECT_FALSE(ga::build_stats_report(s, sw));
}

} // namespace
