// Kernel loading: bzImage (x86 boot protocol, 64-bit entry) and ELF with a Xen
// PVH entry note. Images are synthetic (images.hpp); every malformed input must
// produce an error, never a crash or an access outside the file or guest memory.
#include "arch/x86_64/kernel_loader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "images.hpp"

using namespace kvmkit::arch::x86_64;
using namespace kvmkit::test;
using kvmkit::memory::GuestMemory;

namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint32_t kPhys32Entry = 18;  // XEN_ELFNOTE_PHYS32_ENTRY
constexpr uint32_t kGuestOs = 6;       // XEN_ELFNOTE_GUEST_OS

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::vector<uint8_t> read_guest(const GuestMemory& mem, uint64_t addr, size_t len) {
    std::vector<uint8_t> v(len);
    EXPECT_TRUE(mem.read(addr, v.data(), len));
    return v;
}

class Loader : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(mem.add_anonymous(0, 64 * MiB)); }
    GuestMemory mem;
};

std::vector<uint8_t> segment_bytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(0xa0 ^ (i * 13));
    return v;
}

ElfSpec pvh_spec(std::vector<uint8_t> entry_desc, uint64_t paddr = 0x1000000) {
    ElfSpec s;
    s.loads.push_back({paddr, segment_bytes(0x1800), 0x3000});
    s.notes = elf_note("Xen", kPhys32Entry, entry_desc);
    return s;
}

}  // namespace

// ---- bzImage -------------------------------------------------------------------

TEST_F(Loader, BzImageIsLoadedAt1MiBWithThe64BitEntry) {
    BzImageSpec spec;
    auto img = make_bzimage(spec);
    auto k = load_kernel(mem, img);
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->protocol, BootProtocol::BzImage64);
    // The 64-bit entry point is 0x200 bytes into the protected-mode kernel (boot.rst, "64-bit BOOT PROTOCOL").
    EXPECT_EQ(k->entry, 0x100000u + 0x200u);
    // The protected-mode code follows (setup_sects + 1) * 512 bytes of setup.
    const size_t setup_bytes = (4 + 1) * 512;
    auto loaded = read_guest(mem, 0x100000, spec.payload_size);
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), img.begin() + setup_bytes));
    EXPECT_EQ(loaded[0], payload_byte(0));
    // init_size (0x10000) is larger than the payload (0x3000): it bounds the image.
    EXPECT_EQ(k->image_end, 0x100000u + 0x10000u);
    ASSERT_TRUE(k->header.has_value());
    EXPECT_EQ(k->header->version, 0x020f);
    EXPECT_EQ(k->header->header, 0x53726448u);  // "HdrS"
    EXPECT_EQ(k->cmdline_max, 2047u);
    EXPECT_EQ(k->initrd_addr_max, 0x7fffffffu);
    EXPECT_FALSE(k->is_linux);
}

TEST_F(Loader, BzImagePayloadLargerThanInitSizeBoundsTheImage) {
    BzImageSpec spec;
    spec.payload_size = 0x24000;
    spec.init_size = 0x1000;
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->image_end, 0x100000u + 0x24000u);
}

TEST_F(Loader, BzImageSetupSectsZeroMeansFour) {
    BzImageSpec spec;
    spec.setup_sects = 0;  // boot.rst: "If this field is 0, the real value is 4."
    auto img = make_bzimage(spec);
    ASSERT_EQ(img.size(), 5 * 512 + spec.payload_size);
    auto k = load_bzimage(mem, img);
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(read_guest(mem, 0x100000, 1)[0], payload_byte(0));
}

TEST_F(Loader, BzImageWithMoreSetupSectors) {
    BzImageSpec spec;
    spec.setup_sects = 30;
    auto img = make_bzimage(spec);
    auto k = load_bzimage(mem, img);
    ASSERT_TRUE(k) << k.error().message();
    auto loaded = read_guest(mem, 0x100000, 16);
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), img.begin() + 31 * 512));
}

