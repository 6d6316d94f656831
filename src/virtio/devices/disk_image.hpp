// A raw disk image file: opened once, locked so that two VMs never write the
// same image (an OFD lock, like QEMU's image locking), read and written with
// vectored I/O straight from guest buffers.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::virtio {

enum class CacheMode { Writeback, None };  // None: O_DIRECT, bypassing the host page cache

struct DiskOptions {
    std::string path;
    bool readonly = false;
    CacheMode cache = CacheMode::Writeback;
};

// Parses "PATH[,readonly=on|off][,cache=none|writeback]".
base::Result<DiskOptions> parse_disk_option(const std::string& spec);

class DiskImage {
public:
    static base::Result<DiskImage> open(const DiskOptions& opts);

    uint64_t size() const { return size_; }
    bool readonly() const { return opts_.readonly; }
    const std::string& path() const { return opts_.path; }

    int fd() const { return fd_.get(); }
    // O_DIRECT wants aligned buffers, offsets and lengths; others go through a bounce buffer.
    bool needs_bounce(uint64_t offset, const std::vector<iovec>& iov) const;
    base::Result<void> readv(uint64_t offset, const std::vector<iovec>& iov);
    base::Result<void> writev(uint64_t offset, const std::vector<iovec>& iov);
    base::Result<void> flush();
    base::Result<void> discard(uint64_t offset, uint64_t len);
    base::Result<void> write_zeroes(uint64_t offset, uint64_t len);

private:
    DiskImage(DiskOptions o, base::UniqueFd fd, uint64_t size, size_t align)
        : opts_(std::move(o)), fd_(std::move(fd)), size_(size), align_(align) {}
    base::Result<void> transfer(uint64_t offset, const std::vector<iovec>& iov, bool write);

    DiskOptions opts_;
    base::UniqueFd fd_;
    uint64_t size_;
    size_t align_;  // direct-I/O alignment (1 without O_DIRECT)
};

}  // namespace kvmkit::virtio
