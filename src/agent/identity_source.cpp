// SPDX-License-Identifier: MIT
#include "identity_source.h"

#include "port.h"
#include "workload_api.h"

namespace ga
{

namespace
{
bool read_connection_string(const std::string& conf_path, AgentOptions& opt, std::string& err)
{
    const Config& cfg = opt.config;
    if (cfg.connection_string_file.empty())
    {
        opt.connection_string = cfg.connection_string;
        return true;
    }
    const std::string where = conf_path + ": [hub] connection_string_file: ";
    if (!port::is_private_file(cfg.connection_string_file, err))
    {
        err = where + err;
        return false;
    }
    if (port::read_file(cfg.connection_string_file, opt.connection_string, 4096, err) !=
        port::ReadStatus::Ok)
    {
        err = where + (err.empty() ? cfg.connection_string_file + ": no such file" : err);
        return false;
    }
    std::string& s = opt.connection_string;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return true;
}

bool parse_identity(const std::string& where, AgentOptions& opt, std::string& err)
{
    const ConnStrResult cs = parse_connection_string(opt.connection_string, opt.identity);
    if (!cs.ok())
    {
        std::string detail(cs.detail);
        if (cs.bad_char != '\0')
            detail += std::string(": '") + cs.bad_char + "'";
        err = where + ": " + describe(cs.error) + (detail.empty() ? "" : " (" + detail + ")");
        return false;
    }
    return true;
}

bool load_from_conf(const std::string& conf_path, AgentOptions& opt, std::string& err)
{
    const Config& cfg = opt.config;
    if (cfg.connection_string.empty() && cfg.connection_string_file.empty())
    {
        err = conf_path + ": [hub] connection_string or connection_string_file is required "
                          "(neither is set)";
        return false;
    }
    if (!read_connection_string(conf_path, opt, err))
        return false;
    return parse_identity(conf_path + ": [hub] connection string", opt, err);
}

// IOTEDGE_*: the identity's views point into opt.edge; no key: the workload API signs.
bool load_from_edge_env(const EnvLookup& env, AgentOptions& opt, std::string& err)
{
    std::vector<EnvProblem> problems;
    if (!parse_edge_env(env, opt.edge, problems))
    {
        err = "IoT Edge module environment: " + describe(problems);
        return false;
    }
    const EdgeEnv& e = opt.edge;
    opt.identity = ConnectionString{};
    opt.identity.host_name = e.hub_host;
    opt.identity.device_id = e.device_id;
    opt.identity.module_id = e.module_id;
    opt.identity.gateway_host_name = e.gateway_host;
    opt.workload.socket_path = e.workload_socket;
    opt.workload.module_id = e.module_id;
    opt.workload.generation_id = e.generation_id;
    opt.workload.api_version = e.api_version;
    opt.workload.trust_bundle_file = opt.config.state_dir + "/" + kTrustBundleFile;
    opt.identity_origin = "IoT Edge environment (IOTEDGE_*)";
    int level = 0;
    if (!e.runtime_log_level.empty())
    {
        if (runtime_log_level(e.runtime_log_level, level))
            port::set_log_level(static_cast<port::Level>(level));
        else
            port::log(port::Level::Warning, "RuntimeLogLevel '%.32s' not known; ignored",
                      e.runtime_log_level.c_str());
    }
    return true;
}

bool load_from_edge_hub_fallback(const EnvLookup& env, AgentOptions& opt, std::string& err)
{
    std::vector<EnvProblem> problems;
    EdgeHubFallback fb;
    if (!parse_edge_hub_fallback(env, fb, problems))
    {
        err = "IoT Edge module environment: " + describe(problems);
        return false;
    }
    std::string ca;
    std::string why;
    if (port::read_file(fb.ca_file, ca, std::size_t{1} << 20U, why) != port::ReadStatus::Ok)
    {
        err = "IoT Edge module environment: EdgeModuleCACertificateFile " + fb.ca_file + ": " +
              (why.empty() ? "no such file" : why);
        return false;
    }
    opt.connection_string = std::move(fb.connection_string);
    opt.ca_file = fb.ca_file;
    opt.identity_origin = "IoT Edge environment (EdgeHubConnectionString)";
    return parse_identity("EdgeHubConnectionString", opt, err);
}

bool load_from_environment(const std::string& conf_path,
                           const EnvLookup& env,
                           AgentOptions& opt,
                           std::string& err)
{
    // IOTEDGE_* first (what the runtime sets); the connection string is the debugging fallback.
    if (edge_env_present(env))
        return load_from_edge_env(env, opt, err);
    if (edge_hub_fallback_present(env))
        return load_from_edge_hub_fallback(env, opt, err);
    err = conf_path + ": no identity: set [hub] connection_string or connection_string_file, or "
                      "run as an IoT Edge module (IOTEDGE_* variables or EdgeHubConnectionString)";
    return false;
}
} // namespace

bool load_identity(const std::string& conf_path,
                   AgentOptions& opt,
                   const EnvLookup& env,
                   std::string& err)
{
    const Config& cfg = opt.config;
    const bool conf_has_identity =
        !cfg.connection_string.empty() || !cfg.connection_string_file.empty();
    bool ok = false;
    switch (cfg.identity)
    {
    case IdentitySource::ConnectionString:
        ok = load_from_conf(conf_path, opt, err);
        break;
    case IdentitySource::EdgeEnvironment:
        // (a connection string with it is refused by the conf parser)
        ok = load_from_environment(conf_path, env, opt, err);
        break;
    case IdentitySource::Auto:
        ok = conf_has_identity ? load_from_conf(conf_path, opt, err)
                               : load_from_environment(conf_path, env, opt, err);
        break;
    }
    if (!ok)
        return false;
    if (opt.config.source == SourceType::ModuleInput && !opt.identity.is_module())
    {
        err = conf_path + ": [source] type = module-input needs a module identity "
                          "(ModuleId in the connection string)";
        return false;
    }
    return true;
}

bool identity_named(const Config& cfg, const EnvLookup& env)
{
    const bool in_conf = !cfg.connection_string.empty() || !cfg.connection_string_file.empty();
    const bool in_env = edge_env_present(env) || edge_hub_fallback_present(env);
    switch (cfg.identity)
    {
    case IdentitySource::ConnectionString:
        return in_conf;
    case IdentitySource::EdgeEnvironment:
        return in_env;
    case IdentitySource::Auto:
        break;
    }
    return in_conf || in_env;
}

bool load_identity(const std::string& conf_path, AgentOptions& opt, std::string& err)
{
    return load_identity(conf_path, opt, port::environment_variable, err);
}

} // namespace ga
