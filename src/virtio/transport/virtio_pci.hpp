// The virtio 1.x "modern" PCI transport (virtio spec 1.2, 4.1): a PCI
// function whose BAR 0 holds the common configuration, ISR, device-specific
// configuration and notification regions, announced by vendor capabilities,
// plus the MSI-X table and PBA. Feature negotiation and the device status
// state machine live here; queue processing is the device's.
//
// BAR 0 layout (64-bit, 32 KiB):
//   0x0000 common cfg   0x1000 ISR   0x2000 device cfg
//   0x3000 notify (4 bytes per queue)   0x4000 MSI-X table   0x5000 PBA
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/event_fd.hpp"
#include "memory/guest_memory.hpp"
#include "pci/msix.hpp"
#include "pci/pci_device.hpp"
#include "virtio/devices/virtio_device.hpp"

namespace kvmkit::virtio {

class VirtioPciDevice : public pci::PciDevice, public VirtioInterrupt {
public:
    static constexpr uint64_t kBarSize = 0x8000;
    static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceCfgOffset = 0x2000,
                              kNotifyOffset = 0x3000, kMsixTableOffset = 0x4000, kMsixPbaOffset = 0x5000;
    static constexpr uint32_t kNotifyMultiplier = 4;

    // `fire_msi(vector)` delivers an MSI-X vector (the VMM writes its irqfd).
    static base::Result<std::shared_ptr<VirtioPciDevice>> create(std::shared_ptr<VirtioDevice> dev,
                                                                 memory::GuestMemory& mem, uint64_t bar_address);

    const char* name() const override { return dev_->name(); }
    pci::PciConfigSpace& config() override { return cfg_; }
    void config_written(uint16_t offset, size_t len) override;
    void bar_read(uint8_t bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(uint8_t bar, uint64_t offset, std::span<const uint8_t> data) override;

    // VirtioInterrupt (called by the device).
    void signal_queue(uint16_t queue) override;
    void signal_config() override;
    void needs_reset() override;
    int queue_notify_fd(uint16_t queue) override;
    int queue_irq_fd(uint16_t queue) override;

    uint16_t num_queues() const { return static_cast<uint16_t>(queues_.size()); }
    // The eventfd the driver's notification of `queue` lands on (KVM ioeventfd, or a fallback write).
    const base::EventFd& notify_event(uint16_t queue) const { return *queues_[queue].notify; }
    // Runs the device for `queue` (event loop thread); ignored before DRIVER_OK.
    void handle_notify(uint16_t queue);

    pci::Msix& msix() { return *msix_; }
    void set_msi_sink(std::function<void(uint16_t vector)> sink) { fire_msi_ = std::move(sink); }
    // The eventfd that delivers an MSI-X vector (the VMM's irqfd), for queue_irq_fd().
    void set_irq_fd_lookup(std::function<int(uint16_t vector)> lookup) { irq_fd_lookup_ = std::move(lookup); }
    uint8_t device_status() const { return status_; }

private:
    struct Queue {
        uint16_t size = 0;
        uint16_t max_size = 0;
        uint16_t msix_vector = 0xffff;
        bool enabled = false;
        uint64_t desc = 0, driver = 0, device = 0;
        std::unique_ptr<base::EventFd> notify;
    };

    VirtioPciDevice(std::shared_ptr<VirtioDevice> dev, memory::GuestMemory& mem);
    void common_read(uint64_t offset, std::span<uint8_t> data);
    void common_write(uint64_t offset, std::span<const uint8_t> data);
    uint64_t common_value(uint64_t reg) const;  // locked
    void set_status(uint8_t status);            // locked
    void reset_locked();
    void deliver(uint16_t vector);

    std::shared_ptr<VirtioDevice> dev_;
    memory::GuestMemory& mem_;
    pci::PciConfigSpace cfg_;
    std::unique_ptr<pci::Msix> msix_;
    std::function<void(uint16_t)> fire_msi_;
    std::function<int(uint16_t)> irq_fd_lookup_;

    std::mutex mutex_;  // guards the transport registers below; never held while calling the device's queue work
    std::vector<Queue> queues_;
    uint64_t offered_ = 0, driver_features_ = 0;
    uint32_t device_feature_select_ = 0, driver_feature_select_ = 0;
    uint16_t queue_select_ = 0, config_msix_vector_ = 0xffff;
    std::atomic<uint8_t> status_{0};
    uint8_t config_generation_ = 0;
    std::atomic<uint8_t> isr_{0};
    std::atomic<bool> active_{false};
};

}  // namespace kvmkit::virtio
