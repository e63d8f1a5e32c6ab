// SPDX-License-Identifier: MIT
// "host:port" as the conf writes it, split the same way for the conf check and at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ga
{

/// Splits at the last ':' ("[::1]:1883" keeps its brackets in `host`); the port must be
/// min_port..65535. False for an empty host, a missing or bad port.
[[nodiscard]] bool split_host_port(std::string_view text,
                                   std::uint32_t min_port,
                                   std::string& host,
                                   std::uint16_t& port);
/// True when `host` is a dotted IPv4 address (what the UDP source binds).
[[nodiscard]] bool is_ipv4_literal(std::string_view host);

} // namespace ga
