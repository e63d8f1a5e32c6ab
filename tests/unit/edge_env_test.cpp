// SPDX-License-Identifier: MIT
// The IoT Edge module environment (docs/iot-edge.md) and the identity chosen from it.
#include "edge_env.h"
#include "identity_source.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace
{

using Env = std::map<std::string, std::string, std::less<>>;

ga::EnvLookup lookup(const Env& env)
{
    return [&env](std::string_view name) -> std::optional<std::string>
    {
        const auto it = env.find(name);
        if (it == env.end())
            return std::nullopt;
        return it->second;
    };
}

Env good_env()
{
    return {
        {"IOTEDGE_WORKLOADURI", "unix:///var/run/iotedge/workload.sock"},
        {"IOTEDGE_AUTHSCHEME", "sasToken"},
        {"IOTEDGE_MODULEGENERATIONID", "637899318049296327"},
        {"IOTEDGE_IOTHUBHOSTNAME", "myhub.azure-devices.net"},
        {"IOTEDGE_GATEWAYHOSTNAME", "edge-gw.local"},
        {"IOTEDGE_DEVICEID", "edgedev"},
        {"IOTEDGE_MODULEID", "filter"},
        {"IOTEDGE_APIVERSION", "2022-08-03"},
        {"RuntimeLogLevel", "info"},
    };
}

std::vector<std::string> names(const std::vector<ga::EnvProblem>& problems)
{
    std::vector<std::string> out;
    for (const auto& p : problems)
        out.push_back(p.name);
    return out;
}

TEST(EdgeEnv, TheRuntimeSetParses)
{
    const Env env = good_env();
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    ASSERT_TRUE(ga::parse_edge_env(lookup(env), e, problems)) << ga::describe(problems);
    EXPECT_EQ(e.workload_socket, "/var/run/iotedge/workload.sock");
    EXPECT_EQ(e.generation_id, "637899318049296327");
    EXPECT_EQ(e.hub_host, "myhub.azure-devices.net");
    EXPECT_EQ(e.gateway_host, "edge-gw.local");
    EXPECT_EQ(e.device_id, "edgedev");
    EXPECT_EQ(e.module_id, "filter");
    EXPECT_EQ(e.api_version, "2022-08-03");
    EXPECT_EQ(e.runtime_log_level, "info");
    EXPECT_TRUE(ga::edge_env_present(lookup(env)));
}

TEST(EdgeEnv, PresentWhenAnyVariableOfTheSetIsSet)
{
    EXPECT_FALSE(ga::edge_env_present(lookup({})));
    EXPECT_FALSE(ga::edge_env_present(lookup({{"RuntimeLogLevel", "info"}})));
    EXPECT_TRUE(ga::edge_env_present(lookup({{"IOTEDGE_MODULEID", "m"}})));
}

TEST(EdgeEnv, EveryMissingVariableIsNamed)
{
    const Env env{{"IOTEDGE_MODULEID", "filter"}, {"IOTEDGE_DEVICEID", ""}};
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems));
    const std::vector<std::string> want{"IOTEDGE_WORKLOADURI",        "IOTEDGE_AUTHSCHEME",
                                        "IOTEDGE_MODULEGENERATIONID", "IOTEDGE_IOTHUBHOSTNAME",
                                        "IOTEDGE_GATEWAYHOSTNAME",    "IOTEDGE_DEVICEID",
                                        "IOTEDGE_APIVERSION"};
    EXPECT_EQ(names(problems), want);
    const std::string text = ga::describe(problems);
    EXPECT_NE(text.find("IOTEDGE_DEVICEID is empty"), std::string::npos) << text;
    EXPECT_NE(text.find("IOTEDGE_WORKLOADURI is not set"), std::string::npos) << text;
}

TEST(EdgeEnv, EveryMalformedVariableIsNamedWithWhy)
{
    Env env = good_env();
    env["IOTEDGE_WORKLOADURI"] = "http://127.0.0.1:15581";
    env["IOTEDGE_AUTHSCHEME"] = "x509";
    env["IOTEDGE_DEVICEID"] = "edge+dev";
    env["IOTEDGE_MODULEID"] = "fil/ter";
    env["IOTEDGE_APIVERSION"] = "2017-01-01";
    env["IOTEDGE_GATEWAYHOSTNAME"] = "gw host";
    env["IOTEDGE_MODULEGENERATIONID"] = "1/../2";
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems));
    const std::vector<std::string> want{"IOTEDGE_WORKLOADURI",        "IOTEDGE_AUTHSCHEME",
                                        "IOTEDGE_MODULEGENERATIONID", "IOTEDGE_GATEWAYHOSTNAME",
                                        "IOTEDGE_DEVICEID",           "IOTEDGE_MODULEID",
                                        "IOTEDGE_APIVERSION"};
    EXPECT_EQ(names(problems), want);
    const std::string text = ga::describe(problems);
    EXPECT_NE(text.find("only Unix sockets"), std::string::npos) << text;
    EXPECT_NE(text.find("'x509': not supported (only sasToken"), std::string::npos) << text;
    EXPECT_NE(text.find("('+')"), std::string::npos) << text;
    EXPECT_NE(text.find("('/')"), std::string::npos) << text;
    EXPECT_NE(text.find("older than 2018-06-28"), std::string::npos) << text;
}

