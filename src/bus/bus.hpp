// Bus: maps address ranges (port I/O or MMIO) to devices. Ranges are kept
// sorted and may not overlap; lookups are a binary search. A device sees only
// the offset inside its own range, never an absolute address.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "base/result.hpp"

namespace kvmkit::bus {

using base::Result;

class BusDevice {
public:
    virtual ~BusDevice() = default;
    virtual const char* name() const = 0;
    // `data.size()` is the access width (1, 2, 4 or 8). Reads fill `data`.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

struct BusRange {
    uint64_t base;
    uint64_t size;
    uint64_t last() const { return base + size - 1; }
    bool overlaps(const BusRange& o) const { return base <= o.last() && o.base <= last(); }
    bool contains(uint64_t addr) const { return addr >= base && addr - base < size; }
};

class Bus {
public:
    explicit Bus(std::string name) : name_(std::move(name)) {}

    // Fails on empty, wrapping or overlapping ranges.
    Result<void> insert(BusRange range, std::shared_ptr<BusDevice> device);
    Result<void> remove(uint64_t base);

    // Dispatches an access; returns false when no device claims `addr` (the
    // caller then applies the "nothing there" semantics: ignore / all-ones).
    // An access that runs past the end of the range containing `addr` reaches the
    // device shortened to the bytes inside its range; the bytes beyond read as
    // 0xff and are dropped on write (see bus.cpp).
    bool read(uint64_t addr, std::span<uint8_t> data) const;
    bool write(uint64_t addr, std::span<const uint8_t> data) const;

    struct Entry {
        BusRange range;
        std::shared_ptr<BusDevice> device;
    };
    // Lookup without dispatch; nullptr-device when unclaimed.
    Entry find(uint64_t addr) const;

private:
    std::string name_;
    mutable std::mutex mutex_;  // guards the map only; devices lock themselves
    std::map<uint64_t, Entry> entries_;  // keyed by base
};

// An interrupt line as a device model sees it: a level it can raise or lower.
// Edge-triggered hardware (ISA) is modelled as a level the device drops again.
class IrqLine {
public:
    virtual ~IrqLine() = default;
    virtual void set_level(bool high) = 0;
};

}  // namespace kvmkit::bus
