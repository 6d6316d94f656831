// ACPI tables, checked against the ACPI 6.x specification's layouts (chapter 5.2):
// RSDP (5.2.5.3), SDT header (5.2.6), XSDT (5.2.8), FADT (5.2.9, table 5.9 offsets),
// MADT (5.2.12) and the AML encoding of \_S5 (chapter 20).
#include "arch/x86_64/acpi.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "arch/x86_64/e820.hpp"
#include "images.hpp"

using namespace kvmkit::arch::x86_64;
using kvmkit::memory::GuestMemory;
using kvmkit::test::get;

namespace {

constexpr uint64_t kBase = 0xe0000;
constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

uint8_t sum(const uint8_t* p, size_t n) {
    uint8_t s = 0;
    for (size_t i = 0; i < n; ++i) s = static_cast<uint8_t>(s + p[i]);
    return s;
}

struct Table {
    std::string signature;
    uint64_t addr;
    const uint8_t* bytes;
    uint32_t length;
};

// Parses the blob the way a guest OS would: RSDP -> XSDT -> tables (-> DSDT via the FADT).
class Tables {
public:
    Tables(uint32_t cpus, uint64_t base = kBase, uint64_t mem_size = 512 * MiB)
        : base_(base), blob_(build_acpi_tables({cpus, base, mem_size})) {}

    const std::vector<uint8_t>& blob() const { return blob_; }
    uint64_t base() const { return base_; }

    // A table at a guest address, checked to lie entirely inside the blob.
    Table at(uint64_t addr) const {
        EXPECT_GE(addr, base_);
        const uint64_t off = addr - base_;
        EXPECT_LE(off + 36, blob_.size()) << "table header outside the blob";
        if (addr < base_ || off + 36 > blob_.size()) return {"", addr, nullptr, 0};
        const uint8_t* p = blob_.data() + off;
        uint32_t len;
        std::memcpy(&len, p + 4, 4);
        EXPECT_LE(off + len, blob_.size()) << "table body outside the blob";
        if (off + len > blob_.size()) return {"", addr, nullptr, 0};
        return {std::string(reinterpret_cast<const char*>(p), 4), addr, p, len};
    }

    std::vector<uint64_t> xsdt_entries() const {
        auto x = at(xsdt_addr());
        std::vector<uint64_t> v;
        for (uint32_t off = 36; off + 8 <= x.length; off += 8) {
            uint64_t a;
            std::memcpy(&a, x.bytes + off, 8);
            v.push_back(a);
        }
        return v;
    }

    uint64_t xsdt_addr() const { return get<uint64_t>(blob_, 24); }

    Table find(const std::string& sig) const {
        for (auto a : xsdt_entries()) {
            auto t = at(a);
            if (t.signature == sig) return t;
        }
        ADD_FAILURE() << sig << " not found through the XSDT";
        return {};
    }

    Table dsdt() const {
        auto f = find("FACP");
        uint64_t x_dsdt;
        std::memcpy(&x_dsdt, f.bytes + 140, 8);
        return at(x_dsdt);
    }

private:
    uint64_t base_;
    std::vector<uint8_t> blob_;
};

template <typename T>
T field(const Table& t, size_t off) {
    T v;
    std::memcpy(&v, t.bytes + off, sizeof v);
    return v;
}

}  // namespace

TEST(AcpiChecksum, SumModulo256) {
    const uint8_t a[] = {1, 2, 3};
    EXPECT_EQ(acpi_checksum(a), 6);
    const uint8_t b[] = {0xff, 0x01};
    EXPECT_EQ(acpi_checksum(b), 0);
    const uint8_t c[] = {0x80, 0x80, 0x80};
    EXPECT_EQ(acpi_checksum(c), 0x80);
    EXPECT_EQ(acpi_checksum({}), 0);
}

