// A PCI function as the root complex sees it: its configuration space and
// the registers behind its memory BARs.
#pragma once

#include <cstdint>
#include <span>

#include "pci/config_space.hpp"

namespace kvmkit::pci {

class PciDevice {
public:
    virtual ~PciDevice() = default;
    virtual const char* name() const = 0;
    virtual PciConfigSpace& config() = 0;
    // Called after the guest wrote configuration space (under the root's lock).
    virtual void config_written(uint16_t /*offset*/, size_t /*len*/) {}
    // Accesses to BAR `bar` at `offset` from its base.
    virtual void bar_read(uint8_t bar, uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void bar_write(uint8_t bar, uint64_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace kvmkit::pci
