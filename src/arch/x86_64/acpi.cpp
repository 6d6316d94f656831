#include "arch/x86_64/acpi.hpp"

#include <cstddef>
#include <cstring>

#include "arch/x86_64/aml.hpp"
#include "arch/x86_64/layout.hpp"

namespace kvmkit::arch::x86_64 {

namespace {

#pragma pack(push, 1)
struct SdtHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
static_assert(sizeof(SdtHeader) == 36);

struct Rsdp {
    char signature[8];
    uint8_t checksum;
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;
    uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);

// Generic Address Structure (5.2.3.2).
struct Gas {
    uint8_t space_id;  // 1 = system I/O
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;  // 1 = byte, 2 = word, 3 = dword
    uint64_t address;
};
static_assert(sizeof(Gas) == 12);

struct Fadt {
    SdtHeader h;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    Gas reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    Gas x_pm1a_evt_blk;
    Gas x_pm1b_evt_blk;
    Gas x_pm1a_cnt_blk;
    Gas x_pm1b_cnt_blk;
    Gas x_pm2_cnt_blk;
    Gas x_pm_tmr_blk;
    Gas x_gpe0_blk;
    Gas x_gpe1_blk;
    Gas sleep_control_reg;
    Gas sleep_status_reg;
    uint64_t hypervisor_vendor_id;
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, flags) == 112);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, x_pm1a_evt_blk) == 148);

struct MadtHeader {
    SdtHeader h;
    uint32_t lapic_address;
    uint32_t flags;
};
struct MadtLapic {
    uint8_t type = 0, length = 8, processor_id, apic_id;
    uint32_t flags;
};
struct MadtIoapic {
    uint8_t type = 1, length = 12, ioapic_id, reserved = 0;
    uint32_t address;
    uint32_t gsi_base;
};
struct MadtIso {
    uint8_t type = 2, length = 10, bus = 0, source;
    uint32_t gsi;
    uint16_t flags;
};
struct MadtLapicNmi {
    uint8_t type = 4, length = 6, processor_id;
    uint16_t flags;
    uint8_t lint;
};
#pragma pack(pop)

constexpr uint32_t kFadtWbinvd = 1u << 0;
constexpr uint32_t kFadtProcC1 = 1u << 2;
constexpr uint32_t kFadtSlpButton = 1u << 5;  // no sleep button
constexpr uint32_t kFadtResetRegSup = 1u << 10;
constexpr uint16_t kBootArchLegacyDevices = 1u << 0;
constexpr uint16_t kBootArch8042 = 1u << 1;
constexpr uint16_t kBootArchNoVga = 1u << 2;
constexpr uint32_t kMadtPcatCompat = 1u << 0;

void fill_header(SdtHeader& h, const char* sig, uint32_t length, uint8_t revision) {
    std::memcpy(h.signature, sig, 4);
    h.length = length;
    h.revision = revision;
    std::memcpy(h.oem_id, "KVMKIT", 6);
    std::memcpy(h.oem_table_id, "KVMKITVM", 8);
    h.oem_revision = 1;
    std::memcpy(h.creator_id, "KVMK", 4);
    h.creator_revision = 1;
}

Gas io_gas(uint16_t port, uint8_t bytes) {
    return Gas{1, static_cast<uint8_t>(bytes * 8), 0, static_cast<uint8_t>(bytes == 4 ? 3 : bytes == 2 ? 2 : 1), port};
}

// Appends `obj` (8-byte aligned) and returns its guest address.
template <typename T>
uint64_t append(std::vector<uint8_t>& blob, uint64_t base, const T* obj, size_t len) {
    while (blob.size() % 8) blob.push_back(0);
    uint64_t addr = base + blob.size();
    auto* p = reinterpret_cast<const uint8_t*>(obj);
    blob.insert(blob.end(), p, p + len);
    return addr;
}

void set_checksum(std::vector<uint8_t>& blob, uint64_t base, uint64_t addr, size_t len, size_t checksum_offset) {
    uint8_t* t = blob.data() + (addr - base);
    t[checksum_offset] = 0;
    t[checksum_offset] = static_cast<uint8_t>(-acpi_checksum({t, len}));
}