TEST_F(Loader, BzImageKernelVersionMarksLinux) {
    BzImageSpec spec;
    spec.kernel_version = "6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP";
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_TRUE(k->is_linux);
}

TEST_F(Loader, BzImageWithoutHdrSIsRejected) {
    BzImageSpec spec;
    spec.hdrs_magic = false;
    auto img = make_bzimage(spec);
    auto direct = load_bzimage(mem, img);
    ASSERT_FALSE(direct);
    EXPECT_TRUE(contains(direct.error().message(), "HdrS")) << direct.error().message();
    auto any = load_kernel(mem, img);
    ASSERT_FALSE(any);
    EXPECT_TRUE(contains(any.error().message(), "HdrS")) << any.error().message();
}

TEST_F(Loader, BzImageBadBootFlagIsRejected) {
    BzImageSpec spec;
    spec.boot_flag = 0x55aa;
    EXPECT_FALSE(load_bzimage(mem, make_bzimage(spec)));
}

TEST_F(Loader, BzImageProtocolOlderThan2_12IsRejected) {
    BzImageSpec spec;
    spec.version = 0x020b;  // 2.11: no 64-bit entry point guaranteed
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "2.11")) << k.error().message();
    EXPECT_TRUE(contains(k.error().message(), "2.12")) << k.error().message();

    spec.version = 0x020c;  // 2.12 is the first accepted
    EXPECT_TRUE(load_bzimage(mem, make_bzimage(spec)));
}

TEST_F(Loader, BzImageWithoutXlfKernel64IsRejected) {
    BzImageSpec spec;
    spec.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "XLF_KERNEL_64")) << k.error().message();
}

TEST_F(Loader, ZImageWithoutLoadedHighIsRejected) {
    BzImageSpec spec;
    spec.loadflags = 0;
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_FALSE(k);
    EXPECT_FALSE(k.error().message().empty());
}

TEST_F(Loader, TruncatedBzImageIsRejected) {
    auto img = make_bzimage();
    // Only the setup sectors: nothing to load.
    std::vector<uint8_t> setup_only(img.begin(), img.begin() + 5 * 512);
    auto k = load_bzimage(mem, setup_only);
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "truncated")) << k.error().message();
    // Shorter than the setup header itself.
    std::vector<uint8_t> tiny(img.begin(), img.begin() + 0x210);
    EXPECT_FALSE(load_bzimage(mem, tiny));
    EXPECT_FALSE(load_bzimage(mem, {}));
}

TEST(LoaderSmallMemory, BzImageLargerThanGuestMemoryIsRejected) {
    GuestMemory mem;
    ASSERT_TRUE(mem.add_anonymous(0, 2 * MiB));
    BzImageSpec spec;
    spec.init_size = 4 * MiB;  // needs [1 MiB, 5 MiB)
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "guest memory")) << k.error().message();
    // Nothing was written.
    auto first = read_guest(mem, 0x100000, 16);
    EXPECT_EQ(first, std::vector<uint8_t>(16, 0));

    spec.init_size = 0x1000;
    spec.payload_size = 1 * MiB + 1;  // the payload alone is one byte too big
    EXPECT_FALSE(load_bzimage(mem, make_bzimage(spec)));
    spec.payload_size = 1 * MiB;  // exactly fits
    EXPECT_TRUE(load_bzimage(mem, make_bzimage(spec)));
}

// boot.rst, init_size: the kernel needs init_size bytes from its *runtime start*, which for
// a relocatable kernel is max(load address, pref_address) aligned up to kernel_alignment:
// the decompressor first moves itself there (see kernel commit 43b1d3e68ee7, "kexec:
// Allocate kernel above bzImage's pref_address", and the boot.rst fix be4ca6c53e66).
// Debian's kernel has pref_address = 16 MiB. An initrd placed above load+init_size but
// below pref_address+init_size is overwritten while the kernel decompresses.
// BUG (src/arch/x86_64/kernel_loader.cpp, load_bzimage: image_end = load + footprint).
TEST_F(Loader, BzImageFootprintStartsAtPrefAddressForRelocatableKernels) {
    BzImageSpec spec;
    spec.relocatable_kernel = 1;
    spec.pref_address = 0x1000000;  // 16 MiB
    spec.kernel_alignment = 0x200000;
    spec.init_size = 0x800000;  // 8 MiB
    auto k = load_bzimage(mem, make_bzimage(spec));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_GE(k->image_end, 0x1000000u + 0x800000u);
}

