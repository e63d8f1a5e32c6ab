// SPDX-License-Identifier: MIT
// Sensor sources other than the module input: a simulated sensor (demos, soak), UDP JSON
// datagrams, and a local MQTT broker (Zigbee2MQTT, Tasmota, ...). Each hands messages to an
// InputPipeline.
#pragma once

#include "acked_inputs.h"
#include "event_loop.h"
#include "input_pipeline.h"
#include "mqtt_link.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ga
{

/// Readings shaped like Azure's SimulatedTemperatureSensor: machine temperature starts at 21 and
/// rises by U(-0.25, 1.25) per reading until 100, pressure follows it, ambient ~21, humidity 24-26.
/// Deterministic for a seed.
class SimulatedSensor
{
  public:
    explicit SimulatedSensor(std::uint64_t seed) : state_(seed == 0 ? 1 : seed) {}
    /// Writes the next message into `out` and returns its length (0 if it does not fit).
    std::size_t next(std::span<char> out, std::int64_t epoch_s);

  private:
    double uniform(double lo, double hi);
    std::uint64_t state_;
    double machine_ = 21.0;
};

/// A bound UDP socket; each datagram is one message.
class UdpSource
{
  public:
    ~UdpSource();
    [[nodiscard]] bool open(const std::string& bind, std::string& err);
    [[nodiscard]] int fd() const { return fd_; }
    /// Reads pending datagrams (a bounded batch) into the pipeline with one commit.
    void drain(InputPipeline& pipeline, std::int64_t wall_s);
    /// Datagrams the kernel dropped because the socket buffer was full (never seen, never
    /// accepted): counted so a sender that bursts faster than the agent drains is visible.
    [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

  private:
    int fd_ = -1;
    std::unique_ptr<char[]> buf_;
    std::uint64_t dropped_ = 0;
    std::int64_t next_drop_log_ms_ = 0;
};

/// A subscription on a local MQTT broker (plain TCP on the gateway), QoS 1, persistent session:
/// our own MQTT client on the event loop. Inputs go through the InputPipeline and are
/// acknowledged only once their alerts are durable; when the store is full they wait
/// unacknowledged (the broker's in-flight window stops the flow).
class MqttSource final : public MqttLink::Handler
{
  public:
    MqttSource(port::EventLoop& loop, std::uint64_t key, InputPipeline& pipeline, AlertLog& store);
    [[nodiscard]] bool start(const std::string& broker,
                             const std::string& topic,
                             const std::string& client_id,
                             std::string& err);
    void on_ready(bool readable, bool writable, std::int64_t now_ms);
    void tick(std::int64_t now_ms);
    /// The store may have room again: decide held inputs and acknowledge what is durable.
    void retry(std::int64_t now_ms);

    void on_connected(bool session_present) override;
    void on_message(const mqtt::Publish& m) override;
    void on_acked(std::uint64_t /*tag*/) override {}
    void on_subscribed(std::span<const std::uint8_t> granted) override;
    void on_batch_end() override;
    void on_down(const char* why, int connack, bool requested) override;

    [[nodiscard]] std::uint64_t deferred() const { return inputs_->deferred(); }

  private:
    std::unique_ptr<MqttLink> link_;
    std::unique_ptr<AckedInputs> inputs_;
    bool refetch_ = false;
    std::string topic_;
    std::string client_id_;
    std::string broker_;
    int attempt_ = 0;
    std::int64_t next_connect_ms_ = 0;
    std::int64_t up_since_ms_ = 0;
};

} // namespace ga
