// Which guest frames may reach libslirp (the pure filter of --net user).
#include <gtest/gtest.h>

#include "frames.hpp"
#include "net/user_net_policy.hpp"

namespace kvmkit::net {
namespace {

using namespace test;

GuestFrameVerdict classify(const Bytes& f) {
    return classify_guest_frame(f, UserNetAddresses{});
}

TEST(GuestFramePolicy, PassesArpAndTrafficToTheGateway) {
    EXPECT_EQ(classify(arp_request(kGuestIp, kGatewayIp)), GuestFrameVerdict::Pass);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, 1, 80, 0, 0, kTcpSyn))),
              GuestFrameVerdict::Pass);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, udp(kGuestIp, kGatewayIp, 1, 9999, {1}))),
              GuestFrameVerdict::Pass);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, icmp_echo(kGuestIp, kGatewayIp, 1, 1))),
              GuestFrameVerdict::Pass);
}

TEST(GuestFramePolicy, PassesDhcpBroadcastOnly) {
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, udp(0, 0xffffffff, 68, 67, dhcp(1, 1)))),
              GuestFrameVerdict::Pass);
    // Broadcast to another port would reach the host's 127.0.0.1 through libslirp: not needed, refused.
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, udp(0, 0xffffffff, 68, 5353, {1}))),
              GuestFrameVerdict::NotAllowedTarget);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, tcp(0, 0xffffffff, 68, 67, 0, 0, kTcpSyn))),
              GuestFrameVerdict::NotAllowedTarget);
}

TEST(GuestFramePolicy, RefusesEveryOtherDestination) {
    for (uint32_t dst : {0x0a000203u /*dns alias*/, 0x0a00020fu /*itself*/, 0x0a0002ffu /*subnet broadcast*/,
                         0x7f000001u /*127.0.0.1 directly*/, 0xc0000201u, 0x08080808u, 0u}) {
        EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, tcp(kGuestIp, dst, 1, 80, 0, 0, kTcpSyn))),
                  GuestFrameVerdict::NotAllowedTarget)
            << std::hex << dst;
        EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0800, udp(kGuestIp, dst, 1, 53, {1}))),
                  GuestFrameVerdict::NotAllowedTarget)
            << std::hex << dst;
    }
}

TEST(GuestFramePolicy, RefusesOtherEtherTypes) {
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x86dd, Bytes(40, 0))), GuestFrameVerdict::NotAllowedType);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x8100, Bytes(40, 0))), GuestFrameVerdict::NotAllowedType);
    EXPECT_EQ(classify(ethernet(kBroadcast, kGuestMac, 0x0842, Bytes(40, 0))), GuestFrameVerdict::NotAllowedType);
}

TEST(GuestFramePolicy, RefusesMalformedFrames) {
    EXPECT_EQ(classify(Bytes{}), GuestFrameVerdict::Malformed);
    EXPECT_EQ(classify(Bytes(13, 0)), GuestFrameVerdict::Malformed);
    Bytes good = ethernet(kBroadcast, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, 1, 80, 0, 0, kTcpSyn));
    Bytes truncated(good.begin(), good.begin() + 14 + 19);
    EXPECT_EQ(classify(truncated), GuestFrameVerdict::Malformed);
    Bytes v6 = good;
    v6[14] = 0x65;  // version 6 in an IPv4 frame
    EXPECT_EQ(classify(v6), GuestFrameVerdict::Malformed);
    Bytes small_ihl = good;
    small_ihl[14] = 0x44;
    EXPECT_EQ(classify(small_ihl), GuestFrameVerdict::Malformed);
    Bytes long_total = good;
    long_total[16] = 0xff;  // total length beyond the frame
    EXPECT_EQ(classify(long_total), GuestFrameVerdict::Malformed);
    // A DHCP-looking broadcast cut short before the UDP ports.
    Bytes d = ethernet(kBroadcast, kGuestMac, 0x0800, udp(0, 0xffffffff, 68, 67, {}));
    d.resize(14 + 20 + 2);
    d[16] = 0;
    d[17] = 22;
    EXPECT_EQ(classify(d), GuestFrameVerdict::NotAllowedTarget);
}

}  // namespace
}  // namespace kvmkit::net