TEST(LoaderSmallMemory, BzImageRuntimeFootprintMustFitInGuestMemory) {
    // Same bug as above, seen as a missing check: the kernel runs at 16 MiB and needs
    // 8 MiB from there, so a 16 MiB guest cannot hold it.
    GuestMemory mem;
    ASSERT_TRUE(mem.add_anonymous(0, 16 * MiB));
    BzImageSpec spec;
    spec.relocatable_kernel = 1;
    spec.pref_address = 0x1000000;
    spec.init_size = 0x800000;
    EXPECT_FALSE(load_bzimage(mem, make_bzimage(spec)));
}

TEST_F(Loader, TruncatedBzImagesNeverCrash) {
    auto img = make_bzimage();
    for (size_t len = 0; len < img.size(); len += (len < 0x300 ? 1 : 61)) {
        std::vector<uint8_t> cut(img.begin(), img.begin() + len);
        (void)load_kernel(mem, cut);
    }
}

TEST_F(Loader, GarbageIsNeitherBzImageNorElf) {
    std::vector<uint8_t> junk(4096, 0x90);
    auto k = load_kernel(mem, junk);
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "HdrS")) << k.error().message();
    EXPECT_TRUE(contains(k.error().message(), "ELF")) << k.error().message();
}

// ---- ELF / PVH -------------------------------------------------------------------

TEST_F(Loader, ElfPvhWith4ByteEntryNote) {
    auto spec = pvh_spec(le_bytes<uint32_t>(0x10001a0));
    // Pre-fill the bss area so that zeroing is observable.
    ASSERT_TRUE(mem.fill(0x1000000, 0xcc, 0x4000));
    auto img = make_elf(spec);
    auto k = load_kernel(mem, img);
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->protocol, BootProtocol::Pvh);
    EXPECT_EQ(k->entry, 0x10001a0u);
    EXPECT_EQ(k->image_end, 0x1000000u + 0x3000u);
    EXPECT_FALSE(k->header.has_value());
    EXPECT_EQ(k->initrd_addr_max, 0xffffffffu);
    EXPECT_EQ(k->cmdline_max, 2047u);  // Linux x86 COMMAND_LINE_SIZE is 2048 with the NUL
    EXPECT_FALSE(k->is_linux);

    EXPECT_EQ(read_guest(mem, 0x1000000, 0x1800), spec.loads[0].data);
    EXPECT_EQ(read_guest(mem, 0x1001800, 0x1800), std::vector<uint8_t>(0x1800, 0));  // bss zeroed
    EXPECT_EQ(read_guest(mem, 0x1003000, 0x10), std::vector<uint8_t>(0x10, 0xcc));   // beyond memsz untouched
}

TEST_F(Loader, ElfPvhWith8ByteEntryNote) {
    auto k = load_elf_pvh(mem, make_elf(pvh_spec(le_bytes<uint64_t>(0x1000400))));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->entry, 0x1000400u);
}

TEST_F(Loader, ElfWithSeveralSegmentsAndNotes) {
    ElfSpec s;
    s.loads.push_back({0x200000, segment_bytes(0x100), 0x100});
    s.loads.push_back({0x400000, segment_bytes(0x80), 0x2000});
    // Other notes first: a GNU note with the same type number, then the entry.
    s.notes = elf_note("GNU", kPhys32Entry, le_bytes<uint32_t>(0xdead));
    auto guest_os = elf_note("Xen", kGuestOs, {'l', 'i', 'n', 'u', 'x', 0});
    auto entry = elf_note("Xen", kPhys32Entry, le_bytes<uint32_t>(0x200010));
    s.notes.insert(s.notes.end(), guest_os.begin(), guest_os.end());
    s.notes.insert(s.notes.end(), entry.begin(), entry.end());
    auto k = load_elf_pvh(mem, make_elf(s));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->entry, 0x200010u);
    EXPECT_TRUE(k->is_linux);
    EXPECT_EQ(k->image_end, 0x402000u);
    EXPECT_EQ(read_guest(mem, 0x200000, 0x100), s.loads[0].data);
    EXPECT_EQ(read_guest(mem, 0x400000, 0x80), s.loads[1].data);
}

