// virtio-net over TAP with the project's test guest (tests/guests/virtio_net.c):
// every test makes its own network namespace, the taps live there, and the
// namespace's kernel answers the guest's ARP and ICMP echo requests, so frames
// cross the VMM in both directions and are checked byte for byte by the guest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "guest_assets.hpp"
#include "net/net_options.hpp"
#include "netns.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kTimeout = 180s;

std::string guest_cmdline(const std::string& tests, const std::string& extra = "") {
    return "tests=" + tests + " net_ip=10.77.1.2 net_peer=10.77.1.1 " + extra;
}

// A counter of the namespace's own IP stack (/proc/net/snmp, "Icmp:" rows).
long icmp_counter(const NetNs& ns, const std::string& name) {
    std::string out;
    if (ns.run("cat /proc/net/snmp", &out) != 0) return -1;
    size_t h = out.find("Icmp: ");
    size_t v = h == std::string::npos ? h : out.find("Icmp: ", h + 1);
    if (v == std::string::npos) return -1;
    auto fields = [](const std::string& line) {
        std::vector<std::string> f;
        size_t p = 0;
        while (p < line.size()) {
            size_t e = line.find_first_of(" \n", p);
            if (e == std::string::npos) e = line.size();
            if (e > p) f.push_back(line.substr(p, e - p));
            if (e < line.size() && line[e] == '\n') break;
            p = e + 1;
        }
        return f;
    };
    auto names = fields(out.substr(h)), values = fields(out.substr(v));
    for (size_t i = 0; i < names.size() && i < values.size(); ++i)
        if (names[i] == name) return std::stol(values[i]);
    return -1;
}

// A tap's statistics as the namespace's kernel counts them (rx = frames the VMM wrote).
long link_counter(const NetNs& ns, const std::string& ifname, const std::string& counter) {
    std::string out;
    if (ns.run("cat /sys/class/net/" + ifname + "/statistics/" + counter, &out) != 0) return -1;
    return std::stol(out);
}

void expect_clean_exit(VmProcess& vm) {
    auto done = vm.wait_for_from("KT: DONE", 0, 1s);
    ASSERT_TRUE(done.has_value()) << vm.output() << vm.errors();
    ASSERT_TRUE(vm.wait_for_from("\n", *done, 10s).has_value());
    EXPECT_EQ(count_of(vm.output(), "KT: FAIL"), 0u) << vm.output() << vm.errors();
    EXPECT_EQ(vm.wait_exit(30s), 0) << vm.errors();
}

class NetTapVhost : public ::testing::TestWithParam<bool> {};

TEST_P(NetTapVhost, GuestPingsTheNamespaceSide) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    const bool vhost = GetParam();
    VmProcess vm({"--name", "nettest", "--kernel", testguest_elf(), "--cmdline", guest_cmdline("net,net_ping"), "--net",
                  std::string("tap,ifname=kt0,vhost=") + (vhost ? "on" : "off"), "--log-level", "info"},
                 {}, ns.exec_prefix());
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: PASS net_ping"), std::string::npos) << out;
    EXPECT_NE(out.find("ping sent=5 received=5"), std::string::npos) << out;
    // The MAC is the stable default for this VM name and NIC 0 (the guest
    // checks that the replies were addressed to it).
    const std::string mac = net::default_mac("nettest", 0).to_string();
    EXPECT_NE(out.find("net nic=0 mac=" + mac + " status=0x1"), std::string::npos) << out;
    // The namespace's kernel saw the 5 echo requests and answered them.
    EXPECT_EQ(icmp_counter(ns, "InEchos"), 5) << vm.errors();
    EXPECT_EQ(icmp_counter(ns, "OutEchoReps"), 5);
    if (vhost) {
        if (access("/dev/vhost-net", F_OK) != 0) {
            // The fallback: exactly one warning, and the userspace path did the work above.
            EXPECT_EQ(count_of(vm.errors(), "vhost=on, but"), 1u) << vm.errors();
            EXPECT_NE(vm.errors().find("using the userspace TAP path"), std::string::npos) << vm.errors();
        } else {
            EXPECT_NE(vm.errors().find("data path in vhost-net"), std::string::npos) << vm.errors();
        }
    } else {
        EXPECT_EQ(vm.errors().find("vhost"), std::string::npos) << vm.errors();
    }
    expect_clean_exit(vm);
}

INSTANTIATE_TEST_SUITE_P(Vhost, NetTapVhost, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

// Receive paths: small mergeable buffers (a 1500-byte frame spans several),
// no MRG_RXBUF (one buffer per frame), indirect descriptors with EVENT_IDX.
class NetTapRx : public ::testing::TestWithParam<std::string> {};

TEST_P(NetTapRx, FramesCrossBothWays) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline", guest_cmdline("net,net_ping", GetParam() + " net_count=10"),
                  "--net", "tap,ifname=kt0"},
                 {}, ns.exec_prefix());
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("ping sent=10 received=10"), std::string::npos) << vm.output();
    EXPECT_NE(vm.output().find(" bad=0"), std::string::npos) << vm.output();
    expect_clean_exit(vm);
}

INSTANTIATE_TEST_SUITE_P(Modes, NetTapRx,
                         ::testing::Values("net_rxbuf=256", "net_mrg=0", "vq_feat=indirect,event_idx net_rxbuf=700"),
                         [](const auto& info) {
                             return info.index == 0   ? std::string("SmallMergeable")
                                    : info.index == 1 ? std::string("NoMergeable")
                                                      : std::string("IndirectEventIdx");
                         });

