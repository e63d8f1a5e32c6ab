// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to every topic, bag and connection-string parser and checks invariants:
// results are views into the input, parsed values rebuild into topics that parse the same, and
// encoded values decode back to what was encoded.
#include "buf_writer.h"
#include "connection_string.h"
#include "fuzz_check.h"
#include "sas.h"
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

bool inside(std::string_view part, std::string_view whole)
{
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

std::string url_encoded(std::string_view s)
{
    std::vector<char> buf(s.size() * 3 + 1);
    ga::BufWriter w(buf);
    w.append_url_encoded(s);
    FUZZ_CHECK(w.ok());
    return std::string(w.view());
}

// A bag lookup with room for any value the input could decode to.
ga::BagLookup lookup(std::string_view bag, std::string_view key, std::string& value)
{
    std::vector<char> buf(bag.size() + 1);
    ga::BufWriter w(buf);
    const ga::BagLookup r = ga::bag_lookup(bag, key, w);
    value.assign(w.view());
    return r;
}

void check_bag(std::string_view in)
{
    const bool well_formed = ga::bag_is_well_formed(in);
    // Keys to try: fixed system ones, and the first raw key of the input so matches happen.
    std::string_view first_key = in;
    if (!first_key.empty() && first_key.front() == '?')
    {
        first_key.remove_prefix(1);
    }
    first_key = first_key.substr(0, first_key.find_first_of("=&"));
    const std::array<std::string_view, 4> keys{{"$.ct", "k", first_key, in}};
    for (std::string_view key : keys)
    {
        std::string value;
        const ga::BagLookup r = lookup(in, key, value);
        if (well_formed)
        {
            FUZZ_CHECK(r != ga::BagLookup::Malformed);
        }
        if (r != ga::BagLookup::Found)
        {
            FUZZ_CHECK(value.empty());
            continue;
        }
        FUZZ_CHECK(value.size() <= in.size());
        // Re-encoding the decoded key and value gives a bag that yields the same value.
        const std::string rebuilt = url_encoded(key) + "=" + url_encoded(value);
        std::string again;
        FUZZ_CHECK(lookup(rebuilt, key, again) == ga::BagLookup::Found);
        FUZZ_CHECK(again == value);
        FUZZ_CHECK(ga::bag_is_well_formed(rebuilt));
        // One byte short of room must be reported, not truncated.
        if (!value.empty())
        {
            std::vector<char> small(value.size() - 1);
            ga::BufWriter w(small);
            FUZZ_CHECK(ga::bag_lookup(in, key, w) == ga::BagLookup::Malformed);
        }
    }
}

void check_input_topic_for(const ga::Identity& id, std::string_view in)
{
    const auto t = ga::parse_input_topic(id, in);
    if (!t)
    {
        return;
    }
    FUZZ_CHECK(inside(t->input, in));
    FUZZ_CHECK(inside(t->bag, in));
    FUZZ_CHECK(!t->input.empty());
    FUZZ_CHECK(t->input.find('/') == std::string_view::npos);
    std::string expect = "devices/" + std::string(id.device_id) + "/modules/" +
                         std::string(id.module_id) + "/inputs/" + std::string(t->input);
    if (in.size() > expect.size())
    {
        expect += "/" + std::string(t->bag);
    }
    FUZZ_CHECK(expect == in);
}

void check_input_topic(std::string_view in)
{
    check_input_topic_for(ga::Identity{"h", "d", "m"}, in);
    // An identity taken from the input itself, so the match path is reached for any ids.
    std::string_view rest = in;
    if (!rest.starts_with("devices/"))
    {
        return;
    }
    rest.remove_prefix(8);
    const std::string_view device = rest.substr(0, rest.find('/'));
    if (device.size() == rest.size())
    {
        return;
    }
    rest.remove_prefix(device.size() + 1);
    if (!rest.starts_with("modules/"))
    {
        return;
    }
    rest.remove_prefix(8);
    const std::string_view module = rest.substr(0, rest.find('/'));
    check_input_topic_for(ga::Identity{"h", device, module}, in);
}

void check_twin(std::string_view in)
{
    const auto r = ga::parse_twin_response(in);
    if (!r)
    {
        return;
    }
    FUZZ_CHECK(in.starts_with("$iothub/twin/res/"));
    FUZZ_CHECK(inside(r->rid, in));
    FUZZ_CHECK(!r->rid.empty());
    FUZZ_CHECK(r->status >= 0);
    FUZZ_CHECK(!r->version || *r->version >= 0);
    if (r->rid.ends_with('/'))
    {
        return; // a rebuilt topic would lose it to the trailing-slash rule
    }
    std::string rebuilt =
        "$iothub/twin/res/" + std::to_string(r->status) + "/?$rid=" + std::string(r->rid);
    if (r->version)
    {
        rebuilt += "&$version=" + std::to_string(*r->version);
    }
    const auto again = ga::parse_twin_response(rebuilt);
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->status == r->status);
    FUZZ_CHECK(again->rid == r->rid);
    FUZZ_CHECK(again->version == r->version);
}