TEST_F(Loader, GuestOsOtherThanLinuxIsNotLinux) {
    auto s = pvh_spec(le_bytes<uint32_t>(0x1000000));
    auto os = elf_note("Xen", kGuestOs, {'m', 'i', 'n', 'i', 'o', 's', 0});
    s.notes.insert(s.notes.end(), os.begin(), os.end());
    auto k = load_elf_pvh(mem, make_elf(s));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_FALSE(k->is_linux);
}

TEST_F(Loader, ElfWithoutPvhNoteIsRejectedMentioningPvh) {
    ElfSpec s;
    s.loads.push_back({0x1000000, segment_bytes(0x100), 0x100});
    auto k = load_kernel(mem, make_elf(s));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "PVH")) << k.error().message();

    // A Xen note of another type is not an entry either.
    s.notes = elf_note("Xen", kGuestOs, {'l', 'i', 'n', 'u', 'x', 0});
    k = load_kernel(mem, make_elf(s));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "PVH")) << k.error().message();

    // Nor is the right type under another owner name.
    s.notes = elf_note("Xe", kPhys32Entry, le_bytes<uint32_t>(0x1000000));
    EXPECT_FALSE(load_kernel(mem, make_elf(s)));
}

TEST(FindPvhEntry, DirectLookup) {
    auto img = make_elf(pvh_spec(le_bytes<uint32_t>(0x1234567)));
    auto e = find_pvh_entry(img);
    ASSERT_TRUE(e) << e.error().message();
    ASSERT_TRUE(e->has_value());
    EXPECT_EQ(**e, 0x1234567u);

    auto note = find_elf_note(img, "Xen", kPhys32Entry);
    ASSERT_TRUE(note);
    ASSERT_TRUE(note->has_value());
    EXPECT_EQ((*note)->size(), 4u);
    // The payload is a view into the image, right after the 12-byte header and "Xen\0".
    EXPECT_EQ((*note)->data(), img.data() + kElfNotesOffset + 12 + 4);

    auto none = find_elf_note(img, "Xen", 99);
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
    // The owner must match exactly, terminating NUL included: "Xe" is not a prefix match.
    auto other = find_elf_note(img, "Xe", kPhys32Entry);
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->has_value());
    auto any = find_elf_note(img, "Xen", kAnyNoteType);
    ASSERT_TRUE(any);
    EXPECT_TRUE(any->has_value());
}

TEST_F(Loader, LinuxOwnedNoteMarksLinux) {
    // A vmlinux carries notes owned by "Linux" (e.g. type 0x100 build salt).
    auto s = pvh_spec(le_bytes<uint32_t>(0x1000000));
    auto linux_note = elf_note("Linux", 0x100, {1, 2, 3, 4});
    s.notes.insert(s.notes.begin(), linux_note.begin(), linux_note.end());
    auto k = load_elf_pvh(mem, make_elf(s));
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_TRUE(k->is_linux);
    EXPECT_EQ(k->entry, 0x1000000u);

    // "LinuxX" or "Linu" owners are not Linux.
    for (const char* owner : {"LinuxX", "Linu"}) {
        auto t = pvh_spec(le_bytes<uint32_t>(0x1000000));
        auto n = elf_note(owner, 0x100, {1, 2, 3, 4});
        t.notes.insert(t.notes.begin(), n.begin(), n.end());
        auto kk = load_elf_pvh(mem, make_elf(t));
        ASSERT_TRUE(kk) << kk.error().message();
        EXPECT_FALSE(kk->is_linux) << owner;
    }
}

