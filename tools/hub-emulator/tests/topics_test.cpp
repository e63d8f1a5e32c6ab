#include "config.h"
#include "topics.h"

#include <gtest/gtest.h>

using namespace hubemu;

namespace
{
const Identity kFilter{"edgedev", "filter"};
const Identity kLeaf{"leaf1", {}};
} // namespace

TEST(Bag, ParseDecodesAndStrips)
{
    auto b = parse_bag("?%24.on=output1&%24.ct=application%2Fjson&k&e=&MessageType=Alert/");
    ASSERT_TRUE(b);
    ASSERT_EQ(b->size(), 5u);
    EXPECT_EQ(bag_get(*b, "$.on").value(), "output1");
    EXPECT_EQ(bag_get(*b, "$.ct").value(), "application/json");
    EXPECT_FALSE((*b)[2].value.has_value());
    EXPECT_EQ((*b)[3].value.value(), "");
    EXPECT_FALSE(parse_bag("a=%zz"));
    EXPECT_EQ(parse_bag("a=b+c")->at(0).value.value(), "b+c");
}

TEST(Bag, EncodeLikeEdgeHub)
{
    PropBag b{{"k", "v w"}, {"$.cdid", "edgedev"}, {"n", std::nullopt}};
    EXPECT_EQ(encode_bag(b), "k=v%20w&%24.cdid=edgedev&n");
}

TEST(Publish, Classify)
{
    auto p =
        classify_publish("devices/edgedev/modules/filter/messages/events/%24.on=output1", kFilter);
    EXPECT_EQ(p.kind, PubKind::Telemetry);
    EXPECT_EQ(p.bag, "%24.on=output1");
    EXPECT_EQ(classify_publish("devices/edgedev/modules/filter/messages/events/", kFilter).kind,
              PubKind::Telemetry);
    EXPECT_EQ(classify_publish("devices/edgedev/modules/filter/messages/events", kFilter).kind,
              PubKind::Telemetry);
    EXPECT_EQ(classify_publish("devices/edgedev/messages/events/", kFilter).kind, PubKind::Invalid);
    EXPECT_EQ(classify_publish("devices/leaf1/messages/events/a=b/", kLeaf).kind,
              PubKind::Telemetry);
    EXPECT_EQ(classify_publish("devices/other/messages/events/", kLeaf).kind, PubKind::Invalid);
    auto g = classify_publish("$iothub/twin/GET/?$rid=abc-1", kLeaf);
    EXPECT_EQ(g.kind, PubKind::TwinGet);
    EXPECT_EQ(g.rid, "abc-1");
    EXPECT_EQ(classify_publish("$iothub/twin/GET/", kLeaf).kind, PubKind::Invalid);
    EXPECT_EQ(classify_publish("$iothub/twin/PATCH/properties/reported/?$rid=7", kLeaf).kind,
              PubKind::TwinReported);
    auto m = classify_publish("$iothub/methods/res/200/?$rid=42", kLeaf);
    EXPECT_EQ(m.kind, PubKind::MethodResponse);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.rid, "42");
    EXPECT_EQ(classify_publish("$iothub/methods/res/x/?$rid=42", kLeaf).kind, PubKind::Invalid);
    EXPECT_EQ(classify_publish("$iothub/twin/res/200/?$rid=1", kLeaf).kind, PubKind::Invalid);
    EXPECT_EQ(classify_publish("random/topic", kLeaf).kind, PubKind::Invalid);
}

TEST(Subscribe, Scoping)
{
    EXPECT_TRUE(subscribe_allowed("$iothub/twin/res/#", kFilter));
    EXPECT_TRUE(subscribe_allowed("$iothub/methods/POST/#", kFilter));
    EXPECT_TRUE(subscribe_allowed("devices/edgedev/modules/filter/inputs/input1/#", kFilter));
    EXPECT_TRUE(subscribe_allowed("devices/edgedev/modules/filter/#", kFilter));
    EXPECT_TRUE(subscribe_allowed("devices/edgedev/modules/filter/inputs/#", kFilter));
    EXPECT_FALSE(subscribe_allowed("devices/edgedev/modules/tempSensor/inputs/#", kFilter));
    EXPECT_FALSE(subscribe_allowed("devices/+/modules/+/inputs/#", kFilter));
    EXPECT_FALSE(subscribe_allowed("#", kFilter));
    EXPECT_FALSE(subscribe_allowed("devices/edgedev/modules/filter/inputs/input1/#", kLeaf));
    EXPECT_TRUE(subscribe_allowed("devices/leaf1/messages/devicebound/#", kLeaf));
    EXPECT_FALSE(subscribe_allowed("devices/other/messages/devicebound/#", kLeaf));
}

