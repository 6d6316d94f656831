// Synthetic kernel images for the loader tests, built byte by byte from the
// specifications rather than from the loader's own structures:
//  - bzImage: the setup header of Documentation/arch/x86/boot.rst ("The real-mode
//    kernel header"), at the offsets the document gives;
//  - ELF64: <elf.h> types, with PT_NOTE segments holding Xen ELF notes
//    (xen/include/public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY = 18, GUEST_OS = 6).
#pragma once

#include <asm/bootparam.h>
#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kvmkit::test {

template <typename T>
inline void put(std::vector<uint8_t>& v, size_t off, T value) {
    if (v.size() < off + sizeof value) v.resize(off + sizeof value);
    std::memcpy(v.data() + off, &value, sizeof value);
}

template <typename T>
inline T get(const std::vector<uint8_t>& v, size_t off) {
    T value{};
    std::memcpy(&value, v.data() + off, sizeof value);
    return value;
}

// Offsets of the setup header fields inside a bzImage file / the zero page (boot.rst).
namespace hdr {
constexpr size_t kSetupSects = 0x1f1, kBootFlag = 0x1fe, kJump = 0x200, kHeader = 0x202, kVersion = 0x206,
                 kKernelVersion = 0x20e, kTypeOfLoader = 0x210, kLoadflags = 0x211, kRamdiskImage = 0x218,
                 kRamdiskSize = 0x21c, kCmdLinePtr = 0x228, kInitrdAddrMax = 0x22c, kKernelAlignment = 0x230,
                 kRelocatableKernel = 0x234, kXloadflags = 0x236, kCmdlineSize = 0x238, kPrefAddress = 0x258,
                 kInitSize = 0x260;
}  // namespace hdr

// Offsets of boot_params ("zero page") fields (Documentation/arch/x86/zero-page.rst).
namespace zp {
constexpr size_t kAcpiRsdpAddr = 0x070, kExtRamdiskImage = 0x0c0, kExtRamdiskSize = 0x0c4, kExtCmdLinePtr = 0x0c8,
                 kE820Entries = 0x1e8, kE820Table = 0x2d0, kE820EntrySize = 20;
}  // namespace zp

struct BzImageSpec {
    uint8_t setup_sects = 4;
    uint16_t boot_flag = 0xaa55;
    bool hdrs_magic = true;
    uint16_t version = 0x020f;
    uint8_t loadflags = LOADED_HIGH;
    uint16_t xloadflags = XLF_KERNEL_64;
    uint32_t cmdline_size = 2047;
    uint32_t initrd_addr_max = 0x7fffffff;
    uint32_t kernel_alignment = 0x200000;
    uint8_t relocatable_kernel = 0;
    uint64_t pref_address = 0x100000;
    uint32_t init_size = 0x10000;
    size_t payload_size = 0x3000;          // protected-mode code after the setup sectors
    const char* kernel_version = nullptr;  // placed inside the setup code when set
};

// The first byte of the protected-mode payload at payload offset i.
inline uint8_t payload_byte(size_t i) {
    return static_cast<uint8_t>((i * 7 + 3) ^ (i >> 8));
}

inline std::vector<uint8_t> make_bzimage(const BzImageSpec& s = {}) {
    const size_t setup_bytes = (size_t(s.setup_sects ? s.setup_sects : 4) + 1) * 512;
    std::vector<uint8_t> img(setup_bytes + s.payload_size, 0);
    img[hdr::kSetupSects] = s.setup_sects;
    put<uint16_t>(img, hdr::kBootFlag, s.boot_flag);
    put<uint16_t>(img, hdr::kJump, 0x66eb);  // jmp short, as real kernels have
    if (s.hdrs_magic) std::memcpy(img.data() + hdr::kHeader, "HdrS", 4);
    put<uint16_t>(img, hdr::kVersion, s.version);
    img[hdr::kLoadflags] = s.loadflags;
    put<uint32_t>(img, hdr::kInitrdAddrMax, s.initrd_addr_max);
    put<uint32_t>(img, hdr::kKernelAlignment, s.kernel_alignment);
    img[hdr::kRelocatableKernel] = s.relocatable_kernel;
    put<uint16_t>(img, hdr::kXloadflags, s.xloadflags);
    put<uint32_t>(img, hdr::kCmdlineSize, s.cmdline_size);
    put<uint64_t>(img, hdr::kPrefAddress, s.pref_address);
    put<uint32_t>(img, hdr::kInitSize, s.init_size);
    if (s.kernel_version) {
        // kernel_version holds the string's offset minus 0x200.
        const size_t at = 0x300;
        std::memcpy(img.data() + at, s.kernel_version, std::strlen(s.kernel_version) + 1);
        put<uint16_t>(img, hdr::kKernelVersion, static_cast<uint16_t>(at - 0x200));
    }
    for (size_t i = 0; i < s.payload_size; ++i) img[setup_bytes + i] = payload_byte(i);
    return img;
}

