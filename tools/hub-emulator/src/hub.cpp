#include "hub.h"

#include "codec.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <ctime>

namespace hubemu
{
namespace
{
constexpr size_t kMaxRecordsInMemory = 50000;

// System properties edgeHub forwards to module inputs, in its order (protocol.md 5.1).
constexpr std::string_view kForwardedSystemProps[] = {
    "$.exp", "$.cid", "$.mid", "$.to", "$.uid", "$.ct", "$.ce", "$.schema", "$.ctime", "$.sub",
};

bool is_system(std::string_view key)
{
    return key.substr(0, 2) == "$.";
}

std::string print_and_delete(cJSON* j)
{
    char* s = cJSON_PrintUnformatted(j);
    std::string out = s ? s : "null";
    cJSON_free(s);
    cJSON_Delete(j);
    return out;
}

std::string json_string(std::string_view s)
{
    cJSON* j = cJSON_CreateString(std::string(s).c_str());
    return print_and_delete(j);
}

std::string error_json(const std::string& msg)
{
    return "{\"error\":" + json_string(msg) + "}";
}

/// Payload as JSON text: itself if it parses, null if empty, else a JSON string.
std::string payload_as_json(std::string_view payload)
{
    if (payload.empty())
        return "null";
    cJSON* j = cJSON_ParseWithLength(payload.data(), payload.size());
    if (j)
        return print_and_delete(j);
    return json_string(payload);
}

std::string iso_time(int64_t now_ms)
{
    auto t = static_cast<std::time_t>(now_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    (void)std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(now_ms % 1000));
    return out;
}

const char* str_item(const cJSON* obj, const char* name)
{
    const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(it) ? it->valuestring : nullptr;
}

double num_item(const cJSON* obj, const char* name, double dflt)
{
    const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}
} // namespace

Hub::Hub(Config cfg, std::string control_secret, Outbox& out)
    : cfg_(std::move(cfg)), control_secret_(std::move(control_secret)), out_(out)
{
    policy_.audience_hosts.push_back(cfg_.hub);
    if (!cfg_.edge.empty())
    {
        policy_.audience_hosts.emplace_back("localhost");
        policy_.audience_hosts.emplace_back("127.0.0.1");
    }
    for (const auto& g : cfg_.gateway_hosts)
        policy_.audience_hosts.push_back(g);
    policy_.clock_skew_s = cfg_.clock_skew_s;
    route_counts_.assign(cfg_.routes.size(), 0);
    for (const auto& i : cfg_.identities)
    {
        twins_.emplace(i.identity.id(), Twin{});
        clients_.emplace(i.identity.id(), Client{});
    }
}

AuthDecision Hub::on_auth(const void* conn,
                          std::string_view client_id,
                          std::string_view username,
                          std::string_view password,
                          bool clean_session,
                          int64_t now_ms)
{
    AuthDecision d;
    if (username == kControlUser)
    {
        if (client_id.substr(0, kControlPrefix.size()) == kControlPrefix &&
            !control_secret_.empty() && equal_constant_time(password, control_secret_))
        {
            control_clients_.insert(std::string(client_id));
            d.accept = true;
            return d;
        }
        d.why = "bad control credentials";
        count("auth_refused");
        return d;
    }
    Client& c = clients_[std::string(client_id)];
    // Kept so tests can check a client's retry timing from the hub's side.
    constexpr std::size_t kAttemptsKept = 64;
    c.attempts_ms.push_back(now_ms);
    if (c.attempts_ms.size() > kAttemptsKept)
        c.attempts_ms.pop_front();
    auto refuse = [&](int code, std::string why)
    {
        ++c.refused;
        count("auth_refused");
        dirty_ = true;
        d.accept = false;
        d.connack = code;
        d.why = std::move(why);
        return d;
    };
    if (now_ms < refuse_until_ms_)
        return refuse(refuse_code_, "refusing connections (hubctl refuse)");
    std::string why;
    auto user = parse_username(username, &why);
    if (!user)
        return refuse(cfg_.edge.empty() ? 5 : 3, why);
    if (user->identity.id() != client_id)
        return refuse(5, "client id '" + std::string(client_id) + "' does not match username '" +
                             user->identity.id() + "'");
    const IdentityConf* ic = cfg_.find(client_id);
    if (!ic)
        return refuse(5, "unknown identity '" + std::string(client_id) + "'");
    int64_t expiry = 0;
    if (!verify_sas(password, ic->key_b64, ic->identity, policy_, now_ms / 1000, &why, &expiry))
        return refuse(5, why);
    c.conn = conn;
    c.connected = true;
    c.expiry_s = expiry;
    ++c.connects;
    if (clean_session)
        c.sub_twin = c.sub_desired = c.sub_methods = false;
    count("auth_accepted");
    dirty_ = true;
    d.accept = true;
    d.connack = 0;
    return d;
}

bool Hub::on_acl(std::string_view client_id, std::string_view topic, int access, int qos)
{
    if (control_clients_.contains(std::string(client_id)))
    {
        if (access == kWrite)
            return topic.substr(0, 12) == "$hubctl/req/";
        if (access == kRead)
            return topic.substr(0, kControlPrefix.size()) == kControlPrefix;
        return false;
    }
    const IdentityConf* ic = cfg_.find(client_id);
    if (!ic)
        return false;
    const Identity& who = ic->identity;
    Client& c = clients_[std::string(client_id)];
    switch (access)
    {
    case kRead:
        return read_allowed(topic, who);
    case kWrite:
    {
        if (qos > 1 || classify_publish(topic, who).kind == PubKind::Invalid)
        {
            out_.log("hub: " + std::string(client_id) + " published to '" + std::string(topic) +
                     "' (qos " + std::to_string(qos) + "), not allowed: closing the connection");
            count("denied_publish");
            pending_kicks_.emplace_back(client_id);
            return false;
        }
        return true;
    }
    case kSubscribe:
    {
        if (!subscribe_allowed(topic, who))
        {
            out_.log("hub: " + std::string(client_id) + " may not subscribe to '" +
                     std::string(topic) + "'");
            count("denied_subscribe");
            return false;
        }
        switch (subscription_kind(topic))
        {
        case SubKind::TwinResponses:
            c.sub_twin = true;
            break;
        case SubKind::DesiredPatches:
            c.sub_desired = true;
            break;
        case SubKind::Methods:
            c.sub_methods = true;
            break;
        default:
            break;
        }
        dirty_ = true;
        return true;
    }
    case kUnsubscribe:
    {
        switch (subscription_kind(topic))
        {
        case SubKind::TwinResponses:
            c.sub_twin = false;
            break;
        case SubKind::DesiredPatches:
            c.sub_desired = false;
            break;
        case SubKind::Methods:
            c.sub_methods = false;
            break;
        default:
            break;
        }
        dirty_ = true;
        return true;
    }
    default:
        return false;
    }
}

bool Hub::on_message(std::string_view client_id,
                     std::string_view topic,
                     std::string_view payload,
                     int qos,
                     int64_t now_ms)
{
    (void)qos;
    std::string id(client_id);
    if (control_clients_.contains(id))
    {
        constexpr std::string_view kReq = "$hubctl/req/";
        if (topic.substr(0, kReq.size()) == kReq)
            handle_control(client_id, topic.substr(kReq.size()), payload, now_ms);
        return false;
    }
    const IdentityConf* ic = cfg_.find(client_id);
    if (!ic)
        return false;
    const Identity& who = ic->identity;
    PubInfo info = classify_publish(topic, who);
    Twin& twin = twins_[id];
    switch (info.kind)
    {
    case PubKind::TwinGet:
    {
        count("twin_get");
        auto f = get_faults_.find(id);
        if (f != get_faults_.end() && !f->second.empty())
        {
            const int status = f->second.front();
            f->second.pop_front();
            if (status == 0)
            {
                count("twin_get_dropped");
                out_.log("hub: twin GET of " + id + " dropped unanswered (hubctl twin drop-get)");
                return false;
            }
            count("twin_get_failed");
            out_.log("hub: twin GET of " + id + " answered " + std::to_string(status) +
                     " (hubctl twin fail-get)");
            out_.publish(id, "$iothub/twin/res/" + std::to_string(status) + "/?$rid=" + info.rid,
                         R"({"errorCode":)" + std::to_string(status * 1000 + 1) +
                             R"(,"message":"injected by hubctl twin fail-get"})",
                         0);
            return false;
        }
        out_.publish(id, "$iothub/twin/res/200/?$rid=" + info.rid, twin.to_json(), 0);
        return false;
    }
    case PubKind::TwinReported:
    {
        count("twin_reported");
        std::string why;
        auto v = twin.patch_reported(payload, &why);
        if (!v)
        {
            out_.publish(id, "$iothub/twin/res/400/?$rid=" + info.rid,
                         R"({"errorCode":400004,"message":)" + json_string(why) + "}", 0);
            return false;
        }
        dirty_ = true;
        out_.publish(id,
                     "$iothub/twin/res/204/?$rid=" + info.rid + "&$version=" + std::to_string(*v),
                     "", 0);
        return false;
    }
    case PubKind::MethodResponse:
    {
        auto it = pending_.find(info.rid);
        if (it == pending_.end() || it->second.target != id)
        {
            count("method_response_unmatched");
            return false;
        }
        count("methods_answered");
        reply(it->second.control_client, it->second.reqid,
              "{\"status\":" + std::to_string(info.status) +
                  ",\"payload\":" + payload_as_json(payload) + "}");
        pending_.erase(it);
        return false;
    }
    case PubKind::Telemetry:
        handle_telemetry(who, topic, info.bag, payload, now_ms);
        return false;
    case PubKind::Invalid:
        return false;
    }
    return false;
}

void Hub::handle_telemetry(const Identity& who,
                           std::string_view topic,
                           std::string_view bag,
                           std::string_view payload,
                           int64_t now_ms)
{
    count("telemetry_in");
    auto props = parse_bag(bag);
    if (!props)
    {
        count("telemetry_bad_bag");
        out_.log("hub: " + who.id() +
                 " sent a property bag with a broken escape: " + std::string(bag));
        return;
    }
    if (cfg_.edge.empty())
    {
        record_upstream(who, topic, *props, payload, now_ms);
        return;
    }
    auto on = bag_get(*props, "$.on");
    std::string source = message_source(who, on);
    bool upstream_done = false;
    for (size_t i = 0; i < cfg_.routes.size(); ++i)
    {
        const Route& r = cfg_.routes[i];
        if (!route_matches(r, source, who.is_module()))
            continue;
        ++route_counts_[i];
        if (r.upstream)
        {
            if (!upstream_done)
                record_upstream(who, topic, *props, payload, now_ms);
            upstream_done = true;
            continue;
        }
        // edgeHub re-encodes: user properties, mapped system properties, then $.cdid/$.cmid.
        PropBag out;
        for (const auto& p : *props)
            if (!is_system(p.key))
                out.push_back(p);
        for (auto key : kForwardedSystemProps)
            for (const auto& p : *props)
                if (p.key == key)
                    out.push_back(p);
        out.push_back({"$.cdid", who.device});
        if (who.is_module())
            out.push_back({"$.cmid", who.module});
        deliver_input(cfg_.edge, r.target_module, r.target_input, out, payload);
    }
    if (!upstream_done &&
        std::none_of(cfg_.routes.begin(), cfg_.routes.end(),
                     [&](const Route& r) { return route_matches(r, source, who.is_module()); }))
        count("telemetry_unrouted");
}

void Hub::deliver_input(const std::string& device,
                        const std::string& module,
                        const std::string& input,
                        const PropBag& props,
                        std::string_view payload)
{
    std::string topic = "devices/" + device + "/modules/" + module + "/inputs/" + input;
    std::string bag = encode_bag(props);
    if (!bag.empty())
        topic += "/" + bag;
    count("inputs_sent");
    out_.publish("", topic, std::string(payload), 1);
}

void Hub::record_upstream(const Identity& who,
                          std::string_view topic,
                          const PropBag& props,
                          std::string_view payload,
                          int64_t now_ms)
{
    count("upstream");
    cJSON* rec = cJSON_CreateObject();
    int64_t seq = next_seq_++;
    cJSON_AddNumberToObject(rec, "seq", static_cast<double>(seq));
    cJSON_AddStringToObject(rec, "time", iso_time(now_ms).c_str());
    cJSON_AddStringToObject(rec, "from", who.id().c_str());
    cJSON_AddStringToObject(rec, "topic", std::string(topic).c_str());
    cJSON* p = cJSON_AddObjectToObject(rec, "properties");
    for (const auto& prop : props)
    {
        if (cJSON_GetObjectItemCaseSensitive(p, prop.key.c_str()))
            continue;
        if (prop.value)
            cJSON_AddStringToObject(p, prop.key.c_str(), prop.value->c_str());
        else
            cJSON_AddNullToObject(p, prop.key.c_str());
    }
    cJSON_AddStringToObject(rec, "body_b64", base64_encode(payload).c_str());
    if (is_valid_utf8(payload) && payload.find('\0') == std::string_view::npos)
        cJSON_AddStringToObject(rec, "body", std::string(payload).c_str());
    std::string line = print_and_delete(rec);
    records_.push_back({seq, line});
    if (records_.size() > kMaxRecordsInMemory)
        records_.pop_front();
    new_records_.push_back(line);
    for (const auto& f : followers_)
        out_.publish(f, "$hubctl/msg", line, 1);
}

std::vector<std::string> Hub::take_new_records()
{
    std::vector<std::string> out;
    out.swap(new_records_);
    return out;
}

void Hub::load_record(std::string_view line)
{
    cJSON* j = cJSON_ParseWithLength(line.data(), line.size());
    if (!j)
        return;
    auto seq = static_cast<int64_t>(num_item(j, "seq", 0));
    cJSON_Delete(j);
    if (seq <= 0)
        return;
    records_.push_back({seq, std::string(line)});
    if (records_.size() > kMaxRecordsInMemory)
        records_.pop_front();
    next_seq_ = std::max(next_seq_, seq + 1);
}

void Hub::on_disconnect(const void* conn, std::string_view client_id)
{
    std::string id(client_id);
    if (control_clients_.erase(id))
    {
        followers_.erase(id);
        return;
    }
    auto it = clients_.find(id);
    if (it != clients_.end() && it->second.conn == conn)
    {
        it->second.connected = false;
        it->second.conn = nullptr;
    }
}

void Hub::on_tick(int64_t now_ms)
{
    for (auto& [id, c] : clients_)
    {
        if (c.connected && c.expiry_s > 0 && now_ms / 1000 >= c.expiry_s + cfg_.clock_skew_s)
        {
            out_.log("hub: SAS token of " + id + " expired: closing the connection");
            count("token_expired");
            pending_kicks_.push_back(id);
            c.expiry_s = 0;
        }
    }
    for (auto it = pending_.begin(); it != pending_.end();)
    {
        if (now_ms >= it->second.deadline_ms)
        {
            count("methods_timeout");
            reply(it->second.control_client, it->second.reqid,
                  "{\"status\":504,\"payload\":{\"errorCode\":504101,\"message\":\"Timed out "
                  "waiting for the response from device.\"}}");
            it = pending_.erase(it);
        }
        else
            ++it;
    }
    std::vector<std::string> kicks;
    kicks.swap(pending_kicks_);
    for (const auto& id : kicks)
        out_.kick(id);
}

void Hub::reply(const std::string& control_client, std::string_view reqid, const std::string& json)
{
    out_.publish(control_client, "$hubctl/res/" + std::string(reqid), json, 1);
}

void Hub::handle_control(std::string_view client_id,
                         std::string_view reqid,
                         std::string_view payload,
                         int64_t now_ms)
{
    std::string cc(client_id);
    cJSON* req = cJSON_ParseWithLength(payload.data(), payload.size());
    if (!req || !cJSON_IsObject(req))
    {
        cJSON_Delete(req);
        reply(cc, reqid, error_json("request is not a JSON object"));
        return;
    }
    std::string cmd = str_item(req, "cmd") ? str_item(req, "cmd") : "";
    std::string id = str_item(req, "id") ? str_item(req, "id") : "";
    auto need_identity = [&]() -> const IdentityConf*
    {
        const IdentityConf* ic = cfg_.find(id);
        if (!ic)
            reply(cc, reqid, error_json("unknown identity '" + id + "'"));
        return ic;
    };
    if (cmd == "twin-show")
    {
        if (need_identity())
            reply(cc, reqid, twins_[id].to_json());
    }
    else if (cmd == "twin-set-desired")
    {
        const char* patch = str_item(req, "patch");
        if (need_identity())
        {
            std::string why;
            auto push = twins_[id].patch_desired(patch ? patch : "", &why);
            if (!push)
                reply(cc, reqid, error_json(why));
            else
            {
                count("twin_desired");
                dirty_ = true;
                Client& c = clients_[id];
                bool pushed = c.connected && c.sub_desired;
                if (pushed)
                    out_.publish(id,
                                 "$iothub/twin/PATCH/properties/desired/?$version=" +
                                     std::to_string(twins_[id].desired_version()),
                                 *push, 0);
                reply(cc, reqid,
                      "{\"version\":" + std::to_string(twins_[id].desired_version()) +
                          ",\"pushed\":" + (pushed ? "true" : "false") + "}");
            }
        }
    }
    else if (cmd == "twin-fail-get" || cmd == "twin-drop-get")
    {
        const bool drop = cmd == "twin-drop-get";
        const int status = drop ? 0 : static_cast<int>(num_item(req, "status", 500));
        const auto n = static_cast<int64_t>(num_item(req, "count", 1));
        if (!drop && (status < 100 || status > 999 || status == 200))
            reply(cc, reqid, error_json("fail-get status must be 100..999 and not 200"));
        else if (n < 0 || n > 1000)
            reply(cc, reqid, error_json("count must be 0..1000"));
        else if (need_identity())
        {
            auto& q = get_faults_[id];
            for (int64_t k = 0; k < n; ++k)
                q.push_back(status);
            reply(cc, reqid, "{\"pending_faults\":" + std::to_string(q.size()) + "}");
        }
    }
    else if (cmd == "twin-reset")
    {
        // Deleting and re-creating the identity: a new twin (versions from 1) and, as on the
        // hub, the connection of the deleted identity ends.
        const char* desired = str_item(req, "desired");
        if (need_identity())
        {
            Twin fresh;
            std::string why;
            if (desired && !fresh.seed_desired(desired, &why))
                reply(cc, reqid, error_json("desired: " + why));
            else
            {
                twins_[id] = std::move(fresh);
                count("twin_reset");
                dirty_ = true;
                const bool was = clients_[id].connected;
                if (was)
                    pending_kicks_.push_back(id);
                reply(cc, reqid,
                      "{\"version\":" + std::to_string(twins_[id].desired_version()) +
                          ",\"dropped\":" + (was ? "true" : "false") + "}");
            }
        }
    }
    else if (cmd == "method")
    {
        const char* name = str_item(req, "name");
        const char* body = str_item(req, "payload");
        double timeout_s = num_item(req, "timeout", 30);
        if (need_identity())
        {
            count("methods_invoked");
            Client& c = clients_[id];
            if (!name || !*name)
                reply(cc, reqid, error_json("method name missing"));
            else if (!c.connected || !c.sub_methods)
            {
                count("methods_404");
                reply(cc, reqid,
                      std::string(R"({"status":404,"payload":{"errorCode":404103,"message":)") +
                          json_string(c.connected ? "Device is not subscribed to direct methods."
                                                  : "Timed out waiting for device to connect.") +
                          "}}");
            }
            else
            {
                std::string rid = std::to_string(next_rid_++);
                pending_[rid] = {id, cc, std::string(reqid),
                                 now_ms + static_cast<int64_t>(timeout_s * 1000)};
                out_.publish(id, "$iothub/methods/POST/" + std::string(name) + "/?$rid=" + rid,
                             body ? body : "", 0);
            }
        }
    }
    else if (cmd == "messages")
    {
        auto since = static_cast<int64_t>(num_item(req, "since", 0));
        auto limit = static_cast<size_t>(num_item(req, "limit", 1e9));
        std::string out = "{\"next\":" + std::to_string(next_seq_) + ",\"messages\":[";
        bool first = true;
        size_t n = 0;
        for (const auto& r : records_)
        {
            if (r.seq <= since || n >= limit)
                continue;
            if (!first)
                out += ',';
            out += r.line;
            first = false;
            ++n;
        }
        out += "]}";
        reply(cc, reqid, out);
    }
    else if (cmd == "follow")
    {
        followers_.insert(cc);
        reply(cc, reqid, R"({"following":true,"next":)" + std::to_string(next_seq_) + "}");
    }
    else if (cmd == "send-input")
    {
        const char* input = str_item(req, "input");
        const char* b64 = str_item(req, "body_b64");
        if (need_identity())
        {
            const IdentityConf* ic = cfg_.find(id);
            auto body = base64_decode(b64 ? b64 : "");
            if (!ic->identity.is_module() || !input || !*input || !body)
                reply(cc, reqid,
                      error_json("send-input needs a module identity, an input and a body"));
            else
            {
                PropBag props;
                const cJSON* jp = cJSON_GetObjectItemCaseSensitive(req, "props");
                for (const cJSON* it = jp ? jp->child : nullptr; it; it = it->next)
                    if (it->string && cJSON_IsString(it))
                        props.push_back({it->string, std::string(it->valuestring)});
                if (!bag_get(props, "$.cdid"))
                    props.push_back({"$.cdid", ic->identity.device});
                if (!bag_get(props, "$.cmid"))
                    props.push_back({"$.cmid", "hubctl"});
                deliver_input(ic->identity.device, ic->identity.module, input, props, *body);
                reply(cc, reqid, "{\"sent\":true}");
            }
        }
    }
    else if (cmd == "drop")
    {
        if (need_identity())
        {
            bool was = clients_[id].connected;
            pending_kicks_.push_back(id);
            count("dropped");
            reply(cc, reqid, std::string("{\"dropped\":") + (was ? "true" : "false") + "}");
        }
    }
    else if (cmd == "refuse")
    {
        double seconds = num_item(req, "seconds", 0);
        int code = static_cast<int>(num_item(req, "code", 3));
        if (code != 3 && code != 5)
            reply(cc, reqid, error_json("refuse code must be 3 or 5"));
        else
        {
            refuse_code_ = code;
            refuse_until_ms_ = now_ms + static_cast<int64_t>(seconds * 1000);
            reply(cc, reqid,
                  "{\"refusing_until_ms\":" + std::to_string(refuse_until_ms_) +
                      ",\"code\":" + std::to_string(code) + "}");
        }
    }
    else if (cmd == "connections")
    {
        std::string out = "{\"identities\":[";
        bool first = true;
        for (const auto& [cid, c] : clients_)
        {
            if (!first)
                out += ',';
            first = false;
            out += "{\"id\":" + json_string(cid) +
                   ",\"known\":" + (cfg_.find(cid) ? "true" : "false") +
                   ",\"connected\":" + (c.connected ? "true" : "false") +
                   ",\"connects\":" + std::to_string(c.connects) +
                   ",\"refused\":" + std::to_string(c.refused) +
                   ",\"token_expiry\":" + std::to_string(c.expiry_s) + ",\"attempts_ms\":[";
            for (std::size_t k = 0; k < c.attempts_ms.size(); ++k)
                out += (k == 0 ? "" : ",") + std::to_string(c.attempts_ms[k]);
            out += "]}";
        }
        out += "],\"refusing\":" + std::string(now_ms < refuse_until_ms_ ? "true" : "false") + "}";
        reply(cc, reqid, out);
    }
    else if (cmd == "stats")
    {
        cJSON* root = cJSON_CreateObject();
        cJSON* counters = cJSON_AddObjectToObject(root, "counters");
        for (const auto& [k, v] : counters_)
            cJSON_AddNumberToObject(counters, k.c_str(), static_cast<double>(v));
        cJSON* routes = cJSON_AddArrayToObject(root, "routes");
        for (size_t i = 0; i < cfg_.routes.size(); ++i)
        {
            cJSON* r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "route", cfg_.routes[i].text.c_str());
            cJSON_AddNumberToObject(r, "messages", static_cast<double>(route_counts_[i]));
            cJSON_AddItemToArray(routes, r);
        }
        cJSON_AddNumberToObject(root, "recorded", static_cast<double>(next_seq_ - 1));
        cJSON_AddNumberToObject(root, "pending_methods", static_cast<double>(pending_.size()));
        reply(cc, reqid, print_and_delete(root));
    }
    else if (cmd == "ping")
    {
        reply(cc, reqid, "{\"pong\":true}");
    }
    else
    {
        reply(cc, reqid, error_json("unknown command '" + cmd + "'"));
    }
    cJSON_Delete(req);
}

