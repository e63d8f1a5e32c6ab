// SPDX-License-Identifier: MIT
#include "conf.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace
{

// An obviously fake key; tests check that it never appears in any message.
constexpr std::string_view kFakeKey = "ZmFrZWtleWZvcnRlc3RzMTIzNDU2Nzg5MA==";
const std::string kConnStr =
    "HostName=hub.example.net;DeviceId=edgedev;ModuleId=filter;SharedAccessKey=" +
    std::string(kFakeKey);
const std::string kHub = "[hub]\nconnection_string = " + kConnStr + "\n";

struct Parsed
{
    bool ok = false;
    ga::Config cfg;
    std::string error;
};

Parsed parse(std::string_view text, std::string_view file = "t.conf")
{
    Parsed p;
    p.ok = ga::parse_conf(text, file, p.cfg, p.error);
    return p;
}

// Parses kHub plus `extra` and returns the error text (empty when it parsed).
std::string error_of(std::string_view extra)
{
    const Parsed p = parse(kHub + std::string(extra));
    EXPECT_EQ(p.ok, p.error.empty());
    return p.error;
}

TEST(Conf, MinimalFileGivesHeaderDefaults)
{
    const Parsed p = parse(kHub);
    ASSERT_TRUE(p.ok) << p.error;
    // The key table's default texts must agree with the defaults in conf.h.
    ga::Config want;
    want.connection_string = kConnStr;
    const ga::Config& c = p.cfg;
    EXPECT_EQ(c.connection_string, want.connection_string);
    EXPECT_EQ(c.connection_string_file, want.connection_string_file);
    EXPECT_EQ(c.port, want.port);
    EXPECT_EQ(c.ca_file, want.ca_file);
    EXPECT_EQ(c.transport, want.transport);
    EXPECT_EQ(c.sas_ttl, want.sas_ttl);
    EXPECT_EQ(c.keepalive, want.keepalive);
    EXPECT_EQ(c.model_id, want.model_id);
    EXPECT_EQ(c.field, want.field);
    EXPECT_EQ(c.threshold, want.threshold);
    EXPECT_EQ(c.input, want.input);
    EXPECT_EQ(c.output, want.output);
    EXPECT_EQ(c.source, want.source);
    EXPECT_EQ(c.source_broker, want.source_broker);
    EXPECT_EQ(c.source_topic, want.source_topic);
    EXPECT_EQ(c.source_bind, want.source_bind);
    EXPECT_EQ(c.source_interval_ms, want.source_interval_ms);
    EXPECT_EQ(c.source_seed, want.source_seed);
    EXPECT_EQ(c.reboot_mode, want.reboot_mode);
    EXPECT_EQ(c.reboot_simulate_delay, want.reboot_simulate_delay);
    EXPECT_EQ(c.queue_max_bytes, want.queue_max_bytes);
    EXPECT_EQ(c.state_dir, want.state_dir);
    EXPECT_EQ(c.stats_interval, want.stats_interval);
    // And the documented values themselves.
    EXPECT_EQ(c.port, 8883U);
    EXPECT_EQ(c.transport, ga::Transport::Tls);
    EXPECT_EQ(c.sas_ttl, 3600U);
    EXPECT_EQ(c.keepalive, 240U);
    EXPECT_EQ(c.field, "machine.temperature");
    EXPECT_EQ(c.threshold, 25.0);
    EXPECT_EQ(c.source, ga::SourceType::ModuleInput);
    EXPECT_EQ(c.reboot_mode, ga::RebootMode::RequestFile);
    EXPECT_EQ(c.queue_max_bytes, 67108864U);
    EXPECT_EQ(c.state_dir, "/var/lib/gateway-agent");
    EXPECT_EQ(c.stats_interval, 300U);
}

TEST(Conf, ThresholdSetIsToldApartFromTheDefault)
{
    // --check-config and the start-up line say "conf" for an explicit 25, "default" otherwise.
    const Parsed unset = parse(kHub);
    ASSERT_TRUE(unset.ok) << unset.error;
    EXPECT_FALSE(unset.cfg.threshold_set);
    EXPECT_EQ(unset.cfg.threshold, 25.0);
    const Parsed explicit25 = parse(kHub + "[filter]\nthreshold = 25\n");
    ASSERT_TRUE(explicit25.ok) << explicit25.error;
    EXPECT_TRUE(explicit25.cfg.threshold_set);
    EXPECT_EQ(explicit25.cfg.threshold, 25.0);
    const Parsed other = parse(kHub + "[filter]\nthreshold = 30.5\n");
    ASSERT_TRUE(other.ok) << other.error;
    EXPECT_TRUE(other.cfg.threshold_set);
    EXPECT_EQ(other.cfg.threshold, 30.5);
}

TEST(Conf, EveryKeySet)
{
    const Parsed p = parse("[hub]\n"
                           "connection_string_file = /etc/gateway-agent/cs\n"
                           "port = 1883\n"
                           "ca_file = /etc/ssl/edge-ca.pem\n"
                           "transport = tcp\n"
                           "sas_ttl = 20\n"
                           "keepalive = 1177\n"
                           "model_id = dtmi:com:example:Filter;1\n"
                           "[filter]\n"
                           "field = a.b.c\n"
                           "threshold = -12.5e1\n"
                           "input = in2\n"
                           "output = alerts\n"
                           "[source]\n"
                           "type = mqtt\n"
                           "broker = sensors.local:11883\n"
                           "topic = sensors/+/temp\n"
                           "bind = 0.0.0.0:0\n"
                           "interval_ms = 10\n"
                           "seed = 18446744073709551615\n"
                           "[reboot]\n"
                           "mode = simulate\n"
                           "simulate_delay = 3600\n"
                           "[queue]\n"
                           "max_bytes = 1073741824\n"
                           "[state]\n"
                           "dir = /tmp/ga state\n"
                           "[log]\n"
                           "stats_interval = 0\n");
    ASSERT_TRUE(p.ok) << p.error;
    const ga::Config& c = p.cfg;
    EXPECT_EQ(c.connection_string, "");
    EXPECT_EQ(c.connection_string_file, "/etc/gateway-agent/cs");
    EXPECT_EQ(c.port, 1883U);
    EXPECT_EQ(c.ca_file, "/etc/ssl/edge-ca.pem");
    EXPECT_EQ(c.transport, ga::Transport::Tcp);
    EXPECT_EQ(c.sas_ttl, 20U);
    EXPECT_EQ(c.keepalive, 1177U);
    EXPECT_EQ(c.model_id, "dtmi:com:example:Filter;1");
    EXPECT_EQ(c.field, "a.b.c");
    EXPECT_EQ(c.threshold, -125.0);
    EXPECT_EQ(c.input, "in2");
    EXPECT_EQ(c.output, "alerts");
    EXPECT_EQ(c.source, ga::SourceType::Mqtt);
    EXPECT_EQ(c.source_broker, "sensors.local:11883");
    EXPECT_EQ(c.source_topic, "sensors/+/temp");
    EXPECT_EQ(c.source_bind, "0.0.0.0:0");
    EXPECT_EQ(c.source_interval_ms, 10U);
    EXPECT_EQ(c.source_seed, 18446744073709551615ULL);
    EXPECT_EQ(c.reboot_mode, ga::RebootMode::Simulate);
    EXPECT_EQ(c.reboot_simulate_delay, 3600U);
    EXPECT_EQ(c.queue_max_bytes, 1073741824U);
    EXPECT_EQ(c.state_dir, "/tmp/ga state");
    EXPECT_EQ(c.stats_interval, 0U);
}

TEST(Conf, EnumSpellings)
{
    for (auto [text, want] : {std::pair{"module-input", ga::SourceType::ModuleInput},
                              {"mqtt", ga::SourceType::Mqtt},
                              {"udp", ga::SourceType::Udp},
                              {"simulated", ga::SourceType::Simulated}})
    {
        const Parsed p = parse(kHub + "[source]\ntype = " + text + "\ntopic = t\n");
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.cfg.source, want);
        EXPECT_STREQ(ga::to_string(want), text);
    }
    for (auto [text, want] : {std::pair{"request-file", ga::RebootMode::RequestFile},
                              {"simulate", ga::RebootMode::Simulate},
                              {"disabled", ga::RebootMode::Disabled}})
    {
        const Parsed p = parse(kHub + "[reboot]\nmode = " + text + "\n");
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.cfg.reboot_mode, want);
        EXPECT_STREQ(ga::to_string(want), text);
    }
    EXPECT_STREQ(ga::to_string(ga::Transport::Tls), "tls");
    EXPECT_STREQ(ga::to_string(ga::Transport::Tcp), "tcp");
}

