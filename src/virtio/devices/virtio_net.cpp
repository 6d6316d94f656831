#include "virtio/devices/virtio_net.hpp"

#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "net/backend_factory.hpp"

namespace kvmkit::virtio {

namespace feature = net::feature;
using net::kVnetHdrSize;

namespace {

// Control commands (spec 5.1.6.5).
constexpr uint8_t kCtrlClassRx = 0, kCtrlClassMac = 1, kCtrlClassGuestOffloads = 5;
constexpr uint8_t kCtrlRxPromisc = 0, kCtrlRxAllmulti = 1;
constexpr uint8_t kCtrlMacTableSet = 0;
constexpr uint8_t kCtrlGuestOffloadsSet = 0;
constexpr uint8_t kCtrlAckOk = 0, kCtrlAckErr = 1;

constexpr uint16_t kStatusLinkUp = 1;
constexpr unsigned kRxBudget = 64;  // frames per loop callback, so transmit and other devices get their turn
constexpr size_t kMaxIov = 1024;    // IOV_MAX: more pieces go through the bounce buffer
constexpr uint64_t kGuestOffloadBits =
    feature::kGuestCsum | feature::kGuestTso4 | feature::kGuestTso6 | feature::kGuestEcn | feature::kGuestUfo;

// Copies between a flat buffer and an iovec list, starting `offset` bytes into the list.
size_t copy_to_iov(const std::vector<iovec>& iov, size_t offset, const void* src, size_t len) {
    size_t done = 0;
    for (const auto& v : iov) {
        if (done == len) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t n = std::min(v.iov_len - offset, len - done);
        std::memcpy(static_cast<uint8_t*>(v.iov_base) + offset, static_cast<const uint8_t*>(src) + done, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t copy_from_iov(const std::vector<iovec>& iov, size_t offset, void* dst, size_t len) {
    size_t done = 0;
    for (const auto& v : iov) {
        if (done == len) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t n = std::min(v.iov_len - offset, len - done);
        std::memcpy(static_cast<uint8_t*>(dst) + done, static_cast<const uint8_t*>(v.iov_base) + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

#pragma pack(push, 1)
struct NetConfig {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
};
#pragma pack(pop)
static_assert(sizeof(NetConfig) == 12);

// The largest frame (with header) the guest can be given with these receive offloads.
size_t max_rx_frame(uint64_t rx_offloads) {
    bool gso = rx_offloads & (feature::kGuestTso4 | feature::kGuestTso6 | feature::kGuestUfo);
    return gso ? net::kMaxFrameSize : net::kMaxMtuFrameSize + kVnetHdrSize;
}

}  // namespace

base::Result<std::shared_ptr<VirtioNet>> VirtioNet::create(const net::NetOptions& opts, const std::string& vm_name,
                                                           size_t index, event::EventLoop& loop) {
    auto backend = TRY(net::create_backend(opts));
    std::unique_ptr<net::VhostNet> vhost;
    if (opts.vhost) {
        if (backend->tap_fd() < 0) {
            LOG_WARN("virtio-net %s: vhost=on needs a TAP; using the userspace path", backend->describe().c_str());
        } else if (auto v = net::VhostNet::open(); !v) {
            LOG_WARN("virtio-net %s: vhost=on, but %s: using the userspace TAP path instead",
                     backend->describe().c_str(), v.error().message().c_str());
        } else {
            vhost = std::move(*v);
        }
    }
    net::MacAddress mac = opts.mac.value_or(net::default_mac(vm_name, index));
    return create(std::move(backend), mac, loop, std::move(vhost));
}

base::Result<std::shared_ptr<VirtioNet>> VirtioNet::create(std::unique_ptr<net::Backend> backend, net::MacAddress mac,
                                                           event::EventLoop& loop,
                                                           std::unique_ptr<net::VhostNet> vhost) {
    auto dev = std::make_shared<VirtioNet>(std::move(backend), mac, loop, std::move(vhost));
    TRY_CTX(dev->backend_->attach(loop, *dev), "virtio-net " + dev->backend_->describe());
    LOG_INFO("virtio-net: %s, MAC %s%s", dev->backend_->describe().c_str(), mac.to_string().c_str(),
             dev->vhost_ ? ", vhost-net" : "");
    return dev;
}

VirtioNet::VirtioNet(std::unique_ptr<net::Backend> backend, net::MacAddress mac, event::EventLoop& loop,
                     std::unique_ptr<net::VhostNet> vhost)
    : backend_(std::move(backend)),
      mac_(mac),
      loop_(loop),
      vhost_(std::move(vhost)),
      backend_hdr_(backend_->has_vnet_hdr()),
      bounce_(net::kMaxFrameSize),
      link_up_(backend_->link_up()) {}

VirtioNet::~VirtioNet() {
    std::lock_guard lock(mutex_);
    if (vhost_) vhost_->stop();
    backend_->detach();
}

uint64_t VirtioNet::device_features() const {
    uint64_t f = feature::kMac | feature::kStatus | feature::kMrgRxbuf | feature::kCtrlVq | feature::kCtrlRx;
    uint64_t offloads = backend_hdr_ ? backend_->offload_features() & feature::kAllOffloads : 0;
    f |= offloads;
    if (offloads & kGuestOffloadBits) f |= feature::kCtrlGuestOffloads;
    return f;
}

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) {
    NetConfig c{};
    std::memcpy(c.mac, mac_.bytes.data(), 6);
    {
        std::lock_guard lock(mutex_);
        c.status = link_up_ ? kStatusLinkUp : 0;
    }
    c.max_virtqueue_pairs = 1;
    c.mtu = 1500;
    const auto* raw = reinterpret_cast<const uint8_t*>(&c);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof c ? raw[offset + i] : 0;
}

base::Result<void> VirtioNet::activate(uint64_t features, std::vector<QueueConfig> queues, memory::GuestMemory& mem,
                                       VirtioInterrupt& irq) {
    TRY(QueueDevice::activate(features, std::move(queues), mem, irq));
    std::lock_guard lock(mutex_);
    mergeable_ = features & feature::kMrgRxbuf;
    rx_offloads_ = features & kGuestOffloadBits;
    max_rx_frame_ = max_rx_frame(rx_offloads_);
    rx_held_.clear();
    rx_held_capacity_ = 0;
    bounced_len_ = 0;
    LOG_INFO("virtio-net %s: driver features 0x%llx (mergeable %s, receive offloads 0x%llx)",
             backend_->describe().c_str(), static_cast<unsigned long long>(features), mergeable_ ? "on" : "off",
             static_cast<unsigned long long>(rx_offloads_));
    if (auto r = backend_->set_guest_offloads(features); !r)
        LOG_WARN("virtio-net %s: %s", backend_->describe().c_str(), r.error().message().c_str());
    if (vhost_) start_vhost();
    return base::ok();
}

void VirtioNet::start_vhost() {
    std::vector<net::VhostMemRegion> regions;
    for (const auto& r : mem_->regions()) regions.push_back({r.base, r.size, reinterpret_cast<uint64_t>(r.host)});
    std::vector<net::VhostQueue> qs;
    for (uint16_t q : {kRxQueue, kTxQueue}) {
        if (q >= queues_.size() || !queues_[q]) {
            LOG_WARN("virtio-net %s: the driver did not enable queue %u; vhost-net not started",
                     backend_->describe().c_str(), q);
            return;
        }
        const auto& cfg = queues_[q]->config();
        qs.push_back({cfg.size, cfg.desc_table, cfg.avail_ring, cfg.used_ring, queues_[q]->next_avail(),
                      irq_->queue_notify_fd(q), irq_->queue_irq_fd(q)});
    }
    uint64_t f = net::vhost_net_features(features_, vhost_->kernel_features(), backend_hdr_);
    if (auto r = vhost_->start(f, regions, qs, backend_->tap_fd()); !r)
        LOG_WARN("virtio-net %s: vhost-net not started (%s); the VMM serves the queues", backend_->describe().c_str(),
                 r.error().message().c_str());
    else
        LOG_INFO("virtio-net %s: data path in vhost-net", backend_->describe().c_str());
}

bool VirtioNet::vhost_running() const {
    std::lock_guard lock(mutex_);
    return vhost_ && vhost_->running();
}

void VirtioNet::reset() {
    std::lock_guard lock(mutex_);
    if (vhost_) vhost_->stop();  // before the rings go away
    (void)backend_->set_guest_offloads(0);
    rx_held_.clear();  // popped, never used: the driver reclaims them on reset
    rx_held_capacity_ = 0;
    bounced_len_ = 0;
    mergeable_ = false;
    max_rx_frame_ = 0;
    rx_offloads_ = 0;
    queues_.clear();
    mem_ = nullptr;
    irq_ = nullptr;
    features_ = 0;
    // The backend's receive side is switched off from the loop thread, on its next rx_ready().
}

VirtioNet::Counters VirtioNet::counters() const {
    std::lock_guard lock(mutex_);
    Counters c = counters_;
    c.bad_frames += bad_chains_;  // chains the queue itself refused (QueueDevice::reject_bad_chain)
    return c;
}

void VirtioNet::bad_guest(const char* what) {
    ++counters_.bad_frames;
    if (warn_.allow()) LOG_WARN("virtio-net %s: %s", backend_->describe().c_str(), what);
}

void VirtioNet::process_queue(uint16_t queue) {
    std::lock_guard lock(mutex_);
    if (vhost_ && vhost_->running() && queue != kCtrlQueue) return;  // the kernel serves rx and tx
    switch (queue) {
        case kRxQueue:
            receive_frames();
            break;  // the guest posted receive buffers
        case kTxQueue:
            transmit_frames();
            break;
        case kCtrlQueue:
            control(queue);
            break;
        default:
            break;
    }
}

// ---- receive ----

void VirtioNet::rx_ready() {
    std::lock_guard lock(mutex_);
    rx_continue_posted_ = false;
    receive_frames();
}

void VirtioNet::link_changed(bool up) {
    std::lock_guard lock(mutex_);
    if (link_up_ == up) return;
    link_up_ = up;
    if (irq_) irq_->signal_config();
}

void VirtioNet::set_rx(bool enabled) {
    if (enabled == rx_enabled_) return;
    rx_enabled_ = enabled;
    backend_->set_rx_enabled(enabled);
}

bool VirtioNet::rx_usable() const {
    return irq_ && max_rx_frame_ > 0 && kRxQueue < queues_.size() && queues_[kRxQueue] &&
           !queues_[kRxQueue]->broken() && !(vhost_ && vhost_->running());
}

bool VirtioNet::fill_rx(size_t need, bool& used) {
    auto& vq = *queues_[kRxQueue];
    for (;;) {
        if (!rx_held_.empty()) {
            size_t have = mergeable_ ? rx_held_capacity_ : rx_held_.front().capacity;
            if (have >= need) return true;
            if (!mergeable_) return false;  // one chain per frame, and this one is too small
        }
        auto next = vq.pop();
        if (!next) {
            if (!vq.enable_notification()) return false;  // the guest is out of buffers: it will notify
            continue;
        }
        if (!next->has_value()) {
            if (!reject_bad_chain(vq, next->error(), used)) return false;
            continue;
        }
        const DescriptorChain& chain = **next;
        if (!chain.readable.empty() || chain.writable_bytes() < kVnetHdrSize) {
            bad_guest(chain.readable.empty() ? "receive buffer shorter than the virtio-net header"
                                             : "receive chain with driver-readable buffers");
            (void)vq.push_used(chain.head, 0);
            used = true;
            continue;
        }
        RxChain rc{chain.head, {}, 0};
        for (const auto& d : chain.writable) {
            auto s = mem_->host_span(d.addr, d.len);  // checked by the queue; never empty here
            rc.iov.push_back({s.data(), s.size()});
            rc.capacity += s.size();
        }
        rx_held_capacity_ += rc.capacity;
        rx_held_.push_back(std::move(rc));
    }
}

size_t VirtioNet::rx_chains_for(size_t len) const {
    size_t n = 0, cap = 0;
    while (n < rx_held_.size() && cap < len) cap += rx_held_[n++].capacity;
    return n;
}

void VirtioNet::build_rx_iov(size_t nchains, size_t skip, std::vector<iovec>& out) const {
    out.clear();
    for (size_t i = 0; i < nchains && i < rx_held_.size(); ++i) {
        for (const auto& v : rx_held_[i].iov) {
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            out.push_back({static_cast<uint8_t*>(v.iov_base) + skip, v.iov_len - skip});
            skip = 0;
        }
    }
}

void VirtioNet::receive_frames() {
    if (!rx_usable()) {
        set_rx(false);
        return;
    }
    auto& vq = *queues_[kRxQueue];
    const size_t extra = backend_hdr_ ? 0 : kVnetHdrSize;  // header room the device fills itself
    bool used = false, more = false, failed = false;
    std::vector<iovec> iov;
    for (unsigned budget = kRxBudget;; --budget) {
        if (budget == 0) {
            more = true;
            break;
        }
        if (bounced_len_) {
            if (!deliver_bounced(used)) break;  // waits for the guest to post more buffers
            continue;
        }
        auto peek = backend_->peek_frame_size();
        const size_t need = peek ? *peek + extra : max_rx_frame_;
        const bool enough = fill_rx(need, used);
        if (rx_held_.empty()) break;  // no guest buffers: stop reading until it posts some
        const size_t nchains = mergeable_ ? rx_chains_for(need) : 1;
        build_rx_iov(nchains, extra, iov);
        if (enough && iov.size() <= kMaxIov) {
            // The usual case: one read straight into the guest's buffers.
            auto r = backend_->receive(iov);
            if (!r) {
                if (warn_.allow())
                    LOG_WARN("virtio-net %s: receive: %s", backend_->describe().c_str(), r.error().message().c_str());
                failed = true;
                break;
            }
            if (*r == 0) break;
            size_t cap = 0;
            for (size_t i = 0; i < nchains; ++i) cap += rx_held_[i].capacity;
            if (*r + extra > cap) {
                ++counters_.rx_dropped;  // the backend truncated it
                continue;
            }
            complete_rx(*r + extra, used);
        } else {
            // The guest's buffers may be too small for the frame: read it aside first.
            std::vector<iovec> b{{bounce_.data() + extra, bounce_.size() - extra}};
            auto r = backend_->receive(b);
            if (!r) {
                if (warn_.allow())
                    LOG_WARN("virtio-net %s: receive: %s", backend_->describe().c_str(), r.error().message().c_str());
                failed = true;
                break;
            }
            if (*r == 0) break;
            if (*r + extra > bounce_.size()) {
                ++counters_.rx_dropped;
                continue;
            }
            bounced_len_ = *r + extra;
            if (!deliver_bounced(used)) break;
        }
    }
    if (more && !rx_continue_posted_) {
        rx_continue_posted_ = true;
        loop_.post([weak = weak_from_this()] {
            if (auto self = weak.lock()) self->rx_ready();
        });
    }
    // Read from the backend only while the guest has buffers and no frame waits for more.
    set_rx(!failed && bounced_len_ == 0 && !rx_held_.empty() && !vq.broken());
    if (used && vq.should_notify()) irq_->signal_queue(kRxQueue);
}

bool VirtioNet::deliver_bounced(bool& used) {
    if (!fill_rx(bounced_len_, used)) {
        if (!mergeable_ && !rx_held_.empty()) {
            ++counters_.rx_dropped;  // a frame larger than the guest's (single) buffers
            bounced_len_ = 0;
            return true;
        }
        return false;
    }
    std::vector<iovec> iov;
    build_rx_iov(mergeable_ ? rx_chains_for(bounced_len_) : 1, 0, iov);
    copy_to_iov(iov, 0, bounce_.data(), bounced_len_);
    size_t len = bounced_len_;
    bounced_len_ = 0;
    complete_rx(len, used);
    return true;
}

void VirtioNet::complete_rx(size_t len, bool& used) {
    const size_t n = mergeable_ ? rx_chains_for(len) : 1;
    net::VirtioNetHdr hdr{};
    if (backend_hdr_) {
        copy_from_iov(rx_held_.front().iov, 0, &hdr, kVnetHdrSize);
        // Only what the driver accepted may reach it (TUNSETOFFLOAD should already ensure this).
        if (!(rx_offloads_ & feature::kGuestCsum)) hdr.flags = 0;
        uint8_t gso = hdr.gso_type & ~net::kVnetHdrGsoEcn;
        bool gso_ok = gso == net::kVnetHdrGsoNone ||
                      (gso == net::kVnetHdrGsoTcpv4 && (rx_offloads_ & feature::kGuestTso4)) ||
                      (gso == net::kVnetHdrGsoTcpv6 && (rx_offloads_ & feature::kGuestTso6)) ||
                      (gso == net::kVnetHdrGsoUdp && (rx_offloads_ & feature::kGuestUfo));
        if (!gso_ok || ((hdr.gso_type & net::kVnetHdrGsoEcn) && !(rx_offloads_ & feature::kGuestEcn))) {
            ++counters_.rx_dropped;
            return;  // the chains stay held for the next frame
        }
    }
    hdr.num_buffers = static_cast<uint16_t>(n);
    copy_to_iov(rx_held_.front().iov, 0, &hdr, kVnetHdrSize);
    auto& vq = *queues_[kRxQueue];
    size_t left = len;
    for (size_t i = 0; i < n; ++i) {
        RxChain& c = rx_held_.front();
        size_t w = std::min(c.capacity, left);
        left -= w;
        (void)vq.push_used(c.head, static_cast<uint32_t>(w));
        rx_held_capacity_ -= c.capacity;
        rx_held_.pop_front();
    }
    used = true;
    ++counters_.rx_frames;
    counters_.rx_bytes += len - kVnetHdrSize;
}

// ---- transmit ----

void VirtioNet::transmit_frames() {
    drain(kTxQueue, [this](const DescriptorChain& chain) -> uint32_t {
        transmit_one(chain);
        return 0;  // the device writes nothing into a transmit chain
    });
}

void VirtioNet::transmit_one(const DescriptorChain& chain) {
    if (!chain.writable.empty()) return bad_guest("transmit chain with device-writable buffers");
    const uint64_t total = chain.readable_bytes();
    if (total < kVnetHdrSize + 14) return bad_guest("transmit frame shorter than the virtio-net and Ethernet headers");
    if (total > net::kMaxFrameSize) return bad_guest("transmit frame longer than 64 KiB");

    net::VirtioNetHdr hdr{};
    std::vector<iovec> iov;
    iov.reserve(chain.readable.size() + 1);
    if (backend_hdr_) iov.push_back({&hdr, kVnetHdrSize});
    size_t skip = kVnetHdrSize, got = 0;
    for (const auto& d : chain.readable) {
        auto s = mem_->host_span(d.addr, d.len);  // checked by the queue
        size_t take = std::min<size_t>(skip, s.size());
        std::memcpy(reinterpret_cast<uint8_t*>(&hdr) + got, s.data(), take);
        got += take;
        skip -= take;
        if (s.size() > take) iov.push_back({s.data() + take, s.size() - take});
    }

    // The header may only ask for what was negotiated (spec 5.1.6.2).
    const bool csum = hdr.flags & net::kVnetHdrFNeedsCsum;
    if (csum && !(features_ & feature::kCsum)) return bad_guest("checksum offload requested but not negotiated");
    const uint8_t gso = hdr.gso_type & ~net::kVnetHdrGsoEcn;
    if (gso != net::kVnetHdrGsoNone) {
        uint64_t needed = gso == net::kVnetHdrGsoTcpv4   ? feature::kHostTso4
                          : gso == net::kVnetHdrGsoTcpv6 ? feature::kHostTso6
                                                         : 0;
        if (!needed || !(features_ & needed)) return bad_guest("segmentation offload requested but not negotiated");
        if (!csum || hdr.gso_size == 0) return bad_guest("segmentation offload without checksum offload or size");
    }
    if ((hdr.gso_type & net::kVnetHdrGsoEcn) && (gso == net::kVnetHdrGsoNone || !(features_ & feature::kHostEcn)))
        return bad_guest("ECN segmentation requested but not negotiated");
    hdr.flags &= net::kVnetHdrFNeedsCsum;
    hdr.num_buffers = 0;

    if (auto r = backend_->transmit(iov); !r) {
        ++counters_.tx_dropped;
        LOG_DEBUG("virtio-net %s: frame dropped: %s", backend_->describe().c_str(), r.error().message().c_str());
        return;
    }
    ++counters_.tx_frames;
    counters_.tx_bytes += total - kVnetHdrSize;
}

// ---- control ----

void VirtioNet::control(uint16_t queue) {
    drain(queue, [this](const DescriptorChain& chain) -> uint32_t {
        ++counters_.ctrl_commands;
        if (chain.writable.empty() || chain.readable_bytes() < 2) {
            bad_guest("control command without class/command or ack byte");
            return 0;
        }
        // class, command, and the first bytes of the data (no command we take needs more).
        uint8_t head[2 + 8] = {};
        size_t got = 0;
        for (const auto& d : chain.readable) {
            size_t take = std::min<size_t>(d.len, sizeof head - got);
            if (take && !mem_->read(d.addr, head + got, take)) break;
            got += take;
            if (got == sizeof head) break;
        }
        const uint64_t data_len = chain.readable_bytes() - 2;
        std::vector<uint8_t> data(head + 2, head + std::min<size_t>(got, sizeof head));
        uint8_t ack = control_command(head[0], head[1], data);
        if (ack == kCtrlAckOk && data_len > data.size() && head[0] != kCtrlClassMac) ack = kCtrlAckErr;
        const auto& last = chain.writable.back();
        if (!mem_->write_obj(last.addr + last.len - 1, ack)) return 0;
        return 1;
    });
}

uint8_t VirtioNet::control_command(uint8_t cls, uint8_t cmd, const std::vector<uint8_t>& data) {
    switch (cls) {
        case kCtrlClassRx:
            // Promiscuous / all-multicast: the device never filters, so both are already true.
            if (!(features_ & feature::kCtrlRx)) return kCtrlAckErr;
            return (cmd == kCtrlRxPromisc || cmd == kCtrlRxAllmulti) && data.size() == 1 ? kCtrlAckOk : kCtrlAckErr;
        case kCtrlClassMac:
            // The MAC filter table: accepted and not applied (no filtering, as in promiscuous mode).
            if (!(features_ & feature::kCtrlRx)) return kCtrlAckErr;
            return cmd == kCtrlMacTableSet && data.size() >= 4 ? kCtrlAckOk : kCtrlAckErr;
        case kCtrlClassGuestOffloads: {
            if (!(features_ & feature::kCtrlGuestOffloads) || cmd != kCtrlGuestOffloadsSet || data.size() != 8)
                return kCtrlAckErr;
            uint64_t want = 0;
            std::memcpy(&want, data.data(), 8);
            // Only offloads negotiated at feature time may be switched back on (spec 5.1.6.5.6.1).
            if (want & ~(features_ & kGuestOffloadBits)) return kCtrlAckErr;
            if (auto r = backend_->set_guest_offloads((features_ & ~kGuestOffloadBits) | want); !r) {
                LOG_WARN("virtio-net %s: %s", backend_->describe().c_str(), r.error().message().c_str());
                return kCtrlAckErr;
            }
            rx_offloads_ = want;
            // Keep room for the largest frame ever allowed since activation: a GSO frame may already be queued.
            max_rx_frame_ = std::max(max_rx_frame_, max_rx_frame(want));
            return kCtrlAckOk;
        }
        default:
            return kCtrlAckErr;
    }
}

}  // namespace kvmkit::virtio
