// GuestMemory: the guest's physical RAM as a set of non-overlapping regions.
// Every access from devices, loaders and queues goes through here and is
// bounds-checked (overflow included); nothing else dereferences guest
// addresses. Only vmm/ creates regions and registers them with KVM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/mmap_region.hpp"
#include "base/result.hpp"

namespace kvmkit::memory {

using base::Result;

using GuestAddress = uint64_t;

struct GuestRegion {
    GuestAddress base;
    uint64_t size;
    uint8_t* host;  // SAFETY: points at `size` bytes owned by GuestMemory (or the test that made it).
    GuestAddress end() const { return base + size; }
};

class GuestMemory {
public:
    GuestMemory() = default;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    GuestMemory(GuestMemory&&) = default;
    GuestMemory& operator=(GuestMemory&&) = default;

    // Allocates anonymous host memory for [base, base+size).
    Result<void> add_anonymous(GuestAddress base, uint64_t size);
    // Adds caller-owned memory (unit tests, fake guests). SAFETY: `host` must outlive this object.
    Result<void> add_borrowed(GuestAddress base, uint64_t size, uint8_t* host);

    const std::vector<GuestRegion>& regions() const { return regions_; }
    uint64_t total_size() const;

    // A host span for [addr, addr+len) if it lies inside one region, else empty.
    std::span<uint8_t> host_span(GuestAddress addr, uint64_t len) const;
    bool contains(GuestAddress addr, uint64_t len) const { return len == 0 || !host_span(addr, len).empty(); }

    Result<void> read(GuestAddress addr, void* dst, uint64_t len) const;
    Result<void> write(GuestAddress addr, const void* src, uint64_t len);
    Result<void> fill(GuestAddress addr, uint8_t byte, uint64_t len);

    template <typename T>
    Result<T> read_obj(GuestAddress addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T v;
        TRY(read(addr, &v, sizeof v));
        return v;
    }
    template <typename T>
    Result<void> write_obj(GuestAddress addr, const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(addr, &v, sizeof v);
    }

private:
    Result<void> add_region(GuestRegion r);
    std::vector<GuestRegion> regions_;  // sorted by base
    std::vector<base::MmapRegion> owned_;
};

}  // namespace kvmkit::memory
