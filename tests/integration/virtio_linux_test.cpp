// virtio-blk, virtio-rng and virtio-console with the default Linux guest's
// real drivers (virtio_pci, virtio_blk, virtio-rng, virtio_console).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kLinuxBootTimeout = 600s;
constexpr auto kCommandTimeout = 600s;  // emulated guest; a loaded host slows it a lot
constexpr const char* kMarker = "KVMKIT-GUEST-READY";

std::string make_disk(const TempDir& tmp, const std::string& name, size_t mib) {
    std::string path = tmp.path() + "/" + name;
    FILE* f = fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f) {
        EXPECT_EQ(ftruncate(fileno(f), static_cast<off_t>(mib) << 20), 0);
        fclose(f);
    }
    return path;
}

// Runs `cmd` in the guest shell and waits for the unique end marker it prints.
// The shell echoes what is typed, so the keys tests look for are typed with
// quotes inside (echo SU''M=...): only the shell's output contains "SUM=".
bool run(VmProcess& vm, const std::string& cmd, const std::string& marker) {
    size_t from = vm.output().size();
    vm.send(cmd + "; echo " + marker + "-$((40+2))\n");
    return vm.wait_for_from(marker + "-42", from, kCommandTimeout).has_value();
}

TEST(VirtioLinux, BlockDataSurvivesRebootAndRngDelivers) {
    REQUIRE_LINUX_GUEST();
    TempDir tmp;
    std::string disk = make_disk(tmp, "disk.img", 16);
    std::string sum;
    {
        VmProcess vm({"--disk", disk, "--rng", "--memory", "256M"});
        ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
        ASSERT_TRUE(run(vm, "mke2fs -N 128 -m 0 /dev/vda >/dev/null && mkdir -p /mnt && mount /dev/vda /mnt", "m1")) << vm.output();
        ASSERT_TRUE(run(vm, "dd if=/dev/urandom of=/mnt/data bs=1k count=300 2>/dev/null && sync", "m2"))
            << vm.output();
        ASSERT_TRUE(run(vm, "echo SU''M=$(sha256sum /mnt/data | cut -c1-64)=", "m3")) << vm.output();
        auto line = line_after(vm.output(), "SUM=");
        ASSERT_TRUE(line.has_value());
        sum = line->substr(0, 64);
        ASSERT_EQ(sum.size(), 64u) << *line;
        // The entropy device: the kernel registered it and reading it returns bytes.
        ASSERT_TRUE(run(vm, "echo RN''G=$(cat /sys/class/misc/hw_random/rng_current)= && "
                            "echo H''W=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n')=",
                        "m4"))
            << vm.output();
        EXPECT_NE(vm.output().find("RNG=virtio_rng"), std::string::npos) << vm.output();
        auto hw = line_after(vm.output(), "HW=");
        ASSERT_TRUE(hw.has_value());
        EXPECT_EQ(hw->find('='), 32u) << *hw;  // 16 bytes as 32 hex digits
        ASSERT_TRUE(run(vm, "umount /mnt", "m5"));
        vm.send("poweroff\n");
        ASSERT_EQ(vm.wait_exit(kCommandTimeout), 0) << vm.errors();
    }
    {
        VmProcess vm({"--disk", disk, "--memory", "256M"});
        ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
        ASSERT_TRUE(run(vm, "mkdir -p /mnt && mount /dev/vda /mnt && echo SUM''2=$(sha256sum /mnt/data | cut -c1-64)=",
                        "n1"))
            << vm.output();
        auto line = line_after(vm.output(), "SUM2=");
        ASSERT_TRUE(line.has_value());
        EXPECT_EQ(line->substr(0, 64), sum);
        vm.send("poweroff\n");
        EXPECT_EQ(vm.wait_exit(kCommandTimeout), 0) << vm.errors();
    }
}

