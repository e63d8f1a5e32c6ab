// SPDX-License-Identifier: MIT
#include "store_id.h"

#include "port.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <string_view>

namespace ga
{
namespace
{
constexpr std::size_t kHexDigits = 16;

bool parse_id(std::string_view text, std::uint64_t& id)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    if (text.size() != kHexDigits)
        return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
    return ec == std::errc{} && end == text.data() + text.size();
}

std::uint64_t fresh_id()
{
    // 0 is kept out so that a zeroed id can never pass for a real one in a log or a dump.
    std::uint64_t id = 0;
    while (id == 0)
        id = port::random_u64();
    return id;
}
} // namespace

std::uint64_t load_store_id(const std::string& dir)
{
    if (dir.empty())
        return fresh_id();
    const std::string path = dir + "/store-id";
    std::string text;
    std::string err;
    const port::ReadStatus st = port::read_file(path, text, 64, err);
    std::uint64_t id = 0;
    if (st == port::ReadStatus::Ok && parse_id(text, id))
        return id;
    if (st == port::ReadStatus::Error)
    {
        port::log(port::Level::Err,
                  "store: %s; alert message ids use a per-process store id, so re-sends after a "
                  "restart carry new ids",
                  err.c_str());
        return fresh_id();
    }
    if (st == port::ReadStatus::Ok)
        port::log(port::Level::Warning, "store: %s is not a store id; a new one is made",
                  path.c_str());
    id = fresh_id();
    // Zero-padded so the file always has the same shape.
    char line[kHexDigits + 2];
    (void)std::snprintf(line, sizeof line, "%016llx\n", static_cast<unsigned long long>(id));
    if (!port::write_file_atomic(path, std::string_view(line, kHexDigits + 1), err))
        port::log(port::Level::Err,
                  "store: %s; alert message ids use a per-process store id, so re-sends after a "
                  "restart carry new ids",
                  err.c_str());
    return id;
}

} // namespace ga
