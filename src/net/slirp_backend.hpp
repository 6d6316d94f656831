// The user-mode backend (`--net user`): a private 10.0.2.0/24 network
// emulated by libslirp (Debian's libslirp 4.7) inside the VMM, with no root
// and no host set-up.
//
//   guest 10.0.2.15 (from libslirp's DHCP server)
//   gateway 10.0.2.2 = the host's 127.0.0.1 (TCP, UDP; ICMP echo answered)
//   host forwards: 127.0.0.1:HOSTPORT on the host -> guest:GUESTPORT
//
// Nothing else is reachable (user_net_policy.hpp): frames to other addresses
// are dropped before libslirp sees them, libslirp's outbound sockets are
// bound to 127.0.0.1 (the kernel routes that source nowhere but loopback),
// its DNS proxy is off (DHCP still names 10.0.2.3, which answers nothing) and
// IPv6 is off.
//
// Frames are bare Ethernet (has_vnet_hdr() is false; no offloads).
//
// Event loop (net::Backend's contract): libslirp is not thread-safe; every
// call into it happens under `State::mutex`, in practice on the device event
// loop thread, which watches libslirp's sockets (one epoll set of their own,
// refreshed from slirp_pollfds_fill after every libslirp call) and its
// timers and TCP timeouts (one timerfd).
//
// Receive: frames libslirp emits go to a bounded queue the device pulls with
// receive(). Its TCP timers always run; while the queue is longer than
// `rx_pause_frames` (the guest is not taking frames) libslirp's sockets are
// not polled, so it stops reading the host peers and TCP flow control pushes
// back on them instead of frames being dropped. Beyond `rx_queue_frames` /
// `rx_queue_bytes` frames are dropped and counted, as a NIC without buffers.
//
// Lock order: the device's lock -> State::mutex -> EventLoop's internal lock.
// The client is never called with State::mutex held.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/backend.hpp"
#include "net/net_options.hpp"
#include "net/user_net_policy.hpp"

namespace kvmkit::net {

struct SlirpBackendOptions {
    std::vector<HostForward> hostfwd;
    size_t rx_queue_frames = 512;
    size_t rx_queue_bytes = 2u << 20;
    size_t rx_pause_frames = 128;
};

// Counters beyond BackendStats, for tests and logs.
struct SlirpStats {
    uint64_t tx_dropped_policy = 0;  // guest frames refused by classify_guest_frame
    uint64_t rx_dropped_full = 0;    // frames for the guest dropped on a full queue
    uint64_t rx_queued = 0;          // frames waiting for the guest now
    uint64_t rx_pauses = 0;          // times host sockets were paused for a long queue
};

class SlirpBackend : public Backend {
public:
    // Starts libslirp and opens the host forwards' listening sockets, so a
    // port in use or a bad forward is an error here, before the VM starts.
    static base::Result<std::unique_ptr<SlirpBackend>> create(SlirpBackendOptions options);
    ~SlirpBackend() override;

    std::string describe() const override { return "user (10.0.2.0/24, host loopback at 10.0.2.2)"; }
    bool has_vnet_hdr() const override { return false; }
    base::Result<void> attach(event::EventLoop& loop, BackendClient& client) override;
    void detach() override;
    void set_rx_enabled(bool enabled) override;
    std::optional<size_t> peek_frame_size() override;
    base::Result<size_t> receive(std::span<const iovec> bufs) override;
    base::Result<void> transmit(std::span<const iovec> frame) override;
    BackendStats stats() const override;

    SlirpStats slirp_stats() const;
    // libslirp's own table of its connections (for debugging).
    std::string connection_info() const;

    struct State;

private:
    explicit SlirpBackend(std::shared_ptr<State> s) : s_(std::move(s)) {}
    std::shared_ptr<State> s_;
};

}  // namespace kvmkit::net
