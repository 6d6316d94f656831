// VirtioNet against a fake backend and a fake driver written in the test:
// transmit (header passed through or stripped), receive into mergeable and
// single buffers, backpressure, hostile chains, the control queue, link status.
#include "virtio/devices/virtio_net.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <deque>

using namespace kvmkit;
using namespace kvmkit::virtio;
namespace feature = net::feature;

namespace {

constexpr uint64_t kBase = 0x10000, kMemSize = 4 << 20;
constexpr uint16_t kQ = 64;

// The guest side: three split rings and a data area in one fake guest memory.
class FakeGuest {
public:
    struct Buf {
        uint64_t addr;
        uint32_t len;
        bool write;
    };
    FakeGuest() : ram_(static_cast<uint8_t*>(std::aligned_alloc(4096, kMemSize))) {
        std::memset(ram_, 0, kMemSize);
        EXPECT_TRUE(mem.add_borrowed(kBase, kMemSize, ram_));
        for (int i = 0; i < 3; ++i) ring_[i] = kBase + 0x10000ull * i;
    }
    ~FakeGuest() { std::free(ram_); }

    memory::GuestMemory mem;

    std::vector<QueueConfig> configs(bool ctrl = true) const {
        std::vector<QueueConfig> v;
        for (int i = 0; i < 3; ++i) {
            QueueConfig c;
            if (i < 2 || ctrl) {
                c.size = kQ;
                c.desc_table = ring_[i];
                c.avail_ring = ring_[i] + 0x1000;
                c.used_ring = ring_[i] + 0x2000;
            }
            v.push_back(c);
        }
        return v;
    }
    uint64_t alloc(uint64_t len) {
        uint64_t a = next_;
        next_ += (len + 63) & ~63ull;
        return a;
    }
    uint8_t* host(uint64_t addr) { return ram_ + (addr - kBase); }

    uint16_t add(int q, const std::vector<Buf>& bufs) {
        uint16_t head = next_desc_[q];
        for (size_t k = 0; k < bufs.size(); ++k) {
            uint16_t i = next_desc_[q];
            next_desc_[q] = static_cast<uint16_t>((i + 1) % kQ);
            bool last = k + 1 == bufs.size();
            uint8_t* d = host(ring_[q] + 16ull * i);
            uint64_t a = bufs[k].addr;
            uint32_t l = bufs[k].len;
            uint16_t f = static_cast<uint16_t>((bufs[k].write ? kVirtqDescFWrite : 0) | (last ? 0 : kVirtqDescFNext));
            uint16_t n = last ? 0 : next_desc_[q];
            std::memcpy(d, &a, 8);
            std::memcpy(d + 8, &l, 4);
            std::memcpy(d + 12, &f, 2);
            std::memcpy(d + 14, &n, 2);
        }
        uint8_t* avail = host(ring_[q] + 0x1000);
        std::memcpy(avail + 4 + 2 * (avail_idx_[q] % kQ), &head, 2);
        ++avail_idx_[q];
        std::memcpy(avail + 2, &avail_idx_[q], 2);
        return head;
    }
    uint16_t used_idx(int q) {
        uint16_t v;
        std::memcpy(&v, host(ring_[q] + 0x2000 + 2), 2);
        return v;
    }
    std::pair<uint32_t, uint32_t> used(int q, uint16_t slot) {
        uint32_t id, len;
        std::memcpy(&id, host(ring_[q] + 0x2000 + 4 + 8 * (slot % kQ)), 4);
        std::memcpy(&len, host(ring_[q] + 0x2000 + 8 + 8 * (slot % kQ)), 4);
        return {id, len};
    }

private:
    uint8_t* ram_;
    uint64_t ring_[3];
    uint64_t next_ = kBase + 0x40000;
    uint16_t next_desc_[3] = {}, avail_idx_[3] = {};
};

class FakeIrq : public VirtioInterrupt {
public:
    void signal_queue(uint16_t q) override { ++queue[q]; }
    void signal_config() override { ++config; }
    void needs_reset() override { reset = true; }
    int queue[3] = {};
    int config = 0;
    bool reset = false;
};

class FakeBackend : public net::Backend {
public:
    explicit FakeBackend(bool hdr, uint64_t offloads = 0) : hdr_(hdr), offloads_(offloads) {}
    std::string describe() const override { return "fake"; }
    bool has_vnet_hdr() const override { return hdr_; }
    uint64_t offload_features() const override { return offloads_; }
    base::Result<void> set_guest_offloads(uint64_t f) override {
        guest_offloads.push_back(f);
        return base::ok();
    }
    base::Result<void> attach(event::EventLoop&, net::BackendClient& c) override {
        client = &c;
        return base::ok();
    }
    void detach() override { client = nullptr; }
    void set_rx_enabled(bool e) override { rx_enabled = e; }
    base::Result<size_t> receive(std::span<const iovec> bufs) override {
        if (frames.empty()) return size_t{0};
        auto f = frames.front();
        frames.pop_front();
        size_t off = 0;
        for (const auto& v : bufs) {
            size_t n = std::min(v.iov_len, f.size() - off);
            std::memcpy(v.iov_base, f.data() + off, n);
            off += n;
            if (off == f.size()) break;
        }
        return f.size();
    }
    base::Result<void> transmit(std::span<const iovec> frame) override {
        std::vector<uint8_t> f;
        for (const auto& v : frame) f.insert(f.end(), (uint8_t*)v.iov_base, (uint8_t*)v.iov_base + v.iov_len);
        sent.push_back(f);
        return base::ok();
    }
    net::BackendStats stats() const override { return {}; }