TEST(Conf, SyntaxCommentsWhitespaceAndLineEnds)
{
    const Parsed p = parse("\xEF\xBB\xBF# leading comment\r\n"
                           "; another comment\r\n"
                           "   \t\r\n"
                           "  [ hub ]   # section comment\r\n"
                           "\tconnection_string\t=\t" +
                           kConnStr +
                           "   \r\n"
                           "port=443 # trailing comment\n"
                           "model_id =          # optional, left empty\n"
                           "[filter]\n"
                           "field = a#b\n"
                           "input = x;y\n"
                           "  ; indented comment\n"
                           "  # indented comment");
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.cfg.connection_string, kConnStr); // ';' and '=' inside the value are kept
    EXPECT_EQ(p.cfg.port, 443U);
    EXPECT_EQ(p.cfg.model_id, "");
    EXPECT_EQ(p.cfg.field, "a#b"); // '#' not preceded by whitespace is part of the value
    EXPECT_EQ(p.cfg.input, "x;y");
}

TEST(Conf, EmptyConnectionStringCountsAsUnset)
{
    const Parsed p = parse("[hub]\nconnection_string =\nconnection_string_file = /run/cs\n");
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.cfg.connection_string_file, "/run/cs");
}

TEST(Conf, UnknownSection)
{
    EXPECT_EQ(error_of("[hubb]\n"), "t.conf:3: unknown section '[hubb]'");
    EXPECT_EQ(error_of("[hub\n"), "t.conf:3: section header without a closing ']'");
    EXPECT_EQ(error_of("[hub] port = 1\n"), "t.conf:3: unexpected text after the section header");
}

