// SPDX-License-Identifier: MIT
#include "acked_inputs.h"

#include "port.h"

namespace ga
{
namespace
{
// Held inputs stay well below the session's bound on unacknowledged inputs (kMaxWindow).
constexpr std::size_t kMaxHeldInputs = 512;
constexpr std::int64_t kRefetchAfterMs = 30000;
} // namespace

void AckedInputs::on_input(const mqtt::Publish& m, std::string_view bag)
{
    if (left_)
    {
        if (m.qos == 1)
        {
            // Not acknowledged, and forgotten: delivered again after the reconnect.
            session_.leave_inbound_after(acks_owed_);
            ++deferred_;
        }
        return;
    }
    InputPipeline::Offer o = InputPipeline::Offer::Decided;
    if (m.oversize > 0)
    {
        // Discarded by the link for its size: counted like any rejection, acknowledged in order.
        pipeline_.reject_oversize(m.oversize);
        if (m.qos == 1)
            o = pipeline_.offer_other();
    }
    else
    {
        // Decided now, appended without sync; acknowledged after the burst's one commit.
        o = pipeline_.offer(m.payload, bag, port::wall_time_s(), m.qos == 1);
    }
    if (o == InputPipeline::Offer::Overflow || pipeline_.held() >= kMaxHeldInputs)
        leave_with_broker();
}

void AckedInputs::on_other(const mqtt::Publish& m)
{
    if (m.qos != 1)
        return;
    if (left_)
        session_.leave_inbound_after(acks_owed_);
    else if (pipeline_.offer_other() == InputPipeline::Offer::Overflow)
        leave_with_broker();
}

void AckedInputs::burst_end()
{
    acks_owed_ += pipeline_.commit();
    send_acks();
}

void AckedInputs::retry()
{
    if (pipeline_.held() == 0)
        return;
    pipeline_.retry(port::wall_time_s());
    acks_owed_ += pipeline_.commit();
    send_acks();
}

void AckedInputs::send_acks()
{
    if (acks_owed_ != 0 && session_.ack_inbound(acks_owed_))
        acks_owed_ = 0;
}

void AckedInputs::leave_with_broker()
{
    acks_owed_ += pipeline_.commit();
    send_acks();
    pipeline_.reset();
    session_.leave_inbound_after(acks_owed_);
    left_ = true;
    left_since_ms_ = port::monotonic_ms();
    port::log(port::Level::Warning,
              "%s: the store is full and the broker keeps sending; inputs are left with the "
              "broker until the alerts in the store are delivered, then fetched again",
              who_);
}

bool AckedInputs::should_refetch(std::int64_t now_ms)
{
    if (!left_ || (store_.depth() != 0 && now_ms - left_since_ms_ < kRefetchAfterMs))
        return false;
    port::log(port::Level::Info,
              "%s: room again (%llu alert(s) queued); reconnecting to fetch the inputs left with "
              "the broker (%llu so far)",
              who_, static_cast<unsigned long long>(store_.depth()),
              static_cast<unsigned long long>(deferred_));
    left_ = false;
    return true;
}

void AckedInputs::reset()
{
    pipeline_.reset();
    acks_owed_ = 0;
    left_ = false;
}

} // namespace ga
