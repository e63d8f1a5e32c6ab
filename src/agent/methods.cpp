// SPDX-License-Identifier: MIT
#include "methods.h"

#include "buf_writer.h"
#include "port.h"
#include "twin.h"

#include <algorithm>
#include <charconv>

namespace ga
{

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
        port::log(port::Level::Warning, "methods: payload of %zu bytes is too large: 413", bytes);
        respond(413, m->rid, R"({"error":"payload too large"})");
    }
}

void Methods::tick(std::int64_t now_ms)
{
    if (sim_reboot_at_ms_ != 0 && now_ms >= sim_reboot_at_ms_)
    {
        sim_reboot_at_ms_ = 0;
        reboot_now();
    }
}

void Methods::on_reboot_time_reported()
{
    port::remove_file(state_path("reboot-pending"));
    port::log(port::Level::Info, "reboot: rebootTime reported");
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
    if (!payload.empty() && !is_valid_json(payload))
    {
        port::log(port::Level::Warning, "methods: %.*s: payload is not JSON: 400",
                  static_cast<int>(m.name.size()), m.name.data());
        respond(400, m.rid, R"({"error":"payload is not JSON"})");
        return;
    }
    if (m.name != "rebootDevice")
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
    if (cfg_.reboot_mode == RebootMode::Disabled)
    {
        port::log(port::Level::Warning, "methods: rebootDevice refused: [reboot] mode = disabled");
        respond(403, m.rid, R"({"error":"reboot disabled on this gateway"})");
        return;
    }
    const std::string pending = effective_boot_id();
    std::string err;
    if (!port::write_file_atomic(state_path("reboot-pending"), pending, err))
    {
        port::log(port::Level::Err, "reboot: %s", err.c_str());
        respond(500, m.rid, R"({"error":"cannot record the reboot in the state dir"})");
        return;
    }
    char body[160];
    BufWriter b(body);
    b.append(R"({"result":"reboot scheduled","mode":")")
        .append(to_string(cfg_.reboot_mode))
        .append("\"}");
    respond(200, m.rid, b.view());
    port::log(port::Level::Notice, "methods: rebootDevice accepted (mode %s)",
              to_string(cfg_.reboot_mode));
    if (cfg_.reboot_mode == RebootMode::Simulate)
        sim_reboot_at_ms_ = port::monotonic_ms() + cfg_.reboot_simulate_delay * 1000LL + 1;
    else
        reboot_now();
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

void Methods::reboot_now()
{
    std::string err;
    if (cfg_.reboot_mode == RebootMode::RequestFile)
    {
        // The systemd path unit (gateway-agent-reboot.path) sees this file and reboots as root.
        char when[32];
        port::format_iso8601_utc(port::wall_time_s(), when, sizeof when);
        if (!port::write_file_atomic(state_path("reboot-request"),
                                     std::string("requested ") + when + "\n", err))
            port::log(port::Level::Err, "reboot: request not written: %s", err.c_str());
        else
            port::log(port::Level::Notice, "reboot: request written to %s",
                      state_path("reboot-request").c_str());
        return;
    }
    // Simulated: count a new "boot", drop the link and come back as a rebooted gateway would.
    std::string text;
    std::uint64_t boots = 0;
    if (port::read_file(state_path("simulated-boots"), text, 64, err) == port::ReadStatus::Ok)
        (void)std::from_chars(text.data(), text.data() + text.size(), boots);
    ++boots;
    const std::string record = std::to_string(boots) + " " + std::to_string(port::wall_time_s());
    if (!port::write_file_atomic(state_path("simulated-boots"), record, err))
        port::log(port::Level::Err, "reboot: %s", err.c_str());
    port::log(port::Level::Notice, "reboot: simulated reboot #%llu",
              static_cast<unsigned long long>(boots));
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
