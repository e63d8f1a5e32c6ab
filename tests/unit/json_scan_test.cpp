// SPDX-License-Identifier: MIT
#include "json_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>

namespace ga
{
// Lets GoogleTest print verdicts by name in failure messages.
void PrintTo(Verdict v, std::ostream* os)
{
    *os << verdict_name(v);
}
} // namespace ga

namespace
{

using ga::Verdict;
using namespace std::literals;

constexpr std::string_view kSeedMessage =
    R"({"machine":{"temperature":26.53,"pressure":1.38},"ambient":{"temperature":21.17,"humidity":25},"timeCreated":"2026-11-22T14:31:21.1234567Z"})";

ga::FieldPath path_of(std::string_view dotted)
{
    ga::FieldPath p;
    EXPECT_TRUE(ga::parse_field_path(dotted, p)) << dotted;
    return p;
}

ga::ScanResult scan(std::string_view msg,
                    std::string_view dotted = "machine.temperature",
                    double threshold = 25.0,
                    const ga::ScanLimits& limits = {})
{
    const ga::FieldPath p = path_of(dotted);
    return ga::scan_sensor_message(msg, p, threshold, limits);
}

Verdict verdict(std::string_view msg,
                std::string_view dotted = "machine.temperature",
                double threshold = 25.0)
{
    return scan(msg, dotted, threshold).verdict;
}

// A sensor body with `temp` spliced in verbatim as machine.temperature.
std::string body(std::string_view temp)
{
    return R"({"machine":{"temperature":)"s + std::string(temp) +
           R"(,"pressure":1.38},"ambient":{"temperature":21.17,"humidity":25},"timeCreated":"2026-11-22T14:31:21.1234567Z"})";
}

std::string nested(std::size_t depth, std::string_view inner = "1")
{
    return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

// --- verdict names and field paths ---

TEST(JsonScan, VerdictNamesAreStableSnakeCase)
{
    EXPECT_STREQ(ga::verdict_name(Verdict::Above), "above");
    EXPECT_STREQ(ga::verdict_name(Verdict::NotAbove), "not_above");
    EXPECT_STREQ(ga::verdict_name(Verdict::NotJson), "not_json");
    EXPECT_STREQ(ga::verdict_name(Verdict::BadUtf8), "bad_utf8");
    EXPECT_STREQ(ga::verdict_name(Verdict::TooDeep), "too_deep");
    EXPECT_STREQ(ga::verdict_name(Verdict::TooLarge), "too_large");
    EXPECT_STREQ(ga::verdict_name(Verdict::PathAbsent), "path_absent");
    EXPECT_STREQ(ga::verdict_name(Verdict::NotNumber), "not_number");
    EXPECT_STREQ(ga::verdict_name(Verdict::DuplicateKey), "duplicate_key");
    for (std::size_t i = 0; i < ga::kVerdictCount; ++i)
    {
        const auto v = static_cast<Verdict>(i);
        EXPECT_EQ(ga::is_rejection(v), v != Verdict::Above && v != Verdict::NotAbove);
    }
}

TEST(JsonScan, ParseFieldPath)
{
    ga::FieldPath p;
    ASSERT_TRUE(ga::parse_field_path("machine.temperature", p));
    ASSERT_EQ(p.count, 2U);
    EXPECT_EQ(p.segments[0], "machine");
    EXPECT_EQ(p.segments[1], "temperature");
    ASSERT_TRUE(ga::parse_field_path("t", p));
    ASSERT_EQ(p.count, 1U);
    EXPECT_EQ(p.segments[0], "t");
    ASSERT_TRUE(ga::parse_field_path("a.b.c.d.e.f.g.h", p));
    EXPECT_EQ(p.count, 8U);

    ga::FieldPath untouched;
    ASSERT_TRUE(ga::parse_field_path("x.y", untouched));
    EXPECT_FALSE(ga::parse_field_path("", untouched));
    EXPECT_FALSE(ga::parse_field_path(".", untouched));
    EXPECT_FALSE(ga::parse_field_path("a.", untouched));
    EXPECT_FALSE(ga::parse_field_path(".a", untouched));
    EXPECT_FALSE(ga::parse_field_path("a..b", untouched));
    EXPECT_FALSE(ga::parse_field_path("a.b.c.d.e.f.g.h.i", untouched));
    // A failed parse leaves the output as it was.
    EXPECT_EQ(untouched.count, 2U);
    EXPECT_EQ(untouched.segments[0], "x");
}

TEST(JsonScan, EmptyFieldPathFindsNothing)
{
    const ga::FieldPath empty;
    EXPECT_EQ(ga::scan_sensor_message(kSeedMessage, empty, 25.0).verdict, Verdict::PathAbsent);
    EXPECT_EQ(ga::scan_sensor_message("{", empty, 25.0).verdict, Verdict::NotJson);
}

// --- the seed's own messages ---

TEST(JsonScan, SeedMessageAboveThreshold)
{
    const auto r = scan(kSeedMessage);
    EXPECT_EQ(r.verdict, Verdict::Above);
    EXPECT_EQ(r.value, 26.53);
    EXPECT_TRUE(ga::is_valid_json(kSeedMessage));
}

TEST(JsonScan, SeedMessagesAgainstThresholds)
{
    EXPECT_EQ(verdict(kSeedMessage, "machine.temperature", 30.0), Verdict::NotAbove);
    EXPECT_EQ(verdict(kSeedMessage, "machine.temperature", 26.53), Verdict::NotAbove);
    EXPECT_EQ(verdict(kSeedMessage, "machine.temperature", 26.529999), Verdict::Above);
    EXPECT_EQ(verdict(kSeedMessage, "ambient.temperature", 25.0), Verdict::NotAbove);
    EXPECT_EQ(verdict(kSeedMessage, "ambient.temperature", 21.0), Verdict::Above);
    EXPECT_EQ(verdict(kSeedMessage, "ambient.humidity", 24.0), Verdict::Above);
    EXPECT_EQ(scan(kSeedMessage, "machine.pressure", 0.0).value, 1.38);
    EXPECT_EQ(verdict(kSeedMessage, "timeCreated"), Verdict::NotNumber);
    EXPECT_EQ(verdict(kSeedMessage, "machine"), Verdict::NotNumber);
    EXPECT_EQ(verdict(kSeedMessage, "machine.humidity"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(kSeedMessage, "Machine.temperature"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(kSeedMessage, "machine.temperature.x"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(kSeedMessage, "timeCreated.x"), Verdict::PathAbsent);
}

TEST(JsonScan, PrettyPrintedSeedMessage)
{
    const std::string pretty = "{\r\n  \"machine\": {\n\t\"temperature\" : 21.327583548458235 ,\n"
                               "    \"pressure\": 1.0354\n  },\n  \"ambient\": {\"temperature\": "
                               "20.9, \"humidity\": 24},\n  \"timeCreated\": \"2026-11-22\"\n}\n";
    const auto r = scan(pretty, "machine.temperature", 21.0);
    EXPECT_EQ(r.verdict, Verdict::Above);
    EXPECT_EQ(r.value, 21.327583548458235);
}

// --- numbers at and around the threshold in every spelling ---

struct NumberCase
{
    const char* text;
    Verdict expected;
};

TEST(JsonScan, ThresholdTwentyFiveInEverySpelling)
{
    const NumberCase cases[] = {
        {"24.9", Verdict::NotAbove},
        {"25", Verdict::NotAbove},
        {"25.0", Verdict::NotAbove},
        {"25.0001", Verdict::Above},
        {"26.5", Verdict::Above},
        {"2.6e1", Verdict::Above},
        {"-3", Verdict::NotAbove},
        {"100.25", Verdict::Above},
        {"2.5e1", Verdict::NotAbove},
        {"2.5E+1", Verdict::NotAbove},
        {"250e-1", Verdict::NotAbove},
        {"0.25e2", Verdict::NotAbove},
        {"25.0000000000000001", Verdict::NotAbove}, // rounds to exactly 25.0
        {"25.000000000000004", Verdict::Above},     // the next double after 25 is 25+3.55e-15
        {"-0", Verdict::NotAbove},
        {"-0.0", Verdict::NotAbove},
        {"0", Verdict::NotAbove},
        {"1e400", Verdict::Above},
        {"-1e400", Verdict::NotAbove},
        {"1e-400", Verdict::NotAbove},
        {"1E+99999999999999999999999", Verdict::Above},
    };
    for (const auto& c : cases)
    {
        EXPECT_EQ(verdict(body(c.text)), c.expected) << c.text;
    }
}

TEST(JsonScan, ValuesAreCorrectlyRounded)
{
    EXPECT_EQ(scan(body("25.0000000000000001")).value, 25.0);
    EXPECT_EQ(scan(body("2.5e1")).value, 25.0);
    EXPECT_EQ(scan(body("21.327583548458235")).value, 21.327583548458235);
    EXPECT_EQ(scan(body("0.1")).value, 0.1);
    EXPECT_EQ(scan(body("1.7976931348623157e308")).value, std::numeric_limits<double>::max());
    EXPECT_EQ(scan(body("4.9406564584124654e-324")).value,
              std::numeric_limits<double>::denorm_min());
    const double neg_zero = scan(body("-0")).value;
    EXPECT_EQ(neg_zero, 0.0);
    EXPECT_TRUE(std::signbit(neg_zero));
}

TEST(JsonScan, OutOfRangeMagnitudesBecomeInfinityOrZero)
{
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(scan(body("1e400")).value, inf);
    EXPECT_EQ(scan(body("-1e400")).value, -inf);
    EXPECT_EQ(scan(body("1.7976931348623159e308")).value, inf); // rounds past DBL_MAX
    const double tiny = scan(body("1e-400")).value;
    EXPECT_EQ(tiny, 0.0);
    EXPECT_FALSE(std::signbit(tiny));
    const double neg_tiny = scan(body("-1e-400")).value;
    EXPECT_EQ(neg_tiny, 0.0);
    EXPECT_TRUE(std::signbit(neg_tiny));
    EXPECT_EQ(scan(body("2.4e-324")).value, 0.0);
    // The magnitude, not the exponent's sign, decides: these are huge and tiny respectively.
    EXPECT_EQ(scan(body("1" + std::string(500, '0') + "e-10")).value, inf);
    EXPECT_EQ(scan(body("0." + std::string(500, '0') + "1e10")).value, 0.0);
    EXPECT_EQ(scan(body("0e99999")).value, 0.0);
    EXPECT_EQ(scan(body("-0.0e-99999999999999999999")).value, 0.0);
}

TEST(JsonScan, LongNumbersStillRoundCorrectly)
{
    // 25 followed by a 1 far beyond double precision is still 25, so not above.
    const std::string just_above = "25." + std::string(800, '0') + "1";
    EXPECT_EQ(verdict(body(just_above)), Verdict::NotAbove);
    EXPECT_EQ(scan(body("2" + std::string(300, '0'))).value, 2e300);
}

TEST(JsonScan, InvalidNumberSpellingsAreNotJson)
{
    for (const char* bad : {"+25",  "025",      "00",        "25.", ".5",
                            "2.5e", "2.5e+",    "1e1.5",     "--1", "-",
                            "0x19", "Infinity", "-Infinity", "NaN", "25f",
                            "2 5",  "1.e3",     "-.5",       "1E",  "\xEF\xBC\x92\xEF\xBC\x95"})
    {
        EXPECT_EQ(verdict(body(bad)), Verdict::NotJson) << bad;
    }
}

TEST(JsonScan, NaNThresholdIsNeverExceeded)
{
    EXPECT_EQ(verdict(kSeedMessage, "machine.temperature", std::nan("")), Verdict::NotAbove);
}

// --- values that are not numbers ---

TEST(JsonScan, NonNumbersAtThePath)
{
    for (const char* v :
         {R"("26.5")", "true", "false", "null", "{}", R"({"v":26})", "[26.5]", "[]", R"("")"})
    {
        EXPECT_EQ(verdict(body(v)), Verdict::NotNumber) << v;
    }
}

TEST(JsonScan, PathThroughNonObjectIsAbsent)
{
    EXPECT_EQ(verdict(R"({"machine":[{"temperature":30}]})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine":"hot"})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine":30})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine":null})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict("[1,2]"), Verdict::PathAbsent);
    EXPECT_EQ(verdict("30"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"("machine")"), Verdict::PathAbsent);
    EXPECT_EQ(verdict("{}"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine":{}})"), Verdict::PathAbsent);
}

TEST(JsonScan, OnlyThePathCounts)
{
    // The same key names deeper or elsewhere are not the path.
    EXPECT_EQ(verdict(R"({"x":{"machine":{"temperature":30}}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"temperature":30,"machine":{"x":{"temperature":30}}})"),
              Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"a":[{"machine":{"temperature":30}}],"machine":{"temperature":20}})"),
              Verdict::NotAbove);
    EXPECT_EQ(verdict(R"({"machine":{"inner":{"temperature":30},"temperature":20}})"),
              Verdict::NotAbove);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30}})", "machine.temperature"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"t":30})", "t"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":26}}}}}}}})", "a.b.c.d.e.f.g.h"),
              Verdict::Above);
}

