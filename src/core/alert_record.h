// SPDX-License-Identifier: MIT
// The layout of an alert in the store: the input's forwarded properties travel with the payload,
// so a re-send after a reconnect or a restart carries the same properties as the first send.
//
//   [u8 0x01][u8 ForwardedFlag bits][u16 LE forwarded length][forwarded properties][payload]
//
// The forwarded properties are the re-encoded bag text copy_forwarded_properties wrote, ready
// to be copied into a topic. A record that does not start with 0x01 is a payload alone (stores
// written before properties travelled): a JSON text cannot start with that byte.
#pragma once

#include "buf_writer.h"
#include "topics.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ga
{

inline constexpr std::size_t kAlertHeadFixed = 4;
/// The forwarded properties an alert may keep; the whole head then fits 4 KiB, which is the
/// room the store's record bound leaves beside the largest payload.
inline constexpr std::size_t kMaxForwardedBag = 4096 - kAlertHeadFixed;
inline constexpr std::size_t kMaxAlertHead = kAlertHeadFixed + kMaxForwardedBag;

/// Writes the record head for an input with the encoded property bag `input_bag` (empty: none)
/// into `out`, which must hold kMaxAlertHead bytes; `size` is the head's length on Ok.
[[nodiscard]] ForwardResult
build_alert_head(std::string_view input_bag, std::span<char> out, std::size_t& size);

struct AlertRecord
{
    std::uint8_t present = 0;   // ForwardedFlag bits
    std::string_view forwarded; // encoded properties, as copy_forwarded_properties wrote them
    std::string_view payload;
};
/// Splits a stored record; nullopt when a record with a head does not hold together.
[[nodiscard]] std::optional<AlertRecord> parse_alert_record(std::string_view record);

/// The message id of an alert whose input had none: "ga-<store id, 16 hex>-<seq>". The store id
/// is created once per store and the seq is the store's, so every re-send of an alert, also
/// after a restart, carries the same id and no two alerts of a store share one.
inline constexpr std::size_t kMaxGeneratedIdLen = 3 + 16 + 1 + 20;
void append_alert_message_id(std::uint64_t store_id, std::uint64_t seq, BufWriter& out);

} // namespace ga
