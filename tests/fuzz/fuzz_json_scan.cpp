// SPDX-License-Identifier: MIT
// Fuzzes the sensor scanner: it must never crash, must agree with itself (scan vs is_valid_json)
// and must agree with cJSON wherever the comparison is sound.
//
// Why only one direction against cJSON: cJSON is laxer than RFC 8259 (no UTF-8 check, any byte
// <= 0x20 counts as whitespace, unescaped control characters allowed), so "cJSON accepts" says
// little. But everything we accept is strict JSON, which cJSON must parse, so "we accept =>
// cJSON accepts" is a sound check. Our nesting limit (32) is below cJSON's (1000), and valid JSON
// never holds a raw NUL, so the NUL-terminated copy handed to cJSON is the same text.
//
// When we return Above/NotAbove/NotNumber/PathAbsent for machine.temperature, cJSON's lookup
// must see the same thing (the same double: both round correctly). Skipped when the text holds
// "\u0000": cJSON keys are C strings, so "machine\u0000x" would look like "machine" to it.
#include "json_scan.h"

#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace
{

bool invalid_class(ga::Verdict v)
{
    return v == ga::Verdict::NotJson || v == ga::Verdict::BadUtf8 || v == ga::Verdict::TooDeep ||
           v == ga::Verdict::TooLarge;
}

void check(bool ok)
{
    if (!ok)
    {
        __builtin_trap();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    ga::FieldPath path;
    check(ga::parse_field_path("machine.temperature", path));

    const ga::ScanResult r = ga::scan_sensor_message(text, path, 25.0);
    const bool valid = ga::is_valid_json(text);
    check(valid == !invalid_class(r.verdict));

    // A one-segment path and a lower depth limit must not change validity except by depth.
    ga::FieldPath short_path;
    check(ga::parse_field_path("t", short_path));
    const ga::ScanResult r2 = ga::scan_sensor_message(text, short_path, 0.0);
    check(invalid_class(r2.verdict) == invalid_class(r.verdict));
    const ga::ScanLimits shallow{.max_bytes = 64U * 1024U, .max_depth = 4};
    if (ga::is_valid_json(text, shallow))
    {
        check(valid);
    }

    if (!valid)
    {
        return 0;
    }
    std::vector<char> copy(text.begin(), text.end());
    copy.push_back('\0');
    const char* end = nullptr;
    cJSON* root = cJSON_ParseWithLengthOpts(copy.data(), copy.size(), &end, 1);
    check(root != nullptr);

    if (text.find("\\u0000") == std::string_view::npos && r.verdict != ga::Verdict::DuplicateKey)
    {
        const cJSON* machine = cJSON_GetObjectItemCaseSensitive(root, "machine");
        const cJSON* temp = cJSON_IsObject(machine) != 0
                                ? cJSON_GetObjectItemCaseSensitive(machine, "temperature")
                                : nullptr;
        switch (r.verdict)
        {
        case ga::Verdict::Above:
        case ga::Verdict::NotAbove:
            check(cJSON_IsNumber(temp) != 0);
            check(temp->valuedouble == r.value);
            check((temp->valuedouble > 25.0) == (r.verdict == ga::Verdict::Above));
            break;
        case ga::Verdict::NotNumber:
            check(temp != nullptr && cJSON_IsNumber(temp) == 0);
            break;
        case ga::Verdict::PathAbsent:
            check(temp == nullptr);
            break;
        default:
            break;
        }
    }
    cJSON_Delete(root);
    return 0;
}
