#include "arch/x86_64/boot_setup.hpp"

#include <asm/bootparam.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/pvh.hpp"

namespace kvmkit::arch::x86_64 {

using base::fail;
using base::Result;

namespace {
constexpr uint8_t kLoaderTypeUndefined = 0xff;  // boot protocol: "undefined" boot loader ID
constexpr uint64_t kPage = 4096;

Result<void> write_cmdline(memory::GuestMemory& mem, const LoadedKernel& k, const std::string& cmdline) {
    if (cmdline.find('\0') != std::string::npos) return fail("command line contains a NUL byte");
    uint64_t limit = std::min<uint64_t>(k.cmdline_max, layout::kCmdlineMax - 1);
    if (cmdline.size() > limit)
        return fail("command line too long (" + std::to_string(cmdline.size()) + " bytes; the kernel accepts " +
                    std::to_string(limit) + ")");
    return mem.write(layout::kCmdlineAddr, cmdline.c_str(), cmdline.size() + 1);
}
}  // namespace

Result<uint64_t> place_initrd(const LoadedKernel& k, uint64_t initrd_size, uint64_t mem_size) {
    uint64_t top = low_ram_end(mem_size);
    if (k.initrd_addr_max < UINT64_MAX) top = std::min(top, k.initrd_addr_max + 1);
    auto too_big = [&] {
        return fail("initrd (" + std::to_string(initrd_size >> 10) + " KiB) does not fit in guest memory below " +
                    std::to_string(top >> 20) + " MiB above the kernel; give the guest more --memory");
    };
    if (initrd_size > top) return too_big();
    uint64_t addr = (top - initrd_size) & ~(kPage - 1);
    if (addr < k.image_end) return too_big();
    return addr;
}

Result<BootPlacement> write_boot_info(memory::GuestMemory& mem, const LoadedKernel& k, const BootInputs& in) {
    TRY(write_cmdline(mem, k, in.cmdline));

    BootPlacement p;
    if (!in.initrd.empty()) {
        p.initrd_addr = TRY(place_initrd(k, in.initrd.size(), in.mem_size));
        p.initrd_size = in.initrd.size();
        TRY_CTX(mem.write(p.initrd_addr, in.initrd.data(), in.initrd.size()), "load initrd");
    }
    auto e820 = build_e820(in.mem_size);

    if (k.protocol == BootProtocol::BzImage64) {
        boot_params bp{};
        bp.hdr = *k.header;
        bp.hdr.type_of_loader = kLoaderTypeUndefined;
        bp.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdlineAddr);
        bp.ext_cmd_line_ptr = 0;
        bp.hdr.ramdisk_image = static_cast<uint32_t>(p.initrd_addr);
        bp.hdr.ramdisk_size = static_cast<uint32_t>(p.initrd_size);
        bp.ext_ramdisk_image = static_cast<uint32_t>(p.initrd_addr >> 32);
        bp.ext_ramdisk_size = static_cast<uint32_t>(p.initrd_size >> 32);
        bp.hdr.loadflags |= KEEP_SEGMENTS;  // keep the flat segments we set up
        bp.acpi_rsdp_addr = in.rsdp_addr;
        if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE) return fail("too many e820 entries");
        bp.e820_entries = static_cast<uint8_t>(e820.size());
        for (size_t i = 0; i < e820.size(); ++i) {
            bp.e820_table[i].addr = e820[i].addr;
            bp.e820_table[i].size = e820[i].size;
            bp.e820_table[i].type = static_cast<uint32_t>(e820[i].type);
        }
        TRY(mem.write_obj(layout::kBootParamsAddr, bp));
        p.boot_info_addr = layout::kBootParamsAddr;
        return p;
    }

    // PVH: start_info, then the module list, then the memory map.
    uint64_t modlist = layout::kPvhStartInfoAddr + sizeof(HvmStartInfo);
    uint64_t memmap = modlist + sizeof(HvmModlistEntry);
    if (memmap + e820.size() * sizeof(HvmMemmapEntry) > layout::kPvhInfoLimit) return fail("PVH memory map too large");
    HvmStartInfo si{};
    si.magic = kHvmStartMagic;
    si.version = 1;
    si.cmdline_paddr = layout::kCmdlineAddr;
    si.rsdp_paddr = in.rsdp_addr;
    if (p.initrd_size) {
        HvmModlistEntry m{};
        m.paddr = p.initrd_addr;
        m.size = p.initrd_size;
        TRY(mem.write_obj(modlist, m));
        si.nr_modules = 1;
        si.modlist_paddr = modlist;
    }
    for (size_t i = 0; i < e820.size(); ++i) {
        HvmMemmapEntry e{e820[i].addr, e820[i].size, static_cast<uint32_t>(e820[i].type), 0};
        TRY(mem.write_obj(memmap + i * sizeof e, e));
    }
    si.memmap_paddr = memmap;
    si.memmap_entries = static_cast<uint32_t>(e820.size());
    TRY(mem.write_obj(layout::kPvhStartInfoAddr, si));
    p.boot_info_addr = layout::kPvhStartInfoAddr;
    return p;
}

}  // namespace kvmkit::arch::x86_64
