#include "vmm/device_manager.hpp"

#include "arch/x86_64/layout.hpp"
#include "base/log.hpp"

namespace kvmkit::vmm {

namespace layout = arch::x86_64::layout;

DeviceManager::DeviceManager(kvm::Vm& vm, bus::Bus& pio, bus::Bus& mmio, memory::GuestMemory& mem, uint64_t mem_size)
    : vm_(vm),
      pio_(pio),
      mmio_(mmio),
      mem_(mem),
      mem_size_(mem_size),
      slots_(pci::PciRoot::kMaxSlots),
      next_bar32_(layout::kPciMmio32Start),
      next_bar64_(layout::pci_mmio64_start(mem_size)),
      next_gsi_(layout::kFirstMsiGsi) {}

DeviceManager::~DeviceManager() {
    stop();
    // The MMIO bus (the Machine's) outlives us and holds the BARs: take them
    // off so the devices go with us, while the event loop they registered on
    // still exists.
    std::lock_guard lock(mutex_);
    for (auto& s : slots_)
        if (s) unmap_bar(*s);
}

void DeviceManager::stop() {
    if (loop_) loop_->stop();
}

base::Result<void> DeviceManager::init() {
    TRY(pio_.insert({layout::kPciConfigPort, 8}, std::make_shared<pci::PciConfigIo>(root_)));
    TRY(mmio_.insert({layout::kPciEcamBase, layout::kPciEcamSize}, std::make_shared<pci::PciEcam>(root_)));
    root_.set_config_listener([this](uint8_t slot) { remap(slot); });
    loop_ = TRY(event::EventLoop::create());
    loop_->start();
    return update_routes();
}

base::Result<uint64_t> DeviceManager::allocate_bar(uint64_t size) {
    // Naturally aligned, as the BAR sizing protocol requires.
    uint64_t a32 = (next_bar32_ + size - 1) & ~(size - 1);
    if (a32 + size <= layout::kPciMmio32End) {
        next_bar32_ = a32 + size;
        return a32;
    }
    uint64_t a64 = (next_bar64_ + size - 1) & ~(size - 1);
    if (a64 + size > layout::pci_mmio64_start(mem_size_) + layout::kPciMmio64Size)
        return base::fail("PCI MMIO windows are full");
    next_bar64_ = a64 + size;
    return a64;
}

base::Result<void> DeviceManager::add_virtio(std::shared_ptr<virtio::VirtioDevice> dev) {
    uint64_t bar = TRY(allocate_bar(virtio::VirtioPciDevice::kBarSize));
    auto transport = TRY(virtio::VirtioPciDevice::create(std::move(dev), mem_, bar));
    uint8_t slot = TRY(root_.add_device(transport));
    auto s = std::make_unique<VirtioSlot>();
    s->transport = transport;

    // One GSI and irqfd per MSI-X vector; routes follow the guest's table.
    for (uint16_t v = 0; v < transport->msix().size(); ++v) {
        auto fd = std::make_unique<base::EventFd>(TRY(base::EventFd::create()));
        uint32_t gsi = next_gsi_++;
        s->gsis.push_back(gsi);
        s->irqfds.push_back(std::move(fd));
    }
    VirtioSlot* raw = s.get();
    transport->set_msi_sink([raw](uint16_t v) {
        if (v < raw->irqfds.size()) (void)raw->irqfds[v]->write(1);
    });
    transport->set_irq_fd_lookup([raw](uint16_t v) { return v < raw->irqfds.size() ? raw->irqfds[v]->fd() : -1; });
    transport->msix().set_listener([this, raw](const std::vector<uint16_t>& fire) {
        if (auto r = update_routes(); !r) LOG_WARN("MSI routes: %s", r.error().message().c_str());
        for (uint16_t v : fire) (void)raw->irqfds[v]->write(1);
    });
    for (uint16_t q = 0; q < transport->num_queues(); ++q) {
        std::weak_ptr<virtio::VirtioPciDevice> weak = transport;
        TRY(loop_->add(transport->notify_event(q).fd(), [weak, q](uint32_t) {
            if (auto t = weak.lock()) t->handle_notify(q);
        }));
    }
    {
        std::lock_guard lock(mutex_);
        slots_[slot] = std::move(s);
    }
    TRY(update_routes());
    for (size_t v = 0; v < raw->irqfds.size(); ++v) TRY(vm_.irqfd(raw->irqfds[v]->fd(), raw->gsis[v]));
    // No firmware will program the BAR: map it where we placed it; the guest may move it later.
    std::lock_guard lock(mutex_);
    TRY(map_bar(*raw, bar));
    LOG_INFO("%s at PCI 00:%02x.0, BAR0 0x%llx", transport->name(), slot, static_cast<unsigned long long>(bar));
    return base::ok();
}

base::Result<void> DeviceManager::map_bar(VirtioSlot& s, uint64_t address) {
    TRY(mmio_.insert({address, virtio::VirtioPciDevice::kBarSize}, std::make_shared<pci::PciBarRegion>(s.transport, 0)));
    for (uint16_t q = 0; q < s.transport->num_queues(); ++q) {
        uint64_t notify = address + virtio::VirtioPciDevice::kNotifyOffset + q * virtio::VirtioPciDevice::kNotifyMultiplier;
        if (auto r = vm_.ioeventfd(s.transport->notify_event(q).fd(), notify, 2, false); !r)
            LOG_WARN("%s: ioeventfd: %s (notifications take the slow path)", s.transport->name(),
                     r.error().message().c_str());
    }
    s.bar0.address = address;
    return base::ok();
}

void DeviceManager::unmap_bar(VirtioSlot& s) {
    if (!s.bar0.address) return;
    for (uint16_t q = 0; q < s.transport->num_queues(); ++q) {
        uint64_t notify =
            s.bar0.address + virtio::VirtioPciDevice::kNotifyOffset + q * virtio::VirtioPciDevice::kNotifyMultiplier;
        (void)vm_.ioeventfd(s.transport->notify_event(q).fd(), notify, 2, false, true);
    }
    (void)mmio_.remove(s.bar0.address);
    s.bar0.address = 0;
}

void DeviceManager::remap(uint8_t slot) {
    std::lock_guard lock(mutex_);
    if (slot >= slots_.size() || !slots_[slot]) return;
    auto& s = *slots_[slot];
    auto& cfg = s.transport->config();
    bool decode = cfg.command() & pci::kCommandMemory;
    uint64_t addr = cfg.bar_address(0);
    // While the guest sizes a BAR it reads back the mask: never map such transient values.
    bool valid = decode && addr != 0 && addr + virtio::VirtioPciDevice::kBarSize > addr &&
                 mem_.host_span(addr, 1).empty() && mem_.host_span(addr + virtio::VirtioPciDevice::kBarSize - 1, 1).empty();
    uint64_t want = valid ? addr : 0;
    if (want == s.bar0.address) return;
    unmap_bar(s);
    if (want) {
        if (auto r = map_bar(s, want); !r) LOG_WARN("%s: BAR0 at 0x%llx not mapped: %s", s.transport->name(),
                                                    static_cast<unsigned long long>(want), r.error().message().c_str());
    }
}

base::Result<void> DeviceManager::update_routes() {
    std::vector<kvm_irq_routing_entry> routes;
    // KVM's default routing, which KVM_SET_GSI_ROUTING replaces: ISA IRQs to
    // both PICs and the IOAPIC, the rest of the IOAPIC pins 1:1.
    for (uint32_t gsi = 0; gsi < layout::kIoapicPins; ++gsi) {
        if (gsi < 16) {
            kvm_irq_routing_entry pic{};
            pic.gsi = gsi;
            pic.type = KVM_IRQ_ROUTING_IRQCHIP;
            pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            pic.u.irqchip.pin = gsi % 8;
            routes.push_back(pic);
        }
        kvm_irq_routing_entry io{};
        io.gsi = gsi;
        io.type = KVM_IRQ_ROUTING_IRQCHIP;
        io.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        io.u.irqchip.pin = gsi;
        routes.push_back(io);
    }
    std::lock_guard lock(mutex_);
    for (const auto& s : slots_) {
        if (!s) continue;
        for (uint16_t v = 0; v < s->gsis.size(); ++v) {
            auto vec = s->transport->msix().vector(v);
            kvm_irq_routing_entry e{};
            e.gsi = s->gsis[v];
            e.type = KVM_IRQ_ROUTING_MSI;
            e.u.msi.address_lo = static_cast<uint32_t>(vec.address);
            e.u.msi.address_hi = static_cast<uint32_t>(vec.address >> 32);
            e.u.msi.data = vec.data;
            routes.push_back(e);
        }
    }
    return vm_.set_gsi_routing(routes);
}

}  // namespace kvmkit::vmm
