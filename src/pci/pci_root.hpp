// The root complex of bus 0: a host bridge at 00:00.0 and up to 31 devices
// (function 0 each), reached through configuration mechanism #1 (ports
// 0xCF8/0xCFC) and through ECAM (PCIe memory-mapped configuration, announced
// in the ACPI MCFG table). Absent functions read as all-ones.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "bus/bus.hpp"
#include "pci/pci_device.hpp"

namespace kvmkit::pci {

class PciRoot {
public:
    static constexpr uint8_t kMaxSlots = 32;

    PciRoot();

    // Places `dev` in the next free slot (1..31); returns the slot.
    base::Result<uint8_t> add_device(std::shared_ptr<PciDevice> dev);
    std::shared_ptr<PciDevice> device(uint8_t slot) const;

    void config_read(uint8_t bus, uint8_t slot, uint8_t function, uint16_t offset, std::span<uint8_t> data);
    void config_write(uint8_t bus, uint8_t slot, uint8_t function, uint16_t offset, std::span<const uint8_t> data);

    // Told the slot after every configuration write (BARs may have moved, decoding changed).
    void set_config_listener(std::function<void(uint8_t slot)> l) { listener_ = std::move(l); }

private:
    std::mutex mutex_;  // serialises configuration accesses from all vCPUs
    std::vector<std::shared_ptr<PciDevice>> slots_;
    std::function<void(uint8_t)> listener_;
};

// Ports 0xCF8-0xCFF: CONFIG_ADDRESS (dword at 0xCF8) and CONFIG_DATA (0xCFC-0xCFF).
class PciConfigIo : public bus::BusDevice {
public:
    explicit PciConfigIo(PciRoot& root) : root_(root) {}
    const char* name() const override { return "pci-config-io"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    PciRoot& root_;
    std::mutex mutex_;
    uint32_t address_ = 0;
};

// ECAM: bus << 20 | device << 15 | function << 12 | register.
class PciEcam : public bus::BusDevice {
public:
    explicit PciEcam(PciRoot& root) : root_(root) {}
    const char* name() const override { return "pci-ecam"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    PciRoot& root_;
};

// A BAR of a device placed on the MMIO bus.
class PciBarRegion : public bus::BusDevice {
public:
    PciBarRegion(std::shared_ptr<PciDevice> dev, uint8_t bar) : dev_(std::move(dev)), bar_(bar) {}
    const char* name() const override { return dev_->name(); }
    void read(uint64_t offset, std::span<uint8_t> data) override { dev_->bar_read(bar_, offset, data); }
    void write(uint64_t offset, std::span<const uint8_t> data) override { dev_->bar_write(bar_, offset, data); }

private:
    std::shared_ptr<PciDevice> dev_;
    uint8_t bar_;
};

}  // namespace kvmkit::pci
