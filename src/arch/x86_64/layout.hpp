// The guest physical address map and interrupt numbers of a kvmkit x86_64
// machine: every fixed address and GSI lives here and nowhere else.
//
//   0x0000_0000  real-mode IVT / BIOS data area (left zero)
//   0x0000_0500  GDT used for the 64-bit and PVH entries
//   0x0000_1000  PVH hvm_start_info, module list and memory map
//   0x0000_7000  Linux boot_params ("zero page")
//   0x0000_9000  identity page tables: PML4, PDPT, 4 PDs (2 MiB pages, 4 GiB)
//   0x0002_0000  kernel command line
//   0x0009_fc00  EBDA (reserved in e820)
//   0x000e_0000  ACPI tables (RSDP first, so the legacy scan finds it)
//   0x0010_0000  kernel (bzImage protected-mode part, or ELF segments)
//   ...          initrd at the top of low RAM
//   0xc000_0000  start of the 32-bit MMIO hole (PCI, LAPIC, IOAPIC)
//   0xfec0_0000  IOAPIC
//   0xfee0_0000  local APIC
//   0xfffb_c000  KVM identity-map page + TSS (needed by VMX hosts)
//   4 GiB        RAM above the hole continues here
#pragma once

#include <cstdint>

namespace kvmkit::arch::x86_64::layout {

constexpr uint64_t kGdtAddr = 0x500;
constexpr uint64_t kPvhStartInfoAddr = 0x1000;
constexpr uint64_t kPvhInfoLimit = 0x7000;  // start info + modules + memmap must end here
constexpr uint64_t kBootParamsAddr = 0x7000;
constexpr uint64_t kPml4Addr = 0x9000;
constexpr uint64_t kPdptAddr = 0xa000;
constexpr uint64_t kPdAddr = 0xb000;  // 4 consecutive pages
constexpr uint64_t kIdentityMappedBytes = 4ull << 30;
constexpr uint64_t kCmdlineAddr = 0x20000;
constexpr uint64_t kCmdlineMax = 0x10000;  // 64 KiB incl. NUL, further limited by the kernel's cmdline_size
constexpr uint64_t kEbdaStart = 0x9fc00;
constexpr uint64_t kLowRamEnd = 0x9fc00;  // usable RAM below the EBDA
constexpr uint64_t kAcpiStart = 0xe0000;
constexpr uint64_t kAcpiEnd = 0x100000;
constexpr uint64_t kHighMemStart = 0x100000;  // 1 MiB, where kernels load
constexpr uint64_t kKernelLoadAddr = 0x100000;

constexpr uint64_t kMmioHoleStart = 0xc0000000;  // 3 GiB
constexpr uint64_t kMmioHoleEnd = 1ull << 32;
constexpr uint64_t kRamAbove4gStart = 1ull << 32;

// PCI: BARs go in the 32-bit window first, then the 64-bit one above RAM;
// ECAM covers bus 0 only (the MCFG table says so).
constexpr uint64_t kPciMmio32Start = 0xc0000000;
constexpr uint64_t kPciMmio32End = 0xe0000000;
constexpr uint64_t kPciEcamBase = 0xe0000000;
constexpr uint64_t kPciEcamSize = 1ull << 20;  // 1 bus x 32 devices x 8 functions x 4 KiB
constexpr uint64_t kPciMmio64Size = 64ull << 30;
constexpr uint16_t kPciConfigPort = 0xcf8;
constexpr uint32_t kFirstMsiGsi = 24;  // after the IOAPIC's pins

constexpr uint64_t kIoapicAddr = 0xfec00000;
constexpr uint64_t kLapicAddr = 0xfee00000;
constexpr uint64_t kIdentityMapPageAddr = 0xfffbc000;
constexpr uint64_t kTssAddr = 0xfffbd000;

// Minimum guest RAM: enough for the boot structures and a tiny kernel.
constexpr uint64_t kMinMemory = 8ull << 20;

// Port I/O map.
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint16_t kCom1Irq = 4;
constexpr uint16_t kI8042DataPort = 0x60;
constexpr uint16_t kI8042CommandPort = 0x64;
constexpr uint16_t kRtcPort = 0x70;
constexpr uint16_t kPostPort = 0x80;
constexpr uint16_t kPm1aEventPort = 0x600;  // PM1 status + enable, 4 bytes
constexpr uint8_t kPm1EventLen = 4;
constexpr uint16_t kPm1aControlPort = 0x604;  // PM1 control, 2 bytes
constexpr uint8_t kPm1ControlLen = 2;
constexpr uint16_t kResetPort = 0x608;  // FADT RESET_REG (1 byte)
constexpr uint8_t kResetValue = 0x01;
constexpr uint8_t kSleepTypeS5 = 5;  // SLP_TYP value the DSDT's \_S5 announces
constexpr uint32_t kSciIrq = 9;

constexpr uint32_t kIoapicPins = 24;

}  // namespace kvmkit::arch::x86_64::layout

namespace kvmkit::arch::x86_64::layout {
// The 64-bit PCI window: 1 GiB-aligned, just above the highest RAM address.
constexpr uint64_t pci_mmio64_start(uint64_t mem_size) {
    uint64_t ram_end = mem_size > kMmioHoleStart ? kRamAbove4gStart + (mem_size - kMmioHoleStart) : kRamAbove4gStart;
    return (ram_end + (1ull << 30) - 1) & ~((1ull << 30) - 1);
}
}  // namespace kvmkit::arch::x86_64::layout
