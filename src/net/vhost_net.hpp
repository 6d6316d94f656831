// vhost-net: the Linux kernel's virtio-net data path (drivers/vhost/net.c).
// The VMM describes guest memory and the rx/tx rings once; from then on the
// kernel moves frames between the rings and the TAP without the VMM: the
// driver's notification (a KVM ioeventfd) wakes the vhost worker directly,
// and the worker interrupts the driver through a KVM irqfd.
//
// Follows the UAPI in <linux/vhost.h>: VHOST_SET_OWNER, VHOST_GET/SET_FEATURES,
// VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM/BASE/ADDR/KICK/CALL and
// VHOST_NET_SET_BACKEND; stopping detaches the TAP (backend fd -1), which
// the kernel requires before the rings or guest memory change.
//
// Honesty note: the machines this project is developed and tested on have no
// /dev/vhost-net, so the ioctl sequence in VhostNet::start() has not run
// against a kernel here; the pure parts (memory table, ring address
// translation, feature selection) are unit-tested. Without /dev/vhost-net the
// virtio-net device uses its userspace TAP path (with one warning).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::net {

// One guest RAM region as vhost sees it: guest physical -> VMM virtual.
struct VhostMemRegion {
    uint64_t guest_addr;
    uint64_t size;
    uint64_t user_addr;
};

// One split virtqueue handed to vhost: guest addresses as the driver
// programmed them, where to start, and the two eventfds.
struct VhostQueue {
    uint16_t size = 0;
    uint64_t desc = 0, avail = 0, used = 0;  // guest physical addresses
    uint16_t next_avail = 0;                 // VHOST_SET_VRING_BASE
    int kick_fd = -1;                        // the driver's notifications (KVM ioeventfd)
    int call_fd = -1;                        // interrupts the driver (KVM irqfd)
};

// What VHOST_SET_VRING_ADDR takes: the rings' addresses in the VMM's memory.
struct VhostRingAddrs {
    uint64_t desc_user = 0, avail_user = 0, used_user = 0;
};

// Translates the three rings of `q` (with their full sizes, event fields
// included) to user addresses; each must lie inside one region.
base::Result<VhostRingAddrs> vhost_ring_addrs(const VhostQueue& q, std::span<const VhostMemRegion> regions);

// The VHOST_SET_MEM_TABLE argument (struct vhost_memory with its regions), as
// 64-bit words so that it is suitably aligned. Fails on no regions, empty or
// overlapping ones, or an address range that wraps.
base::Result<std::vector<uint64_t>> vhost_mem_table(std::span<const VhostMemRegion> regions);

// The features to VHOST_SET_FEATURES: the ring and virtio-net bits vhost-net
// implements itself, limited to what the driver accepted and the kernel
// offers. `tap_has_vnet_hdr` false: vhost must add/strip the virtio-net
// header itself (VHOST_NET_F_VIRTIO_NET_HDR).
uint64_t vhost_net_features(uint64_t driver_features, uint64_t kernel_features, bool tap_has_vnet_hdr);

class VhostNet {
public:
    // Opens `path`, VHOST_SET_OWNER, VHOST_GET_FEATURES. Fails (clearly) when
    // the device is missing or not usable.
    static base::Result<std::unique_ptr<VhostNet>> open(const std::string& path = "/dev/vhost-net");
    ~VhostNet();

    uint64_t kernel_features() const { return kernel_features_; }
    bool running() const { return running_; }

    // Starts the data path: features, memory table, both rings (index 0 =
    // receive, 1 = transmit) and the TAP as their backend. On failure
    // everything done so far is undone (the caller may serve the queues
    // itself).
    base::Result<void> start(uint64_t features, std::span<const VhostMemRegion> regions,
                             std::span<const VhostQueue> queues, int tap_fd);
    // Detaches the TAP from both rings; the kernel no longer touches guest
    // memory afterwards. Idempotent.
    void stop();

private:
    VhostNet(base::UniqueFd fd, uint64_t features) : fd_(std::move(fd)), kernel_features_(features) {}

    base::UniqueFd fd_;
    uint64_t kernel_features_;
    bool running_ = false;
    unsigned started_queues_ = 0;
};

}  // namespace kvmkit::net
