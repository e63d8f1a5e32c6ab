// SPDX-License-Identifier: MIT
// Feeds arbitrary bytes to both twin parsers (cJSON inside the fixed arena). Invariants: the
// result is consistent with the error; a valid threshold builds an ack that parses back to the
// same value; builders never produce invalid JSON, whatever the description bytes.
#include "fuzz_check.h"
#include "twin.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace
{

// A tiny twin parse resets the arena, so the direct cJSON parses below always have room.
void reset_arena()
{
    ga::DesiredUpdate scratch;
    FUZZ_CHECK(ga::parse_desired_patch(R"({"$version":0})", scratch) == ga::TwinError::None);
}

// Parses `json` with cJSON (allocating in the twin arena, which is fine between twin parses)
// and returns the TemperatureThreshold object's "value".
bool ack_value(std::string_view json, double& value)
{
    cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
    if (root == nullptr)
    {
        return false;
    }
    const cJSON* t = cJSON_GetObjectItemCaseSensitive(root, "TemperatureThreshold");
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(t, "value");
    const cJSON* ad = cJSON_GetObjectItemCaseSensitive(t, "ad");
    const bool ok = cJSON_IsNumber(v) && cJSON_IsString(ad);
    value = ok ? v->valuedouble : 0.0;
    cJSON_Delete(root);
    return ok;
}

void check_update(ga::TwinError e, const ga::DesiredUpdate& u, std::string_view description)
{
    if (e != ga::TwinError::None)
    {
        FUZZ_CHECK(u.threshold == ga::ThresholdState::Absent);
        return;
    }
    FUZZ_CHECK(u.property_count >= 0);
    if (u.threshold == ga::ThresholdState::Invalid)
    {
        FUZZ_CHECK(!u.invalid_reason.empty());
        return;
    }
    if (u.threshold != ga::ThresholdState::Valid)
    {
        return;
    }
    FUZZ_CHECK(std::isfinite(u.value));
    char buf[8192];
    ga::BufWriter w(buf);
    FUZZ_CHECK(ga::build_threshold_ack(u.value, 200, u.version, description, w));
    double back = 0.0;
    reset_arena();
    FUZZ_CHECK(ack_value(w.view(), back));
    FUZZ_CHECK(back == u.value);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    // Arbitrary bytes (bounded) as the ack description exercise the string escaper.
    const std::string_view description = body.substr(0, 2000);
    ga::DesiredUpdate u;
    check_update(ga::parse_twin_document(body, u), u, description);
    check_update(ga::parse_desired_patch(body, u), u, description);

    char buf[4096];
    ga::BufWriter w(buf);
    if (ga::build_reboot_time_report(description.substr(0, 500), w))
    {
        reset_arena();
        cJSON* root = cJSON_ParseWithLength(w.view().data(), w.view().size());
        FUZZ_CHECK(root != nullptr);
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "rebootTime")));
        cJSON_Delete(root);
    }
    return 0;
}
