// `--net user` (libslirp) with the project's test guest (tests/guests/net_user.inc):
// DHCP from libslirp, the host's 127.0.0.1 reached as 10.0.2.2, a host port
// forward into the guest, two NICs, a hostile guest, and clear errors for
// bad forwards. Every server and client here listens or connects on host
// loopback only.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "base/unique_fd.hpp"
#include "guest_assets.hpp"
#include "net_user_helpers.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kTimeout = 180s;

void expect_clean_exit(VmProcess& vm) {
    auto done = vm.wait_for_from("KT: DONE", 0, 1s);
    ASSERT_TRUE(done.has_value()) << vm.output() << vm.errors();
    EXPECT_EQ(count_of(vm.output(), "KT: FAIL"), 0u) << vm.output() << vm.errors();
    EXPECT_EQ(vm.wait_exit(30s), 0) << vm.errors();
}

TEST(NetUser, TestGuestGetsDhcpAndReachesAServerOnHostLoopback) {
    REQUIRE_KVM();
    std::string token = "token-" + std::to_string(std::random_device{}());
    LoopbackLineServer server("KT-REPLY " + token + "\n");
    VmProcess vm({"--name", "netuser", "--kernel", testguest_elf(), "--cmdline",
                  "tests=net,net_user net_tcp_port=" + std::to_string(server.port()), "--net", "user", "--log-level",
                  "info"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: PASS net_user"), std::string::npos) << out;
    // libslirp's DHCP: the first guest address, the gateway as router, the DNS alias.
    EXPECT_NE(out.find("KT: net_user nic=0 dhcp ip=10.0.2.15 mask=255.255.255.0 router=10.0.2.2 dns=10.0.2.3"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("KT: net_user nic=0 arp peer=10.0.2.2 mac=52:55:0a:00:02:02"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: net_user nic=0 ping sent=3 received=3"), std::string::npos) << out;
    // The guest's TCP connection to 10.0.2.2:PORT is the host's 127.0.0.1:PORT, both ways.
    EXPECT_NE(out.find("reply=KT-REPLY " + token), std::string::npos) << out;
    EXPECT_EQ(server.received_line(5s), "KT-HELLO nic=0") << out;
    EXPECT_EQ(server.peer_address(), "127.0.0.1");
    expect_clean_exit(vm);
}

TEST(NetUser, HostForwardReachesATcpServerInTheTestGuest) {
    REQUIRE_KVM();
    uint16_t port = free_loopback_port();
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline", "tests=net_user net_listen=2222", "--net",
                  "user,hostfwd=tcp:127.0.0.1:" + std::to_string(port) + "-:2222"});
    ASSERT_TRUE(vm.wait_for("KT: net_user nic=0 listen port=2222 ready", kTimeout)) << vm.output() << vm.errors();
    auto reply = loopback_exchange(port, "KT-PING 4242\n", 30s);
    EXPECT_EQ(reply, "ECHO:KT-PING 4242\n");
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: net_user nic=0 listen port=2222 from=10.0.2.2:"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS net_user"), std::string::npos) << out;
    expect_clean_exit(vm);
}

// Two user-mode NICs: two independent libslirp stacks, each with its own DHCP
// server and gateway; the guest gets an address and a ping through each.
TEST(NetUser, TwoUserNicsEachGetDhcpAndPing) {
    REQUIRE_KVM();
    VmProcess vm({"--name", "twonics", "--kernel", testguest_elf(), "--cmdline", "tests=net,net_user net_nics=2",
                  "--net", "user", "--net", "user"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    for (int k : {0, 1}) {
        std::string nic = "KT: net_user nic=" + std::to_string(k);
        EXPECT_NE(out.find(nic + " dhcp ip=10.0.2.15"), std::string::npos) << out;
        EXPECT_NE(out.find(nic + " ping sent=3 received=3"), std::string::npos) << out;
    }
    // Two NICs, two different default MACs.
    auto mac0 = line_after(out, "KT: net nic=0 mac="), mac1 = line_after(out, "KT: net nic=1 mac=");
    ASSERT_TRUE(mac0 && mac1) << out;
    EXPECT_NE(mac0->substr(0, 17), mac1->substr(0, 17));
    expect_clean_exit(vm);
}

// Malformed descriptors and a flood of random frames through libslirp's
// parsers (the garbage passes the virtio-net checks, then our filter and
// libslirp see it); afterwards a good ping through 10.0.2.2 still works.
TEST(NetUser, HostileGuestCannotCrashTheVmm) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline", "tests=net_hostile net_ip=10.0.2.15 net_peer=10.0.2.2",
                  "--net", "user"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: net_hostile garbage-flood sent=200"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: net_hostile good-ping=ok bad-cases=0"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS net_hostile"), std::string::npos) << out;
    expect_clean_exit(vm);
}

TEST(NetUser, HostForwardOnAPortInUseFailsClearly) {
    REQUIRE_KVM();
    LoopbackLineServer busy("unused\n");
    const std::string p = std::to_string(busy.port());
    VmProcess vm({"--kernel", testguest_elf(), "--net", "user,hostfwd=tcp:127.0.0.1:" + p + "-:22"});
    auto code = vm.wait_exit(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 1) << vm.errors();
    EXPECT_NE(vm.errors().find("cannot listen on 127.0.0.1:" + p + ": Address already in use"), std::string::npos)
        << vm.errors();
    EXPECT_EQ(vm.output().find("KT: start"), std::string::npos) << "the guest ran: " << vm.output();
}

TEST(NetUser, NonLoopbackHostForwardIsRefused) {
    REQUIRE_KVM();
    for (const char* spec : {"user,hostfwd=tcp:0.0.0.0:8080-:80", "user,hostfwd=tcp:192.168.0.1:8080-:80"}) {
        VmProcess vm({"--kernel", testguest_elf(), "--net", spec});
        auto code = vm.wait_exit(60s);
        ASSERT_TRUE(code.has_value()) << spec;
        EXPECT_EQ(*code, 2) << spec << ": " << vm.errors();
        EXPECT_NE(vm.errors().find("not loopback"), std::string::npos) << spec << ": " << vm.errors();
    }
    // A guest address outside the user network is refused when the backend starts.
    VmProcess vm({"--kernel", testguest_elf(), "--net", "user,hostfwd=tcp:127.0.0.1:8080-10.0.3.15:80"});
    auto code = vm.wait_exit(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_NE(vm.errors().find("not a guest address of the user network 10.0.2.0/24"), std::string::npos)
        << vm.errors();
}

}  // namespace
}  // namespace kvmkit::test