TEST(Conf, UnknownKey)
{
    EXPECT_EQ(error_of("prot = 1\n"), "t.conf:3: [hub] prot: unknown key");
    EXPECT_EQ(error_of("threshold = 1\n"),
              "t.conf:3: [hub] threshold: unknown key (there is a threshold in [filter])");
}

TEST(Conf, ImplausibleKeyNamesAreNotEchoed)
{
    const std::string want = "t.conf:3: [hub] unknown key (name not shown; key names are "
                             "lowercase letters, digits and '_')";
    EXPECT_EQ(error_of(std::string(kFakeKey) + "\n"), want); // a pasted key: "...==" has '='
    EXPECT_EQ(error_of("Port = 1\n"), want);
    EXPECT_EQ(error_of("HostName=h;DeviceId=d\n"), want);
    EXPECT_EQ(parse(std::string(kFakeKey) + "\n").error,
              "t.conf:1: unknown key (name not shown; key names are lowercase letters, digits "
              "and '_')");
}

TEST(Conf, KeyOutsideSection)
{
    const Parsed p = parse("port = 1\n" + kHub);
    EXPECT_EQ(p.error, "t.conf:1: port: key outside any section (add a [section] line above it)");
}

TEST(Conf, DuplicateKey)
{
    EXPECT_EQ(error_of("port = 1\n\nport = 2\n"),
              "t.conf:5: [hub] port: duplicate key (first set on line 3)");
    // Also across a repeated section header.
    EXPECT_EQ(error_of("[filter]\ninput = a\n[hub]\n[filter]\ninput = b\n"),
              "t.conf:7: [filter] input: duplicate key (first set on line 4)");
}