    bool hdr_;
    uint64_t offloads_;
    net::BackendClient* client = nullptr;
    bool rx_enabled = false;
    std::deque<std::vector<uint8_t>> frames;
    std::vector<std::vector<uint8_t>> sent;
    std::vector<uint64_t> guest_offloads;
};

std::vector<uint8_t> frame_of(size_t len, uint8_t seed) {
    std::vector<uint8_t> f(len);
    for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(i * 3 + seed);
    return f;
}

struct Fixture {
    explicit Fixture(bool hdr = false, uint64_t offloads = 0) {
        auto be = std::make_unique<FakeBackend>(hdr, offloads);
        backend = be.get();
        loop = event::EventLoop::create().value();
        auto d = VirtioNet::create(std::move(be), *net::parse_mac("52:54:00:12:34:56"), *loop);
        EXPECT_TRUE(d);
        dev = *d;
    }
    void activate(uint64_t features) {
        ASSERT_TRUE(dev->activate(features | kFeatureVersion1, guest.configs(), guest.mem, irq));
    }
    FakeGuest guest;
    FakeIrq irq;
    FakeBackend* backend;
    std::unique_ptr<event::EventLoop> loop;
    std::shared_ptr<VirtioNet> dev;
    // Writes a virtio-net header with these flags/gso type (and gso_size 100) at `addr`.
    void host_hdr(uint64_t addr, uint8_t flags, uint8_t gso) {
        net::VirtioNetHdr h{};
        h.flags = flags;
        h.gso_type = gso;
        h.gso_size = gso ? 100 : 0;
        std::memcpy(guest.host(addr), &h, 12);
    }
};

TEST(VirtioNet, FeaturesFollowTheBackend) {
    Fixture bare(false, feature::kCsum | feature::kGuestCsum);
    uint64_t f = bare.dev->device_features();
    EXPECT_TRUE(f & feature::kMac);
    EXPECT_TRUE(f & feature::kStatus);
    EXPECT_TRUE(f & feature::kMrgRxbuf);
    EXPECT_TRUE(f & feature::kCtrlVq);
    EXPECT_FALSE(f & feature::kAllOffloads) << "no vnet header, no offloads, whatever the backend says";
    EXPECT_FALSE(f & feature::kCtrlGuestOffloads);
    Fixture tap(true, feature::kCsum | feature::kGuestCsum | feature::kHostTso4 | feature::kGuestTso4);
    f = tap.dev->device_features();
    EXPECT_EQ(f & feature::kAllOffloads,
              feature::kCsum | feature::kGuestCsum | feature::kHostTso4 | feature::kGuestTso4);
    EXPECT_TRUE(f & feature::kCtrlGuestOffloads);
    tap.activate(feature::kMrgRxbuf | feature::kGuestCsum | feature::kGuestTso4);
    ASSERT_FALSE(tap.backend->guest_offloads.empty());
    EXPECT_EQ(tap.backend->guest_offloads.back() & feature::kAllOffloads, feature::kGuestCsum | feature::kGuestTso4);
}

TEST(VirtioNet, ConfigHasTheMacAndLinkStatus) {
    Fixture fx;
    uint8_t cfg[10] = {};
    fx.dev->read_config(0, cfg);
    EXPECT_EQ(0, std::memcmp(cfg, "\x52\x54\x00\x12\x34\x56", 6));
    EXPECT_EQ(cfg[6] | cfg[7] << 8, 1) << "VIRTIO_NET_S_LINK_UP";
    fx.activate(0);
    fx.backend->client->link_changed(false);
    fx.dev->read_config(6, std::span<uint8_t>(cfg, 2));
    EXPECT_EQ(cfg[0], 0);
    EXPECT_EQ(fx.irq.config, 1) << "a link change is a config change interrupt";
}

TEST(VirtioNet, TransmitStripsTheHeaderForABareBackend) {
    Fixture fx(false);
    fx.activate(feature::kMrgRxbuf);
    auto frame = frame_of(100, 1);
    uint64_t h = fx.guest.alloc(12), d = fx.guest.alloc(100);
    std::memset(fx.guest.host(h), 0, 12);
    std::memcpy(fx.guest.host(d), frame.data(), 100);
    fx.guest.add(1, {{h, 12, false}, {d, 60, false}, {d + 60, 40, false}});
    fx.dev->process_queue(VirtioNet::kTxQueue);
    ASSERT_EQ(fx.backend->sent.size(), 1u);
    EXPECT_EQ(fx.backend->sent[0], frame);
    EXPECT_EQ(fx.guest.used_idx(1), 1);
    EXPECT_EQ(fx.dev->counters().tx_frames, 1u);
}

TEST(VirtioNet, TransmitPassesANegotiatedChecksumOffloadThrough) {
    Fixture fx(true, feature::kCsum | feature::kGuestCsum);
    fx.activate(feature::kCsum);
    auto frame = frame_of(80, 2);
    net::VirtioNetHdr hdr{};
    hdr.flags = net::kVnetHdrFNeedsCsum;
    hdr.csum_start = 34;
    hdr.csum_offset = 16;
    hdr.num_buffers = 77;  // garbage from the driver: the device sends 0
    uint64_t a = fx.guest.alloc(12 + 80);
    std::memcpy(fx.guest.host(a), &hdr, 12);
    std::memcpy(fx.guest.host(a) + 12, frame.data(), 80);
    fx.guest.add(1, {{a, 5, false}, {a + 5, 12 + 80 - 5, false}});  // the header split across buffers
    fx.dev->process_queue(VirtioNet::kTxQueue);
    ASSERT_EQ(fx.backend->sent.size(), 1u);
    ASSERT_EQ(fx.backend->sent[0].size(), 92u);
    net::VirtioNetHdr out;
    std::memcpy(&out, fx.backend->sent[0].data(), 12);
    EXPECT_EQ(out.flags, net::kVnetHdrFNeedsCsum);
    EXPECT_EQ(out.csum_start, 34);
    EXPECT_EQ(out.csum_offset, 16);
    EXPECT_EQ(out.num_buffers, 0);
    EXPECT_EQ(0, std::memcmp(fx.backend->sent[0].data() + 12, frame.data(), 80));
}

TEST(VirtioNet, MalformedTransmitChainsAreReturnedUnsent) {
    Fixture fx(true, feature::kCsum | feature::kGuestCsum);
    fx.activate(0);  // no CSUM, no TSO negotiated
    uint64_t a = fx.guest.alloc(4096);
    std::memset(fx.guest.host(a), 0, 4096);
    fx.guest.add(1, {{a, 8, false}});                        // shorter than the header
    fx.guest.add(1, {{a, 12, false}, {a + 100, 64, true}});  // device-writable buffer
    fx.host_hdr(a + 512, net::kVnetHdrFNeedsCsum, 0);
    fx.guest.add(1, {{a + 512, 12 + 60, false}});  // checksum offload not negotiated
    fx.host_hdr(a + 1024, 0, net::kVnetHdrGsoTcpv4);
    fx.guest.add(1, {{a + 1024, 12 + 60, false}});     // TSO not negotiated
    fx.guest.add(1, {{0xfff0000000ull, 100, false}});  // outside guest memory
    fx.dev->process_queue(VirtioNet::kTxQueue);
    EXPECT_TRUE(fx.backend->sent.empty());
    ASSERT_EQ(fx.guest.used_idx(1), 5);
    for (uint16_t i = 0; i < 5; ++i) EXPECT_EQ(fx.guest.used(1, i).second, 0u);
    EXPECT_EQ(fx.dev->counters().bad_frames, 5u);
    EXPECT_FALSE(fx.irq.reset);
    // The queue still works.
    std::memset(fx.guest.host(a + 2048), 0, 12);
    fx.guest.add(1, {{a + 2048, 12 + 60, false}});
    fx.dev->process_queue(VirtioNet::kTxQueue);
    EXPECT_EQ(fx.backend->sent.size(), 1u);
}

TEST(VirtioNet, ReceiveMergesAFrameAcrossSmallBuffers) {
    Fixture fx(false);
    fx.activate(feature::kMrgRxbuf);
    uint64_t bufs[4];
    for (auto& b : bufs) {
        b = fx.guest.alloc(1024);
        fx.guest.add(0, {{b, 1024, true}});
    }
    auto frame = frame_of(1514, 9);
    fx.backend->frames.push_back(frame);
    fx.dev->process_queue(VirtioNet::kRxQueue);
    // 12 + 1514 = 1526 bytes: two buffers, num_buffers = 2.
    ASSERT_EQ(fx.guest.used_idx(0), 2);
    EXPECT_EQ(fx.guest.used(0, 0), std::make_pair(0u, 1024u));
    EXPECT_EQ(fx.guest.used(0, 1), std::make_pair(1u, 502u));
    net::VirtioNetHdr hdr;
    std::memcpy(&hdr, fx.guest.host(bufs[0]), 12);
    EXPECT_EQ(hdr.num_buffers, 2);
    EXPECT_EQ(hdr.flags, 0);
    EXPECT_EQ(0, std::memcmp(fx.guest.host(bufs[0]) + 12, frame.data(), 1012));
    EXPECT_EQ(0, std::memcmp(fx.guest.host(bufs[1]), frame.data() + 1012, 502));
    EXPECT_EQ(fx.irq.queue[0], 1);
    EXPECT_TRUE(fx.backend->rx_enabled) << "buffers are left: keep reading";
}

TEST(VirtioNet, ReceiveWithoutMergeableBuffersDropsWhatDoesNotFit) {
    Fixture fx(false);
    fx.activate(0);
    uint64_t small = fx.guest.alloc(512), big = fx.guest.alloc(2048);
    fx.guest.add(0, {{small, 512, true}});
    fx.backend->frames.push_back(frame_of(1000, 1));  // does not fit the 500 bytes after the header
    fx.backend->frames.push_back(frame_of(400, 2));   // fits
    fx.dev->process_queue(VirtioNet::kRxQueue);
    EXPECT_EQ(fx.dev->counters().rx_dropped, 1u);
    ASSERT_EQ(fx.guest.used_idx(0), 1);
    EXPECT_EQ(fx.guest.used(0, 0).second, 412u);
    net::VirtioNetHdr hdr;
    std::memcpy(&hdr, fx.guest.host(small), 12);
    EXPECT_EQ(hdr.num_buffers, 1);
    EXPECT_EQ(0, std::memcmp(fx.guest.host(small) + 12, frame_of(400, 2).data(), 400));
    (void)big;
}

TEST(VirtioNet, NoGuestBuffersStopsTheBackendUntilSomeArrive) {
    Fixture fx(false);
    fx.activate(feature::kMrgRxbuf);
    fx.backend->frames.push_back(frame_of(60, 1));
    fx.backend->client->rx_ready();
    EXPECT_FALSE(fx.backend->rx_enabled);
    EXPECT_EQ(fx.backend->frames.size(), 1u) << "nothing read without a place to put it";
    uint64_t b = fx.guest.alloc(2048);
    fx.guest.add(0, {{b, 2048, true}});
    fx.dev->process_queue(VirtioNet::kRxQueue);
    EXPECT_EQ(fx.backend->frames.size(), 0u);
    EXPECT_EQ(fx.guest.used_idx(0), 1);
    EXPECT_FALSE(fx.backend->rx_enabled) << "the only buffer is used: stop again";
}

TEST(VirtioNet, ABufferTooSmallForTheLargestFrameWaitsForMore) {
    Fixture fx(false);
    fx.activate(feature::kMrgRxbuf);
    uint64_t b1 = fx.guest.alloc(600), b2 = fx.guest.alloc(600), b3 = fx.guest.alloc(600);
    fx.guest.add(0, {{b1, 600, true}});
    fx.guest.add(0, {{b2, 600, true}});
    auto frame = frame_of(1400, 3);
    fx.backend->frames.push_back(frame);
    fx.dev->process_queue(VirtioNet::kRxQueue);
    EXPECT_EQ(fx.guest.used_idx(0), 0) << "1412 bytes do not fit in 1200: the frame waits";
    EXPECT_FALSE(fx.backend->rx_enabled);
    fx.guest.add(0, {{b3, 600, true}});
    fx.dev->process_queue(VirtioNet::kRxQueue);
    ASSERT_EQ(fx.guest.used_idx(0), 3);
    EXPECT_EQ(0, std::memcmp(fx.guest.host(b3), frame.data() + 1188, 212));
}

TEST(VirtioNet, BadReceiveChainsAreReturnedEmpty) {
    Fixture fx(false);
    fx.activate(feature::kMrgRxbuf);
    uint64_t b = fx.guest.alloc(2048);
    fx.guest.add(0, {{b, 2048, false}});  // driver-readable
    fx.guest.add(0, {{b, 8, true}});      // shorter than the header
    fx.guest.add(0, {{b, 2048, true}});
    fx.backend->frames.push_back(frame_of(100, 4));
    fx.dev->process_queue(VirtioNet::kRxQueue);
    ASSERT_EQ(fx.guest.used_idx(0), 3);
    EXPECT_EQ(fx.guest.used(0, 0).second, 0u);
    EXPECT_EQ(fx.guest.used(0, 1).second, 0u);
    EXPECT_EQ(fx.guest.used(0, 2), std::make_pair(2u, 112u));
    EXPECT_EQ(fx.dev->counters().bad_frames, 2u);
}

TEST(VirtioNet, ReceivedHeadersOnlyCarryNegotiatedOffloads) {
    Fixture fx(true, feature::kCsum | feature::kGuestCsum | feature::kGuestTso4);
    fx.activate(feature::kMrgRxbuf);  // the guest took no receive offload
    uint64_t b = fx.guest.alloc(4096);
    fx.guest.add(0, {{b, 4096, true}});
    fx.guest.add(0, {{b, 4096, true}});
    std::vector<uint8_t> f(12 + 100, 0);
    f[0] = net::kVnetHdrFDataValid;
    fx.backend->frames.push_back(f);  // flags the guest did not ask for: cleared
    std::vector<uint8_t> g(12 + 100, 0);
    g[1] = net::kVnetHdrGsoTcpv4;
    fx.backend->frames.push_back(g);  // a GSO frame the guest cannot take: dropped
    fx.dev->process_queue(VirtioNet::kRxQueue);
    ASSERT_EQ(fx.guest.used_idx(0), 1);
    EXPECT_EQ(fx.guest.host(b)[0], 0);
    EXPECT_EQ(fx.dev->counters().rx_dropped, 1u);
}

TEST(VirtioNet, ControlQueue) {
    Fixture fx(true, feature::kCsum | feature::kGuestCsum | feature::kGuestTso4 | feature::kGuestTso6);
    fx.activate(feature::kCtrlVq | feature::kCtrlRx | feature::kCtrlGuestOffloads | feature::kGuestCsum |
                feature::kGuestTso4);
    uint64_t c = fx.guest.alloc(64), ack = fx.guest.alloc(1);
    auto command = [&](std::vector<uint8_t> bytes) {
        std::memcpy(fx.guest.host(c), bytes.data(), bytes.size());
        fx.guest.host(ack)[0] = 0xee;
        fx.guest.add(2, {{c, static_cast<uint32_t>(bytes.size()), false}, {ack, 1, true}});
        fx.dev->process_queue(VirtioNet::kCtrlQueue);
        return fx.guest.host(ack)[0];
    };
    EXPECT_EQ(command({0, 0, 1}), 0) << "RX_PROMISC on";
    EXPECT_EQ(command({0, 1, 0}), 0) << "RX_ALLMULTI off";
    EXPECT_EQ(command({0, 0, 1, 1}), 1) << "too much data";
    EXPECT_EQ(command({9, 0}), 1) << "unknown class";
    // GUEST_OFFLOADS_SET: checksum only (TSO4 off), then TSO6, never negotiated, refused.
    EXPECT_EQ(command({5, 0, 2, 0, 0, 0, 0, 0, 0, 0}), 0);
    EXPECT_EQ(fx.backend->guest_offloads.back() & feature::kAllOffloads, feature::kGuestCsum);
    EXPECT_EQ(command({5, 0, 0x02 | 0x80, 0x01, 0, 0, 0, 0, 0, 0}), 1);
    EXPECT_EQ(fx.dev->counters().ctrl_commands, 6u);
}

}  // namespace
