// mosquitto 2.0 plugin (API v5) that turns the broker into an IoT Hub / edgeHub emulator.
// All hub rules live in Hub (hub.cpp); this file only adapts broker events and actions.
//
// Options (mosquitto.conf):
//   plugin_opt_config  PATH   emulator conf (identities, routes)
//   plugin_opt_state_dir DIR  where state.json and messages.jsonl are kept
//   plugin_opt_control_secret_file PATH  password of the $hubctl control identity

#include "hub.h"

#include "mosq_compat.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

// mosquitto 2.0.x has no plugin call for CONNACK 3 (server unavailable); its own sender is
// exported from the broker binary. Weak, so a broker without it falls back to closing the socket.
// The reserved-looking name is mosquitto's own symbol.
// NOLINTNEXTLINE(bugprone-reserved-identifier)
extern "C" int send__connack(struct mosquitto* context,
                             uint8_t ack,
                             uint8_t reason_code,
                             const mosquitto_property* properties) __attribute__((weak));

namespace
{
using hubemu::Hub;

int64_t now_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool read_file(const std::string& path, std::string* out)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    *out = ss.str();
    return true;
}

class BrokerOutbox : public hubemu::Outbox
{
  public:
    void publish(const std::string& client_id,
                 const std::string& topic,
                 const std::string& payload,
                 int qos) override
    {
        mosquitto_broker_publish_copy(client_id.empty() ? nullptr : client_id.c_str(),
                                      topic.c_str(), static_cast<int>(payload.size()),
                                      payload.data(), qos, false, nullptr);
    }
    void kick(const std::string& client_id) override
    {
        mosquitto_kick_client_by_clientid(client_id.c_str(), false);
    }
    void log(const std::string& line) override
    {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "%s", line.c_str());
    }
};

struct PluginState
{
    mosquitto_plugin_id_t* id = nullptr;
    BrokerOutbox outbox;
    std::unique_ptr<Hub> hub;
    std::string state_dir;
    FILE* journal = nullptr;
    int64_t last_save_ms = 0;
};

PluginState* g_state = nullptr;

void save_state(PluginState& st)
{
    auto lines = st.hub->take_new_records();
    if (st.journal && !lines.empty())
    {
        // A stream's write errors are sticky, so one check after the flush covers every line.
        for (const auto& l : lines)
        {
            (void)std::fwrite(l.data(), 1, l.size(), st.journal);
            (void)std::fputc('\n', st.journal);
        }
        if (std::fflush(st.journal) != 0 || std::ferror(st.journal) != 0)
        {
            mosquitto_log_printf(MOSQ_LOG_WARNING, "hub: cannot append to messages.jsonl: %s",
                                 std::strerror(errno));
            std::clearerr(st.journal);
        }
    }
    if (!st.hub->dirty())
        return;
    std::string tmp = st.state_dir + "/state.json.tmp";
    std::string dst = st.state_dir + "/state.json";
    std::string json = st.hub->state_json();
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        return;
    // Only a complete file replaces state.json; on failure the state stays dirty for the next save.
    const bool written = std::fwrite(json.data(), 1, json.size(), f) == json.size();
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed || std::rename(tmp.c_str(), dst.c_str()) != 0)
    {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "hub: cannot save %s: %s", dst.c_str(),
                             std::strerror(errno));
        (void)std::remove(tmp.c_str());
        return;
    }
    st.hub->clear_dirty();
}

int on_basic_auth(int /*event*/, void* event_data, void* userdata)
{
    auto* st = static_cast<PluginState*>(userdata);
    auto* ev = static_cast<mosquitto_evt_basic_auth*>(event_data);
    const char* cid = mosquitto_client_id(ev->client);
    auto d = st->hub->on_auth(ev->client, cid ? cid : "", ev->username ? ev->username : "",
                              ev->password ? ev->password : "",
                              mosquitto_client_clean_session(ev->client), now_ms());
    if (d.accept)
        return MOSQ_ERR_SUCCESS;
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "hub: refused CONNECT of '%s' (CONNACK %d): %s",
                         cid ? cid : "", d.connack, d.why.c_str());
    if (d.connack == 3)
    {
        if (send__connack && mosquitto_client_protocol_version(ev->client) != 5)
            send__connack(ev->client, 0, 3, nullptr);
        return MOSQ_ERR_UNKNOWN; // closes without a second CONNACK
    }
    return MOSQ_ERR_AUTH; // CONNACK 5
}

