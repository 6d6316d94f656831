#include "net/tap_backend.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "base/log.hpp"

namespace kvmkit::net {

using base::fail;
using base::Result;

namespace {

// The host-side offloads a TAP can take from us with a vnet header (any
// kernel with IFF_VNET_HDR), and those it can hand us once TUNSETOFFLOAD
// allows them. UFO is left out: Linux dropped UDP fragmentation offload
// (4.14) and only some kernels accept TUN_F_UFO again.
constexpr uint64_t kHostOffloads = feature::kCsum | feature::kHostTso4 | feature::kHostTso6 | feature::kHostEcn;
constexpr uint64_t kGuestOffloads =
    feature::kGuestCsum | feature::kGuestTso4 | feature::kGuestTso6 | feature::kGuestEcn;

// Brings the interface up (IFF_UP), as QEMU's default if-up script would.
// Best effort: an unprivileged user with a pre-made tap may not be allowed.
void bring_up(const std::string& name) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (::ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            LOG_INFO("tap %s: not brought up (%s); bring it up with: ip link set %s up", name.c_str(), strerror(errno),
                     name.c_str());
    }
    ::close(s);
}

}  // namespace

unsigned TapBackend::tun_offload_flags(uint64_t f) {
    // TSO needs checksum offload: a GSO frame always has a partial checksum.
    if (!(f & feature::kGuestCsum)) return 0;
    unsigned flags = TUN_F_CSUM;
    if (f & feature::kGuestTso4) flags |= TUN_F_TSO4;
    if (f & feature::kGuestTso6) flags |= TUN_F_TSO6;
    if ((f & feature::kGuestEcn) && (f & (feature::kGuestTso4 | feature::kGuestTso6))) flags |= TUN_F_TSO_ECN;
    return flags;
}

Result<std::unique_ptr<TapBackend>> TapBackend::open(const std::string& ifname) {
    std::string what = ifname.empty() ? "tap" : "tap '" + ifname + "'";
    int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            return fail(what + ": /dev/net/tun is missing (load the tun module: modprobe tun)");
        if (e == EACCES || e == EPERM)
            return fail(what + ": no permission to open /dev/net/tun (run as root or with CAP_NET_ADMIN)");
        return base::fail_errno(what + ": open /dev/net/tun", e);
    }
    base::UniqueFd tun(fd);

    unsigned features = 0;
    if (::ioctl(fd, TUNGETFEATURES, &features) < 0) features = IFF_TAP | IFF_NO_PI;
    bool vnet_hdr = features & IFF_VNET_HDR;

    ifreq ifr{};
    ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0));
    if (!ifname.empty()) std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        if (e == EPERM || e == EACCES)
            return fail(what +
                        ": permission denied (creating or attaching a tap needs CAP_NET_ADMIN, or a tap made "
                        "for your user: ip tuntap add NAME mode tap user $USER)");
        if (e == EBUSY)
            return fail(what + ": busy (another process has it open; a tap without multi-queue can be attached once)");
        if (e == EINVAL)
            return fail(what + ": exists but is not a tap with these flags (a tun device, or multi-queue?)");
        return base::fail_errno(what + ": TUNSETIFF", e);
    }
    std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));

    uint64_t offloads = 0;
    if (vnet_hdr) {
        int sz = kVnetHdrSize;
        if (::ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) return base::fail_errno("tap " + name + ": TUNSETVNETHDRSZ", errno);
        // Probe what the kernel can hand us, then start with nothing until the guest says what it takes.
        if (::ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0)
            offloads = kHostOffloads | kGuestOffloads;
        else if (::ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM) == 0)
            offloads = feature::kCsum | feature::kGuestCsum;
        else
            offloads = feature::kCsum;
        (void)::ioctl(fd, TUNSETOFFLOAD, 0);
    } else {
        LOG_WARN("tap %s: the kernel has no IFF_VNET_HDR; no checksum or segmentation offloads", name.c_str());
    }
    bring_up(name);
    LOG_INFO("tap %s opened (vnet header %s)", name.c_str(), vnet_hdr ? "on" : "off");
    return std::unique_ptr<TapBackend>(new TapBackend(std::move(tun), std::move(name), vnet_hdr, offloads));
}

TapBackend::~TapBackend() {
    detach();
}

Result<void> TapBackend::set_guest_offloads(uint64_t features) {
    if (!vnet_hdr_) return base::ok();
    unsigned flags = tun_offload_flags(features & offloads_);
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags) < 0)
        return base::fail_errno("tap " + ifname_ + ": TUNSETOFFLOAD", errno);
    return base::ok();
}

Result<void> TapBackend::attach(event::EventLoop& loop, BackendClient& client) {
    loop_ = &loop;
    client_ = &client;
    polling_ = false;
    return base::ok();
}

void TapBackend::detach() {
    if (loop_ && polling_) (void)loop_->remove(fd_.get());
    polling_ = false;
    loop_ = nullptr;
    client_ = nullptr;
}

void TapBackend::set_rx_enabled(bool enabled) {
    if (!loop_ || enabled == polling_) return;
    if (enabled) {
        // Level-triggered: frames already queued in the kernel wake us at once.
        auto r = loop_->add(fd_.get(), [this](uint32_t) {
            if (client_) client_->rx_ready();
        });
        if (!r) {
            LOG_WARN("tap %s: cannot poll: %s", ifname_.c_str(), r.error().message().c_str());
            return;
        }
    } else {
        (void)loop_->remove(fd_.get());
    }
    polling_ = enabled;
}

Result<size_t> TapBackend::receive(std::span<const iovec> bufs) {
    if (bufs.size() > IOV_MAX) return fail("tap " + ifname_ + ": too many receive buffers");
    ssize_t n = ::readv(fd_.get(), bufs.data(), static_cast<int>(bufs.size()));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return size_t{0};
        return base::fail_errno("tap " + ifname_ + ": read", errno);
    }
    if (size_t(n) > iov_length(bufs)) {
        ++rx_dropped_;  // the kernel reports the full length of a frame it truncated
    } else {
        ++rx_frames_;
        rx_bytes_ += size_t(n);
    }
    return size_t(n);
}

Result<void> TapBackend::transmit(std::span<const iovec> frame) {
    if (frame.size() > IOV_MAX) {
        ++tx_dropped_;
        return fail("tap " + ifname_ + ": frame in too many pieces");
    }
    ssize_t n;
    do {
        n = ::writev(fd_.get(), frame.data(), static_cast<int>(frame.size()));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        ++tx_dropped_;
        // EAGAIN: the tap's queue is full; EINVAL: the kernel refused the vnet header or the frame.
        return base::fail_errno("tap " + ifname_ + ": write", errno);
    }
    ++tx_frames_;
    tx_bytes_ += size_t(n);
    return base::ok();
}

BackendStats TapBackend::stats() const {
    BackendStats s;
    s.rx_frames = rx_frames_;
    s.rx_bytes = rx_bytes_;
    s.tx_frames = tx_frames_;
    s.tx_bytes = tx_bytes_;
    s.rx_dropped = rx_dropped_;
    s.tx_dropped = tx_dropped_;
    return s;
}

}  // namespace kvmkit::net
