// virtio-rng (entropy device, virtio spec 1.2, 5.4): one request queue; each
// device-writable buffer is filled from the host's getrandom(2).
#pragma once

#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

class VirtioRng : public QueueDevice {
public:
    const char* name() const override { return "virtio-rng"; }
    DeviceType type() const override { return DeviceType::Entropy; }
    uint64_t device_features() const override { return 0; }
    uint16_t num_queues() const override { return 1; }
    void read_config(uint64_t, std::span<uint8_t> data) override;
    void process_queue(uint16_t queue) override;
};

}  // namespace kvmkit::virtio
