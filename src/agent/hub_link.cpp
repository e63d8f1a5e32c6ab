// SPDX-License-Identifier: MIT
#include "hub_link.h"

#include "port.h"

#include <MQTTAsync.h>
#include <cstring>

namespace ga
{
namespace
{
std::string_view view_of(const char* topic, int topic_len)
{
    // paho passes topic_len 0 when the topic is NUL-terminated.
    return topic_len > 0 ? std::string_view(topic, static_cast<std::size_t>(topic_len))
                         : std::string_view(topic);
}
} // namespace

HubLink::~HubLink()
{
    if (client_ != nullptr)
    {
        MQTTAsync handle = client_;
        MQTTAsync_destroy(&handle);
    }
}

bool HubLink::create(const HubLinkSettings& s, std::string& err)
{
    settings_ = s;
    return create_client(err);
}

bool HubLink::create_client(std::string& err)
{
    const HubLinkSettings& s = settings_;
    MQTTAsync_createOptions opts = MQTTAsync_createOptions_initializer;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.sendWhileDisconnected = 0; // the alert store, not paho, keeps what waits offline
    MQTTAsync handle = nullptr;
    int rc = MQTTAsync_createWithOptions(&handle, s.server_uri.c_str(), s.client_id.c_str(),
                                         MQTTCLIENT_PERSISTENCE_NONE, nullptr, &opts);
    if (rc != MQTTASYNC_SUCCESS)
    {
        err = std::string("hub link: cannot create MQTT client: ") + MQTTAsync_strerror(rc);
        return false;
    }
    client_ = handle;
    for (auto& slot : slots_)
        slot.link = this;
    // Callbacks are set before the first connect so nothing the session kept is missed.
    rc = MQTTAsync_setCallbacks(handle, this, &HubLink::on_connection_lost,
                                reinterpret_cast<MQTTAsync_messageArrived*>(&HubLink::on_message),
                                nullptr);
    if (rc != MQTTASYNC_SUCCESS)
    {
        err = std::string("hub link: cannot set callbacks: ") + MQTTAsync_strerror(rc);
        return false;
    }
    return true;
}

bool HubLink::connect(const std::string& password)
{
    if (needs_fresh_client_.exchange(false))
    {
        // After a lost connection paho 1.3 may still hold a half-sent QoS 1 PUBLISH that it would
        // resend on the resumed session, and a reset during a publish can corrupt that copy (seen
        // with a fault proxy: a malformed resend on every reconnect, so nothing got through
        // again). The store re-sends every unacknowledged alert itself, so a new client with no
        // paho-held messages loses nothing.
        MQTTAsync handle = client_;
        client_ = nullptr;
        MQTTAsync_destroy(&handle);
        for (auto& slot : slots_)
            slot.busy = false;
        inflight_ = 0;
        std::string err;
        if (!create_client(err))
        {
            port::log(port::Level::Err, "%s", err.c_str());
            needs_fresh_client_ = true;
            return false;
        }
    }
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    opts.keepAliveInterval = settings_.keepalive_s;
    opts.cleansession = 0; // the hub keeps module inputs for us while we are away
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.username = settings_.username.c_str();
    opts.password = password.c_str();
    opts.connectTimeout = 30;
    opts.automaticReconnect = 0; // the loop owns reconnect policy (backoff with jitter)
    opts.maxInflight = kWindow;
    opts.context = this;
    opts.onSuccess = reinterpret_cast<MQTTAsync_onSuccess*>(&HubLink::on_connected);
    opts.onFailure = reinterpret_cast<MQTTAsync_onFailure*>(&HubLink::on_connect_failed);
    if (settings_.server_uri.rfind("ssl://", 0) == 0)
    {
        ssl.trustStore = settings_.ca_file.empty() ? nullptr : settings_.ca_file.c_str();
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1; // host name check against the certificate
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        opts.ssl = &ssl;
    }
    const int rc = MQTTAsync_connect(client_, &opts);
    if (rc != MQTTASYNC_SUCCESS)
    {
        port::log(port::Level::Err, "hub link: connect not started: %s", MQTTAsync_strerror(rc));
        return false;
    }
    return true;
}

void HubLink::disconnect()
{
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    opts.timeout = 2000;
    opts.context = this;
    opts.onSuccess = reinterpret_cast<MQTTAsync_onSuccess*>(&HubLink::on_disconnected);
    opts.onFailure = reinterpret_cast<MQTTAsync_onFailure*>(&HubLink::on_disconnected);
    if (MQTTAsync_disconnect(client_, &opts) != MQTTASYNC_SUCCESS)
        (void)inbox_.push(EventType::ConnectionLost, -1, 0, 0);
}

bool HubLink::subscribe(const char* const* filters, const int* qos, int count)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = this;
    ro.onSuccess = reinterpret_cast<MQTTAsync_onSuccess*>(&HubLink::on_subscribed);
    ro.onFailure = reinterpret_cast<MQTTAsync_onFailure*>(&HubLink::on_subscribe_failed);
    sub_count_ = count;
    return MQTTAsync_subscribeMany(client_, count, const_cast<char* const*>(filters),
                                   const_cast<int*>(qos), &ro) == MQTTASYNC_SUCCESS;
}

