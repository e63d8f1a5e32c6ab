// SPDX-License-Identifier: MIT
// Exact strings from protocol.md sections 1, 4, 5, 7 and 8.
#include "topics.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace
{

using ga::BagLookup;
using ga::BufWriter;
using ga::Identity;
using ga::Property;

const Identity kDevice{"myiothub.azure-devices.net", "my_device", ""};
const Identity kModule{"myiothub.azure-devices.net", "my_device", "my_module_id"};
const Identity kEdgeModule{"myhub.azure-devices.net", "edgedev", "filtermodule"};

bool inside(std::string_view part, std::string_view whole)
{
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

template <typename F> std::string build(F&& f)
{
    char buf[1024];
    BufWriter w(buf);
    f(w);
    EXPECT_TRUE(w.ok());
    return std::string(w.view());
}

// ---- identity strings (section 1) ----

TEST(Topics, ClientId)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_client_id(kDevice, w); }), "my_device");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_client_id(kEdgeModule, w); }),
              "edgedev/filtermodule");
}

TEST(Topics, UsernameEsdkVectorsWithOurApiVersion)
{
    EXPECT_EQ(
        build([](BufWriter& w) { ga::append_username(kDevice, "azsdk-c/1.6.0-beta.1", "", w); }),
        "myiothub.azure-devices.net/my_device/"
        "?api-version=2021-04-12&DeviceClientType=azsdk-c%2F1.6.0-beta.1");
    EXPECT_EQ(build(
                  [](BufWriter& w)
                  {
                      ga::append_username(kDevice, "azsdk-c/1.6.0-beta.1",
                                          "dtmi:YOUR_COMPANY_NAME_HERE:sample_device;1", w);
                  }),
              "myiothub.azure-devices.net/my_device/"
              "?api-version=2021-04-12&DeviceClientType=azsdk-c%2F1.6.0-beta.1&model-id=dtmi%"
              "3AYOUR_COMPANY_NAME_HERE%3Asample_device%3B1");
    EXPECT_EQ(build(
                  [](BufWriter& w) {
                      ga::append_username(kModule, "azrtos",
                                          "dtmi:YOUR_COMPANY_NAME_HERE:sample_device;1", w);
                  }),
              "myiothub.azure-devices.net/my_device/my_module_id/"
              "?api-version=2021-04-12&DeviceClientType=azrtos&model-id=dtmi%3AYOUR_COMPANY_NAME_"
              "HERE%3Asample_device%3B1");
}

TEST(Topics, UsernameWorkedConnect)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_username(kDevice, "gateway-agent/0.1", "", w); }),
              "myiothub.azure-devices.net/my_device/"
              "?api-version=2021-04-12&DeviceClientType=gateway-agent%2F0.1");
    EXPECT_EQ(
        build([](BufWriter& w) { ga::append_username(kEdgeModule, "gateway-agent/0.1", "", w); }),
        "myhub.azure-devices.net/edgedev/filtermodule/"
        "?api-version=2021-04-12&DeviceClientType=gateway-agent%2F0.1");
}

TEST(Topics, UsernameOmitsEmptyClientType)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_username(kDevice, "", "", w); }),
              "myiothub.azure-devices.net/my_device/?api-version=2021-04-12");
}

// ---- telemetry (section 4) ----

TEST(Topics, TelemetryWithoutProperties)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_telemetry_topic(kDevice, {}, w); }),
              "devices/my_device/messages/events/");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_telemetry_topic(kModule, {}, w); }),
              "devices/my_device/modules/my_module_id/messages/events/");
}

TEST(Topics, TelemetryEsdkVector)
{
    const std::array<Property, 2> props{{{"key", "value"}, {"key_two", "value2"}}};
    EXPECT_EQ(build([&](BufWriter& w) { ga::append_telemetry_topic(kModule, props, w); }),
              "devices/my_device/modules/my_module_id/messages/events/key=value&key_two=value2");
}

