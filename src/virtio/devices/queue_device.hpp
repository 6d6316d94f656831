// Common plumbing for devices whose work is "take chains from a queue, do
// something, return them": it keeps the activated queues, the guest memory
// and the interrupt, under one lock, and does the bookkeeping of a bad chain.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "base/log.hpp"
#include "virtio/devices/virtio_device.hpp"

namespace kvmkit::virtio {

class QueueDevice : public VirtioDevice {
public:
    base::Result<void> activate(uint64_t features, std::vector<QueueConfig> queues, memory::GuestMemory& mem,
                                VirtioInterrupt& irq) override;
    void reset() override;
    uint64_t bad_chains() const { return bad_chains_; }
    // requests (chains completed), bytes_from_guest (device-readable bytes of
    // those chains), bytes_to_guest (bytes the device wrote), bad_chains.
    IoCounters io_counters() const override;

protected:
    // Pops every available chain of `queue` and hands it to `handle`, which
    // returns the number of bytes it wrote; returns chains to the used ring
    // and interrupts the driver if it wants. Bad chains are returned with 0
    // bytes written (their head is known) or skipped (a head out of range),
    // and counted; the queue goes on. A broken queue (Virtqueue::broken())
    // stops the loop and asks the transport for DEVICE_NEEDS_RESET.
    // Called with mutex_ held.
    template <typename Handler>
    void drain(uint16_t queue, Handler&& handle) {
        if (queue >= queues_.size() || !queues_[queue]) return;
        auto& vq = *queues_[queue];
        bool used = false;
        for (;;) {
            auto next = vq.pop();
            if (!next) {
                // With EVENT_IDX, re-arm and look again so no notification is missed.
                if (!vq.enable_notification()) break;
                continue;
            }
            uint32_t written = 0;
            if (next->has_value()) {
                written = handle(**next);
                (void)vq.push_used((*next)->head, written);
                count_request((*next)->readable_bytes(), written);
                used = true;
            } else if (!reject_bad_chain(vq, next->error(), used)) {
                break;
            }
        }
        if (used && vq.should_notify()) irq_->signal_queue(queue);
    }

    // The one policy for a chain pop() refused: count and log it, return its
    // head with 0 bytes if known (setting `used`), and go on; returns false
    // when the ring itself is broken, after asking for DEVICE_NEEDS_RESET.
    // Called with mutex_ held.
    bool reject_bad_chain(Virtqueue& vq, const base::Error& error, bool& used);

    // Called with mutex_ held.
    void count_request(uint64_t from_guest, uint64_t to_guest) {
        ++requests_;
        bytes_from_guest_ += from_guest;
        bytes_to_guest_ += to_guest;
    }

    mutable std::mutex mutex_;  // guards queues_, mem_, irq_, features_, the counters
    std::vector<std::optional<Virtqueue>> queues_;
    memory::GuestMemory* mem_ = nullptr;
    VirtioInterrupt* irq_ = nullptr;
    uint64_t features_ = 0;
    uint64_t bad_chains_ = 0;
    uint64_t requests_ = 0, bytes_from_guest_ = 0, bytes_to_guest_ = 0;
    base::RateLimiter warn_{10};
};

}  // namespace kvmkit::virtio
