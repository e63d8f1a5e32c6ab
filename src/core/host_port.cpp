// SPDX-License-Identifier: MIT
#include "host_port.h"

#include <arpa/inet.h>
#include <charconv>

namespace ga
{

bool split_host_port(std::string_view text,
                     std::uint32_t min_port,
                     std::string& host,
                     std::uint16_t& port)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    const std::string_view digits = text.substr(colon + 1);
    std::uint32_t value = 0;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (digits.empty() || ec != std::errc{} || ptr != end || value < min_port || value > 65535)
        return false;
    host = std::string(text.substr(0, colon));
    port = static_cast<std::uint16_t>(value);
    return true;
}

bool is_ipv4_literal(std::string_view host)
{
    in_addr addr{};
    return ::inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
}

} // namespace ga
