#include "virtio/devices/virtio_console.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kvmkit::virtio {

namespace {
constexpr uint64_t kFeatSize = 1ull << 0, kFeatEmergWrite = 1ull << 2;
constexpr uint16_t kReceiveQ = 0, kTransmitQ = 1;
constexpr uint64_t kEmergWrOffset = 8;  // config: cols(2) rows(2) max_nr_ports(4) emerg_wr(4)
}  // namespace

uint64_t VirtioConsole::device_features() const { return kFeatSize | kFeatEmergWrite; }

void VirtioConsole::read_config(uint64_t offset, std::span<uint8_t> data) {
    uint8_t cfg[12] = {};
    uint16_t cols = 80, rows = 25;
    uint32_t ports = 1;
    std::memcpy(cfg, &cols, 2);
    std::memcpy(cfg + 2, &rows, 2);
    std::memcpy(cfg + 4, &ports, 4);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

void VirtioConsole::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // emerg_wr: one character written before the queues work (early boot).
    if (offset == kEmergWrOffset && !data.empty() && output_) output_(data.first(1));
}

void VirtioConsole::process_queue(uint16_t queue) {
    std::function<void()> cb;
    {
        std::lock_guard lock(mutex_);
        if (queue == kTransmitQ) {
            drain(queue, [&](const DescriptorChain& chain) -> uint32_t {
                for (const auto& d : chain.readable) {
                    auto s = mem_->host_span(d.addr, d.len);
                    if (!s.empty() && output_) output_(s);
                }
                return 0;
            });
        } else if (queue == kReceiveQ) {
            cb = space_cb_;  // the guest posted receive buffers: more input fits
        }
    }
    if (cb) cb();
}

size_t VirtioConsole::accept_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    if (queues_.size() <= kReceiveQ || !queues_[kReceiveQ]) return 0;
    auto& vq = *queues_[kReceiveQ];
    size_t taken = 0;
    bool used = false;
    while (taken < bytes.size()) {
        auto next = vq.pop();
        if (!next) break;
        if (!next->has_value()) {
            if (!reject_bad_chain(vq, next->error(), used)) break;
            continue;
        }
        uint32_t written = 0;
        for (const auto& d : (*next)->writable) {
            size_t n = std::min<size_t>(d.len, bytes.size() - taken);
            if (n == 0) break;
            if (!mem_->write(d.addr, bytes.data() + taken, n)) break;
            taken += n;
            written += static_cast<uint32_t>(n);
        }
        (void)vq.push_used((*next)->head, written);
        count_request(0, written);
        used = true;
    }
    if (used && vq.should_notify()) irq_->signal_queue(kReceiveQ);
    return taken;
}

void VirtioConsole::set_space_callback(std::function<void()> cb) {
    std::lock_guard lock(mutex_);
    space_cb_ = std::move(cb);
}

}  // namespace kvmkit::virtio