TEST(Conf, LineWithoutEquals)
{
    EXPECT_EQ(error_of("port 8883\n"),
              "t.conf:3: [hub] expected 'key = value' but the line has no '='");
    EXPECT_EQ(error_of("= 8883\n"), "t.conf:3: [hub] a line with '=' but no key");
}

TEST(Conf, BadValues)
{
    EXPECT_EQ(error_of("port = abc\n"),
              "t.conf:3: [hub] port: expected an integer 1..65535, got 'abc'");
    EXPECT_EQ(error_of("port =\n"), "t.conf:3: [hub] port: expected an integer 1..65535, got ''");
    EXPECT_EQ(error_of("port = -1\n"),
              "t.conf:3: [hub] port: expected an integer 1..65535, got '-1'");
    EXPECT_EQ(error_of("port = 0x10\n"),
              "t.conf:3: [hub] port: expected an integer 1..65535, got '0x10'");
    EXPECT_EQ(error_of("port = 1 2\n"),
              "t.conf:3: [hub] port: expected an integer 1..65535, got '1 2'");
    EXPECT_EQ(error_of("transport = TLS\n"),
              "t.conf:3: [hub] transport: expected tls or tcp, got 'TLS'");
    EXPECT_EQ(error_of("[source]\ntype = serial\n"),
              "t.conf:4: [source] type: expected module-input, mqtt, udp or simulated, got "
              "'serial'");
    EXPECT_EQ(error_of("[reboot]\nmode = now\n"),
              "t.conf:4: [reboot] mode: expected request-file, simulate or disabled, got 'now'");
    EXPECT_EQ(error_of("[filter]\nthreshold = warm\n"),
              "t.conf:4: [filter] threshold: expected a finite decimal number, got 'warm'");
    EXPECT_EQ(error_of("[filter]\nthreshold = inf\n"),
              "t.conf:4: [filter] threshold: expected a finite decimal number, got 'inf'");
    EXPECT_EQ(error_of("[filter]\nthreshold = nan\n"),
              "t.conf:4: [filter] threshold: expected a finite decimal number, got 'nan'");
    EXPECT_EQ(error_of("[filter]\nthreshold = 1e999\n"),
              "t.conf:4: [filter] threshold: expected a finite decimal number, got '1e999'");
    EXPECT_EQ(error_of("[filter]\nfield = a..b\n"),
              "t.conf:4: [filter] field: expected a dotted path like machine.temperature (no "
              "empty segments, at most 8), got 'a..b'");
    EXPECT_EQ(error_of("[filter]\nfield =\n"),
              "t.conf:4: [filter] field: expected a dotted path like machine.temperature (no "
              "empty segments, at most 8), got ''");
    EXPECT_EQ(error_of("[filter]\ninput = in/1\n"),
              "t.conf:4: [filter] input: expected a non-empty name without '/', '+' or '#', got "
              "'in/1'");
    EXPECT_EQ(error_of("[filter]\noutput =\n"),
              "t.conf:4: [filter] output: expected a non-empty name without '/', '+' or '#', got "
              "''");
    EXPECT_EQ(error_of("[source]\nbroker = localhost\n"),
              "t.conf:4: [source] broker: expected host:port with a port 1..65535, got "
              "'localhost'");
    EXPECT_EQ(error_of("[source]\nbroker = localhost:0\n"),
              "t.conf:4: [source] broker: expected host:port with a port 1..65535, got "
              "'localhost:0'");
    EXPECT_EQ(error_of("[source]\nbind = :5683\n"),
              "t.conf:4: [source] bind: expected an IPv4 address:port with a port 0..65535 (e.g. "
              "127.0.0.1:5683), got ':5683'");
    EXPECT_EQ(error_of("[source]\nbind = localhost:5683\n"),
              "t.conf:4: [source] bind: expected an IPv4 address:port with a port 0..65535 (e.g. "
              "127.0.0.1:5683), got 'localhost:5683'");
    EXPECT_EQ(error_of("[source]\nbind = 127.0.0.1:0\n"), ""); // the kernel picks the port
    EXPECT_EQ(error_of("[source]\ntopic = a b\n"),
              "t.conf:4: [source] topic: expected a topic filter without spaces, got 'a b'");
    EXPECT_EQ(error_of("[state]\ndir =\n"),
              "t.conf:4: [state] dir: expected a non-empty value, got ''");
}

