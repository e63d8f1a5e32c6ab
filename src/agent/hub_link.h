// SPDX-License-Identifier: MIT
// The hub link: the only user of paho's MQTTAsync for the IoT Hub / edgeHub connection. It turns
// paho callbacks (on paho's threads) into inbox events for the loop, except module inputs, which
// go through the InputFilter on paho's receive thread so the PUBACK follows the durable decision
// (paho 1.3 sends the PUBACK of a QoS 1 message after messageArrived returns).
#pragma once

#include "inbox.h"
#include "input_filter.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace ga
{

struct HubLinkSettings
{
    std::string server_uri; // ssl://host:port or tcp://host:port
    std::string client_id;
    std::string username;
    std::string ca_file;      // empty: the system trust store
    std::string input_prefix; // this topic (or it + '/' + bag) goes to the InputFilter
    int keepalive_s = 240;
};

class HubLink
{
  public:
    HubLink(Inbox& inbox, InputFilter& filter) : inbox_(inbox), filter_(filter) {}
    ~HubLink();
    HubLink(const HubLink&) = delete;
    HubLink& operator=(const HubLink&) = delete;

    [[nodiscard]] bool create(const HubLinkSettings& s, std::string& err);
    /// Starts an asynchronous connect; the outcome arrives as Connected / ConnectFailed.
    [[nodiscard]] bool connect(const std::string& password);
    /// Asks for a clean disconnect; ConnectionLost(code -1) follows.
    void disconnect();
    [[nodiscard]] bool subscribe(const char* const* filters, const int* qos, int count);
    /// QoS 0 publish (twin requests, method responses).
    [[nodiscard]] bool publish0(const char* topic, std::string_view payload);
    /// QoS 1 alert publish; PublishAcked/PublishFailed with `seq` follows. False when the window
    /// is full or paho refused.
    [[nodiscard]] bool
    publish_alert(const char* topic, std::string_view payload, std::uint64_t seq);
    [[nodiscard]] int inflight() const { return inflight_.load(); }
    static constexpr int kWindow = 16;

  private:
    bool create_client(std::string& err);
    struct Slot
    {
        HubLink* link = nullptr;
        std::uint64_t seq = 0;
        std::atomic<bool> busy{false};
    };
    static void on_connected(void* ctx, void* resp);
    static void on_connect_failed(void* ctx, void* resp);
    static void on_connection_lost(void* ctx, char* cause);
    static int on_message(void* ctx, char* topic, int topic_len, void* message);
    static void on_subscribed(void* ctx, void* resp);
    static void on_subscribe_failed(void* ctx, void* resp);
    static void on_disconnected(void* ctx, void* resp);
    static void on_published(void* ctx, void* resp);
    static void on_publish_failed(void* ctx, void* resp);

    Inbox& inbox_;
    InputFilter& filter_;
    HubLinkSettings settings_;
    void* client_ = nullptr;
    std::array<Slot, kWindow> slots_{};
    std::atomic<int> inflight_{0};
    std::atomic<int> sub_count_{0};
    std::atomic<bool> needs_fresh_client_{false}; // set by an unrequested connection loss
};

} // namespace ga
