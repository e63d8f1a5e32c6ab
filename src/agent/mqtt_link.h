// SPDX-License-Identifier: MIT
// One MQTT connection on the event loop: the port layer's Transport (TCP/TLS) carrying an
// mqtt::Session. It moves bytes both ways, turns session events into Handler calls and tells the
// owner once, through on_down(), when the connection ended and why. Used for the hub link and
// for the local broker of the `mqtt` source. Buffers are allocated once at construction.
#pragma once

#include "event_loop.h"
#include "session.h"
#include "transport.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ga
{

class MqttLink
{
  public:
    class Handler
    {
      public:
        virtual void on_connected(bool session_present) = 0;
        /// Views are valid during the call only.
        virtual void on_message(const mqtt::Publish& m) = 0;
        virtual void on_acked(std::uint64_t tag) = 0;
        virtual void on_subscribed(std::span<const std::uint8_t> granted) = 0;
        /// Everything readable now has been handled: the moment for one commit and the acks.
        virtual void on_batch_end() = 0;
        /// The connection ended. `connack` is the CONNACK return code when the server refused
        /// (else -1); `requested` when the owner asked for it (close()).
        virtual void on_down(const char* why, int connack, bool requested) = 0;

      protected:
        ~Handler() = default;
    };

    struct Buffers
    {
        std::size_t rx_bytes;
        std::size_t tx_bytes;
    };
    MqttLink(const Buffers& buffers,
             const mqtt::SessionConfig& cfg,
             port::EventLoop& loop,
             std::uint64_t key,
             Handler& handler);
    ~MqttLink();
    MqttLink(const MqttLink&) = delete;
    MqttLink& operator=(const MqttLink&) = delete;

    [[nodiscard]] bool configure(const port::TransportConfig& cfg, std::string& err);
    /// Starts a connection; CONNECT goes out once the transport is open. `password` is kept only
    /// until CONNECT is encoded, then wiped.
    void connect(std::string_view client_id,
                 std::string_view username,
                 std::string_view password,
                 bool clean_session,
                 std::int64_t now_ms);
    /// The loop saw the socket ready.
    void on_ready(bool readable, bool writable, std::int64_t now_ms);
    /// Every tick: connect progress, keep-alive, timeouts.
    void tick(std::int64_t now_ms);
    /// Writes what the session has queued (after publishes made outside on_ready).
    void flush(std::int64_t now_ms);
    /// Ends the connection now: a DISCONNECT if it is up (best effort), then on_down(requested).
    void close(const char* why);
    /// From inside a handler call: end the connection once the call returns (not requested).
    void fail(const char* why);

    [[nodiscard]] bool connecting() const
    {
        return phase_ == Phase::Transport || phase_ == Phase::Mqtt;
    }
    [[nodiscard]] bool up() const { return phase_ == Phase::Up; }
    [[nodiscard]] bool idle() const { return phase_ == Phase::Idle; }
    [[nodiscard]] mqtt::Session& session() { return *session_; }
    [[nodiscard]] std::string peer() const { return transport_.peer(); }
    [[nodiscard]] std::string security() const { return transport_.security(); }

  private:
    enum class Phase : std::uint8_t
    {
        Idle,
        Transport, // resolving, TCP connect, TLS handshake
        Mqtt,      // CONNECT sent, awaiting CONNACK
        Up,
    };
    void read_all(std::int64_t now_ms);
    bool dispatch(std::int64_t now_ms);
    void write_out(std::int64_t now_ms);
    void update_watch();
    void down(const char* why, int connack, bool requested);

    port::EventLoop& loop_;
    std::uint64_t key_;
    Handler& handler_;
    port::Transport transport_;
    std::unique_ptr<std::uint8_t[]> rx_;
    std::unique_ptr<std::uint8_t[]> tx_;
    std::unique_ptr<mqtt::Session> session_;
    Phase phase_ = Phase::Idle;
    int watched_fd_ = -1;
    bool watched_write_ = false;
    bool in_handler_ = false;
    const char* failure_ = nullptr;
    char why_[256] = {};
    char client_id_[256] = {};
    char username_[512] = {};
    char password_[1024] = {};
    std::size_t client_id_len_ = 0;
    std::size_t username_len_ = 0;
    std::size_t password_len_ = 0;
    bool clean_ = false;
    std::uint16_t keepalive_s_ = 0;
};

} // namespace ga