TEST(Conf, LongValuesAreShortenedInErrors)
{
    const std::string err = error_of("port = " + std::string(500, '9') + "x\n");
    EXPECT_EQ(err, "t.conf:3: [hub] port: expected an integer 1..65535, got '" +
                       std::string(64, '9') + "...'");
}

TEST(Conf, OutOfRange)
{
    EXPECT_EQ(error_of("port = 0\n"),
              "t.conf:3: [hub] port: value out of range: expected 1..65535, got '0'");
    EXPECT_EQ(error_of("port = 65536\n"),
              "t.conf:3: [hub] port: value out of range: expected 1..65535, got '65536'");
    EXPECT_EQ(error_of("port = 99999999999999999999999\n"),
              "t.conf:3: [hub] port: value out of range: expected 1..65535, got "
              "'99999999999999999999999'");
    EXPECT_EQ(error_of("sas_ttl = 9\n"),
              "t.conf:3: [hub] sas_ttl: value out of range: expected 10..604800, got '9'");
    EXPECT_EQ(error_of("sas_ttl = 604801\n"),
              "t.conf:3: [hub] sas_ttl: value out of range: expected 10..604800, got '604801'");
    EXPECT_EQ(error_of("keepalive = 1178\n"),
              "t.conf:3: [hub] keepalive: value out of range: expected 10..1177, got '1178'");
    EXPECT_EQ(error_of("keepalive = 9\n"),
              "t.conf:3: [hub] keepalive: value out of range: expected 10..1177, got '9'");
    EXPECT_EQ(error_of("[source]\ninterval_ms = 9\n"),
              "t.conf:4: [source] interval_ms: value out of range: expected 10..3600000, got '9'");
    EXPECT_EQ(error_of("[source]\nseed = 18446744073709551616\n"),
              "t.conf:4: [source] seed: value out of range: expected 0..18446744073709551615, "
              "got '18446744073709551616'");
    EXPECT_EQ(error_of("[reboot]\nsimulate_delay = 3601\n"),
              "t.conf:4: [reboot] simulate_delay: value out of range: expected 0..3600, got "
              "'3601'");
    EXPECT_EQ(error_of("[queue]\nmax_bytes = 4095\n"),
              "t.conf:4: [queue] max_bytes: value out of range: expected 4096..1073741824, got "
              "'4095'");
    EXPECT_EQ(error_of("[queue]\nmax_bytes = 1073741825\n"),
              "t.conf:4: [queue] max_bytes: value out of range: expected 4096..1073741824, got "
              "'1073741825'");
    EXPECT_EQ(error_of("[log]\nstats_interval = 86401\n"),
              "t.conf:4: [log] stats_interval: value out of range: expected 0..86400, got "
              "'86401'");
}

