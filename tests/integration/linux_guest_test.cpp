// The default Linux guest (scripts/build-guest.sh): a real kernel built from
// Debian's source and a busybox initramfs, driven over the serial console.
// Under PVM's instruction emulation a boot takes tens of seconds: the
// time-outs are generous, and nothing here asserts a timing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <regex>

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

    // The guest's clock comes from the CMOS RTC / kvmclock: it must match the host's. A kernel
    // warning (say, the clocksource watchdog on a loaded host) may land in the middle of the
    // line, so the value is read only from a whole "now=<digits>-end"; up to 3 tries.
    std::optional<long> guest_now;
    time_t host_before = 0, host_after = 0;
    for (int attempt = 0; attempt < 3 && !guest_now; ++attempt) {
        host_before = time(nullptr);
        size_t from = vm.output().size();
        vm.send("echo no''w=$(date +%s)-end\n");
        // The typed line is echoed as "no''w=": only the shell's output contains "now=".
        auto pos = vm.wait_for_from("now=", from, kCommandTimeout);
        ASSERT_TRUE(pos) << vm.output();
        ASSERT_TRUE(vm.wait_for_from("-end", *pos, kCommandTimeout)) << vm.output();
        host_after = time(nullptr);
        std::smatch m;
        std::string out = vm.output().substr(from);
        if (std::regex_search(out, m, std::regex("now=([0-9]{9,})-end"))) guest_now = std::stol(m[1]);
    }
    ASSERT_TRUE(guest_now) << vm.output();
    EXPECT_GE(*guest_now, host_before - 5);
    EXPECT_LE(*guest_now, host_after + 5);

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