// --- keys: escapes and duplicates ---

TEST(JsonScan, KeysMatchAfterUnescaping)
{
    EXPECT_EQ(verdict(R"({"m\u0061chine":{"temperature":30}})"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"machine":{"\u0074\u0065\u006D\u0070erature":30}})"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"machine":{"temp\/erature":30}})", "machine.temp/erature"),
              Verdict::Above);
    EXPECT_EQ(verdict(R"({"a\"b":30})", "a\"b"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"a\\b":30})", "a\\b"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"a\tb\n\r\b\f":30})", "a\tb\n\r\b\f"), Verdict::Above);
    // Non-ASCII keys: raw UTF-8, \u escape, and a surrogate pair all mean the same bytes.
    EXPECT_EQ(verdict(R"({"température":30})", "température"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"temp\u00e9rature":30})", "température"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"\u20AC":30})", "\xE2\x82\xAC"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"\uD83D\uDE00":30})", "\xF0\x9F\x98\x80"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"\ud83d\ude00":30})", "\xF0\x9F\x98\x80"), Verdict::Above);
    // \u0000 in a key is valid JSON; it matches only a segment holding a NUL.
    EXPECT_EQ(verdict(R"({"a\u0000":30})", "a"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"a\u0000":30})", "a\0"sv), Verdict::Above);
}