TEST(Conf, WholeFileChecks)
{
    // No identity in the conf is fine by default: it may come from the IoT Edge environment.
    EXPECT_EQ(parse("").error, "");
    EXPECT_EQ(parse("[hub]\nport = 1\n").cfg.identity, ga::IdentitySource::Auto);
    EXPECT_EQ(parse("[hub]\nidentity = connection-string\n").error,
              "t.conf: [hub] connection_string or connection_string_file is required (neither "
              "is set)");
    EXPECT_EQ(parse(kHub + "identity = edge-environment\n").error,
              "t.conf: [hub] identity = edge-environment takes no connection_string or "
              "connection_string_file; remove them");
    EXPECT_EQ(parse("[hub]\nidentity = edge-environment\n").cfg.identity,
              ga::IdentitySource::EdgeEnvironment);
    const Parsed both = parse(kHub + "connection_string_file = /etc/cs\n");
    EXPECT_EQ(both.error, "t.conf: [hub] connection_string and connection_string_file are both "
                          "set; use only one");
    EXPECT_EQ(both.error.find(kFakeKey), std::string::npos);
    EXPECT_EQ(error_of("[source]\ntype = mqtt\n"),
              "t.conf: [source] topic is required when type = mqtt");
    EXPECT_EQ(error_of("[source]\ntype = mqtt\ntopic = sensors/#\n"), "");
    EXPECT_EQ(error_of("[source]\ntype = udp\n"), "");
}

TEST(Conf, RejectsNulControlAndInvalidUtf8)
{
    EXPECT_EQ(error_of(std::string("model_id = a\0b\n", 15)), "t.conf:3: line contains a NUL byte");
    EXPECT_EQ(error_of("model_id = a\x01"
                       "b\n"),
              "t.conf:3: line contains a control character");
    EXPECT_EQ(error_of("model_id = caf\xC3\n"), "t.conf:3: line is not valid UTF-8");
    EXPECT_EQ(error_of("model_id = \xC0\xAF\n"), "t.conf:3: line is not valid UTF-8"); // overlong
    EXPECT_EQ(error_of("model_id = \xED\xA0\x80\n"), "t.conf:3: line is not valid UTF-8");
    EXPECT_EQ(error_of("# comment \xFF\n"), "t.conf:3: line is not valid UTF-8");
    EXPECT_EQ(error_of("model_id = caf\xC3\xA9 \xF0\x9F\x8C\xA1\n"), "");
}

TEST(Conf, StopsAtFirstErrorWithItsLine)
{
    EXPECT_EQ(error_of("port = x\nport = y\nbogus\n"),
              "t.conf:3: [hub] port: expected an integer 1..65535, got 'x'");
}

TEST(Conf, FailureLeavesOutputUntouched)
{
    ga::Config cfg;
    cfg.port = 1234;
    std::string err;
    EXPECT_FALSE(ga::parse_conf(kHub + "port = 7\nbogus = 1\n", "t.conf", cfg, err));
    EXPECT_EQ(cfg.port, 1234U);
}

TEST(Conf, SecretsNeverEchoed)
{
    // Every way the connection string line can fail must not print its value.
    const std::string cs = "connection_string = " + kConnStr;
    const std::string cases[] = {
        "[hub]\n" + cs + "\n" + cs + "\n", // duplicate
        "[hub]\n" + cs + "\x01\n",         // control character
        "[hub]\n" + cs + "\xFF\n",         // bad UTF-8
        "[hub]\n" + std::string("connection_string ") + kConnStr.substr(9) + "\n", // no '='?
        "[hub]\nHostName=h;DeviceId=d;SharedAccessKey=" + std::string(kFakeKey) + "\n",
        "[hub]\n" + std::string(kFakeKey) + "\n", // the key pasted on its own line
        "[filter]\n" + cs + "\n",                 // wrong section
        cs + "\n",                                // no section
        "[hub]\n" + cs + "\nconnection_string_file = /x\n",
    };
    for (const auto& text : cases)
    {
        const Parsed p = parse(text);
        EXPECT_FALSE(p.ok) << text;
        EXPECT_EQ(p.error.find(kFakeKey), std::string::npos) << p.error;
        EXPECT_EQ(p.error.find("SharedAccessKey"), std::string::npos) << p.error;
    }
}