int on_acl_check(int /*event*/, void* event_data, void* userdata)
{
    auto* st = static_cast<PluginState*>(userdata);
    auto* ev = static_cast<mosquitto_evt_acl_check*>(event_data);
    const char* cid = mosquitto_client_id(ev->client);
    bool ok = st->hub->on_acl(cid ? cid : "", ev->topic ? ev->topic : "", ev->access, ev->qos);
    return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

int on_message(int /*event*/, void* event_data, void* userdata)
{
    auto* st = static_cast<PluginState*>(userdata);
    auto* ev = static_cast<mosquitto_evt_message*>(event_data);
    const char* cid = mosquitto_client_id(ev->client);
    ev->retain = false; // the hub never stores retained messages
    st->hub->on_message(cid ? cid : "", ev->topic ? ev->topic : "",
                        std::string_view(static_cast<const char*>(ev->payload), ev->payloadlen),
                        ev->qos, now_ms());
    // The original publish continues to the broker, whose read check lets it reach nobody.
    return MOSQ_ERR_SUCCESS;
}

int on_tick(int /*event*/, void* /*event_data*/, void* userdata)
{
    auto* st = static_cast<PluginState*>(userdata);
    int64_t now = now_ms();
    st->hub->on_tick(now);
    if (now - st->last_save_ms >= 200)
    {
        save_state(*st);
        st->last_save_ms = now;
    }
    return MOSQ_ERR_SUCCESS;
}

int on_disconnect(int /*event*/, void* event_data, void* userdata)
{
    auto* st = static_cast<PluginState*>(userdata);
    auto* ev = static_cast<mosquitto_evt_disconnect*>(event_data);
    const char* cid = mosquitto_client_id(ev->client);
    if (cid)
        st->hub->on_disconnect(ev->client, cid);
    return MOSQ_ERR_SUCCESS;
}

std::string option(mosquitto_opt* opts, int count, const char* key)
{
    for (int i = 0; i < count; ++i)
        if (opts[i].key && std::strcmp(opts[i].key, key) == 0 && opts[i].value)
            return opts[i].value;
    return {};
}
} // namespace

extern "C"
{

    int mosquitto_plugin_version(int supported_version_count, const int* supported_versions)
    {
        for (int i = 0; i < supported_version_count; ++i)
            if (supported_versions[i] == 5)
                return 5;
        return -1;
    }

    int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier,
                              void** userdata,
                              struct mosquitto_opt* options,
                              int option_count)
    {
        std::string conf_path = option(options, option_count, "config");
        std::string state_dir = option(options, option_count, "state_dir");
        std::string secret_path = option(options, option_count, "control_secret_file");
        std::string text;
        if (conf_path.empty() || !read_file(conf_path, &text))
        {
            mosquitto_log_printf(MOSQ_LOG_ERR, "hub: cannot read emulator config '%s'",
                                 conf_path.c_str());
            return MOSQ_ERR_INVAL;
        }
        std::string why;
        auto cfg = hubemu::parse_config(text, &why);
        if (!cfg)
        {
            mosquitto_log_printf(MOSQ_LOG_ERR, "hub: %s: %s", conf_path.c_str(), why.c_str());
            return MOSQ_ERR_INVAL;
        }
        std::string secret;
        if (!secret_path.empty())
        {
            read_file(secret_path, &secret);
            while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
                secret.pop_back();
        }
        auto* st = new PluginState;
        st->id = identifier;
        st->state_dir = state_dir.empty() ? "." : state_dir;
        st->hub = std::make_unique<Hub>(std::move(*cfg), secret, st->outbox);
        std::string saved;
        if (read_file(st->state_dir + "/state.json", &saved) && !st->hub->load_state(saved))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "hub: state.json unreadable; starting empty");
        std::string journal_path = st->state_dir + "/messages.jsonl";
        std::string journal;
        if (read_file(journal_path, &journal))
        {
            std::istringstream in(journal);
            std::string line;
            while (std::getline(in, line))
                if (!line.empty())
                    st->hub->load_record(line);
        }
        st->journal = std::fopen(journal_path.c_str(), "ab");
        g_state = st;
        *userdata = st;
        mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, nullptr, st);
        mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, nullptr, st);
        mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, nullptr, st);
        mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, nullptr, st);
        mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, nullptr, st);
        mosquitto_log_printf(
            MOSQ_LOG_NOTICE, "hub: emulator plugin loaded: hub %s%s%s, %zu identities",
            st->hub->config().hub.c_str(), st->hub->config().edge.empty() ? "" : ", edge ",
            st->hub->config().edge.c_str(), st->hub->config().identities.size());
        return MOSQ_ERR_SUCCESS;
    }

    int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt* /*options*/, int /*count*/)
    {
        auto* st = static_cast<PluginState*>(userdata);
        if (!st)
            return MOSQ_ERR_SUCCESS;
        mosquitto_callback_unregister(st->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, nullptr);
        mosquitto_callback_unregister(st->id, MOSQ_EVT_ACL_CHECK, on_acl_check, nullptr);
        mosquitto_callback_unregister(st->id, MOSQ_EVT_MESSAGE, on_message, nullptr);
        mosquitto_callback_unregister(st->id, MOSQ_EVT_TICK, on_tick, nullptr);
        mosquitto_callback_unregister(st->id, MOSQ_EVT_DISCONNECT, on_disconnect, nullptr);
        save_state(*st);
        if (st->journal)
            (void)std::fclose(st->journal); // at shutdown; appends were checked when flushed
        delete st;
        g_state = nullptr;
        return MOSQ_ERR_SUCCESS;
    }

} // extern "C"