TEST(AcpiRsdp, SignatureChecksumsAndXsdt) {
    Tables t(1);
    const auto& b = t.blob();
    ASSERT_GE(b.size(), 36u);
    // The RSDP is the first thing in the blob (the legacy scan looks at 16-byte boundaries).
    EXPECT_EQ(std::memcmp(b.data(), "RSD PTR ", 8), 0);
    EXPECT_EQ(t.base() % 16, 0u);
    EXPECT_EQ(sum(b.data(), 20), 0) << "ACPI 1.0 checksum over the first 20 bytes";
    EXPECT_EQ(sum(b.data(), 36), 0) << "extended checksum over the whole 36-byte RSDP";
    EXPECT_EQ(b[15], 2) << "revision 2: ACPI 2.0+ RSDP with an XSDT";
    EXPECT_EQ(get<uint32_t>(b, 20), 36u) << "length";
    const uint64_t xsdt = t.xsdt_addr();
    EXPECT_GT(xsdt, kBase);
    EXPECT_EQ(t.at(xsdt).signature, "XSDT");
}

TEST(AcpiXsdt, EntriesPointAtValidTables) {
    Tables t(2);
    auto x = t.at(t.xsdt_addr());
    ASSERT_NE(x.bytes, nullptr);
    EXPECT_EQ(sum(x.bytes, x.length), 0);
    EXPECT_EQ((x.length - 36) % 8, 0u);
    auto entries = t.xsdt_entries();
    ASSERT_EQ(entries.size(), (x.length - 36) / 8);
    std::multiset<std::string> sigs;
    for (auto a : entries) {
        auto tab = t.at(a);
        ASSERT_NE(tab.bytes, nullptr);
        sigs.insert(tab.signature);
        EXPECT_EQ(sum(tab.bytes, tab.length), 0) << tab.signature << " checksum";
    }
    EXPECT_EQ(sigs.count("FACP"), 1u);
    EXPECT_EQ(sigs.count("APIC"), 1u);
    EXPECT_EQ(sigs.count("DSDT"), 0u) << "the DSDT is reached through the FADT, not the XSDT";
}

TEST(AcpiTables, LengthsMatchTheirRealSizes) {
    // Each table's length field equals the bytes it really has: FADT 276 (ACPI 6.x),
    // DSDT header + AML, MADT header + its entries (checked by walking them).
    Tables t(3);
    EXPECT_EQ(t.find("FACP").length, 276u);
    auto dsdt = t.dsdt();
    ASSERT_NE(dsdt.bytes, nullptr);
    EXPECT_EQ(dsdt.signature, "DSDT");
    EXPECT_EQ(sum(dsdt.bytes, dsdt.length), 0);
    EXPECT_GE(dsdt.length, 36u + 14u);

    auto madt = t.find("APIC");
    uint32_t off = 44;
    while (off + 2 <= madt.length) {
        const uint8_t len = madt.bytes[off + 1];
        ASSERT_GE(len, 2) << "zero-length MADT entry at " << off;
        off += len;
    }
    EXPECT_EQ(off, madt.length) << "MADT entries end exactly at the table length";

    // Tables do not overlap each other.
    std::vector<std::pair<uint64_t, uint64_t>> spans = {{kBase, kBase + 36}};
    for (auto a : t.xsdt_entries()) spans.push_back({a, a + t.at(a).length});
    spans.push_back({t.xsdt_addr(), t.xsdt_addr() + t.at(t.xsdt_addr()).length});
    spans.push_back({dsdt.addr, dsdt.addr + dsdt.length});
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].second, spans[i].first);
}

