// SPDX-License-Identifier: MIT
// The agent's counters: logged periodically and reported as agentStats.
#pragma once

#include "json_scan.h"

#include <array>
#include <cstdint>

namespace ga
{

struct Stats
{
    std::uint64_t messages_received = 0;
    std::uint64_t source_dropped = 0;  // lost before the agent saw them (UDP socket overflow)
    std::uint64_t alerts_sent = 0;     // acknowledged by the hub
    std::uint64_t alerts_accepted = 0; // decided above the threshold and queued for sending
    std::array<std::uint64_t, kVerdictCount>
        rejected{};                            // indexed by Verdict; Above/NotAbove unused
    std::uint64_t rejected_bad_properties = 0; // inputs whose property bag cannot be forwarded
    std::uint64_t twin_patches = 0;            // desired patches received (any property)
    std::uint64_t twin_patches_applied = 0;    // newer than the last applied $version and taken
    std::uint64_t threshold_changes = 0;
    std::uint64_t reconnects = 0;
    std::uint64_t queue_depth = 0;
    std::uint64_t queue_dropped = 0;
    std::uint64_t queue_not_persisted = 0; // accepted while the journal could not be written
    std::uint64_t alerts_resent = 0;       // sent again after a reconnect (at least once)
    std::uint64_t inputs_waited = 0;       // inputs left unacknowledged until the store had room
    std::uint64_t queue_corrupt = 0;       // stored records skipped for a bad checksum
    std::uint64_t store_commits = 0;       // fdatasync calls of the store (group commit)
};

} // namespace ga
