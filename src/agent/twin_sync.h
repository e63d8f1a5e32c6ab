// SPDX-License-Identifier: MIT
// The module/device twin on the hub link: a GET after every connect (retried with backoff until
// it is answered 200), desired patches as they come, the threshold applied from desired
// TemperatureThreshold, and every change acknowledged in reported properties. The applied desired
// state is kept in `<state dir>/desired-threshold`, so a restart filters with it from the first
// input, before the hub is reachable.
//
// Precedence: a GET answer is authoritative (its $version and value replace the stored ones even
// when lower: the twin may have been deleted and re-created); a patch applies only when its
// $version is newer than the last applied one.
#pragma once

#include "conf.h"
#include "desired_state.h"
#include "hub_connection.h"
#include "input_filter.h"
#include "topics.h"
#include "twin.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace ga
{

enum class StoredLoad
{
    Missing, // no file: conf or default apply
    Loaded,
    Ignored, // unreadable or corrupt: `why` says so; conf or default apply
};
/// Reads `<state_dir>/desired-threshold` (read only; also used by --check-config).
[[nodiscard]] StoredLoad
load_stored_desired(const std::string& state_dir, StoredDesired& out, std::string& why);

class TwinSync
{
  public:
    class Listener
    {
      public:
        /// The hub accepted the rebootTime report.
        virtual void on_reboot_time_reported() = 0;

      protected:
        ~Listener() = default;
    };

    /// Loads the stored desired state into `filter` at once (before any input is decided).
    TwinSync(HubConnection& hub, InputFilter& filter, const Config& cfg, Listener& listener);

    /// Connected: read the whole twin (a desired change made while offline is applied).
    void on_online();
    void on_offline();
    /// GET timeouts and retries.
    void tick(std::int64_t now_ms);
    /// True when `topic` was a twin topic (handled).
    bool handle(std::string_view topic, std::string_view payload);
    /// A reported-properties patch; `is_reboot_report` tracks the answer for the listener.
    void send_reported(std::string_view doc, bool is_reboot_report = false);

    /// "default", "conf", "twin ($version N, stored)" or "twin ($version N)".
    [[nodiscard]] const char* threshold_source() const { return source_; }
    [[nodiscard]] std::uint64_t patches() const { return patches_; }
    [[nodiscard]] std::uint64_t patches_applied() const { return patches_applied_; }
    [[nodiscard]] std::uint64_t threshold_changes() const { return threshold_changes_; }

  private:
    void send_get(std::int64_t now_ms);
    void retry_get(std::int64_t now_ms, int status);
    void on_response(const TwinResponse& r, std::string_view payload);
    void on_desired_patch(std::string_view payload);
    /// True when the update was taken (newer, or a GET); false when ignored or rejected.
    bool apply_desired(const DesiredUpdate& u, DesiredOrigin origin);
    void persist();
    const char* next_rid(char (&buf)[24]);

    HubConnection& hub_;
    InputFilter& filter_;
    Listener& listener_;
    std::string state_path_;
    std::uint64_t rid_ = 0;
    char get_rid_[24] = {};
    char reboot_rid_[24] = {};
    // What was applied last (and is stored); version -1 until a twin was read or loaded.
    StoredDesired applied_{};
    bool have_version_ = false;
    char source_[48] = "default";
    std::uint64_t patches_ = 0;
    std::uint64_t patches_applied_ = 0;
    std::uint64_t threshold_changes_ = 0;
    // GET retry: the GET in flight was sent at get_sent_ms_; a retry goes at next_get_ms_.
    bool get_outstanding_ = false;
    bool retry_pending_ = false;
    std::int64_t get_sent_ms_ = 0;
    std::int64_t next_get_ms_ = 0;
    int get_attempt_ = 0;
};

} // namespace ga