TEST(AcpiFadt, FieldsAtSpecOffsets) {
    Tables t(1);
    auto f = t.find("FACP");
    ASSERT_NE(f.bytes, nullptr);
    EXPECT_GE(f.bytes[8], 5) << "FADT major revision (ACPI 5+ layout with the 276-byte size)";

    auto dsdt = t.dsdt();
    EXPECT_EQ(field<uint32_t>(f, 40), dsdt.addr) << "DSDT";
    EXPECT_EQ(field<uint64_t>(f, 140), dsdt.addr) << "X_DSDT";
    EXPECT_EQ(field<uint16_t>(f, 46), 9) << "SCI_INT";
    EXPECT_EQ(field<uint32_t>(f, 48), 0u) << "SMI_CMD = 0: always in ACPI mode";
    EXPECT_EQ(field<uint32_t>(f, 56), 0x600u) << "PM1a_EVT_BLK";
    EXPECT_EQ(field<uint32_t>(f, 60), 0u) << "PM1b_EVT_BLK";
    EXPECT_EQ(field<uint32_t>(f, 64), 0x604u) << "PM1a_CNT_BLK";
    EXPECT_EQ(f.bytes[88], 4) << "PM1_EVT_LEN";
    EXPECT_EQ(f.bytes[89], 2) << "PM1_CNT_LEN";
    EXPECT_EQ(f.bytes[108], 0x32) << "CENTURY: the CMOS century register";
    EXPECT_TRUE(field<uint16_t>(f, 109) & (1u << 1)) << "IAPC_BOOT_ARCH: 8042 present";

    const uint32_t flags = field<uint32_t>(f, 112);
    EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
    EXPECT_FALSE(flags & (1u << 20)) << "HW_REDUCED_ACPI must be clear: fixed PM1 hardware is used";
    EXPECT_FALSE(flags & (1u << 4)) << "PWR_BUTTON clear: the power button is a fixed feature";

    // RESET_REG, a Generic Address Structure: space 1 = system I/O, 8 bits wide, port 0x608.
    EXPECT_EQ(f.bytes[116], 1) << "RESET_REG address space";
    EXPECT_EQ(f.bytes[117], 8) << "RESET_REG bit width";
    EXPECT_EQ(f.bytes[118], 0) << "RESET_REG bit offset";
    EXPECT_EQ(field<uint64_t>(f, 120), 0x608u) << "RESET_REG address";
    EXPECT_EQ(f.bytes[128], 0x01) << "RESET_VALUE";

    // X_PM1a_EVT_BLK (148) and X_PM1a_CNT_BLK (172) GAS.
    EXPECT_EQ(f.bytes[148], 1);
    EXPECT_EQ(f.bytes[149], 32);
    EXPECT_EQ(field<uint64_t>(f, 152), 0x600u);
    EXPECT_EQ(f.bytes[172], 1);
    EXPECT_EQ(f.bytes[173], 16);
    EXPECT_EQ(field<uint64_t>(f, 176), 0x604u);
    EXPECT_EQ(field<uint64_t>(f, 160 + 4), 0u) << "X_PM1b_EVT_BLK absent";
}

TEST(AcpiDsdt, ContainsS5Package) {
    // DefName(NameOp 0x08, "_S5_", DefPackage(PackageOp 0x12, PkgLength 8, NumElements 4,
    //   BytePrefix 5, BytePrefix 5, ZeroOp, ZeroOp)): Name(_S5_, Package(){5, 5, 0, 0}).
    const std::vector<uint8_t> s5 = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
    Tables t(1);
    auto d = t.dsdt();
    ASSERT_NE(d.bytes, nullptr);
    std::vector<uint8_t> aml(d.bytes + 36, d.bytes + d.length);
    EXPECT_NE(std::search(aml.begin(), aml.end(), s5.begin(), s5.end()), aml.end());
}

namespace {
// A minimal AML walker (ACPI 6.x, 20.2): enough to check that the DSDT's terms exactly
// fill the table, i.e. that the header's length is the real size of the AML.
struct Aml {
    const uint8_t* p;
    size_t end;
    bool ok = true;