TEST(Topics, TelemetryEncodesKeysAndValues)
{
    const std::array<Property, 3> props{{{"$.on", "alert"}, {"a b", "x&y=z/ü"}, {"empty", ""}}};
    EXPECT_EQ(build([&](BufWriter& w) { ga::append_telemetry_topic(kDevice, props, w); }),
              "devices/my_device/messages/events/%24.on=alert&a%20b=x%26y%3Dz%2F%C3%BC&empty=");
}

TEST(Topics, AlertTopicForModuleAndDevice)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_alert_topic(kEdgeModule, "output1", w); }),
              "devices/edgedev/modules/filtermodule/messages/events/"
              "%24.on=output1&%24.ct=application%2Fjson&%24.ce=utf-8&MessageType=Alert");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_alert_topic(kDevice, "output1", w); }),
              "devices/my_device/messages/events/"
              "%24.ct=application%2Fjson&%24.ce=utf-8&MessageType=Alert");
}

namespace
{
struct Forwarded
{
    ga::ForwardResult result;
    std::string text;
    std::uint8_t present;
};
Forwarded forward(std::string_view bag, std::size_t cap = 4096)
{
    std::string buf(cap, '\0');
    BufWriter w(std::span<char>(buf.data(), buf.size()));
    std::uint8_t present = 0xFF;
    const ga::ForwardResult r = ga::copy_forwarded_properties(bag, w, present);
    return {r, r == ga::ForwardResult::Ok ? std::string(w.view()) : std::string(), present};
}
} // namespace

TEST(Topics, ForwardKeepsApplicationAndMidCidCtCeInOrder)
{
    // The EDGE ProtocolGatewayMessageConverterTest vector: $.to, $.uid, $.schema, $.cdid,
    // $.cmid and $.sub are the input hop's and are dropped; the rest keeps its order.
    const Forwarded f = forward(
        "Foo=Bar&Prop2=Value2&Prop3=Value3&%24.ce=utf-8&%24.ct=application%2Fjson&%24.schema="
        "schema1&%24.to=foo&%24.uid=user1&%24.cid=1234&%24.mid=m1&%24.cdid=fromDevice1&%24.cmid="
        "fromModule1&%24.sub=testComponent");
    ASSERT_EQ(f.result, ga::ForwardResult::Ok);
    EXPECT_EQ(f.text, "Foo=Bar&Prop2=Value2&Prop3=Value3&%24.ce=utf-8&%24.ct=application%2Fjson&"
                      "%24.cid=1234&%24.mid=m1");
    EXPECT_EQ(f.present, ga::kForwardedAll);
}

TEST(Topics, ForwardReencodesInOneSpellingAndKeepsNullAndEmpty)
{
    // Raw "$.", lowercase hex, '+' kept as '+' (escaped on the way out), a null and an empty value.
    const Forwarded f = forward("?$.mid=a%2bb&a%20b=x%26y%3dz%2F%c3%bc&flag&empty=&p=1+2/");
    ASSERT_EQ(f.result, ga::ForwardResult::Ok);
    EXPECT_EQ(f.text, "%24.mid=a%2Bb&a%20b=x%26y%3Dz%2F%C3%BC&flag&empty=&p=1%2B2");
    EXPECT_EQ(f.present, ga::kForwardedMid);
}

TEST(Topics, ForwardDropsMessageTypeHubPropertiesAndEmptySystemOnes)
{
    const Forwarded f = forward("MessageType=Reading&%24.on=temperatureOutput&iothub-ack=full&"
                                "iothub-operation=x&%24.mid=&%24.ct&%24.exp=2030&k=v&"
                                "%24.ctime=2024&MessageTypeX=1&%24.ifid=i&%24.diagid=d");
    ASSERT_EQ(f.result, ga::ForwardResult::Ok);
    EXPECT_EQ(f.text, "k=v&MessageTypeX=1");
    EXPECT_EQ(f.present, 0);
    const Forwarded empty = forward("");
    ASSERT_EQ(empty.result, ga::ForwardResult::Ok);
    EXPECT_EQ(empty.text, "");
    EXPECT_EQ(empty.present, 0);
}

