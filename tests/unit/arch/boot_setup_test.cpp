// Boot information: the Linux zero page (boot_params) for the 64-bit boot
// protocol, the PVH hvm_start_info, the command line and the initrd placement.
// Fields are checked at the offsets given by Documentation/arch/x86/zero-page.rst,
// boot.rst and Xen's arch-x86/hvm/start_info.h, not through the loader's structs.
#include "arch/x86_64/boot_setup.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "arch/x86_64/e820.hpp"
#include "images.hpp"

using namespace kvmkit::arch::x86_64;
using namespace kvmkit::test;
using kvmkit::memory::GuestMemory;

namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
constexpr uint64_t kZeroPage = 0x7000;   // where the loader puts boot_params (layout.hpp)
constexpr uint64_t kCmdline = 0x20000;   // where the command line goes (layout.hpp)
constexpr uint64_t kStartInfo = 0x1000;  // PVH start_info (layout.hpp)
constexpr uint32_t kHvmStartMagic = 0x336ec578;
constexpr uint64_t kPage = 4096;

std::vector<uint8_t> read_guest(const GuestMemory& mem, uint64_t addr, size_t len) {
    std::vector<uint8_t> v(len);
    EXPECT_TRUE(mem.read(addr, v.data(), len));
    return v;
}

std::string read_cstring(const GuestMemory& mem, uint64_t addr, size_t max) {
    auto bytes = read_guest(mem, addr, max);
    auto nul = std::find(bytes.begin(), bytes.end(), 0);
    EXPECT_NE(nul, bytes.end()) << "no NUL terminator";
    return std::string(bytes.begin(), nul);
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 9));
    return v;
}

LoadedKernel pvh_kernel(uint64_t image_end = 0x2000000, uint32_t cmdline_max = 2047) {
    LoadedKernel k{};
    k.protocol = BootProtocol::Pvh;
    k.entry = 0x1000000;
    k.image_end = image_end;
    k.cmdline_max = cmdline_max;
    k.initrd_addr_max = UINT32_MAX;
    return k;
}

class BootSetup : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(mem.add_anonymous(0, 64 * MiB)); }
    LoadedKernel load(const BzImageSpec& spec = {}) {
        auto k = load_bzimage(mem, make_bzimage(spec));
        EXPECT_TRUE(k) << k.error().message();
        return *k;
    }
    GuestMemory mem;
};

}  // namespace

// ---- Linux zero page -----------------------------------------------------------

TEST_F(BootSetup, ZeroPageFields) {
    BzImageSpec spec;
    auto k = load(spec);
    const auto initrd = pattern(0x5123, 7);
    BootInputs in{"console=ttyS0 root=/dev/vda", initrd, 64 * MiB, 0xe0000};
    auto p = write_boot_info(mem, k, in);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->boot_info_addr, kZeroPage);

    auto zp = read_guest(mem, kZeroPage, 4096);
    // The setup header is copied from the image.
    EXPECT_EQ(std::memcmp(zp.data() + hdr::kHeader, "HdrS", 4), 0);
    EXPECT_EQ(get<uint16_t>(zp, hdr::kBootFlag), 0xaa55);
    EXPECT_EQ(get<uint16_t>(zp, hdr::kVersion), 0x020f);
    EXPECT_EQ(zp[hdr::kSetupSects], 4);
    EXPECT_TRUE(zp[hdr::kLoadflags] & LOADED_HIGH);
    EXPECT_EQ(get<uint16_t>(zp, hdr::kXloadflags), XLF_KERNEL_64);
    EXPECT_EQ(get<uint32_t>(zp, hdr::kCmdlineSize), 2047u);

    // Fields the boot loader fills in.
    EXPECT_EQ(zp[hdr::kTypeOfLoader], 0xff);  // "undefined" boot loader
    EXPECT_EQ(get<uint32_t>(zp, hdr::kCmdLinePtr), kCmdline);
    EXPECT_EQ(get<uint32_t>(zp, zp::kExtCmdLinePtr), 0u);
    EXPECT_EQ(read_cstring(mem, kCmdline, 64), "console=ttyS0 root=/dev/vda");

    const uint32_t rd = get<uint32_t>(zp, hdr::kRamdiskImage);
    EXPECT_EQ(rd, p->initrd_addr);
    EXPECT_EQ(get<uint32_t>(zp, hdr::kRamdiskSize), 0x5123u);
    EXPECT_EQ(get<uint32_t>(zp, zp::kExtRamdiskImage), 0u);
    EXPECT_EQ(get<uint32_t>(zp, zp::kExtRamdiskSize), 0u);
    EXPECT_EQ(p->initrd_size, 0x5123u);
    EXPECT_EQ(rd % kPage, 0u);
    EXPECT_GE(rd, k.image_end);
    EXPECT_LE(rd + 0x5123u, 64 * MiB);
    EXPECT_EQ(read_guest(mem, rd, initrd.size()), initrd);

    EXPECT_EQ(get<uint64_t>(zp, zp::kAcpiRsdpAddr), 0xe0000u);

    // The e820 table, 20-byte packed entries {u64 addr, u64 size, u32 type}: the map of
    // build_e820 (tested on its own), starting with the four classic PC entries.
    auto e820 = build_e820(64 * MiB);
    ASSERT_EQ(size_t{zp[zp::kE820Entries]}, e820.size());
    ASSERT_GE(e820.size(), 4u);
    const uint64_t want[4][3] = {{0, 0x9fc00, 1}, {0x9fc00, 0x400, 2}, {0xe0000, 0x20000, 2}, {0x100000, 63 * MiB, 1}};
    for (size_t i = 0; i < e820.size(); ++i) {
        const size_t e = zp::kE820Table + i * zp::kE820EntrySize;
        EXPECT_EQ(get<uint64_t>(zp, e), e820[i].addr) << i;
        EXPECT_EQ(get<uint64_t>(zp, e + 8), e820[i].size) << i;
        EXPECT_EQ(get<uint32_t>(zp, e + 16), static_cast<uint32_t>(e820[i].type)) << i;
        if (i < 4) {
            EXPECT_EQ(get<uint64_t>(zp, e), want[i][0]) << i;
            EXPECT_EQ(get<uint64_t>(zp, e + 8), want[i][1]) << i;
            EXPECT_EQ(get<uint32_t>(zp, e + 16), want[i][2]) << i;
        }
    }
}

