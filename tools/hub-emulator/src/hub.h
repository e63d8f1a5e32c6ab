// The emulated hub: every IoT Hub / edgeHub rule, independent of the broker that carries it.
// The mosquitto plugin (plugin.cpp) feeds broker events in and carries the Outbox actions out.
#pragma once

#include "auth.h"
#include "config.h"
#include "topics.h"
#include "twin.h"

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hubemu
{

/// What the hub asks the broker to do.
class Outbox
{
  public:
    virtual ~Outbox() = default;
    /// client_id empty: publish through normal subscriptions (the broker's read check applies).
    /// Otherwise deliver to that one client only, if connected.
    virtual void publish(const std::string& client_id,
                         const std::string& topic,
                         const std::string& payload,
                         int qos) = 0;
    /// Disconnect a client now (only called from on_tick, never inside a broker callback).
    virtual void kick(const std::string& client_id) = 0;
    virtual void log(const std::string& line) = 0;
};

struct AuthDecision
{
    bool accept = false;
    int connack = 5; // when refused: 3 (server unavailable) or 5 (not authorised)
    std::string why;
};

/// Broker access kinds (same values as mosquitto's MOSQ_ACL_*).
enum Access : int
{
    kRead = 1,
    kWrite = 2,
    kSubscribe = 4,
    kUnsubscribe = 8,
};

inline constexpr std::string_view kControlUser = "$hubctl";
inline constexpr std::string_view kControlPrefix = "$hubctl/";

class Hub
{
  public:
    Hub(Config cfg, std::string control_secret, Outbox& out);

    AuthDecision on_auth(const void* conn,
                         std::string_view client_id,
                         std::string_view username,
                         std::string_view password,
                         bool clean_session,
                         int64_t now_ms);
    bool on_acl(std::string_view client_id, std::string_view topic, int access, int qos);
    /// A PUBLISH that passed the write check. Returns false to drop it.
    bool on_message(std::string_view client_id,
                    std::string_view topic,
                    std::string_view payload,
                    int qos,
                    int64_t now_ms);
    void on_disconnect(const void* conn, std::string_view client_id);
    void on_tick(int64_t now_ms);

    /// Durable state (twins, subscriptions, counters) as JSON, and its restore.
    [[nodiscard]] std::string state_json() const;
    bool load_state(std::string_view json);
    /// Upstream records (JSON lines) not yet handed out for appending to the journal.
    std::vector<std::string> take_new_records();
    /// Restores one journal line (at start-up).
    void load_record(std::string_view line);
    [[nodiscard]] bool dirty() const { return dirty_; }
    void clear_dirty() { dirty_ = false; }

    [[nodiscard]] const Config& config() const { return cfg_; }

  private:
    struct Client
    {
        const void* conn = nullptr;
        bool connected = false;
        int64_t expiry_s = 0;
        int64_t connects = 0;
        int64_t refused = 0;
        std::deque<int64_t> attempts_ms; // the last kAttemptsKept CONNECT attempts, any outcome
        bool sub_twin = false;
        bool sub_desired = false;
        bool sub_methods = false;
    };
    struct PendingMethod
    {
        std::string target;
        std::string control_client;
        std::string reqid;
        int64_t deadline_ms = 0;
    };
    struct Record
    {
        int64_t seq;
        std::string line;
    };

    void handle_telemetry(const Identity& who,
                          std::string_view topic,
                          std::string_view bag,
                          std::string_view payload,
                          int64_t now_ms);
    void record_upstream(const Identity& who,
                         std::string_view topic,
                         const PropBag& props,
                         std::string_view payload,
                         int64_t now_ms);
    void deliver_input(const std::string& device,
                       const std::string& module,
                       const std::string& input,
                       const PropBag& props,
                       std::string_view payload);
    void handle_control(std::string_view client_id,
                        std::string_view reqid,
                        std::string_view payload,
                        int64_t now_ms);
    void reply(const std::string& control_client, std::string_view reqid, const std::string& json);
    void count(const std::string& name, int64_t n = 1) { counters_[name] += n; }

    Config cfg_;
    std::string control_secret_;
    Outbox& out_;
    SasPolicy policy_;
    std::map<std::string, Twin> twins_;
    // Injected twin GET faults per identity, in order: a status to answer with, or 0 to drop the
    // GET unanswered (hubctl twin fail-get / drop-get). Not persisted: a restart clears them.
    std::map<std::string, std::deque<int>> get_faults_;
    std::map<std::string, Client> clients_;
    std::set<std::string> control_clients_;
    std::set<std::string> followers_;
    std::map<std::string, PendingMethod> pending_;
    std::vector<std::string> pending_kicks_;
    std::deque<Record> records_;
    std::vector<std::string> new_records_;
    int64_t next_seq_ = 1;
    int64_t next_rid_ = 1;
    int64_t refuse_until_ms_ = 0;
    int refuse_code_ = 3;
    std::map<std::string, int64_t> counters_;
    std::vector<int64_t> route_counts_;
    bool dirty_ = false;
};

} // namespace hubemu
