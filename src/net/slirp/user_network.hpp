// User-mode networking (`--net user`): a private 10.0.2.0/24 network
// emulated by libslirp in the VMM process, no root and no host set-up.
//
//   guest 10.0.2.15 (from libslirp's DHCP server)
//   gateway 10.0.2.2 = the host's 127.0.0.1 (TCP, UDP; ICMP echo answered)
//   host forwards: 127.0.0.1:HOSTPORT on the host -> guest:GUESTPORT
//
// Nothing else is reachable (see user_net_policy.hpp): frames to other
// addresses are dropped before libslirp sees them, libslirp's outbound
// sockets are bound to 127.0.0.1, its DNS proxy is off and IPv6 is off.
//
// Threads: libslirp is not thread-safe; every call into it happens under
// one lock, in practice on the device event loop thread, which also watches
// libslirp's sockets (through one epoll set of their own) and its timers
// (one timerfd). Frames for the guest are queued (bounded) and handed to
// `deliver` without that lock, so a device may call send() while holding
// its own lock and take it again in deliver.
//
// Lock order: flush_mutex -> (deliver: the device's locks); flush_mutex ->
// mutex; mutex -> EventLoop's internal lock. mutex is never held while
// `deliver` runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "event/event_loop.hpp"
#include "net/slirp/host_forward.hpp"
#include "net/slirp/user_net_policy.hpp"

namespace kvmkit::net {

struct UserNetworkOptions {
    std::string name = "net";  // prefix of log lines
    std::vector<HostForward> forwards;
    // Frames for the guest wait here while it has no receive buffers. Above
    // `rx_pause_frames` libslirp stops reading host sockets (TCP flow control
    // reaches the host peer); above `rx_queue_frames` or `rx_queue_bytes`
    // frames are dropped (and counted), as a full NIC would.
    size_t rx_queue_frames = 1024;
    size_t rx_queue_bytes = 4u << 20;
    size_t rx_pause_frames = 128;
};

struct UserNetworkStats {
    uint64_t tx_frames = 0;  // guest -> libslirp, passed the filter
    uint64_t tx_bytes = 0;
    uint64_t tx_dropped_policy = 0;  // refused by classify_guest_frame
    uint64_t rx_frames = 0;          // libslirp -> guest, delivered
    uint64_t rx_bytes = 0;
    uint64_t rx_dropped_full = 0;  // the queue for the guest was full
    uint64_t rx_queued = 0;        // waiting for guest buffers now
    uint64_t rx_pauses = 0;        // times host sockets were paused for a full queue
};

class UserNetwork {
public:
    // Hands one Ethernet frame to the guest; false: no room now (the frame
    // stays queued until rx_ready()). Never called with UserNetwork's lock held.
    using Deliver = std::function<bool(std::span<const uint8_t> frame)>;

    // Starts libslirp and the host forwards (their listening sockets are open
    // when this returns: a port in use is an error here). `loop` must outlive
    // the UserNetwork.
    static base::Result<std::unique_ptr<UserNetwork>> create(event::EventLoop& loop, UserNetworkOptions options,
                                                             Deliver deliver);
    ~UserNetwork();
    UserNetwork(const UserNetwork&) = delete;
    UserNetwork& operator=(const UserNetwork&) = delete;

    // One Ethernet frame from the guest (without a virtio-net header).
    void send(std::span<const uint8_t> frame);
    // The guest posted receive buffers: queued frames go out (on the loop thread).
    void rx_ready();

    UserNetworkStats stats() const;
    const UserNetAddresses& addresses() const;
    // libslirp's own description of its sockets (for debugging).
    std::string connection_info() const;

    struct State;

private:
    explicit UserNetwork(std::shared_ptr<State> s) : s_(std::move(s)) {}
    std::shared_ptr<State> s_;
};

}  // namespace kvmkit::net
