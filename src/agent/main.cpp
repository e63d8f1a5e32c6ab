// SPDX-License-Identifier: MIT
// gateway-agent [check] [--config PATH] [--check-config] [--has-identity] [--allow-root] ...
#include "agent.h"
#include "check.h"
#include "conf.h"
#include "identity_source.h"
#include "json_scan.h"
#include "port.h"
#include "twin_sync.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

namespace
{
constexpr int kExitConfig = 78; // EX_CONFIG
constexpr const char* kDefaultConfig = "/etc/gateway-agent/gateway-agent.conf";

void usage()
{
    std::printf("usage: gateway-agent [check] [--config PATH] [--check-config] [--has-identity] "
                "[--allow-root] [--version] [--help]\n\n"
                "  check            diagnose clock, DNS, TCP, TLS, authentication, subscriptions,\n"
                "                   twin, reboot path unit and state dir; one line each with the\n"
                "                   fix; exit 0, 1 (a check failed) or 78 (bad conf)\n"
                "  --config PATH    conf file (default %s)\n"
                "  --check-config   check the conf and what it names (secret file modes, CA file,\n"
                "                   state dir) as start-up does; print a one-line summary;\n"
                "                   exit 0, 78 (bad conf) or 1 (CA file, state dir)\n"
                "  --has-identity   exit 0 when the conf or the environment names an identity\n"
                "                   (or the conf has an error, which the start then reports),\n"
                "                   1 with one line when none is named yet (the packaged conf):\n"
                "                   the unit's ExecCondition=, so such a gateway skips the start\n"
                "                   instead of failing it\n"
                "  --user NAME      with --check-config run as root: check as this user\n"
                "                   (default gateway-agent, the unit's User=)\n"
                "  --allow-root     run as root (inside a container only; on a gateway the\n"
                "                   systemd unit runs the agent as the user gateway-agent)\n"
                "  --version        print the version\n"
                "  --help           this text and the conf file reference\n\n"
                "Exit codes: 0 clean stop, 78 bad conf, 1 other start-up error.\n\n%s",
                kDefaultConfig, ga::conf_help().c_str());
}

std::string without_trailing_slash(std::string s)
{
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
    return s;
}

int no_identity_yet(const std::string& path)
{
    (void)std::fprintf(stderr,
                       "gateway-agent: %s names no identity yet, so the service does not start: "
                       "set [hub] connection_string or connection_string_file, check with "
                       "gateway-agent --check-config, then run: systemctl start gateway-agent\n",
                       path.c_str());
    return 1;
}

// --has-identity (the unit's ExecCondition=): 1, so systemd skips the start without marking the
// unit failed, only when nothing names an identity yet; every other problem is 0 so that the
// start itself reports it (exit 78, not restarted).
int has_identity(const std::string& path)
{
    std::string text;
    std::string err;
    if (ga::port::read_file(path, text, 1U << 20U, err) != ga::port::ReadStatus::Ok)
        return 0;
    const ga::EnvLookup env = [](std::string_view name) { return ga::port::env_if_set(name); };
    ga::Config cfg;
    if (ga::parse_conf(text, path, &env, nullptr, cfg, err))
        return ga::identity_named(cfg, env) ? 0 : no_identity_yet(path);
    // The parser refuses identity = connection-string with neither key set. Whether that is the
    // conf's only problem shows when it is parsed again with identity = auto.
    const ga::EnvLookup as_auto = [&env](std::string_view name) -> std::optional<std::string>
    {
        if (name == "GATEWAY_AGENT_HUB_IDENTITY")
            return "auto";
        return env(name);
    };
    ga::Config again;
    if (ga::parse_conf(text, path, &as_auto, nullptr, again, err) &&
        again.connection_string.empty() && again.connection_string_file.empty())
        return no_identity_yet(path);
    return 0;
}

// Not the conf's syntax but what it names (CA file, state dir), or the user: exit 1.
int startup_error(const std::string& msg, bool check_only)
{
    if (check_only)
        (void)std::fprintf(stderr, "gateway-agent: %s\n", msg.c_str());
    else
        ga::port::log(ga::port::Level::Err, "%s", msg.c_str());
    return 1;
}

int config_error(const std::string& msg)
{
    (void)std::fprintf(stderr, "gateway-agent: %s\n", msg.c_str());
    return kExitConfig;
}

// The conf summary with the threshold that will be used and where it comes from: the stored
// twin state (read only here) overrides the conf, as it does at start.
std::string check_summary(const ga::Config& cfg,
                          const std::string& identity,
                          const std::string& host,
                          const ga::ConfOrigins& origins)
{
    ga::StoredDesired stored;
    std::string why;
    const ga::StoredLoad load = ga::load_stored_desired(cfg.state_dir, stored, why);
    if (load == ga::StoredLoad::Ignored)
        (void)std::fprintf(stderr, "gateway-agent: stored desired state ignored: %s\n",
                           why.c_str());
    const bool use_stored = load == ga::StoredLoad::Loaded && stored.has_threshold;
    ga::Config shown = cfg;
    if (use_stored)
        shown.threshold = stored.threshold;
    std::string out = ga::conf_summary(shown, identity, host);
    std::array<char, 64> src{};
    ga::BufWriter w(src);
    ga::describe_threshold_source(use_stored ? &stored : nullptr, cfg.threshold_set, w);
    std::string source(w.view());
    const bool from_env = std::ranges::any_of(
        origins, [](const ga::ConfOrigin& o)
        { return o.key == "threshold" && o.origin.starts_with("environment"); });
    if (from_env && source == "conf")
        source = "environment";
    // Right after the threshold's value: "threshold=30 (twin ($version 7, stored))".
    const auto at = out.find(" threshold=");
    if (at != std::string::npos)
        out.insert(std::min(out.find(' ', at + 1), out.size()), " (" + source + ")");
    return out;
}
} // namespace

