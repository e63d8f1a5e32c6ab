// SPDX-License-Identifier: MIT
#include "edge_env.h"

#include "connection_string.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace ga
{
namespace
{

constexpr std::size_t kMaxShown = 64;    // a bad value is quoted at most this long
constexpr std::size_t kMaxSunPath = 107; // sockaddr_un.sun_path less the NUL
constexpr std::string_view kUnixScheme = "unix://";
// Any valid key: ids and hosts are checked by the connection string parser (the same rules).
constexpr std::string_view kDummyKey = "AAAA";

std::string shown(std::string_view v)
{
    std::string out;
    for (const char c : v.substr(0, kMaxShown))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (v.size() > kMaxShown)
        out += "...";
    return "'" + out + "'";
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](char x, char y)
                      {
                          return std::tolower(static_cast<unsigned char>(x)) ==
                                 std::tolower(static_cast<unsigned char>(y));
                      });
}

// Runs `text` (a connection string with one field under test) through the connection string
// parser, so ids and host names follow exactly its rules. Returns "" when the field is good.
std::string check_with_connection_string(const std::string& text)
{
    ConnectionString cs;
    const ConnStrResult r = parse_connection_string(text, cs);
    if (r.ok())
        return {};
    std::string what = describe(r.error);
    if (r.bad_char != '\0')
        what += std::string(" ('") + r.bad_char + "')";
    return what;
}

std::string check_id(std::string_view v)
{
    // ';' would split the synthesized string: the connection string rules refuse it too.
    if (v.find(';') != std::string_view::npos)
        return "has characters an id cannot have (';')";
    return check_with_connection_string("HostName=h;DeviceId=" + std::string(v) +
                                        ";SharedAccessKey=" + std::string(kDummyKey));
}

std::string check_module_id(std::string_view v)
{
    if (v.find(';') != std::string_view::npos)
        return "has characters an id cannot have (';')";
    return check_with_connection_string("HostName=h;DeviceId=d;ModuleId=" + std::string(v) +
                                        ";SharedAccessKey=" + std::string(kDummyKey));
}

std::string check_host(std::string_view v)
{
    if (v.find(';') != std::string_view::npos)
        return "is not a host name (';')";
    return check_with_connection_string("HostName=" + std::string(v) +
                                        ";DeviceId=d;SharedAccessKey=" + std::string(kDummyKey));
}

// The generation id goes into the sign request's path: printable, no path or query characters.
std::string check_generation_id(std::string_view v)
{
    if (v.size() > 128)
        return "longer than 128 characters";
    const bool ok =
        std::ranges::all_of(v,
                            [](char c)
                            {
                                return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
                                       c == '-' || c == '_' || c == '.' || c == ':';
                            });
    return ok ? std::string() : "has characters other than letters, digits and - _ . :";
}

// YYYY-MM-DD, not older than the first version with the calls used here.
std::string check_api_version(std::string_view v)
{
    const bool shape =
        v.size() == 10 && v[4] == '-' && v[7] == '-' &&
        std::ranges::all_of(std::array<std::size_t, 8>{0, 1, 2, 3, 5, 6, 8, 9}, [&](std::size_t i)
                            { return std::isdigit(static_cast<unsigned char>(v[i])) != 0; });
    if (!shape)
        return "is not a YYYY-MM-DD api version";
    if (v < kMinWorkloadApiVersion)
        return "older than " + std::string(kMinWorkloadApiVersion) + " (no sign API)";
    return {};
}

std::string check_workload_uri(std::string_view v, std::string& path)
{
    if (!v.starts_with(kUnixScheme))
        return "must be unix:///absolute/path (only Unix sockets are supported)";
    const std::string_view p = v.substr(kUnixScheme.size());
    if (p.empty() || p.front() != '/')
        return "must be unix:///absolute/path (the path is not absolute)";
    if (p.size() > kMaxSunPath)
        return "the socket path is longer than " + std::to_string(kMaxSunPath) + " bytes";
    if (p.find('\0') != std::string_view::npos)
        return "the socket path has a NUL byte";
    path = std::string(p);
    return {};
}

// Looks a variable up; a missing or empty one is reported as missing.
std::optional<std::string>
required(const EnvLookup& env, std::string_view name, std::vector<EnvProblem>& problems)
{
    auto v = env(name);
    if (!v || v->empty())
    {
        problems.push_back({std::string(name), v ? "is empty" : "is not set"});
        return std::nullopt;
    }
    return v;
}

void check(std::string_view name,
           const std::optional<std::string>& value,
           const std::string& problem,
           std::string& slot,
           std::vector<EnvProblem>& problems)
{
    if (!value)
        return;
    if (!problem.empty())
    {
        problems.push_back({std::string(name), shown(*value) + ": " + problem});
        return;
    }
    slot = *value;
}

} // namespace

