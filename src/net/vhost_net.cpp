#include "net/vhost_net.hpp"

#include <fcntl.h>
// virtio_ring.h (pulled in by vhost.h) has C-only legacy helpers; we need none of them.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "net/vnet_header.hpp"

namespace kvmkit::net {

using base::fail;
using base::Result;

// The UAPI structs as this file relies on them (sizes are part of the ioctl numbers).
static_assert(sizeof(vhost_memory) == 8 && sizeof(vhost_memory_region) == 32);
static_assert(sizeof(vhost_vring_addr) == 40 && sizeof(vhost_vring_state) == 8 && sizeof(vhost_vring_file) == 8);
static_assert(VHOST_SET_MEM_TABLE == 0x4008af03 && VHOST_NET_SET_BACKEND == 0x4008af30);

namespace {

constexpr uint64_t kRingFeatures = (1ull << 28) | (1ull << 29) | (1ull << 32);  // INDIRECT_DESC, EVENT_IDX, VERSION_1

// Translates [addr, addr+len) to a user address if it lies inside one region.
Result<uint64_t> to_user(uint64_t addr, uint64_t len, std::span<const VhostMemRegion> regions, const char* what) {
    for (const auto& r : regions) {
        if (addr >= r.guest_addr && addr - r.guest_addr < r.size && len <= r.size - (addr - r.guest_addr))
            return r.user_addr + (addr - r.guest_addr);
    }
    char b[96];
    snprintf(b, sizeof b, "%s ring at 0x%llx (+0x%llx) is not inside guest RAM", what,
             static_cast<unsigned long long>(addr), static_cast<unsigned long long>(len));
    return fail(b);
}

Result<void> vhost_ioctl(int fd, unsigned long req, const void* arg, const char* what) {
    if (::ioctl(fd, req, arg) < 0) return base::fail_errno(std::string("vhost-net: ") + what, errno);
    return base::ok();
}

}  // namespace

Result<VhostRingAddrs> vhost_ring_addrs(const VhostQueue& q, std::span<const VhostMemRegion> regions) {
    if (q.size == 0 || (q.size & (q.size - 1)))
        return fail("vhost-net: queue size " + std::to_string(q.size) + " is not a power of two");
    // Sizes per virtio spec 2.7: desc 16*n; avail flags+idx+ring+used_event; used flags+idx+ring+avail_event.
    VhostRingAddrs a;
    a.desc_user = TRY(to_user(q.desc, 16ull * q.size, regions, "descriptor"));
    a.avail_user = TRY(to_user(q.avail, 6 + 2ull * q.size, regions, "available"));
    a.used_user = TRY(to_user(q.used, 6 + 8ull * q.size, regions, "used"));
    return a;
}

Result<std::vector<uint64_t>> vhost_mem_table(std::span<const VhostMemRegion> regions) {
    if (regions.empty()) return fail("vhost-net: no guest memory");
    std::vector<VhostMemRegion> sorted(regions.begin(), regions.end());
    std::sort(sorted.begin(), sorted.end(), [](auto& x, auto& y) { return x.guest_addr < y.guest_addr; });
    for (size_t i = 0; i < sorted.size(); ++i) {
        const auto& r = sorted[i];
        if (r.size == 0) return fail("vhost-net: empty memory region");
        if (r.guest_addr + r.size < r.guest_addr || r.user_addr + r.size < r.user_addr)
            return fail("vhost-net: memory region wraps around");
        if (i > 0 && sorted[i - 1].guest_addr + sorted[i - 1].size > r.guest_addr)
            return fail("vhost-net: overlapping memory regions");
    }
    // struct vhost_memory { u32 nregions; u32 padding; struct vhost_memory_region regions[]; }
    std::vector<uint64_t> buf(1 + 4 * sorted.size(), 0);
    auto* mem = reinterpret_cast<vhost_memory*>(buf.data());
    mem->nregions = static_cast<uint32_t>(sorted.size());
    for (size_t i = 0; i < sorted.size(); ++i) {
        vhost_memory_region r{};
        r.guest_phys_addr = sorted[i].guest_addr;
        r.memory_size = sorted[i].size;
        r.userspace_addr = sorted[i].user_addr;
        std::memcpy(&buf[1 + 4 * i], &r, sizeof r);
    }
    return buf;
}

uint64_t vhost_net_features(uint64_t driver, uint64_t kernel, bool tap_has_vnet_hdr) {
    uint64_t f = driver & (kRingFeatures | feature::kMrgRxbuf);
    if (!tap_has_vnet_hdr) f |= 1ull << VHOST_NET_F_VIRTIO_NET_HDR;
    return f & kernel;
}

Result<std::unique_ptr<VhostNet>> VhostNet::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO) return fail(path + " is missing (no vhost_net module)");
        if (e == EACCES || e == EPERM) return fail("no permission to open " + path);
        return base::fail_errno("open " + path, e);
    }
    base::UniqueFd vfd(fd);
    // SAFETY: VHOST_SET_OWNER takes no argument; it binds the vhost worker to this process's mm.
    if (::ioctl(fd, VHOST_SET_OWNER, nullptr) < 0) return base::fail_errno("vhost-net: VHOST_SET_OWNER", errno);
    uint64_t features = 0;
    if (::ioctl(fd, VHOST_GET_FEATURES, &features) < 0) return base::fail_errno("vhost-net: VHOST_GET_FEATURES", errno);
    return std::unique_ptr<VhostNet>(new VhostNet(std::move(vfd), features));
}