bool HubLink::publish0(const char* topic, std::string_view payload)
{
    return MQTTAsync_send(client_, topic, static_cast<int>(payload.size()), payload.data(), 0, 0,
                          nullptr) == MQTTASYNC_SUCCESS;
}

bool HubLink::publish_alert(const char* topic, std::string_view payload, std::uint64_t seq)
{
    for (auto& slot : slots_)
    {
        bool expected = false;
        if (!slot.busy.compare_exchange_strong(expected, true))
            continue;
        slot.seq = seq;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.context = &slot;
        ro.onSuccess = reinterpret_cast<MQTTAsync_onSuccess*>(&HubLink::on_published);
        ro.onFailure = reinterpret_cast<MQTTAsync_onFailure*>(&HubLink::on_publish_failed);
        ++inflight_;
        if (MQTTAsync_send(client_, topic, static_cast<int>(payload.size()), payload.data(), 1, 0,
                           &ro) != MQTTASYNC_SUCCESS)
        {
            --inflight_;
            slot.busy = false;
            return false;
        }
        return true;
    }
    return false;
}

void HubLink::on_connected(void* ctx, void* /*resp*/)
{
    auto* self = static_cast<HubLink*>(ctx);
    (void)self->inbox_.push(EventType::Connected, 0, 0, 0);
}

void HubLink::on_connect_failed(void* ctx, void* resp)
{
    auto* self = static_cast<HubLink*>(ctx);
    const auto* data = static_cast<MQTTAsync_failureData*>(resp);
    const int code = data != nullptr ? data->code : MQTTASYNC_FAILURE;
    const char* msg = data != nullptr && data->message != nullptr ? data->message : "";
    (void)self->inbox_.push(EventType::ConnectFailed, code, 0, 0, {}, msg);
}

// `char* cause`, not const: paho's MQTTAsync_connectionLost type fixes the signature.
void HubLink::on_connection_lost(void* ctx, char* cause) // NOLINT(readability-non-const-parameter)
{
    auto* self = static_cast<HubLink*>(ctx);
    self->needs_fresh_client_ = true;
    (void)self->inbox_.push(EventType::ConnectionLost, 0, 0, 0, {},
                            cause != nullptr ? cause : "connection lost");
}

void HubLink::on_disconnected(void* ctx, void* /*resp*/)
{
    auto* self = static_cast<HubLink*>(ctx);
    (void)self->inbox_.push(EventType::ConnectionLost, -1, 0, 0);
}

int HubLink::on_message(void* ctx, char* topic, int topic_len, void* message)
{
    auto* self = static_cast<HubLink*>(ctx);
    auto* msg = static_cast<MQTTAsync_message*>(message);
    const std::string_view t = view_of(topic, topic_len);
    const std::string_view payload(static_cast<const char*>(msg->payload),
                                   static_cast<std::size_t>(msg->payloadlen));
    const std::string& prefix = self->settings_.input_prefix;
    // devices/d/modules/m/inputs/input1 followed by the end or '/' (so input10 does not match).
    const bool is_input = !prefix.empty() && t.rfind(prefix, 0) == 0 &&
                          (t.size() == prefix.size() || t[prefix.size()] == '/');
    if (is_input)
    {
        (void)self->filter_.decide(payload);
    }
    else if (!self->inbox_.push(EventType::Message, 0, 0, 0, t, payload))
    {
        return 0; // inbox full: paho keeps the message and offers it again
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

void HubLink::on_subscribed(void* ctx, void* resp)
{
    auto* self = static_cast<HubLink*>(ctx);
    const auto* data = static_cast<MQTTAsync_successData*>(resp);
    int refused = 0;
    // 0x80 in a SUBACK marks a refused filter; paho reports one QoS for a single filter and a
    // list for several.
    if (data != nullptr && self->sub_count_ == 1 && data->alt.qos == 0x80)
        refused = 1;
    if (data != nullptr && self->sub_count_ > 1 && data->alt.qosList != nullptr)
        for (int i = 0; i < self->sub_count_; ++i)
            refused += data->alt.qosList[i] == 0x80 ? 1 : 0;
    (void)self->inbox_.push(EventType::Subscribed, refused, 0, 0);
}

void HubLink::on_subscribe_failed(void* ctx, void* resp)
{
    auto* self = static_cast<HubLink*>(ctx);
    const auto* data = static_cast<MQTTAsync_failureData*>(resp);
    (void)self->inbox_.push(EventType::Subscribed,
                            data != nullptr && data->code != 0 ? data->code : 1, 0, 0);
}

void HubLink::on_published(void* ctx, void* /*resp*/)
{
    auto* slot = static_cast<Slot*>(ctx);
    const std::uint64_t seq = slot->seq;
    HubLink* self = slot->link;
    --self->inflight_;
    slot->busy = false;
    (void)self->inbox_.push(EventType::PublishAcked, 0, seq, 0);
}

void HubLink::on_publish_failed(void* ctx, void* resp)
{
    auto* slot = static_cast<Slot*>(ctx);
    const std::uint64_t seq = slot->seq;
    HubLink* self = slot->link;
    const auto* data = static_cast<MQTTAsync_failureData*>(resp);
    --self->inflight_;
    slot->busy = false;
    (void)self->inbox_.push(EventType::PublishFailed, data != nullptr ? data->code : -1, seq, 0);
}

} // namespace ga
