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
    for (char ch : s)
    {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                                c == '~';
        if (unreserved)
        {
            append(ch);
        }
        else
        {
            const char enc[3] = {'%', kHex[c >> 4U], kHex[c & 0xFU]};
            append(std::string_view(enc, 3));
        }
    }
    return *this;
}

} // namespace ga