TEST(Topics, ForwardRejectsWhatCannotBeForwarded)
{
    EXPECT_EQ(forward("a=%zz").result, ga::ForwardResult::Malformed);
    EXPECT_EQ(forward("a%2=1").result, ga::ForwardResult::Malformed);
    EXPECT_EQ(forward("=value").result, ga::ForwardResult::Malformed);
    EXPECT_EQ(forward("k=v&%24.on=%").result, ga::ForwardResult::Malformed); // even if dropped
    EXPECT_EQ(forward("%24.mid=a&$.mid=b").result, ga::ForwardResult::BadSystemProperty);
    EXPECT_EQ(forward("%24.ct=a&%24.ct=a").result, ga::ForwardResult::BadSystemProperty);
    EXPECT_EQ(forward("%24.mid=has%20space").result, ga::ForwardResult::BadSystemProperty);
    EXPECT_EQ(forward("%24.mid=%C3%BC").result, ga::ForwardResult::BadSystemProperty);
    EXPECT_EQ(forward("%24.mid=" + std::string(129, 'a')).result,
              ga::ForwardResult::BadSystemProperty);
    EXPECT_EQ(forward("%24.mid=" + std::string(128, 'a')).result, ga::ForwardResult::Ok);
    EXPECT_EQ(forward("%24.mid=-:.+%25_#*?!(),=@;$'").result, ga::ForwardResult::Ok);
    EXPECT_EQ(forward("k=" + std::string(100, 'v'), 50).result, ga::ForwardResult::TooLarge);
}

TEST(Topics, ForwardedBagRoundTripsThroughTheDecoder)
{
    const Forwarded f = forward("b%20c=%00%FF%2B&x=%E2%82%AC&%24.cid=c%2F1");
    ASSERT_EQ(f.result, ga::ForwardResult::Ok);
    char v[32];
    BufWriter w(v);
    ASSERT_EQ(ga::bag_lookup(f.text, "b c", w), BagLookup::Found);
    EXPECT_EQ(w.view(), std::string_view("\0\xFF+", 3));
    w.clear();
    ASSERT_EQ(ga::bag_lookup(f.text, "x", w), BagLookup::Found);
    EXPECT_EQ(w.view(), "\xE2\x82\xAC");
    w.clear();
    ASSERT_EQ(ga::bag_lookup(f.text, "$.cid", w), BagLookup::Found);
    EXPECT_EQ(w.view(), "c/1");
    // Forwarding what we forwarded changes nothing.
    const Forwarded again = forward(f.text);
    EXPECT_EQ(again.text, f.text);
    EXPECT_EQ(again.present, f.present);
}

TEST(Topics, AlertTopicAddsAfterTheInputsProperties)
{
    ga::AlertProperties p{"k=v&%24.mid=m1&%24.ct=text%2Fplain",
                          ga::kForwardedMid | ga::kForwardedCt, "ga-1-2"};
    EXPECT_EQ(build([&](BufWriter& w) { ga::append_alert_topic(kEdgeModule, "output1", p, w); }),
              "devices/edgedev/modules/filtermodule/messages/events/"
              "k=v&%24.mid=m1&%24.ct=text%2Fplain&%24.on=output1&%24.ce=utf-8&MessageType=Alert");
    ga::AlertProperties none{"", 0, "ga-00000000000000ab-7"};
    EXPECT_EQ(
        build([&](BufWriter& w) { ga::append_alert_topic(kDevice, "output1", none, w); }),
        "devices/my_device/messages/events/"
        "%24.ct=application%2Fjson&%24.ce=utf-8&MessageType=Alert&%24.mid=ga-00000000000000ab-7");
}

TEST(Topics, BuildersReportBufferTooSmall)
{
    char buf[20];
    BufWriter w(buf);
    ga::append_alert_topic(kEdgeModule, "output1", w);
    EXPECT_FALSE(w.ok());
    BufWriter w2(buf);
    ga::append_username(kDevice, "x", "", w2);
    EXPECT_FALSE(w2.ok());
    BufWriter w3(std::span<char>(buf, 0));
    ga::append_client_id(kDevice, w3);
    EXPECT_FALSE(w3.ok());
}

// ---- module inputs (section 5) ----

TEST(Topics, InputFilter)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_input_filter(kEdgeModule, "input1", w); }),
              "devices/edgedev/modules/filtermodule/inputs/input1/#");
}

