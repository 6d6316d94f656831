#include "arch/x86_64/kernel_loader.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "arch/x86_64/layout.hpp"

namespace kvmkit::arch::x86_64 {

using base::fail;
using base::Result;

namespace {

constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
constexpr size_t kSetupHeaderOffset = 0x1f1;
constexpr uint32_t kXenElfNotePhys32Entry = 18;
constexpr uint32_t kXenElfNoteGuestOs = 6;
constexpr uint32_t kDefaultCmdlineSize = 255;      // protocol < 2.06
constexpr uint32_t kDefaultInitrdAddrMax = 0x37ffffff;

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

template <typename T>
bool read_at(std::span<const uint8_t> image, uint64_t off, T* out) {
    if (off > image.size() || sizeof(T) > image.size() - off) return false;
    std::memcpy(out, image.data() + off, sizeof(T));
    return true;
}

bool is_elf(std::span<const uint8_t> image) {
    return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

bool is_bzimage(std::span<const uint8_t> image) {
    uint32_t magic = 0;
    return read_at(image, 0x202, &magic) && magic == kHdrSMagic;
}

// Where the kernel runs (boot.rst, "pref_address", "kernel_alignment", "init_size"):
// a relocatable kernel at its load address, or at pref_address when that is higher,
// rounded up to kernel_alignment; a non-relocatable one at pref_address (protocol
// >= 2.10), else at 1 MiB. Fields come from an untrusted file: overflow is an error.
Result<uint64_t> runtime_start(const setup_header& hdr, uint64_t load) {
    uint64_t pref = hdr.version >= 0x020a && hdr.pref_address ? hdr.pref_address : layout::kHighMemStart;
    if (!hdr.relocatable_kernel) return pref;
    uint64_t start = std::max(load, pref);
    uint64_t align = hdr.kernel_alignment ? hdr.kernel_alignment : 1;
    uint64_t rem = start % align;
    if (rem == 0) return start;
    if (start > UINT64_MAX - (align - rem))
        return fail("bzImage pref_address " + hex(hdr.pref_address) + " overflows when aligned");
    return start + (align - rem);
}

}  // namespace

const char* boot_protocol_name(BootProtocol p) {
    switch (p) {
        case BootProtocol::BzImage64: return "bzImage (64-bit boot protocol)";
        case BootProtocol::Pvh: return "ELF (PVH entry)";
    }
    return "?";
}

Result<LoadedKernel> load_kernel(memory::GuestMemory& mem, std::span<const uint8_t> image) {
    if (is_elf(image)) return load_elf_pvh(mem, image);
    if (is_bzimage(image)) return load_bzimage(mem, image);
    return fail("not a bzImage (no HdrS magic) nor an ELF file");
}

Result<LoadedKernel> load_bzimage(memory::GuestMemory& mem, std::span<const uint8_t> image) {
    setup_header hdr{};
    if (!read_at(image, kSetupHeaderOffset, &hdr)) return fail("not a bzImage: file too short for a setup header");
    if (hdr.header != kHdrSMagic) return fail("not a bzImage (no HdrS magic)");
    if (hdr.boot_flag != 0xaa55) return fail("not a bzImage (bad boot flag)");
    if (hdr.version < 0x020c)
        return fail("kernel too old: boot protocol " + std::to_string(hdr.version >> 8) + "." +
                    std::to_string(hdr.version & 0xff) + " has no 64-bit entry (need 2.12)");
    if (!(hdr.xloadflags & XLF_KERNEL_64)) return fail("bzImage has no 64-bit entry point (XLF_KERNEL_64 unset)");
    if (!(hdr.loadflags & LOADED_HIGH)) return fail("bzImage is not loadable high (a zImage?)");

    uint64_t setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
    uint64_t setup_size = (setup_sects + 1) * 512;
    if (setup_size >= image.size()) return fail("bzImage truncated: no protected-mode code after the setup sectors");
    auto payload = image.subspan(setup_size);

    uint64_t load = layout::kKernelLoadAddr;
    // init_size counts from where the kernel runs, not from where it is loaded: the
    // decompressor first moves itself there (boot.rst, "init_size"; kernel commit
    // be4ca6c53e66). The initrd must stay clear of [run, run + init_size).
    uint64_t run = TRY(runtime_start(hdr, load));
    if (run < layout::kHighMemStart)
        return fail("bzImage wants to run at " + hex(run) + ", below 1 MiB where the boot data lives");
    if (!mem.contains(load, payload.size()))
        return fail("kernel needs " + std::to_string(payload.size() >> 10) + " KiB from " + hex(load) +
                    ", more than guest memory holds");
    if (!mem.contains(run, hdr.init_size))
        return fail("kernel needs " + std::to_string(uint64_t(hdr.init_size) >> 10) + " KiB (init_size) from " +
                    hex(run) + " where it runs, more than guest memory holds");
    TRY_CTX(mem.write(load, payload.data(), payload.size()), "load bzImage");

    LoadedKernel k{};
    k.protocol = BootProtocol::BzImage64;
    k.entry = load + 0x200;
    k.image_end = std::max(load + payload.size(), run + hdr.init_size);
    k.header = hdr;
    k.cmdline_max = hdr.version >= 0x0206 ? hdr.cmdline_size : kDefaultCmdlineSize;
    k.initrd_addr_max = hdr.version >= 0x0203 ? hdr.initrd_addr_max : kDefaultInitrdAddrMax;
    if (hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) k.initrd_addr_max = UINT32_MAX;
    // Linux points kernel_version at a "6.1.0 (...)" string inside the setup code.
    uint64_t ver = uint64_t(hdr.kernel_version) + 0x200;
    k.is_linux = hdr.kernel_version != 0 && ver < setup_size && image[ver] >= '1' && image[ver] <= '9';
    return k;
}

Result<std::optional<std::span<const uint8_t>>> find_elf_note(std::span<const uint8_t> image,
                                                              std::string_view owner, uint32_t type) {
    using Found = std::optional<std::span<const uint8_t>>;
    Elf64_Ehdr eh{};
    if (!read_at(image, 0, &eh)) return fail("ELF header truncated");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) return fail("not a 64-bit ELF");
    if (eh.e_phnum && eh.e_phentsize != sizeof(Elf64_Phdr)) return fail("bad ELF program header size");
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        if (!read_at(image, eh.e_phoff + uint64_t(i) * sizeof ph, &ph)) return fail("ELF program headers truncated");
        if (ph.p_type != PT_NOTE) continue;
        if (ph.p_offset > image.size() || ph.p_filesz > image.size() - ph.p_offset)
            return fail("ELF note segment outside the file");
        uint64_t off = ph.p_offset, end = ph.p_offset + ph.p_filesz;
        while (end - off >= sizeof(Elf64_Nhdr)) {
            Elf64_Nhdr nh{};
            read_at(image, off, &nh);
            uint64_t name_off = off + sizeof nh;
            uint64_t desc_off = name_off + ((uint64_t(nh.n_namesz) + 3) & ~3ull);
            uint64_t next = desc_off + ((uint64_t(nh.n_descsz) + 3) & ~3ull);
            if (next > end || desc_off + nh.n_descsz > end) break;  // malformed: stop reading this segment
            // n_namesz counts the owner's terminating NUL.
            bool owner_matches = nh.n_namesz == owner.size() + 1 &&
                                 std::memcmp(image.data() + name_off, owner.data(), owner.size()) == 0 &&
                                 image[name_off + owner.size()] == 0;
            if (owner_matches && (type == kAnyNoteType || nh.n_type == type))
                return Found(image.subspan(desc_off, nh.n_descsz));
            off = next;
        }
    }
    return Found();
}