TEST(JsonScan, KeysThatOnlyLookAlikeDoNotMatch)
{
    EXPECT_EQ(verdict(R"({"machin":{"temperature":30}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machines":{"temperature":30}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine\u0000":{"temperature":30}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"machine ":{"temperature":30}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"":{"temperature":30}})"), Verdict::PathAbsent);
    EXPECT_EQ(verdict(R"({"m\\u0061chine":{"temperature":30}})"), Verdict::PathAbsent);
    const std::string long_key = R"({")" + std::string(5000, 'm') + R"(":{"temperature":30}})";
    EXPECT_EQ(verdict(long_key), Verdict::PathAbsent);
}

TEST(JsonScan, DuplicateKeyOnThePathIsAmbiguous)
{
    EXPECT_EQ(verdict(R"({"machine":{"temperature":20,"temperature":30}})"), Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"temperature":20}})"), Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30},"machine":{"temperature":20}})"),
              Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30},"machine":5})"), Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"machine":5,"machine":{"temperature":30}})"), Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":"x","temperature":30}})"),
              Verdict::DuplicateKey);
    // A duplicate spelled differently is still a duplicate once unescaped.
    EXPECT_EQ(verdict(R"({"machine":{"temperature":20,"temper\u0061ture":30}})"),
              Verdict::DuplicateKey);
    EXPECT_EQ(verdict(R"({"m\u0061chine":{"temperature":30},"machine":{}})"),
              Verdict::DuplicateKey);
}

