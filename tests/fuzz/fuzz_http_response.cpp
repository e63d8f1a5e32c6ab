// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to the workload API's HTTP response parser and JSON member reader, as a
// whole reply and split at every eighth byte. Invariants: a complete reply has a status of
// 100..599 and a body within the limit; a parse never claims more than it was given; the same
// bytes give the same answer whether or not the connection ended after them (when complete).
#include "fuzz_check.h"
#include "http_response.h"
#include "workload_requests.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace
{
constexpr std::size_t kMaxBody = 4096;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    for (std::size_t cut = 0; cut <= raw.size(); cut += 8)
    {
        ga::HttpResponse partial;
        (void)ga::parse_http_response(raw.substr(0, cut), false, kMaxBody, partial);
    }
    ga::HttpResponse open;
    const ga::HttpParse p_open = ga::parse_http_response(raw, false, kMaxBody, open);
    ga::HttpResponse closed;
    const ga::HttpParse p_closed = ga::parse_http_response(raw, true, kMaxBody, closed);
    for (const auto& [p, r] : {std::pair{p_open, &open}, std::pair{p_closed, &closed}})
    {
        if (p == ga::HttpParse::Complete)
        {
            FUZZ_CHECK(r->status >= 100 && r->status <= 599);
            FUZZ_CHECK(r->body.size() <= kMaxBody);
            std::string member;
            if (ga::json_string_member(r->body, "digest", member))
                FUZZ_CHECK(member.size() <= r->body.size());
            (void)ga::count_pem_certificates(r->body);
        }
        if (p == ga::HttpParse::Malformed)
            FUZZ_CHECK(!r->error.empty());
    }
    // A reply complete without the end of the connection reads the same when it ends.
    if (p_open == ga::HttpParse::Complete)
    {
        FUZZ_CHECK(p_closed == ga::HttpParse::Complete);
        FUZZ_CHECK(open.status == closed.status && open.body == closed.body);
    }
    return 0;
}
