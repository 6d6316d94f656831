// Test doubles shared by the device model tests.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bus/bus.hpp"

namespace kvmkit::test {

// Records every level the device drives onto its interrupt line.
class FakeIrqLine : public bus::IrqLine {
public:
    void set_level(bool high) override {
        levels.push_back(high);
        level = high;
    }
    bool level = false;
    std::vector<bool> levels;  // every set_level call, in order
};

// Byte-wide register access helpers: a device sees (offset, span).
inline uint8_t rd(bus::BusDevice& d, uint64_t off) {
    uint8_t v = 0xee;
    d.read(off, {&v, 1});
    return v;
}
inline void wr(bus::BusDevice& d, uint64_t off, uint8_t v) {
    d.write(off, {&v, 1});
}
inline uint16_t rd16(bus::BusDevice& d, uint64_t off) {
    uint8_t b[2] = {0xee, 0xee};
    d.read(off, b);
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
}
inline void wr16(bus::BusDevice& d, uint64_t off, uint16_t v) {
    const uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
    d.write(off, b);
}

}  // namespace kvmkit::test
