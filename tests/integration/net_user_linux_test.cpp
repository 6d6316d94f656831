// `--net user` with the default Linux guest and its real virtio_net driver
// (emulated on PVM hosts: slow, so one boot does it all): busybox udhcpc gets
// the address from libslirp's DHCP server, wget downloads a file from an HTTP
// server this test runs on the host's 127.0.0.1 (the guest's 10.0.2.2) and
// the checksum matches, a host port forward reaches busybox nc listening in
// the guest, and a second user-mode NIC gets its own address and answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "guest_assets.hpp"
#include "net_user_helpers.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kLinuxBootTimeout = 600s;
constexpr auto kCommandTimeout = 600s;  // emulated guest; a loaded host slows it a lot
constexpr const char* kMarker = "KVMKIT-GUEST-READY";

// Runs `cmd` in the guest shell and waits for its end marker (see virtio_linux_test.cpp:
// keys are typed with quotes inside so only the shell's output matches).
bool run(VmProcess& vm, const std::string& cmd, const std::string& marker) {
    size_t from = vm.output().size();
    vm.send(cmd + "; echo " + marker + "-$((40+2))\n");
    return vm.wait_for_from(marker + "-42", from, kCommandTimeout).has_value();
}

std::string host_sha256(const std::string& path) {
    std::string cmd = "sha256sum '" + path + "'";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {};
    std::array<char, 65> buf{};
    size_t n = fread(buf.data(), 1, 64, p);
    pclose(p);
    return std::string(buf.data(), n);
}

TEST(NetUserLinux, DhcpHttpDownloadHostForwardAndASecondNic) {
    REQUIRE_LINUX_GUEST();
    TempDir tmp;
    auto body = pseudo_random_bytes(64 * 1024, 77);
    std::string file = tmp.write("payload.bin", body);
    std::string sum = host_sha256(file);
    ASSERT_EQ(sum.size(), 64u);
    LoopbackHttpServer http(body);
    uint16_t fwd = free_loopback_port();

    VmProcess vm({"--name", "netlinux", "--memory", "256M", "--net",
                  "user,hostfwd=tcp:127.0.0.1:" + std::to_string(fwd) + "-:2222", "--net", "user", "--log-level",
                  "info"});
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();

    // 1. DHCP on eth0: the address, and a default route through 10.0.2.2.
    ASSERT_TRUE(run(vm,
                    "udhcpc -i eth0 -n -q -t 5 -s /etc/udhcpc/default.script >/dev/null 2>&1; "
                    "echo A''DDR0=$(ip -4 -o addr show eth0 | awk '{print $4}')= "
                    "RO''UTE=$(ip -4 route show default | awk '{print $3}')=",
                    "d1"))
        << vm.output();
    EXPECT_EQ(line_after(vm.output(), "ADDR0="), "10.0.2.15/24= ROUTE=10.0.2.2=") << vm.output();

    // 2. HTTP from the host's loopback, as 10.0.2.2; the bytes arrive intact.
    ASSERT_TRUE(run(vm,
                    "wget -q -O /tmp/payload http://10.0.2.2:" + std::to_string(http.port()) +
                        "/payload.bin; echo WG''ET=$?= SI''ZE=$(wc -c < /tmp/payload)= "
                        "SH''A=$(sha256sum /tmp/payload | cut -c1-64)=",
                    "w1"))
        << vm.output();
    EXPECT_EQ(line_after(vm.output(), "WGET="), "0= SIZE=" + std::to_string(body.size()) + "= SHA=" + sum + "=")
        << vm.output();
    EXPECT_GE(http.requests(), 1);

    // 3. A host forward: 127.0.0.1:fwd on the host -> busybox nc on guest port 2222, both directions.
    ASSERT_TRUE(run(vm, "(echo FWD-FROM-GUEST | nc -l -p 2222 > /tmp/fwd_in &) ; sleep 1", "f1")) << vm.output();
    auto reply = loopback_exchange(fwd, "KT-FWD-TOKEN-9931\n", 120s);
    EXPECT_EQ(reply, "FWD-FROM-GUEST\n") << vm.output();
    ASSERT_TRUE(run(vm, "sleep 2; echo FW''DIN=$(cat /tmp/fwd_in)=", "f2")) << vm.output();
    EXPECT_EQ(line_after(vm.output(), "FWDIN="), "KT-FWD-TOKEN-9931=") << vm.output();

    // 4. The second NIC: its own libslirp, its own DHCP lease, its own gateway.
    ASSERT_TRUE(run(vm,
                    "udhcpc -i eth1 -n -q -t 5 -s /etc/udhcpc/default.script >/dev/null 2>&1; "
                    "echo A''DDR1=$(ip -4 -o addr show eth1 | awk '{print $4}')= && "
                    "echo PI''NG1=$(ping -c 2 -w 60 -I eth1 10.0.2.2 2>&1 | grep -o '[0-9]* packets received')=",
                    "e1"))
        << vm.output();
    EXPECT_EQ(line_after(vm.output(), "ADDR1="), "10.0.2.15/24=") << vm.output();
    EXPECT_EQ(line_after(vm.output(), "PING1="), "2 packets received=") << vm.output();

    vm.send("poweroff\n");
    EXPECT_EQ(vm.wait_exit(kCommandTimeout), 0) << vm.errors();
}

}  // namespace
}  // namespace kvmkit::test
