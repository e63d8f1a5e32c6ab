// SPDX-License-Identifier: MIT
// A bounded HTTP/1.1 response parser for the IoT Edge workload API client: status line, headers,
// a body delimited by Content-Length, chunked transfer coding or the end of the connection (the
// client always sends Connection: close). Pure: bytes in, status and body out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ga
{

enum class HttpParse
{
    Incomplete, // more bytes (or the end of the connection) are needed
    Complete,
    Malformed, // `error` says what
    TooLarge,  // the body would exceed the limit
};

struct HttpResponse
{
    int status = 0;
    std::string body; // decoded (chunks joined)
    std::string error;
};

/// Parses the bytes received so far. `eof`: the peer closed the connection (a body without a
/// length ends there; anything else unfinished is then Malformed). `max_body` bounds the body.
[[nodiscard]] HttpParse
parse_http_response(std::string_view raw, bool eof, std::size_t max_body, HttpResponse& out);

/// The string member `name` of a JSON object body; false when the body is not a JSON object or
/// the member is missing or not a string.
[[nodiscard]] bool json_string_member(std::string_view body, const char* name, std::string& out);

} // namespace ga