VhostNet::~VhostNet() {
    stop();
}

Result<void> VhostNet::start(uint64_t features, std::span<const VhostMemRegion> regions,
                             std::span<const VhostQueue> queues, int tap_fd) {
    stop();
    if (queues.size() != 2) return fail("vhost-net: needs exactly the receive and transmit queues");
    if (tap_fd < 0) return fail("vhost-net: no TAP fd");
    auto table = TRY(vhost_mem_table(regions));
    std::vector<VhostRingAddrs> addrs;
    for (const auto& q : queues) {
        if (q.kick_fd < 0 || q.call_fd < 0)
            return fail("vhost-net: a queue has no notification or interrupt eventfd (no MSI-X vector?)");
        addrs.push_back(TRY(vhost_ring_addrs(q, regions)));
    }
    const int fd = fd_.get();
    auto undo_on_error = [this](Result<void> r) -> Result<void> {
        if (!r) stop();
        return r;
    };
    auto run = [&]() -> Result<void> {
        TRY(vhost_ioctl(fd, VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES"));
        TRY(vhost_ioctl(fd, VHOST_SET_MEM_TABLE, table.data(), "VHOST_SET_MEM_TABLE"));
        for (unsigned i = 0; i < queues.size(); ++i) {
            const auto& q = queues[i];
            vhost_vring_state num{i, q.size};
            TRY(vhost_ioctl(fd, VHOST_SET_VRING_NUM, &num, "VHOST_SET_VRING_NUM"));
            vhost_vring_state base{i, q.next_avail};
            TRY(vhost_ioctl(fd, VHOST_SET_VRING_BASE, &base, "VHOST_SET_VRING_BASE"));
            vhost_vring_addr a{};
            a.index = i;
            a.flags = 0;  // no dirty logging
            a.desc_user_addr = addrs[i].desc_user;
            a.avail_user_addr = addrs[i].avail_user;
            a.used_user_addr = addrs[i].used_user;
            TRY(vhost_ioctl(fd, VHOST_SET_VRING_ADDR, &a, "VHOST_SET_VRING_ADDR"));
            vhost_vring_file kick{i, q.kick_fd};
            TRY(vhost_ioctl(fd, VHOST_SET_VRING_KICK, &kick, "VHOST_SET_VRING_KICK"));
            vhost_vring_file call{i, q.call_fd};
            TRY(vhost_ioctl(fd, VHOST_SET_VRING_CALL, &call, "VHOST_SET_VRING_CALL"));
        }
        running_ = true;
        for (unsigned i = 0; i < queues.size(); ++i) {
            vhost_vring_file backend{i, tap_fd};
            TRY(vhost_ioctl(fd, VHOST_NET_SET_BACKEND, &backend, "VHOST_NET_SET_BACKEND"));
            started_queues_ = i + 1;
        }
        return base::ok();
    };
    return undo_on_error(run());
}

void VhostNet::stop() {
    if (!running_) return;
    for (unsigned i = 0; i < started_queues_; ++i) {
        vhost_vring_file backend{i, -1};
        if (::ioctl(fd_.get(), VHOST_NET_SET_BACKEND, &backend) < 0)
            LOG_WARN("vhost-net: detaching queue %u: %s", i, strerror(errno));
    }
    started_queues_ = 0;
    running_ = false;
}

}  // namespace kvmkit::net