void check_desired(std::string_view in)
{
    const auto r = ga::parse_desired_patch_topic(in);
    if (!r)
    {
        return;
    }
    FUZZ_CHECK(in.starts_with("$iothub/twin/PATCH/properties/desired/"));
    std::string rebuilt = "$iothub/twin/PATCH/properties/desired/";
    if (r->version)
    {
        FUZZ_CHECK(*r->version >= 0);
        rebuilt += "?$version=" + std::to_string(*r->version);
    }
    const auto again = ga::parse_desired_patch_topic(rebuilt);
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->version == r->version);
}

void check_method(std::string_view in)
{
    const auto r = ga::parse_method_request(in);
    if (!r)
    {
        return;
    }
    FUZZ_CHECK(inside(r->name, in));
    FUZZ_CHECK(inside(r->rid, in));
    FUZZ_CHECK(!r->name.empty());
    FUZZ_CHECK(r->name.find('/') == std::string_view::npos);
    FUZZ_CHECK(!r->rid.empty());
    if (r->rid.ends_with('/'))
    {
        return;
    }
    const std::string rebuilt =
        "$iothub/methods/POST/" + std::string(r->name) + "/?$rid=" + std::string(r->rid);
    const auto again = ga::parse_method_request(rebuilt);
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->name == r->name);
    FUZZ_CHECK(again->rid == r->rid);
}

void check_connection_string(std::string_view in)
{
    ga::ConnectionString cs;
    const auto r = ga::parse_connection_string(in, cs);
    FUZZ_CHECK(ga::describe(r.error) != nullptr);
    if (!r.ok())
    {
        // The detail names a key; it never carries a value.
        FUZZ_CHECK(r.detail.find('=') == std::string_view::npos);
        FUZZ_CHECK(r.detail.find(';') == std::string_view::npos);
        FUZZ_CHECK(cs.host_name.empty() && cs.shared_access_key.empty());
        return;
    }
    FUZZ_CHECK(r.detail.empty());
    for (std::string_view v :
         {cs.host_name, cs.device_id, cs.module_id, cs.gateway_host_name, cs.shared_access_key})
    {
        FUZZ_CHECK(inside(v, in));
        FUZZ_CHECK(v.find(';') == std::string_view::npos);
    }
    FUZZ_CHECK(!cs.host_name.empty() && !cs.device_id.empty() && !cs.shared_access_key.empty());
    FUZZ_CHECK(ga::sas_key_is_valid(cs.shared_access_key));

    // A parsed identity always yields a resource and a token.
    std::array<char, 2048> buf{};
    ga::BufWriter sr(buf);
    ga::append_sas_resource(cs.host_name, cs.device_id, cs.module_id, sr);
    FUZZ_CHECK(sr.ok());
    std::array<char, 4096> tok{};
    ga::BufWriter token(tok);
    FUZZ_CHECK(ga::append_sas_token(sr.view(), cs.shared_access_key, 1578941692, token) ==
               ga::SasError::None);
    FUZZ_CHECK(token.view().starts_with("SharedAccessSignature sr="));
}

void check_builders(std::string_view in)
{
    // Whatever the bytes, a property written into a telemetry topic reads back unchanged.
    const ga::Identity id{"h", "d", "m"};
    const std::array<ga::Property, 2> props{{{in, in}, {"$.ct", "application/json"}}};
    std::vector<char> buf(in.size() * 6 + 128);
    ga::BufWriter w(buf);
    ga::append_telemetry_topic(id, props, w);
    FUZZ_CHECK(w.ok());
    std::string_view topic = w.view();
    constexpr std::string_view prefix = "devices/d/modules/m/messages/events/";
    FUZZ_CHECK(topic.starts_with(prefix));
    const std::string_view bag = topic.substr(prefix.size());
    FUZZ_CHECK(ga::bag_is_well_formed(bag));
    std::string value;
    FUZZ_CHECK(lookup(bag, in, value) == ga::BagLookup::Found);
    FUZZ_CHECK(value == in);

    // The same bytes as a key must be accepted or refused, never crash the signer.
    if (ga::sas_key_is_valid(in))
    {
        std::array<char, 256> tok{};
        ga::BufWriter token(tok);
        FUZZ_CHECK(ga::append_sas_token("uri", in, 1, token) == ga::SasError::None);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    check_bag(in);
    check_input_topic(in);
    check_twin(in);
    check_desired(in);
    check_method(in);
    check_connection_string(in);
    check_builders(in);
    return 0;
}
