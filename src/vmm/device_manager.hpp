// The one place that ties devices to KVM: the PCI root complex on the port
// and MMIO buses, BARs on the MMIO bus, virtio queue notifications to KVM
// ioeventfds watched by the device event loop, and MSI-X vectors to KVM GSI
// routes and irqfds. Devices themselves never see KVM.
//
// Lock order: DeviceManager::mutex_ before nothing (KVM ioctls only).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "base/event_fd.hpp"
#include "bus/bus.hpp"
#include "event/event_loop.hpp"
#include "kvm/vm.hpp"
#include "memory/guest_memory.hpp"
#include "pci/pci_root.hpp"
#include "virtio/transport/virtio_pci.hpp"

namespace kvmkit::vmm {

class DeviceManager {
public:
    DeviceManager(kvm::Vm& vm, bus::Bus& pio, bus::Bus& mmio, memory::GuestMemory& mem, uint64_t mem_size);
    ~DeviceManager();

    // Puts the PCI host bridge on the buses and starts the device event loop.
    base::Result<void> init();
    base::Result<void> add_virtio(std::shared_ptr<virtio::VirtioDevice> dev);
    void stop();  // stops the event loop (before the VM goes away)
    event::EventLoop* loop() { return loop_.get(); }

private:
    struct MappedBar {
        uint64_t address = 0;  // 0: not mapped
    };
    struct VirtioSlot {
        std::shared_ptr<virtio::VirtioPciDevice> transport;
        MappedBar bar0;
        std::vector<uint32_t> gsis;                       // one per MSI-X vector
        std::vector<std::unique_ptr<base::EventFd>> irqfds;
    };

    base::Result<uint64_t> allocate_bar(uint64_t size);
    void remap(uint8_t slot);  // after a config write: BAR moved or decoding toggled
    base::Result<void> map_bar(VirtioSlot& s, uint64_t address);
    void unmap_bar(VirtioSlot& s);
    base::Result<void> update_routes();

    kvm::Vm& vm_;
    bus::Bus& pio_;
    bus::Bus& mmio_;
    memory::GuestMemory& mem_;
    uint64_t mem_size_;
    // Declared before the devices' owners (root_, slots_): destroyed after them,
    // so a device may still unregister from it in its destructor.
    std::unique_ptr<event::EventLoop> loop_;
    pci::PciRoot root_;
    std::mutex mutex_;  // guards slots_ mapping state and routes
    std::vector<std::unique_ptr<VirtioSlot>> slots_;  // index = PCI slot
    uint64_t next_bar32_;
    uint64_t next_bar64_;
    uint32_t next_gsi_;
};

}  // namespace kvmkit::vmm