TEST(Topics, InputTopicsFromEdgeHubTests)
{
    const Identity id{"h", "Device1", "Module1"};
    const std::string t1 = "devices/Device1/modules/Module1/inputs/input1/"
                           "Foo=Bar&Prop2=Value2&Prop3=Value3&%24.ce=utf-8&%24.ct=application%"
                           "2Fjson&%24.schema=schema1&%24.to=foo&%24.uid=user1&%24.cid=1234&%24."
                           "mid=m1&%24.cdid=fromDevice1&%24.cmid=fromModule1&%24.sub=testComponent";
    const auto p1 = ga::parse_input_topic(id, t1);
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->input, "input1");
    EXPECT_TRUE(p1->bag.starts_with("Foo=Bar&"));
    EXPECT_TRUE(p1->bag.ends_with("%24.sub=testComponent"));
    EXPECT_TRUE(inside(p1->input, t1));
    EXPECT_TRUE(inside(p1->bag, t1));
    EXPECT_TRUE(ga::bag_is_well_formed(p1->bag));

    char buf[64];
    BufWriter v(buf);
    EXPECT_EQ(ga::bag_lookup(p1->bag, "$.ct", v), BagLookup::Found);
    EXPECT_EQ(v.view(), "application/json");
    v.clear();
    EXPECT_EQ(ga::bag_lookup(p1->bag, "$.cmid", v), BagLookup::Found);
    EXPECT_EQ(v.view(), "fromModule1");
    v.clear();
    EXPECT_EQ(ga::bag_lookup(p1->bag, "Prop3", v), BagLookup::Found);
    EXPECT_EQ(v.view(), "Value3");
    v.clear();
    EXPECT_EQ(ga::bag_lookup(p1->bag, "$.on", v), BagLookup::Absent);
    EXPECT_EQ(v.size(), 0U);

    const std::string t2 =
        "devices/Device1/modules/Module1/inputs/input1/"
        "%24.ce=utf-8&%24.ct=application%2Fjson&%24.cdid=leafDevice1&%24.cmid=leafModule1";
    const auto p2 = ga::parse_input_topic(id, t2);
    ASSERT_TRUE(p2);
    v.clear();
    EXPECT_EQ(ga::bag_lookup(p2->bag, "$.cdid", v), BagLookup::Found);
    EXPECT_EQ(v.view(), "leafDevice1");

    const Identity edge{"h", "TestEdgeDevice", "TestModule"};
    const std::string t3 = "devices/TestEdgeDevice/modules/TestModule/inputs/TestInput/"
                           "%24.cdid=TestEdgeDevice&%24.cmid=SenderModule";
    const auto p3 = ga::parse_input_topic(edge, t3);
    ASSERT_TRUE(p3);
    EXPECT_EQ(p3->input, "TestInput");
    EXPECT_EQ(p3->bag, "%24.cdid=TestEdgeDevice&%24.cmid=SenderModule");
}

TEST(Topics, InputTopicWithoutBag)
{
    const Identity id{"h", "d", "m"};
    const auto a = ga::parse_input_topic(id, "devices/d/modules/m/inputs/input1");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->input, "input1");
    EXPECT_EQ(a->bag, "");
    const auto b = ga::parse_input_topic(id, "devices/d/modules/m/inputs/input1/");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->input, "input1");
    EXPECT_EQ(b->bag, "");
}

TEST(Topics, InputTopicRejectsOtherIdentitiesAndShapes)
{
    const Identity id{"h", "d", "m"};
    for (std::string_view t :
         {"", "devices/d/modules/m/inputs/", "devices/d/modules/m/inputs//a=b",
          "devices/d/modules/m/inputs", "devices/D/modules/m/inputs/input1",
          "devices/d/modules/M/inputs/input1", "devices/dd/modules/m/inputs/input1",
          "devices/d/modules/mm/inputs/input1", "devices/d/modules/m/outputs/input1",
          "devices/d/messages/devicebound/a=b", "devices/d/modules/m/inputs",
          "xdevices/d/modules/m/inputs/input1", "devices/d/modules/m/messages/events/"})
    {
        EXPECT_FALSE(ga::parse_input_topic(id, t)) << t;
    }
    // A device identity has no inputs, and an empty id must not match "devices//...".
    EXPECT_FALSE(ga::parse_input_topic(Identity{"h", "d", ""}, "devices/d/modules//inputs/i"));
    EXPECT_FALSE(ga::parse_input_topic(Identity{"h", "", "m"}, "devices//modules/m/inputs/i"));
}