    // PkgLength (20.2.4): bits 7-6 of the lead byte count the following bytes.
    size_t pkg_length(size_t& off) {
        if (off >= end) return ok = false, 0;
        const uint8_t lead = p[off];
        const int n = lead >> 6;
        if (off + 1 + n > end) return ok = false, 0;
        size_t len = n == 0 ? (lead & 0x3f) : (lead & 0x0f);
        for (int i = 0; i < n; ++i) len |= size_t(p[off + 1 + i]) << (4 + 8 * i);
        off += 1 + n;
        return len;
    }
    void name_string(size_t& off) {
        while (off < end && (p[off] == '\\' || p[off] == '^')) ++off;
        if (off >= end) return void(ok = false);
        if (p[off] == 0x2e)
            off += 1 + 8;  // DualNamePrefix
        else if (p[off] == 0x2f)
            off += off + 1 < end ? 2 + 4 * p[off + 1] : end;  // MultiNamePrefix
        else if (p[off] == 0x00)
            off += 1;  // NullName
        else
            off += 4;  // NameSeg
        if (off > end) ok = false;
    }
    void data_object(size_t& off) {
        if (off >= end) return void(ok = false);
        const uint8_t op = p[off++];
        switch (op) {
            case 0x00:
            case 0x01:
            case 0xff:
                break;  // Zero, One, Ones
            case 0x0a:
                off += 1;
                break;
            case 0x0b:
                off += 2;
                break;
            case 0x0c:
                off += 4;
                break;
            case 0x0e:
                off += 8;
                break;
            case 0x0d:
                while (off < end && p[off]) ++off;
                ++off;
                break;  // String
            case 0x11:
            case 0x12: {  // Buffer, Package: PkgLength covers the rest
                const size_t start = off;
                const size_t len = pkg_length(off);
                off = start + len;
                break;
            }
            default:
                ok = false;
        }
        if (off > end) ok = false;
    }
    // TermList in [off, limit): Name, Scope, Device and Method at any level.
    void term_list(size_t off, size_t limit) {
        const size_t saved_end = end;
        end = limit;
        while (ok && off < limit) {
            const uint8_t op = p[off];
            if (op == 0x08) {  // NameOp NameString DataRefObject
                ++off;
                name_string(off);
                data_object(off);
            } else if (op == 0x10 || op == 0x14 || (op == 0x5b && off + 1 < limit && p[off + 1] == 0x82)) {
                off += op == 0x5b ? 2 : 1;  // ScopeOp / MethodOp / DeviceOp, then PkgLength
                const size_t start = off;
                const size_t len = pkg_length(off);
                const size_t body_end = start + len;
                if (!ok || body_end > limit) return void(ok = false);
                name_string(off);
                if (op == 0x14)
                    off = body_end;  // a method body is code: skip it
                else
                    term_list(off, body_end);
                off = body_end;
            } else {
                ok = false;
            }
        }
        if (off != limit) ok = false;
        end = saved_end;
    }
};
}  // namespace

TEST(AcpiDsdt, TermsExactlyFillTheTable) {
    for (uint64_t mem : {512 * MiB, 5 * GiB}) {
        Tables t(2, kBase, mem);
        auto d = t.dsdt();
        ASSERT_NE(d.bytes, nullptr);
        Aml aml{d.bytes, d.length};
        aml.term_list(36, d.length);
        EXPECT_TRUE(aml.ok) << "the DSDT's AML does not parse to exactly its length " << d.length;
    }
}

class AcpiMadt : public ::testing::TestWithParam<uint32_t> {};

TEST_P(AcpiMadt, ProcessorsIoapicAndSciOverride) {
    const uint32_t n = GetParam();
    Tables t(n);
    auto m = t.find("APIC");
    ASSERT_NE(m.bytes, nullptr);
    EXPECT_EQ(field<uint32_t>(m, 36), 0xfee00000u) << "local APIC address";
    EXPECT_TRUE(field<uint32_t>(m, 40) & 1) << "PCAT_COMPAT";

    std::set<uint8_t> apic_ids, uids;
    int enabled = 0, ioapics = 0, sci_overrides = 0;
    for (uint32_t off = 44; off + 2 <= m.length;) {
        const uint8_t* e = m.bytes + off;
        const uint8_t type = e[0], len = e[1];
        ASSERT_GE(len, 2);
        ASSERT_LE(off + len, m.length);
        switch (type) {
            case 0: {  // Processor Local APIC: uid, APIC ID, flags (bit 0 enabled)
                ASSERT_EQ(len, 8);
                uint32_t flags;
                std::memcpy(&flags, e + 4, 4);
                if (flags & 1) {
                    ++enabled;
                    apic_ids.insert(e[3]);
                    uids.insert(e[2]);
                }
                break;
            }
            case 1: {  // I/O APIC: id, reserved, address, GSI base
                ASSERT_EQ(len, 12);
                uint32_t addr, gsi_base;
                std::memcpy(&addr, e + 4, 4);
                std::memcpy(&gsi_base, e + 8, 4);
                EXPECT_EQ(addr, 0xfec00000u);
                EXPECT_EQ(gsi_base, 0u);
                ++ioapics;
                break;
            }
            case 2: {  // Interrupt Source Override: bus, source, GSI, MPS INTI flags
                ASSERT_EQ(len, 10);
                uint32_t gsi;
                uint16_t flags;
                std::memcpy(&gsi, e + 4, 4);
                std::memcpy(&flags, e + 8, 2);
                if (e[3] == 9) {
                    ++sci_overrides;
                    EXPECT_EQ(e[2], 0) << "bus 0 (ISA)";
                    EXPECT_EQ(gsi, 9u);
                    EXPECT_EQ(flags & 0x3, 0x1) << "polarity: active high";
                    EXPECT_EQ((flags >> 2) & 0x3, 0x3) << "trigger: level";
                }
                break;
            }
            default:
                break;
        }
        off += len;
    }
    EXPECT_EQ(enabled, static_cast<int>(n));
    // APIC IDs are 0..n-1, matching the initial APIC ID customize_cpuid gives vCPU i.
    EXPECT_EQ(apic_ids.size(), n);
    if (!apic_ids.empty()) {
        EXPECT_EQ(*apic_ids.begin(), 0);
        EXPECT_EQ(uint32_t{*apic_ids.rbegin()}, n - 1);
    }
    EXPECT_EQ(uids.size(), n) << "processor UIDs are unique";
    EXPECT_EQ(ioapics, 1);
    EXPECT_EQ(sci_overrides, 1);
}

