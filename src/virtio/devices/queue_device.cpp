#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

base::Result<void> QueueDevice::activate(uint64_t features, std::vector<QueueConfig> queues, memory::GuestMemory& mem,
                                         VirtioInterrupt& irq) {
    std::lock_guard lock(mutex_);
    queues_.clear();
    for (size_t i = 0; i < queues.size(); ++i) {
        if (queues[i].size == 0) {
            queues_.emplace_back();
            continue;
        }
        auto q = Virtqueue::create(queues[i], mem);
        if (!q) return base::unexpected(q.error().context("queue " + std::to_string(i)));
        queues_.emplace_back(std::move(*q));
    }
    mem_ = &mem;
    irq_ = &irq;
    features_ = features;
    return base::ok();
}

VirtioDevice::IoCounters QueueDevice::io_counters() const {
    std::lock_guard lock(mutex_);
    return {{"requests", requests_},
            {"bytes_from_guest", bytes_from_guest_},
            {"bytes_to_guest", bytes_to_guest_},
            {"bad_chains", bad_chains_}};
}

bool QueueDevice::reject_bad_chain(Virtqueue& vq, const base::Error& error, bool& used) {
    ++bad_chains_;
    if (warn_.allow()) LOG_WARN("%s: bad descriptor chain: %s", name(), error.message().c_str());
    if (vq.broken()) {
        irq_->needs_reset();  // the ring itself is unusable: stop touching it
        return false;
    }
    if (auto head = vq.bad_head()) {
        (void)vq.push_used(*head, 0);
        used = true;
    }
    return true;  // a head out of range has nothing to return; the queue goes on
}

void QueueDevice::reset() {
    std::lock_guard lock(mutex_);
    queues_.clear();
    mem_ = nullptr;
    irq_ = nullptr;
    features_ = 0;
}

}  // namespace kvmkit::virtio
