// SPDX-License-Identifier: MIT
#include "buf_writer.h"

#include <charconv>

namespace ga
{

BufWriter& BufWriter::append(std::string_view s)
{
    if (!ok_ || s.size() > buf_.size() - len_)
    {
        ok_ = false;
        return *this;
    }
    s.copy(buf_.data() + len_, s.size());
    len_ += s.size();
    return *this;
}

BufWriter& BufWriter::append(char c)
{
    return append(std::string_view(&c, 1));
}

BufWriter& BufWriter::append_uint(std::uint64_t v)
{
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    return append(std::string_view(tmp, static_cast<std::size_t>(end - tmp)));
}

BufWriter& BufWriter::append_int(std::int64_t v)
{
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    return append(std::string_view(tmp, static_cast<std::size_t>(end - tmp)));
}

BufWriter& BufWriter::append_url_encoded(std::string_view s)
{
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::size_t i = 0;
    while (i < s.size())
    {
        // Unreserved runs are copied whole: property bags are mostly letters and digits.
        std::size_t j = i;
        while (j < s.size() && url_unreserved(s[j]))
            ++j;
        append(s.substr(i, j - i));
        if (j == s.size())
            break;
        const auto c = static_cast<unsigned char>(s[j]);
        const char enc[3] = {'%', kHex[c >> 4U], kHex[c & 0xFU]};
        append(std::string_view(enc, 3));
        i = j + 1;
    }
    return *this;
}

} // namespace ga
