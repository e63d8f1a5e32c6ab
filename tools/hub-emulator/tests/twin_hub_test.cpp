#include "hub.h"
#include "twin.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

using namespace hubemu;

TEST(Twin, MergeAndVersions)
{
    Twin t;
    EXPECT_EQ(t.to_json(), R"({"desired":{"$version":1},"reported":{"$version":1}})");
    std::string why;
    EXPECT_EQ(t.patch_reported(R"({"a":1,"o":{"x":1,"y":2}})", &why).value(), 2);
    EXPECT_EQ(t.patch_reported(R"({"a":null,"o":{"x":null,"z":3}})", &why).value(), 3);
    EXPECT_EQ(t.to_json(),
              R"({"desired":{"$version":1},"reported":{"o":{"y":2,"z":3},"$version":3}})");
    EXPECT_FALSE(t.patch_reported("[1]", &why));
    EXPECT_FALSE(t.patch_reported("nope", &why));
    auto push = t.patch_desired(R"({"TemperatureThreshold":30,"gone":null})", &why);
    ASSERT_TRUE(push);
    EXPECT_EQ(*push, R"({"TemperatureThreshold":30,"gone":null,"$version":2})");
    Twin u;
    ASSERT_TRUE(u.load(t.to_json()));
    EXPECT_EQ(u.to_json(), t.to_json());
}

namespace
{
struct FakeOutbox : Outbox
{
    struct Pub
    {
        std::string client, topic, payload;
        int qos;
    };
    std::vector<Pub> pubs;
    std::vector<std::string> kicks;
    void publish(const std::string& c, const std::string& t, const std::string& p, int q) override
    {
        pubs.push_back({c, t, p, q});
    }
    void kick(const std::string& c) override { kicks.push_back(c); }
    void log(const std::string&) override {}
};

const char* kConf = "hub h.net\nedge edgedev\n"
                    "module edgedev filter NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=\n"
                    "module edgedev tempSensor NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=\n"
                    "route FROM /messages/modules/tempSensor/outputs/temperatureOutput INTO "
                    "BrokeredEndpoint(\"/modules/filter/inputs/input1\")\n"
                    "route FROM /messages/modules/filter/outputs/* INTO $upstream\n";
const char* kKey = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";
const std::string kUser = "h.net/edgedev/filter/?api-version=2021-04-12";
} // namespace

TEST(Hub, AuthRulesAndRefuse)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "secret", out);
    Identity f{"edgedev", "filter"};
    int64_t now = 1'000'000;
    auto tok = make_sas("h.net", f, kKey, now / 1000 + 60);
    EXPECT_TRUE(hub.on_auth(&out, "edgedev/filter", kUser, tok, false, now).accept);
    EXPECT_EQ(hub.on_auth(&out, "edgedev/tempSensor", kUser, tok, false, now).connack, 5);
    EXPECT_EQ(hub.on_auth(&out, "edgedev/filter", "h.net/edgedev/filter/", tok, false, now).connack,
              3);
    EXPECT_EQ(hub.on_auth(&out, "edgedev/filter", kUser, tok, false, now + 61'000).connack, 5);
    EXPECT_TRUE(hub.on_auth(&out, "$hubctl/x", "$hubctl", "secret", true, now).accept);
    EXPECT_FALSE(hub.on_auth(&out, "$hubctl/x", "$hubctl", "wrong", true, now).accept);
    hub.on_message("$hubctl/x", "$hubctl/req/1", R"({"cmd":"refuse","seconds":5,"code":3})", 0,
                   now);
    EXPECT_EQ(hub.on_auth(&out, "edgedev/filter", kUser, tok, false, now + 1000).connack, 3);
    EXPECT_TRUE(hub.on_auth(&out, "edgedev/filter", kUser, tok, false, now + 6000).accept);
    // token expiry closes the connection at the next tick
    hub.on_tick(now + 61'000);
    ASSERT_EQ(out.kicks.size(), 1u);
    EXPECT_EQ(out.kicks[0], "edgedev/filter");
}

TEST(Hub, RoutesRewriteProperties)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "s", out);
    hub.on_message("edgedev/tempSensor",
                   "devices/edgedev/modules/tempSensor/messages/events/"
                   "sequenceNumber=1&%24.on=temperatureOutput&%24.ct=application%2Fjson&%24.cdid=x",
                   "{}", 1, 0);
    ASSERT_EQ(out.pubs.size(), 1u);
    EXPECT_EQ(out.pubs[0].client, "");
    EXPECT_EQ(out.pubs[0].qos, 1);
    EXPECT_EQ(out.pubs[0].topic, "devices/edgedev/modules/filter/inputs/input1/"
                                 "sequenceNumber=1&%24.ct=application%2Fjson&%24.cdid=edgedev&"
                                 "%24.cmid=tempSensor");
    hub.on_message(
        "edgedev/filter",
        "devices/edgedev/modules/filter/messages/events/%24.on=output1&MessageType=Alert", "{}", 1,
        0);
    auto recs = hub.take_new_records();
    ASSERT_EQ(recs.size(), 1u);
    cJSON* j = cJSON_Parse(recs[0].c_str());
    ASSERT_TRUE(j);
    const cJSON* props = cJSON_GetObjectItem(j, "properties");
    EXPECT_STREQ(cJSON_GetObjectItem(props, "MessageType")->valuestring, "Alert");
    EXPECT_STREQ(cJSON_GetObjectItem(j, "from")->valuestring, "edgedev/filter");
    cJSON_Delete(j);
}

