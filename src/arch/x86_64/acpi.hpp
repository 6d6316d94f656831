// ACPI tables for a legacy-PC-like machine (ACPI 6.x, sections 5.2.x):
// RSDP -> XSDT -> FADT (-> DSDT, FACS-less), MADT. The FADT points at the
// PM1a event/control blocks of devices/acpi_pm so that S5 (poweroff) and the
// fixed power button work. The DSDT carries \_S5 and the PCI host bridge
// (\_SB.PCI0, with its bus, I/O and memory windows); MCFG announces ECAM.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace kvmkit::arch::x86_64 {

struct AcpiConfig {
    uint32_t cpus = 1;
    uint64_t base = 0;      // guest address the blob is placed at (RSDP first)
    uint64_t mem_size = 0;  // for the PCI host bridge's 64-bit window
};

// Builds the whole blob; offsets inside are absolute guest addresses based at cfg.base.
std::vector<uint8_t> build_acpi_tables(const AcpiConfig& cfg);

// Builds and writes the tables into [layout::kAcpiStart, kAcpiEnd); returns the RSDP address.
base::Result<uint64_t> write_acpi_tables(memory::GuestMemory& mem, uint32_t cpus, uint64_t mem_size);

// The ACPI checksum rule: all bytes of a table sum to zero (mod 256).
uint8_t acpi_checksum(std::span<const uint8_t> bytes);

}  // namespace kvmkit::arch::x86_64
