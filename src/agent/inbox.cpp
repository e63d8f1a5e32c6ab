// SPDX-License-Identifier: MIT
#include "inbox.h"

#include <algorithm>
#include <cstdint>
#include <unistd.h>

namespace ga
{

bool Inbox::push(EventType type,
                 std::int32_t code,
                 std::uint64_t seq,
                 std::uint32_t generation,
                 std::string_view topic,
                 std::string_view payload)
{
    const Header h{type,
                   code,
                   seq,
                   generation,
                   static_cast<std::uint32_t>(topic.size()),
                   static_cast<std::uint32_t>(payload.size())};
    {
        const std::lock_guard<std::mutex> lock(mu_);
        if (ring_.free_space() < sizeof h + topic.size() + payload.size())
            return false;
        ring_.push(&h, sizeof h);
        ring_.push(topic.data(), topic.size());
        ring_.push(payload.data(), payload.size());
    }
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
    return true;
}

bool Inbox::pop(Event& ev, std::span<char> topic, std::span<char> payload)
{
    const std::lock_guard<std::mutex> lock(mu_);
    if (ring_.size() < sizeof(Header))
        return false;
    Header h{};
    ring_.read(0, &h, sizeof h);
    ev.type = h.type;
    ev.code = h.code;
    ev.seq = h.seq;
    ev.generation = h.generation;
    ev.topic_len = std::min<std::size_t>(h.topic_len, topic.size());
    ev.payload_len = std::min<std::size_t>(h.payload_len, payload.size());
    ev.truncated = ev.topic_len < h.topic_len || ev.payload_len < h.payload_len;
    ring_.read(sizeof h, topic.data(), ev.topic_len);
    ring_.read(sizeof h + h.topic_len, payload.data(), ev.payload_len);
    ring_.pop(sizeof h + h.topic_len + h.payload_len);
    return true;
}

} // namespace ga