std::vector<uint8_t> build_dsdt(uint64_t mem_size) {
    namespace a = aml;
    a::Bytes crs;
    for (const auto& item : {a::word_bus_number(0, 0), a::io_port(layout::kPciConfigPort, layout::kPciConfigPort, 1, 8),
                             a::word_io(0x0000, 0x0cf7), a::word_io(0x0d00, 0xffff),
                             a::dword_memory(static_cast<uint32_t>(layout::kPciMmio32Start),
                                             static_cast<uint32_t>(layout::kPciMmio32End - 1)),
                             a::qword_memory(layout::pci_mmio64_start(mem_size),
                                             layout::pci_mmio64_start(mem_size) + layout::kPciMmio64Size - 1),
                             a::end_tag()})
        crs.insert(crs.end(), item.begin(), item.end());
    a::Bytes aml;
    auto add = [&](const a::Bytes& b) { aml.insert(aml.end(), b.begin(), b.end()); };
    // \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved.
    add(a::name("_S5_", a::package({a::integer(layout::kSleepTypeS5), a::integer(layout::kSleepTypeS5),
                                     a::integer(0), a::integer(0)})));
    add(a::scope("\\_SB_", {a::device("PCI0", {
                                 a::name("_HID", a::eisa_id("PNP0A08")),  // PCI Express root bridge
                                 a::name("_CID", a::eisa_id("PNP0A03")),  // compatible: PCI root bridge
                                 a::name("_ADR", a::integer(0)),
                                 a::name("_SEG", a::integer(0)),
                                 a::name("_UID", a::integer(0)),
                                 a::name("_BBN", a::integer(0)),
                                 a::name("_CRS", a::buffer(crs)),
                             })}));
    std::vector<uint8_t> t(sizeof(SdtHeader) + aml.size());
    SdtHeader h{};
    fill_header(h, "DSDT", t.size(), 2);
    std::memcpy(t.data(), &h, sizeof h);
    std::memcpy(t.data() + sizeof h, aml.data(), aml.size());
    return t;
}

std::vector<uint8_t> build_mcfg() {
#pragma pack(push, 1)
    struct Allocation {
        uint64_t base;
        uint16_t segment;
        uint8_t start_bus;
        uint8_t end_bus;
        uint32_t reserved;
    };
#pragma pack(pop)
    std::vector<uint8_t> t(sizeof(SdtHeader) + 8 + sizeof(Allocation), 0);
    SdtHeader h{};
    fill_header(h, "MCFG", t.size(), 1);
    std::memcpy(t.data(), &h, sizeof h);
    Allocation a{layout::kPciEcamBase, 0, 0, static_cast<uint8_t>((layout::kPciEcamSize >> 20) - 1), 0};
    std::memcpy(t.data() + sizeof h + 8, &a, sizeof a);
    return t;
}

std::vector<uint8_t> build_madt(uint32_t cpus) {
    std::vector<uint8_t> t(sizeof(MadtHeader));
    auto add = [&](const auto& e) {
        auto* p = reinterpret_cast<const uint8_t*>(&e);
        t.insert(t.end(), p, p + sizeof e);
    };
    for (uint32_t i = 0; i < cpus; ++i) add(MadtLapic{0, 8, static_cast<uint8_t>(i), static_cast<uint8_t>(i), 1});
    add(MadtIoapic{1, 12, static_cast<uint8_t>(cpus), 0, static_cast<uint32_t>(layout::kIoapicAddr), 0});
    // The SCI is level-triggered, active high (flags: polarity 01, trigger 11).
    add(MadtIso{2, 10, 0, static_cast<uint8_t>(layout::kSciIrq), layout::kSciIrq, 0x000d});
    add(MadtLapicNmi{4, 6, 0xff, 0, 1});  // LINT1 of every CPU is NMI
    MadtHeader h{};
    fill_header(h.h, "APIC", t.size(), 4);
    h.lapic_address = static_cast<uint32_t>(layout::kLapicAddr);
    h.flags = kMadtPcatCompat;
    std::memcpy(t.data(), &h, sizeof h);
    return t;
}