TEST(NetTap, TwoNicsAtOnce) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    ASSERT_TRUE(ns.add_tap("kt1", "10.77.2.1/24"));
    // NIC k uses 10.77.(1+k).2 (tests/guests/README.md); the second has a MAC of our choosing.
    VmProcess vm(
        {"--name", "twonics", "--kernel", testguest_elf(), "--cmdline", guest_cmdline("net,net_ping", "net_nics=2"),
         "--net", "tap,ifname=kt0", "--net", "tap,ifname=kt1,mac=52:54:00:12:34:56"},
        {}, ns.exec_prefix());
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("net nic=0 mac=" + net::default_mac("twonics", 0).to_string()), std::string::npos) << out;
    EXPECT_NE(out.find("net nic=1 mac=52:54:00:12:34:56"), std::string::npos) << out;
    EXPECT_NE(out.find("net nic=0 ping sent=5 received=5"), std::string::npos) << out;
    EXPECT_NE(out.find("net nic=1 ping sent=5 received=5"), std::string::npos) << out;
    EXPECT_NE(out.find("net nic=1 arp peer=10.77.2.1"), std::string::npos) << out;
    // Each NIC's frames went out of its own tap: ARP + 5 echo requests (at least) on each.
    EXPECT_GE(link_counter(ns, "kt0", "rx_packets"), 6);
    EXPECT_GE(link_counter(ns, "kt1", "rx_packets"), 6);
    EXPECT_EQ(icmp_counter(ns, "InEchos"), 10);
    expect_clean_exit(vm);
}

TEST(NetTap, VmmCreatesTheTapAndRemovesItAtExit) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline", guest_cmdline("net,net_ping", "net_arp_tries=60"), "--net",
                  "tap,ifname=ktnew"},
                 {}, ns.exec_prefix());
    // The VMM made the tap; give the namespace side its address while the guest asks (ARP retries).
    ASSERT_TRUE(ns.wait_for_link("ktnew", 60)) << vm.errors();
    ASSERT_TRUE(ns.configure("ktnew", "10.77.1.1/24"));
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("KT: PASS net_ping"), std::string::npos) << vm.output();
    expect_clean_exit(vm);
    EXPECT_NE(ns.run("ip link show ktnew"), 0) << "a tap the VMM created must go away with it";
}

TEST(NetTap, HostileGuestCannotCrashTheVmm) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline", guest_cmdline("net_hostile", "vq_feat=indirect"), "--net",
                  "tap,ifname=kt0"},
                 {}, ns.exec_prefix());
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    // Every malformed transmit chain came back unsent, none needed a reset.
    for (const char* c : {"short-header", "header-only", "zero-length", "addr-beyond-ram", "addr-overflow",
                          "device-writable", "gso-not-negotiated", "csum-not-negotiated", "oversized"})
        EXPECT_NE(out.find(std::string("KT: net_hostile ") + c + " result=completed len=0\r"), std::string::npos)
            << c << "\n"
            << out;
    EXPECT_NE(out.find("long-chain descs="), std::string::npos) << out;
    EXPECT_NE(out.find("garbage-flood sent=200"), std::string::npos) << out;
    // A ring the driver broke asks for a reset; after it the device works again.
    EXPECT_NE(out.find("avail-idx-jump result=device-needs-reset"), std::string::npos) << out;
    // The three bad receive buffers came back empty and good frames still arrived.
    // ("other" counts unrelated frames the namespace's kernel may send, e.g. its own ARP requests.)
    auto ping = line_after(out, "KT: net_hostile nic=0 ping ");
    ASSERT_TRUE(ping.has_value()) << out;
    EXPECT_EQ(ping->rfind("sent=3 received=3 other=", 0), 0u) << *ping;
    EXPECT_NE(ping->find(" bad=3"), std::string::npos) << *ping;
    EXPECT_NE(out.find("KT: PASS net_hostile"), std::string::npos) << out;
    EXPECT_NE(vm.errors().find("bad descriptor chain"), std::string::npos) << vm.errors();
    expect_clean_exit(vm);
}

TEST(NetTap, ClearErrors) {
    REQUIRE_KVM();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    {
        // A bad option string: refused before anything starts, exit code 2.
        VmProcess vm({"--kernel", testguest_elf(), "--net", "tap,vhost=maybe"}, {}, ns.exec_prefix());
        EXPECT_EQ(vm.wait_exit(30s), 2);
        EXPECT_NE(vm.errors().find("--net tap,vhost=maybe: vhost: use on or off, not 'maybe'"), std::string::npos)
            << vm.errors();
    }
    {
        // The tap is in use by a running VM: the second one says so.
        VmProcess first({"--kernel", testguest_elf(), "--cmdline", "tests=none end=halt", "--net", "tap,ifname=kt0"},
                        {}, ns.exec_prefix());
        ASSERT_TRUE(first.wait_for("KT: DONE", kTimeout)) << first.output() << first.errors();
        VmProcess second({"--kernel", testguest_elf(), "--net", "tap,ifname=kt0"}, {}, ns.exec_prefix());
        EXPECT_EQ(second.wait_exit(30s), 1);
        EXPECT_NE(second.errors().find("tap 'kt0': busy"), std::string::npos) << second.errors();
    }
}

}  // namespace
}  // namespace kvmkit::test
