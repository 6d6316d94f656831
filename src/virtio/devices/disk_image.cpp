#include "virtio/devices/disk_image.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace kvmkit::virtio {

using base::fail;
using base::fail_errno;

namespace {
// O_DIRECT wants buffers, offsets and lengths aligned to the file system's
// direct-I/O granularity: 512 bytes on most, 4 KiB on some. Probed at open.
size_t probe_direct_align(int fd) {
    void* buf = nullptr;
    if (posix_memalign(&buf, 4096, 4096) != 0) return 4096;
    ssize_t n = pread(fd, buf, 512, 512);
    free(buf);
    return n < 0 && errno == EINVAL ? 4096 : 512;
}
}  // namespace

base::Result<DiskOptions> parse_disk_option(const std::string& spec) {
    DiskOptions o;
    size_t pos = spec.find(',');
    o.path = spec.substr(0, pos);
    if (o.path.empty()) return fail("--disk: no path in '" + spec + "'");
    while (pos != std::string::npos) {
        size_t next = spec.find(',', pos + 1);
        std::string kv = spec.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
        pos = next;
        auto eq = kv.find('=');
        std::string key = kv.substr(0, eq), value = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (key == "readonly" && (value == "on" || value == "off")) {
            o.readonly = value == "on";
        } else if (key == "cache" && (value == "none" || value == "writeback")) {
            o.cache = value == "none" ? CacheMode::None : CacheMode::Writeback;
        } else {
            return fail("--disk: bad option '" + kv + "' (use readonly=on|off, cache=none|writeback)");
        }
    }
    return o;
}

base::Result<DiskImage> DiskImage::open(const DiskOptions& opts) {
    int flags = (opts.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (opts.cache == CacheMode::None) flags |= O_DIRECT;
    base::UniqueFd fd(::open(opts.path.c_str(), flags));
    if (!fd) return fail_errno("disk '" + opts.path + "'");
    struct stat st {};
    if (fstat(fd.get(), &st) < 0) return fail_errno("disk '" + opts.path + "'");
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return fail("disk '" + opts.path + "' is not a file");
    uint64_t size = st.st_size;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd.get(), 0, SEEK_END);
        if (end < 0) return fail_errno("disk '" + opts.path + "': size");
        size = end;
    }
    // One writer, or any number of readers: a writable open takes an exclusive lock, a read-only one a shared lock.
    struct flock lk {};
    lk.l_type = opts.readonly ? F_RDLCK : F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(fd.get(), F_OFD_SETLK, &lk) < 0) {
        if (errno == EAGAIN || errno == EACCES)
            return fail("disk '" + opts.path + "' is in use by another VM (image locked" +
                        std::string(opts.readonly ? " for writing)" : ")"));
        return fail_errno("disk '" + opts.path + "': lock");
    }
    size_t align = opts.cache == CacheMode::None ? probe_direct_align(fd.get()) : 1;
    return DiskImage(opts, std::move(fd), size, align);
}

base::Result<void> DiskImage::transfer(uint64_t offset, const std::vector<iovec>& iov, bool write) {
    size_t total = 0;
    for (const auto& v : iov) total += v.iov_len;
    if (needs_bounce(offset, iov)) {
        // Through an aligned bounce buffer covering the aligned window around the request;
        // a write whose ends are not aligned reads the window first (read-modify-write).
        uint64_t lo = offset & ~uint64_t(align_ - 1);
        uint64_t hi = (offset + total + align_ - 1) & ~uint64_t(align_ - 1);
        size_t len = hi - lo;
        void* raw = nullptr;
        if (posix_memalign(&raw, 4096, len ? len : align_) != 0) return fail("out of memory");
        std::unique_ptr<uint8_t, decltype(&free)> buf(static_cast<uint8_t*>(raw), &free);
        iovec window{buf.get(), len};
        uint8_t* data = buf.get() + (offset - lo);
        if (!write || lo != offset || hi != offset + total) TRY(transfer(lo, {window}, false));
        size_t off = 0;
        for (const auto& v : iov) {
            if (write) std::memcpy(data + off, v.iov_base, v.iov_len);
            else std::memcpy(v.iov_base, data + off, v.iov_len);
            off += v.iov_len;
        }
        if (write) TRY(transfer(lo, {window}, true));
        return base::ok();
    }
    std::vector<iovec> rest = iov;
    size_t idx = 0;
    uint64_t pos = offset;
    while (idx < rest.size()) {
        ssize_t n = write ? pwritev(fd_.get(), rest.data() + idx, static_cast<int>(std::min<size_t>(rest.size() - idx, IOV_MAX)), pos)
                          : preadv(fd_.get(), rest.data() + idx, static_cast<int>(std::min<size_t>(rest.size() - idx, IOV_MAX)), pos);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(write ? "pwritev" : "preadv");
        }
        if (n == 0) {
            if (write) return fail("pwritev wrote nothing");
            // Past the end of the file: the rest reads as zeroes.
            for (size_t i = idx; i < rest.size(); ++i) std::memset(rest[i].iov_base, 0, rest[i].iov_len);
            return base::ok();
        }
        pos += n;
        size_t left = n;
        while (idx < rest.size() && left >= rest[idx].iov_len) left -= rest[idx++].iov_len;
        if (idx < rest.size()) {
            rest[idx].iov_base = static_cast<uint8_t*>(rest[idx].iov_base) + left;
            rest[idx].iov_len -= left;
        }
    }
    return base::ok();
}

bool DiskImage::needs_bounce(uint64_t offset, const std::vector<iovec>& iov) const {
    if (opts_.cache != CacheMode::None) return false;
    if (offset % align_) return true;
    for (const auto& v : iov)
        if (reinterpret_cast<uintptr_t>(v.iov_base) % align_ || v.iov_len % align_) return true;
    return false;
}

base::Result<void> DiskImage::readv(uint64_t offset, const std::vector<iovec>& iov) {
    return transfer(offset, iov, false);
}

base::Result<void> DiskImage::writev(uint64_t offset, const std::vector<iovec>& iov) {
    if (opts_.readonly) return fail("read-only disk");
    return transfer(offset, iov, true);
}

base::Result<void> DiskImage::flush() {
    if (fdatasync(fd_.get()) < 0) return fail_errno("fdatasync");
    return base::ok();
}

base::Result<void> DiskImage::discard(uint64_t offset, uint64_t len) {
    if (opts_.readonly) return fail("read-only disk");
    if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) < 0 && errno != EOPNOTSUPP)
        return fail_errno("fallocate(punch hole)");
    return base::ok();
}

base::Result<void> DiskImage::write_zeroes(uint64_t offset, uint64_t len) {
    if (opts_.readonly) return fail("read-only disk");
    if (fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len) == 0) return base::ok();
    // No ZERO_RANGE on this file system: write zeroes.
    static const std::vector<uint8_t> zeroes(1 << 20, 0);
    for (uint64_t done = 0; done < len;) {
        uint64_t n = std::min<uint64_t>(len - done, zeroes.size());
        iovec v{const_cast<uint8_t*>(zeroes.data()), n};
        TRY(transfer(offset + done, {v}, true));
        done += n;
    }
    return base::ok();
}

}  // namespace kvmkit::virtio