TEST(JsonScan, DuplicatesOffThePathAreFine)
{
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"pressure":1,"pressure":2}})"),
              Verdict::Above);
    EXPECT_EQ(verdict(R"({"x":1,"x":2,"machine":{"temperature":30}})"), Verdict::Above);
    EXPECT_EQ(verdict(R"({"a":{"temperature":1,"temperature":2},"machine":{"temperature":30}})"),
              Verdict::Above);
    EXPECT_EQ(verdict(R"({"ambient":{"temperature":1},"ambient":{},"machine":{"temperature":3}})"),
              Verdict::NotAbove);
}

// --- precedence: the whole message is validated first ---

TEST(JsonScan, InvalidMessageIsRejectedEvenWhenThePathIsFine)
{
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30}},)"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30}} x)"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30},"bad":"\x"})"), Verdict::NotJson);
    EXPECT_EQ(verdict("{\"machine\":{\"temperature\":30},\"s\":\"\xFF\"}"), Verdict::BadUtf8);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30},"d":)" + nested(32) + "}"),
              Verdict::TooDeep);
    // A duplicate on the path inside an invalid message is still "invalid" first.
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"temperature":1},)"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":"x"}})"), Verdict::NotNumber);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":"x"}}])"), Verdict::NotJson);
}

// --- structure ---

