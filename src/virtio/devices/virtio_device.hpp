// The transport-agnostic side of a virtio device (virtio spec 1.2, chapter 2
// and 5): what it offers, its configuration space, and its queues once the
// driver has set them up. The transport (virtio-pci) owns feature
// negotiation, the status state machine and interrupts; the device never
// sees PCI, KVM or file descriptors of the transport.
//
// Threads: activate/reset and config accesses come from vCPU threads (via the
// transport), process_queue from the device event loop; a device serialises
// them with its own lock.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"
#include "virtio/queue/virtqueue.hpp"

namespace kvmkit::virtio {

// Feature bits shared by all devices (spec 6).
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;
constexpr uint64_t kFeatureEventIdx = 1ull << 29;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;
constexpr uint64_t kFeatureAccessPlatform = 1ull << 33;

// Device IDs (spec 5).
enum class DeviceType : uint16_t { Net = 1, Block = 2, Console = 3, Entropy = 4 };

// How a device tells the driver that it used buffers or changed its config,
// or that it cannot go on (a queue the driver broke).
class VirtioInterrupt {
public:
    virtual ~VirtioInterrupt() = default;
    virtual void signal_queue(uint16_t queue) = 0;
    virtual void signal_config() = 0;
    // The device hit an error it cannot recover from without a reset (e.g.
    // Virtqueue::broken()): the transport sets DEVICE_NEEDS_RESET in the device
    // status and sends a configuration change notification (spec 2.1.2).
    // Idempotent: the notification goes out once until the driver resets.
    virtual void needs_reset() = 0;

    // For a data path outside the VMM (vhost-net): the eventfd the driver's
    // notifications of `queue` land on (a KVM ioeventfd), and an eventfd that
    // interrupts the driver for `queue` when written (the KVM irqfd of the
    // queue's MSI-X vector). -1 when there is none (e.g. no vector assigned).
    virtual int queue_notify_fd(uint16_t /*queue*/) { return -1; }
    virtual int queue_irq_fd(uint16_t /*queue*/) { return -1; }
};

class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;
    virtual const char* name() const = 0;
    virtual DeviceType type() const = 0;
    // Device-specific feature bits; the transport adds VERSION_1 and the ring features.
    virtual uint64_t device_features() const = 0;
    virtual uint16_t num_queues() const = 0;
    virtual uint16_t queue_max_size(uint16_t /*queue*/) const { return 256; }

    virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

    // DRIVER_OK: `queues` has one entry per queue (disabled ones have size 0).
    virtual base::Result<void> activate(uint64_t features, std::vector<QueueConfig> queues,
                                        memory::GuestMemory& mem, VirtioInterrupt& irq) = 0;
    // The driver notified `queue` (on the event loop thread).
    virtual void process_queue(uint16_t queue) = 0;
    // Device reset: stop using the queues; back to the state before activate.
    virtual void reset() = 0;
};

}  // namespace kvmkit::virtio