bool edge_env_present(const EnvLookup& env)
{
    return std::ranges::any_of(kEdgeVariables,
                               [&](std::string_view n) { return env(n).has_value(); });
}

bool parse_edge_env(const EnvLookup& env, EdgeEnv& out, std::vector<EnvProblem>& problems)
{
    problems.clear();
    out = EdgeEnv{};

    const auto uri = required(env, "IOTEDGE_WORKLOADURI", problems);
    if (uri)
    {
        std::string path;
        const std::string p = check_workload_uri(*uri, path);
        if (p.empty())
            out.workload_socket = path;
        else
            problems.push_back({"IOTEDGE_WORKLOADURI", shown(*uri) + ": " + p});
    }

    const auto scheme = required(env, "IOTEDGE_AUTHSCHEME", problems);
    if (scheme && !iequals(*scheme, "sasToken"))
        problems.push_back({"IOTEDGE_AUTHSCHEME", shown(*scheme) +
                                                      ": not supported (only sasToken: "
                                                      "tokens signed by the workload API)"});

    const auto gen = required(env, "IOTEDGE_MODULEGENERATIONID", problems);
    check("IOTEDGE_MODULEGENERATIONID", gen, gen ? check_generation_id(*gen) : "",
          out.generation_id, problems);
    const auto hub = required(env, "IOTEDGE_IOTHUBHOSTNAME", problems);
    check("IOTEDGE_IOTHUBHOSTNAME", hub, hub ? check_host(*hub) : "", out.hub_host, problems);
    const auto gw = required(env, "IOTEDGE_GATEWAYHOSTNAME", problems);
    check("IOTEDGE_GATEWAYHOSTNAME", gw, gw ? check_host(*gw) : "", out.gateway_host, problems);
    const auto dev = required(env, "IOTEDGE_DEVICEID", problems);
    check("IOTEDGE_DEVICEID", dev, dev ? check_id(*dev) : "", out.device_id, problems);
    const auto mod = required(env, "IOTEDGE_MODULEID", problems);
    check("IOTEDGE_MODULEID", mod, mod ? check_module_id(*mod) : "", out.module_id, problems);
    const auto api = required(env, "IOTEDGE_APIVERSION", problems);
    check("IOTEDGE_APIVERSION", api, api ? check_api_version(*api) : "", out.api_version, problems);

    if (auto level = env("RuntimeLogLevel"))
        out.runtime_log_level = *level;
    return problems.empty();
}

bool edge_hub_fallback_present(const EnvLookup& env)
{
    return env("EdgeHubConnectionString").has_value();
}

bool parse_edge_hub_fallback(const EnvLookup& env,
                             EdgeHubFallback& out,
                             std::vector<EnvProblem>& problems)
{
    problems.clear();
    out = EdgeHubFallback{};
    if (auto cs = required(env, "EdgeHubConnectionString", problems))
    {
        ConnectionString parsed;
        const ConnStrResult r = parse_connection_string(*cs, parsed);
        // The value is a secret: only the parser's description (key names, never values).
        if (!r.ok())
        {
            std::string what = describe(r.error);
            if (!r.detail.empty())
                what += " (" + std::string(r.detail) + ")";
            if (r.bad_char != '\0')
                what += std::string(" ('") + r.bad_char + "')";
            problems.push_back({"EdgeHubConnectionString", what});
        }
        else if (!parsed.is_module() || parsed.gateway_host_name.empty())
            problems.push_back({"EdgeHubConnectionString",
                                "must be a module connection string with GatewayHostName"});
        else
            out.connection_string = *cs;
    }
    if (auto ca = required(env, "EdgeModuleCACertificateFile", problems))
    {
        if (ca->front() != '/')
            problems.push_back(
                {"EdgeModuleCACertificateFile", shown(*ca) + ": must be an absolute path"});
        else
            out.ca_file = *ca;
    }
    return problems.empty();
}

std::string describe(const std::vector<EnvProblem>& problems)
{
    std::string out;
    for (const auto& p : problems)
    {
        if (!out.empty())
            out += "; ";
        out += p.name + " " + p.what;
    }
    return out;
}

bool runtime_log_level(std::string_view name, int& syslog_level)
{
    struct Name
    {
        std::string_view name;
        int level;
    };
    static constexpr std::array<Name, 10> kNames{{{"debug", 7},
                                                  {"verbose", 7},
                                                  {"trace", 7},
                                                  {"info", 6},
                                                  {"information", 6},
                                                  {"warning", 4},
                                                  {"warn", 4},
                                                  {"error", 3},
                                                  {"fatal", 3},
                                                  {"critical", 3}}};
    for (const auto& n : kNames)
        if (iequals(name, n.name))
        {
            syslog_level = n.level;
            return true;
        }
    return false;
}

} // namespace ga