int main(int argc, char** argv)
{
    std::string path = kDefaultConfig;
    bool path_given = false;
    bool check_only = false;
    bool allow_root = false;
    bool identity_probe = false;
    std::string check_user = "gateway-agent";
    // `gateway-agent check [--config PATH]`: diagnostics (check.h), same conf loading as below.
    const bool run_checks = argc > 1 && std::strcmp(argv[1], "check") == 0;
    for (int i = run_checks ? 2 : 1; i < argc; ++i)
    {
        const std::string arg = argv[i];
        if (arg == "--config" && i + 1 < argc)
        {
            path = argv[++i];
            path_given = true;
        }
        else if (arg.rfind("--config=", 0) == 0)
        {
            path = arg.substr(9);
            path_given = true;
        }
        else if (arg == "--check-config")
            check_only = true;
        else if (arg == "--has-identity")
            identity_probe = true;
        else if (arg == "--allow-root")
            allow_root = true;
        else if (arg == "--user" && i + 1 < argc)
            check_user = argv[++i];
        else if (arg == "--version")
        {
            std::printf("gateway-agent %s\n", GA_VERSION);
            return 0;
        }
        else if (arg == "--help" || arg == "-h")
        {
            usage();
            return 0;
        }
        else
        {
            (void)std::fprintf(stderr, "gateway-agent: unknown argument '%s' (try --help)\n",
                               arg.c_str());
            return 64; // EX_USAGE
        }
    }

    if (identity_probe)
        return has_identity(path);
    ga::AgentOptions opt;
    std::string text;
    std::string err;
    // Run as root, the check reads and writes as the service user will, so "OK" means the
    // service can start.
    if ((check_only || run_checks) && ga::port::running_as_root())
    {
        switch (ga::port::become_user(check_user, err))
        {
        case ga::port::UserSwitch::Switched:
            break;
        case ga::port::UserSwitch::NoSuchUser:
            (void)std::fprintf(stderr, "gateway-agent: %s; checking as root\n", err.c_str());
            break;
        case ga::port::UserSwitch::Failed:
            (void)std::fprintf(stderr, "gateway-agent: %s\n", err.c_str());
            return 1;
        }
    }
    switch (ga::port::read_file(path, text, 1U << 20U, err))
    {
    case ga::port::ReadStatus::Missing:
        // In a container (an IoT Edge module) defaults and the environment are enough; on a
        // gateway the unit names the conf, and a named file that is missing is an error.
        if (path_given)
            return config_error(path + ": no such file");
        (void)std::fprintf(stderr,
                           "gateway-agent: no conf file at %s; using the defaults and the "
                           "environment\n",
                           path.c_str());
        break;
    case ga::port::ReadStatus::Error:
        return config_error(err);
    case ga::port::ReadStatus::Ok:
        break;
    }
    const ga::EnvLookup env = [](std::string_view name) { return ga::port::env_if_set(name); };
    ga::ConfOrigins origins;
    if (!ga::parse_conf(text, path, &env, &origins, opt.config, err))
        return config_error(err);
    const ga::Config& cfg = opt.config;
    // The secrets rule applies to the conf itself when it holds the connection string.
    const bool secret_in_file = std::ranges::any_of(
        origins, [](const ga::ConfOrigin& o)
        { return o.key == "connection_string" && !o.origin.starts_with("environment"); });
    if (secret_in_file && !ga::port::is_private_file(path, err))
        return config_error(err);
    // Under the unit, the reboot path unit watches the unit's StateDirectory; a request written
    // anywhere else would be a 200 for a reboot that never happens.
    if (const std::string unit_state = ga::port::env("STATE_DIRECTORY");
        cfg.reboot_mode == ga::RebootMode::RequestFile && !unit_state.empty() &&
        without_trailing_slash(unit_state) != without_trailing_slash(cfg.state_dir))
        return config_error(path + ": [state] dir = " + cfg.state_dir +
                            " but the reboot path unit watches " + unit_state +
                            "/reboot-request (the unit's StateDirectory); with [reboot] mode = "
                            "request-file remove [state] dir or set it to " +
                            unit_state);
    if (!ga::load_identity(path, opt, err))
        return config_error(err);
    if (run_checks)
        return ga::run_check(opt, stdout); // 0, or 1 when a check failed
    std::string identity(opt.identity.device_id);
    if (opt.identity.is_module())
        identity += "/" + std::string(opt.identity.module_id);
    const std::string host(opt.identity.connect_host()); // conf_summary adds the port
    // Start-up checks that are not conf syntax: exit 1 naming the cause; --check-config makes
    // the same ones.
    if (!check_only && ga::port::running_as_root() && !allow_root)
        return startup_error("start-up refused: running as root; run as the user gateway-agent "
                             "(the systemd unit does), or pass --allow-root inside a container",
                             false);
    if (cfg.transport == ga::Transport::Tls && !cfg.ca_file.empty() &&
        !ga::port::check_ca_file(cfg.ca_file, err))
        return startup_error(path + ": [hub] ca_file: " + err, check_only);
    switch (ga::port::ensure_writable_dir(cfg.state_dir, err))
    {
    case ga::port::DirStatus::Writable:
        break;
    case ga::port::DirStatus::NoSpace:
        // A full or read-only disk must not stop the alerts: run, keep them in memory, say so.
        if (check_only)
            (void)std::fprintf(stderr, "gateway-agent: warning: [state] dir: %s\n", err.c_str());
        else
            ga::port::log(ga::port::Level::Err,
                          "%s: starting anyway; alerts are kept in memory only until it takes "
                          "writes",
                          err.c_str());
        break;
    case ga::port::DirStatus::Unusable:
        return startup_error(path + ": [state] dir: " + err, check_only);
    }
    if (check_only)
    {
        std::printf("%s\n", check_summary(cfg, identity, host, origins).c_str());
        for (const auto& o : origins)
            std::printf("  [%s] %s from %s\n", o.section.c_str(), o.key.c_str(), o.origin.c_str());
        return 0;
    }
    return ga::run_agent(opt);
}