INSTANTIATE_TEST_SUITE_P(Cpus, AcpiMadt, ::testing::Values(1u, 2u, 8u));

TEST(AcpiTables, AddressesFollowTheBase) {
    // The same tables built for another base address: every pointer moves with it.
    Tables a(2, 0xe0000), b(2, 0x12340000);
    ASSERT_EQ(a.blob().size(), b.blob().size());
    EXPECT_EQ(b.xsdt_addr() - 0x12340000, a.xsdt_addr() - 0xe0000);
    EXPECT_EQ(sum(b.blob().data(), 36), 0);
    for (auto e : b.xsdt_entries()) EXPECT_NE(b.at(e).bytes, nullptr);
    EXPECT_EQ(b.dsdt().signature, "DSDT");
}

TEST(AcpiTables, WrittenIntoTheBiosArea) {
    std::vector<uint8_t> low(1 << 20, 0);
    GuestMemory mem;
    ASSERT_TRUE(mem.add_borrowed(0, low.size(), low.data()));
    auto rsdp = write_acpi_tables(mem, 4, 512 * MiB);
    ASSERT_TRUE(rsdp) << rsdp.error().message();
    EXPECT_EQ(*rsdp, 0xe0000u);
    EXPECT_EQ(std::memcmp(low.data() + 0xe0000, "RSD PTR ", 8), 0);
    auto blob = build_acpi_tables({4, 0xe0000, 512 * MiB});
    EXPECT_TRUE(std::equal(blob.begin(), blob.end(), low.begin() + 0xe0000));
    // Nothing written below the BIOS area.
    EXPECT_TRUE(std::all_of(low.begin(), low.begin() + 0xe0000, [](uint8_t c) { return c == 0; }));
    // The largest machine still fits in [0xe0000, 1 MiB).
    EXPECT_TRUE(write_acpi_tables(mem, 254, 5 * GiB));
}

TEST(AcpiTables, FailsWhenTheBiosAreaIsNotMemory) {
    std::vector<uint8_t> low(0x80000, 0);
    GuestMemory mem;
    ASSERT_TRUE(mem.add_borrowed(0, low.size(), low.data()));
    EXPECT_FALSE(write_acpi_tables(mem, 1, 512 * MiB));
}

// ---- PCI host bridge: MCFG and the DSDT's \_SB.PCI0 -----------------------------------