TEST_F(BootSetup, ZeroPageE820DescribesRamAbove4G) {
    auto k = load();
    // The guest memory object only needs to back the boot structures here.
    BootInputs in{"", {}, 5 * GiB, 0xe0000};
    auto p = write_boot_info(mem, k, in);
    ASSERT_TRUE(p) << p.error().message();
    auto zp = read_guest(mem, kZeroPage, 4096);
    auto e820 = build_e820(5 * GiB);
    ASSERT_EQ(size_t{zp[zp::kE820Entries]}, e820.size());
    const size_t last = zp::kE820Table + (e820.size() - 1) * zp::kE820EntrySize;
    EXPECT_EQ(get<uint64_t>(zp, last), 4 * GiB);
    EXPECT_EQ(get<uint64_t>(zp, last + 8), 2 * GiB);
    EXPECT_EQ(get<uint32_t>(zp, last + 16), 1u);
}

TEST_F(BootSetup, NoInitrdLeavesRamdiskFieldsZero) {
    auto k = load();
    auto p = write_boot_info(mem, k, BootInputs{"quiet", {}, 64 * MiB, 0});
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->initrd_addr, 0u);
    EXPECT_EQ(p->initrd_size, 0u);
    auto zp = read_guest(mem, kZeroPage, 4096);
    EXPECT_EQ(get<uint32_t>(zp, hdr::kRamdiskImage), 0u);
    EXPECT_EQ(get<uint32_t>(zp, hdr::kRamdiskSize), 0u);
    EXPECT_EQ(get<uint64_t>(zp, zp::kAcpiRsdpAddr), 0u);
}

// ---- command line ----------------------------------------------------------------

TEST_F(BootSetup, CommandLineOfExactlyCmdlineSizeIsAccepted) {
    BzImageSpec spec;
    spec.cmdline_size = 64;  // boot.rst: the maximum size *without* the terminating zero
    auto k = load(spec);
    EXPECT_EQ(k.cmdline_max, 64u);
    const std::string exact(64, 'a');
    ASSERT_TRUE(write_boot_info(mem, k, BootInputs{exact, {}, 64 * MiB, 0}));
    EXPECT_EQ(read_cstring(mem, kCmdline, 80), exact);

    auto r = write_boot_info(mem, k, BootInputs{std::string(65, 'a'), {}, 64 * MiB, 0});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("too long"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("64"), std::string::npos) << r.error().message();
}

