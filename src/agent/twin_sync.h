// SPDX-License-Identifier: MIT
// The module/device twin on the hub link: a GET after every connect, desired patches as they
// come, the threshold applied from desired TemperatureThreshold (only when its $version is newer
// than the last applied), and every change acknowledged in reported properties.
#pragma once

#include "hub_connection.h"
#include "input_filter.h"
#include "topics.h"
#include "twin.h"

#include <cstdint>
#include <string_view>

namespace ga
{

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

    TwinSync(HubConnection& hub, InputFilter& filter, double conf_threshold, Listener& listener);

    /// Connected: read the whole twin (a desired change made while offline is applied).
    void on_online();
    void on_offline();
    /// True when `topic` was a twin topic (handled).
    bool handle(std::string_view topic, std::string_view payload);
    /// A reported-properties patch; `is_reboot_report` tracks the answer for the listener.
    void send_reported(std::string_view doc, bool is_reboot_report = false);

    [[nodiscard]] const char* threshold_source() const { return threshold_source_; }
    [[nodiscard]] std::uint64_t patches() const { return patches_; }
    [[nodiscard]] std::uint64_t threshold_changes() const { return threshold_changes_; }

  private:
    void send_get();
    void on_response(const TwinResponse& r, std::string_view payload);
    void on_desired_patch(std::string_view payload);
    void apply_desired(const DesiredUpdate& u, const char* source);
    const char* next_rid(char (&buf)[24]);

    HubConnection& hub_;
    InputFilter& filter_;
    Listener& listener_;
    std::uint64_t rid_ = 0;
    char get_rid_[24] = {};
    char reboot_rid_[24] = {};
    std::int64_t desired_version_ = -1;
    const char* threshold_source_ = "default";
    std::uint64_t patches_ = 0;
    std::uint64_t threshold_changes_ = 0;
};

} // namespace ga
