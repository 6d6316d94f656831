#include "arch/x86_64/cpu_setup.hpp"

#include "arch/x86_64/layout.hpp"

namespace kvmkit::arch::x86_64 {

using base::Result;

namespace {
constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;

constexpr uint64_t kPtePresent = 1, kPteWrite = 2, kPtePageSize = 0x80;

// GDT slots. The boot protocol requires __BOOT_CS = 0x10 and __BOOT_DS = 0x18.
constexpr uint16_t kCode64Sel = 0x10, kDataSel = 0x18, kTssSel = 0x20, kCode32Sel = 0x08;
constexpr int kGdtEntries = 5;

// Access/flags words: (flags nibble << 12) | access byte.
constexpr uint16_t kCode64Flags = 0xa09b;  // G, L, present, code, read, accessed
constexpr uint16_t kCode32Flags = 0xc09b;  // G, D/B, present, code, read, accessed
constexpr uint16_t kDataFlags = 0xc093;    // G, D/B, present, data, write, accessed
constexpr uint16_t kTssFlags = 0x808b;     // G, present, busy 32/64-bit TSS

kvm_segment segment_from(uint16_t selector, uint64_t desc) {
    kvm_segment s{};
    s.selector = selector;
    s.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
    uint32_t limit = (desc & 0xffff) | (((desc >> 48) & 0xf) << 16);
    s.g = (desc >> 55) & 1;
    s.limit = s.g ? (limit << 12) | 0xfff : limit;
    s.type = (desc >> 40) & 0xf;
    s.s = (desc >> 44) & 1;
    s.dpl = (desc >> 45) & 3;
    s.present = (desc >> 47) & 1;
    s.avl = (desc >> 52) & 1;
    s.l = (desc >> 53) & 1;
    s.db = (desc >> 54) & 1;
    return s;
}

uint64_t gdt_at(uint16_t sel) {
    switch (sel) {
        case kCode32Sel: return gdt_entry(kCode32Flags, 0, 0xfffff);
        case kCode64Sel: return gdt_entry(kCode64Flags, 0, 0xfffff);
        case kDataSel: return gdt_entry(kDataFlags, 0, 0xfffff);
        case kTssSel: return gdt_entry(kTssFlags, 0, 0xfffff);
    }
    return 0;
}
}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t(base) & 0xff000000) << 32) | ((uint64_t(flags) & 0xf0ff) << 40) |
           ((uint64_t(limit) & 0xf0000) << 32) | ((uint64_t(base) & 0x00ffffff) << 16) | (uint64_t(limit) & 0xffff);
}

Result<void> write_gdt_and_page_tables(memory::GuestMemory& mem) {
    for (uint16_t i = 0; i < kGdtEntries; ++i) TRY(mem.write_obj(layout::kGdtAddr + i * 8, gdt_at(i * 8)));

    // PML4[0] -> PDPT; PDPT[0..3] -> PD pages; each PD maps 1 GiB with 2 MiB pages.
    TRY(mem.write_obj<uint64_t>(layout::kPml4Addr, layout::kPdptAddr | kPtePresent | kPteWrite));
    constexpr int kPds = layout::kIdentityMappedBytes >> 30;
    for (int d = 0; d < kPds; ++d) {
        uint64_t pd = layout::kPdAddr + d * 0x1000ull;
        TRY(mem.write_obj<uint64_t>(layout::kPdptAddr + d * 8, pd | kPtePresent | kPteWrite));
        for (int i = 0; i < 512; ++i) {
            uint64_t phys = (uint64_t(d) << 30) | (uint64_t(i) << 21);
            TRY(mem.write_obj<uint64_t>(pd + i * 8, phys | kPtePresent | kPteWrite | kPtePageSize));
        }
    }
    return base::ok();
}

kvm_regs entry_regs(BootProtocol protocol, uint64_t entry, uint64_t boot_info_addr) {
    kvm_regs r{};
    r.rflags = 0x2;  // bit 1 is reserved-one; interrupts off
    r.rip = entry;
    if (protocol == BootProtocol::BzImage64) {
        r.rsi = boot_info_addr;
    } else {
        r.rbx = boot_info_addr;
    }
    return r;
}

void entry_sregs(BootProtocol protocol, kvm_sregs& s) {
    s.gdt.base = layout::kGdtAddr;
    s.gdt.limit = kGdtEntries * 8 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;  // any interrupt before the kernel sets its IDT is a triple fault, as intended

    kvm_segment data = segment_from(kDataSel, gdt_at(kDataSel));
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.tr = segment_from(kTssSel, gdt_at(kTssSel));

    if (protocol == BootProtocol::BzImage64) {
        s.cs = segment_from(kCode64Sel, gdt_at(kCode64Sel));
        s.cr3 = layout::kPml4Addr;
        s.cr4 |= kCr4Pae;
        s.cr0 |= kCr0Pe | kCr0Pg | kCr0Et;
        s.efer |= kEferLme | kEferLma;
    } else {
        s.cs = segment_from(kCode32Sel, gdt_at(kCode32Sel));
        s.cr0 = (s.cr0 | kCr0Pe | kCr0Et) & ~kCr0Pg;
        s.cr4 = 0;
        s.efer = 0;
    }
}

}  // namespace kvmkit::arch::x86_64
