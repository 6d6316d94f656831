// virtio-blk (virtio spec 1.2, 5.2) over a raw image file: IN, OUT, FLUSH,
// GET_ID, DISCARD and WRITE_ZEROES. A request the guest gets back as done
// has reached the backend; a FLUSH it gets back as done has reached the disk
// (fdatasync). Requests run on the device event loop, off the vCPU threads.
// Left out for now: io_uring with many requests in flight (requests are
// served one after another), multiple queues.
#pragma once

#include <string>

#include "virtio/devices/disk_image.hpp"
#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

class VirtioBlk : public QueueDevice {
public:
    static constexpr uint32_t kSectorSize = 512;
    static constexpr uint32_t kSegMax = 126;
    static constexpr uint16_t kQueueSize = 256;

    VirtioBlk(DiskImage image, std::string serial);

    const char* name() const override { return "virtio-blk"; }
    DeviceType type() const override { return DeviceType::Block; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 1; }
    uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void process_queue(uint16_t queue) override;

    struct Counters {
        uint64_t reads = 0, writes = 0, flushes = 0, errors = 0, bytes_read = 0, bytes_written = 0;
    };
    Counters counters() const;

private:
    uint8_t handle(const DescriptorChain& chain, uint32_t& written);

    DiskImage image_;
    std::string serial_;
    Counters counters_;
};

}  // namespace kvmkit::virtio
