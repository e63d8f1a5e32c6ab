// SPDX-License-Identifier: MIT
// Direct methods and the reboot: `rebootDevice` records the reboot (the reboot-pending marker,
// then the request file for the systemd path unit, or the simulated boot) and only then answers
// 200; if any of that cannot be written it answers 500 and leaves nothing that would later claim
// a reboot. Once the gateway has come back (a new boot id) `rebootTime` is reported. Unknown
// methods get 404 whatever their payload, non-JSON payloads 400. A request whose $rid cannot be
// echoed safely into a response topic is not answered.
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
    Methods(const Config& cfg, HubConnection& hub, TwinSync& twin);

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
    /// False (and a rate-limited log line) when the rid must not go into a response topic.
    bool rid_is_answerable(const MethodRequest& m);
    void respond(int status, std::string_view rid, std::string_view body);
    void accept_reboot(std::string_view rid);
    /// Request-file mode: the request file. Simulate mode: the simulated boot record.
    bool write_reboot_record(std::string& err);
    bool write_simulated_boot(std::string& err);
    void simulated_reboot_due();
    std::string effective_boot_id();
    std::string state_path(const char* name) const { return cfg_.state_dir + "/" + name; }

    const Config& cfg_;
    HubConnection& hub_;
    TwinSync& twin_;
    std::int64_t sim_reboot_at_ms_ = 0;
    bool sim_record_written_ = false; // the simulated boot is recorded; only the reconnect is due
    std::uint64_t sim_boots_ = 0;
    std::uint64_t bad_rids_unlogged_ = 0;
    std::int64_t bad_rid_logged_ms_ = 0;
    bool bad_rid_logged_ = false;
};

} // namespace ga
