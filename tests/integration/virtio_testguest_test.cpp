// PCI and virtio checked by the project's own test guest, whose small
// drivers run fast under emulation and misbehave on purpose
// (tests/guests/README.md describes each check and its KT: lines).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kTimeout = 180s;

// byte i of sector s is (s*31 + i*7 + seed) & 0xff (tests/guests/README.md)
std::vector<uint8_t> pattern(uint64_t start, uint64_t count, unsigned seed) {
    std::vector<uint8_t> v(count * 512);
    for (uint64_t s = 0; s < count; ++s)
        for (unsigned i = 0; i < 512; ++i) v[s * 512 + i] = static_cast<uint8_t>(((start + s) * 31 + i * 7 + seed) & 0xff);
    return v;
}

std::vector<uint8_t> read_range(const std::string& path, uint64_t offset, size_t len) {
    std::vector<uint8_t> v(len);
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(pread(fd, v.data(), len, offset), static_cast<ssize_t>(len));
    close(fd);
    return v;
}

std::string disk(const TempDir& tmp, const std::string& name, size_t mib, const std::vector<uint8_t>& head = {}) {
    std::string p = tmp.path() + "/" + name;
    int fd = open(p.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(mib) << 20), 0);
    if (!head.empty()) {
        EXPECT_EQ(pwrite(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    }
    close(fd);
    return p;
}

void expect_clean(VmProcess& vm) {
    // The DONE line may still be arriving: wait for its end.
    auto done = vm.wait_for_from("KT: DONE", 0, 1s);
    ASSERT_TRUE(done.has_value());
    ASSERT_TRUE(vm.wait_for_from("\n", *done, 10s).has_value());
    EXPECT_EQ(count_of(vm.output(), "KT: FAIL"), 0u) << vm.output();
    EXPECT_NE(vm.output().find(" fail=0"), std::string::npos) << vm.output();
}

TEST(VirtioTestGuest, PciListsDevicesWithTheirIds) {
    REQUIRE_KVM();
    TempDir tmp;
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline", "tests=pci", "--disk", disk(tmp, "d.img", 1),
                  "--rng", "--console", "virtio"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: pci 00:00.0 vendor=0x1b36 device=0x0008 class=0x060000"), std::string::npos) << out;
    EXPECT_NE(out.find("vendor=0x1af4 device=0x1042 class=0x010000"), std::string::npos) << out;  // blk
    EXPECT_NE(out.find("vendor=0x1af4 device=0x1044"), std::string::npos) << out;                   // rng
    EXPECT_NE(out.find("vendor=0x1af4 device=0x1043"), std::string::npos) << out;                   // console
    EXPECT_NE(out.find("mismatches=0"), std::string::npos) << "CF8/CFC and ECAM disagree\n" << out;
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

class BlkForm : public ::testing::TestWithParam<std::string> {};

TEST_P(BlkForm, GuestPatternLandsInTheFileAndHostDataReachesTheGuest) {
    REQUIRE_KVM();
    TempDir tmp;
    // The host fills sectors 100..163 with a pattern the guest checksums.
    auto host_data = pseudo_random_bytes(64 * 512, 99);
    std::vector<uint8_t> head(164 * 512, 0);
    std::copy(host_data.begin(), host_data.end(), head.begin() + 100 * 512);
    std::string path = disk(tmp, "d.img", 8, head);
    {
        VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline",
                      "tests=blk,blk_read blk_start=100 blk_count=64 blk_irq=msix", "--disk", path + GetParam()});
        ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
        char want[64];
        snprintf(want, sizeof want, "KT: blk read start=100 count=64 crc32=%08x", crc32(host_data));
        EXPECT_NE(vm.output().find(want), std::string::npos) << "expected " << want << "\n" << vm.output();
        EXPECT_NE(vm.output().find("KT: blk msix read=ok"), std::string::npos) << vm.output();
        expect_clean(vm);
        EXPECT_EQ(vm.wait_exit(30s), 0);
    }
    {
        VmProcess vm({"--kernel", testguest_elf(), "--cmdline", "tests=blk,blk_rw blk_start=2000 blk_count=40 blk_seed=7",
                      "--disk", path + GetParam()});
        ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
        expect_clean(vm);
        EXPECT_EQ(vm.wait_exit(30s), 0);
    }
    EXPECT_EQ(read_range(path, 2000 * 512, 40 * 512), pattern(2000, 40, 7));
}

INSTANTIATE_TEST_SUITE_P(Cache, BlkForm, ::testing::Values(std::string(""), std::string(",cache=none")),
                         [](const auto& info) { return info.param.empty() ? "writeback" : "none"; });