TEST(JsonScan, EmptyAndWhitespaceOnlyInputIsNotJson)
{
    EXPECT_EQ(verdict(""), Verdict::NotJson);
    EXPECT_EQ(verdict(" \t\r\n"), Verdict::NotJson);
    EXPECT_FALSE(ga::is_valid_json(""));
    EXPECT_FALSE(ga::is_valid_json(std::string_view{}));
}

TEST(JsonScan, TruncatedTextIsNotJson)
{
    const std::string full(kSeedMessage);
    for (std::size_t n = 0; n < full.size(); ++n)
    {
        EXPECT_EQ(verdict(full.substr(0, n)), Verdict::NotJson) << n;
    }
    for (const char* t : {"{", "[", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", "[1,", "\"abc",
                          "tru", "nul", "fals", "\"\\", "\"\\u00", "-"})
    {
        EXPECT_EQ(verdict(t), Verdict::NotJson) << t;
    }
}

TEST(JsonScan, TrailingTextIsNotJson)
{
    const std::string full(kSeedMessage);
    for (const char* tail : {"x", "}", "]", ",", "{}", "0", "\"\"", " 1", "\n{}", "//"})
    {
        EXPECT_EQ(verdict(full + tail), Verdict::NotJson) << tail;
    }
    EXPECT_EQ(verdict(full + " \r\n\t"), Verdict::Above); // trailing whitespace is fine
    EXPECT_EQ(verdict(" \n" + full), Verdict::Above);
}

TEST(JsonScan, StructuralErrorsAreNotJson)
{
    for (const char* bad : {R"({"machine":{"temperature":30,}})",
                            R"({"machine":{"temperature" 30}})",
                            R"({"machine":{"temperature"::30}})",
                            R"({"machine":{temperature:30}})",
                            R"({'machine':{"temperature":30}})",
                            R"({"machine":{"temperature":30]})",
                            R"([1,2})",
                            R"([1 2])",
                            R"([,1])",
                            R"([1,,2])",
                            R"({,})",
                            R"({"a":1 "b":2})",
                            R"({"a"})",
                            R"({1:2})",
                            R"(TRUE)",
                            R"(nulll)",
                            R"(True)",
                            "{\"a\":1}\v",
                            "\f{}",
                            "\xEF\xBB\xBF{}",
                            R"({"machine":{"temperature":30}} /* c */)"})
    {
        EXPECT_EQ(verdict(bad), Verdict::NotJson) << bad;
    }
}

TEST(JsonScan, ScalarsAndEmptyContainersAreValidJson)
{
    for (const char* ok : {"0", "-0", "1.5e-3", "true", "false", "null", R"("")", R"("x")", "[]",
                           "{}", "[[],{}]", R"({"":""})", " [ 1 , 2 ] ", R"([null,true,false])"})
    {
        EXPECT_TRUE(ga::is_valid_json(ok)) << ok;
    }
}

// --- strings ---

TEST(JsonScan, StringsAsValuesAreValidatedButNotNumbers)
{
    EXPECT_EQ(verdict(R"({"machine":{"temperature":"26.53"}})"), Verdict::NotNumber);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"a \"quoted\" \\ \/ \b\f\n\r\t"}})"),
              Verdict::Above);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"\u00e9\u20AC\uD83D\uDE00"}})"),
              Verdict::Above);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"\q"}})"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"\u12G4"}})"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"\U1234"}})"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":"\u123"}})"), Verdict::NotJson);
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":'x'}})"), Verdict::NotJson);
}

