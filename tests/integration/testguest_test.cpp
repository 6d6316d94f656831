// The project's own test guest checks the machine from inside and reports on
// COM1 ("KT: ..." lines, tests/guests/README.md); these tests read the
// reports and compare them with what the VMM was told to build.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <unistd.h>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kBootTimeout = 120s;  // the guest runs in seconds even when emulated

struct Form {
    const char* name;
    std::string (*path)();
    const char* proto;
};
const Form kBzImage{"bzImage", testguest_bzimage, "bzimage64"};
const Form kPvh{"pvh", testguest_elf, "pvh"};

struct Param {
    Form form;
    int cpus;
};

class TestGuest : public ::testing::TestWithParam<Param> {};

TEST_P(TestGuest, AllChecksPassAndPowerOff) {
    REQUIRE_KVM();
    const auto& p = GetParam();
    TempDir tmp;
    auto initrd_bytes = pseudo_random_bytes(300 * 1024 + 123, 42);
    std::string initrd = tmp.write("initrd.bin", initrd_bytes);
    const std::string cmdline = "tests=all end=poweroff marker=kvmkit-" + std::to_string(p.cpus);

    VmProcess vm({"--kernel", p.form.path(), "--initrd", initrd, "--cmdline", cmdline, "--cpus",
                  std::to_string(p.cpus), "--memory", "512M"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    auto code = vm.wait_exit(30s);
    ASSERT_TRUE(code.has_value()) << "VMM did not exit after the guest's ACPI poweroff";
    EXPECT_EQ(*code, 0) << vm.errors();

    const std::string out = vm.output();
    EXPECT_NE(out.find(std::string("KT: boot proto=") + p.form.proto), std::string::npos) << out;
    // The command line arrives exactly as given (no Linux-only words are added for a non-Linux kernel).
    EXPECT_EQ(line_after(out, "KT: cmdline "), cmdline);
    // The e820 map of a 512 MiB machine, derived by hand from the layout:
    // RAM below the EBDA, EBDA and BIOS/ACPI area reserved, RAM from 1 MiB to 512 MiB.
    EXPECT_NE(out.find("KT: e820 0x0 0x9fc00 1"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: e820 0x9fc00 0x400 2"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: e820 0xe0000 0x20000 2"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: e820 0x100000 0x1ff00000 1"), std::string::npos) << out;
    // The initrd's bytes, checksummed inside the guest.
    char crc[64];
    snprintf(crc, sizeof crc, "KT: initrd size=%zu crc32=%08x", initrd_bytes.size(), crc32(initrd_bytes));
    EXPECT_NE(out.find(crc), std::string::npos) << "expected '" << crc << "' in\n" << out;
    // ACPI: valid tables, one MADT entry per vCPU; every AP started by INIT/SIPI.
    EXPECT_NE(out.find("KT: PASS acpi"), std::string::npos) << out;
    EXPECT_EQ(line_after(out, "KT: acpi cpus="), std::to_string(p.cpus));
    EXPECT_EQ(line_after(out, "KT: smp started="),
              std::to_string(p.cpus - 1) + " expected=" + std::to_string(p.cpus - 1));
    EXPECT_NE(out.find("KT: PASS uart_irq"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS rtc"), std::string::npos) << out;
    EXPECT_EQ(count_of(out, "KT: FAIL"), 0u) << out;
    EXPECT_NE(out.find("fail=0"), std::string::npos) << out;
}

TEST_P(TestGuest, RtcMatchesHostTime) {
    REQUIRE_KVM();
    const auto& p = GetParam();
    VmProcess vm({"--kernel", p.form.path(), "--cmdline", "tests=rtc", "--cpus", std::to_string(p.cpus)});
    time_t before = time(nullptr);
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    time_t after = time(nullptr);
    auto rtc = line_after(vm.output(), "KT: rtc ");
    ASSERT_TRUE(rtc.has_value());
    struct tm tm {};
    ASSERT_NE(strptime(rtc->c_str(), "%Y-%m-%d %H:%M:%S", &tm), nullptr) << *rtc;
    time_t guest = timegm(&tm);
    EXPECT_GE(guest, before - 2) << *rtc;
    EXPECT_LE(guest, after + 2) << *rtc;
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

INSTANTIATE_TEST_SUITE_P(Forms, TestGuest,
                         ::testing::Values(Param{kBzImage, 1}, Param{kBzImage, 2}, Param{kPvh, 1}, Param{kPvh, 2}),
                         [](const auto& info) {
                             return std::string(info.param.form.name) + "_" + std::to_string(info.param.cpus) + "cpu";
                         });

class TestGuestForm : public ::testing::TestWithParam<Form> {};

TEST_P(TestGuestForm, MemoryAbove4GiB) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=bootinfo,highmem", "--memory", "5G", "--cpus", "2"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    // 3 GiB below the hole, the remaining 2 GiB from 4 GiB.
    EXPECT_NE(out.find("KT: e820 0x100000 0xbff00000 1"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: e820 0x100000000 0x80000000 1"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS highmem"), std::string::npos) << out;
    EXPECT_EQ(count_of(out, "KT: FAIL"), 0u) << out;
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

TEST_P(TestGuestForm, ResetWithNoRebootExits) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=none end=reset", "--no-reboot"});
    auto code = vm.wait_exit(kBootTimeout);
    ASSERT_TRUE(code.has_value()) << vm.output() << vm.errors();
    EXPECT_EQ(*code, 0) << vm.errors();
    EXPECT_EQ(count_of(vm.output(), "KT: start"), 1u) << vm.output();
    EXPECT_NE(vm.output().find("KT: end action=reset"), std::string::npos) << vm.output();
}

TEST_P(TestGuestForm, ResetRebootsTheGuest) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=none end=reset"});
    auto first = vm.wait_for_from("KT: start", 0, kBootTimeout);
    ASSERT_TRUE(first) << vm.output() << vm.errors();
    // A reset brings the same guest up again from the start.
    ASSERT_TRUE(vm.wait_for_from("KT: start", *first + 1, kBootTimeout)) << vm.output() << vm.errors();
    vm.signal(SIGTERM);
    EXPECT_EQ(vm.wait_exit(30s), 0) << vm.errors();
}

TEST_P(TestGuestForm, BreakpointIsDeliveredToTheGuest) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=int3"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("KT: int3 handler_runs=1 continued=1"), std::string::npos) << vm.output();
    EXPECT_NE(vm.output().find("KT: PASS int3"), std::string::npos) << vm.output();
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

TEST_P(TestGuestForm, ConsoleInputRaisesReceiveInterrupt) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=uart_rx rx_timeout=60"});
    ASSERT_TRUE(vm.wait_for("KT: ready-for-input", kBootTimeout)) << vm.output() << vm.errors();
    vm.send("Z");
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("KT: uart_rx byte=0x5a"), std::string::npos) << vm.output();
    EXPECT_NE(vm.output().find("KT: PASS uart_rx"), std::string::npos) << vm.output();
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

TEST_P(TestGuestForm, SigtermStopsARunningGuest) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", GetParam().path(), "--cmdline", "tests=none end=halt", "--cpus", "2"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kBootTimeout)) << vm.output() << vm.errors();
    EXPECT_FALSE(vm.wait_exit(1s).has_value()) << "a halted guest must keep the VM running";
    vm.signal(SIGTERM);
    EXPECT_EQ(vm.wait_exit(30s), 0) << vm.errors();
}

INSTANTIATE_TEST_SUITE_P(Forms, TestGuestForm, ::testing::Values(kBzImage, kPvh),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kvmkit::test

namespace kvmkit::test {
namespace {

TEST(EmulationFailure, ReportsInstructionRipModeAndHint) {
    REQUIRE_KVM();
    // Hardware runs crc32 natively; only KVM's instruction emulator (PVM) cannot.
    if (access("/sys/module/kvm_pvm", F_OK) != 0) GTEST_SKIP() << "needs a PVM host, where guests run emulated";
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline", "tests=crc32insn", "--cpus", "2"});
    auto code = vm.wait_exit(120s);
    ASSERT_TRUE(code.has_value()) << "the VMM did not stop on an emulation failure";
    EXPECT_EQ(*code, 1);
    const std::string err = vm.errors();
    EXPECT_NE(err.find("could not emulate the instruction at RIP 0x"), std::string::npos) << err;
    EXPECT_NE(err.find("64-bit mode"), std::string::npos) << err;
    EXPECT_NE(err.find("bytes: f2 0f 38 f0 c1"), std::string::npos) << err;
    EXPECT_NE(err.find("hint: /dev/kvm is PVM"), std::string::npos) << err;
    EXPECT_EQ(vm.output().find("KT: crc32insn result"), std::string::npos) << "the instruction must not be skipped";
}

}  // namespace
}  // namespace kvmkit::test
