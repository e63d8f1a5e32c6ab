// Topic scoping and property bags (protocol.md sections 4-8).
#pragma once

#include "auth.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubemu
{

struct Prop
{
    std::string key;
    std::optional<std::string> value; // nullopt: key without '='
};
using PropBag = std::vector<Prop>;

/// Parses "k=v&k2=v2" after stripping one trailing '/' and a leading '?'. Keys and values are
/// percent-decoded ('+' kept). nullopt on a broken escape.
std::optional<PropBag> parse_bag(std::string_view bag);
/// Encodes a bag like edgeHub (EscapeDataString, uppercase hex, '$' -> %24).
std::string encode_bag(const PropBag& bag);
/// First value of key, if present (a null value gives "").
std::optional<std::string> bag_get(const PropBag& bag, std::string_view key);

enum class PubKind
{
    Telemetry,
    TwinGet,
    TwinReported,
    MethodResponse,
    Invalid,
};

struct PubInfo
{
    PubKind kind = PubKind::Invalid;
    std::string rid; // twin / method requests
    int status = 0;  // method response
    std::string bag; // telemetry: raw property bag text
};

/// What a publish on `topic` by `who` is, or Invalid if the identity may not publish there.
PubInfo classify_publish(std::string_view topic, const Identity& who);
/// Whether `who` may SUBSCRIBE to `filter`.
bool subscribe_allowed(std::string_view filter, const Identity& who);
/// Whether a message on `topic` may be delivered to `who` (the broker's per-client read check).
bool read_allowed(std::string_view topic, const Identity& who);

enum class SubKind
{
    None,
    TwinResponses,
    DesiredPatches,
    Methods,
    Inputs,
    C2D,
};
/// Which hub feature a (permitted) filter subscribes to.
SubKind subscription_kind(std::string_view filter);

/// MQTT topic filter match ('+' and '#').
bool topic_matches(std::string_view filter, std::string_view topic);

} // namespace hubemu