TEST(Conf, HelpListsEverySectionAndKeyWithDefaults)
{
    const std::string help = ga::conf_help();
    for (const char* s :
         {"[hub]", "[filter]", "[source]", "[reboot]", "[queue]", "[state]", "[log]"})
    {
        EXPECT_NE(help.find(s), std::string::npos) << s;
    }
    for (const char* k : {"connection_string = ",
                          "connection_string_file = ",
                          "port = 8883",
                          "ca_file = ",
                          "transport = tls",
                          "sas_ttl = 3600",
                          "keepalive = 240",
                          "model_id = ",
                          "field = machine.temperature",
                          "threshold = 25",
                          "input = input1",
                          "output = output1",
                          "type = module-input",
                          "broker = 127.0.0.1:1883",
                          "topic = ",
                          "bind = 127.0.0.1:5683",
                          "interval_ms = 5000",
                          "seed = 1",
                          "mode = request-file",
                          "simulate_delay = 0",
                          "max_inflight = 64",
                          "max_bytes = 67108864",
                          "max_age = 0",
                          "dir = /var/lib/gateway-agent",
                          "stats_interval = 300"})
    {
        EXPECT_NE(help.find(std::string("\n  ") + k), std::string::npos) << k;
    }
    EXPECT_NE(help.find("integer 1..65535"), std::string::npos);
    EXPECT_NE(help.find("module-input, mqtt, udp or simulated"), std::string::npos);
}

TEST(Conf, SummaryModuleMode)
{
    Parsed p = parse(kHub + "[reboot]\nmode = simulate\n");
    ASSERT_TRUE(p.ok) << p.error;
    const std::string s = ga::conf_summary(p.cfg, "edgedev/filter", "edge.local");
    EXPECT_EQ(s, "identity=edgedev/filter host=edge.local:8883 mode=module transport=tls "
                 "threshold=25 field=machine.temperature source=module-input(input1->output1) "
                 "reboot=simulate state=/var/lib/gateway-agent");
    EXPECT_EQ(s.find(kFakeKey), std::string::npos);
    EXPECT_EQ(s.find("SharedAccess"), std::string::npos);
}

TEST(Conf, SummaryOtherSources)
{
    Parsed p = parse(kHub + "port = 1883\ntransport = tcp\n[filter]\nthreshold = 30.25\n"
                            "[source]\ntype = mqtt\ntopic = sensors/#\n");
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(ga::conf_summary(p.cfg, "dev1", "localhost"),
              "identity=dev1 host=localhost:1883 mode=device transport=tcp threshold=30.25 "
              "field=machine.temperature source=mqtt(127.0.0.1:1883 sensors/#) "
              "reboot=request-file state=/var/lib/gateway-agent");
    p.cfg.source = ga::SourceType::Udp;
    EXPECT_NE(ga::conf_summary(p.cfg, "d", "h").find(" source=udp(127.0.0.1:5683) "),
              std::string::npos);
    p.cfg.source = ga::SourceType::Simulated;
    EXPECT_NE(ga::conf_summary(p.cfg, "d", "h").find(" source=simulated(every 5000ms seed 1) "),
              std::string::npos);
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The example conf the package installs must parse once a real connection string is filled in.
TEST(Conf, ShippedExampleParses)
{
    // tests/data may not exist, so the repo root is found from this file's own path.
    std::string path = __FILE__;
    path = path.substr(0, path.rfind("/tests/unit/")) + "/config/gateway-agent.conf";
    std::string text = read_file(path);
    ASSERT_FALSE(text.empty()) << path;
    // As shipped it is incomplete on purpose: the placeholder must be replaced.
    const Parsed shipped = parse(text, "gateway-agent.conf");
    EXPECT_FALSE(shipped.ok);
    EXPECT_NE(shipped.error.find("connection_string"), std::string::npos) << shipped.error;

    const std::string placeholder = "#connection_string = ";
    const auto at = text.find("\n" + placeholder);
    ASSERT_NE(at, std::string::npos);
    text.replace(at + 1, 1, ""); // uncomment the placeholder line
    const Parsed p = parse(text, "gateway-agent.conf");
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.cfg.source, ga::SourceType::ModuleInput);
    EXPECT_EQ(p.cfg.reboot_mode, ga::RebootMode::RequestFile);
    EXPECT_EQ(p.cfg.transport, ga::Transport::Tls);
    EXPECT_EQ(p.cfg.port, 8883U);
    EXPECT_EQ(p.cfg.threshold, 25.0);
    EXPECT_EQ(p.cfg.state_dir, "/var/lib/gateway-agent");

    // Every key in the table is mentioned in the example (commented or not).
    for (const char* k : {"connection_string",
                          "connection_string_file",
                          "port",
                          "ca_file",
                          "transport",
                          "sas_ttl",
                          "keepalive",
                          "model_id",
                          "max_inflight",
                          "field",
                          "threshold",
                          "input",
                          "output",
                          "type",
                          "broker",
                          "topic",
                          "bind",
                          "interval_ms",
                          "seed",
                          "mode",
                          "simulate_delay",
                          "max_inflight",
                          "max_bytes",
                          "max_age",
                          "dir",
                          "stats_interval"})
    {
        EXPECT_NE(text.find(std::string(k) + " ="), std::string::npos) << k;
    }
}

} // namespace

