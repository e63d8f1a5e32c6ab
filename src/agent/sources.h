// SPDX-License-Identifier: MIT
// Sensor sources other than the module input: a simulated sensor (demos, soak), UDP JSON
// datagrams, and a local MQTT broker (Zigbee2MQTT, Tasmota, ...). Each hands messages to the
// InputFilter.
#pragma once

#include "input_filter.h"

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
    /// Reads every pending datagram into the filter.
    void drain(InputFilter& filter);
    /// Datagrams the kernel dropped because the socket buffer was full (never seen, never
    /// accepted): counted so a sender that bursts faster than the agent drains is visible.
    [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

  private:
    int fd_ = -1;
    std::unique_ptr<char[]> buf_;
    std::uint64_t dropped_ = 0;
    std::int64_t next_drop_log_ms_ = 0;
};

/// A subscription on a local MQTT broker (plain TCP on the gateway), QoS 1.
class MqttSource
{
  public:
    explicit MqttSource(InputFilter& filter) : filter_(filter) {}
    ~MqttSource();
    [[nodiscard]] bool start(const std::string& broker,
                             const std::string& topic,
                             const std::string& client_id,
                             std::string& err);

  private:
    static int on_message(void* ctx, char* topic, int topic_len, void* message);
    static void on_connected(void* ctx, char* cause);
    static void on_lost(void* ctx, char* cause);
    InputFilter& filter_;
    void* client_ = nullptr;
    std::string topic_;
};

/// Splits "host:port"; false when malformed.
[[nodiscard]] bool split_host_port(std::string_view hp, std::string& host, std::uint16_t& port);

} // namespace ga
