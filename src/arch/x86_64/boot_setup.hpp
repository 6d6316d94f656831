// Places the command line and initrd and writes the structures a kernel
// reads at entry: boot_params (bzImage) or hvm_start_info (PVH).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace kvmkit::arch::x86_64 {

struct BootInputs {
    std::string cmdline;
    std::span<const uint8_t> initrd;  // empty: none
    uint64_t mem_size = 0;
    uint64_t rsdp_addr = 0;
};

struct BootPlacement {
    uint64_t initrd_addr = 0;
    uint64_t initrd_size = 0;
    uint64_t boot_info_addr = 0;  // boot_params (RSI) or start_info (EBX)
};

// Chooses where the initrd goes: page-aligned, as high as the kernel allows,
// below the end of low RAM, above the kernel image.
base::Result<uint64_t> place_initrd(const LoadedKernel& k, uint64_t initrd_size, uint64_t mem_size);

base::Result<BootPlacement> write_boot_info(memory::GuestMemory& mem, const LoadedKernel& k, const BootInputs& in);

}  // namespace kvmkit::arch::x86_64
