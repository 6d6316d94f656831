// Entry CPU state: GDT descriptors (Intel SDM vol. 3, 3.4.5 "Segment Descriptors"),
// 4-level identity page tables with 2 MiB pages (SDM 4.5), and the register state
// the 64-bit boot protocol (boot.rst) and the PVH ABI (xen/include/public/arch-x86/
// hvm/start_info.h) require at the entry point.
#include "arch/x86_64/cpu_setup.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace kvmkit::arch::x86_64;
using kvmkit::memory::GuestMemory;

namespace {
constexpr uint64_t kGdt = 0x500, kPml4 = 0x9000;
constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;
constexpr uint64_t kPresent = 1, kWrite = 2, kPs = 1ull << 7;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;

// Hand-assembled descriptors for a flat 4 GiB segment (base 0, limit 0xfffff, G=1):
//   limit[15:0]=0xffff | base[23:0]=0 | access | limit[19:16]=0xf | flags | base[31:24]=0
constexpr uint64_t kFlatCode64 = 0x00af9b000000ffffull;  // access 0x9b, flags G|L
constexpr uint64_t kFlatCode32 = 0x00cf9b000000ffffull;  // access 0x9b, flags G|D
constexpr uint64_t kFlatData = 0x00cf93000000ffffull;    // access 0x93, flags G|B

class LowMemory : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(mem.add_borrowed(0, low.size(), low.data())); }
    uint64_t q(uint64_t addr) {
        auto v = mem.read_obj<uint64_t>(addr);
        EXPECT_TRUE(v);
        return v ? *v : 0;
    }
    // A 4-level page walk as the MMU would do it; returns false on a non-present entry.
    bool translate(uint64_t va, uint64_t& pa) {
        uint64_t pml4e = q(kPml4 + ((va >> 39) & 511) * 8);
        if (!(pml4e & kPresent)) return false;
        uint64_t pdpte = q((pml4e & kAddrMask) + ((va >> 30) & 511) * 8);
        if (!(pdpte & kPresent)) return false;
        EXPECT_FALSE(pdpte & kPs) << "1 GiB pages are not expected";
        uint64_t pde = q((pdpte & kAddrMask) + ((va >> 21) & 511) * 8);
        if (!(pde & kPresent)) return false;
        EXPECT_TRUE(pde & kPs) << "2 MiB pages expected";
        pa = (pde & 0x000fffffffe00000ull) | (va & 0x1fffff);
        return true;
    }
    std::vector<uint8_t> low = std::vector<uint8_t>(1 << 20, 0);
    GuestMemory mem;
};

// What a CPU loads into the hidden part of a segment register from a descriptor.
void expect_segment_matches_descriptor(const kvm_segment& s, uint64_t d, const char* what) {
    SCOPED_TRACE(what);
    const uint64_t base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
    uint64_t limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);
    const bool g = (d >> 55) & 1;
    if (g) limit = (limit << 12) | 0xfff;
    EXPECT_EQ(s.base, base);
    EXPECT_EQ(s.limit, limit);
    EXPECT_EQ(uint64_t{s.type}, (d >> 40) & 0xf);
    EXPECT_EQ(uint64_t{s.s}, (d >> 44) & 1);
    EXPECT_EQ(uint64_t{s.dpl}, (d >> 45) & 3);
    EXPECT_EQ(uint64_t{s.present}, (d >> 47) & 1);
    EXPECT_EQ(uint64_t{s.l}, (d >> 53) & 1);
    EXPECT_EQ(uint64_t{s.db}, (d >> 54) & 1);
    EXPECT_EQ(s.g != 0, g);
}
}  // namespace

TEST(GdtEntry, FlatDescriptors) {
    EXPECT_EQ(gdt_entry(0xa09b, 0, 0xfffff), kFlatCode64);
    EXPECT_EQ(gdt_entry(0xc09b, 0, 0xfffff), kFlatCode32);
    EXPECT_EQ(gdt_entry(0xc093, 0, 0xfffff), kFlatData);
    EXPECT_EQ(gdt_entry(0, 0, 0), 0u);
}

TEST(GdtEntry, BaseAndLimitAreScattered) {
    // base 0x12345678, limit 0xabcde, access 0x89, flags nibble 0:
    //   limit[15:0]=0xbcde, base[23:0]=0x345678, access=0x89, limit[19:16]=0xa, flags=0, base[31:24]=0x12
    EXPECT_EQ(gdt_entry(0x0089, 0x12345678, 0xabcde), 0x120a89345678bcdeull);
    // Bits 8-11 of the flags word are not part of the descriptor (the access byte is bits 0-7,
    // the flags nibble bits 12-15).
    EXPECT_EQ(gdt_entry(0x0f89, 0x12345678, 0xabcde), 0x120a89345678bcdeull);
    EXPECT_EQ(gdt_entry(0xc000, 0xff000000, 0), 0xffc0000000000000ull);
}