TEST(EdgeEnv, WorkloadUriMustBeAnAbsoluteUnixPath)
{
    for (const char* bad : {"unix://relative/workload.sock", "unix://", "/var/run/workload.sock",
                            "tcp://127.0.0.1:15581"})
    {
        Env env = good_env();
        env["IOTEDGE_WORKLOADURI"] = bad;
        ga::EdgeEnv e;
        std::vector<ga::EnvProblem> problems;
        EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems)) << bad;
        EXPECT_EQ(names(problems), std::vector<std::string>{"IOTEDGE_WORKLOADURI"}) << bad;
    }
    Env env = good_env();
    env["IOTEDGE_WORKLOADURI"] = "unix:///" + std::string(120, 'a');
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems));
    EXPECT_NE(ga::describe(problems).find("longer than 107"), std::string::npos);
}

TEST(EdgeEnv, AuthSchemeIsCaseInsensitiveLikeTheSdks)
{
    Env env = good_env();
    env["IOTEDGE_AUTHSCHEME"] = "SasToken";
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    EXPECT_TRUE(ga::parse_edge_env(lookup(env), e, problems)) << ga::describe(problems);
}

TEST(EdgeEnv, ApiVersionShape)
{
    for (const char* bad : {"2022-8-03", "20220803", "2022-08-03x", "abcd-ef-gh", ""})
    {
        Env env = good_env();
        env["IOTEDGE_APIVERSION"] = bad;
        ga::EdgeEnv e;
        std::vector<ga::EnvProblem> problems;
        EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems)) << bad;
    }
    for (const char* ok : {"2018-06-28", "2019-01-30", "2022-08-03"})
    {
        Env env = good_env();
        env["IOTEDGE_APIVERSION"] = ok;
        ga::EdgeEnv e;
        std::vector<ga::EnvProblem> problems;
        EXPECT_TRUE(ga::parse_edge_env(lookup(env), e, problems)) << ok;
    }
}

TEST(EdgeEnv, BadValuesAreQuotedShortAndPrintable)
{
    Env env = good_env();
    env["IOTEDGE_DEVICEID"] = std::string(300, 'x') + "\x01";
    ga::EdgeEnv e;
    std::vector<ga::EnvProblem> problems;
    EXPECT_FALSE(ga::parse_edge_env(lookup(env), e, problems));
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_LT(problems[0].what.size(), 160U);
    EXPECT_EQ(problems[0].what.find('\x01'), std::string::npos);
}

TEST(EdgeEnv, RuntimeLogLevelNames)
{
    int level = 0;
    EXPECT_TRUE(ga::runtime_log_level("debug", level));
    EXPECT_EQ(level, 7);
    EXPECT_TRUE(ga::runtime_log_level("Info", level));
    EXPECT_EQ(level, 6);
    EXPECT_TRUE(ga::runtime_log_level("WARNING", level));
    EXPECT_EQ(level, 4);
    EXPECT_TRUE(ga::runtime_log_level("error", level));
    EXPECT_EQ(level, 3);
    EXPECT_FALSE(ga::runtime_log_level("loud", level));
}

constexpr const char* kKey = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=";

TEST(EdgeHubFallback, ModuleConnectionStringWithGatewayAndCaFile)
{
    const Env env{{"EdgeHubConnectionString",
                   std::string("HostName=h.net;DeviceId=d;ModuleId=m;GatewayHostName=gw;"
                               "SharedAccessKey=") +
                       kKey},
                  {"EdgeModuleCACertificateFile", "/certs/ca.pem"}};
    ga::EdgeHubFallback fb;
    std::vector<ga::EnvProblem> problems;
    EXPECT_TRUE(ga::edge_hub_fallback_present(lookup(env)));
    ASSERT_TRUE(ga::parse_edge_hub_fallback(lookup(env), fb, problems)) << ga::describe(problems);
    EXPECT_EQ(fb.ca_file, "/certs/ca.pem");
    EXPECT_EQ(fb.connection_string, env.at("EdgeHubConnectionString"));
}

