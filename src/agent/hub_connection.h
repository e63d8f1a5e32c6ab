// SPDX-License-Identifier: MIT
// The hub link's life: connect with a fresh SAS token, subscribe, stay online, renew the token
// before it expires (MQTT cannot re-authenticate in place, so renewal is a planned reconnect),
// and after any loss wait with exponential backoff and full jitter before the next try. A planned
// close (renewal, simulated reboot, stop) first gives the alerts in flight a moment to be
// acknowledged. What arrives while online is handed to the Client.
// An IoT Edge module identity has no key: before each connect the token is signed by the edge
// runtime's workload API (and the first time its trust bundle is fetched and becomes the CA
// file), a step that fails and backs off like a refused CONNECT (docs/iot-edge.md).
#pragma once

#include "edge_env.h"
#include "event_loop.h"
#include "http_response.h"
#include "mqtt_link.h"
#include "port.h"
#include "workload_api.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ga
{

struct HubSettings
{
    std::string connect_host; // the hub, or the IoT Edge gateway
    std::uint16_t port = 8883;
    bool tls = true;
    std::string ca_file;
    std::string client_id;
    std::string username;
    std::string input_filter; // module input subscription ("" for none)
    // SAS token parts
    std::string hub_host;
    std::string device_id;
    std::string module_id;
    std::string_view shared_access_key; // not owned, never logged
    WorkloadSettings workload;          // enabled(): tokens signed by the IoT Edge workload API
    std::uint32_t sas_ttl_s = 3600;
    std::uint16_t keepalive_s = 240;
    std::size_t window = 64;
};

class HubConnection final : public MqttLink::Handler
{
  public:
    class Client
    {
      public:
        /// Connected and subscribed.
        virtual void on_online() = 0;
        /// The link went down (lost, refused or closed): forget what was in flight.
        virtual void on_offline() = 0;
        virtual void on_hub_message(const mqtt::Publish& m) = 0;
        virtual void on_alert_acked(std::uint64_t tag) = 0;
        /// Everything readable was handled: commit once, then acknowledge.
        virtual void on_burst_end() = 0;

      protected:
        ~Client() = default;
    };

    HubConnection(const HubSettings& s, port::EventLoop& loop, std::uint64_t key, Client& client);

    /// Loads the trust anchors; false with `err` (a start-up error).
    [[nodiscard]] bool configure(std::string& err);
    /// Connects now (the first time, or after a planned close that asked for it).
    void connect_now();
    void on_ready(bool readable, bool writable, std::int64_t now_ms);
    void tick(std::int64_t now_ms);
    /// A planned reconnect (simulated reboot, fetching inputs left with the broker).
    void reconnect(const char* why);
    /// Ends the link at a clean stop: in-flight alerts first (bounded), then DISCONNECT.
    void stop();
    /// From inside a Client call: drop the connection (not planned; backoff follows).
    void fail(const char* why) { link_->fail(why); }

    [[nodiscard]] bool online() const { return state_ == State::Online; }
    /// True when a state other than online has lasted far beyond its own time bound: the agent
    /// then stops answering systemd's watchdog, which restarts it.
    [[nodiscard]] bool stuck(std::int64_t now_ms) const;
    /// The last state line sent to systemd (STATUS=): connecting, online, offline since...
    [[nodiscard]] const char* status_text() const { return status_.data(); }
    [[nodiscard]] mqtt::Session& session() { return link_->session(); }
    /// Writes what the session has queued.
    void flush();
    /// QoS 0 publish (twin requests, method responses); false when offline or no room.
    [[nodiscard]] bool publish0(std::string_view topic, std::string_view payload);
    [[nodiscard]] std::uint64_t reconnects() const { return reconnects_; }
    [[nodiscard]] const char* host() const { return s_.connect_host.c_str(); }
    /// Tokens the workload API signed (IoT Edge identity).
    [[nodiscard]] std::uint64_t tokens_signed() const { return tokens_signed_; }

    // MqttLink::Handler
    void on_connected(bool session_present) override;
    void on_message(const mqtt::Publish& m) override;
    void on_acked(std::uint64_t tag) override;
    void on_subscribed(std::span<const std::uint8_t> granted) override;
    void on_batch_end() override;
    void on_down(const char* why, int connack, bool requested) override;

  private:
    enum class State : std::uint8_t
    {
        Waiting,   // backoff before the next connect
        Preparing, // IoT Edge: trust bundle and token from the workload API
        Connecting,
        Subscribing,
        Online,
        Draining, // a planned close: in-flight alerts first
    };
    enum class EdgeStep : std::uint8_t
    {
        TrustBundle,
        Sign,
    };
    void set_state(State next);
    /// Records the state line and sends it to systemd (STATUS=).
    template <typename... Args> void status(const char* fmt, Args... args);
    void schedule_reconnect(bool auth_refused);
    void begin_drain(const char* why, bool reconnect);
    void connect_with(std::string_view token);
    void start_edge(std::int64_t now_ms);
    void start_sign(std::int64_t now_ms);
    void progress_edge(std::int64_t now_ms);
    void edge_reply(const HttpResponse& reply, std::int64_t now_ms);
    void edge_failed(const std::string& why, bool refused);
    [[nodiscard]] bool use_trust_bundle(const std::string& pem, std::string& err);

    HubSettings s_;
    port::EventLoop& loop_;
    Client& client_;
    std::uint64_t key_;
    std::unique_ptr<MqttLink> link_;
    State state_ = State::Waiting;
    std::int64_t state_since_ms_ = port::monotonic_ms();
    std::array<char, 320> status_{};
    std::int64_t next_connect_ms_ = 0;
    int attempt_ = 0;
    std::int64_t online_since_ms_ = 0;
    std::int64_t subscribing_since_ms_ = 0;
    std::int64_t renew_at_ms_ = 0;
    std::int64_t drain_until_ms_ = 0;
    const char* drain_why_ = "";
    bool reconnect_when_down_ = false;
    bool stopping_ = false;
    std::uint64_t connects_ = 0;
    std::uint64_t reconnects_ = 0;
    // IoT Edge
    std::unique_ptr<port::WorkloadClient> workload_;
    EdgeStep edge_step_ = EdgeStep::TrustBundle;
    bool bundle_loaded_ = false;
    std::int64_t sign_expiry_ = 0;
    std::uint64_t tokens_signed_ = 0;
};

} // namespace ga
