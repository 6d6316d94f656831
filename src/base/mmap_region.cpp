#include "base/mmap_region.hpp"

#include <sys/mman.h>

#include <utility>

namespace kvmkit::base {

MmapRegion::MmapRegion(MmapRegion&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MmapRegion& MmapRegion::operator=(MmapRegion&& o) noexcept {
    if (this != &o) {
        reset();
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

MmapRegion::~MmapRegion() { reset(); }

void MmapRegion::reset() {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
}

Result<MmapRegion> MmapRegion::anonymous(size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return fail_errno("mmap " + std::to_string(size) + " bytes");
    return MmapRegion(static_cast<uint8_t*>(p), size);
}

Result<MmapRegion> MmapRegion::shared_fd(int fd, size_t size, off_t offset, bool writable) {
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, offset);
    if (p == MAP_FAILED) return fail_errno("mmap fd");
    return MmapRegion(static_cast<uint8_t*>(p), size);
}

}  // namespace kvmkit::base