TEST(VirtioTestGuest, ManyRequestsInFlightGetIdDiscardWriteZeroes) {
    REQUIRE_KVM();
    TempDir tmp;
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline",
                  "tests=blk,blk_inflight,blk_getid,blk_discard,blk_zeroes blk_qd=64 blk_start=8 blk_count=16 "
                  "vq_feat=indirect,event_idx blk_irq=msix",
                  "--disk", disk(tmp, "d.img", 8)});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: blk inflight n=64"), std::string::npos) << out;
    EXPECT_NE(out.find("bogus=0"), std::string::npos) << out;
    EXPECT_NE(out.find("serial=kvmkit-vda"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS blk_discard"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS blk_zeroes"), std::string::npos) << out;
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

// The benchmark's driver mode (bench/blk_bench.py): 16 requests kept in
// flight, the vCPU asleep in HLT between MSI-X completion interrupts, on an
// O_DIRECT disk. Every request must complete without error; no timing is checked.
TEST(VirtioTestGuest, BenchModeKeepsSixteenInFlightWithHltAndMsix) {
    REQUIRE_KVM();
    TempDir tmp;
    VmProcess vm({"--kernel", testguest_elf(), "--cmdline",
                  "bench=blk:randread:400:8:16 blk_irq=msix blk_wait=hlt", "--disk",
                  disk(tmp, "d.img", 8) + ",cache=none"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    EXPECT_NE(out.find("KT: bench mode=blk op=randread count=400 sectors=8 qd=16"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: bench bytes=1638400 requests=400 errors=0"), std::string::npos) << out;
    EXPECT_NE(out.find("KT: PASS bench"), std::string::npos) << out;
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

TEST(VirtioTestGuest, ReadOnlyDiskRefusesWrites) {
    REQUIRE_KVM();
    TempDir tmp;
    auto host_data = pseudo_random_bytes(8 * 512, 5);
    std::string path = disk(tmp, "ro.img", 1, host_data);
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline", "tests=blk,blk_readonly blk_start=0",
                  "--disk", path + ",readonly=on"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("KT: blk readonly write-status=1 unchanged=1"), std::string::npos) << vm.output();
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0);
    EXPECT_EQ(read_range(path, 0, 8 * 512), host_data);
}

TEST(VirtioTestGuest, FlushedDataSurvivesSigkill) {
    REQUIRE_KVM();
    TempDir tmp;
    std::string path = disk(tmp, "d.img", 8);
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline",
                  "tests=blk,blk_flush blk_start=300 blk_count=128 blk_seed=3 end=halt", "--disk", path});
    ASSERT_TRUE(vm.wait_for("KT: blk flushed seq=", kTimeout)) << vm.output() << vm.errors();
    // Kill the VMM the moment the guest saw its flush complete.
    kill(vm.pid(), SIGKILL);
    ASSERT_TRUE(vm.wait_exit(30s).has_value());
    EXPECT_EQ(read_range(path, 300 * 512, 128 * 512), pattern(300, 128, 3));
}

TEST(VirtioTestGuest, HostileChainsAreRefusedAndTheVmmKeepsRunning) {
    REQUIRE_KVM();
    TempDir tmp;
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline",
                  "tests=blk,blk_hostile blk_hostile_strict=1 vq_feat=indirect blk_irq=msix", "--disk",
                  disk(tmp, "d.img", 4), "--cpus", "2"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    const std::string out = vm.output();
    for (const char* c : {"addr-beyond-ram", "addr-overflow", "header-writable", "no-status", "loop", "long-loop",
                          "head-out-of-range", "indirect-out-of-range", "indirect-bad-len", "indirect-long",
                          "beyond-capacity", "unaligned-len", "unknown-type", "reset-inflight"})
        EXPECT_NE(out.find(std::string("KT: blk_hostile ") + c + " "), std::string::npos) << c << "\n" << out;
    EXPECT_NE(out.find("late-writes=0"), std::string::npos) << out;
    EXPECT_EQ(count_of(out, " BAD"), 0u) << out;
    EXPECT_NE(out.find("KT: PASS blk_hostile"), std::string::npos) << out;
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0) << vm.errors();
}

TEST(VirtioTestGuest, RngAndConsole) {
    REQUIRE_KVM();
    VmProcess vm({"--kernel", testguest_bzimage(), "--cmdline", "tests=rng,vcon", "--rng", "--console", "virtio"});
    ASSERT_TRUE(vm.wait_for("KT: DONE", kTimeout)) << vm.output() << vm.errors();
    EXPECT_NE(vm.output().find("KT: rng bytes=64 hex="), std::string::npos) << vm.output();
    // virtio-console output reaches the VMM's stdout.
    EXPECT_NE(vm.output().find("KT-VCON-HELLO"), std::string::npos) << vm.output();
    expect_clean(vm);
    EXPECT_EQ(vm.wait_exit(30s), 0);
}

}  // namespace
}  // namespace kvmkit::test