TEST(JsonScan, ControlCharactersMustBeEscaped)
{
    for (int c = 0; c < 0x20; ++c)
    {
        std::string msg = R"({"machine":{"temperature":30,"note":"a)";
        msg += static_cast<char>(c);
        msg += R"("}})";
        EXPECT_EQ(verdict(msg), Verdict::NotJson) << c;
    }
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"note":")"
                      "\x7F"
                      R"("}})"),
              Verdict::Above); // DEL is not a control character in JSON
}

TEST(JsonScan, NulBytesAreNotJson)
{
    EXPECT_EQ(verdict("\0"sv), Verdict::NotJson);
    EXPECT_EQ(verdict("{\"machine\":{\"temperature\":30}}\0"sv), Verdict::NotJson);
    EXPECT_EQ(verdict("{\"machine\":{\"temperature\":30\0}}"sv), Verdict::NotJson);
    EXPECT_EQ(verdict("{\"machine\":{\"temperature\":30,\"n\":\"a\0b\"}}"sv), Verdict::NotJson);
    EXPECT_EQ(verdict("{\"mach\0ine\":{\"temperature\":30}}"sv), Verdict::NotJson);
    EXPECT_EQ(verdict("\0{\"machine\":{\"temperature\":30}}"sv), Verdict::NotJson);
    // The escaped form is fine.
    EXPECT_EQ(verdict(R"({"machine":{"temperature":30,"n":"a\u0000b"}})"), Verdict::Above);
}

// --- UTF-8 ---

std::string with_note(std::string_view raw)
{
    return R"({"machine":{"temperature":30,"note":")" + std::string(raw) + R"("}})";
}

TEST(JsonScan, ValidUtf8IsAccepted)
{
    for (const char* ok : {"\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                           "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "caf\xC3\xA9",
                           "\xE2\x82\xAC", "\xF0\x9F\x98\x80"})
    {
        EXPECT_EQ(verdict(with_note(ok)), Verdict::Above) << ok;
    }
}

