// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to the alert record head (as an input's property bag) and to the record
// parser (as a stored record) and checks invariants: a head that was built parses back to the
// same properties, forwarding what was forwarded changes nothing, only the properties an alert
// may carry are kept, and every parsed record builds an alert topic that is a well-formed bag.
#include "alert_record.h"
#include "buf_writer.h"
#include "fuzz_check.h"
#include "topics.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace
{

const ga::Identity kModule{"hub.example", "edgedev", "filter"};

bool inside(std::string_view part, std::string_view whole)
{
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

// The topic of a parsed record: always fits a buffer sized like the agent's, and its bag parses.
void check_topic(const ga::AlertRecord& rec)
{
    std::vector<char> buf(ga::kMaxAlertHead + 1024 + 3 * 7 + 7 + 6);
    ga::BufWriter w(buf);
    ga::append_alert_topic(kModule, "output1", {rec.forwarded, rec.present, "ga-1-2"}, w);
    FUZZ_CHECK(w.ok());
    const std::string_view topic = w.view();
    const std::string_view prefix = "devices/edgedev/modules/filter/messages/events/";
    FUZZ_CHECK(topic.starts_with(prefix));
    const std::string_view bag = topic.substr(prefix.size());
    FUZZ_CHECK(ga::bag_is_well_formed(bag));
    FUZZ_CHECK(bag.find_first_of("/#+") == std::string_view::npos);
    std::array<char, 16> v{};
    ga::BufWriter vw(v);
    FUZZ_CHECK(ga::bag_lookup(bag, "MessageType", vw) == ga::BagLookup::Found);
}

void check_as_bag(std::string_view bag, std::string_view payload)
{
    std::vector<char> head(ga::kMaxAlertHead);
    std::size_t n = 0;
    if (ga::build_alert_head(bag, head, n) != ga::ForwardResult::Ok)
    {
        return;
    }
    FUZZ_CHECK(n >= ga::kAlertHeadFixed && n <= ga::kMaxAlertHead);
    std::string record(head.data(), n);
    record.append(payload);
    const auto rec = ga::parse_alert_record(record);
    FUZZ_CHECK(rec.has_value());
    FUZZ_CHECK(rec->payload == payload);
    FUZZ_CHECK(rec->forwarded ==
               std::string_view(head.data() + ga::kAlertHeadFixed, n - ga::kAlertHeadFixed));
    // Idempotent: the forwarded text is already in the one spelling, with nothing to drop.
    std::vector<char> again(ga::kMaxForwardedBag);
    ga::BufWriter aw(again);
    std::uint8_t present = 0;
    FUZZ_CHECK(ga::copy_forwarded_properties(rec->forwarded, aw, present) == ga::ForwardResult::Ok);
    FUZZ_CHECK(aw.view() == rec->forwarded);
    FUZZ_CHECK(present == rec->present);
    // Nothing the alert sets itself or the hub owns survives.
    std::array<char, 8> v{};
    ga::BufWriter vw(v);
    for (std::string_view key : {"MessageType", "$.on", "$.cdid", "$.cmid", "$.to", "$.uid"})
    {
        vw.clear();
        FUZZ_CHECK(ga::bag_lookup(rec->forwarded, key, vw) == ga::BagLookup::Absent);
    }
    check_topic(*rec);
}

void check_as_record(std::string_view data)
{
    const auto rec = ga::parse_alert_record(data);
    if (!rec)
    {
        return;
    }
    FUZZ_CHECK(inside(rec->forwarded, data) && inside(rec->payload, data));
    FUZZ_CHECK(rec->forwarded.size() <= ga::kMaxForwardedBag);
    check_topic(*rec);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // The first line is the bag, the rest the payload (the payload is opaque to the record).
    const std::size_t nl = in.find('\n');
    check_as_bag(in.substr(0, nl), nl == std::string_view::npos ? "" : in.substr(nl + 1));
    check_as_record(in);
    return 0;
}