// ---- property bags (sections 4.2, 6) ----

BagLookup lookup(std::string_view bag, std::string_view key, std::string& out)
{
    char buf[256];
    BufWriter w(buf);
    const BagLookup r = ga::bag_lookup(bag, key, w);
    out.assign(w.view());
    return r;
}

TEST(Bag, C2dDocsExampleWithLeadingQuestionMarkAndNullValue)
{
    std::string v = "x";
    EXPECT_EQ(lookup("?prop1&prop2=&prop3=a%20string", "prop1", v), BagLookup::Found);
    EXPECT_EQ(v, "");
    EXPECT_EQ(lookup("?prop1&prop2=&prop3=a%20string", "prop2", v), BagLookup::Found);
    EXPECT_EQ(v, "");
    EXPECT_EQ(lookup("?prop1&prop2=&prop3=a%20string", "prop3", v), BagLookup::Found);
    EXPECT_EQ(v, "a string");
    EXPECT_EQ(lookup("?prop1&prop2=&prop3=a%20string", "?prop1", v), BagLookup::Absent);
}

TEST(Bag, EsdkC2dExample)
{
    const std::string_view bag = "%24.to=%2Fdevices%2Fuseragent_c%2Fmessages%2FdeviceBound&abc=123&"
                                 "ghi=%2Fsome%2Fthing&jkl=%2Fsome%2Fthing%2F%3Fbla%3Dbla";
    std::string v;
    EXPECT_EQ(lookup(bag, "$.to", v), BagLookup::Found);
    EXPECT_EQ(v, "/devices/useragent_c/messages/deviceBound");
    EXPECT_EQ(lookup(bag, "jkl", v), BagLookup::Found);
    EXPECT_EQ(v, "/some/thing/?bla=bla");
    EXPECT_TRUE(ga::bag_is_well_formed(bag));
}

TEST(Bag, TrailingSlashAndRawDollarKeys)
{
    std::string v;
    EXPECT_EQ(lookup("%24.on=alert/", "$.on", v), BagLookup::Found); // edgeHub doc vector
    EXPECT_EQ(v, "alert");
    EXPECT_EQ(lookup("$.ct=application%2Fjson%3Bcharset%3Dutf-8", "$.ct", v), BagLookup::Found);
    EXPECT_EQ(v, "application/json;charset=utf-8");
    EXPECT_EQ(lookup("a=1//", "a", v), BagLookup::Found); // only one '/' is stripped
    EXPECT_EQ(v, "1/");
}

TEST(Bag, DecodingRules)
{
    std::string v;
    EXPECT_EQ(lookup("k=a+b", "k", v), BagLookup::Found); // '+' is not a space
    EXPECT_EQ(v, "a+b");
    EXPECT_EQ(lookup("k=%2f%2F", "k", v), BagLookup::Found); // either hex case
    EXPECT_EQ(v, "//");
    EXPECT_EQ(lookup("k=a=b", "k", v), BagLookup::Found); // split at the first '='
    EXPECT_EQ(v, "a=b");
    EXPECT_EQ(lookup("k=%00x", "k", v), BagLookup::Found);
    EXPECT_EQ(v, std::string("\0x", 2));
    EXPECT_EQ(lookup("%6B=1", "k", v), BagLookup::Found); // keys compare after decoding
    EXPECT_EQ(v, "1");
    EXPECT_EQ(lookup("k=1&k=2", "k", v), BagLookup::Found); // the first of duplicates wins
    EXPECT_EQ(v, "1");
    EXPECT_EQ(lookup("&&k=1&", "k", v), BagLookup::Found); // empty items are skipped
    EXPECT_EQ(v, "1");
    EXPECT_EQ(lookup("=1", "", v), BagLookup::Found);
    EXPECT_EQ(lookup("", "k", v), BagLookup::Absent);
    EXPECT_EQ(lookup("?", "k", v), BagLookup::Absent);
    EXPECT_EQ(lookup("/", "k", v), BagLookup::Absent);
    EXPECT_EQ(lookup("kk=1&K=2", "k", v), BagLookup::Absent); // exact, case-sensitive
}