TEST(JsonScan, InvalidUtf8IsBadUtf8)
{
    for (const char* bad : {
             "\x80",                 // stray continuation
             "\xBF",                 // stray continuation
             "\xC3",                 // truncated before the quote
             "\xC3\x28",             // lead byte followed by ASCII
             "\xE2\x82",             // truncated 3-byte
             "\xF0\x9F\x98",         // truncated 4-byte
             "\xFE", "\xFF",         // never valid
             "\xF5\x80\x80\x80",     // beyond U+10FFFF
             "\xF4\x90\x80\x80",     // U+110000
             "\xF8\x88\x80\x80\x80", // 5-byte form
         })
    {
        EXPECT_EQ(verdict(with_note(bad)), Verdict::BadUtf8) << ::testing::PrintToString(bad);
    }
    // Truncated at the end of input too.
    EXPECT_EQ(verdict("\"\xE2\x82"), Verdict::BadUtf8);
}

TEST(JsonScan, OverlongEncodingsAreBadUtf8)
{
    for (const char* bad : {"\xC0\xAF", "\xC1\xBF", "\xC0\x80", "\xE0\x80\xAF", "\xE0\x9F\xBF",
                            "\xF0\x80\x80\xAF", "\xF0\x8F\xBF\xBF"})
    {
        EXPECT_EQ(verdict(with_note(bad)), Verdict::BadUtf8) << ::testing::PrintToString(bad);
    }
    // An overlong '"' must not end a key or smuggle a quote.
    EXPECT_EQ(verdict("{\"machine\xC0\xA2:{\"temperature\":30}}"), Verdict::BadUtf8);
}

TEST(JsonScan, RawSurrogatesAreBadUtf8)
{
    for (const char* bad : {"\xED\xA0\x80", "\xED\xAD\xBF", "\xED\xB0\x80", "\xED\xBF\xBF",
                            "\xED\xA0\xBD\xED\xB8\x80"}) // CESU-8 style pair
    {
        EXPECT_EQ(verdict(with_note(bad)), Verdict::BadUtf8) << ::testing::PrintToString(bad);
    }
}

TEST(JsonScan, LoneSurrogateEscapesAreBadUtf8)
{
    for (const char* bad :
         {R"(\uD800)", R"(\uDBFF)", R"(\uDC00)", R"(\uDFFF)", R"(\uD800x)", R"(\uD800\n)",
          R"(\uD800\uD800)", R"(\uD800\u0041)", R"(\uDE00\uD83D)", R"(\ud83d)"})
    {
        EXPECT_EQ(verdict(with_note(bad)), Verdict::BadUtf8) << bad;
    }
    // A lone surrogate in a key on the path is rejected too, not just skipped.
    EXPECT_EQ(verdict(R"({"machine\uD800":{"temperature":30}})"), Verdict::BadUtf8);
    // A high surrogate followed by a malformed escape is a broken escape.
    EXPECT_EQ(verdict(with_note(R"(\uD800\uZZZZ)")), Verdict::NotJson);
}

TEST(JsonScan, NonAsciiBytesOutsideStringsAreNotJson)
{
    EXPECT_EQ(verdict("{\"machine\":{\"temperature\":30}}\xC2\xA0"), Verdict::NotJson);
    EXPECT_EQ(verdict("{\xC2\xA0\"machine\":{\"temperature\":30}}"), Verdict::NotJson);
    EXPECT_EQ(verdict("\xFF"), Verdict::NotJson);
}

// --- limits ---

