// The configuration space of one PCI function (PCI Local Bus 3.0, chapter 6;
// PCIe base spec 7.5 for the extended space): a type-0 header, BARs with the
// sizing protocol (write all-ones, read back the size mask), a capability
// list, and per-byte write masks so read-only fields stay read-only whatever
// the guest writes.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace kvmkit::pci {

constexpr size_t kConfigSize = 4096;  // PCIe: 256 bytes legacy + extended space
constexpr uint8_t kNumBars = 6;

// Standard header offsets.
constexpr uint16_t kVendorId = 0x00, kDeviceId = 0x02, kCommand = 0x04, kStatus = 0x06, kRevision = 0x08,
                   kClassCode = 0x09, kHeaderType = 0x0e, kBar0 = 0x10, kSubsystemVendor = 0x2c,
                   kSubsystemId = 0x2e, kCapPointer = 0x34, kInterruptLine = 0x3c, kInterruptPin = 0x3d;
constexpr uint16_t kCommandIo = 1u << 0, kCommandMemory = 1u << 1, kCommandBusMaster = 1u << 2,
                   kCommandIntxDisable = 1u << 10;
constexpr uint16_t kStatusCapList = 1u << 4;

struct BarInfo {
    uint64_t size = 0;  // 0: unused; else a power of two >= 16
    bool is_64bit = false;
    bool prefetchable = false;
};

struct PciIds {
    uint16_t vendor;
    uint16_t device;
    uint32_t class_code;  // 24 bits: base class, sub class, prog-if
    uint8_t revision;
    uint16_t subsystem_vendor;
    uint16_t subsystem_id;
};

class PciConfigSpace {
public:
    explicit PciConfigSpace(const PciIds& ids);

    // Declares BAR `index` (a 64-bit BAR also takes index+1) and its initial address.
    void set_bar(uint8_t index, const BarInfo& bar, uint64_t address);
    const BarInfo& bar(uint8_t index) const { return bars_[index]; }
    uint64_t bar_address(uint8_t index) const;

    // Appends a capability; `body` starts after the ID and next-pointer bytes.
    // `writable` (same length as body, may be empty) marks guest-writable bits.
    // Returns the capability's offset.
    uint16_t add_capability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable = {});

    void read(uint16_t offset, std::span<uint8_t> data) const;
    // Applies the write through the masks; calls the write hook afterwards.
    void write(uint16_t offset, std::span<const uint8_t> data);
    void set_write_hook(std::function<void(uint16_t offset, size_t len)> hook) { hook_ = std::move(hook); }

    uint16_t command() const { return read16(kCommand); }
    uint8_t read8(uint16_t off) const { return bytes_[off]; }
    uint16_t read16(uint16_t off) const { return bytes_[off] | (bytes_[off + 1] << 8); }
    uint32_t read32(uint16_t off) const { return read16(off) | (uint32_t(read16(off + 2)) << 16); }
    // Device-side stores that bypass the guest write masks.
    void store8(uint16_t off, uint8_t v) { bytes_[off] = v; }
    void store16(uint16_t off, uint16_t v);
    void store32(uint16_t off, uint32_t v);

private:
    std::array<uint8_t, kConfigSize> bytes_{};
    std::array<uint8_t, kConfigSize> wmask_{};
    std::array<BarInfo, kNumBars> bars_{};
    uint16_t next_cap_ = 0x40;
    uint16_t last_cap_ = 0;
    std::function<void(uint16_t, size_t)> hook_;
};

}  // namespace kvmkit::pci
