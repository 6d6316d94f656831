// The CPU state a kernel expects at its entry point, as plain register
// structures (no ioctls here: vmm/ applies them to a vCPU).
//  - 64-bit boot protocol: long mode, flat __BOOT_CS (0x10) / __BOOT_DS (0x18),
//    identity-mapped page tables covering the first 4 GiB, RSI = boot_params.
//  - PVH: 32-bit protected mode, paging off, flat segments, EBX = start_info.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace kvmkit::arch::x86_64 {

// Writes the GDT and the identity-mapping page tables into guest memory.
base::Result<void> write_gdt_and_page_tables(memory::GuestMemory& mem);

struct EntryState {
    kvm_regs regs;
    kvm_sregs sregs;  // only the fields we set; start from the vCPU's current sregs
};

// Fills `sregs` (read from the vCPU first, so that KVM's defaults for the
// rest survive) and returns the registers for the boot vCPU.
kvm_regs entry_regs(BootProtocol protocol, uint64_t entry, uint64_t boot_info_addr);
void entry_sregs(BootProtocol protocol, kvm_sregs& sregs);

// GDT entries, exposed for unit tests.
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

}  // namespace kvmkit::arch::x86_64