TEST_F(LowMemory, GdtHoldsTheBootSelectors) {
    ASSERT_TRUE(write_gdt_and_page_tables(mem));
    EXPECT_EQ(q(kGdt + 0x00), 0u) << "null descriptor";
    EXPECT_EQ(q(kGdt + 0x08), kFlatCode32);
    // boot.rst: __BOOT_CS = 0x10 (64-bit code here), __BOOT_DS = 0x18.
    EXPECT_EQ(q(kGdt + 0x10), kFlatCode64);
    EXPECT_EQ(q(kGdt + 0x18), kFlatData);
}

TEST_F(LowMemory, PageTablesIdentityMap4GiBWith2MiBPages) {
    ASSERT_TRUE(write_gdt_and_page_tables(mem));
    // PML4[0] -> PDPT; PDPT[0..3] -> four page directories; nothing else present.
    const uint64_t pml4e = q(kPml4);
    EXPECT_EQ(pml4e & (kPresent | kWrite), kPresent | kWrite);
    for (int i = 1; i < 512; ++i) ASSERT_EQ(q(kPml4 + i * 8) & kPresent, 0u) << "PML4[" << i << "]";
    const uint64_t pdpt = pml4e & kAddrMask;
    for (int i = 0; i < 4; ++i) {
        const uint64_t e = q(pdpt + i * 8);
        EXPECT_EQ(e & (kPresent | kWrite), kPresent | kWrite) << i;
        const uint64_t pd = e & kAddrMask;
        // A few PDEs of each directory: physical = (i GiB) + (j * 2 MiB), present, writable, PS.
        for (int j : {0, 1, 255, 511}) {
            const uint64_t pde = q(pd + j * 8);
            EXPECT_EQ(pde, (uint64_t(i) << 30) + (uint64_t(j) << 21) + (kPresent | kWrite | kPs))
                << "PD" << i << "[" << j << "]";
        }
    }
    EXPECT_EQ(q(pdpt + 4 * 8) & kPresent, 0u) << "nothing mapped above 4 GiB";
    // The tables themselves sit where layout.hpp says: PML4 0x9000, PDPT 0xa000, PDs 0xb000..
    EXPECT_EQ(pdpt, 0xa000u);
    EXPECT_EQ(q(pdpt) & kAddrMask, 0xb000u);
    EXPECT_EQ(q(pdpt + 24) & kAddrMask, 0xe000u);
}

TEST_F(LowMemory, PageWalkIsIdentity) {
    ASSERT_TRUE(write_gdt_and_page_tables(mem));
    for (uint64_t va : {0x0ull, 0x7000ull, 0x100200ull, 0x123456ull, 0x3fffffffull, 0x40000000ull, 0xbfffffffull,
                        0xc0000000ull, 0xfec00000ull, 0xfee00abcull, 0xffffffffull}) {
        uint64_t pa = ~0ull;
        ASSERT_TRUE(translate(va, pa)) << std::hex << va;
        EXPECT_EQ(pa, va) << std::hex << va;
    }
    uint64_t pa;
    EXPECT_FALSE(translate(0x100000000ull, pa));
}

TEST(CpuSetupMemory, FailsCleanlyWithoutRoomForTheTables) {
    std::vector<uint8_t> tiny(0x9000, 0);  // no room for the page tables at 0x9000
    GuestMemory mem;
    ASSERT_TRUE(mem.add_borrowed(0, tiny.size(), tiny.data()));
    EXPECT_FALSE(write_gdt_and_page_tables(mem));
}

