// MSI-X (PCI Local Bus 3.0, 6.8.2): the capability's control word (enable,
// function mask), the vector table (address, data, per-vector mask) and the
// pending-bit array. The model decides whether a vector fires now or stays
// pending; the VMM turns table contents into KVM MSI routes.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "pci/config_space.hpp"

namespace kvmkit::pci {

class Msix {
public:
    static constexpr uint8_t kCapId = 0x11;
    static constexpr uint32_t kEntrySize = 16;

    struct Vector {
        uint64_t address = 0;
        uint32_t data = 0;
        bool masked = true;  // vectors reset to masked
    };

    // Adds the capability to `cfg`: table and PBA in BAR `bar` at the given offsets.
    Msix(PciConfigSpace& cfg, uint16_t vectors, uint8_t bar, uint32_t table_offset, uint32_t pba_offset);

    uint16_t size() const { return static_cast<uint16_t>(vectors_.size()); }
    uint32_t table_bytes() const { return size() * kEntrySize; }
    uint32_t pba_bytes() const { return ((size() + 63) / 64) * 8; }

    void table_read(uint64_t offset, std::span<uint8_t> data);
    void table_write(uint64_t offset, std::span<const uint8_t> data);
    void pba_read(uint64_t offset, std::span<uint8_t> data);
    // Call after a config-space write touching the capability.
    void control_written();

    bool enabled() const;
    Vector vector(uint16_t v) const;

    // The device raises vector `v`: returns true when it must be delivered
    // now; otherwise it is left pending (masked) or dropped (MSI-X off).
    bool trigger(uint16_t v);

    // Called (outside the lock) when routes may have changed, and with the
    // vectors whose pending bit must now be delivered (unmasked while pending).
    void set_listener(std::function<void(const std::vector<uint16_t>& fire)> listener) {
        listener_ = std::move(listener);
    }

private:
    bool function_masked() const;
    void unmask_check(std::vector<uint16_t>& fire);  // locked

    PciConfigSpace& cfg_;
    uint16_t cap_offset_;
    mutable std::mutex mutex_;
    std::vector<Vector> vectors_;
    std::vector<bool> pending_;
    std::function<void(const std::vector<uint16_t>&)> listener_;
};

}  // namespace kvmkit::pci
