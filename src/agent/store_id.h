// SPDX-License-Identifier: MIT
// The store's identity: a random 64-bit id created once per state dir and kept in
// `<state dir>/store-id`. With the store's sequence numbers it makes the message ids of alerts
// whose input had none ("ga-<id>-<seq>"): the same on every re-send, also after a restart, and
// never the same for two alerts, which is what lets a consumer drop at-least-once duplicates.
#pragma once

#include <cstdint>
#include <string>

namespace ga
{

/// Reads `<dir>/store-id`, or creates it (written atomically) when it is missing. When it cannot
/// be read or written, a random id for this process only, with a log line: re-sends after a
/// restart then carry new ids. An empty `dir` (a store in memory) gets a per-process id too.
[[nodiscard]] std::uint64_t load_store_id(const std::string& dir);

} // namespace ga
