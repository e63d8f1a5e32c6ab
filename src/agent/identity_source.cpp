// SPDX-License-Identifier: MIT
#include "identity_source.h"

#include "port.h"

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
} // namespace

bool load_identity(const std::string& conf_path, AgentOptions& opt, std::string& err)
{
    if (!read_connection_string(conf_path, opt, err))
        return false;
    const ConnStrResult cs = parse_connection_string(opt.connection_string, opt.identity);
    if (!cs.ok())
    {
        std::string detail(cs.detail);
        if (cs.bad_char != '\0')
            detail += std::string(": '") + cs.bad_char + "'";
        err = conf_path + ": [hub] connection string: " + describe(cs.error) +
              (detail.empty() ? "" : " (" + detail + ")");
        return false;
    }
    if (opt.config.source == SourceType::ModuleInput && !opt.identity.is_module())
    {
        err = conf_path + ": [source] type = module-input needs a module identity "
                          "(ModuleId in the connection string)";
        return false;
    }
    return true;
}

} // namespace ga
