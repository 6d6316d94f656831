// The parts of vhost-net and the TAP backend that can be checked without the
// kernel devices: guest-to-VMM ring address translation, the memory table
// handed to VHOST_SET_MEM_TABLE, feature selection, TUNSETOFFLOAD flags.
#include <gtest/gtest.h>
#include <linux/if_tun.h>

#include <cstring>

#include "net/tap_backend.hpp"
#include "net/vhost_net.hpp"

using namespace kvmkit::net;

namespace {

const std::vector<VhostMemRegion> kRegions = {
    {0x0, 0xc0000000, 0x7f0000000000},          // low RAM (3 GiB)
    {0x100000000, 0x40000000, 0x7f1000000000},  // high RAM (1 GiB at 4 GiB)
};

TEST(VhostRings, TranslateEachRingIntoItsRegion) {
    VhostQueue q;
    q.size = 256;
    q.desc = 0x200000;
    q.avail = 0x201000;
    q.used = 0x100002000;
    auto a = vhost_ring_addrs(q, kRegions);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(a->desc_user, 0x7f0000200000u);
    EXPECT_EQ(a->avail_user, 0x7f0000201000u);
    EXPECT_EQ(a->used_user, 0x7f1000002000u);
}

TEST(VhostRings, RingsOutsideOrAcrossRegionsAreRefused) {
    VhostQueue q;
    q.size = 256;
    q.desc = 0x200000;
    q.avail = 0x201000;
    q.used = 0xd0000000;  // in the PCI hole
    auto a = vhost_ring_addrs(q, kRegions);
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().message().find("used ring at 0xd0000000"), std::string::npos) << a.error().message();
    q.used = 0x202000;
    q.desc = 0xc0000000 - 16 * 255;  // the table runs past the end of low RAM
    EXPECT_FALSE(vhost_ring_addrs(q, kRegions));
    q.desc = 0xfffffffffffff000ull;  // wraps
    EXPECT_FALSE(vhost_ring_addrs(q, kRegions));
    q.desc = 0x200000;
    q.size = 100;  // not a power of two
    EXPECT_FALSE(vhost_ring_addrs(q, kRegions));
}

TEST(VhostMemTable, LayoutMatchesStructVhostMemory) {
    auto t = vhost_mem_table(std::vector<VhostMemRegion>{kRegions[1], kRegions[0]});
    ASSERT_TRUE(t) << t.error().message();
    ASSERT_EQ(t->size(), 1u + 4 * 2);
    uint32_t nregions;
    std::memcpy(&nregions, t->data(), 4);
    EXPECT_EQ(nregions, 2u);
    // regions sorted by guest address: {guest_phys_addr, memory_size, userspace_addr, flags_padding}
    EXPECT_EQ((*t)[1], 0x0u);
    EXPECT_EQ((*t)[2], 0xc0000000u);
    EXPECT_EQ((*t)[3], 0x7f0000000000u);
    EXPECT_EQ((*t)[4], 0u);
    EXPECT_EQ((*t)[5], 0x100000000u);
    EXPECT_EQ((*t)[6], 0x40000000u);
    EXPECT_EQ((*t)[7], 0x7f1000000000u);
}

TEST(VhostMemTable, BadTablesAreRefused) {
    EXPECT_FALSE(vhost_mem_table(std::vector<VhostMemRegion>{}));
    EXPECT_FALSE(vhost_mem_table(std::vector<VhostMemRegion>{{0, 0, 0x1000}}));
    EXPECT_FALSE(vhost_mem_table(std::vector<VhostMemRegion>{{0, 0x2000, 0x10000}, {0x1000, 0x2000, 0x20000}}));
    EXPECT_FALSE(vhost_mem_table(std::vector<VhostMemRegion>{{0xfffffffffffff000ull, 0x2000, 0x10000}}));
}

TEST(VhostFeatures, OnlyRingAndMergeableBitsTheKernelHas) {
    const uint64_t v1 = 1ull << 32, evidx = 1ull << 29, indirect = 1ull << 28, mrg = 1ull << 15;
    const uint64_t vnet_hdr = 1ull << 27;  // VHOST_NET_F_VIRTIO_NET_HDR
    const uint64_t kernel = v1 | evidx | indirect | mrg | vnet_hdr;
    // Device bits the kernel does not implement (MAC, STATUS, offloads, CTRL_VQ) never reach it.
    uint64_t driver = v1 | evidx | mrg | (1ull << 5) | (1ull << 16) | (1ull << 0) | (1ull << 11) | (1ull << 17);
    EXPECT_EQ(vhost_net_features(driver, kernel, true), v1 | evidx | mrg);
    // A tap without IFF_VNET_HDR: vhost adds and strips the header itself.
    EXPECT_EQ(vhost_net_features(driver, kernel, false), v1 | evidx | mrg | vnet_hdr);
    // Nothing the kernel lacks.
    EXPECT_EQ(vhost_net_features(driver | indirect, v1 | mrg, true), v1 | mrg);
}

TEST(VhostOpen, MissingDeviceIsAClearError) {
    auto v = VhostNet::open("/nonexistent/vhost-net");
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message().find("/nonexistent/vhost-net is missing"), std::string::npos) << v.error().message();
}

TEST(TapOffloads, GuestFeaturesToTunFlags) {
    const uint64_t gcsum = feature::kGuestCsum, t4 = feature::kGuestTso4, t6 = feature::kGuestTso6,
                   ecn = feature::kGuestEcn;
    EXPECT_EQ(TapBackend::tun_offload_flags(0), 0u);
    EXPECT_EQ(TapBackend::tun_offload_flags(gcsum), unsigned(TUN_F_CSUM));
    EXPECT_EQ(TapBackend::tun_offload_flags(gcsum | t4 | t6 | ecn),
              unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN));
    EXPECT_EQ(TapBackend::tun_offload_flags(t4 | t6), 0u) << "TSO without checksum offload is meaningless";
    EXPECT_EQ(TapBackend::tun_offload_flags(gcsum | ecn), unsigned(TUN_F_CSUM)) << "ECN only with TSO";
    EXPECT_EQ(TapBackend::tun_offload_flags(feature::kCsum | feature::kHostTso4), 0u)
        << "host-side bits are not TUN flags";
}

}  // namespace