Fadt build_fadt(uint64_t dsdt_addr) {
    Fadt f{};
    fill_header(f.h, "FACP", sizeof f, 6);
    f.minor_version = 0;
    f.dsdt = static_cast<uint32_t>(dsdt_addr);
    f.x_dsdt = dsdt_addr;
    f.sci_int = layout::kSciIrq;
    f.smi_cmd = 0;  // no SMM: the machine is always in ACPI mode
    f.pm1a_evt_blk = layout::kPm1aEventPort;
    f.pm1a_cnt_blk = layout::kPm1aControlPort;
    f.pm1_evt_len = layout::kPm1EventLen;
    f.pm1_cnt_len = layout::kPm1ControlLen;
    f.x_pm1a_evt_blk = io_gas(layout::kPm1aEventPort, layout::kPm1EventLen);
    f.x_pm1a_cnt_blk = io_gas(layout::kPm1aControlPort, layout::kPm1ControlLen);
    f.p_lvl2_lat = 101;   // > 100: C2 not supported
    f.p_lvl3_lat = 1001;  // > 1000: C3 not supported
    f.century = 0x32;     // CMOS register holding the century
    f.iapc_boot_arch = kBootArchLegacyDevices | kBootArch8042 | kBootArchNoVga;
    f.flags = kFadtWbinvd | kFadtProcC1 | kFadtSlpButton | kFadtResetRegSup;
    f.reset_reg = io_gas(layout::kResetPort, 1);
    f.reset_value = layout::kResetValue;
    std::memcpy(&f.hypervisor_vendor_id, "KVMKIT\0\0", 8);
    return f;
}

}  // namespace

uint8_t acpi_checksum(std::span<const uint8_t> bytes) {
    uint8_t sum = 0;
    for (uint8_t b : bytes) sum += b;
    return sum;
}

std::vector<uint8_t> build_acpi_tables(const AcpiConfig& cfg) {
    std::vector<uint8_t> blob;
    const uint64_t base = cfg.base;

    Rsdp rsdp{};
    uint64_t rsdp_addr = append(blob, base, &rsdp, sizeof rsdp);

    auto dsdt = build_dsdt(cfg.mem_size);
    uint64_t dsdt_addr = append(blob, base, dsdt.data(), dsdt.size());
    set_checksum(blob, base, dsdt_addr, dsdt.size(), offsetof(SdtHeader, checksum));

    Fadt fadt = build_fadt(dsdt_addr);
    uint64_t fadt_addr = append(blob, base, &fadt, sizeof fadt);
    set_checksum(blob, base, fadt_addr, sizeof fadt, offsetof(SdtHeader, checksum));

    auto madt = build_madt(cfg.cpus);
    uint64_t madt_addr = append(blob, base, madt.data(), madt.size());
    set_checksum(blob, base, madt_addr, madt.size(), offsetof(SdtHeader, checksum));

    auto mcfg = build_mcfg();
    uint64_t mcfg_addr = append(blob, base, mcfg.data(), mcfg.size());
    set_checksum(blob, base, mcfg_addr, mcfg.size(), offsetof(SdtHeader, checksum));

    const uint64_t entries[] = {fadt_addr, madt_addr, mcfg_addr};
    std::vector<uint8_t> xsdt(sizeof(SdtHeader) + sizeof entries);
    SdtHeader xh{};
    fill_header(xh, "XSDT", xsdt.size(), 1);
    std::memcpy(xsdt.data(), &xh, sizeof xh);
    std::memcpy(xsdt.data() + sizeof xh, entries, sizeof entries);
    uint64_t xsdt_addr = append(blob, base, xsdt.data(), xsdt.size());
    set_checksum(blob, base, xsdt_addr, xsdt.size(), offsetof(SdtHeader, checksum));

    std::memcpy(rsdp.signature, "RSD PTR ", 8);
    std::memcpy(rsdp.oem_id, "KVMKIT", 6);
    rsdp.revision = 2;
    rsdp.rsdt_address = 0;  // XSDT only, as ACPI 2.0+ allows
    rsdp.length = sizeof rsdp;
    rsdp.xsdt_address = xsdt_addr;
    std::memcpy(blob.data() + (rsdp_addr - base), &rsdp, sizeof rsdp);
    set_checksum(blob, base, rsdp_addr, 20, offsetof(Rsdp, checksum));
    set_checksum(blob, base, rsdp_addr, sizeof rsdp, offsetof(Rsdp, extended_checksum));
    return blob;
}

base::Result<uint64_t> write_acpi_tables(memory::GuestMemory& mem, uint32_t cpus, uint64_t mem_size) {
    auto blob = build_acpi_tables({cpus, layout::kAcpiStart, mem_size});
    if (blob.size() > layout::kAcpiEnd - layout::kAcpiStart)
        return base::fail("ACPI tables too large (" + std::to_string(blob.size()) + " bytes)");
    TRY_CTX(mem.write(layout::kAcpiStart, blob.data(), blob.size()), "write ACPI tables");
    return layout::kAcpiStart;
}

}  // namespace kvmkit::arch::x86_64
