#include "bus/bus.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>

namespace kvmkit::bus {

namespace {
std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}
}  // namespace

Result<void> Bus::insert(BusRange range, std::shared_ptr<BusDevice> device) {
    if (range.size == 0) return base::fail(name_ + ": empty range at " + hex(range.base));
    if (range.base + (range.size - 1) < range.base) return base::fail(name_ + ": range at " + hex(range.base) + " wraps");
    std::lock_guard lock(mutex_);
    auto next = entries_.lower_bound(range.base);
    if (next != entries_.end() && next->second.range.overlaps(range))
        return base::fail(name_ + ": range " + hex(range.base) + "+" + hex(range.size) + " (" + device->name() +
                          ") overlaps " + next->second.device->name());
    if (next != entries_.begin()) {
        auto prev = std::prev(next);
        if (prev->second.range.overlaps(range))
            return base::fail(name_ + ": range " + hex(range.base) + "+" + hex(range.size) + " (" + device->name() +
                              ") overlaps " + prev->second.device->name());
    }
    entries_.emplace(range.base, Entry{range, std::move(device)});
    return base::ok();
}

Result<void> Bus::remove(uint64_t base) {
    std::lock_guard lock(mutex_);
    if (entries_.erase(base) == 0) return base::fail(name_ + ": no range at " + hex(base));
    return base::ok();
}

Bus::Entry Bus::find(uint64_t addr) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.upper_bound(addr);
    if (it == entries_.begin()) return {};
    --it;
    if (!it->second.range.contains(addr)) return {};
    return it->second;
}

// An access that starts inside a range but runs past its end is split, as the
// hardware splits it: x86 I/O port and misaligned MMIO accesses reach the bus as
// byte-enabled cycles that are decoded one address at a time (a word read at
// 0x3ff is a byte cycle the UART decodes at 0x3ff and one at 0x400 it does not).
// The device gets the bytes inside its range, at their own offsets; the bytes
// beyond are treated as unclaimed (all-ones on read, dropped on write) even if
// another range begins there: only a misbehaving guest does this, and one access
// never reaches two devices.
bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
    auto e = find(addr);
    if (!e.device) return false;
    const uint64_t room = e.range.size - (addr - e.range.base);  // >= 1: the range contains addr
    if (data.size() > room) {
        std::fill(data.begin() + static_cast<std::ptrdiff_t>(room), data.end(), uint8_t{0xff});
        data = data.first(room);
    }
    e.device->read(addr - e.range.base, data);
    return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
    auto e = find(addr);
    if (!e.device) return false;
    const uint64_t room = e.range.size - (addr - e.range.base);
    if (data.size() > room) data = data.first(room);
    e.device->write(addr - e.range.base, data);
    return true;
}

}  // namespace kvmkit::bus