TEST(EdgeHubFallback, EachProblemNamedAndTheKeyNeverShown)
{
    const std::string device_cs = std::string("HostName=h.net;DeviceId=d;SharedAccessKey=") + kKey;
    const Env env{{"EdgeHubConnectionString", device_cs}};
    ga::EdgeHubFallback fb;
    std::vector<ga::EnvProblem> problems;
    EXPECT_FALSE(ga::parse_edge_hub_fallback(lookup(env), fb, problems));
    EXPECT_EQ(names(problems),
              (std::vector<std::string>{"EdgeHubConnectionString", "EdgeModuleCACertificateFile"}));
    const std::string text = ga::describe(problems);
    EXPECT_NE(text.find("module connection string with GatewayHostName"), std::string::npos);
    EXPECT_EQ(text.find(kKey), std::string::npos);

    const Env bad{{"EdgeHubConnectionString", "HostName=h;DeviceId=d;SharedAccessKey=!!secret!!"},
                  {"EdgeModuleCACertificateFile", "relative.pem"}};
    EXPECT_FALSE(ga::parse_edge_hub_fallback(lookup(bad), fb, problems));
    EXPECT_EQ(ga::describe(problems).find("secret"), std::string::npos);
    EXPECT_EQ(names(problems),
              (std::vector<std::string>{"EdgeHubConnectionString", "EdgeModuleCACertificateFile"}));
}

// Identity selection (src/agent/identity_source).
ga::AgentOptions options(const std::string& cs = {})
{
    ga::AgentOptions o;
    o.config.connection_string = cs;
    o.config.state_dir = "/var/lib/ga-test";
    return o;
}

TEST(IdentitySource, ConfWithoutIdentityAndEdgeEnvironmentIsAnEdgeModule)
{
    const Env env = good_env();
    ga::AgentOptions o = options();
    std::string err;
    ASSERT_TRUE(ga::load_identity("a.conf", o, lookup(env), err)) << err;
    EXPECT_EQ(o.identity.host_name, "myhub.azure-devices.net");
    EXPECT_EQ(o.identity.device_id, "edgedev");
    EXPECT_EQ(o.identity.module_id, "filter");
    EXPECT_EQ(o.identity.connect_host(), "edge-gw.local");
    EXPECT_TRUE(o.identity.shared_access_key.empty());
    ASSERT_TRUE(o.workload.enabled());
    EXPECT_EQ(o.workload.socket_path, "/var/run/iotedge/workload.sock");
    EXPECT_EQ(o.workload.generation_id, "637899318049296327");
    EXPECT_EQ(o.workload.api_version, "2022-08-03");
    EXPECT_EQ(o.workload.trust_bundle_file, "/var/lib/ga-test/edge-trust-bundle.pem");
}

TEST(IdentitySource, ConfConnectionStringWinsInAutoMode)
{
    const Env env = good_env();
    ga::AgentOptions o =
        options(std::string("HostName=h.net;DeviceId=dev;ModuleId=mod;SharedAccessKey=") + kKey);
    std::string err;
    ASSERT_TRUE(ga::load_identity("a.conf", o, lookup(env), err)) << err;
    EXPECT_EQ(o.identity.device_id, "dev");
    EXPECT_FALSE(o.workload.enabled());
}

TEST(IdentitySource, ConnectionStringModeIgnoresTheEnvironment)
{
    const Env env = good_env();
    ga::AgentOptions o = options();
    o.config.identity = ga::IdentitySource::ConnectionString;
    std::string err;
    EXPECT_FALSE(ga::load_identity("a.conf", o, lookup(env), err));
    EXPECT_NE(err.find("a.conf: [hub] connection_string or connection_string_file is required"),
              std::string::npos)
        << err;
}

TEST(IdentitySource, BadEnvironmentNamesEachVariable)
{
    Env env = good_env();
    env.erase("IOTEDGE_GATEWAYHOSTNAME");
    env["IOTEDGE_AUTHSCHEME"] = "x509";
    ga::AgentOptions o = options();
    o.config.identity = ga::IdentitySource::EdgeEnvironment;
    std::string err;
    EXPECT_FALSE(ga::load_identity("a.conf", o, lookup(env), err));
    EXPECT_NE(err.find("IOTEDGE_GATEWAYHOSTNAME is not set"), std::string::npos) << err;
    EXPECT_NE(err.find("IOTEDGE_AUTHSCHEME 'x509'"), std::string::npos) << err;
}

TEST(IdentitySource, NoIdentityAnywhere)
{
    ga::AgentOptions o = options();
    std::string err;
    EXPECT_FALSE(ga::load_identity("a.conf", o, lookup({}), err));
    EXPECT_NE(err.find("no identity"), std::string::npos) << err;
    EXPECT_NE(err.find("IOTEDGE_"), std::string::npos) << err;
}

TEST(IdentitySource, EdgeHubConnectionStringFallbackNeedsAReadableCaFile)
{
    const Env env{{"EdgeHubConnectionString",
                   std::string("HostName=h.net;DeviceId=d;ModuleId=m;GatewayHostName=gw;"
                               "SharedAccessKey=") +
                       kKey},
                  {"EdgeModuleCACertificateFile", "/nonexistent/ga-test-ca.pem"}};
    ga::AgentOptions o = options();
    std::string err;
    EXPECT_FALSE(ga::load_identity("a.conf", o, lookup(env), err));
    EXPECT_NE(err.find("EdgeModuleCACertificateFile /nonexistent/ga-test-ca.pem"),
              std::string::npos)
        << err;
}

} // namespace
