#include "pci/pci_root.hpp"

#include <cstring>

namespace kvmkit::pci {

namespace {
// The host bridge: no BARs, only identity. Red Hat's generic PCIe host bridge ID,
// which guests know as a plain host bridge.
class HostBridge : public PciDevice {
public:
    HostBridge() : cfg_(PciIds{0x1b36, 0x0008, 0x060000, 0, 0x1af4, 0x1100}) {}
    const char* name() const override { return "pci-host-bridge"; }
    PciConfigSpace& config() override { return cfg_; }
    void bar_read(uint8_t, uint64_t, std::span<uint8_t> d) override { std::memset(d.data(), 0xff, d.size()); }
    void bar_write(uint8_t, uint64_t, std::span<const uint8_t>) override {}

private:
    PciConfigSpace cfg_;
};
}  // namespace

PciRoot::PciRoot() : slots_(kMaxSlots) { slots_[0] = std::make_shared<HostBridge>(); }

base::Result<uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> dev) {
    std::lock_guard lock(mutex_);
    for (uint8_t s = 1; s < kMaxSlots; ++s) {
        if (!slots_[s]) {
            slots_[s] = std::move(dev);
            return s;
        }
    }
    return base::fail("PCI bus 0 is full (31 devices)");
}

std::shared_ptr<PciDevice> PciRoot::device(uint8_t slot) const {
    return slot < kMaxSlots ? slots_[slot] : nullptr;
}

void PciRoot::config_read(uint8_t bus, uint8_t slot, uint8_t function, uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (bus != 0 || function != 0 || slot >= kMaxSlots || !slots_[slot]) {
        std::memset(data.data(), 0xff, data.size());
        return;
    }
    slots_[slot]->config().read(offset, data);
}

void PciRoot::config_write(uint8_t bus, uint8_t slot, uint8_t function, uint16_t offset,
                           std::span<const uint8_t> data) {
    {
        std::lock_guard lock(mutex_);
        if (bus != 0 || function != 0 || slot >= kMaxSlots || !slots_[slot]) return;
        slots_[slot]->config().write(offset, data);
        slots_[slot]->config_written(offset, data.size());
    }
    if (listener_) listener_(slot);
}

void PciConfigIo::read(uint64_t offset, std::span<uint8_t> data) {
    uint32_t addr;
    {
        std::lock_guard lock(mutex_);
        addr = address_;
    }
    if (offset < 4) {
        for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < 4 ? (addr >> (8 * (offset + i))) & 0xff : 0xff;
        return;
    }
    if (!(addr & 0x80000000u)) {
        std::memset(data.data(), 0xff, data.size());
        return;
    }
    uint16_t reg = static_cast<uint16_t>((addr & 0xfc) | ((addr >> 16) & 0xf00)) + (offset - 4);
    root_.config_read((addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, data);
}

void PciConfigIo::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset < 4) {
        // Only dword writes set CONFIG_ADDRESS; byte writes at 0xCF9 etc. are other chipset registers.
        if (offset == 0 && data.size() == 4) {
            std::lock_guard lock(mutex_);
            std::memcpy(&address_, data.data(), 4);
        }
        return;
    }
    uint32_t addr;
    {
        std::lock_guard lock(mutex_);
        addr = address_;
    }
    if (!(addr & 0x80000000u)) return;
    // Bits 27:24 carry extended register bits on some chipsets; we accept them (AMD-style).
    uint16_t reg = static_cast<uint16_t>((addr & 0xfc) | ((addr >> 16) & 0xf00)) + (offset - 4);
    root_.config_write((addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, data);
}

void PciEcam::read(uint64_t offset, std::span<uint8_t> data) {
    root_.config_read((offset >> 20) & 0xff, (offset >> 15) & 0x1f, (offset >> 12) & 7, offset & 0xfff, data);
}

void PciEcam::write(uint64_t offset, std::span<const uint8_t> data) {
    root_.config_write((offset >> 20) & 0xff, (offset >> 15) & 0x1f, (offset >> 12) & 7, offset & 0xfff, data);
}

}  // namespace kvmkit::pci
