// The default Linux guest (scripts/build-guest.sh): a real kernel built from
// Debian's source and a busybox initramfs, driven over the serial console.
// Under PVM's instruction emulation a boot takes tens of seconds: the
// time-outs are generous, and nothing here asserts a timing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kLinuxBootTimeout = 600s;
constexpr auto kCommandTimeout = 180s;
constexpr const char* kMarker = "KVMKIT-GUEST-READY";

TEST(LinuxGuest, ShellAnswersAndPowersOff) {
    REQUIRE_LINUX_GUEST();
    // No --kernel: the default guest, as `kvmkit run` boots it.
    VmProcess vm({"--cpus", "2", "--memory", "256M"});
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();

    // The typed command is echoed; only the shell's evaluation prints "42-ok".
    vm.send("echo $((6*7))-ok\n");
    ASSERT_TRUE(vm.wait_for("42-ok", kCommandTimeout)) << vm.output();

    vm.send("echo cpus=$(nproc)-end\n");
    ASSERT_TRUE(vm.wait_for("cpus=2-end", kCommandTimeout)) << vm.output();

    time_t host_before = time(nullptr);
    vm.send("echo now=$(date +%s)-end\n");
    ASSERT_TRUE(vm.wait_for("-end\r\n", kCommandTimeout));
    auto pos = vm.wait_for_from("now=1", 0, kCommandTimeout);
    ASSERT_TRUE(pos) << vm.output();
    long guest_now = std::strtol(vm.output().c_str() + *pos + 4, nullptr, 10);
    time_t host_after = time(nullptr);
    // The guest's clock comes from the CMOS RTC / kvmclock: it must match the host's.
    EXPECT_GE(guest_now, host_before - 5);
    EXPECT_LE(guest_now, host_after + 5);

    vm.send("poweroff\n");
    auto code = vm.wait_exit(kCommandTimeout);
    ASSERT_TRUE(code.has_value()) << "guest did not power off\n" << vm.output();
    EXPECT_EQ(*code, 0) << vm.errors();
}

TEST(LinuxGuest, RebootWithNoRebootExits) {
    REQUIRE_LINUX_GUEST();
    VmProcess vm({"--no-reboot", "--memory", "256M"});
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
    vm.send("reboot\n");
    auto code = vm.wait_exit(kCommandTimeout);
    ASSERT_TRUE(code.has_value()) << "guest did not reset\n" << vm.output();
    EXPECT_EQ(*code, 0) << vm.errors();
}

}  // namespace
}  // namespace kvmkit::test
