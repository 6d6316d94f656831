// Loads a Linux kernel image into guest memory:
//  - a bzImage, following the x86 boot protocol (Documentation/arch/x86/boot.rst),
//    entered through its 64-bit entry point (protocol >= 2.12, XLF_KERNEL_64);
//  - an ELF vmlinux (or any ELF) carrying a Xen PVH entry note
//    (XEN_ELFNOTE_PHYS32_ENTRY), entered in 32-bit protected mode. This skips
//    the decompressor, which matters a lot when guest code is emulated.
// Every offset read from the image is bounds-checked: the file is untrusted.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace kvmkit::arch::x86_64 {

enum class BootProtocol { BzImage64, Pvh };

const char* boot_protocol_name(BootProtocol p);

struct LoadedKernel {
    BootProtocol protocol;
    uint64_t entry;       // guest-physical entry point
    uint64_t image_end;   // first byte after the loaded image (and its init_size)
    // bzImage only: the setup header as found in the file, to copy into boot_params.
    std::optional<setup_header> header;
    uint32_t cmdline_max;     // longest command line the kernel accepts, without NUL
    uint64_t initrd_addr_max; // highest address the initrd may end at (inclusive)
    bool is_linux = false;    // Linux announces itself (kernel_version string / GUEST_OS note)
};

// Recognises the format from the bytes (bzImage or ELF) and loads it.
base::Result<LoadedKernel> load_kernel(memory::GuestMemory& mem, std::span<const uint8_t> image);

// Exposed for unit tests.
base::Result<LoadedKernel> load_bzimage(memory::GuestMemory& mem, std::span<const uint8_t> image);
base::Result<LoadedKernel> load_elf_pvh(memory::GuestMemory& mem, std::span<const uint8_t> image);
// Finds the payload of the first ELF note with this owner name and type (any
// type when `type` is kAnyNoteType); empty optional when absent.
constexpr uint32_t kAnyNoteType = UINT32_MAX;
base::Result<std::optional<std::span<const uint8_t>>> find_elf_note(std::span<const uint8_t> image,
                                                                    std::string_view owner, uint32_t type);
// Finds the PVH entry in an ELF's notes; nullopt when there is none.
base::Result<std::optional<uint64_t>> find_pvh_entry(std::span<const uint8_t> image);

}  // namespace kvmkit::arch::x86_64