std::string Hub::state_json() const
{
    cJSON* root = cJSON_CreateObject();
    cJSON* twins = cJSON_AddObjectToObject(root, "twins");
    for (const auto& [id, t] : twins_)
    {
        std::string tj = t.to_json();
        cJSON_AddItemToObject(twins, id.c_str(), cJSON_ParseWithLength(tj.data(), tj.size()));
    }
    cJSON* clients = cJSON_AddObjectToObject(root, "clients");
    for (const auto& [id, c] : clients_)
    {
        cJSON* o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "connects", static_cast<double>(c.connects));
        cJSON_AddNumberToObject(o, "refused", static_cast<double>(c.refused));
        cJSON_AddBoolToObject(o, "sub_twin", c.sub_twin);
        cJSON_AddBoolToObject(o, "sub_desired", c.sub_desired);
        cJSON_AddBoolToObject(o, "sub_methods", c.sub_methods);
        cJSON_AddItemToObject(clients, id.c_str(), o);
    }
    cJSON* counters = cJSON_AddObjectToObject(root, "counters");
    for (const auto& [k, v] : counters_)
        cJSON_AddNumberToObject(counters, k.c_str(), static_cast<double>(v));
    return print_and_delete(root);
}

bool Hub::load_state(std::string_view json)
{
    cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
    if (!root)
        return false;
    const cJSON* twins = cJSON_GetObjectItemCaseSensitive(root, "twins");
    for (const cJSON* t = twins ? twins->child : nullptr; t; t = t->next)
    {
        if (!t->string || !cfg_.find(t->string))
            continue;
        char* s = cJSON_PrintUnformatted(t);
        twins_[t->string].load(s ? s : "");
        cJSON_free(s);
    }
    const cJSON* clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
    for (const cJSON* c = clients ? clients->child : nullptr; c; c = c->next)
    {
        if (!c->string)
            continue;
        Client& cl = clients_[c->string];
        cl.connects = static_cast<int64_t>(num_item(c, "connects", 0));
        cl.refused = static_cast<int64_t>(num_item(c, "refused", 0));
        cl.sub_twin = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "sub_twin"));
        cl.sub_desired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "sub_desired"));
        cl.sub_methods = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "sub_methods"));
    }
    const cJSON* counters = cJSON_GetObjectItemCaseSensitive(root, "counters");
    for (const cJSON* c = counters ? counters->child : nullptr; c; c = c->next)
        if (c->string && cJSON_IsNumber(c))
            counters_[c->string] = static_cast<int64_t>(c->valuedouble);
    cJSON_Delete(root);
    return true;
}

} // namespace hubemu