TEST(Bag, MalformedEscapes)
{
    std::string v;
    for (std::string_view bag : {"k=%", "k=%2", "k=%zz", "k=%2z", "k=a%", "k=%%41"})
    {
        EXPECT_EQ(lookup(bag, "k", v), BagLookup::Malformed) << bag;
        EXPECT_FALSE(ga::bag_is_well_formed(bag)) << bag;
    }
    // Nothing is written for a value with a bad escape, even after good bytes.
    EXPECT_EQ(lookup("k=abc%zz", "k", v), BagLookup::Malformed);
    EXPECT_EQ(v, "");
    // A key that cannot be decoded might be the one asked for.
    EXPECT_EQ(lookup("%zz=1&k=2", "k", v), BagLookup::Malformed);
    // A bad value elsewhere does not hide a good match before it, but is not well formed.
    EXPECT_EQ(lookup("k=2&j=%zz", "k", v), BagLookup::Found);
    EXPECT_FALSE(ga::bag_is_well_formed("k=2&j=%zz"));
    EXPECT_FALSE(ga::bag_is_well_formed("%"));
    EXPECT_TRUE(ga::bag_is_well_formed(""));
    EXPECT_TRUE(ga::bag_is_well_formed("a&b=&c=%41"));
}

TEST(Bag, ValueThatDoesNotFitIsMalformed)
{
    char buf[4];
    BufWriter w(buf);
    EXPECT_EQ(ga::bag_lookup("k=12345", "k", w), BagLookup::Malformed);
    BufWriter w2(buf);
    EXPECT_EQ(ga::bag_lookup("k=%31%32%33%34", "k", w2), BagLookup::Found); // fits once decoded
    EXPECT_EQ(w2.view(), "1234");
}

TEST(Bag, HugeBag)
{
    std::string bag;
    for (int i = 0; i < 20000; ++i)
    {
        bag += "k" + std::to_string(i) + "=v&";
    }
    bag += "target=%41";
    std::string v;
    EXPECT_EQ(lookup(bag, "target", v), BagLookup::Found);
    EXPECT_EQ(v, "A");
    EXPECT_TRUE(ga::bag_is_well_formed(bag));
}

// ---- twin (section 7) ----

TEST(Twin, RequestTopics)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_twin_get_topic("42", w); }),
              "$iothub/twin/GET/?$rid=42");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_twin_reported_topic("7", w); }),
              "$iothub/twin/PATCH/properties/reported/?$rid=7");
    char buf[10];
    BufWriter w(buf);
    ga::append_twin_get_topic("1", w);
    EXPECT_FALSE(w.ok());
}

TEST(Twin, Filters)
{
    EXPECT_EQ(ga::kTwinResponseFilter, "$iothub/twin/res/#");
    EXPECT_EQ(ga::kTwinDesiredFilter, "$iothub/twin/PATCH/properties/desired/#");
    EXPECT_EQ(ga::kMethodsFilter, "$iothub/methods/POST/#");
}

TEST(Twin, ResponseTopics)
{
    const std::string_view t1 = "$iothub/twin/res/204/?$rid=1&$version=6";
    const auto r1 = ga::parse_twin_response(t1);
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->status, 204);
    EXPECT_EQ(r1->rid, "1");
    EXPECT_EQ(r1->version, 6);
    EXPECT_TRUE(inside(r1->rid, t1));

    const auto r2 = ga::parse_twin_response("$iothub/twin/res/204/?$rid=id_one&$version=16");
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->rid, "id_one");
    EXPECT_EQ(r2->version, 16);

    const auto r3 = ga::parse_twin_response("$iothub/twin/res/200/?$rid=abc-123");
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->status, 200);
    EXPECT_EQ(r3->rid, "abc-123");
    EXPECT_FALSE(r3->version);

    const auto r4 = ga::parse_twin_response("$iothub/twin/res/429/?$version=3&$rid=9&other=x");
    ASSERT_TRUE(r4);
    EXPECT_EQ(r4->status, 429);
    EXPECT_EQ(r4->rid, "9");
    EXPECT_EQ(r4->version, 3);

    const auto r5 =
        ga::parse_twin_response("$iothub/twin/res/204/?%24rid=5&%24version=9223372036854775807");
    ASSERT_TRUE(r5);
    EXPECT_EQ(r5->rid, "5");
    EXPECT_EQ(r5->version, INT64_MAX);
}

