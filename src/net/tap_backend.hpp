// The TAP backend: a Linux TAP device (drivers/net/tun.c) opened through
// /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking. Each
// read or write is one Ethernet frame preceded by the 12-byte virtio-net
// header (TUNSETVNETHDRSZ), so the guest's header passes through unchanged
// and checksum/TSO offloads reach the host kernel (TUNSETOFFLOAD). A kernel
// without IFF_VNET_HDR gets bare frames and no offloads.
//
// Receive reads with one readv straight into the guest's buffers; with no
// guest buffers the fd is taken off the event loop and the kernel queues
// (then drops, at txqueuelen) as for a real NIC.
#pragma once

#include <atomic>
#include <string>

#include "base/unique_fd.hpp"
#include "net/backend.hpp"
#include "net/net_options.hpp"

namespace kvmkit::net {

class TapBackend : public Backend {
public:
    // Opens `ifname` (created if it does not exist) or, with an empty name,
    // a new tap the kernel names (tap0, tap1, ...). Errors say what to do:
    // no /dev/net/tun, no permission (CAP_NET_ADMIN), the tap busy in
    // another process, a name that is not a tap.
    static base::Result<std::unique_ptr<TapBackend>> open(const std::string& ifname);
    ~TapBackend() override;

    const std::string& ifname() const { return ifname_; }

    std::string describe() const override { return "tap " + ifname_; }
    bool has_vnet_hdr() const override { return vnet_hdr_; }
    uint64_t offload_features() const override { return offloads_; }
    base::Result<void> set_guest_offloads(uint64_t features) override;
    base::Result<void> attach(event::EventLoop& loop, BackendClient& client) override;
    void detach() override;
    void set_rx_enabled(bool enabled) override;
    base::Result<size_t> receive(std::span<const iovec> bufs) override;
    base::Result<void> transmit(std::span<const iovec> frame) override;
    int tap_fd() const override { return fd_.get(); }
    BackendStats stats() const override;

    // TUNSETOFFLOAD flags for the GUEST_* bits of `features` (exposed for tests).
    static unsigned tun_offload_flags(uint64_t features);

private:
    TapBackend(base::UniqueFd fd, std::string ifname, bool vnet_hdr, uint64_t offloads)
        : fd_(std::move(fd)), ifname_(std::move(ifname)), vnet_hdr_(vnet_hdr), offloads_(offloads) {}

    base::UniqueFd fd_;
    std::string ifname_;
    bool vnet_hdr_;
    uint64_t offloads_;
    event::EventLoop* loop_ = nullptr;
    BackendClient* client_ = nullptr;
    bool polling_ = false;  // fd registered on the loop (loop thread only)
    std::atomic<uint64_t> rx_frames_{0}, rx_bytes_{0}, tx_frames_{0}, tx_bytes_{0}, rx_dropped_{0}, tx_dropped_{0};
};

}  // namespace kvmkit::net
