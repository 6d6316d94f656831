// net::Backend: where a virtio-net device's frames go and come from — a TAP
// device (fd-based) or libslirp (user mode, callback-based). The device owns
// its backend; both run on the device event loop thread.
//
// Frames. Every frame crossing this interface is an Ethernet frame without
// FCS. When has_vnet_hdr() is true it is preceded by a 12-byte VirtioNetHdr
// (net/vnet_header.hpp), in both directions, and the device passes the
// guest's header through; otherwise frames are bare and the device adds a
// zero header on receive and strips the guest's on transmit (so it offers
// no offloads).
//
// Event loop. attach() gives the backend the loop and the client; the
// backend registers (and on detach() unregisters) its own fds and timers on
// that loop. It calls the client only from its own loop callbacks (or work it
// post()s to the loop) — never from inside a Backend method the device
// called. That lets the device hold its lock while it calls receive() or
// transmit(): e.g. libslirp may emit frames synchronously inside
// slirp_input() during transmit(); the backend queues them and tells the
// client afterwards from a posted callback.
//
// Receive (backend -> guest), a pull model with backpressure:
//   1. the backend calls client.rx_ready() when frames may be waiting;
//   2. the device gathers guest receive buffers and calls receive(bufs)
//      until it returns 0 (nothing waiting) or it runs out of buffers;
//   3. with no guest buffers left it calls set_rx_enabled(false): a TAP stops
//      polling its fd (the kernel queues, then drops, as on a real NIC); user
//      mode keeps at most a bounded number of frames queued and drops the
//      rest (counted). When the guest posts buffers, set_rx_enabled(true); the
//      backend then calls rx_ready() if frames are waiting.
//   receive() scatters one whole frame into `bufs` (for TAP a single readv
//   straight into guest memory) and returns its full length. A frame longer
//   than the buffers is consumed truncated and its full length returned, so
//   the device sees length > capacity and drops it. The device makes the
//   buffers at least kMaxFrameSize long when GSO is on, else
//   kMaxMtuFrameSize + header, or uses peek_frame_size() when the backend
//   knows the next frame's size (user mode).
//
// Transmit (guest -> backend): transmit(frame) with the frame as an iovec
// chain pointing into guest memory. The backend must be done with the
// memory when it returns (the device gives the buffers back to the guest
// right after). It never blocks: a frame the backend cannot take now is
// dropped (an error return), as a NIC drops on a full queue.
//
// Offloads. offload_features() is the set of virtio-net offload feature bits
// the backend can carry (only with a vnet header: TAP answers CSUM,
// GUEST_CSUM, HOST/GUEST_TSO4/6, ECN, UFO; user mode 0). The device offers
// only those; after the driver accepted its features, the device calls
// set_guest_offloads(accepted) so the backend can deliver what the guest can
// take (TAP: TUNSETOFFLOAD from the GUEST_* bits).
//
// Threads: attach/detach/set_guest_offloads may be called on any thread
// (device construction, activation on a vCPU thread); receive, transmit,
// set_rx_enabled and every client callback run on the loop thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/result.hpp"
#include "event/event_loop.hpp"
#include "net/vnet_header.hpp"

namespace kvmkit::net {

// The device side, as the backend sees it. Called on the loop thread.
class BackendClient {
public:
    virtual ~BackendClient() = default;
    // Frames may be waiting: the device calls receive() while it has buffers.
    virtual void rx_ready() = 0;
    // The link went up or down (virtio-net STATUS, config change interrupt).
    virtual void link_changed(bool up) = 0;
};

// Counters every backend keeps; read from any thread (approximate).
struct BackendStats {
    uint64_t rx_frames = 0, rx_bytes = 0;  // handed to the device
    uint64_t tx_frames = 0, tx_bytes = 0;  // taken from the device
    uint64_t rx_dropped = 0;               // dropped before the guest saw them (queue full, truncated)
    uint64_t tx_dropped = 0;               // refused by transmit()
};

class Backend {
public:
    virtual ~Backend() = default;

    // For logs: "tap kvmkit0", "user (10.0.2.0/24)".
    virtual std::string describe() const = 0;

    // True: frames carry a VirtioNetHdr in front (TAP with IFF_VNET_HDR).
    virtual bool has_vnet_hdr() const = 0;
    // Offload feature bits (net::feature::kAllOffloads subset) the backend can
    // carry; must be 0 without a vnet header.
    virtual uint64_t offload_features() const { return 0; }
    // The driver accepted `features` (all virtio-net bits): enable the
    // backend's side (TAP: which offloaded frames the kernel may hand us).
    virtual base::Result<void> set_guest_offloads(uint64_t /*features*/) { return base::ok(); }

    // Registers the backend's fds/timers on `loop`; the client is called from
    // there until detach(). Receive starts disabled (set_rx_enabled(true)).
    virtual base::Result<void> attach(event::EventLoop& loop, BackendClient& client) = 0;
    // Unregisters everything; no client call happens after it returns. Must
    // be called on the loop thread or with the loop stopped.
    virtual void detach() = 0;

    // Flow control from the guest's receive buffers (see the header comment).
    virtual void set_rx_enabled(bool enabled) = 0;
    // The size of the next frame (with the vnet header if any) when the
    // backend knows it without reading it (user mode), nullopt otherwise
    // (TAP) or when none is waiting.
    virtual std::optional<size_t> peek_frame_size() { return std::nullopt; }
    // Reads one frame into `bufs`: 0 when none is waiting, else the frame's
    // full length (> the buffers' capacity: truncated, drop it). Errors are
    // host I/O errors, not guest errors.
    virtual base::Result<size_t> receive(std::span<const iovec> bufs) = 0;
    // Sends one frame; an error means it was dropped (with the reason).
    virtual base::Result<void> transmit(std::span<const iovec> frame) = 0;

    // Whether the link is up (virtio-net config status, VIRTIO_NET_S_LINK_UP).
    virtual bool link_up() const { return true; }

    // For vhost-net: the TAP fd the kernel data path attaches to
    // (VHOST_NET_SET_BACKEND); -1 when the backend has none.
    virtual int tap_fd() const { return -1; }

    virtual BackendStats stats() const = 0;
};

// Total length of an iovec array.
inline size_t iov_length(std::span<const iovec> iov) {
    size_t n = 0;
    for (const auto& v : iov) n += v.iov_len;
    return n;
}

}  // namespace kvmkit::net