TEST_F(Loader, PvhNoteOfABadSizeIsRejected) {
    auto k = load_elf_pvh(mem, make_elf(pvh_spec({0x00, 0x10})));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "size")) << k.error().message();
}

TEST_F(Loader, PvhEntryAbove4GIsRejected) {
    EXPECT_FALSE(load_elf_pvh(mem, make_elf(pvh_spec(le_bytes<uint64_t>(0x100000000ull)))));
}

TEST_F(Loader, MalformedNoteSizesNeverCrash) {
    // n_namesz / n_descsz near UINT32_MAX: rounding them up to 4 overflows 32 bits, and
    // adding them to the offset must not wrap or read outside the segment.
    const uint32_t sizes[][2] = {{0xffffffff, 4},          {4, 0xffffffff},          {0xfffffffd, 4}, {4, 0xfffffffd},
                                 {0xffffffff, 0xffffffff}, {0x7fffffff, 0x80000001}, {4, 0x100},      {0x100, 4}};
    for (const auto& sz : sizes) {
        auto s = pvh_spec(le_bytes<uint32_t>(0x1000000));
        Elf64_Nhdr h{sz[0], sz[1], kPhys32Entry};
        std::memcpy(s.notes.data(), &h, sizeof h);
        auto img = make_elf(s);
        auto note = find_elf_note(img, "Xen", kPhys32Entry);
        // Either an error or "no note" — but never a note reaching outside the image.
        if (note && note->has_value()) {
            EXPECT_GE((*note)->data(), img.data());
            EXPECT_LE((*note)->data() + (*note)->size(), img.data() + img.size());
        }
        auto k = load_elf_pvh(mem, img);
        EXPECT_FALSE(k) << "namesz " << sz[0] << " descsz " << sz[1];
    }
}

TEST_F(Loader, NoteSegmentOutsideTheFileIsRejected) {
    const uint64_t bad[][2] = {
        {0x100000, 0x10},             // offset past the end
        {kElfNotesOffset, 0x100000},  // size past the end
        {UINT64_MAX - 1, 16},         // offset + size wraps
        {0x200, UINT64_MAX},          // size wraps
    };
    for (const auto& b : bad) {
        auto img = make_elf(pvh_spec(le_bytes<uint32_t>(0x1000000)));
        put<uint64_t>(img, phdr_offset(0) + offsetof(Elf64_Phdr, p_offset), b[0]);
        put<uint64_t>(img, phdr_offset(0) + offsetof(Elf64_Phdr, p_filesz), b[1]);
        auto k = load_elf_pvh(mem, img);
        ASSERT_FALSE(k);
        EXPECT_TRUE(contains(k.error().message(), "outside")) << k.error().message();
    }
}

TEST_F(Loader, ProgramHeadersOutsideTheFileAreRejected) {
    auto img = make_elf(pvh_spec(le_bytes<uint32_t>(0x1000000)));
    for (uint64_t phoff : {uint64_t(img.size()), uint64_t(img.size() - 8), UINT64_MAX - 8}) {
        auto bad = img;
        put<uint64_t>(bad, offsetof(Elf64_Ehdr, e_phoff), phoff);
        auto k = load_elf_pvh(mem, bad);
        ASSERT_FALSE(k);
        EXPECT_TRUE(contains(k.error().message(), "truncated")) << k.error().message();
    }
    auto many = img;
    put<uint16_t>(many, offsetof(Elf64_Ehdr, e_phnum), 0xffff);
    EXPECT_FALSE(load_elf_pvh(mem, many));

    auto bad_entsize = img;
    put<uint16_t>(bad_entsize, offsetof(Elf64_Ehdr, e_phentsize), 32);
    EXPECT_FALSE(load_elf_pvh(mem, bad_entsize));
}

