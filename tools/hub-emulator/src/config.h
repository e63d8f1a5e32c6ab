// Emulator configuration: identities, routes (protocol.md section 5.2).
#pragma once

#include "auth.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubemu
{

struct Route
{
    std::string text;   // the route as written
    std::string source; // e.g. /messages/modules/tempSensor/outputs/temperatureOutput
    enum class Cond
    {
        None,
        NoModule,  // WHERE NOT IS_DEFINED($connectionModuleId)
        HasModule, // WHERE IS_DEFINED($connectionModuleId)
    } cond = Cond::None;
    bool upstream = false;
    std::string target_module; // BrokeredEndpoint("/modules/{m}/inputs/{i}")
    std::string target_input;
};

/// Parses "FROM <source> [WHERE <cond>] INTO <sink>". nullopt with *why on error.
std::optional<Route> parse_route(std::string_view text, std::string* why);
/// The route source of a message: "/messages/modules/{m}/outputs/{on}", "/messages/modules/{m}"
/// or "/messages" for a device.
std::string message_source(const Identity& from, const std::optional<std::string>& output);
/// Whether a message with `source` (from a module or not) takes `route`.
bool route_matches(const Route& route, std::string_view source, bool from_module);

struct IdentityConf
{
    Identity identity;
    std::string key_b64;
};

struct Config
{
    std::string hub;
    std::string edge;                       // empty: plain hub mode (everything upstream)
    std::vector<std::string> gateway_hosts; // extra accepted SAS audience hosts (edge mode)
    int64_t clock_skew_s = 0;
    std::vector<IdentityConf> identities;
    std::vector<Route> routes;

    [[nodiscard]] const IdentityConf* find(std::string_view id) const;
};

/// Parses the line format documented in README.md. nullopt with "line N: ..." in *why.
std::optional<Config> parse_config(std::string_view text, std::string* why);

} // namespace hubemu