TEST_F(LowMemory, LongModeEntryState) {
    ASSERT_TRUE(write_gdt_and_page_tables(mem));
    kvm_sregs s{};
    s.cr0 = 0x60000010;  // KVM's reset value (CD, NW, ET)
    entry_sregs(BootProtocol::BzImage64, s);

    EXPECT_EQ(s.cr0 & (kCr0Pe | kCr0Pg), kCr0Pe | kCr0Pg);
    EXPECT_TRUE(s.cr4 & kCr4Pae);
    EXPECT_EQ(s.efer & (kEferLme | kEferLma), kEferLme | kEferLma);
    EXPECT_EQ(s.cr3, kPml4);

    EXPECT_EQ(s.cs.selector, 0x10);
    EXPECT_EQ(s.cs.l, 1);
    EXPECT_EQ(s.cs.db, 0) << "L=1 requires D=0";
    EXPECT_EQ(s.cs.present, 1);
    EXPECT_EQ(s.cs.s, 1);
    EXPECT_EQ(s.cs.type & 0x8, 0x8) << "code segment";
    EXPECT_EQ(s.cs.dpl, 0);
    for (const kvm_segment* d : {&s.ds, &s.es, &s.ss, &s.fs, &s.gs}) {
        EXPECT_EQ(d->selector, 0x18);
        EXPECT_EQ(d->type & 0xa, 0x2) << "writable data";
        EXPECT_EQ(d->base, 0u);
        EXPECT_EQ(d->limit, 0xffffffffu);
        EXPECT_EQ(d->present, 1);
    }
    // A usable TR: VMX requires a busy TSS (type 11) in long mode.
    EXPECT_EQ(s.tr.type, 11);
    EXPECT_EQ(s.tr.s, 0);
    EXPECT_EQ(s.tr.present, 1);

    EXPECT_EQ(s.gdt.base, kGdt);
    EXPECT_GE(s.gdt.limit + 1u, 0x20u) << "the GDT covers __BOOT_DS";
    EXPECT_EQ((s.gdt.limit + 1u) % 8, 0u);

    // The hidden segment state equals what reloading the selectors from the GDT would give.
    expect_segment_matches_descriptor(s.cs, q(kGdt + s.cs.selector), "cs");
    expect_segment_matches_descriptor(s.ds, q(kGdt + s.ds.selector), "ds");
    expect_segment_matches_descriptor(s.ss, q(kGdt + s.ss.selector), "ss");
}

TEST_F(LowMemory, PvhEntryState) {
    ASSERT_TRUE(write_gdt_and_page_tables(mem));
    kvm_sregs s{};
    // State left over from a previous 64-bit boot must be undone.
    s.cr0 = kCr0Pe | kCr0Pg | 0x10;
    s.cr4 = kCr4Pae;
    s.efer = kEferLme | kEferLma;
    entry_sregs(BootProtocol::Pvh, s);

    EXPECT_TRUE(s.cr0 & kCr0Pe);
    EXPECT_FALSE(s.cr0 & kCr0Pg);
    EXPECT_EQ(s.efer, 0u);
    EXPECT_FALSE(s.cr4 & kCr4Pae);
    // PVH: "CS: 32-bit read/execute, base 0, limit 0xFFFFFFFF; DS, ES, SS: read/write, same".
    EXPECT_EQ(s.cs.l, 0);
    EXPECT_EQ(s.cs.db, 1);
    EXPECT_EQ(s.cs.base, 0u);
    EXPECT_EQ(s.cs.limit, 0xffffffffu);
    EXPECT_EQ(s.cs.type & 0x8, 0x8);
    for (const kvm_segment* d : {&s.ds, &s.es, &s.ss}) {
        EXPECT_EQ(d->base, 0u);
        EXPECT_EQ(d->limit, 0xffffffffu);
        EXPECT_EQ(d->db, 1);
        EXPECT_EQ(d->type & 0xa, 0x2);
    }
    EXPECT_EQ(s.tr.type & 0x3, 0x3) << "busy TSS";
    expect_segment_matches_descriptor(s.cs, q(kGdt + s.cs.selector), "cs");
    expect_segment_matches_descriptor(s.ds, q(kGdt + s.ds.selector), "ds");
}

TEST(EntryRegs, BootInfoRegisterDependsOnProtocol) {
    auto r64 = entry_regs(BootProtocol::BzImage64, 0x100200, 0x7000);
    EXPECT_EQ(r64.rip, 0x100200u);
    EXPECT_EQ(r64.rsi, 0x7000u) << "64-bit boot protocol: RSI = boot_params";
    EXPECT_TRUE(r64.rflags & 0x2) << "RFLAGS bit 1 is reserved-one";
    EXPECT_FALSE(r64.rflags & 0x200) << "interrupts disabled";

    auto pvh = entry_regs(BootProtocol::Pvh, 0x1000a0, 0x1000);
    EXPECT_EQ(pvh.rip, 0x1000a0u);
    EXPECT_EQ(pvh.rbx, 0x1000u) << "PVH: EBX = start_info";
    EXPECT_FALSE(pvh.rflags & 0x200);
    EXPECT_TRUE(pvh.rflags & 0x2);
}