TEST_F(BootSetup, ShorterCommandLineIsTerminated) {
    auto k = pvh_kernel();
    ASSERT_TRUE(write_boot_info(mem, k, BootInputs{std::string(100, 'x'), {}, 64 * MiB, 0}));
    ASSERT_TRUE(write_boot_info(mem, k, BootInputs{"abc", {}, 64 * MiB, 0}));
    EXPECT_EQ(read_cstring(mem, kCmdline, 128), "abc");
    ASSERT_TRUE(write_boot_info(mem, k, BootInputs{"", {}, 64 * MiB, 0}));
    EXPECT_EQ(read_cstring(mem, kCmdline, 16), "");
}

TEST_F(BootSetup, CommandLineWithNulIsRejected) {
    auto k = pvh_kernel();
    auto r = write_boot_info(mem, k, BootInputs{std::string("root=/dev/vda\0evil", 18), {}, 64 * MiB, 0});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("NUL"), std::string::npos) << r.error().message();
}

TEST_F(BootSetup, PvhCommandLineLimitIs2047) {
    auto k = pvh_kernel();
    EXPECT_TRUE(write_boot_info(mem, k, BootInputs{std::string(2047, 'p'), {}, 64 * MiB, 0}));
    EXPECT_FALSE(write_boot_info(mem, k, BootInputs{std::string(2048, 'p'), {}, 64 * MiB, 0}));
}

TEST_F(BootSetup, CommandLineIsCappedByItsArea) {
    // A kernel claiming a huge cmdline_size is still limited to the 64 KiB area (NUL included).
    auto k = pvh_kernel(0x2000000, 0x100000);
    EXPECT_TRUE(write_boot_info(mem, k, BootInputs{std::string(0xffff, 'c'), {}, 64 * MiB, 0}));
    EXPECT_FALSE(write_boot_info(mem, k, BootInputs{std::string(0x10000, 'c'), {}, 64 * MiB, 0}));
}

// ---- initrd placement -------------------------------------------------------------

TEST(PlaceInitrd, HighestPageAlignedAddressBelowLowRam) {
    auto k = pvh_kernel(0x200000);
    k.initrd_addr_max = 0x37ffffff;
    const uint64_t size = MiB + 123;
    auto a = place_initrd(k, size, 64 * MiB);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(*a, (64 * MiB - size) & ~(kPage - 1));
    EXPECT_EQ(*a % kPage, 0u);
    EXPECT_LE(*a + size, 64 * MiB);
    EXPECT_GE(*a, k.image_end);
}

TEST(PlaceInitrd, RespectsInitrdAddrMax) {
    // initrd_addr_max is the highest address the initrd may *occupy* (inclusive).
    auto k = pvh_kernel(0x200000);
    k.initrd_addr_max = 0x1fffffff;
    const uint64_t size = 3 * MiB;
    auto a = place_initrd(k, size, 1 * GiB);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_LE(*a + size - 1, 0x1fffffffu);
    EXPECT_EQ(*a, 0x20000000u - size);
}

TEST(PlaceInitrd, InitrdAddrMaxIsTheLastUsableByte) {
    // With initrd_addr_max = 0x1fffffff the initrd may end exactly at 0x20000000 (exclusive):
    // a 0x1001-byte initrd at 0x1ffff000 would reach 0x20000000 itself, one byte too far.
    auto k = pvh_kernel(0x200000);
    k.initrd_addr_max = 0x1fffffff;
    auto a = place_initrd(k, 0x1001, 1 * GiB);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(*a, 0x1fffe000u);
    // Exactly one page ending at the limit.
    auto b = place_initrd(k, 0x1000, 1 * GiB);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, 0x1ffff000u);
}

TEST(PlaceInitrd, StaysBelowTheMmioHole) {
    auto k = pvh_kernel(0x2000000);
    k.initrd_addr_max = UINT32_MAX;
    const uint64_t size = 16 * MiB + 1;
    auto a = place_initrd(k, size, 5 * GiB);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_LE(*a + size, 3 * GiB);
    EXPECT_GT(*a, 3 * GiB - size - kPage);
}

TEST(PlaceInitrd, ExactFitAboveTheKernel) {
    auto k = pvh_kernel(0x200000);
    const uint64_t room = 64 * MiB - 0x200000;
    auto a = place_initrd(k, room, 64 * MiB);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(*a, 0x200000u);
    // One byte more no longer fits above the kernel.
    auto b = place_initrd(k, room + 1, 64 * MiB);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().message().find("--memory"), std::string::npos) << b.error().message();
}

TEST(PlaceInitrd, LargerThanMemoryIsAnError) {
    auto k = pvh_kernel(0x200000);
    EXPECT_FALSE(place_initrd(k, 65 * MiB, 64 * MiB));
    EXPECT_FALSE(place_initrd(k, UINT64_MAX, 64 * MiB));
}