namespace
{
ga::EnvLookup env_of(std::map<std::string, std::string> vars)
{
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string>
    {
        const auto it = vars.find(std::string(name));
        return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
}
} // namespace

TEST(ConfEnv, EnvironmentOverridesTheFileAndSaysWhere)
{
    const ga::EnvLookup env = env_of({{"GATEWAY_AGENT_FILTER_THRESHOLD", "31.5"},
                                      {"GATEWAY_AGENT_FILTER_OUTPUT", "alerts"},
                                      {"UNRELATED", "x"}});
    ga::Config c;
    ga::ConfOrigins origins;
    std::string err;
    ASSERT_TRUE(
        ga::parse_conf("[filter]\nthreshold = 20\nfield = a.b\n", "t.conf", &env, &origins, c, err))
        << err;
    EXPECT_EQ(c.threshold, 31.5);
    EXPECT_TRUE(c.threshold_set);
    EXPECT_EQ(c.output, "alerts");
    EXPECT_EQ(c.field, "a.b");
    std::map<std::string, std::string> where;
    for (const auto& o : origins)
        where["[" + o.section + "] " + o.key] = o.origin;
    EXPECT_EQ(where["[filter] threshold"], "environment GATEWAY_AGENT_FILTER_THRESHOLD");
    EXPECT_EQ(where["[filter] output"], "environment GATEWAY_AGENT_FILTER_OUTPUT");
    EXPECT_EQ(where["[filter] field"], "t.conf:3");
    EXPECT_EQ(where.size(), 3U);
}

TEST(ConfEnv, ABadValueNamesTheVariable)
{
    const ga::EnvLookup env = env_of({{"GATEWAY_AGENT_QUEUE_MAX_AGE", "-1"}});
    ga::Config c;
    std::string err;
    EXPECT_FALSE(ga::parse_conf("", "t.conf", &env, nullptr, c, err));
    EXPECT_EQ(err.rfind("environment GATEWAY_AGENT_QUEUE_MAX_AGE ([queue] max_age): ", 0), 0U)
        << err;
}

TEST(ConfEnv, NoConfFileNeeded)
{
    // An empty "file" (none in the container) with the identity and the threshold from the
    // environment passes the whole-file checks, which run after the environment.
    const ga::EnvLookup env = env_of(
        {{"GATEWAY_AGENT_HUB_IDENTITY", "connection-string"},
         {"GATEWAY_AGENT_HUB_CONNECTION_STRING", "HostName=h;DeviceId=d;SharedAccessKey=a2V5"}});
    ga::Config c;
    std::string err;
    ASSERT_TRUE(ga::parse_conf("", "(none)", &env, nullptr, c, err)) << err;
    EXPECT_EQ(c.connection_string, "HostName=h;DeviceId=d;SharedAccessKey=a2V5");
    const ga::EnvLookup none = env_of({{"GATEWAY_AGENT_HUB_IDENTITY", "connection-string"}});
    EXPECT_FALSE(ga::parse_conf("", "(none)", &none, nullptr, c, err));
}
