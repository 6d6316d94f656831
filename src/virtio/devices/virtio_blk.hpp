// virtio-blk (virtio spec 1.2, 5.2) over a raw image file: IN, OUT, FLUSH,
// GET_ID, DISCARD and WRITE_ZEROES. A request the guest gets back as done
// has reached the backend; a FLUSH it gets back as done has reached the disk
// (fdatasync). Requests run on the device event loop, off the vCPU threads,
// with many in flight through io_uring (AsyncIo) when the host has it, else
// one after another. Left out for now: multiple queues.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/event_loop.hpp"
#include "virtio/devices/async_io.hpp"
#include "virtio/devices/disk_image.hpp"
#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

class VirtioBlk : public QueueDevice {
public:
    static constexpr uint32_t kSectorSize = 512;
    static constexpr uint16_t kQueueSize = 256;
    // Data segments per request: as many as fit in one chain of kQueueSize
    // descriptors besides the header and the status byte (virtio 1.2, 2.7.5.3.1:
    // a chain, indirect ones included, is at most the queue size). Linux sizes
    // its requests by it: a 1 MiB O_DIRECT buffer of scattered 4 KiB pages is
    // 2 requests with 254, 3 with 126.
    static constexpr uint32_t kSegMax = kQueueSize - 2;

    // With `loop`, I/O is asynchronous through io_uring when the host has it.
    VirtioBlk(DiskImage image, std::string serial, event::EventLoop* loop = nullptr);
    ~VirtioBlk() override;
    bool async() const { return aio_ != nullptr; }

    const char* name() const override { return "virtio-blk"; }
    DeviceType type() const override { return DeviceType::Block; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 1; }
    uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void process_queue(uint16_t queue) override;
    void reset() override;

    struct Counters {
        uint64_t reads = 0, writes = 0, flushes = 0, errors = 0, bytes_read = 0, bytes_written = 0;
    };
    Counters counters() const;
    IoCounters io_counters() const override;

    struct Request {
        uint16_t head = 0;
        uint32_t type = 0;
        uint64_t sector = 0;
        std::vector<iovec> riov, wiov;  // driver data after the header / device-writable data before the status
        uint64_t rbytes = 0, wbytes = 0;
        uint64_t status_addr = 0;       // guest address of the status byte
    };

private:
    // Parses a chain; false when it cannot even carry a status byte.
    bool parse(const DescriptorChain& chain, Request& req, uint8_t& status);
    uint8_t execute_sync(const Request& req, uint32_t& written);
    bool submit_async(Request&& req);
    void complete(uint16_t head, uint64_t status_addr, uint8_t status, uint32_t written);  // locked
    void on_completions();
    void wait_in_flight();  // locked

    DiskImage image_;
    std::string serial_;
    Counters counters_;
    event::EventLoop* loop_;
    std::unique_ptr<AsyncIo> aio_;
    std::vector<std::optional<Request>> in_flight_;  // indexed by slot (user_data)
    size_t in_flight_count_ = 0;
    bool pending_notify_ = false;
};

}  // namespace kvmkit::virtio
