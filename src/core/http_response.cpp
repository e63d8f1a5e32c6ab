// SPDX-License-Identifier: MIT
#include "http_response.h"

#include "json_scan.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace ga
{
namespace
{

constexpr std::size_t kMaxHead = 8192; // status line and headers
constexpr std::string_view kCrlf = "\r\n";

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
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

void skip_ws(std::string_view s, std::size_t& pos)
{
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
        ++pos;
}

unsigned hex4(std::string_view s, std::size_t at)
{
    unsigned v = 0;
    for (std::size_t i = at; i < at + 4; ++i)
    {
        const char c = s[i];
        v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

void append_utf8(std::uint32_t cp, std::string& out)
{
    if (cp < 0x80)
        out += static_cast<char>(cp);
    else if (cp < 0x800)
    {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    else if (cp < 0x10000)
    {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    else
    {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Reads the string at s[pos] == '"' (already validated JSON) into `out`, unescaped.
bool read_string(std::string_view s, std::size_t& pos, std::string& out)
{
    out.clear();
    if (pos >= s.size() || s[pos] != '"')
        return false;
    ++pos;
    while (pos < s.size())
    {
        const char c = s[pos++];
        if (c == '"')
            return true;
        if (c != '\\')
        {
            out += c;
            continue;
        }
        const char e = s[pos++];
        switch (e)
        {
        case 'b':
            out += '\b';
            break;
        case 'f':
            out += '\f';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case 't':
            out += '\t';
            break;
        case 'u':
        {
            std::uint32_t cp = hex4(s, pos);
            pos += 4;
            // The validator accepted it, so a high surrogate is followed by a low one.
            if (cp >= 0xD800 && cp <= 0xDBFF)
            {
                const std::uint32_t lo = hex4(s, pos + 2);
                pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(cp, out);
            break;
        }
        default: // '"', '\\', '/'
            out += e;
        }
    }
    return false;
}

// Skips one (valid) value: strings with their escapes, nested brackets, or a bare literal.
void skip_value(std::string_view s, std::size_t& pos)
{
    int depth = 0;
    while (pos < s.size())
    {
        const char c = s[pos];
        if (c == '"')
        {
            ++pos;
            while (pos < s.size() && s[pos] != '"')
                pos += s[pos] == '\\' ? 2 : 1;
            ++pos;
        }
        else if (c == '{' || c == '[')
        {
            ++depth;
            ++pos;
        }
        else if (c == '}' || c == ']')
        {
            if (depth == 0)
                return;
            --depth;
            ++pos;
        }
        else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'))
            return;
        else
            ++pos;
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return;
    }
}

HttpParse malformed(HttpResponse& out, std::string why)
{
    out.error = std::move(why);
    return HttpParse::Malformed;
}

// "HTTP/1.1 200 OK" -> 200.
bool parse_status_line(std::string_view line, int& status)
{
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ')
        return false;
    const std::string_view code = line.substr(9, 3);
    if (!std::ranges::all_of(code, [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    if (line.size() > 12 && line[12] != ' ')
        return false;
    status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    return status >= 100 && status <= 599;
}

// Decodes chunked transfer coding from `in`. Complete when the last chunk and the trailers'
// blank line were seen.
HttpParse decode_chunked(std::string_view in, std::size_t max_body, HttpResponse& out)
{
    out.body.clear();
    std::size_t pos = 0;
    for (;;)
    {
        const std::size_t eol = in.find(kCrlf, pos);
        if (eol == std::string_view::npos)
            return in.size() - pos > 64 ? malformed(out, "chunk size line too long")
                                        : HttpParse::Incomplete;
        std::string_view size_line = in.substr(pos, eol - pos);
        size_line = trim(size_line.substr(0, size_line.find(';'))); // chunk extensions ignored
        std::size_t size = 0;
        const auto [end, ec] =
            std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
        if (size_line.empty() || ec != std::errc() || end != size_line.data() + size_line.size())
            return malformed(out, "bad chunk size");
        pos = eol + 2;
        if (size == 0)
        {
            // Trailers (ignored) up to a blank line.
            for (;;)
            {
                const std::size_t t = in.find(kCrlf, pos);
                if (t == std::string_view::npos)
                    return HttpParse::Incomplete;
                if (t == pos)
                    return HttpParse::Complete;
                pos = t + 2;
            }
        }
        if (size > max_body || out.body.size() + size > max_body)
            return HttpParse::TooLarge;
        if (in.size() - pos < size + 2)
            return HttpParse::Incomplete;
        if (in.substr(pos + size, 2) != kCrlf)
            return malformed(out, "chunk not followed by CRLF");
        out.body.append(in.substr(pos, size));
        pos += size + 2;
    }
}

} // namespace

HttpParse
parse_http_response(std::string_view raw, bool eof, std::size_t max_body, HttpResponse& out)
{
    out = HttpResponse{};
    const std::size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string_view::npos)
    {
        if (raw.size() > kMaxHead)
            return malformed(out, "headers longer than 8 KiB");
        if (eof)
            return malformed(out, raw.empty() ? "connection closed without a reply"
                                              : "connection closed inside the headers");
        return HttpParse::Incomplete;
    }
    if (head_end > kMaxHead)
        return malformed(out, "headers longer than 8 KiB");
    const std::string_view head = raw.substr(0, head_end);
    const std::string_view rest = raw.substr(head_end + 4);

    std::size_t eol = head.find(kCrlf);
    const std::string_view status_line = head.substr(0, eol);
    if (!parse_status_line(status_line, out.status))
        return malformed(out, "bad status line");

    bool chunked = false;
    bool has_length = false;
    std::size_t length = 0;
    while (eol != std::string_view::npos)
    {
        const std::size_t start = eol + 2;
        eol = head.find(kCrlf, start);
        const std::string_view line = head.substr(
            start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return malformed(out, "bad header line");
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Content-Length"))
        {
            std::size_t n = 0;
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (value.empty() || ec != std::errc() || end != value.data() + value.size())
                return ec == std::errc::result_out_of_range ? HttpParse::TooLarge
                                                            : malformed(out, "bad Content-Length");
            if (has_length && n != length)
                return malformed(out, "conflicting Content-Length headers");
            has_length = true;
            length = n;
        }
        else if (iequals(name, "Transfer-Encoding"))
        {
            const std::size_t comma = value.rfind(',');
            const std::string_view last =
                trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
            if (!iequals(last, "chunked"))
                return malformed(out, "unsupported Transfer-Encoding");
            chunked = true;
        }
    }

    // 1xx, 204 and 304 have no body.
    if (out.status < 200 || out.status == 204 || out.status == 304)
        return HttpParse::Complete;
    if (chunked)
    {
        const HttpParse r = decode_chunked(rest, max_body, out);
        if (r == HttpParse::Incomplete && eof)
            return malformed(out, "connection closed inside a chunked body");
        return r;
    }
    if (has_length)
    {
        if (length > max_body)
            return HttpParse::TooLarge;
        if (rest.size() < length)
            return eof ? malformed(out, "connection closed before the whole body")
                       : HttpParse::Incomplete;
        out.body = std::string(rest.substr(0, length));
        return HttpParse::Complete;
    }
    // Neither: the body runs to the end of the connection.
    if (rest.size() > max_body)
        return HttpParse::TooLarge;
    if (!eof)
        return HttpParse::Incomplete;
    out.body = std::string(rest);
    return HttpParse::Complete;
}

bool json_string_member(std::string_view body, const char* name, std::string& out)
{
    // Not cJSON: the twin parser installs process-wide cJSON hooks that allocate from its arena,
    // which only a twin parse resets; parsing here while offline (each connect attempt) would
    // fill it, and a full arena would then keep the link from ever coming back. The body is
    // validated by the sensor scanner's RFC 8259 check, so the walk below can be simple.
    ScanLimits limits;
    limits.max_bytes = std::max<std::size_t>(body.size(), 1);
    if (!is_valid_json(body, limits))
        return false;
    std::size_t pos = 0;
    skip_ws(body, pos);
    if (pos >= body.size() || body[pos] != '{')
        return false;
    ++pos;
    const std::string_view want(name);
    std::string key;
    for (;;)
    {
        skip_ws(body, pos);
        if (body[pos] == '}')
            return false;
        if (!read_string(body, pos, key))
            return false;
        skip_ws(body, pos);
        ++pos; // ':'
        skip_ws(body, pos);
        if (key == want)
            return body[pos] == '"' && read_string(body, pos, out);
        skip_value(body, pos);
        skip_ws(body, pos);
        if (body[pos] == '}')
            return false;
        ++pos; // ','
    }
}

} // namespace ga
