// SPDX-License-Identifier: MIT
// The hand-over from library threads (paho callbacks) to the event loop: a bounded queue of events
// copied into one fixed ring, plus an eventfd that wakes the loop. Library threads never touch
// agent state; they only push here.
#pragma once

#include "byte_ring.h"

#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

namespace ga
{

enum class EventType : std::uint8_t
{
    Connected,
    ConnectFailed,  // code: CONNACK return code or paho error
    ConnectionLost, // code: -1 when the agent asked for the disconnect
    Subscribed,     // code: 0 ok, else the number of refused filters
    Message,        // topic + payload (twin responses, desired patches, method requests)
    InputDecided,   // code: Verdict; seq: store sequence when stored
    PublishAcked,   // seq: store sequence (low 32 bits)
    PublishFailed,  // seq as above
    StoreError,     // the store could not persist an accepted alert; code: errno
};

struct Event
{
    EventType type = EventType::Connected;
    std::int32_t code = 0;
    std::uint64_t seq = 0;
    std::uint32_t generation = 0; // hub link connection generation the event belongs to
    std::size_t topic_len = 0;
    std::size_t payload_len = 0;
    bool truncated = false; // payload did not fit the reader's buffer
};

class Inbox
{
  public:
    Inbox(std::size_t capacity_bytes, int wake_fd) : ring_(capacity_bytes), wake_fd_(wake_fd) {}

    /// Thread-safe. False when the queue is full (the caller decides: retry later or count).
    bool push(EventType type,
              std::int32_t code,
              std::uint64_t seq,
              std::uint32_t generation,
              std::string_view topic = {},
              std::string_view payload = {});
    /// Loop thread only. Copies topic and payload into the caller's buffers.
    bool pop(Event& ev, std::span<char> topic, std::span<char> payload);

  private:
    struct Header
    {
        EventType type;
        std::int32_t code;
        std::uint64_t seq;
        std::uint32_t generation;
        std::uint32_t topic_len;
        std::uint32_t payload_len;
    };
    std::mutex mu_;
    ByteRing ring_;
    int wake_fd_;
};

} // namespace ga