TEST(Twin, BadResponseTopics)
{
    for (std::string_view t : {"",
                               "$iothub/twin/res/",
                               "$iothub/twin/res/200",
                               "$iothub/twin/res/200/",
                               "$iothub/twin/res/200/$rid=1",
                               "$iothub/twin/res//?$rid=1",
                               "$iothub/twin/res/-1/?$rid=1",
                               "$iothub/twin/res/+200/?$rid=1",
                               "$iothub/twin/res/2x0/?$rid=1",
                               "$iothub/twin/res/9999999999/?$rid=1",
                               "$iothub/twin/res/200/?rid=1",
                               "$iothub/twin/res/200/?$rid=",
                               "$iothub/twin/res/200/?$rid",
                               "$iothub/twin/res/200/?$rid=1&$version=",
                               "$iothub/twin/res/200/?$rid=1&$version=x",
                               "$iothub/twin/res/200/?$rid=1&$version=-1",
                               "$iothub/twin/res/200/?$rid=1&$version=9223372036854775808",
                               "$iothub/twin/res/200/?$rid=1&bad=%zz",
                               "$iothub/twin/res/200/?$rid=1%",
                               "$iothub/twin/GET/?$rid=1",
                               "$iothub/twin/res/200?$rid=1"})
    {
        EXPECT_FALSE(ga::parse_twin_response(t)) << t;
    }
}

TEST(Twin, DesiredPatchTopics)
{
    const auto p1 =
        ga::parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/?$version=8");
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->version, 8);
    const auto p2 = ga::parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/");
    ASSERT_TRUE(p2);
    EXPECT_FALSE(p2->version);
    const auto p3 = ga::parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/?");
    ASSERT_TRUE(p3);
    EXPECT_FALSE(p3->version);
    const auto p4 =
        ga::parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/?x=1&$version=12");
    ASSERT_TRUE(p4);
    EXPECT_EQ(p4->version, 12);

    for (std::string_view t :
         {"", "$iothub/twin/PATCH/properties/desired",
          "$iothub/twin/PATCH/properties/reported/?$version=1",
          "$iothub/twin/PATCH/properties/desired/$version=1",
          "$iothub/twin/PATCH/properties/desired/?$version=",
          "$iothub/twin/PATCH/properties/desired/?$version=1.5",
          "$iothub/twin/PATCH/properties/desired/?$version=1%",
          "$iothub/twin/PATCH/properties/desired/?$version=99999999999999999999"})
    {
        EXPECT_FALSE(ga::parse_desired_patch_topic(t)) << t;
    }
}

// ---- methods (section 8) ----

TEST(Methods, RequestTopics)
{
    const std::string_view t1 = "$iothub/methods/POST/TestMethod/?$rid=1";
    const auto m1 = ga::parse_method_request(t1);
    ASSERT_TRUE(m1);
    EXPECT_EQ(m1->name, "TestMethod");
    EXPECT_EQ(m1->rid, "1");
    EXPECT_TRUE(inside(m1->name, t1));
    EXPECT_TRUE(inside(m1->rid, t1));

    const auto m2 = ga::parse_method_request(
        "$iothub/methods/POST/some_method/?$rid=505e09bb-0076-4b9f-b4a3-529430f1593f");
    ASSERT_TRUE(m2);
    EXPECT_EQ(m2->name, "some_method");
    EXPECT_EQ(m2->rid, "505e09bb-0076-4b9f-b4a3-529430f1593f");

    const auto m3 =
        ga::parse_method_request("$iothub/methods/POST/component_one*TestMethod/?$rid=1");
    ASSERT_TRUE(m3);
    EXPECT_EQ(m3->name, "component_one*TestMethod");

    const auto m4 = ga::parse_method_request("$iothub/methods/POST/rebootDevice/?$rid=2");
    ASSERT_TRUE(m4);
    EXPECT_EQ(m4->name, "rebootDevice");
}