TEST(VirtioLinux, TwoDisksOneReadOnly) {
    REQUIRE_LINUX_GUEST();
    TempDir tmp;
    std::string a = make_disk(tmp, "a.img", 16), b = make_disk(tmp, "b.img", 8);
    {
        std::ofstream f(b, std::ios::binary | std::ios::in | std::ios::out);
        f << "READONLY-DISK-CONTENT";
    }
    VmProcess vm({"--disk", a, "--disk", b + ",readonly=on", "--rng", "--memory", "256M"});
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
    // lspci (guest/tools/lspci.c, from sysfs): every function with the IDs the VMM presents, and
    // the guest's virtio_pci driver bound to each virtio function.
    size_t from = vm.output().size();
    ASSERT_TRUE(run(vm, "lspci", "l1")) << vm.output();
    std::string pci = vm.output().substr(from);
    EXPECT_NE(pci.find(" 0600: 1b36:0008 (rev 00) driver=none"), std::string::npos) << pci;  // host bridge
    const std::string blk = " 0100: 1af4:1042 (rev 01) driver=virtio-pci";
    EXPECT_NE(pci.find(blk), std::string::npos) << pci;
    EXPECT_NE(pci.find(blk, pci.find(blk) + 1), std::string::npos) << "two virtio-blk functions\n" << pci;
    EXPECT_NE(pci.find(" ff00: 1af4:1044 (rev 01) driver=virtio-pci"), std::string::npos) << pci;  // rng
    // ... and the virtio drivers bound on the virtio bus behind them.
    ASSERT_TRUE(run(vm, "echo VDR''V=$(for d in /sys/bus/virtio/devices/*; do basename $(readlink $d/driver); done "
                        "| sort | tr '\\n' ,)=",
                    "l2"))
        << vm.output();
    EXPECT_EQ(line_after(vm.output(), "VDRV="), "virtio_blk,virtio_blk,virtio_rng,=");
    ASSERT_TRUE(run(vm, "echo SIZE''S=$(cat /sys/block/vda/size),$(cat /sys/block/vdb/size),$(cat /sys/block/vdb/ro)=",
                    "t1"))
        << vm.output();
    EXPECT_EQ(line_after(vm.output(), "SIZES="), "32768,16384,1=");
    ASSERT_TRUE(run(vm, "echo HEA''D=$(dd if=/dev/vdb bs=21 count=1 2>/dev/null)=", "t2")) << vm.output();
    EXPECT_EQ(line_after(vm.output(), "HEAD="), "READONLY-DISK-CONTENT=");
    // A write to the read-only disk fails in the guest and leaves the file untouched.
    ASSERT_TRUE(run(vm, "dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null; echo WR''C=$?=", "t3")) << vm.output();
    EXPECT_EQ(line_after(vm.output(), "WRC="), "1=");
    vm.send("poweroff\n");
    EXPECT_EQ(vm.wait_exit(kCommandTimeout), 0) << vm.errors();
    std::ifstream f(b, std::ios::binary);
    std::string head(21, '\0');
    f.read(head.data(), 21);
    EXPECT_EQ(head, "READONLY-DISK-CONTENT");
}

TEST(VirtioLinux, ConsoleOnHvc0) {
    REQUIRE_LINUX_GUEST();
    std::string why;
    std::string dir = linux_guest_dir(why);
    std::ifstream cf(dir + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
    while (!cmdline.empty() && (cmdline.back() == '\n' || cmdline.back() == ' ')) cmdline.pop_back();
    // The kernel's console (and so init's shell) on hvc0 instead of ttyS0.
    auto pos = cmdline.find("console=ttyS0");
    ASSERT_NE(pos, std::string::npos) << cmdline;
    cmdline.replace(pos, 13, "console=hvc0");
    VmProcess vm({"--console", "virtio", "--cmdline", cmdline, "--memory", "256M"});
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
    ASSERT_TRUE(run(vm, "echo TT''Y=$(cat /sys/class/tty/console/active)=", "c1")) << vm.output();
    EXPECT_EQ(line_after(vm.output(), "TTY="), "hvc0=");
    vm.send("poweroff\n");
    EXPECT_EQ(vm.wait_exit(kCommandTimeout), 0) << vm.errors();
}

TEST(VirtioLinux, SecondVmCannotOpenAWritableImageInUse) {
    REQUIRE_KVM();
    TempDir tmp;
    std::string disk = make_disk(tmp, "locked.img", 4);
    VmProcess first({"--kernel", testguest_bzimage(), "--cmdline", "tests=none end=halt", "--disk", disk});
    ASSERT_TRUE(first.wait_for("KT: DONE", 120s)) << first.output() << first.errors();
    VmProcess second({"--kernel", testguest_bzimage(), "--cmdline", "tests=none", "--disk", disk});
    auto code = second.wait_exit(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 1);
    EXPECT_NE(second.errors().find("in use by another VM"), std::string::npos) << second.errors();
    // Read-only opens are refused too while a writer holds it.
    VmProcess third({"--kernel", testguest_bzimage(), "--cmdline", "tests=none", "--disk", disk + ",readonly=on"});
    EXPECT_EQ(third.wait_exit(60s), 1);
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait_exit(30s), 0);
}

}  // namespace
}  // namespace kvmkit::test
