// Per-identity twin document (protocol.md section 7), backed by cJSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct cJSON;

namespace hubemu
{

class Twin
{
  public:
    Twin();
    ~Twin();
    Twin(const Twin&) = delete;
    Twin& operator=(const Twin&) = delete;
    Twin(Twin&& other) noexcept;
    Twin& operator=(Twin&& other) noexcept;

    /// {"desired":{...,"$version":n},"reported":{...,"$version":m}}
    [[nodiscard]] std::string to_json() const;
    /// Merges a reported patch (null deletes). Returns the new reported version, or nullopt with
    /// *why when the body is not a JSON object.
    std::optional<int64_t> patch_reported(std::string_view body, std::string* why);
    /// Merges a desired patch; returns the push body (the patch plus "$version"), or nullopt.
    std::optional<std::string> patch_desired(std::string_view body, std::string* why);
    /// Merges `body` into desired without a version bump: the content a re-created twin starts
    /// with (hubctl twin reset --desired). False with *why when not a JSON object.
    bool seed_desired(std::string_view body, std::string* why);
    [[nodiscard]] int64_t desired_version() const { return desired_version_; }
    [[nodiscard]] int64_t reported_version() const { return reported_version_; }

    /// Restores from to_json() output. False if malformed.
    bool load(std::string_view json);

  private:
    cJSON* desired_;
    cJSON* reported_;
    int64_t desired_version_ = 1;
    int64_t reported_version_ = 1;
};

/// Recursively merges `patch` into `target` (objects merge, null deletes, others replace).
/// Members whose name starts with '$' are ignored. Exposed for tests.
void merge_patch(cJSON* target, const cJSON* patch);

} // namespace hubemu
