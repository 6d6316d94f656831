// virtio-net (virtio spec 1.2, 5.1): one receive and one transmit queue and a
// control queue, over a net::Backend (TAP, user mode) or, for TAP with
// vhost=on, the kernel's vhost-net data path.
//
// Offered: MAC (configurable; default derived from the VM name and NIC
// index), STATUS (link up from the backend), MRG_RXBUF, CTRL_VQ with
// CTRL_RX (promiscuous/all-multicast/MAC table commands are acknowledged:
// frames are never filtered) and CTRL_GUEST_OFFLOADS, and the offloads the
// backend can carry (CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6, ECN: TAP with a
// vnet header only). Left out: MQ (one queue pair), MTU, CTRL_VLAN,
// GUEST_ANNOUNCE, CTRL_MAC_ADDR, UFO, RSS.
//
// Receive reads each frame with one backend receive() straight into the
// guest's buffers (for TAP a readv into guest memory); chains are popped
// ahead until they can hold the largest frame the guest may get, and those
// not used stay held for the next frame. When the guest's buffers cannot hold
// the largest frame, the frame goes through a bounce buffer and waits there
// (mergeable buffers) until the guest posts enough, or is dropped (a single
// buffer too small for it). With no guest buffers, the backend is told to
// stop (set_rx_enabled(false)).
//
// Guest input is hostile: a bad chain (Virtqueue's checks) follows
// QueueDevice::reject_bad_chain; a transmit chain with device-writable
// buffers, shorter than header + Ethernet header, longer than 64 KiB, or
// with a virtio-net header asking for an offload that was not negotiated is
// returned unsent and counted; a receive chain with driver-readable buffers
// or shorter than the header is returned unused and counted.
//
// Threads: queue work, backend callbacks and receive run on the device event
// loop; activate/reset/config on vCPU threads; mutex_ (QueueDevice) guards all.
// Lock order: VirtioNet::mutex_ -> backend internals (a backend never calls
// back synchronously, see net/backend.hpp) -> transport (interrupts).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "event/event_loop.hpp"
#include "net/backend.hpp"
#include "net/net_options.hpp"
#include "net/vhost_net.hpp"
#include "virtio/devices/queue_device.hpp"

namespace kvmkit::virtio {

class VirtioNet : public QueueDevice, private net::BackendClient, public std::enable_shared_from_this<VirtioNet> {
public:
    static constexpr uint16_t kRxQueue = 0, kTxQueue = 1, kCtrlQueue = 2;
    static constexpr uint16_t kQueueSize = 256;

    // The NIC `opts` asks for: its backend, its MAC (default_mac(vm_name,
    // index) unless given), vhost-net when asked and /dev/vhost-net works
    // (else one warning and the userspace path).
    static base::Result<std::shared_ptr<VirtioNet>> create(const net::NetOptions& opts, const std::string& vm_name,
                                                           size_t index, event::EventLoop& loop);
    // With a ready backend (tests, other callers); attaches it to `loop`.
    static base::Result<std::shared_ptr<VirtioNet>> create(std::unique_ptr<net::Backend> backend, net::MacAddress mac,
                                                           event::EventLoop& loop,
                                                           std::unique_ptr<net::VhostNet> vhost = nullptr);
    ~VirtioNet() override;

    const char* name() const override { return "virtio-net"; }
    DeviceType type() const override { return DeviceType::Net; }
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 3; }
    uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    base::Result<void> activate(uint64_t features, std::vector<QueueConfig> queues, memory::GuestMemory& mem,
                                VirtioInterrupt& irq) override;
    void process_queue(uint16_t queue) override;
    void reset() override;

    const net::MacAddress& mac() const { return mac_; }
    net::Backend& backend() { return *backend_; }
    bool vhost_running() const;

    struct Counters {
        uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0;
        uint64_t rx_dropped = 0;  // frames the guest never saw (too big for its buffers, truncated)
        uint64_t tx_dropped = 0;  // well-formed frames the backend refused
        uint64_t bad_frames = 0;  // malformed guest chains or headers (sent nowhere)
        uint64_t ctrl_commands = 0;
    };
    Counters counters() const;

    VirtioNet(std::unique_ptr<net::Backend> backend, net::MacAddress mac, event::EventLoop& loop,
              std::unique_ptr<net::VhostNet> vhost);

private:
    struct RxChain {
        uint16_t head;
        std::vector<iovec> iov;  // the chain's writable buffers in host memory
        size_t capacity;
    };

    // net::BackendClient (loop thread)
    void rx_ready() override;
    void link_changed(bool up) override;

    // All below: mutex_ held.
    bool rx_usable() const;
    void receive_frames();
    bool fill_rx(size_t need, bool& used);
    size_t rx_chains_for(size_t len) const;
    void build_rx_iov(size_t nchains, size_t skip, std::vector<iovec>& out) const;
    void complete_rx(size_t frame_len, bool& used);
    bool deliver_bounced(bool& used);
    void set_rx(bool enabled);
    void transmit_frames();
    void transmit_one(const DescriptorChain& chain);
    void control(uint16_t queue);
    uint8_t control_command(uint8_t cls, uint8_t cmd, const std::vector<uint8_t>& data);
    void start_vhost();
    void bad_guest(const char* what);

    std::unique_ptr<net::Backend> backend_;
    net::MacAddress mac_;
    event::EventLoop& loop_;
    std::unique_ptr<net::VhostNet> vhost_;
    const bool backend_hdr_;  // frames from/to the backend carry the virtio-net header

    bool mergeable_ = false;
    uint64_t rx_offloads_ = 0;  // GUEST_* offloads in force (negotiated, or set by the control queue)
    size_t max_rx_frame_ = 0;   // the largest frame (with header) the guest may be given
    std::deque<RxChain> rx_held_;
    size_t rx_held_capacity_ = 0;
    std::vector<uint8_t> bounce_;
    size_t bounced_len_ = 0;   // a frame (with header) waiting in bounce_ for guest buffers
    bool rx_enabled_ = false;  // what the backend was last told
    bool rx_continue_posted_ = false;
    bool link_up_ = true;
    Counters counters_;
};

}  // namespace kvmkit::virtio