TEST(JsonScan, DepthLimit)
{
    EXPECT_TRUE(ga::is_valid_json(nested(32)));
    EXPECT_FALSE(ga::is_valid_json(nested(33)));
    EXPECT_EQ(verdict(nested(33)), Verdict::TooDeep);
    EXPECT_EQ(verdict(nested(30000)), Verdict::TooDeep); // 60 KB of brackets, under max_bytes
    EXPECT_EQ(verdict(std::string(60000, '[')), Verdict::TooDeep);
    EXPECT_EQ(verdict(std::string(60000, '{')), Verdict::NotJson); // the second '{' is no key

    // The seed message is 2 deep: max_depth 2 accepts it, 1 does not.
    const ga::FieldPath p = path_of("machine.temperature");
    EXPECT_EQ(ga::scan_sensor_message(kSeedMessage, p, 25.0, {.max_depth = 2}).verdict,
              Verdict::Above);
    EXPECT_EQ(ga::scan_sensor_message(kSeedMessage, p, 25.0, {.max_depth = 1}).verdict,
              Verdict::TooDeep);
    EXPECT_EQ(ga::scan_sensor_message("5", p, 25.0, {.max_depth = 0}).verdict, Verdict::PathAbsent);
    EXPECT_EQ(ga::scan_sensor_message("{}", p, 25.0, {.max_depth = 0}).verdict, Verdict::TooDeep);

    // A huge configured limit is clamped to the fixed stack.
    const ga::ScanLimits huge{.max_bytes = 1U << 20U, .max_depth = 1000000};
    EXPECT_TRUE(ga::is_valid_json(nested(ga::kMaxScanDepth), huge));
    EXPECT_FALSE(ga::is_valid_json(nested(ga::kMaxScanDepth + 1), huge));
    EXPECT_EQ(ga::scan_sensor_message(nested(ga::kMaxScanDepth + 1), p, 25.0, huge).verdict,
              Verdict::TooDeep);
}

TEST(JsonScan, DeepObjectsAlongThePath)
{
    std::string msg = R"({"machine":{"temperature":30,"x":)" + nested(29) + "}}";
    EXPECT_EQ(verdict(msg), Verdict::Above); // 2 + 30 levels = 32
    msg = R"({"machine":{"temperature":30,"x":)" + nested(31) + "}}";
    EXPECT_EQ(verdict(msg), Verdict::TooDeep);
    std::string objects;
    for (int i = 0; i < 40; ++i)
    {
        objects += R"({"k":)";
    }
    objects += "1" + std::string(40, '}');
    EXPECT_EQ(verdict(objects), Verdict::TooDeep);
}

TEST(JsonScan, SizeLimitIsCheckedFirst)
{
    const ga::FieldPath p = path_of("machine.temperature");
    const ga::ScanLimits small{.max_bytes = kSeedMessage.size(), .max_depth = 32};
    EXPECT_EQ(ga::scan_sensor_message(kSeedMessage, p, 25.0, small).verdict, Verdict::Above);
    const ga::ScanLimits smaller{.max_bytes = kSeedMessage.size() - 1, .max_depth = 32};
    EXPECT_EQ(ga::scan_sensor_message(kSeedMessage, p, 25.0, smaller).verdict, Verdict::TooLarge);
    EXPECT_FALSE(ga::is_valid_json(kSeedMessage, smaller));

    // Default 64 KiB: an oversized message is TooLarge even if it is also garbage.
    const std::string oversized(64U * 1024U + 1U, '\xFF');
    EXPECT_EQ(verdict(oversized), Verdict::TooLarge);
    std::string padded = std::string(kSeedMessage);
    padded.append(64U * 1024U - padded.size(), ' ');
    EXPECT_EQ(verdict(padded), Verdict::Above);
    padded += ' ';
    EXPECT_EQ(verdict(padded), Verdict::TooLarge);
}

TEST(JsonScan, ScanAndIsValidJsonAgree)
{
    for (const std::string& m :
         {std::string(kSeedMessage), std::string("{"), std::string("[]"), nested(33),
          with_note("\xC0\xAF"), with_note(R"(\uD800)"), std::string(R"({"a":1,"a":2})")})
    {
        const Verdict v = verdict(m);
        const bool invalid = v == Verdict::NotJson || v == Verdict::BadUtf8 ||
                             v == Verdict::TooDeep || v == Verdict::TooLarge;
        EXPECT_EQ(ga::is_valid_json(m), !invalid) << m;
    }
}

} // namespace