// One ELF note: header, name padded to 4, descriptor padded to 4.
inline std::vector<uint8_t> elf_note(const std::string& name, uint32_t type, const std::vector<uint8_t>& desc) {
    std::vector<uint8_t> n;
    Elf64_Nhdr h{static_cast<Elf64_Word>(name.size() + 1), static_cast<Elf64_Word>(desc.size()), type};
    n.resize(sizeof h);
    std::memcpy(n.data(), &h, sizeof h);
    n.insert(n.end(), name.begin(), name.end());
    n.push_back(0);
    while (n.size() % 4) n.push_back(0);
    n.insert(n.end(), desc.begin(), desc.end());
    while (n.size() % 4) n.push_back(0);
    return n;
}

template <typename T>
inline std::vector<uint8_t> le_bytes(T v) {
    std::vector<uint8_t> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

struct ElfSegment {
    uint64_t paddr;
    std::vector<uint8_t> data;  // file contents
    uint64_t memsz;             // >= data.size(); the rest is bss
};

struct ElfSpec {
    uint8_t elf_class = ELFCLASS64;
    uint16_t machine = EM_X86_64;
    std::vector<ElfSegment> loads;
    std::vector<uint8_t> notes;  // concatenated elf_note()s, one PT_NOTE segment when non-empty
};

constexpr size_t kElfNotesOffset = 0x200;

// Layout: ELF header | program headers (PT_NOTE first) | notes at 0x200 | segment data.
inline std::vector<uint8_t> make_elf(const ElfSpec& s) {
    std::vector<Elf64_Phdr> ph;
    if (!s.notes.empty()) {
        Elf64_Phdr n{};
        n.p_type = PT_NOTE;
        n.p_offset = kElfNotesOffset;
        n.p_filesz = s.notes.size();
        n.p_align = 4;
        ph.push_back(n);
    }
    size_t off = (kElfNotesOffset + s.notes.size() + 0xfff) & ~size_t(0xfff);
    std::vector<size_t> data_off;
    for (const auto& l : s.loads) {
        Elf64_Phdr p{};
        p.p_type = PT_LOAD;
        p.p_flags = PF_R | PF_X;
        p.p_offset = off;
        p.p_vaddr = 0xffffffff80000000ull + l.paddr;
        p.p_paddr = l.paddr;
        p.p_filesz = l.data.size();
        p.p_memsz = l.memsz;
        p.p_align = 0x1000;
        ph.push_back(p);
        data_off.push_back(off);
        off = (off + l.data.size() + 0xfff) & ~size_t(0xfff);
    }
    std::vector<uint8_t> img(std::max(off, kElfNotesOffset + s.notes.size()), 0);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = s.elf_class;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = s.machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x1000000;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<Elf64_Half>(ph.size());
    std::memcpy(img.data(), &eh, sizeof eh);
    if (!ph.empty()) std::memcpy(img.data() + eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr));
    std::copy(s.notes.begin(), s.notes.end(), img.begin() + kElfNotesOffset);
    for (size_t i = 0; i < s.loads.size(); ++i)
        std::copy(s.loads[i].data.begin(), s.loads[i].data.end(), img.begin() + data_off[i]);
    return img;
}

// Offset of program header i in an image made by make_elf.
inline size_t phdr_offset(size_t i) {
    return sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr);
}

}  // namespace kvmkit::test
