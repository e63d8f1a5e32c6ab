#include "twin.h"

#include <cjson/cJSON.h>

#include <utility>

namespace hubemu
{
namespace
{
std::string print(const cJSON* j)
{
    char* s = cJSON_PrintUnformatted(j);
    std::string out = s ? s : "null";
    cJSON_free(s);
    return out;
}

cJSON* parse_object(std::string_view body, std::string* why)
{
    cJSON* j = cJSON_ParseWithLength(body.data(), body.size());
    if (!j)
    {
        *why = "body is not JSON";
        return nullptr;
    }
    if (!cJSON_IsObject(j))
    {
        cJSON_Delete(j);
        *why = "body is not a JSON object";
        return nullptr;
    }
    return j;
}

cJSON* with_version(const cJSON* section, int64_t version)
{
    cJSON* copy = cJSON_Duplicate(section, 1);
    cJSON_AddNumberToObject(copy, "$version", static_cast<double>(version));
    return copy;
}
} // namespace

void merge_patch(cJSON* target, const cJSON* patch)
{
    for (const cJSON* item = patch->child; item; item = item->next)
    {
        const char* name = item->string;
        if (!name || name[0] == '$')
            continue;
        if (cJSON_IsNull(item))
        {
            cJSON_DeleteItemFromObjectCaseSensitive(target, name);
            continue;
        }
        cJSON* existing = cJSON_GetObjectItemCaseSensitive(target, name);
        if (cJSON_IsObject(item) && existing && cJSON_IsObject(existing))
        {
            merge_patch(existing, item);
            continue;
        }
        cJSON* copy = cJSON_Duplicate(item, 1);
        if (cJSON_IsObject(copy))
        {
            // A new object member: strip nulls inside it as the hub would.
            cJSON* fresh = cJSON_CreateObject();
            merge_patch(fresh, copy);
            cJSON_Delete(copy);
            copy = fresh;
        }
        if (existing)
            cJSON_ReplaceItemInObjectCaseSensitive(target, name, copy);
        else
            cJSON_AddItemToObject(target, name, copy);
    }
}

Twin::Twin() : desired_(cJSON_CreateObject()), reported_(cJSON_CreateObject()) {}

Twin::~Twin()
{
    cJSON_Delete(desired_);
    cJSON_Delete(reported_);
}

Twin::Twin(Twin&& other) noexcept
    : desired_(std::exchange(other.desired_, cJSON_CreateObject())),
      reported_(std::exchange(other.reported_, cJSON_CreateObject())),
      desired_version_(other.desired_version_), reported_version_(other.reported_version_)
{
}

Twin& Twin::operator=(Twin&& other) noexcept
{
    std::swap(desired_, other.desired_);
    std::swap(reported_, other.reported_);
    std::swap(desired_version_, other.desired_version_);
    std::swap(reported_version_, other.reported_version_);
    return *this;
}

std::string Twin::to_json() const
{
    cJSON* root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "desired", with_version(desired_, desired_version_));
    cJSON_AddItemToObject(root, "reported", with_version(reported_, reported_version_));
    std::string out = print(root);
    cJSON_Delete(root);
    return out;
}

std::optional<int64_t> Twin::patch_reported(std::string_view body, std::string* why)
{
    cJSON* patch = parse_object(body, why);
    if (!patch)
        return std::nullopt;
    merge_patch(reported_, patch);
    cJSON_Delete(patch);
    return ++reported_version_;
}

std::optional<std::string> Twin::patch_desired(std::string_view body, std::string* why)
{
    cJSON* patch = parse_object(body, why);
    if (!patch)
        return std::nullopt;
    merge_patch(desired_, patch);
    ++desired_version_;
    cJSON_DeleteItemFromObjectCaseSensitive(patch, "$version");
    cJSON_AddNumberToObject(patch, "$version", static_cast<double>(desired_version_));
    std::string out = print(patch);
    cJSON_Delete(patch);
    return out;
}

bool Twin::seed_desired(std::string_view body, std::string* why)
{
    cJSON* patch = parse_object(body, why);
    if (!patch)
        return false;
    merge_patch(desired_, patch);
    cJSON_Delete(patch);
    return true;
}

bool Twin::load(std::string_view json)
{
    cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
    if (!root)
        return false;
    cJSON* d = cJSON_GetObjectItemCaseSensitive(root, "desired");
    cJSON* r = cJSON_GetObjectItemCaseSensitive(root, "reported");
    if (!cJSON_IsObject(d) || !cJSON_IsObject(r))
    {
        cJSON_Delete(root);
        return false;
    }
    cJSON* dv = cJSON_GetObjectItemCaseSensitive(d, "$version");
    cJSON* rv = cJSON_GetObjectItemCaseSensitive(r, "$version");
    desired_version_ = cJSON_IsNumber(dv) ? static_cast<int64_t>(dv->valuedouble) : 1;
    reported_version_ = cJSON_IsNumber(rv) ? static_cast<int64_t>(rv->valuedouble) : 1;
    cJSON_DeleteItemFromObjectCaseSensitive(d, "$version");
    cJSON_DeleteItemFromObjectCaseSensitive(r, "$version");
    cJSON_Delete(desired_);
    cJSON_Delete(reported_);
    desired_ = cJSON_DetachItemFromObjectCaseSensitive(root, "desired");
    reported_ = cJSON_DetachItemFromObjectCaseSensitive(root, "reported");
    cJSON_Delete(root);
    return true;
}

} // namespace hubemu
