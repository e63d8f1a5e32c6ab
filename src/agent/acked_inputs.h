// SPDX-License-Identifier: MIT
// The inputs of one MQTT connection (the hub's module input, or the `mqtt` source) between its
// session and its InputPipeline: decided in arrival order, acknowledged after the burst's one
// commit, in the same order (MQTT 3.1.1 §4.6).
//
// When the store is full, inputs wait unacknowledged in the pipeline's hold ring. A broker that
// keeps sending beyond it (mosquitto does not stop at an in-flight window for a persistent
// session's backlog) gets nothing more acknowledged: what is durable is acknowledged, everything
// after it is left with the broker and forgotten here, and once the store has drained the owner
// reconnects so the broker delivers those inputs again. Nothing is dropped.
#pragma once

#include "alert_log.h"
#include "input_pipeline.h"
#include "session.h"

#include <cstdint>
#include <string_view>

namespace ga
{

class AckedInputs
{
  public:
    AckedInputs(InputPipeline& pipeline, AlertLog& store, mqtt::Session& session, const char* who)
        : pipeline_(pipeline), store_(store), session_(session), who_(who)
    {
    }

    /// A sensor message; `bag` is its property bag to keep with the alert ({} for none).
    void on_input(const mqtt::Publish& m, std::string_view bag);
    /// A QoS 1 message of the same connection that is not an input: it keeps its place in the
    /// acknowledgement order.
    void on_other(const mqtt::Publish& m);
    /// End of a burst: one commit, then the acknowledgements.
    void burst_end();
    /// The store may have room again: held inputs get their turn.
    void retry();
    /// Acknowledgements that did not fit the send buffer before.
    void send_acks();
    /// True (once) when inputs were left with the broker and the store has drained, or enough
    /// time passed: the owner then reconnects to have them delivered again.
    [[nodiscard]] bool should_refetch(std::int64_t now_ms);
    /// The connection ended: forget what was held (the broker redelivers it).
    void reset();

    [[nodiscard]] std::uint64_t deferred() const { return deferred_; }

  private:
    void leave_with_broker();

    InputPipeline& pipeline_;
    AlertLog& store_;
    mqtt::Session& session_;
    const char* who_;
    std::size_t acks_owed_ = 0; // durable, not yet acknowledged (send buffer was full)
    bool left_ = false;
    std::int64_t left_since_ms_ = 0;
    std::uint64_t deferred_ = 0; // inputs left with the broker, delivered again later
};

} // namespace ga
