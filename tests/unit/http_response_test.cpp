// SPDX-License-Identifier: MIT
// The workload API client's HTTP/1.1 response parser and JSON member extraction.
#include "http_response.h"

#include <gtest/gtest.h>

#include <string>

namespace
{

using ga::HttpParse;
using ga::HttpResponse;

constexpr std::size_t kMax = 64 * 1024;

HttpParse parse(std::string_view raw, bool eof, HttpResponse& r, std::size_t max = kMax)
{
    return ga::parse_http_response(raw, eof, max, r);
}

TEST(HttpResponse, ContentLength)
{
    const std::string raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "content-length: 16\r\n\r\n{\"digest\":\"abc\"}";
    HttpResponse r;
    ASSERT_EQ(parse(raw, false, r), HttpParse::Complete) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"digest\":\"abc\"}");
    // Every strict prefix is incomplete (and malformed once the peer has closed).
    for (std::size_t n = 0; n < raw.size(); ++n)
    {
        EXPECT_EQ(parse(raw.substr(0, n), false, r), HttpParse::Incomplete) << n;
        EXPECT_EQ(parse(raw.substr(0, n), true, r), HttpParse::Malformed) << n;
    }
}

TEST(HttpResponse, ClosedWithoutAnyByteSaysSo)
{
    HttpResponse r;
    EXPECT_EQ(parse("", true, r), HttpParse::Malformed);
    EXPECT_EQ(r.error, "connection closed without a reply");
}

TEST(HttpResponse, Chunked)
{
    const std::string raw = "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5;ext=1\r\n{\"mes\r\nD\r\nsage\":\"nope\"}\r\n0\r\nX-T: 1\r\n\r\n";
    HttpResponse r;
    ASSERT_EQ(parse(raw, false, r), HttpParse::Complete) << r.error;
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, "{\"message\":\"nope\"}");
    for (std::size_t n = 0; n < raw.size(); ++n)
        EXPECT_EQ(parse(raw.substr(0, n), false, r), HttpParse::Incomplete) << n;
}

TEST(HttpResponse, ChunkedErrors)
{
    HttpResponse r;
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, r),
              HttpParse::Malformed);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd", false, r),
              HttpParse::Malformed);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, r),
              HttpParse::Malformed);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFF\r\n", false, r),
              HttpParse::TooLarge);
}

TEST(HttpResponse, BodyToTheEndOfTheConnection)
{
    const std::string raw = "HTTP/1.0 500 Internal Server Error\r\n\r\noops";
    HttpResponse r;
    EXPECT_EQ(parse(raw, false, r), HttpParse::Incomplete);
    ASSERT_EQ(parse(raw, true, r), HttpParse::Complete);
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body, "oops");
}

TEST(HttpResponse, Limits)
{
    HttpResponse r;
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n", false, r),
              HttpParse::TooLarge);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false, r),
              HttpParse::TooLarge);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\n\r\n" + std::string(20, 'x'), true, r, 10),
              HttpParse::TooLarge);
    EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nX: " + std::string(9000, 'a'), false, r),
              HttpParse::Malformed);
}

TEST(HttpResponse, MalformedHeads)
{
    HttpResponse r;
    for (const char* raw :
         {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
          "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
          "not http at all\r\n\r\n"})
        EXPECT_EQ(parse(raw, true, r), HttpParse::Malformed) << raw;
}

TEST(HttpResponse, NoBodyStatuses)
{
    HttpResponse r;
    ASSERT_EQ(parse("HTTP/1.1 204 No Content\r\n\r\n", false, r), HttpParse::Complete);
    EXPECT_EQ(r.status, 204);
    EXPECT_TRUE(r.body.empty());
}

TEST(JsonStringMember, FindsUnescapedStrings)
{
    std::string out;
    ASSERT_TRUE(ga::json_string_member(
        R"({"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"})",
        "certificate", out));
    EXPECT_EQ(out, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    ASSERT_TRUE(ga::json_string_member(R"({"message":"caller \"x\" is not m"})", "message", out));
    EXPECT_EQ(out, "caller \"x\" is not m");
}

TEST(JsonStringMember, OnlyTopLevelMembersAndEscapesDecoded)
{
    std::string out;
    ASSERT_TRUE(ga::json_string_member(
        R"({"a":{"digest":"inner"},"b":[1,"x\"]",{"c":[]}],"n":-1.5e3,"t":true,"digest":"top"})",
        "digest", out));
    EXPECT_EQ(out, "top");
    ASSERT_TRUE(ga::json_string_member(R"( { "message" : "caf\u00e9 \ud83d\ude00 \/\t" } )",
                                       "message", out));
    EXPECT_EQ(out, "caf\xc3\xa9 \xf0\x9f\x98\x80 /\t");
    EXPECT_FALSE(ga::json_string_member(R"({"a":{"digest":"inner"}})", "digest", out));
}

TEST(JsonStringMember, RefusesWhatIsNotThere)
{
    std::string out;
    EXPECT_FALSE(ga::json_string_member("not json", "digest", out));
    EXPECT_FALSE(ga::json_string_member(R"(["digest"])", "digest", out));
    EXPECT_FALSE(ga::json_string_member(R"({"digest":42})", "digest", out));
    EXPECT_FALSE(ga::json_string_member(R"({"Digest":"x"})", "digest", out));
    EXPECT_FALSE(ga::json_string_member(R"({"digest":"x")", "digest", out));
    EXPECT_FALSE(ga::json_string_member("", "digest", out));
}

} // namespace