TEST_F(BootSetup, InitrdTooBigFailsWriteBootInfo) {
    auto k = pvh_kernel(0x3000000);  // kernel up to 48 MiB
    const auto initrd = pattern(20 * MiB, 1);
    auto r = write_boot_info(mem, k, BootInputs{"", initrd, 64 * MiB, 0});
    EXPECT_FALSE(r);
}

// ---- PVH start_info --------------------------------------------------------------------

TEST_F(BootSetup, PvhStartInfo) {
    auto k = pvh_kernel();
    const auto initrd = pattern(0x3000, 9);
    auto p = write_boot_info(mem, k, BootInputs{"console=hvc0", initrd, 64 * MiB, 0xe0000});
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->boot_info_addr, kStartInfo);

    // struct hvm_start_info: magic, version, flags, nr_modules (u32), modlist_paddr,
    // cmdline_paddr, rsdp_paddr, memmap_paddr (u64), memmap_entries, reserved (u32).
    auto si = read_guest(mem, kStartInfo, 56);
    EXPECT_EQ(get<uint32_t>(si, 0), kHvmStartMagic);
    EXPECT_EQ(get<uint32_t>(si, 4), 1u);
    EXPECT_EQ(get<uint32_t>(si, 12), 1u);
    const uint64_t modlist = get<uint64_t>(si, 16);
    EXPECT_EQ(get<uint64_t>(si, 24), kCmdline);
    EXPECT_EQ(read_cstring(mem, get<uint64_t>(si, 24), 32), "console=hvc0");
    EXPECT_EQ(get<uint64_t>(si, 32), 0xe0000u);
    const uint64_t memmap = get<uint64_t>(si, 40);
    const uint32_t entries = get<uint32_t>(si, 48);

    // struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved.
    ASSERT_NE(modlist, 0u);
    auto mod = read_guest(mem, modlist, 32);
    EXPECT_EQ(get<uint64_t>(mod, 0), p->initrd_addr);
    EXPECT_EQ(get<uint64_t>(mod, 8), 0x3000u);
    EXPECT_EQ(get<uint64_t>(mod, 16), 0u);
    EXPECT_EQ(read_guest(mem, p->initrd_addr, initrd.size()), initrd);
    EXPECT_EQ(p->initrd_addr % kPage, 0u);
    EXPECT_GE(p->initrd_addr, k.image_end);

    // struct hvm_memmap_table_entry: addr, size (u64), type, reserved (u32) — the e820 map.
    auto e820 = build_e820(64 * MiB);
    ASSERT_EQ(entries, e820.size());
    auto mm = read_guest(mem, memmap, entries * 24);
    for (uint32_t i = 0; i < entries; ++i) {
        EXPECT_EQ(get<uint64_t>(mm, i * 24), e820[i].addr) << i;
        EXPECT_EQ(get<uint64_t>(mm, i * 24 + 8), e820[i].size) << i;
        EXPECT_EQ(get<uint32_t>(mm, i * 24 + 16), static_cast<uint32_t>(e820[i].type)) << i;
        EXPECT_EQ(get<uint32_t>(mm, i * 24 + 20), 0u) << i;
    }
    // The structures do not overlap each other or the zero-page / page-table area.
    EXPECT_GE(modlist, kStartInfo + 56);
    EXPECT_GE(memmap, modlist + 32);
    EXPECT_LE(memmap + entries * 24, kZeroPage);
}

TEST_F(BootSetup, PvhWithoutInitrdHasNoModules) {
    auto k = pvh_kernel();
    ASSERT_TRUE(write_boot_info(mem, k, BootInputs{"", {}, 5 * GiB, 0}));
    auto si = read_guest(mem, kStartInfo, 56);
    EXPECT_EQ(get<uint32_t>(si, 0), kHvmStartMagic);
    EXPECT_EQ(get<uint32_t>(si, 12), 0u);
    EXPECT_EQ(get<uint64_t>(si, 16), 0u);
    EXPECT_EQ(get<uint32_t>(si, 48), build_e820(5 * GiB).size());
    auto mm = read_guest(mem, get<uint64_t>(si, 40), get<uint32_t>(si, 48) * 24);
    const size_t last = (get<uint32_t>(si, 48) - 1) * 24;
    EXPECT_EQ(get<uint64_t>(mm, last), 4 * GiB);
    EXPECT_EQ(get<uint64_t>(mm, last + 8), 2 * GiB);
}
