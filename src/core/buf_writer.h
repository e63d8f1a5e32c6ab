// SPDX-License-Identifier: MIT
// A bounded writer over a caller-owned buffer: the one way pure-core code builds strings.
// It never allocates; once something does not fit, ok() stays false and the text is unusable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ga
{

/// RFC 3986 unreserved: the characters a URL-encoded text carries as they are.
[[nodiscard]] constexpr bool url_unreserved(char ch)
{
    const auto c = static_cast<unsigned char>(ch);
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

class BufWriter
{
  public:
    explicit BufWriter(std::span<char> buf) : buf_(buf) {}

    BufWriter& append(std::string_view s);
    BufWriter& append(char c);
    BufWriter& append_uint(std::uint64_t v);
    BufWriter& append_int(std::int64_t v);
    /// Percent-encodes everything except RFC 3986 unreserved characters, with uppercase hex.
    BufWriter& append_url_encoded(std::string_view s);

    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] std::string_view view() const { return {buf_.data(), len_}; }
    [[nodiscard]] std::size_t size() const { return len_; }
    void clear()
    {
        len_ = 0;
        ok_ = true;
    }

  private:
    std::span<char> buf_;
    std::size_t len_ = 0;
    bool ok_ = true;
};

} // namespace ga
