#include "memory/guest_memory.hpp"

#include <algorithm>
#include <cstdio>

namespace kvmkit::memory {

using base::fail;

namespace {
std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}
}  // namespace

Result<void> GuestMemory::add_region(GuestRegion r) {
    if (r.size == 0) return fail("guest memory region at " + hex(r.base) + " is empty");
    if (r.base + r.size < r.base) return fail("guest memory region at " + hex(r.base) + " wraps around");
    for (const auto& o : regions_) {
        if (r.base < o.end() && o.base < r.end())
            return fail("guest memory region " + hex(r.base) + " overlaps " + hex(o.base));
    }
    regions_.push_back(r);
    std::sort(regions_.begin(), regions_.end(), [](auto& a, auto& b) { return a.base < b.base; });
    return base::ok();
}

Result<void> GuestMemory::add_anonymous(GuestAddress base, uint64_t size) {
    auto m = TRY(base::MmapRegion::anonymous(size));
    GuestRegion r{base, size, m.data()};
    TRY(add_region(r));
    owned_.push_back(std::move(m));
    return base::ok();
}

Result<void> GuestMemory::add_borrowed(GuestAddress base, uint64_t size, uint8_t* host) {
    return add_region(GuestRegion{base, size, host});
}

uint64_t GuestMemory::total_size() const {
    uint64_t t = 0;
    for (auto& r : regions_) t += r.size;
    return t;
}

std::span<uint8_t> GuestMemory::host_span(GuestAddress addr, uint64_t len) const {
    for (const auto& r : regions_) {
        if (addr >= r.base && addr < r.end()) {
            uint64_t off = addr - r.base;
            // `len <= r.size - off` cannot overflow, unlike `addr + len <= end`.
            if (len > r.size - off) return {};
            return {r.host + off, static_cast<size_t>(len)};
        }
    }
    return {};
}

Result<void> GuestMemory::read(GuestAddress addr, void* dst, uint64_t len) const {
    if (len == 0) return base::ok();
    auto s = host_span(addr, len);
    if (s.empty()) return fail("guest range " + hex(addr) + "+" + hex(len) + " is outside guest memory");
    std::memcpy(dst, s.data(), len);
    return base::ok();
}

Result<void> GuestMemory::write(GuestAddress addr, const void* src, uint64_t len) {
    if (len == 0) return base::ok();
    auto s = host_span(addr, len);
    if (s.empty()) return fail("guest range " + hex(addr) + "+" + hex(len) + " is outside guest memory");
    std::memcpy(s.data(), src, len);
    return base::ok();
}

Result<void> GuestMemory::fill(GuestAddress addr, uint8_t byte, uint64_t len) {
    if (len == 0) return base::ok();
    auto s = host_span(addr, len);
    if (s.empty()) return fail("guest range " + hex(addr) + "+" + hex(len) + " is outside guest memory");
    std::memset(s.data(), byte, len);
    return base::ok();
}

}  // namespace kvmkit::memory
