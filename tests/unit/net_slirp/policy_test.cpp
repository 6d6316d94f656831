// The pure parts of user-mode networking: which guest frames may reach
// libslirp, and the hostfwd= syntax.
#include <gtest/gtest.h>

#include "frames.hpp"
#include "net/slirp/host_forward.hpp"
#include "net/slirp/user_net_policy.hpp"

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

TEST(HostForwardSyntax, ParsesQemuForms) {
    auto f = parse_host_forward("tcp:127.0.0.1:8080-:80");
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_FALSE(f->udp);
    EXPECT_EQ(f->host_addr, 0x7f000001u);
    EXPECT_EQ(f->host_port, 8080);
    EXPECT_EQ(f->guest_addr, 0u);
    EXPECT_EQ(f->guest_port, 80);
    EXPECT_EQ(f->to_string(), "tcp:127.0.0.1:8080-:80");

    f = parse_host_forward("udp:127.0.0.2:5353-10.0.2.15:53");
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_TRUE(f->udp);
    EXPECT_EQ(f->host_addr, 0x7f000002u);
    EXPECT_EQ(f->guest_addr, 0x0a00020fu);
    EXPECT_EQ(f->to_string(), "udp:127.0.0.2:5353-10.0.2.15:53");

    // An empty host address is loopback (not QEMU's "every interface").
    f = parse_host_forward("tcp::2222-:22");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->host_addr, 0x7f000001u);
    f = parse_host_forward("::2222-:22");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->udp);
}

TEST(HostForwardSyntax, RejectsWithAClearMessage) {
    struct Case {
        const char* spec;
        const char* says;
    } cases[] = {
        {"tcp:0.0.0.0:8080-:80", "not a loopback address"},
        {"tcp:192.168.1.5:8080-:80", "not a loopback address"},
        {"sctp:127.0.0.1:1-:2", "unknown protocol"},
        {"tcp:127.0.0.1:8080", "no '-'"},
        {"tcp:127.0.0.1:0-:80", "not a port"},
        {"tcp:127.0.0.1:65536-:80", "not a port"},
        {"tcp:127.0.0.1:80x-:80", "not a port"},
        {"tcp:127.0.0.1:8080-:", "not a port"},
        {"tcp:127.0.0.1:8080-80", "guest side needs ADDR:PORT"},
        {"tcp:localhost:8080-:80", "not an IPv4 address"},
        {"tcp:127.0.0.1:8080-10.0.3.15:80", "not a guest address"},
        {"tcp:127.0.0.1:8080-10.0.2.2:80", "not a guest address"},
        {"tcp:127.0.0.1:8080-10.0.2.255:80", "not a guest address"},
        {"", "no '-'"},
    };
    for (const auto& c : cases) {
        auto f = parse_host_forward(c.spec);
        ASSERT_FALSE(f) << c.spec;
        const auto& m = f.error().message();
        EXPECT_NE(m.find(c.says), std::string::npos) << c.spec << " -> " << m;
        EXPECT_NE(m.find(std::string("'") + c.spec + "'"), std::string::npos) << m;
    }
}

}  // namespace
}  // namespace kvmkit::net