TEST_F(Loader, LoadSegmentOutsideTheFileIsRejected) {
    auto img = make_elf(pvh_spec(le_bytes<uint32_t>(0x1000000)));
    const size_t load = phdr_offset(1);  // PT_NOTE is first
    for (auto [off, filesz] :
         {std::pair<uint64_t, uint64_t>{img.size(), 1}, {0x1000, img.size()}, {UINT64_MAX - 0xf, 0x20}}) {
        auto bad = img;
        put<uint64_t>(bad, load + offsetof(Elf64_Phdr, p_offset), off);
        put<uint64_t>(bad, load + offsetof(Elf64_Phdr, p_filesz), filesz);
        put<uint64_t>(bad, load + offsetof(Elf64_Phdr, p_memsz), std::max<uint64_t>(filesz, 0x3000));
        auto k = load_elf_pvh(mem, bad);
        ASSERT_FALSE(k);
        EXPECT_TRUE(contains(k.error().message(), "outside the file")) << k.error().message();
    }
}

TEST_F(Loader, FileSizeLargerThanMemorySizeIsRejected) {
    auto s = pvh_spec(le_bytes<uint32_t>(0x1000000));
    s.loads[0].memsz = 0x100;  // < filesz 0x1800
    EXPECT_FALSE(load_elf_pvh(mem, make_elf(s)));
}

TEST_F(Loader, SegmentBelow1MiBIsRejected) {
    auto k = load_elf_pvh(mem, make_elf(pvh_spec(le_bytes<uint32_t>(0x80000), 0x80000)));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "below 1 MiB")) << k.error().message();
    // The boot structures below 1 MiB were not overwritten.
    EXPECT_EQ(read_guest(mem, 0x80000, 16), std::vector<uint8_t>(16, 0));
}

TEST_F(Loader, SegmentOutsideGuestMemoryIsRejected) {
    auto s = pvh_spec(le_bytes<uint32_t>(0x3fff000));
    s.loads[0].paddr = 64 * MiB - 0x1000;  // memsz 0x3000 runs 0x2000 past the end
    auto k = load_elf_pvh(mem, make_elf(s));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "does not fit")) << k.error().message();

    s.loads[0].paddr = UINT64_MAX - 0xfff;  // paddr + memsz wraps
    EXPECT_FALSE(load_elf_pvh(mem, make_elf(s)));
}

TEST_F(Loader, ElfOfTheWrongKindIsRejected) {
    auto s = pvh_spec(le_bytes<uint32_t>(0x1000000));
    s.machine = EM_386;
    EXPECT_FALSE(load_elf_pvh(mem, make_elf(s)));
    s.machine = EM_X86_64;
    s.elf_class = ELFCLASS32;
    EXPECT_FALSE(load_elf_pvh(mem, make_elf(s)));
}

TEST_F(Loader, ElfWithoutLoadableSegmentsIsRejected) {
    ElfSpec s;
    s.notes = elf_note("Xen", kPhys32Entry, le_bytes<uint32_t>(0x1000000));
    auto k = load_elf_pvh(mem, make_elf(s));
    ASSERT_FALSE(k);
    EXPECT_TRUE(contains(k.error().message(), "loadable")) << k.error().message();
}

TEST_F(Loader, CorruptedElfImagesNeverCrash) {
    // Truncations at every length of the headers, then random byte corruption.
    auto img = make_elf(pvh_spec(le_bytes<uint32_t>(0x1000000)));
    for (size_t len = 0; len <= kElfNotesOffset + 64; ++len) {
        std::vector<uint8_t> cut(img.begin(), img.begin() + len);
        EXPECT_FALSE(load_kernel(mem, cut)) << len;
    }
    std::mt19937 rng(12345);
    for (int iter = 0; iter < 3000; ++iter) {
        auto bad = img;
        int flips = 1 + iter % 8;
        for (int f = 0; f < flips; ++f) {
            size_t at = rng() % (kElfNotesOffset + 32);  // headers and the note
            bad[at] = static_cast<uint8_t>(rng());
        }
        (void)load_kernel(mem, bad);
    }
}