TEST(AcpiMcfg, EcamAllocationIsReservedInE820) {
    // PCI Firmware Specification 3.0, table 4-2/4-3: header, 8 reserved bytes, then
    // {u64 base, u16 segment, u8 start bus, u8 end bus, u32 reserved} allocations.
    for (uint64_t mem : {512 * MiB, 3 * GiB, 5 * GiB}) {
        Tables t(1, kBase, mem);
        auto m = t.find("MCFG");
        ASSERT_NE(m.bytes, nullptr);
        EXPECT_EQ(sum(m.bytes, m.length), 0);
        ASSERT_GE(m.length, 36u + 8u + 16u);
        EXPECT_EQ((m.length - 44) % 16, 0u);
        const uint64_t base = field<uint64_t>(m, 44);
        const uint16_t segment = field<uint16_t>(m, 52);
        const uint8_t start_bus = m.bytes[54], end_bus = m.bytes[55];
        EXPECT_EQ(segment, 0);
        EXPECT_EQ(start_bus, 0);
        ASSERT_GE(end_bus, start_bus);
        EXPECT_EQ(base % MiB, 0u) << "ECAM is 1 MiB per bus and aligned to it";
        const uint64_t size = uint64_t(end_bus - start_bus + 1) << 20;
        // Outside RAM, inside the 32-bit hole, clear of the IOAPIC and LAPIC.
        EXPECT_GE(base, 3 * GiB);
        EXPECT_LE(base + size, 0xfec00000u);
        // Linux only uses ECAM that the firmware reserved in the e820 map.
        bool reserved = false;
        for (const auto& e : build_e820(mem))
            reserved |= e.type == E820Type::Reserved && e.addr <= base && base + size <= e.addr + e.size;
        EXPECT_TRUE(reserved) << "mem " << mem;
    }
}

namespace {
// Address space resource descriptors (ACPI 6.4, 6.4.3.5): large item tag, 16-bit length,
// resource type (0 = memory), flags, then granularity/min/max/translation/length.
struct Window {
    uint64_t min, max;
};
std::vector<Window> memory_windows(const Table& dsdt) {
    std::vector<Window> w;
    const uint8_t* p = dsdt.bytes;
    for (uint32_t i = 36; i + 46 <= dsdt.length; ++i) {
        if (p[i] == 0x8a && p[i + 1] == 43 && p[i + 2] == 0 && p[i + 3] == 0) {  // QWord, memory
            uint64_t mn, mx;
            std::memcpy(&mn, p + i + 14, 8);
            std::memcpy(&mx, p + i + 22, 8);
            w.push_back({mn, mx});
        }
    }
    for (uint32_t i = 36; i + 26 <= dsdt.length; ++i) {
        if (p[i] == 0x87 && p[i + 1] == 23 && p[i + 2] == 0 && p[i + 3] == 0) {  // DWord, memory
            uint32_t mn, mx;
            std::memcpy(&mn, p + i + 10, 4);
            std::memcpy(&mx, p + i + 14, 4);
            w.push_back({mn, mx});
        }
    }
    return w;
}
}  // namespace

TEST(AcpiDsdt, PciHostBridge) {
    Tables t(1);
    auto d = t.dsdt();
    ASSERT_NE(d.bytes, nullptr);
    std::vector<uint8_t> aml(d.bytes + 36, d.bytes + d.length);
    auto has = [&](const std::vector<uint8_t>& seq) {
        return std::search(aml.begin(), aml.end(), seq.begin(), seq.end()) != aml.end();
    };
    EXPECT_TRUE(has({'P', 'C', 'I', '0'}));
    // Name(_HID, EisaId("PNP0A08")): "PNP" packs into 0x41D0 (5 bits per letter, big-endian),
    // then 0x0A08; as a DWordConst (prefix 0x0C).
    EXPECT_TRUE(has({0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08})) << "PCI Express root bridge";
    EXPECT_TRUE(has({0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03})) << "compatible with PNP0A03";
    EXPECT_TRUE(has({'_', 'C', 'R', 'S'}));
}

TEST(AcpiDsdt, PciMemoryWindowsAvoidRam) {
    for (uint64_t mem : {512 * MiB, 3 * GiB, 5 * GiB, 64 * GiB}) {
        Tables t(1, kBase, mem);
        auto windows = memory_windows(t.dsdt());
        ASSERT_GE(windows.size(), 2u) << "a 32-bit and a 64-bit window";
        bool above_4g = false;
        for (const auto& w : windows) {
            EXPECT_LT(w.min, w.max);
            for (const auto& r : ram_ranges(mem))
                EXPECT_TRUE(w.max < r.base || w.min >= r.base + r.size)
                    << std::hex << "window [" << w.min << ", " << w.max << "] overlaps RAM (mem 0x" << mem << ")";
            if (w.min < 4 * GiB) {
                EXPECT_LT(w.max, 0xfec00000u) << "the 32-bit window stays below the IOAPIC";
            } else {
                above_4g = true;
            }
        }
        EXPECT_TRUE(above_4g) << "mem " << mem;
    }
}