TEST(Hub, AclDeniesForeignPublishAndKicksLater)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "s", out);
    EXPECT_FALSE(hub.on_acl("edgedev/filter", "devices/edgedev/modules/tempSensor/messages/events/",
                            kWrite, 1));
    EXPECT_TRUE(out.kicks.empty());
    hub.on_tick(0);
    EXPECT_EQ(out.kicks.size(), 1u);
    EXPECT_FALSE(
        hub.on_acl("edgedev/filter", "devices/edgedev/modules/filter/messages/events/", kWrite, 2));
    EXPECT_TRUE(hub.on_acl("edgedev/filter", "$iothub/twin/res/#", kSubscribe, 0));
    EXPECT_FALSE(hub.on_acl("edgedev/tempSensor", "devices/edgedev/modules/filter/inputs/input1/x",
                            kRead, 1));
    EXPECT_FALSE(hub.on_acl("stranger", "anything", kRead, 0));
}

TEST(Hub, TwinGetFaultsAreAnsweredInOrderThenCleared)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "s", out);
    ASSERT_TRUE(hub.on_auth(&out, "$hubctl/x", "$hubctl", "s", true, 0).accept);
    auto ctl = [&](const char* req) { hub.on_message("$hubctl/x", "$hubctl/req/1", req, 0, 0); };
    auto get = [&](const char* rid)
    {
        out.pubs.clear();
        hub.on_message("edgedev/filter", std::string("$iothub/twin/GET/?$rid=") + rid, "", 0, 0);
        return out.pubs;
    };
    ctl(R"({"cmd":"twin-fail-get","id":"edgedev/filter","status":500,"count":1})");
    ctl(R"({"cmd":"twin-drop-get","id":"edgedev/filter","count":1})");
    ctl(R"({"cmd":"twin-fail-get","id":"edgedev/filter","status":429})");
    auto p = get("1");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].topic, "$iothub/twin/res/500/?$rid=1");
    EXPECT_EQ(p[0].client, "edgedev/filter");
    EXPECT_TRUE(get("2").empty()) << "dropped GET answered";
    p = get("3");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].topic, "$iothub/twin/res/429/?$rid=3");
    p = get("4");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].topic, "$iothub/twin/res/200/?$rid=4");
    // Another identity's GETs are not affected.
    ctl(R"({"cmd":"twin-drop-get","id":"edgedev/filter","count":2})");
    out.pubs.clear();
    hub.on_message("edgedev/tempSensor", "$iothub/twin/GET/?$rid=5", "", 0, 0);
    ASSERT_EQ(out.pubs.size(), 1u);
    EXPECT_EQ(out.pubs[0].topic, "$iothub/twin/res/200/?$rid=5");
}

TEST(Hub, TwinFaultCommandsCheckTheirArguments)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "s", out);
    ASSERT_TRUE(hub.on_auth(&out, "$hubctl/x", "$hubctl", "s", true, 0).accept);
    for (const char* bad : {R"({"cmd":"twin-fail-get","id":"edgedev/filter","status":200})",
                            R"({"cmd":"twin-fail-get","id":"edgedev/filter","status":42})",
                            R"({"cmd":"twin-drop-get","id":"edgedev/filter","count":-1})",
                            R"({"cmd":"twin-drop-get","id":"nobody"})",
                            R"({"cmd":"twin-reset","id":"edgedev/filter","desired":"[1]"})"})
    {
        out.pubs.clear();
        hub.on_message("$hubctl/x", "$hubctl/req/1", bad, 0, 0);
        ASSERT_EQ(out.pubs.size(), 1u) << bad;
        EXPECT_NE(out.pubs[0].payload.find("\"error\""), std::string::npos) << bad;
    }
}

TEST(Hub, TwinResetStartsAgainAtVersionOneAndDropsTheClient)
{
    std::string why;
    FakeOutbox out;
    Hub hub(*parse_config(kConf, &why), "s", out);
    const Identity f{"edgedev", "filter"};
    const int64_t now = 1'000'000;
    ASSERT_TRUE(hub.on_auth(&out, "$hubctl/x", "$hubctl", "s", true, now).accept);
    ASSERT_TRUE(hub.on_auth(&out, "edgedev/filter", kUser,
                            make_sas("h.net", f, kKey, now / 1000 + 60), false, now)
                    .accept);
    auto ctl = [&](const std::string& req)
    {
        out.pubs.clear();
        hub.on_message("$hubctl/x", "$hubctl/req/1", req, 0, now);
        return out.pubs.empty() ? std::string("(no reply)") : out.pubs.back().payload;
    };
    ctl(R"({"cmd":"twin-set-desired","id":"edgedev/filter","patch":"{\"TemperatureThreshold\":30}"})");
    ctl(R"({"cmd":"twin-set-desired","id":"edgedev/filter","patch":"{\"TemperatureThreshold\":31}"})");
    EXPECT_EQ(ctl(R"({"cmd":"twin-show","id":"edgedev/filter"})"),
              R"({"desired":{"TemperatureThreshold":31,"$version":3},"reported":{"$version":1}})");
    EXPECT_EQ(
        ctl(R"({"cmd":"twin-reset","id":"edgedev/filter","desired":"{\"TemperatureThreshold\":28}"})"),
        R"({"version":1,"dropped":true})");
    hub.on_tick(now);
    ASSERT_EQ(out.kicks.size(), 1u);
    EXPECT_EQ(out.kicks[0], "edgedev/filter");
    EXPECT_EQ(ctl(R"({"cmd":"twin-show","id":"edgedev/filter"})"),
              R"({"desired":{"TemperatureThreshold":28,"$version":1},"reported":{"$version":1}})");
    ctl(R"({"cmd":"twin-set-desired","id":"edgedev/filter","patch":"{\"TemperatureThreshold\":29}"})");
    EXPECT_EQ(ctl(R"({"cmd":"twin-show","id":"edgedev/filter"})"),
              R"({"desired":{"TemperatureThreshold":29,"$version":2},"reported":{"$version":1}})");
}
