// SPDX-License-Identifier: MIT
#include "methods.h"

#include "buf_writer.h"
#include "json_scan.h"
#include "port.h"
#include "reboot_unit.h"
#include "twin.h"

#include <algorithm>
#include <charconv>

namespace ga
{

namespace
{
constexpr std::string_view kRebootMethod = "rebootDevice";
// Bad rids come from the broker, possibly in a flood: one line per minute says how many.
constexpr std::int64_t kBadRidLogIntervalMs = 60'000;
// The hub's limit for a method payload (protocol.md section 8). The link receives up to 160 KiB,
// so what lies between is refused here with the same 413 as what the link could not take.
constexpr std::size_t kMaxMethodPayloadBytes = std::size_t{128} * 1024U;
// The payload is only validated, never read: allow it all the hub allows, and the deepest
// nesting the scanner can hold (the sensor filter's 64 KiB / 32 levels are for readings).
constexpr ScanLimits kMethodPayloadLimits{.max_bytes = kMaxMethodPayloadBytes,
                                          .max_depth = kMaxScanDepth};
} // namespace

Methods::Methods(const Config& cfg, HubConnection& hub, TwinSync& twin)
    : cfg_(cfg), hub_(hub), twin_(twin)
{
    if (cfg_.reboot_mode != RebootMode::RequestFile)
        return;
    std::string detail;
    switch (query_reboot_unit(detail))
    {
    case RebootUnit::Active:
        break;
    case RebootUnit::NotManaged:
        port::log(port::Level::Notice,
                  "reboot: %s; rebootDevice writes %s and relies on something watching it",
                  detail.c_str(), state_path("reboot-request").c_str());
        break;
    case RebootUnit::Inactive:
    case RebootUnit::Unknown:
        port::log(port::Level::Warning,
                  "reboot: %s is not active (%s); rebootDevice answers 503 until it is "
                  "(systemctl enable --now %s)",
                  kRebootPathUnit, detail.c_str(), kRebootPathUnit);
        break;
    }
}

bool Methods::handle(std::string_view topic, std::string_view payload)
{
    auto m = parse_method_request(topic);
    if (!m)
        return false;
    on_method(*m, payload);
    return true;
}

void Methods::refuse_too_large(std::string_view topic, std::size_t bytes)
{
    if (auto m = parse_method_request(topic))
    {
        if (!rid_is_answerable(*m))
            return;
        port::log(port::Level::Warning, "methods: payload of %zu bytes is too large: 413", bytes);
        respond(413, m->rid, R"({"error":"payload too large"})");
    }
}

void Methods::tick(std::int64_t now_ms)
{
    if (sim_reboot_at_ms_ != 0 && now_ms >= sim_reboot_at_ms_)
    {
        sim_reboot_at_ms_ = 0;
        simulated_reboot_due();
    }
}

void Methods::on_reboot_time_reported()
{
    port::remove_file(state_path("reboot-pending"));
    port::log(port::Level::Info, "reboot: rebootTime reported");
}

bool Methods::rid_is_answerable(const MethodRequest& m)
{
    if (is_safe_method_rid(m.rid))
        return true;
    // Echoed as is, such a rid would put the response on another topic (or a wildcard the broker
    // refuses); the caller times out instead, which is what an unanswered request means.
    ++bad_rids_unlogged_;
    const std::int64_t now = port::monotonic_ms();
    if (bad_rid_logged_ && now - bad_rid_logged_ms_ < kBadRidLogIntervalMs)
        return false;
    port::log(port::Level::Warning,
              "methods: %llu request(s) not answered: $rid (last: %zu bytes, method '%.*s') is not "
              "1..%zu characters of [0-9A-Za-z-_.]",
              static_cast<unsigned long long>(bad_rids_unlogged_), m.rid.size(),
              static_cast<int>(std::min<std::size_t>(m.name.size(), 64)), m.name.data(),
              kMaxMethodRidBytes);
    bad_rids_unlogged_ = 0;
    bad_rid_logged_ = true;
    bad_rid_logged_ms_ = now;
    return false;
}

void Methods::respond(int status, std::string_view rid, std::string_view body)
{
    char topic[160];
    BufWriter w(topic);
    append_method_response_topic(status, rid, w);
    w.append('\0');
    if (!w.ok() || !hub_.publish0(topic, body))
        port::log(port::Level::Warning, "methods: response could not be sent");
}

void Methods::on_method(const MethodRequest& m, std::string_view payload)
{
    if (!rid_is_answerable(m))
        return;
    // The name first: a method we do not have is 404 whatever its payload.
    if (m.name != kRebootMethod)
    {
        port::log(port::Level::Warning, "methods: unknown method '%.*s': 404",
                  static_cast<int>(std::min<std::size_t>(m.name.size(), 64)), m.name.data());
        char body[256];
        BufWriter b(body);
        b.append(R"({"error":"unknown method","method":")");
        for (char c : m.name.substr(0, 64))
            b.append(c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ? '_' : c);
        b.append("\"}");
        respond(404, m.rid, b.view());
        return;
    }
    if (payload.size() > kMaxMethodPayloadBytes)
    {
        port::log(port::Level::Warning, "methods: payload of %zu bytes is too large: 413",
                  payload.size());
        respond(413, m.rid, R"({"error":"payload too large"})");
        return;
    }
    if (!payload.empty() && !is_valid_json(payload, kMethodPayloadLimits))
    {
        port::log(port::Level::Warning, "methods: %.*s: payload is not JSON: 400",
                  static_cast<int>(m.name.size()), m.name.data());
        respond(400, m.rid, R"({"error":"payload is not JSON"})");
        return;
    }
    if (cfg_.reboot_mode == RebootMode::Disabled)
    {
        port::log(port::Level::Warning, "methods: rebootDevice refused: [reboot] mode = disabled");
        respond(403, m.rid, R"({"error":"reboot disabled on this gateway"})");
        return;
    }
    if (cfg_.reboot_mode == RebootMode::RequestFile)
    {
        std::string detail;
        const RebootUnit unit = query_reboot_unit(detail);
        if (unit == RebootUnit::Inactive || unit == RebootUnit::Unknown)
        {
            port::log(port::Level::Err, "methods: rebootDevice refused: %s is not active (%s): 503",
                      kRebootPathUnit, detail.c_str());
            respond(503, m.rid,
                    R"({"error":"the reboot path unit is not active on this gateway"})");
            return;
        }
    }
    accept_reboot(m.rid);
}

void Methods::accept_reboot(std::string_view rid)
{
    // Everything the reboot depends on is on disk before the 200: the pending marker (which
    // later turns into rebootTime) and the request itself. A 200 whose request was never written
    // would be a reboot claimed and never done.
    const std::string pending_path = state_path("reboot-pending");
    std::string previous;
    std::string err;
    const bool had_pending =
        port::read_file(pending_path, previous, 256, err) == port::ReadStatus::Ok;
    if (!port::write_file_atomic(pending_path, effective_boot_id(), err))
    {
        port::log(port::Level::Err, "reboot: not started: %s", err.c_str());
        respond(500, rid, R"({"error":"cannot record the reboot in the state dir"})");
        return;
    }
    if (!write_reboot_record(err))
    {
        port::log(port::Level::Err, "reboot: not started: %s", err.c_str());
        // Take back what this call wrote, so no rebootTime is reported for it; a marker left by
        // an earlier accepted reboot stays as it was.
        std::string ignored;
        if (!had_pending || !port::write_file_atomic(pending_path, previous, ignored))
            port::remove_file(pending_path);
        respond(500, rid, R"({"error":"cannot write the reboot request in the state dir"})");
        return;
    }
    char body[160];
    BufWriter b(body);
    b.append(R"({"result":"reboot scheduled","mode":")")
        .append(to_string(cfg_.reboot_mode))
        .append("\"}");
    respond(200, rid, b.view());
    port::log(port::Level::Notice, "methods: rebootDevice accepted (mode %s)",
              to_string(cfg_.reboot_mode));
    // The link goes down on the next tick at the earliest, after the 200 went out.
    if (cfg_.reboot_mode == RebootMode::Simulate)
        sim_reboot_at_ms_ = port::monotonic_ms() + cfg_.reboot_simulate_delay * 1000LL + 1;
}

std::string Methods::effective_boot_id()
{
    std::string id = port::boot_id();
    if (cfg_.reboot_mode == RebootMode::Simulate)
    {
        std::string count;
        std::string err;
        if (port::read_file(state_path("simulated-boots"), count, 64, err) == port::ReadStatus::Ok)
            id += "+sim" + count.substr(0, count.find(' '));
    }
    return id;
}

bool Methods::write_reboot_record(std::string& err)
{
    if (cfg_.reboot_mode == RebootMode::RequestFile)
    {
        // The systemd path unit (gateway-agent-reboot.path) sees this file and reboots as root.
        // The boot id and the time let the oneshot ignore a request left over from another boot
        // or one that waited too long (gateway-agent-reboot-if-fresh).
        const std::int64_t now = port::wall_time_s();
        char when[32];
        port::format_iso8601_utc(now, when, sizeof when);
        const std::string request = "boot_id=" + port::boot_id() + "\ntime=" + std::to_string(now) +
                                    "\nrequested=" + when + "\n";
        if (!port::write_file_atomic(state_path("reboot-request"), request, err))
            return false;
        port::log(port::Level::Notice, "reboot: request written to %s",
                  state_path("reboot-request").c_str());
        return true;
    }
    // Simulated without a delay: the boot is recorded now, the reconnect follows the answer. With
    // a delay it is recorded when it is due, so that the boot time is the time of the "reboot".
    if (cfg_.reboot_simulate_delay != 0)
        return true;
    if (!write_simulated_boot(err))
        return false;
    sim_record_written_ = true;
    return true;
}

bool Methods::write_simulated_boot(std::string& err)
{
    std::string text;
    std::uint64_t boots = 0;
    if (port::read_file(state_path("simulated-boots"), text, 64, err) == port::ReadStatus::Ok)
        (void)std::from_chars(text.data(), text.data() + text.size(), boots);
    ++boots;
    const std::string record = std::to_string(boots) + " " + std::to_string(port::wall_time_s());
    if (!port::write_file_atomic(state_path("simulated-boots"), record, err))
        return false;
    sim_boots_ = boots;
    return true;
}

void Methods::simulated_reboot_due()
{
    // Simulated: count a new "boot", drop the link and come back as a rebooted gateway would.
    if (!sim_record_written_)
    {
        std::string err;
        if (!write_simulated_boot(err))
        {
            // Already answered 200 (a delayed simulation); at least claim no rebootTime for it.
            port::log(port::Level::Err, "reboot: simulated reboot not done: %s", err.c_str());
            port::remove_file(state_path("reboot-pending"));
            return;
        }
    }
    sim_record_written_ = false;
    port::log(port::Level::Notice, "reboot: simulated reboot #%llu",
              static_cast<unsigned long long>(sim_boots_));
    hub_.reconnect("simulated reboot");
}

void Methods::check_reboot_completed()
{
    std::string pending;
    std::string err;
    if (port::read_file(state_path("reboot-pending"), pending, 256, err) != port::ReadStatus::Ok)
        return;
    if (pending == effective_boot_id())
        return; // asked for, not happened yet
    std::int64_t when = port::boot_time_s();
    if (cfg_.reboot_mode == RebootMode::Simulate)
    {
        std::string text;
        if (port::read_file(state_path("simulated-boots"), text, 64, err) == port::ReadStatus::Ok)
        {
            const auto sp = text.find(' ');
            if (sp != std::string::npos)
                (void)std::from_chars(text.data() + sp + 1, text.data() + text.size(), when);
        }
    }
    if (!hub_.online())
        return; // reported once online
    char iso[32];
    port::format_iso8601_utc(when, iso, sizeof iso);
    char doc[96];
    BufWriter w(doc);
    if (build_reboot_time_report(iso, w))
    {
        port::log(port::Level::Notice, "reboot: completed; reporting rebootTime %s", iso);
        twin_.send_reported(w.view(), true);
    }
}

} // namespace ga
