// SPDX-License-Identifier: MIT
// Direct methods and the reboot: `rebootDevice` answers 200 and reboots through [reboot] mode
// (a request file for the systemd path unit, or a simulation), and once the gateway has come
// back (a new boot id) `rebootTime` is reported. Unknown methods get 404, non-JSON payloads 400.
#pragma once

#include "conf.h"
#include "hub_connection.h"
#include "topics.h"
#include "twin_sync.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace ga
{

class Methods final : public TwinSync::Listener
{
  public:
    Methods(const Config& cfg, HubConnection& hub, TwinSync& twin)
        : cfg_(cfg), hub_(hub), twin_(twin)
    {
    }

    /// True when `topic` was a method request (handled).
    bool handle(std::string_view topic, std::string_view payload);
    /// A method request whose payload was too large to receive.
    void refuse_too_large(std::string_view topic, std::size_t bytes);
    /// Reports rebootTime once the reboot asked for has happened (call when online).
    void check_reboot_completed();
    void tick(std::int64_t now_ms);

    void on_reboot_time_reported() override;

  private:
    void on_method(const MethodRequest& m, std::string_view payload);
    void respond(int status, std::string_view rid, std::string_view body);
    void reboot_now();
    std::string effective_boot_id();
    std::string state_path(const char* name) const { return cfg_.state_dir + "/" + name; }

    const Config& cfg_;
    HubConnection& hub_;
    TwinSync& twin_;
    std::int64_t sim_reboot_at_ms_ = 0;
};

} // namespace ga