Result<std::optional<uint64_t>> find_pvh_entry(std::span<const uint8_t> image) {
    auto note = TRY(find_elf_note(image, "Xen", kXenElfNotePhys32Entry));
    if (!note) return std::optional<uint64_t>();
    if (note->size() == 4) {
        uint32_t e;
        std::memcpy(&e, note->data(), 4);
        return std::optional<uint64_t>(e);
    }
    if (note->size() == 8) {
        uint64_t e;
        std::memcpy(&e, note->data(), 8);
        return std::optional<uint64_t>(e);
    }
    return fail("PVH note has a bad size (" + std::to_string(note->size()) + " bytes)");
}

Result<LoadedKernel> load_elf_pvh(memory::GuestMemory& mem, std::span<const uint8_t> image) {
    Elf64_Ehdr eh{};
    if (!read_at(image, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return fail("not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
        return fail("ELF is not for x86_64 (class " + std::to_string(eh.e_ident[EI_CLASS]) + ", machine " +
                    std::to_string(eh.e_machine) + ")");
    auto entry = TRY(find_pvh_entry(image));
    if (!entry) return fail("ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build it with CONFIG_PVH=y");
    if (*entry >= (1ull << 32)) return fail("PVH entry point " + hex(*entry) + " is above 4 GiB");

    uint64_t image_end = 0;
    bool loaded = false;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        if (!read_at(image, eh.e_phoff + uint64_t(i) * sizeof ph, &ph)) return fail("ELF program headers truncated");
        if (ph.p_type != PT_LOAD) continue;
        if (ph.p_filesz > ph.p_memsz) return fail("ELF segment " + std::to_string(i) + ": file size > memory size");
        if (ph.p_offset > image.size() || ph.p_filesz > image.size() - ph.p_offset)
            return fail("ELF segment " + std::to_string(i) + " lies outside the file");
        if (ph.p_paddr < layout::kHighMemStart)
            return fail("ELF segment " + std::to_string(i) + " at " + hex(ph.p_paddr) + " is below 1 MiB");
        if (!mem.contains(ph.p_paddr, ph.p_memsz))
            return fail("ELF segment " + std::to_string(i) + " (" + hex(ph.p_paddr) + "+" + hex(ph.p_memsz) +
                        ") does not fit in guest memory");
        TRY(mem.write(ph.p_paddr, image.data() + ph.p_offset, ph.p_filesz));
        TRY(mem.fill(ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz));
        image_end = std::max(image_end, ph.p_paddr + ph.p_memsz);
        loaded = true;
    }
    if (!loaded) return fail("ELF has no loadable segments");

    LoadedKernel k{};
    k.protocol = BootProtocol::Pvh;
    k.entry = *entry;
    k.image_end = image_end;
    // An ELF says nothing about its limit; Linux x86's COMMAND_LINE_SIZE is 2048.
    k.cmdline_max = 2047;
    k.initrd_addr_max = UINT32_MAX;
    // A vmlinux carries "Linux"-owned notes (build salt, LTO info); a Xen-capable one also says GUEST_OS=linux.
    if (auto n = find_elf_note(image, "Linux", kAnyNoteType); n && *n) k.is_linux = true;
    if (auto os = find_elf_note(image, "Xen", kXenElfNoteGuestOs); os && *os)
        k.is_linux |= (*os)->size() >= 5 && std::memcmp((*os)->data(), "linux", 5) == 0;
    return k;
}

}  // namespace kvmkit::arch::x86_64