TEST(Methods, BadRequestTopics)
{
    for (std::string_view t :
         {"", "$iothub/methods/POST/", "$iothub/methods/POST//?$rid=1", "$iothub/methods/POST/m",
          "$iothub/methods/POST/m/", "$iothub/methods/POST/m/?",
          "$iothub/methods/POST/m/?$rid=", "$iothub/methods/POST/a/b/?$rid=1",
          "$iothub/methods/POST/m/$rid=1", "$iothub/methods/POST/m/?$rid=%",
          "$iothub/methods/res/200/?$rid=1", "$iothub/methods/post/m/?$rid=1"})
    {
        EXPECT_FALSE(ga::parse_method_request(t)) << t;
    }
}

TEST(Methods, ResponseTopics)
{
    EXPECT_EQ(build([](BufWriter& w) { ga::append_method_response_topic(200, "2", w); }),
              "$iothub/methods/res/200/?$rid=2");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_method_response_topic(65535, "2", w); }),
              "$iothub/methods/res/65535/?$rid=2");
    EXPECT_EQ(build([](BufWriter& w) { ga::append_method_response_topic(404, "x-y", w); }),
              "$iothub/methods/res/404/?$rid=x-y");
}

TEST(Methods, RidsThatMayBeEchoed)
{
    // What the hub (decimal, hex) and edgeHub (GUIDs) send, and the rest of [0-9A-Za-z-_.].
    for (std::string_view rid :
         {"1", "2a", "505e09bb-0076-4b9f-b4a3-529430f1593f", "id_one", "v1.2", "Z", "-", "._-"})
    {
        EXPECT_TRUE(ga::is_safe_method_rid(rid)) << rid;
    }
    const std::string longest(ga::kMaxMethodRidBytes, '7');
    EXPECT_TRUE(ga::is_safe_method_rid(longest));
}

TEST(Methods, RidsThatWouldChangeTheResponseTopicAreRefused)
{
    EXPECT_FALSE(ga::is_safe_method_rid(""));
    EXPECT_FALSE(ga::is_safe_method_rid(std::string(ga::kMaxMethodRidBytes + 1, '7')));
    for (std::string_view rid :
         {"1+", "#", "1/2", "a&b=c", "%41", "a b", "1?", "$x", "*", "ü", "1\n"})
    {
        EXPECT_FALSE(ga::is_safe_method_rid(rid)) << rid;
    }
    EXPECT_FALSE(ga::is_safe_method_rid(std::string("1\0", 2)));
    // The parser still hands such rids over (they are opaque); the caller checks before echoing.
    const auto m = ga::parse_method_request("$iothub/methods/POST/rebootDevice/?$rid=a+b");
    ASSERT_TRUE(m);
    EXPECT_FALSE(ga::is_safe_method_rid(m->rid));
}

TEST(Hostile, NulBytesAndEmbeddedGarbage)
{
    const std::string t("$iothub/methods/POST/m\0x/?$rid=1\0", 33);
    const auto m = ga::parse_method_request(t);
    ASSERT_TRUE(m); // the rid is opaque bytes; NUL does not terminate a view
    EXPECT_EQ(m->name, std::string("m\0x", 3));
    EXPECT_EQ(m->rid, std::string("1\0", 2));

    const Identity id{"h", "d", "m"};
    const std::string in("devices/d/modules/m/inputs/i\0n/k=%00", 36);
    const auto p = ga::parse_input_topic(id, in);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->input, std::string("i\0n", 3));
    std::string v;
    EXPECT_EQ(lookup(p->bag, "k", v), BagLookup::Found);
    EXPECT_EQ(v, std::string(1, '\0'));
}

} // namespace
