#include "pci/config_space.hpp"

#include <cstring>

namespace kvmkit::pci {

PciConfigSpace::PciConfigSpace(const PciIds& ids) {
    store16(kVendorId, ids.vendor);
    store16(kDeviceId, ids.device);
    store8(kRevision, ids.revision);
    store8(kClassCode, ids.class_code & 0xff);
    store8(kClassCode + 1, (ids.class_code >> 8) & 0xff);
    store8(kClassCode + 2, (ids.class_code >> 16) & 0xff);
    store16(kSubsystemVendor, ids.subsystem_vendor);
    store16(kSubsystemId, ids.subsystem_id);
    // Guest-writable: command (I/O, memory, bus master, INTx disable) and the interrupt line.
    uint16_t cmd_mask = kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable;
    wmask_[kCommand] = cmd_mask & 0xff;
    wmask_[kCommand + 1] = cmd_mask >> 8;
    wmask_[kInterruptLine] = 0xff;
}

void PciConfigSpace::store16(uint16_t off, uint16_t v) {
    bytes_[off] = v & 0xff;
    bytes_[off + 1] = v >> 8;
}

void PciConfigSpace::store32(uint16_t off, uint32_t v) {
    store16(off, v & 0xffff);
    store16(off + 2, v >> 16);
}

void PciConfigSpace::set_bar(uint8_t index, const BarInfo& bar, uint64_t address) {
    bars_[index] = bar;
    uint16_t off = kBar0 + 4 * index;
    uint32_t type = (bar.is_64bit ? 0x4 : 0x0) | (bar.prefetchable ? 0x8 : 0x0);
    uint64_t mask = ~(bar.size - 1);
    store32(off, static_cast<uint32_t>(address & mask) | type);
    uint32_t lo_mask = static_cast<uint32_t>(mask) & ~0xfu;
    for (int i = 0; i < 4; ++i) wmask_[off + i] = (lo_mask >> (8 * i)) & 0xff;
    if (bar.is_64bit) {
        store32(off + 4, static_cast<uint32_t>(address >> 32));
        uint32_t hi_mask = static_cast<uint32_t>(mask >> 32);
        for (int i = 0; i < 4; ++i) wmask_[off + 4 + i] = (hi_mask >> (8 * i)) & 0xff;
    }
}

uint64_t PciConfigSpace::bar_address(uint8_t index) const {
    if (index >= kNumBars || bars_[index].size == 0) return 0;
    uint64_t addr = read32(kBar0 + 4 * index) & ~0xfull;
    if (bars_[index].is_64bit) addr |= uint64_t(read32(kBar0 + 4 * index + 4)) << 32;
    return addr;
}

uint16_t PciConfigSpace::add_capability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable) {
    uint16_t off = next_cap_;
    bytes_[off] = id;
    bytes_[off + 1] = 0;
    std::memcpy(&bytes_[off + 2], body.data(), body.size());
    for (size_t i = 0; i < writable.size() && i < body.size(); ++i) wmask_[off + 2 + i] = writable[i];
    if (last_cap_) {
        bytes_[last_cap_ + 1] = static_cast<uint8_t>(off);
    } else {
        bytes_[kCapPointer] = static_cast<uint8_t>(off);
        store16(kStatus, read16(kStatus) | kStatusCapList);
    }
    last_cap_ = off;
    next_cap_ = static_cast<uint16_t>((off + 2 + body.size() + 3) & ~3u);
    return off;
}

void PciConfigSpace::read(uint16_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        size_t o = size_t(offset) + i;
        data[i] = o < kConfigSize ? bytes_[o] : 0xff;
    }
}

void PciConfigSpace::write(uint16_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) {
        size_t o = size_t(offset) + i;
        if (o >= kConfigSize) break;
        bytes_[o] = (bytes_[o] & ~wmask_[o]) | (data[i] & wmask_[o]);
    }
    if (hook_) hook_(offset, data.size());
}

}  // namespace kvmkit::pci
