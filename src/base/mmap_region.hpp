// MmapRegion: an anonymous (or fd-backed) mapping unmapped on destruction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.hpp"

namespace kvmkit::base {

class MmapRegion {
public:
    MmapRegion() = default;
    MmapRegion(const MmapRegion&) = delete;
    MmapRegion& operator=(const MmapRegion&) = delete;
    MmapRegion(MmapRegion&& o) noexcept;
    MmapRegion& operator=(MmapRegion&& o) noexcept;
    ~MmapRegion();

    // Private anonymous memory, zero-filled, lazily backed (MAP_NORESERVE).
    static Result<MmapRegion> anonymous(size_t size);
    // A shared mapping of `size` bytes of `fd` at `offset`.
    static Result<MmapRegion> shared_fd(int fd, size_t size, off_t offset, bool writable);

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

private:
    MmapRegion(uint8_t* data, size_t size) : data_(data), size_(size) {}
    void reset();

    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace kvmkit::base
