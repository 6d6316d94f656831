#include "pci/msix.hpp"

#include <cstring>

namespace kvmkit::pci {

namespace {
constexpr uint16_t kControlEnable = 1u << 15;
constexpr uint16_t kControlFunctionMask = 1u << 14;
}  // namespace

Msix::Msix(PciConfigSpace& cfg, uint16_t vectors, uint8_t bar, uint32_t table_offset, uint32_t pba_offset)
    : cfg_(cfg), vectors_(vectors), pending_(vectors, false) {
    // Body after ID/next: message control (2), table offset|BIR (4), PBA offset|BIR (4).
    uint8_t body[10] = {};
    uint16_t control = static_cast<uint16_t>(vectors - 1);
    body[0] = control & 0xff;
    body[1] = control >> 8;
    uint32_t table = table_offset | bar, pba = pba_offset | bar;
    std::memcpy(body + 2, &table, 4);
    std::memcpy(body + 6, &pba, 4);
    const uint8_t writable[10] = {0x00, 0xc0};  // enable and function mask only
    cap_offset_ = cfg_.add_capability(kCapId, body, writable);
}

bool Msix::enabled() const { return cfg_.read16(cap_offset_ + 2) & kControlEnable; }
bool Msix::function_masked() const { return cfg_.read16(cap_offset_ + 2) & kControlFunctionMask; }

Msix::Vector Msix::vector(uint16_t v) const {
    std::lock_guard lock(mutex_);
    return v < vectors_.size() ? vectors_[v] : Vector{};
}

void Msix::table_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t o = offset + i;
        uint64_t v = o / kEntrySize, field = o % kEntrySize;
        if (v >= vectors_.size()) {
            data[i] = 0xff;
            continue;
        }
        const auto& e = vectors_[v];
        uint8_t raw[16];
        uint32_t ctrl = e.masked ? 1 : 0;
        std::memcpy(raw, &e.address, 8);
        std::memcpy(raw + 8, &e.data, 4);
        std::memcpy(raw + 12, &ctrl, 4);
        data[i] = raw[field];
    }
}

void Msix::table_write(uint64_t offset, std::span<const uint8_t> data) {
    std::vector<uint16_t> fire;
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < data.size(); ++i) {
            uint64_t o = offset + i;
            uint64_t v = o / kEntrySize, field = o % kEntrySize;
            if (v >= vectors_.size()) continue;
            auto& e = vectors_[v];
            if (field < 8) {
                e.address = (e.address & ~(0xffull << (8 * field))) | (uint64_t(data[i]) << (8 * field));
            } else if (field < 12) {
                unsigned s = 8 * (field - 8);
                e.data = (e.data & ~(0xffu << s)) | (uint32_t(data[i]) << s);
            } else if (field == 12) {
                e.masked = data[i] & 1;
            }
        }
        unmask_check(fire);
    }
    if (listener_) listener_(fire);
}

void Msix::pba_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
        uint8_t b = 0;
        for (int bit = 0; bit < 8; ++bit) {
            uint64_t v = (offset + i) * 8 + bit;
            if (v < pending_.size() && pending_[v]) b |= 1u << bit;
        }
        data[i] = b;
    }
}

void Msix::control_written() {
    std::vector<uint16_t> fire;
    {
        std::lock_guard lock(mutex_);
        unmask_check(fire);
    }
    if (listener_) listener_(fire);
}

void Msix::unmask_check(std::vector<uint16_t>& fire) {
    if (!enabled() || function_masked()) return;
    for (size_t v = 0; v < vectors_.size(); ++v) {
        if (pending_[v] && !vectors_[v].masked) {
            pending_[v] = false;
            fire.push_back(static_cast<uint16_t>(v));
        }
    }
}

bool Msix::trigger(uint16_t v) {
    std::lock_guard lock(mutex_);
    if (v >= vectors_.size() || !enabled()) return false;
    if (function_masked() || vectors_[v].masked) {
        pending_[v] = true;
        return false;
    }
    return true;
}

}  // namespace kvmkit::pci