TEST(Read, Scoping)
{
    EXPECT_TRUE(read_allowed("devices/edgedev/modules/filter/inputs/input1/a=b", kFilter));
    EXPECT_FALSE(read_allowed("devices/edgedev/modules/filter/inputs/input1/a=b", kLeaf));
    EXPECT_FALSE(read_allowed("devices/edgedev/modules/filter/messages/events/", kFilter));
    EXPECT_TRUE(read_allowed("devices/leaf1/messages/devicebound/x", kLeaf));
}

TEST(Filter, Matches)
{
    EXPECT_TRUE(topic_matches("a/+/c", "a/b/c"));
    EXPECT_TRUE(topic_matches("a/#", "a"));
    EXPECT_TRUE(topic_matches("a/#", "a/b/c"));
    EXPECT_FALSE(topic_matches("a/+", "a/b/c"));
    EXPECT_FALSE(topic_matches("#", "$iothub/x"));
}

TEST(Routes, ParseAndMatch)
{
    std::string why;
    auto r = parse_route("FROM /messages/modules/tempSensor/outputs/temperatureOutput INTO "
                         "BrokeredEndpoint(\"/modules/filter/inputs/input1\")",
                         &why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->target_module, "filter");
    EXPECT_EQ(r->target_input, "input1");
    Identity temp{"edgedev", "tempSensor"};
    EXPECT_TRUE(route_matches(*r, message_source(temp, "temperatureOutput"), true));
    EXPECT_FALSE(route_matches(*r, message_source(temp, "other"), true));
    auto up = parse_route("FROM /messages/modules/filter/outputs/* INTO $upstream", &why);
    ASSERT_TRUE(up);
    EXPECT_TRUE(up->upstream);
    EXPECT_TRUE(route_matches(*up, message_source(kFilter, "output1"), true));
    EXPECT_FALSE(route_matches(*up, message_source(temp, "output1"), true));
    auto dev = parse_route(
        "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream", &why);
    ASSERT_TRUE(dev) << why;
    EXPECT_TRUE(route_matches(*dev, message_source(kLeaf, std::nullopt), false));
    EXPECT_FALSE(route_matches(*dev, message_source(kFilter, "output1"), true));
    auto all = parse_route("FROM /* INTO $upstream", &why);
    EXPECT_TRUE(route_matches(*all, "/messages/modules/x", true));
    EXPECT_FALSE(parse_route("FROM /x INTO BrokeredEndpoint(\"/modules/a\")", &why));
    EXPECT_FALSE(parse_route("FROM /x WHERE $body.t > 1 INTO $upstream", &why));
    EXPECT_FALSE(parse_route("TO /x", &why));
}

TEST(Config, ParsesDefaultShape)
{
    std::string why;
    auto c = parse_config("# comment\nhub myhub.azure-devices.net   # host\nedge edgedev\n"
                          "device edgedev AAAA\nmodule edgedev filter AAAA\n"
                          "route FROM /messages/modules/filter/outputs/* INTO $upstream\n",
                          &why);
    ASSERT_TRUE(c) << why;
    EXPECT_EQ(c->hub, "myhub.azure-devices.net");
    EXPECT_EQ(c->identities.size(), 2u);
    EXPECT_TRUE(c->find("edgedev/filter"));
    EXPECT_FALSE(parse_config("hub h\ndevice d not*base64\n", &why));
    EXPECT_EQ(why.substr(0, 6), "line 2");
    EXPECT_FALSE(parse_config("device d AAAA\n", &why));
    EXPECT_FALSE(parse_config("hub h\nroute FROM /* INTO $upstream\n", &why));
}
