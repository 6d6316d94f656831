// virtio-console (virtio spec 1.2, 5.3), a single port without MULTIPORT:
// receiveq (0) carries host input to the guest, transmitq (1) guest output
// to the host. The guest can use it as its console (hvc0). It is an
// InputPort, so the VMM's console can feed it like a UART.
#pragma once

#include <functional>

#include "base/input_port.hpp"
#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

class VirtioConsole : public QueueDevice, public base::InputPort {
public:
    using OutputSink = std::function<void(std::span<const uint8_t>)>;
    explicit VirtioConsole(OutputSink output) : output_(std::move(output)) {}

    const char* name() const override { return "virtio-console"; }
    DeviceType type() const override { return DeviceType::Console; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 2; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void process_queue(uint16_t queue) override;

    size_t accept_input(std::span<const uint8_t> bytes) override;
    void set_space_callback(std::function<void()> cb) override;

private:
    OutputSink output_;
    std::function<void()> space_cb_;  // guarded by mutex_
};

}  // namespace kvmkit::virtio
